//! Test support shared by the engine tests: a scripted driver for one engine, and a tiny
//! discrete-event network that wires several engines together over fake storage.

#![allow(dead_code)] // each test file uses a different part

use std::collections::{BTreeMap, BTreeSet};
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

/// How one simulated node behaves.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    pub seed: bool,
    /// Upload bandwidth in bytes per second (Piece messages queue behind each other).
    pub upload_rate: u64,
    /// Serves garbage instead of the content.
    pub corrupt: bool,
}

impl NodeSpec {
    pub fn seed(upload_rate: u64) -> Self {
        Self {
            seed: true,
            upload_rate,
            corrupt: false,
        }
    }
    pub fn leecher(upload_rate: u64) -> Self {
        Self {
            seed: false,
            upload_rate,
            corrupt: false,
        }
    }
}

#[derive(Debug)]
pub struct SimNode {
    pub torrent: Torrent,
    pub storage: Vec<u8>,
    pub spec: NodeSpec,
    upload_busy_until: Instant,
    pub completed_at: Option<Duration>,
    pub banned: BTreeSet<usize>,
    pub disconnected: BTreeSet<usize>,
}

/// A discrete-event network: every message takes `latency`, Piece messages also queue behind
/// the sender's upload bandwidth. Storage is a byte vector per node; verification compares a
/// piece with the known content.
#[derive(Debug)]
pub struct Sim {
    pub content: Content,
    pub nodes: Vec<SimNode>,
    pub start: Instant,
    pub now: Instant,
    latency: Duration,
    queue: BTreeMap<(Instant, u64), (usize, Event)>,
    seq: u64,
    links: BTreeSet<(usize, usize)>,
    /// Every action every node took: (time since start, node, summary).
    pub log: Vec<(Duration, usize, String)>,
}

impl Sim {
    pub fn new(content: Content, specs: &[NodeSpec], config: SwarmConfig, seed: u64) -> Self {
        let start = Instant::now();
        let n = content.geometry.num_pieces();
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let have = if spec.seed {
                    Bitfield::full(n)
                } else {
                    Bitfield::new(n)
                };
                let storage = if spec.seed {
                    content.data.clone()
                } else {
                    vec![0; content.data.len()]
                };
                SimNode {
                    torrent: Torrent::new(
                        config.clone(),
                        content.geometry,
                        have,
                        seed + i as u64,
                        start,
                    )
                    .unwrap(),
                    storage,
                    spec: *spec,
                    upload_busy_until: start,
                    completed_at: None,
                    banned: BTreeSet::new(),
                    disconnected: BTreeSet::new(),
                }
            })
            .collect();
        Self {
            content,
            nodes,
            start,
            now: start,
            latency: Duration::from_millis(20),
            queue: BTreeMap::new(),
            seq: 0,
            links: BTreeSet::new(),
            log: Vec::new(),
        }
    }

    fn schedule(&mut self, at: Instant, node: usize, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), (node, event));
    }

    /// Opens a stream between `a` and `b`: each sends its handshake, then learns of the other.
    pub fn connect(&mut self, a: usize, b: usize) {
        self.links.insert((a, b));
        self.links.insert((b, a));
        for (from, to) in [(a, b), (b, a)] {
            let have = self.nodes[from].torrent.handshake_have();
            let now = self.now;
            self.nodes[from].torrent.handle(
                now,
                Event::PeerConnected {
                    peer: PeerKey(to as u64),
                },
            );
            self.schedule(
                now + self.latency,
                to,
                Event::Message {
                    peer: PeerKey(from as u64),
                    message: handshake(have),
                },
            );
        }
    }

    pub fn connect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.connect(a, b);
            }
        }
    }

    pub fn all_complete(&self) -> bool {
        self.nodes.iter().all(|n| n.torrent.is_complete())
    }

    /// Runs until `done` holds or simulated `limit` passes; returns whether `done` held.
    pub fn run(&mut self, limit: Duration, done: impl Fn(&Sim) -> bool) -> bool {
        let deadline = self.start + limit;
        loop {
            self.drain_actions();
            if done(self) {
                return true;
            }
            let next_event = self.queue.first_key_value().map(|(k, _)| k.0);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.torrent.poll_timeout())
                .min();
            let Some(next) = next_event.into_iter().chain(next_timer).min() else {
                return false;
            };
            if next > deadline {
                return false;
            }
            self.now = self.now.max(next);
            if next_event == Some(next) {
                let Some((_, (node, event))) = self.queue.pop_first() else {
                    continue;
                };
                let from = match &event {
                    Event::Message { peer, .. } => Some(peer.0 as usize),
                    _ => None,
                };
                if from.is_some_and(|f| !self.links.contains(&(f, node))) {
                    continue; // the stream is closed
                }
                let now = self.now;
                self.nodes[node].torrent.handle(now, event);
            } else {
                let now = self.now;
                for node in &mut self.nodes {
                    if node.torrent.poll_timeout().is_some_and(|t| t <= now) {
                        node.torrent.handle_timeout(now);
                    }
                }
            }
        }
    }

    fn drain_actions(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.nodes.len() {
                while let Some(action) = self.nodes[i].torrent.poll_action() {
                    any = true;
                    self.apply(i, action);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn apply(&mut self, i: usize, action: Action) {
        let now = self.now;
        let summary = match &action {
            Action::WriteBlock { peer, block } => {
                format!(
                    "write {} {} {} from {}",
                    block.piece,
                    block.offset,
                    block.data.len(),
                    peer.0
                )
            }
            other => format!("{other:?}"),
        };
        self.log.push((now - self.start, i, summary));
        match action {
            Action::Send { peer, message } => {
                let to = peer.0 as usize;
                if self.links.contains(&(i, to)) {
                    let at = now + self.latency;
                    self.schedule(
                        at,
                        to,
                        Event::Message {
                            peer: PeerKey(i as u64),
                            message,
                        },
                    );
                }
            }
            Action::WriteBlock { block, .. } => {
                let start = (self.content.geometry.piece_offset(block.piece)
                    + u64::from(block.offset)) as usize;
                self.nodes[i].storage[start..start + block.data.len()].copy_from_slice(&block.data);
                let block = BlockRef {
                    piece: block.piece,
                    offset: block.offset,
                    length: block.data.len() as u32,
                };
                self.schedule(now, i, Event::BlockWritten { block, ok: true });
            }
            Action::VerifyPiece { piece } => {
                let size = self.content.geometry.piece_size(piece).unwrap();
                let start = self.content.geometry.piece_offset(piece) as usize;
                let ok = self.nodes[i].storage[start..start + size as usize]
                    == *self.content.range(piece, 0, size);
                self.schedule(now, i, Event::PieceVerified { piece, ok });
            }
            Action::ServeRequest { peer, block } => self.serve(i, peer.0 as usize, block),
            Action::Disconnect { peer, .. } | Action::Ban { peer, .. } => {
                let to = peer.0 as usize;
                if matches!(action, Action::Ban { .. }) {
                    self.nodes[i].banned.insert(to);
                } else {
                    self.nodes[i].disconnected.insert(to);
                }
                if self.links.remove(&(i, to)) {
                    self.links.remove(&(to, i));
                    self.schedule(
                        now + self.latency,
                        to,
                        Event::PeerDisconnected {
                            peer: PeerKey(i as u64),
                        },
                    );
                }
            }
            Action::Completed => self.nodes[i].completed_at = Some(now - self.start),
        }
    }

    fn serve(&mut self, i: usize, to: usize, r: BlockRef) {
        if !self.links.contains(&(i, to)) {
            return;
        }
        let node = &mut self.nodes[i];
        let start = (self.content.geometry.piece_offset(r.piece) + u64::from(r.offset)) as usize;
        let mut data = node.storage[start..start + r.length as usize].to_vec();
        if node.spec.corrupt {
            for b in &mut data {
                *b ^= 0x5a;
            }
        }
        let send_time =
            Duration::from_nanos(u64::from(r.length) * 1_000_000_000 / node.spec.upload_rate);
        let sent_at = node.upload_busy_until.max(self.now) + send_time;
        node.upload_busy_until = sent_at;
        let block = Block {
            piece: r.piece,
            offset: r.offset,
            data: Bytes::from(data),
        };
        self.schedule(
            sent_at,
            i,
            Event::Uploaded {
                peer: PeerKey(to as u64),
                block: r,
            },
        );
        self.schedule(
            sent_at + self.latency,
            to,
            Event::Message {
                peer: PeerKey(i as u64),
                message: Message::Piece(block),
            },
        );
    }
}
