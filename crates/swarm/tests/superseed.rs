//! Super-seeding: scripted tests of how an initial seed reveals its pieces, and simulated
//! swarms that show what it is for.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use shoal_swarm::{Action, Event, PeerKey, SwarmConfig};
use shoal_wire::{Bitfield, BlockRef, HaveState, Message};
use support::{Content, Driver, NodeSpec, Sim, geometry, sent_to};

const MIB: u64 = 1 << 20;

/// An initial seed of 16 pieces of 4 blocks, super-seeding with the defaults (2 peers at once).
fn super_seed() -> Driver {
    let g = geometry(16, 4);
    Driver::new(SwarmConfig::default(), g, Bitfield::full(16), 3)
}

/// The pieces revealed (announced with Have) to `peer` among `actions`.
fn revealed(actions: &[Action], peer: u64) -> Vec<u32> {
    sent_to(actions, peer)
        .into_iter()
        .filter_map(|m| match m {
            Message::Have(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn block(piece: u32, index: u32) -> BlockRef {
    BlockRef {
        piece,
        offset: index * 16384,
        length: 16384,
    }
}

/// `peer` asks for every block of `piece` and we upload them all.
fn fetch(d: &mut Driver, peer: u64, piece: u32) -> Vec<Action> {
    let mut out = Vec::new();
    for i in 0..4 {
        let block = block(piece, i);
        out.extend(d.msg(peer, Message::Request(block)));
        out.extend(d.event(Event::Uploaded {
            peer: PeerKey(peer),
            block,
        }));
    }
    out
}

#[test]
fn an_initial_seed_hides_its_pieces_and_reveals_one_per_peer_in_turn() {
    let mut d = super_seed();
    assert_eq!(d.torrent.handshake_have(), HaveState::None);
    assert!(d.torrent.haves_since(&HaveState::None).is_empty());
    let mut shown = Vec::new();
    for peer in 1..=3 {
        let out = d.connect(peer, HaveState::None);
        let pieces = revealed(&out, peer);
        if peer <= 2 {
            assert_eq!(pieces.len(), 1, "peer {peer}: one piece in its turn");
            assert!(sent_to(&out, peer).contains(&Message::Unchoke));
            shown.extend(pieces);
        } else {
            assert!(sent_to(&out, peer).is_empty(), "two turns at a time");
        }
    }
    assert_ne!(shown[0], shown[1], "each piece to one peer");

    // Peer 2 asks for its piece (so our upload does not run dry, which would widen the turns);
    // peer 1 takes its own: its turn ends and peer 3's begins, with a piece not shown yet.
    for i in 0..4 {
        d.msg(2, Message::Request(block(shown[1], i)));
    }
    let out = fetch(&mut d, 1, shown[0]);
    assert!(
        revealed(&out, 1).is_empty(),
        "peer 3 waits: no second piece"
    );
    let third = revealed(&out, 3);
    assert_eq!(third.len(), 1);
    assert!(!shown.contains(&third[0]));
    assert!(sent_to(&out, 3).contains(&Message::Unchoke));
}

#[test]
fn every_piece_is_revealed_once_before_any_twice() {
    let mut d = super_seed();
    // (peer, piece) in the order revealed; every piece a peer is shown, it takes.
    let mut shown: Vec<(u64, u32)> = Vec::new();
    for peer in 1..=4 {
        let out = d.connect(peer, HaveState::None);
        shown.extend(revealed(&out, peer).into_iter().map(|p| (peer, p)));
    }
    let mut next = 0;
    while shown.len() < 16 && next < shown.len() {
        let (peer, piece) = shown[next];
        let mut out = fetch(&mut d, peer, piece);
        out.extend(d.msg(peer, Message::Have(piece)));
        for p in 1..=4 {
            shown.extend(revealed(&out, p).into_iter().map(|x| (p, x)));
        }
        next += 1;
    }
    let distinct: BTreeSet<u32> = shown.iter().map(|(_, p)| *p).collect();
    assert_eq!(distinct.len(), 16, "{shown:?}");
    assert_eq!(shown.len(), 16);
}

#[test]
fn peers_that_pass_their_pieces_on_get_the_next_turn() {
    let mut d = super_seed();
    let a = revealed(&d.connect(1, HaveState::None), 1)[0];
    let b = revealed(&d.connect(2, HaveState::None), 2)[0];
    d.connect(3, HaveState::None);
    let out = fetch(&mut d, 1, a);
    assert_eq!(revealed(&out, 3).len(), 1, "peer 1's turn went to peer 3");
    d.msg(1, Message::Have(a));
    // Peer 3 got b from peer 2 (who took part of it already, say); nobody has a but peer 1.
    d.msg(3, Message::Have(b));
    // Peer 2's turn ends. Peer 1 waited longer, but peer 2 passed its piece on.
    let out = fetch(&mut d, 2, b);
    assert!(revealed(&out, 1).is_empty());
    assert_eq!(revealed(&out, 2).len(), 1);
}

#[test]
fn a_not_interested_crossing_our_have_does_not_end_the_turn() {
    let mut d = super_seed();
    let piece = revealed(&d.connect(1, HaveState::None), 1)[0];
    // Sent before our Have arrived: the peer stays unchoked, in its turn...
    assert!(sent_to(&d.msg(1, Message::NotInterested), 1).is_empty());
    assert!(sent_to(&d.msg(1, Message::Interested), 1).is_empty());
    // ...and gets its piece.
    let out = fetch(&mut d, 1, piece);
    let served = out
        .iter()
        .filter(|a| matches!(a, Action::ServeRequest { .. }))
        .count();
    assert_eq!(served, 4);
}

#[test]
fn a_seed_without_super_seeding_or_one_that_finished_a_download_shows_everything() {
    let g = geometry(4, 1);
    let plain = SwarmConfig {
        super_seed: false,
        ..SwarmConfig::default()
    };
    let d = Driver::new(plain, g, Bitfield::full(4), 1);
    assert_eq!(d.torrent.handshake_have(), HaveState::All);
    let mut bits = Bitfield::new(4);
    bits.set(2, true);
    assert_eq!(
        d.torrent.haves_since(&HaveState::Bitfield(bits)),
        [0, 1, 3],
        "pieces verified after the handshake went out"
    );

    let content = Content::new(g.piece_length(), g.total_size(), 0);
    let mut d = Driver::new(SwarmConfig::default(), g, Bitfield::new(4), 1);
    d.connect(1, HaveState::All);
    let mut pending = support::requests_to(&d.msg(1, Message::Unchoke), 1);
    while let Some(r) = pending.pop() {
        let out = d.msg(1, Message::Piece(content.block(r)));
        pending.extend(support::requests_to(&d.settle(out, true), 1));
    }
    assert!(d.torrent.is_complete());
    assert_eq!(d.torrent.handshake_have(), HaveState::All);
}

#[test]
fn verified_pieces_are_announced_to_peers_that_have_them_unless_they_are_seeds() {
    // A super-seed announces only what it revealed: it learns that its pieces spread from
    // the Haves of peers that "have" them already in our eyes.
    let g = geometry(2, 1);
    let content = Content::new(g.piece_length(), g.total_size(), 0);
    let mut d = Driver::new(SwarmConfig::default(), g, Bitfield::new(2), 1);
    d.connect(1, HaveState::None);
    d.msg(1, Message::Have(0));
    d.connect(2, HaveState::All);
    d.connect(3, HaveState::None);
    let r = support::requests_to(&d.msg(1, Message::Unchoke), 1)[0];
    let out = d.msg(1, Message::Piece(content.block(r)));
    let out = d.settle(out, true);
    assert!(sent_to(&out, 1).contains(&Message::Have(0)), "partial peer");
    assert!(
        sent_to(&out, 3).contains(&Message::Have(0)),
        "peer lacking it"
    );
    assert!(
        !sent_to(&out, 2).contains(&Message::Have(0)),
        "a seed needs no news"
    );
}

/// A capped initial seed and capped leechers: super-seeding makes the seed upload each piece
/// about once, where a plain seed uploads many pieces several times.
#[test]
fn a_super_seed_uploads_each_piece_about_once() {
    let seed_copies = |super_seed: bool| {
        let content = Content::new(64 * 1024, 4 * MIB, 5);
        let mut specs = vec![NodeSpec::seed(MIB)];
        specs.extend((0..8).map(|_| NodeSpec::leecher(MIB)));
        let config = SwarmConfig {
            super_seed,
            ..SwarmConfig::default()
        };
        let mut sim = Sim::new(content, &specs, config, 2)
            .with_latency(Duration::from_millis(2))
            .lean();
        sim.connect_all();
        assert!(sim.run(Duration::from_secs(600), Sim::all_complete));
        let uploaded = sim.nodes[0].torrent.stats().bytes_uploaded;
        uploaded as f64 / (4 * MIB) as f64
    };
    let with = seed_copies(true);
    let without = seed_copies(false);
    assert!(with < 1.2, "super-seed uploaded {with:.2} copies");
    assert!(
        without > with,
        "plain seed {without:.2}, super-seed {with:.2}"
    );
}

/// Peers that pass nothing on (free-riders) wait behind those that do for the seed's turns: the
/// seed's scarce upload goes mostly to peers that spread it.
#[test]
fn a_super_seed_serves_free_riders_last() {
    let content = Content::new(256 * 1024, 16 * MIB, 6);
    let mut specs = vec![NodeSpec::seed(512 * 1024)];
    specs.extend((0..7).map(|_| NodeSpec::leecher(512 * 1024)));
    specs.extend((0..3).map(|_| NodeSpec::free_rider(512 * 1024)));
    let mut sim = Sim::new(content, &specs, SwarmConfig::default(), 4)
        .with_latency(Duration::from_millis(2))
        .lean();
    sim.connect_all();
    // What the seed gave each peer while the sharers were downloading: read when the first of
    // them completes (a finished peer is soon dropped by the seed, both having everything).
    let a_sharer_done = |s: &Sim| s.nodes[1..8].iter().any(|n| n.torrent.is_complete());
    assert!(sim.run(Duration::from_secs(900), a_sharer_done));
    let from_seed = |peer: u64| {
        sim.nodes[0]
            .torrent
            .peer(PeerKey(peer))
            .map_or(0, |p| p.bytes_uploaded)
    };
    let least_to_a_sharer = (1..8).map(from_seed).min().unwrap();
    let most_to_a_rider = (8..11).map(from_seed).max().unwrap();
    // Every sharer got more than any free-rider (about twice as much, for these seeds).
    assert!(
        most_to_a_rider < least_to_a_sharer,
        "sharers got at least {least_to_a_sharer} B from the seed, a free-rider {most_to_a_rider} B"
    );
    assert!(sim.run(Duration::from_secs(900), Sim::all_complete));
}
