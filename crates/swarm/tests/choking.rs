//! Scripted engine tests for the upload side (choker, serving, rejects) and for bans.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use shoal_swarm::{Action, BanReason, DisconnectReason, Event, PeerKey, SwarmConfig};
use shoal_wire::{Bitfield, BlockRef, HaveState, Message};
use support::{Content, Driver, geometry, requests_to, sent_to};

/// A seed that does not super-seed: the choker every seed that finished a download runs
/// (super-seeding, for seeds that start complete, has tests of its own in superseed.rs).
fn seeder(config: SwarmConfig, pieces: u64) -> Driver {
    let g = geometry(pieces, 4);
    let config = SwarmConfig {
        super_seed: false,
        ..config
    };
    Driver::new(config, g, Bitfield::full(g.num_pieces()), 3)
}

fn block(piece: u32, index: u32) -> BlockRef {
    BlockRef {
        piece,
        offset: index * 16384,
        length: 16384,
    }
}

fn unchoked(d: &Driver) -> Vec<u64> {
    d.torrent
        .peers()
        .into_iter()
        .filter(|p| !p.am_choking)
        .map(|p| p.peer.0)
        .collect()
}

#[test]
fn free_slots_are_filled_at_once() {
    let mut d = seeder(SwarmConfig::default(), 4);
    assert_eq!(d.torrent.handshake_have(), HaveState::All);
    for peer in 1..=6 {
        d.connect(peer, HaveState::None);
        let out = d.msg(peer, Message::Interested);
        let expected: &[Message] = if peer <= 5 { &[Message::Unchoke] } else { &[] };
        assert_eq!(sent_to(&out, peer), expected, "peer {peer}");
    }
    // A peer losing interest gives its slot to the waiting one.
    let out = d.msg(2, Message::NotInterested);
    assert_eq!(sent_to(&out, 2), [Message::Choke]);
    assert_eq!(sent_to(&out, 6), [Message::Unchoke]);
    assert_eq!(unchoked(&d), [1, 3, 4, 5, 6]);
    // A disconnect too.
    d.msg(2, Message::Interested);
    let out = d.event(Event::PeerDisconnected { peer: PeerKey(3) });
    assert_eq!(sent_to(&out, 2), [Message::Unchoke]);
}

#[test]
fn requests_are_served_in_a_bounded_pipeline_and_rejected_on_choke() {
    let config = SwarmConfig {
        serve_pipeline: 8,
        ..SwarmConfig::default()
    };
    let mut d = seeder(config, 4);
    d.connect(1, HaveState::None);
    d.msg(1, Message::Interested);
    let mut served = Vec::new();
    for i in 0..12 {
        for a in d.msg(1, Message::Request(block(i / 4, i % 4))) {
            if let Action::ServeRequest { block, .. } = a {
                served.push(block);
            }
        }
    }
    assert_eq!(served.len(), 8, "the serve pipeline");
    assert!(
        d.msg(1, Message::Request(block(0, 0))).is_empty(),
        "duplicate request ignored"
    );
    // Cancel of a queued request drops it; an Uploaded frees a pipeline slot.
    d.msg(1, Message::Cancel(block(2, 3)));
    let out = d.event(Event::Uploaded {
        peer: PeerKey(1),
        block: served[0],
    });
    assert_eq!(
        out,
        [Action::ServeRequest {
            peer: PeerKey(1),
            block: block(2, 0)
        }]
    );
    assert_eq!(d.torrent.stats().bytes_uploaded, 16384);
    let out = d.event(Event::ServeFailed {
        peer: PeerKey(1),
        block: served[1],
    });
    assert_eq!(sent_to(&out, 1), [Message::Reject(served[1])]);
    // Choking rejects what is still queued (BEP 6).
    let out = d.msg(1, Message::NotInterested);
    assert_eq!(
        sent_to(&out, 1),
        [Message::Choke, Message::Reject(block(2, 2))],
        "queued: 2/1 went out on ServeFailed's slot, 2/3 was cancelled"
    );
}

/// Blocks handed to the node for sending may already be on the wire, and the peer may already
/// have asked for more: only requests still waiting count against `max_incoming_requests`.
/// (Counting both rejected requests a fast peer made legitimately and stalled its download.)
#[test]
fn requests_in_the_serve_pipeline_do_not_count_against_the_queue_limit() {
    let config = SwarmConfig {
        serve_pipeline: 4,
        max_incoming_requests: 4,
        ..SwarmConfig::default()
    };
    let mut d = seeder(config, 4);
    d.connect(1, HaveState::None);
    d.msg(1, Message::Interested);
    let mut served = 0;
    let mut rejected = Vec::new();
    for i in 0..9 {
        for a in d.msg(1, Message::Request(block(i / 4, i % 4))) {
            match a {
                Action::ServeRequest { .. } => served += 1,
                Action::Send {
                    message: Message::Reject(r),
                    ..
                } => rejected.push(r),
                _ => {}
            }
        }
    }
    assert_eq!(served, 4, "the serve pipeline is full");
    assert_eq!(
        rejected,
        [block(2, 0)],
        "4 in the pipeline, 4 queued, the 9th refused"
    );
}

#[test]
fn requests_while_choked_are_rejected_then_punished() {
    let mut d = seeder(SwarmConfig::default(), 4);
    d.connect(1, HaveState::None);
    for _ in 0..300 {
        assert_eq!(
            sent_to(&d.msg(1, Message::Request(block(0, 0))), 1),
            [Message::Reject(block(0, 0))]
        );
    }
    let out = d.msg(1, Message::Request(block(0, 0)));
    assert_eq!(
        out,
        [Action::Disconnect {
            peer: PeerKey(1),
            reason: DisconnectReason::RequestsWhileChoked { count: 301 }
        }]
    );
}

#[test]
fn requests_for_pieces_we_lack_are_rejected() {
    let g = geometry(4, 4);
    let mut have = Bitfield::new(4);
    have.set(0, true);
    let mut d = Driver::new(SwarmConfig::default(), g, have, 1);
    d.connect(1, HaveState::None);
    d.msg(1, Message::Interested);
    assert_eq!(
        sent_to(&d.msg(1, Message::Request(block(1, 0))), 1),
        [Message::Reject(block(1, 0))]
    );
    let out = d.msg(1, Message::Request(block(0, 0)));
    assert_eq!(
        out,
        [Action::ServeRequest {
            peer: PeerKey(1),
            block: block(0, 0)
        }]
    );
}

#[test]
fn optimistic_unchoke_rotates_over_every_peer_and_favours_new_ones() {
    let config = SwarmConfig {
        // Rotate at every rechoke so that 100 rounds give 100 draws, and keep the first
        // group "old" and the second "new" for the whole run.
        optimistic_interval: Duration::from_secs(10),
        new_peer_period: Duration::from_secs(5000),
        ..SwarmConfig::default()
    };
    let mut d = seeder(config, 4);
    for peer in 1..=5 {
        d.connect(peer, HaveState::None);
        d.msg(peer, Message::Interested);
    }
    d.advance(Duration::from_secs(5000));
    for peer in 6..=10 {
        d.connect(peer, HaveState::None);
        d.msg(peer, Message::Interested);
    }
    let mut optimistic: BTreeMap<u64, u32> = BTreeMap::new();
    for _ in 0..100 {
        d.advance(Duration::from_secs(10));
        let peers = d.torrent.peers();
        assert_eq!(
            peers.iter().filter(|p| !p.am_choking).count(),
            5,
            "4 regular + 1 optimistic"
        );
        for p in peers.iter().filter(|p| p.optimistic) {
            *optimistic.entry(p.peer.0).or_default() += 1;
        }
    }
    assert_eq!(
        optimistic.len(),
        10,
        "every peer got the optimistic slot: {optimistic:?}"
    );
    let old: u32 = (1..=5).map(|k| optimistic[&k]).sum();
    let new: u32 = (6..=10).map(|k| optimistic[&k]).sum();
    assert_eq!(old + new, 100);
    let ratio = f64::from(new) / f64::from(old);
    assert!((2.0..5.0).contains(&ratio), "new {new}, old {old}");
}

#[test]
fn seeding_choker_prefers_peers_that_take_fastest() {
    let mut d = seeder(SwarmConfig::default(), 16);
    for peer in 1..=6 {
        d.connect(peer, HaveState::None);
        d.msg(peer, Message::Interested);
    }
    assert_eq!(unchoked(&d), [1, 2, 3, 4, 5]);
    // Peer k takes 4k blocks in the first 10 s.
    for peer in 1..=5u64 {
        for i in 0..(4 * peer as u32) {
            let r = block(i / 4, i % 4);
            d.msg(peer, Message::Request(r));
            d.event(Event::Uploaded {
                peer: PeerKey(peer),
                block: r,
            });
        }
    }
    d.advance(Duration::from_secs(10));
    let now_unchoked = unchoked(&d);
    for peer in 2..=5 {
        assert!(now_unchoked.contains(&peer), "{now_unchoked:?}");
    }
    assert_eq!(
        now_unchoked.len(),
        5,
        "one of 1 and 6 holds the optimistic slot"
    );
}

#[test]
fn leeching_choker_reciprocates_download_rate() {
    let g = geometry(32, 1);
    let content = Content::new(g.piece_length(), g.total_size(), 0);
    let mut have = Bitfield::new(32);
    have.set(0, true);
    let mut d = Driver::new(SwarmConfig::default(), g, have, 5);
    for peer in 1..=6 {
        d.connect(peer, HaveState::All);
        d.msg(peer, Message::Interested);
    }
    assert_eq!(unchoked(&d), [1, 2, 3, 4, 5]);
    // Peer 6 (choked by us) uploads the most, peer 1 nothing.
    for peer in 2..=6u64 {
        let out = d.msg(peer, Message::Unchoke);
        let rs = requests_to(&out, peer);
        for r in rs.iter().take(peer as usize - 2) {
            let out = d.msg(peer, Message::Piece(content.block(*r)));
            d.settle(out, true);
        }
    }
    d.advance(Duration::from_secs(10));
    let now_unchoked = unchoked(&d);
    for peer in 3..=6 {
        assert!(now_unchoked.contains(&peer), "{now_unchoked:?}");
    }
}

/// A leecher with one request in flight per peer, no end game, pieces of two blocks.
fn strict_leecher() -> (Driver, Content) {
    let config = SwarmConfig {
        min_queue_depth: 1,
        max_queue_depth: 1,
        endgame_extra_copies: 0,
        ..SwarmConfig::default()
    };
    let g = geometry(2, 2);
    let content = Content::new(g.piece_length(), g.total_size(), 0);
    (Driver::new(config, g, Bitfield::new(2), 1), content)
}

#[test]
fn sole_sender_of_a_corrupt_piece_is_banned_and_the_piece_refetched() {
    let (mut d, content) = strict_leecher();
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::All);
    let r = requests_to(&d.msg(1, Message::Unchoke), 1)[0];
    let out = d.msg(1, Message::Piece(content.block(r)));
    let r2 = requests_to(&out, 1)[0];
    assert_eq!(r2.piece, r.piece, "partial piece first");
    let mut out = d.settle(out, false);
    out.extend(d.msg(1, Message::Piece(content.block(r2))));
    let out = d.settle(out, false);
    assert!(out.contains(&Action::Ban {
        peer: PeerKey(1),
        reason: BanReason::SoleSenderOfCorruptPiece { piece: r.piece },
    }));
    assert!(d.torrent.peer(PeerKey(1)).is_none());
    // Peer 2 delivers everything, the failed piece included.
    let mut pending = requests_to(&d.msg(2, Message::Unchoke), 2);
    let mut fetched = Vec::new();
    while let Some(next) = pending.pop() {
        fetched.push(next);
        let out = d.msg(2, Message::Piece(content.block(next)));
        let out = d.settle(out, true);
        pending.extend(requests_to(&out, 2));
    }
    assert!(fetched.contains(&r) && fetched.contains(&r2));
    assert!(d.torrent.is_complete());
    let stats = d.torrent.stats();
    assert_eq!((stats.failed_pieces, stats.banned_peers), (1, 1));
}

#[test]
fn peers_in_two_corrupt_pieces_are_banned() {
    let (mut d, content) = strict_leecher();
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::All);
    let a = requests_to(&d.msg(1, Message::Unchoke), 1)[0];
    let b = requests_to(&d.msg(2, Message::Unchoke), 2)[0];
    assert_eq!(a.piece, b.piece);
    let mut out = d.msg(1, Message::Piece(content.block(a)));
    let c = requests_to(&out, 1)[0];
    out.extend(d.msg(2, Message::Piece(content.block(b))));
    let dd = requests_to(&out, 2)[0];
    assert_ne!(c.piece, a.piece);
    let out = d.settle(out, false);
    assert!(
        !out.iter().any(|x| matches!(x, Action::Ban { .. })),
        "one shared failure: no ban"
    );
    let mut out = d.msg(1, Message::Piece(content.block(c)));
    out.extend(d.msg(2, Message::Piece(content.block(dd))));
    let out = d.settle(out, false);
    let bans: Vec<_> = out
        .iter()
        .filter_map(|x| match x {
            Action::Ban { peer, reason } => Some((peer.0, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        bans,
        [
            (1, BanReason::CorruptPieces { pieces: 2 }),
            (2, BanReason::CorruptPieces { pieces: 2 })
        ]
    );
}

#[test]
fn a_finished_download_keeps_seeding() {
    let g = geometry(1, 2);
    let content = Content::new(g.piece_length(), g.total_size(), 0);
    let mut d = Driver::new(SwarmConfig::default(), g, Bitfield::new(1), 1);
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::None);
    let rs = requests_to(&d.msg(1, Message::Unchoke), 1);
    let mut out = Vec::new();
    for r in rs {
        out.extend(d.msg(1, Message::Piece(content.block(r))));
    }
    let out = d.settle(out, true);
    assert_eq!(sent_to(&out, 2), [Message::Have(0)]);
    assert!(out.contains(&Action::Completed));
    // Peer 1 is a seed and so are we now: nothing more to carry, its slot is freed.
    assert!(out.contains(&Action::Disconnect {
        peer: PeerKey(1),
        reason: shoal_swarm::DisconnectReason::BothComplete,
    }));
    assert!(d.torrent.peer(PeerKey(1)).is_none());
    assert_eq!(d.torrent.handshake_have(), HaveState::All);
    d.msg(2, Message::Interested);
    let out = d.msg(2, Message::Request(block(0, 1)));
    assert_eq!(
        out,
        [Action::ServeRequest {
            peer: PeerKey(2),
            block: block(0, 1)
        }]
    );
}

#[test]
fn snubbed_peers_only_ever_get_the_optimistic_slot() {
    let g = geometry(32, 1);
    let content = Content::new(g.piece_length(), g.total_size(), 0);
    let mut have = Bitfield::new(32);
    have.set(0, true);
    let mut d = Driver::new(SwarmConfig::default(), g, have, 8);
    for peer in 1..=6 {
        d.connect(peer, HaveState::All);
        d.msg(peer, Message::Interested);
    }
    // Peer 1 is the best uploader, then goes silent with requests outstanding.
    let rs = requests_to(&d.msg(1, Message::Unchoke), 1);
    for r in &rs[..2] {
        let out = d.msg(1, Message::Piece(content.block(*r)));
        d.settle(out, true);
    }
    d.advance(Duration::from_secs(10));
    assert!(
        !d.torrent.peer(PeerKey(1)).unwrap().am_choking,
        "fastest uploader"
    );
    for _ in 0..5 {
        d.advance(Duration::from_secs(10));
    }
    assert!(d.torrent.peer(PeerKey(1)).unwrap().snubbed);
    let mut optimistic_rounds = 0;
    for _ in 0..60 {
        d.advance(Duration::from_secs(10));
        let p1 = d.torrent.peer(PeerKey(1)).unwrap();
        assert!(p1.snubbed);
        assert!(
            p1.am_choking || p1.optimistic,
            "a snubbed peer in a regular slot"
        );
        optimistic_rounds += u32::from(p1.optimistic);
    }
    assert!(optimistic_rounds > 0, "it still gets optimistic turns");
}

#[test]
fn a_free_rider_never_unchokes_and_rejects_every_request() {
    let config = SwarmConfig {
        upload: false,
        ..SwarmConfig::default()
    };
    let mut d = seeder(config, 4);
    for peer in 1..=3 {
        d.connect(peer, HaveState::None);
        assert_eq!(sent_to(&d.msg(peer, Message::Interested), peer), []);
    }
    let out = d.advance(Duration::from_secs(31));
    assert!(
        (1..=3).all(|p| sent_to(&out, p).is_empty()),
        "no rechoke unchokes: {out:?}"
    );
    assert!(unchoked(&d).is_empty());
    let request = d.msg(1, Message::Request(block(0, 0)));
    assert_eq!(sent_to(&request, 1), [Message::Reject(block(0, 0))]);
    assert!(
        !request
            .iter()
            .any(|a| matches!(a, Action::ServeRequest { .. })),
        "{request:?}"
    );
}

#[test]
fn shared_blame_survives_a_reconnection_under_the_same_key() {
    // The node gives a peer the same key when it comes back, so that leaving between two
    // corrupt pieces does not wipe its record.
    let (mut d, content) = strict_leecher();
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::All);
    let a = requests_to(&d.msg(1, Message::Unchoke), 1)[0];
    let b = requests_to(&d.msg(2, Message::Unchoke), 2)[0];
    assert_eq!(a.piece, b.piece);
    let mut out = d.msg(1, Message::Piece(content.block(a)));
    out.extend(d.msg(2, Message::Piece(content.block(b))));
    let dd = requests_to(&out, 2)[0];
    let out = d.settle(out, false);
    assert!(!out.iter().any(|x| matches!(x, Action::Ban { .. })));
    // Peer 1 leaves (its request goes back to the picker) and comes back under its old key.
    d.event(Event::PeerDisconnected { peer: PeerKey(1) });
    d.connect(1, HaveState::All);
    let c = requests_to(&d.msg(1, Message::Unchoke), 1)[0];
    assert_eq!(c.piece, dd.piece, "the partial piece first");
    let mut out = d.msg(1, Message::Piece(content.block(c)));
    out.extend(d.msg(2, Message::Piece(content.block(dd))));
    let out = d.settle(out, false);
    let bans: Vec<_> = out
        .iter()
        .filter_map(|x| match x {
            Action::Ban { peer, reason } => Some((peer.0, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        bans,
        [
            (1, BanReason::CorruptPieces { pieces: 2 }),
            (2, BanReason::CorruptPieces { pieces: 2 })
        ]
    );
}

#[test]
fn a_piece_storage_cannot_read_back_is_fetched_again_and_nobody_is_blamed() {
    let (mut d, content) = strict_leecher();
    d.connect(1, HaveState::All);
    let r = requests_to(&d.msg(1, Message::Unchoke), 1)[0];
    let mut out = d.msg(1, Message::Piece(content.block(r)));
    let r2 = requests_to(&out, 1)[0];
    out.extend(d.msg(1, Message::Piece(content.block(r2))));
    // Writes succeed; the verification is answered by hand.
    let mut verify = None;
    let mut pending = requests_to(&out, 1);
    for action in out {
        if let Action::WriteBlock { block, .. } = action {
            for next in d.event(Event::BlockWritten {
                block: block.block_ref(),
                ok: true,
            }) {
                if let Action::VerifyPiece { piece } = next {
                    verify = Some(piece);
                }
            }
        }
    }
    let piece = verify.expect("the piece was sent to be verified");
    let out = d.event(Event::PieceUnverifiable { piece });
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Ban { .. } | Action::Disconnect { .. })),
        "{out:?}"
    );
    assert!(d.torrent.peer(PeerKey(1)).is_some(), "the sender stays");
    // The same peer delivers everything, the piece that could not be read included.
    pending.extend(requests_to(&out, 1));
    pending.extend(requests_to(&d.drain(), 1));
    let mut fetched = Vec::new();
    let mut guard = 0;
    while let Some(next) = pending.pop() {
        guard += 1;
        assert!(guard < 100, "no end to the requests");
        fetched.push(next);
        let out = d.msg(1, Message::Piece(content.block(next)));
        let out = d.settle(out, true);
        pending.extend(requests_to(&out, 1));
    }
    assert!(fetched.contains(&r) && fetched.contains(&r2), "{fetched:?}");
    assert!(d.torrent.is_complete());
    let stats = d.torrent.stats();
    assert_eq!((stats.failed_pieces, stats.banned_peers), (0, 0));
}
