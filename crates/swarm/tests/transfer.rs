//! Whole transfers between engines wired together by the simulated network.

mod support;

use std::time::Duration;

use shoal_swarm::SwarmConfig;
use support::{Content, NodeSpec, Sim};

const MIB: u64 = 1 << 20;

fn assert_all_correct(sim: &Sim) {
    for (i, node) in sim.nodes.iter().enumerate() {
        assert!(node.torrent.is_complete(), "node {i} incomplete");
        assert!(
            node.storage == sim.content.data,
            "node {i} has wrong content"
        );
    }
}

#[test]
fn one_seed_three_leechers_all_complete() {
    let content = Content::new(64 * 1024, 3 * MIB + 12345, 1);
    let specs = [
        NodeSpec::seed(MIB),
        NodeSpec::leecher(MIB),
        NodeSpec::leecher(MIB),
        NodeSpec::leecher(MIB),
    ];
    let mut sim = Sim::new(content, &specs, SwarmConfig::default(), 11);
    sim.connect_all();
    assert!(
        sim.run(Duration::from_secs(600), Sim::all_complete),
        "stalled"
    );
    // Let the last Uploaded events and Haves settle.
    sim.run(Duration::from_secs(601), |_| false);
    assert_all_correct(&sim);
    for node in &sim.nodes[1..] {
        assert!(
            node.completed_at.is_some(),
            "every leecher reports Completed"
        );
        let stats = node.torrent.stats();
        assert!(stats.time_to_first_byte.is_some());
        assert!(stats.bytes_downloaded >= sim.content.data.len() as u64);
        assert_eq!(stats.failed_pieces, 0);
    }
    assert!(
        sim.nodes[0].completed_at.is_none(),
        "a seed never completes again"
    );
    // Leechers traded with each other: the seed did not upload everything three times.
    let seed_up = sim.nodes[0].torrent.stats().bytes_uploaded;
    let leechers_up: u64 = sim.nodes[1..]
        .iter()
        .map(|n| n.torrent.stats().bytes_uploaded)
        .sum();
    assert!(leechers_up > 0, "seed {seed_up}, leechers {leechers_up}");
    // Done means nobody is interested anymore and nothing is in flight.
    for node in &sim.nodes {
        for peer in node.torrent.peers() {
            assert!(!peer.am_interested && peer.outstanding_requests == 0);
        }
    }
}

#[test]
fn a_slow_seed_does_not_stall_the_tail() {
    // One fast and one very slow seed: the end game fetches the slow seed's last blocks from
    // the fast one, and cancels the copies.
    let content = Content::new(32 * 1024, MIB, 2);
    let specs = [
        NodeSpec::seed(4 * MIB),
        NodeSpec::seed(8 * 1024),
        NodeSpec::leecher(MIB),
    ];
    let mut sim = Sim::new(content, &specs, SwarmConfig::default(), 5);
    sim.connect_all();
    assert!(sim.run(Duration::from_secs(120), |s| {
        s.nodes[2].torrent.is_complete()
    }));
    assert!(sim.nodes[2].storage == sim.content.data);
    assert!(
        sim.log
            .iter()
            .any(|(_, node, s)| *node == 2 && s.contains("Cancel")),
        "the end game cancelled duplicate requests"
    );
}

#[test]
fn corrupt_seed_is_banned_and_the_download_completes() {
    let content = Content::new(32 * 1024, MIB / 2, 3);
    let mut corrupt = NodeSpec::seed(2 * MIB);
    corrupt.corrupt = true;
    let specs = [corrupt, NodeSpec::seed(MIB), NodeSpec::leecher(MIB)];
    let mut sim = Sim::new(content, &specs, SwarmConfig::default(), 9);
    sim.connect_all();
    assert!(sim.run(Duration::from_secs(300), |s| {
        s.nodes[2].torrent.is_complete()
    }));
    assert!(sim.nodes[2].storage == sim.content.data);
    assert_eq!(sim.nodes[2].banned, [0].into_iter().collect());
    let stats = sim.nodes[2].torrent.stats();
    assert!(stats.failed_pieces >= 1 && stats.banned_peers == 1);
}

#[test]
fn same_seed_same_actions() {
    let run = |seed| {
        let content = Content::new(32 * 1024, MIB, 4);
        let specs = [
            NodeSpec::seed(MIB),
            NodeSpec::leecher(512 * 1024),
            NodeSpec::leecher(MIB),
        ];
        let mut sim = Sim::new(content, &specs, SwarmConfig::default(), seed);
        sim.connect_all();
        assert!(sim.run(Duration::from_secs(300), Sim::all_complete));
        sim.log
    };
    let a = run(21);
    assert_eq!(a, run(21), "identical inputs, identical actions");
    assert_ne!(a, run(22), "the seed drives the random choices");
}

/// A pipeline sized from the measured rate alone cannot grow past a round trip longer than
/// `request_queue_time` (the rate it measures is the one its depth allows): the measured round
/// trip sets its floor, for a plain seed and for a super-seed's reveals alike.
#[test]
fn a_lone_leecher_fills_a_long_round_trip() {
    for super_seed in [false, true] {
        let content = Content::new(256 * 1024, 16 * MIB, 8);
        let specs = [NodeSpec::seed(8 * MIB), NodeSpec::leecher(8 * MIB)];
        let config = SwarmConfig {
            super_seed,
            ..SwarmConfig::default()
        };
        let mut sim = Sim::new(content, &specs, config, 1)
            .with_latency(Duration::from_millis(150))
            .lean();
        sim.connect_all();
        assert!(sim.run(Duration::from_secs(600), Sim::all_complete));
        // 2 s at the link rate; a pipeline stuck at its minimum depth takes ~40 s.
        let done = sim.nodes[1].completed_at.unwrap();
        assert!(
            done < Duration::from_secs(8),
            "super_seed {super_seed}: {done:?}"
        );
    }
}
