//! Property tests: arbitrary (geometry-valid) peer behaviour never panics the engine, never
//! makes it request what it has or serve what it lacks, and is replayed identically.

mod support;

use std::time::Duration;

use proptest::prelude::*;
use shoal_swarm::{Action, Event, PeerKey, SwarmConfig};
use shoal_wire::{Bitfield, BlockRef, HaveState, Message};
use support::{Content, Driver, handshake};

const PIECES: u32 = 6;

#[derive(Debug, Clone)]
enum Op {
    Connect(u64, u8),
    Disconnect(u64),
    Message(u64, Msg),
    Advance(u64),
    Storage(bool),
    /// The peer answers one of our requests to it with the right block.
    Answer(u64, usize),
    /// The node finishes every ServeRequest so far.
    Upload,
}

#[derive(Debug, Clone)]
enum Msg {
    Handshake(u8),
    KeepAlive,
    Have(u32),
    Interested,
    NotInterested,
    Choke,
    Unchoke,
    Request(u32, u32),
    Piece(u32, u32),
    Cancel(u32, u32),
    Reject(u32, u32),
    Uploaded(u32, u32),
}

fn msg() -> impl Strategy<Value = Msg> {
    let block = || (0..PIECES, 0u32..3);
    prop_oneof![
        1 => (0u8..4).prop_map(Msg::Handshake),
        2 => Just(Msg::KeepAlive),
        2 => (0..PIECES + 1).prop_map(Msg::Have),
        4 => Just(Msg::Interested),
        2 => Just(Msg::NotInterested),
        2 => Just(Msg::Choke),
        4 => Just(Msg::Unchoke),
        // Requests mostly for piece 0, the one we may have.
        4 => (0u32..3).prop_map(|b| Msg::Request(0, b)),
        2 => block().prop_map(|(p, b)| Msg::Request(p, b)),
        2 => block().prop_map(|(p, b)| Msg::Piece(p, b)),
        2 => block().prop_map(|(p, b)| Msg::Cancel(p, b)),
        2 => block().prop_map(|(p, b)| Msg::Reject(p, b)),
        1 => block().prop_map(|(p, b)| Msg::Uploaded(p, b)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..4, 0u8..8).prop_map(|(p, k)| Op::Connect(p, k)),
        1 => (0u64..4).prop_map(Op::Disconnect),
        6 => (0u64..4, msg()).prop_map(|(p, m)| Op::Message(p, m)),
        1 => (0u64..30_000).prop_map(Op::Advance),
        2 => any::<bool>().prop_map(Op::Storage),
        6 => (0u64..4, any::<usize>()).prop_map(|(p, i)| Op::Answer(p, i)),
        1 => Just(Op::Upload),
    ]
}

/// Runs `ops` against a fresh engine, checking invariants; returns every action.
fn run(ops: &[Op], have_first: bool) -> Vec<String> {
    // 6 pieces of 3 blocks, the last piece shorter (2 blocks, the last one 100 bytes).
    let content = Content::new(3 * 16384, 5 * 3 * 16384 + 16384 + 100, 0);
    let g = content.geometry;
    let mut have = Bitfield::new(PIECES);
    have.set(0, have_first);
    let config = SwarmConfig {
        max_queue_depth: 8,
        ..SwarmConfig::default()
    };
    let mut d = Driver::new(config, g, have, 99);
    let mut log = Vec::new();
    let mut storage = Vec::new();
    let mut requested: std::collections::BTreeMap<u64, Vec<BlockRef>> = Default::default();
    let mut serving = Vec::new();
    let block_ref = |p: u32, b: u32| {
        g.block_size(p, b).map(|length| BlockRef {
            piece: p,
            offset: b * 16384,
            length,
        })
    };
    for op in ops {
        let out = match op.clone() {
            // Mostly a full connect with the peer's handshake; sometimes the stream alone.
            Op::Connect(p, kind) => match kind % 4 {
                0 => d.event(Event::PeerConnected { peer: PeerKey(p) }),
                1 => d.connect(p, HaveState::All),
                2 => d.connect(p, HaveState::None),
                _ => {
                    let mut some = Bitfield::new(PIECES);
                    some.set(u32::from(kind) % PIECES, true);
                    some.set(5, true);
                    d.connect(p, HaveState::Bitfield(some))
                }
            },
            Op::Disconnect(p) => d.event(Event::PeerDisconnected { peer: PeerKey(p) }),
            Op::Advance(ms) => d.advance(Duration::from_millis(ms)),
            Op::Answer(p, i) => {
                let Some(list) = requested.get_mut(&p).filter(|l| !l.is_empty()) else {
                    continue;
                };
                let r = list.remove(i % list.len());
                d.msg(p, Message::Piece(content.block(r)))
            }
            Op::Upload => {
                let mut out = Vec::new();
                for (peer, block) in std::mem::take(&mut serving) {
                    out.extend(d.event(Event::Uploaded { peer, block }));
                }
                out
            }
            Op::Storage(ok) => {
                let mut out = Vec::new();
                for action in std::mem::take(&mut storage) {
                    out.extend(match action {
                        Action::WriteBlock { block, .. } => d.event(Event::BlockWritten {
                            block: shoal_wire::Block::block_ref(&block),
                            ok,
                        }),
                        Action::VerifyPiece { piece } => {
                            d.event(Event::PieceVerified { piece, ok })
                        }
                        _ => Vec::new(),
                    });
                }
                out
            }
            Op::Message(p, m) => {
                let message = match m {
                    Msg::Handshake(k) => handshake(match k {
                        0 => HaveState::All,
                        1 => HaveState::None,
                        2 => HaveState::Bitfield(Bitfield::full(PIECES)),
                        _ => HaveState::Bitfield(Bitfield::new(PIECES + 1)),
                    }),
                    Msg::KeepAlive => Message::KeepAlive,
                    Msg::Have(i) => Message::Have(i),
                    Msg::Interested => Message::Interested,
                    Msg::NotInterested => Message::NotInterested,
                    Msg::Choke => Message::Choke,
                    Msg::Unchoke => Message::Unchoke,
                    Msg::Request(i, b)
                    | Msg::Piece(i, b)
                    | Msg::Cancel(i, b)
                    | Msg::Reject(i, b)
                    | Msg::Uploaded(i, b) => {
                        let Some(r) = block_ref(i, b) else { continue };
                        match m {
                            Msg::Request(..) => Message::Request(r),
                            Msg::Piece(..) => Message::Piece(content.block(r)),
                            Msg::Cancel(..) => Message::Cancel(r),
                            Msg::Reject(..) => Message::Reject(r),
                            _ => {
                                let out = d.event(Event::Uploaded {
                                    peer: PeerKey(p),
                                    block: r,
                                });
                                log.extend(out.iter().map(|a| format!("{a:?}")));
                                continue;
                            }
                        }
                    }
                };
                d.msg(p, message)
            }
        };
        for action in &out {
            match action {
                Action::Send {
                    peer,
                    message: Message::Request(r),
                } => {
                    requested.entry(peer.0).or_default().push(*r);
                    assert!(!d.torrent.have().get(r.piece), "requested a piece we have");
                    assert!(g.contains(r.piece, r.offset, r.length));
                }
                Action::ServeRequest { peer, block } => {
                    serving.push((*peer, *block));
                    assert!(d.torrent.have().get(block.piece), "served a piece we lack");
                }
                Action::WriteBlock { .. } | Action::VerifyPiece { .. } => {
                    storage.push(action.clone())
                }
                _ => {}
            }
            log.push(match action {
                Action::WriteBlock { peer, block } => {
                    format!("write {} {} {}", peer.0, block.piece, block.offset)
                }
                other => format!("{other:?}"),
            });
        }
        for peer in d.torrent.peers() {
            assert!(peer.outstanding_requests <= 8);
        }
        // Timers never ask to run again at once (no busy loop in the node).
        d.torrent.handle_timeout(d.now);
        log.extend(d.drain().iter().map(|a| format!("{a:?}")));
        assert!(d.torrent.poll_timeout().is_none_or(|t| t > d.now));
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_peers_never_break_the_engine(ops in prop::collection::vec(op(), 0..120), have_first: bool) {
        let first = run(&ops, have_first);
        prop_assert_eq!(first, run(&ops, have_first));
    }
}
