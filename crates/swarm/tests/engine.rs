//! Scripted engine tests for the download side: handshake contract, request pipeline,
//! timeouts, snubbing, end game, protocol violations.

mod support;

use std::time::Duration;

use shoal_swarm::{Action, DisconnectReason, Event, PeerKey, SwarmConfig};
use shoal_wire::{Bitfield, BlockRef, HaveState, Message, MessageKind};
use support::{Content, Driver, cancels_to, geometry, handshake, requests_to, sent_to};

fn leecher(config: SwarmConfig, pieces: u64, blocks: u64) -> (Driver, Content) {
    let g = geometry(pieces, blocks);
    let content = Content::new(g.piece_length(), g.total_size(), 0);
    let d = Driver::new(config, g, Bitfield::new(g.num_pieces()), 1);
    (d, content)
}

#[test]
fn nothing_is_sent_before_the_peers_handshake() {
    let (mut d, _) = leecher(SwarmConfig::default(), 4, 2);
    assert_eq!(d.torrent.handshake_have(), HaveState::None);
    assert!(
        d.event(Event::PeerConnected { peer: PeerKey(1) })
            .is_empty()
    );
    assert!(
        d.msg(1, handshake(HaveState::None)).is_empty(),
        "nothing to want"
    );
    assert_eq!(
        sent_to(&d.msg(1, Message::Have(2)), 1),
        [Message::Interested]
    );
    let requests = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert_eq!(requests.iter().map(|r| r.piece).collect::<Vec<_>>(), [2, 2]);

    d.event(Event::PeerConnected { peer: PeerKey(2) });
    let out = d.msg(2, Message::Interested);
    assert_eq!(
        out,
        [Action::Disconnect {
            peer: PeerKey(2),
            reason: DisconnectReason::MessageBeforeHandshake {
                kind: MessageKind::Interested
            },
        }]
    );
    assert!(
        d.msg(2, Message::Interested).is_empty(),
        "a dropped peer is forgotten"
    );
}

#[test]
fn pipeline_grows_with_the_measured_rate() {
    let (mut d, content) = leecher(SwarmConfig::default(), 64, 16);
    d.connect(1, HaveState::All);
    let mut in_flight = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert_eq!(
        in_flight.len(),
        8,
        "the minimum depth before any rate is known"
    );
    let mut depths = Vec::new();
    // A peer that answers every request within 10 ms: ~13 MB/s at depth 8, more as it grows.
    while depths.last() != Some(&256) && depths.len() < 20 {
        d.advance(Duration::from_millis(10));
        let mut next = Vec::new();
        for r in std::mem::take(&mut in_flight) {
            let out = d.msg(1, Message::Piece(content.block(r)));
            let out = d.settle(out, true);
            next.extend(requests_to(&out, 1));
        }
        in_flight = next;
        let snapshot = d.torrent.peer(PeerKey(1)).unwrap();
        assert!(snapshot.outstanding_requests <= 256);
        depths.push(snapshot.outstanding_requests);
    }
    // 8, 8, 12, 18, 27, ... (x1.5 a round trip while the rate is measured over the first half
    // second), 256 (the cap).
    assert!(depths.windows(2).all(|w| w[1] >= w[0]), "grows: {depths:?}");
    assert!(depths[2] > 8, "{depths:?}");
    assert_eq!(*depths.last().unwrap(), 256, "{depths:?}");
    assert_eq!(d.torrent.peer(PeerKey(1)).unwrap().queue_depth, 256);
    assert!(d.torrent.stats().download_rate > 0);
}

#[test]
fn late_requests_are_reissued_and_the_loser_cancelled() {
    let config = SwarmConfig {
        endgame_extra_copies: 0,
        ..SwarmConfig::default()
    };
    let (mut d, content) = leecher(config, 1, 4);
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::All);
    let to_1 = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert_eq!(to_1.len(), 4);
    assert!(
        d.msg(2, Message::Unchoke).is_empty(),
        "everything is requested from 1"
    );
    assert!(d.advance(Duration::from_secs(19)).is_empty());
    assert_eq!(
        d.torrent.poll_timeout(),
        Some(d.now + Duration::from_secs(1))
    );
    let out = d.advance(Duration::from_secs(1));
    let to_2 = requests_to(&out, 2);
    assert_eq!(to_2, to_1, "timed-out requests go to the other peer");
    // Peer 2 answers first: peer 1's copy is cancelled.
    let out = d.msg(2, Message::Piece(content.block(to_2[0])));
    assert_eq!(cancels_to(&out, 1), [to_2[0]]);
    // Peer 1's copy crosses the Cancel: no violation, counted as duplicate.
    let out = d.msg(1, Message::Piece(content.block(to_1[0])));
    assert!(!out.iter().any(|a| matches!(a, Action::Disconnect { .. })));
    assert_eq!(d.torrent.stats().duplicate_bytes, u64::from(to_1[0].length));
}

#[test]
fn silent_peers_are_snubbed_and_their_blocks_move() {
    let (mut d, content) = leecher(SwarmConfig::default(), 4, 4);
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::All);
    let to_1 = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert_eq!(to_1.len(), SwarmConfig::default().min_queue_depth);
    d.advance(Duration::from_secs(30));
    assert!(!d.torrent.peer(PeerKey(1)).unwrap().snubbed);
    let out = d.advance(Duration::from_secs(30));
    let snap = d.torrent.peer(PeerKey(1)).unwrap();
    assert!(snap.snubbed);
    let mut cancelled = cancels_to(&out, 1);
    cancelled.sort();
    let mut expected = to_1.clone();
    expected.sort();
    assert_eq!(cancelled, expected);
    let again = requests_to(&out, 1);
    assert_eq!(again.len(), 1, "a snubbed peer keeps one request in flight");
    // Peer 2 unchokes and gets the rest of the snubbed peer's blocks first.
    let to_2 = requests_to(&d.msg(2, Message::Unchoke), 2);
    for r in to_1.iter().filter(|r| **r != again[0]) {
        assert!(to_2.contains(r), "{r:?} re-issued");
    }
    // A block from the snubbed peer ends the snub.
    d.msg(1, Message::Piece(content.block(again[0])));
    assert!(!d.torrent.peer(PeerKey(1)).unwrap().snubbed);
}

#[test]
fn end_game_requests_bounded_copies_and_cancels() {
    let (mut d, content) = leecher(SwarmConfig::default(), 1, 4);
    for peer in 1..=4 {
        d.connect(peer, HaveState::All);
    }
    let to_1 = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert_eq!(to_1.len(), 4);
    assert!(d.torrent.stats().in_endgame);
    assert_eq!(requests_to(&d.msg(2, Message::Unchoke), 2).len(), 4);
    assert_eq!(requests_to(&d.msg(3, Message::Unchoke), 3).len(), 4);
    assert!(
        requests_to(&d.msg(4, Message::Unchoke), 4).is_empty(),
        "3 copies at most"
    );

    let out = d.msg(2, Message::Piece(content.block(to_1[0])));
    assert_eq!(cancels_to(&out, 1), [to_1[0]]);
    assert_eq!(cancels_to(&out, 3), [to_1[0]]);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::WriteBlock {
            peer: PeerKey(2),
            ..
        }
    )));
    // The other blocks still have their 3 copies: peer 4 gets none.
    assert!(requests_to(&out, 4).is_empty());

    let mut rest = Vec::new();
    for r in &to_1[1..] {
        rest.extend(d.msg(1, Message::Piece(content.block(*r))));
    }
    let crossed = d.msg(3, Message::Piece(content.block(to_1[0])));
    assert!(crossed.is_empty(), "a block crossing our Cancel is fine");
    let mut all = rest;
    all.splice(0..0, out);
    let out = d.settle(all, true);
    assert!(out.contains(&Action::Completed));
    for peer in 1..=4 {
        assert!(sent_to(&out, peer).contains(&Message::NotInterested));
    }
    let stats = d.torrent.stats();
    assert!(stats.complete && !stats.in_endgame);
    assert_eq!(stats.duplicate_bytes, u64::from(to_1[0].length));
    assert!(stats.time_to_first_byte.is_some() && stats.time_to_complete.is_some());
}

#[test]
fn choke_releases_requests_to_other_peers() {
    let config = SwarmConfig {
        endgame_extra_copies: 0,
        ..SwarmConfig::default()
    };
    let (mut d, content) = leecher(config, 2, 2);
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::All);
    let to_1 = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert_eq!(to_1.len(), 4);
    assert!(d.msg(2, Message::Unchoke).is_empty());
    // Peer 1 chokes: its blocks go to peer 2.
    let out = d.msg(1, Message::Choke);
    let mut moved = requests_to(&out, 2);
    moved.sort();
    let mut expected = to_1.clone();
    expected.sort();
    assert_eq!(moved, expected);
    // Rejects and blocks still on the way from peer 1 are fine; its block wins.
    assert!(d.msg(1, Message::Reject(to_1[1])).is_empty());
    let late = d.msg(1, Message::Piece(content.block(to_1[0])));
    assert!(late.iter().any(|a| matches!(a, Action::WriteBlock { .. })));
    assert_eq!(cancels_to(&late, 2), [to_1[0]]);
    assert!(d.torrent.peer(PeerKey(1)).is_some());
}

#[test]
fn rejected_blocks_go_to_another_peer() {
    let config = SwarmConfig {
        endgame_extra_copies: 0,
        ..SwarmConfig::default()
    };
    let (mut d, _) = leecher(config, 2, 2);
    d.connect(1, HaveState::All);
    d.connect(2, HaveState::All);
    let to_1 = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert!(d.msg(2, Message::Unchoke).is_empty());
    let out = d.msg(1, Message::Reject(to_1[0]));
    assert_eq!(requests_to(&out, 2), [to_1[0]]);
    assert!(requests_to(&out, 1).is_empty());
    assert_eq!(d.torrent.peer(PeerKey(1)).unwrap().outstanding_requests, 3);
}

#[test]
fn a_sole_source_that_rejected_is_asked_again() {
    let (mut d, content) = leecher(SwarmConfig::default(), 1, 2);
    d.connect(1, HaveState::All);
    let rs = requests_to(&d.msg(1, Message::Unchoke), 1);
    assert_eq!(rs.len(), 2);
    assert!(requests_to(&d.msg(1, Message::Reject(rs[0])), 1).is_empty());
    let out = d.advance(Duration::from_secs(10));
    assert_eq!(
        requests_to(&out, 1),
        [rs[0]],
        "asked again at the next rechoke"
    );
    let mut out = d.msg(1, Message::Piece(content.block(rs[0])));
    out.extend(d.msg(1, Message::Piece(content.block(rs[1]))));
    assert!(d.settle(out, true).contains(&Action::Completed));
}

#[test]
fn protocol_violations_drop_the_peer() {
    let (mut d, content) = leecher(SwarmConfig::default(), 4, 2);
    let block = |piece| BlockRef {
        piece,
        offset: 0,
        length: 16384,
    };
    d.connect(1, HaveState::All);
    for piece in 0..8 {
        assert!(
            d.msg(1, Message::Piece(content.block(block(piece % 4))))
                .is_empty()
        );
    }
    let out = d.msg(1, Message::Piece(content.block(block(0))));
    assert_eq!(
        out,
        [Action::Disconnect {
            peer: PeerKey(1),
            reason: DisconnectReason::UnrequestedBlocks { count: 9 }
        }]
    );

    d.connect(2, HaveState::None);
    let out = d.msg(2, Message::Have(4));
    assert!(matches!(
        out[..],
        [Action::Disconnect {
            reason: DisconnectReason::HaveOutOfRange {
                piece: 4,
                num_pieces: 4
            },
            ..
        }]
    ));

    d.connect(3, HaveState::None);
    let out = d.msg(3, handshake(HaveState::None));
    assert!(matches!(
        out[..],
        [Action::Disconnect {
            reason: DisconnectReason::SecondHandshake,
            ..
        }]
    ));

    d.event(Event::PeerConnected { peer: PeerKey(4) });
    let out = d.msg(4, handshake(HaveState::Bitfield(Bitfield::new(5))));
    assert!(matches!(
        out[..],
        [Action::Disconnect {
            reason: DisconnectReason::BitfieldLength { .. },
            ..
        }]
    ));

    d.connect(5, HaveState::None);
    for _ in 0..1000 {
        d.msg(5, Message::Interested);
        d.msg(5, Message::KeepAlive);
    }
    assert!(
        d.torrent.peer(PeerKey(5)).is_some(),
        "interested spam is fine"
    );
    assert_eq!(d.torrent.stats().peers, 1);
}

#[test]
fn reconnecting_with_the_same_key_starts_over() {
    let (mut d, _) = leecher(SwarmConfig::default(), 4, 2);
    d.connect(1, HaveState::All);
    d.msg(1, Message::Unchoke);
    let depth = SwarmConfig::default().min_queue_depth;
    assert_eq!(
        d.torrent.peer(PeerKey(1)).unwrap().outstanding_requests,
        depth
    );
    d.event(Event::PeerConnected { peer: PeerKey(1) });
    let snap = d.torrent.peer(PeerKey(1)).unwrap();
    assert!(!snap.handshaken && snap.outstanding_requests == 0 && snap.peer_choking);
    // Its blocks were released: another peer gets them.
    d.connect(2, HaveState::All);
    assert_eq!(requests_to(&d.msg(2, Message::Unchoke), 2).len(), depth);
    d.event(Event::PeerDisconnected { peer: PeerKey(9) });
    assert_eq!(d.torrent.stats().peers, 2);
}
