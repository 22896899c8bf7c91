//! Test support shared by the engine tests (and the efficiency benchmark): a scripted driver
//! for one engine, and a discrete-event network that wires several engines together over fake
//! storage ([`sim`]).

#![allow(dead_code, unused_imports)] // each test file uses a different part

mod sim;

pub use sim::{NodeSpec, Sim};

use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_metainfo::{InfoHash, PieceGeometry};
use shoal_swarm::{Action, Event, PeerKey, SwarmConfig, Torrent};
use shoal_wire::{Bitfield, Block, BlockRef, Handshake, HaveState, Message, PROTOCOL_VERSION};

pub fn handshake(have: HaveState) -> Message {
    Message::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        info_hash: InfoHash([7; 20]),
        have,
    })
}

/// Known content: byte `i` of the torrent is a hash of `i` and the seed.
#[derive(Debug, Clone)]
pub struct Content {
    pub geometry: PieceGeometry,
    pub data: Vec<u8>,
}

impl Content {
    pub fn new(piece_length: u64, total: u64, seed: u64) -> Self {
        let data = (0..total)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 7) as u8)
            .collect();
        Self {
            geometry: PieceGeometry::new(piece_length, total).unwrap(),
            data,
        }
    }

    pub fn range(&self, piece: u32, offset: u32, length: u32) -> &[u8] {
        let start = (self.geometry.piece_offset(piece) + u64::from(offset)) as usize;
        &self.data[start..start + length as usize]
    }

    pub fn block(&self, r: BlockRef) -> Block {
        Block {
            piece: r.piece,
            offset: r.offset,
            data: Bytes::copy_from_slice(self.range(r.piece, r.offset, r.length)),
        }
    }
}

/// One engine driven by hand: events in, actions out.
#[derive(Debug)]
pub struct Driver {
    pub torrent: Torrent,
    pub now: Instant,
    pub start: Instant,
}

impl Driver {
    pub fn new(config: SwarmConfig, geometry: PieceGeometry, have: Bitfield, seed: u64) -> Self {
        let now = Instant::now();
        Self {
            torrent: Torrent::new(config, geometry, have, seed, now).unwrap(),
            now,
            start: now,
        }
    }

    pub fn advance(&mut self, by: Duration) -> Vec<Action> {
        self.now += by;
        self.torrent.handle_timeout(self.now);
        self.drain()
    }

    pub fn event(&mut self, event: Event) -> Vec<Action> {
        self.torrent.handle(self.now, event);
        self.drain()
    }

    pub fn msg(&mut self, peer: u64, message: Message) -> Vec<Action> {
        self.event(Event::Message {
            peer: PeerKey(peer),
            message,
        })
    }

    /// Connects a peer and delivers its handshake.
    pub fn connect(&mut self, peer: u64, have: HaveState) -> Vec<Action> {
        let mut out = self.event(Event::PeerConnected {
            peer: PeerKey(peer),
        });
        out.extend(self.msg(peer, handshake(have)));
        out
    }

    /// Answers storage actions (writes succeed; `verify_ok` decides verification) until none
    /// are left; returns every other action, in order.
    pub fn settle(&mut self, actions: Vec<Action>, verify_ok: bool) -> Vec<Action> {
        let mut pending: std::collections::VecDeque<Action> = actions.into();
        let mut out = Vec::new();
        while let Some(action) = pending.pop_front() {
            let next = match action {
                Action::WriteBlock { block, .. } => self.event(Event::BlockWritten {
                    block: block.block_ref(),
                    ok: true,
                }),
                Action::VerifyPiece { piece } => self.event(Event::PieceVerified {
                    piece,
                    ok: verify_ok,
                }),
                other => {
                    out.push(other);
                    continue;
                }
            };
            pending.extend(next);
        }
        out
    }

    pub fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.torrent.poll_action()).collect()
    }
}

pub fn geometry(pieces: u64, blocks_per_piece: u64) -> PieceGeometry {
    let piece = blocks_per_piece * u64::from(shoal_metainfo::BLOCK_SIZE);
    PieceGeometry::new(piece, pieces * piece).unwrap()
}

/// The messages sent to `peer` among `actions`.
pub fn sent_to(actions: &[Action], peer: u64) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { peer: p, message } if p.0 == peer => Some(message.clone()),
            _ => None,
        })
        .collect()
}

pub fn requests_to(actions: &[Action], peer: u64) -> Vec<BlockRef> {
    sent_to(actions, peer)
        .into_iter()
        .filter_map(|m| match m {
            Message::Request(r) => Some(r),
            _ => None,
        })
        .collect()
}

pub fn cancels_to(actions: &[Action], peer: u64) -> Vec<BlockRef> {
    sent_to(actions, peer)
        .into_iter()
        .filter_map(|m| match m {
            Message::Cancel(r) => Some(r),
            _ => None,
        })
        .collect()
}
