//! Swarm efficiency on the simulated network (tests/support/sim.rs): 1 seeder + N leechers,
//! 64 MiB in 256 KiB pieces, every node's upload capped at 2 MiB/s (downloads uncapped),
//! leechers joining evenly over 1–3 s — testnet/scenarios/efficiency.toml without processes.
//! Prints `t_last / T_min` against the fluid bound `T_min = max(F/u_s, N·F/(u_s + Σu_i))`,
//! with `t_last` from the first leecher's start to the last leecher's completion.
//!
//! ```text
//! cargo bench -p shoal-swarm --bench efficiency                 # N = 10, 20, 50; 3 seeds each
//! cargo bench -p shoal-swarm --bench efficiency -- 50 --seeds 1 --latency-ms 5
//! cargo bench -p shoal-swarm --bench efficiency -- 50 --startup-ms 2000  # slow discovery
//! ```
//!
//! Per run it also prints how many copies of the content the seeder uploaded (`seed_up`, 1.00
//! is ideal), the duplicate bytes leechers received, the leechers' mean upload utilisation
//! between their join and `t_last`, the median completion, when the seeder had sent every
//! block once (`copy1`) and how long its upload sat idle until then.
//!
//! For exploration: `TRACE=1` prints the swarm every half second (why idle leechers are idle)
//! and how the first and last pieces spread; `SHOAL_<KNOB>=value` overrides a
//! [`SwarmConfig`] field (see [`tuned`]).

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "efficiency/trace.rs"]
mod trace;

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
    /// Mean time from a leecher's planned start to its first connections (process start,
    /// DHT lookups); each leecher's is spread over half to one and a half times this.
    startup: Duration,
}

fn options() -> Options {
    let mut o = Options {
        sizes: Vec::new(),
        seeds: 3,
        latency: Duration::from_millis(2),
        startup: Duration::ZERO,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok());
        match arg.as_str() {
            "--seeds" => o.seeds = value().unwrap_or(o.seeds).max(1),
            "--latency-ms" => o.latency = Duration::from_millis(value().unwrap_or(2)),
            "--startup-ms" => o.startup = Duration::from_millis(value().unwrap_or(0)),
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
    /// From the first join until the seeder had sent every block once; the seeder's idle
    /// time within that span.
    first_copy: Option<(f64, f64)>,
}

fn run(n: usize, seed: u64, o: &Options, content: &Content) -> Outcome {
    let mut specs = vec![NodeSpec::seed(RATE)];
    for i in 0..n {
        let join = JOIN_AT + JOIN_SPREAD.mul_f64(i as f64 / n as f64);
        // Golden-ratio spread: deterministic, and uncorrelated with the join order.
        let spread = 0.5 + (i as f64 * 0.618_034 + seed as f64 * 0.381_966).fract();
        let start = join + o.startup.mul_f64(spread);
        specs.push(NodeSpec::leecher(RATE).joining_at(start));
    }
    let config = tuned(SwarmConfig::default());
    let mut sim = Sim::new(content.clone(), &specs, config, seed)
        .with_latency(o.latency)
        .lean();
    let done = if std::env::var("TRACE").is_ok() {
        trace::run(&mut sim, RATE)
    } else {
        sim.run(Duration::from_secs(900), Sim::all_complete)
    };
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
            let window = end - node.spec.join_at.as_secs_f64().min(end);
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
        first_copy: sim.nodes[0].first_copy_at.map(|(at, busy)| {
            let span = at.as_secs_f64() - first_join;
            (span, span - busy.as_secs_f64())
        }),
        median_done: completions
            .get(completions.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
    }
}

/// Exploration knobs: `SHOAL_QUEUE_TIME_MS`, `SHOAL_MIN_QUEUE`, `SHOAL_SERVE_PIPELINE`,
/// `SHOAL_UPLOAD_SLOTS`, `SHOAL_SUPER_SEED` (0/1), `SHOAL_SUPER_SEED_PEERS`,
/// `SHOAL_ENDGAME_COPIES`, `SHOAL_RECHOKE_MS`, `SHOAL_OPTIMISTIC_MS` override the [`SwarmConfig`] field of that name.
fn tuned(mut c: SwarmConfig) -> SwarmConfig {
    let get = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(v) = get("SHOAL_QUEUE_TIME_MS") {
        c.request_queue_time = Duration::from_millis(v);
    }
    if let Some(v) = get("SHOAL_SERVE_PIPELINE") {
        c.serve_pipeline = v as usize;
    }
    if let Some(v) = get("SHOAL_UPLOAD_SLOTS") {
        c.upload_slots = v as usize;
    }
    if let Some(v) = get("SHOAL_SUPER_SEED_PEERS") {
        c.super_seed_peers = v as usize;
    }
    if let Some(v) = get("SHOAL_ENDGAME_COPIES") {
        c.endgame_extra_copies = v as usize;
    }
    if let Some(v) = get("SHOAL_RECHOKE_MS") {
        c.rechoke_interval = Duration::from_millis(v);
    }
    if let Some(v) = get("SHOAL_OPTIMISTIC_MS") {
        c.optimistic_interval = Duration::from_millis(v);
    }
    if let Some(v) = get("SHOAL_MIN_QUEUE") {
        c.min_queue_depth = v as usize;
    }
    if let Some(v) = get("SHOAL_SUPER_SEED") {
        c.super_seed = v != 0;
    }
    c
}

fn main() {
    let o = options();
    let content = Content::new(PIECE, SIZE, 1);
    println!(
        "swarm efficiency (sim): 1 seeder + N leechers, 64 MiB, 256 KiB pieces, 2 MiB/s up, \
         latency {:?}, startup {:?}",
        o.latency, o.startup
    );
    println!(
        "{:>4} {:>5} {:>8} {:>7} {:>7} {:>9} {:>8} {:>7} {:>8} {:>7} {:>9}",
        "N",
        "seed",
        "t_last",
        "T_min",
        "ratio",
        "seed_up",
        "dup_MiB",
        "util",
        "t_median",
        "copy1",
        "seed_idle"
    );
    for &n in &o.sizes {
        let mut ratios = Vec::new();
        for seed in 1..=o.seeds {
            let started = std::time::Instant::now();
            let r = run(n, seed, &o, &content);
            let ratio = r.t_last.map(|t| t / r.t_min);
            ratios.extend(ratio);
            println!(
                "{n:>4} {seed:>5} {:>8} {:>7.2} {:>7} {:>8.2}x {:>8.1} {:>6.1}% {:>8.2} {:>7} {:>9}  ({:.1?})",
                r.t_last.map_or("stalled".into(), |t| format!("{t:.2}")),
                r.t_min,
                ratio.map_or("-".into(), |x| format!("{x:.3}")),
                r.seed_copies,
                r.duplicate_mib,
                r.utilisation * 100.0,
                r.median_done,
                r.first_copy.map_or("-".into(), |c| format!("{:.2}", c.0)),
                r.first_copy.map_or("-".into(), |c| format!("{:.2}", c.1)),
                started.elapsed(),
            );
        }
        ratios.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
            println!("N={n}: t_last / T_min {lo:.3} – {hi:.3}");
        }
    }
}
