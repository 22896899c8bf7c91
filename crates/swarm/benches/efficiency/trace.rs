//! `TRACE=1`: the swarm every half second while it runs, then how a few pieces spread.

use std::time::Duration;

use super::support::Sim;

const STEP: Duration = Duration::from_millis(500);

/// Runs `sim` to completion in half-second steps, printing each; returns whether it completed.
pub fn run(sim: &mut Sim, rate: u64) -> bool {
    let mut limit = STEP;
    let mut last_up = vec![0u64; sim.nodes.len()];
    loop {
        let done = sim.run(limit, Sim::all_complete);
        let up: Vec<u64> = sim
            .nodes
            .iter()
            .map(|n| n.torrent.stats().bytes_uploaded)
            .collect();
        step(sim, limit, rate, &up, &last_up);
        last_up = up;
        if done || limit > Duration::from_secs(900) {
            spread(sim);
            return done;
        }
        limit += STEP;
    }
}

/// One line of rates and counts, one of why idle leechers are idle.
fn step(sim: &Sim, at: Duration, rate: u64, up: &[u64], last_up: &[u64]) {
    let leechers: Vec<usize> = (1..sim.nodes.len())
        .filter(|&i| sim.nodes[i].joined)
        .collect();
    let capacity = rate as f64 * STEP.as_secs_f64();
    let sent: u64 = leechers.iter().map(|&i| up[i] - last_up[i]).sum();
    let stats: Vec<_> = leechers
        .iter()
        .map(|&i| sim.nodes[i].torrent.stats())
        .collect();
    let missing: u32 = stats.iter().map(|s| s.num_pieces - s.pieces_have).sum();
    println!(
        "t {:5.1} seed {:4.0}% leechers up {:5.1}% missing {:6} complete {:3}",
        at.as_secs_f64(),
        (up[0] - last_up[0]) as f64 / capacity * 100.0,
        sent as f64 / (leechers.len().max(1) as f64 * capacity) * 100.0,
        missing,
        stats.iter().filter(|s| s.complete).count(),
    );
    let mut why = [0usize; 5];
    for &i in &leechers {
        why[idle_reason(sim, i)] += 1;
    }
    println!(
        "      busy {} | idle: no pieces {}, nobody interested {}, all choked {}, no requests {}",
        why[4], why[0], why[1], why[2], why[3]
    );
}

/// 4: uploading; else why not: 0 no pieces, 1 nobody interested, 2 every interested peer
/// choked, 3 unchoked interested peers that ask for nothing.
fn idle_reason(sim: &Sim, node: usize) -> usize {
    let torrent = &sim.nodes[node].torrent;
    let peers = torrent.peers();
    if peers.iter().any(|p| p.queued_requests > 0) {
        4
    } else if torrent.stats().pieces_have == 0 {
        0
    } else if !peers.iter().any(|p| p.peer_interested) {
        1
    } else if !peers.iter().any(|p| p.peer_interested && !p.am_choking) {
        2
    } else {
        3
    }
}

/// When the first four and the last two pieces to appear reached the 1st, 2nd, 4th, … node.
fn spread(sim: &Sim) {
    let first_seen = |piece: u32| {
        sim.nodes
            .iter()
            .filter_map(|n| n.verified_at.get(&piece))
            .min()
    };
    let num_pieces = sim.content.geometry.num_pieces();
    let mut order: Vec<(Duration, u32)> = (0..num_pieces)
        .filter_map(|p| first_seen(p).map(|t| (*t, p)))
        .collect();
    order.sort();
    for &(_, piece) in order.iter().take(4).chain(order.iter().rev().take(2)) {
        let mut times: Vec<f64> = sim
            .nodes
            .iter()
            .filter_map(|n| n.verified_at.get(&piece).map(Duration::as_secs_f64))
            .collect();
        times.sort_by(f64::total_cmp);
        let nth: Vec<String> = [1, 2, 4, 8, 16, 32, times.len()]
            .iter()
            .filter(|&&k| k <= times.len())
            .map(|&k| format!("#{k} {:.2}", times[k - 1]))
            .collect();
        println!("piece {piece:4}: {}", nth.join("  "));
    }
}
