//! Swarm efficiency on the simulated network (tests/support/sim.rs): 1 seeder + N leechers,
//! 64 MiB in 256 KiB pieces, every node's upload capped at 2 MiB/s (downloads uncapped),
//! leechers joining evenly over 1–3 s — testnet/scenarios/efficiency.toml without processes.
//! Prints `t_last / T_min` against the fluid bound `T_min = max(F/u_s, N·F/(u_s + Σu_i))`,
//! with `t_last` from the first leecher's start to the last leecher's completion.
//!
//! ```text
//! cargo bench -p shoal-swarm --bench efficiency                 # N = 10, 20, 50; 3 seeds each
//! cargo bench -p shoal-swarm --bench efficiency -- 50 --seeds 1 --latency-ms 5
//! ```
//!
//! Per run it also prints how many copies of the content the seeder uploaded (1.00 is ideal),
//! the duplicate bytes leechers received, and the leechers' mean upload utilisation between
//! their join and `t_last`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use shoal_swarm::SwarmConfig;
use support::{Content, NodeSpec, Sim};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 64 * MIB;
const PIECE: u64 = 256 * 1024;
const RATE: u64 = 2 * MIB;
const JOIN_AT: Duration = Duration::from_secs(1);
const JOIN_SPREAD: Duration = Duration::from_secs(2);

struct Options {
    sizes: Vec<usize>,
    seeds: u64,
    latency: Duration,
}

fn options() -> Options {
    let mut o = Options {
        sizes: Vec::new(),
        seeds: 3,
        latency: Duration::from_millis(2),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--seeds" => o.seeds = value().unwrap_or(o.seeds).max(1),
            "--latency-ms" => o.latency = Duration::from_millis(value().unwrap_or(2)),
            a if a.starts_with("--") => {} // cargo bench's own flags
            a => o.sizes.extend(a.parse::<usize>().ok()),
        }
    }
    if o.sizes.is_empty() {
        o.sizes = vec![10, 20, 50];
    }
    o
}

struct Outcome {
    t_last: Option<f64>,
    t_min: f64,
    seed_copies: f64,
    duplicate_mib: f64,
    utilisation: f64,
    median_done: f64,
}

fn run(n: usize, seed: u64, latency: Duration, content: &Content) -> Outcome {
    let mut specs = vec![NodeSpec::seed(RATE)];
    for i in 0..n {
        let join = JOIN_AT + JOIN_SPREAD.mul_f64(i as f64 / n as f64);
        specs.push(NodeSpec::leecher(RATE).joining_at(join));
    }
    let config = SwarmConfig::default();
    let mut sim = Sim::new(content.clone(), &specs, config, seed)
        .with_latency(latency)
        .lean();
    let done = sim.run(Duration::from_secs(900), Sim::all_complete);
    let first_join = JOIN_AT.as_secs_f64();
    let mut completions: Vec<f64> = sim.nodes[1..]
        .iter()
        .filter_map(|node| node.completed_at)
        .map(|t| t.as_secs_f64() - first_join)
        .collect();
    completions.sort_by(f64::total_cmp);
    let t_last = done.then(|| completions.last().copied()).flatten();
    let f = SIZE as f64;
    let rate = RATE as f64;
    let t_min = (f / rate).max(n as f64 * f / (rate * (n as f64 + 1.0)));
    let end = t_last.unwrap_or(900.0) + first_join;
    let utilisation = sim.nodes[1..]
        .iter()
        .map(|node| {
            let window = end - node.spec.join_at.as_secs_f64();
            node.torrent.stats().bytes_uploaded as f64 / (rate * window)
        })
        .sum::<f64>()
        / n as f64;
    let duplicates: u64 = sim
        .nodes
        .iter()
        .map(|node| node.torrent.stats().duplicate_bytes)
        .sum();
    Outcome {
        t_last,
        t_min,
        seed_copies: sim.nodes[0].torrent.stats().bytes_uploaded as f64 / f,
        duplicate_mib: duplicates as f64 / MIB as f64,
        utilisation,
        median_done: completions
            .get(completions.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
    }
}

fn main() {
    let o = options();
    let content = Content::new(PIECE, SIZE, 1);
    println!(
        "swarm efficiency (sim): 1 seeder + N leechers, 64 MiB, 256 KiB pieces, 2 MiB/s up, \
         latency {:?}",
        o.latency
    );
    println!(
        "{:>4} {:>5} {:>8} {:>7} {:>7} {:>9} {:>10} {:>8} {:>8}",
        "N", "seed", "t_last", "T_min", "ratio", "seed_up", "dup_MiB", "util", "t_median"
    );
    for &n in &o.sizes {
        let mut ratios = Vec::new();
        for seed in 1..=o.seeds {
            let started = std::time::Instant::now();
            let r = run(n, seed, o.latency, &content);
            let ratio = r.t_last.map(|t| t / r.t_min);
            ratios.extend(ratio);
            println!(
                "{n:>4} {seed:>5} {:>8} {:>7.2} {:>7} {:>8.2}x {:>10.1} {:>7.1}% {:>8.2}   ({:.1?})",
                r.t_last.map_or("stalled".into(), |t| format!("{t:.2}")),
                r.t_min,
                ratio.map_or("-".into(), |x| format!("{x:.3}")),
                r.seed_copies,
                r.duplicate_mib,
                r.utilisation * 100.0,
                r.median_done,
                started.elapsed(),
            );
        }
        ratios.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
            println!("N={n}: t_last / T_min {lo:.3} – {hi:.3}");
        }
    }
}
