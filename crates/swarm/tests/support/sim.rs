//! A discrete-event network of engines over fake storage.
//!
//! The network model, kept honest on purpose (the efficiency benchmark measures against it):
//!
//! - Every message takes `latency` (20 ms unless set) from sender to receiver.
//! - Each node has one uplink of `upload_rate` bytes per second, shared by all its peers: a
//!   served block is queued behind every block the node has already committed to send, to
//!   anyone, and leaves when the uplink has sent it. Downloads are not capped.
//! - Messages on one link keep their order: a Have, Request or Choke queued behind Piece
//!   messages to the same peer leaves only after them, as on a real stream.
//! - A node may join late ([`NodeSpec::joining_at`]): its engine starts then, and it connects to
//!   every node already there (as a tracker or DHT lookup would give it).
//! - Storage is a byte vector per node, or — in [`Sim::lean`] mode, for large swarms — the
//!   record of which blocks were written with the right bytes. Verification checks the bytes
//!   received against the known content either way.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_swarm::{Action, Event, PeerKey, SwarmConfig, Torrent};
use shoal_wire::{Bitfield, Block, BlockRef, Message};

use super::{Content, handshake};

/// How one simulated node behaves.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    pub seed: bool,
    /// Upload bandwidth in bytes per second (Piece messages queue behind each other).
    pub upload_rate: u64,
    /// Serves garbage instead of the content.
    pub corrupt: bool,
    /// Never uploads (its engine runs with `upload: false`).
    pub free_rider: bool,
    /// When the node starts, from the start of the simulation.
    pub join_at: Duration,
}

impl NodeSpec {
    pub fn seed(upload_rate: u64) -> Self {
        Self {
            seed: true,
            upload_rate,
            corrupt: false,
            free_rider: false,
            join_at: Duration::ZERO,
        }
    }
    pub fn leecher(upload_rate: u64) -> Self {
        Self {
            seed: false,
            ..Self::seed(upload_rate)
        }
    }
    pub fn free_rider(upload_rate: u64) -> Self {
        Self {
            free_rider: true,
            ..Self::leecher(upload_rate)
        }
    }
    pub fn joining_at(self, join_at: Duration) -> Self {
        Self { join_at, ..self }
    }
}

#[derive(Debug)]
pub struct SimNode {
    pub torrent: Torrent,
    /// The node's copy of the content (empty in lean mode).
    pub storage: Vec<u8>,
    pub spec: NodeSpec,
    upload_busy_until: Instant,
    /// Time the uplink spent sending.
    pub upload_busy: Duration,
    pub joined: bool,
    pub completed_at: Option<Duration>,
    pub banned: BTreeSet<usize>,
    pub disconnected: BTreeSet<usize>,
    /// Lean mode: offsets of the blocks written with the right bytes, per unverified piece.
    written_ok: BTreeMap<u32, BTreeSet<u32>>,
    /// Seeds: the blocks served so far, until every one was.
    first_copy: BTreeSet<BlockRef>,
    /// Seeds: when the last block of the content was served for the first time, and how long
    /// the uplink had been busy by then.
    pub first_copy_at: Option<(Duration, Duration)>,
    /// When each piece passed verification here, by piece.
    pub verified_at: BTreeMap<u32, Duration>,
}

#[derive(Debug)]
enum Pending {
    Deliver(usize, Event),
    Join(usize),
}

/// A discrete-event network: see the module documentation for the model.
#[derive(Debug)]
pub struct Sim {
    pub content: Content,
    pub nodes: Vec<SimNode>,
    pub start: Instant,
    pub now: Instant,
    config: SwarmConfig,
    seed: u64,
    latency: Duration,
    lean: bool,
    keep_log: bool,
    queue: BTreeMap<(Instant, u64), Pending>,
    seq: u64,
    links: BTreeSet<(usize, usize)>,
    /// When the last Piece queued on a link leaves its sender.
    link_busy_until: BTreeMap<(usize, usize), Instant>,
    /// Each node's next engine timer, kept up to date after everything the node handles.
    timers: Vec<Option<Instant>>,
    /// Every action every node took: (time since start, node, summary).
    pub log: Vec<(Duration, usize, String)>,
}

impl Sim {
    pub fn new(content: Content, specs: &[NodeSpec], config: SwarmConfig, seed: u64) -> Self {
        let start = Instant::now();
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| SimNode {
                torrent: new_torrent(&config, &content, spec, seed + i as u64, start),
                storage: if spec.seed {
                    content.data.clone()
                } else {
                    vec![0; content.data.len()]
                },
                spec: *spec,
                upload_busy_until: start,
                upload_busy: Duration::ZERO,
                joined: spec.join_at.is_zero(),
                completed_at: None,
                banned: BTreeSet::new(),
                disconnected: BTreeSet::new(),
                written_ok: BTreeMap::new(),
                first_copy: BTreeSet::new(),
                first_copy_at: None,
                verified_at: BTreeMap::new(),
            })
            .collect();
        let mut sim = Self {
            content,
            nodes,
            start,
            now: start,
            config,
            seed,
            latency: Duration::from_millis(20),
            lean: false,
            keep_log: true,
            queue: BTreeMap::new(),
            seq: 0,
            links: BTreeSet::new(),
            link_busy_until: BTreeMap::new(),
            timers: Vec::new(),
            log: Vec::new(),
        };
        sim.timers = sim.nodes.iter().map(|n| n.torrent.poll_timeout()).collect();
        for (i, spec) in specs.iter().enumerate() {
            if !spec.join_at.is_zero() {
                sim.timers[i] = None;
                sim.push(start + spec.join_at, Pending::Join(i));
            }
        }
        sim
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Keeps no copy of the content per node (see the module documentation) and no action log:
    /// for swarms of dozens of nodes and tens of MiB.
    pub fn lean(mut self) -> Self {
        self.lean = true;
        self.keep_log = false;
        for node in &mut self.nodes {
            node.storage = Vec::new();
        }
        self
    }

    fn push(&mut self, at: Instant, pending: Pending) {
        self.seq += 1;
        self.queue.insert((at, self.seq), pending);
    }

    fn schedule(&mut self, at: Instant, node: usize, event: Event) {
        self.push(at, Pending::Deliver(node, event));
    }

    fn handle(&mut self, node: usize, event: Event) {
        let now = self.now;
        let n = &mut self.nodes[node];
        n.torrent.handle(now, event);
        self.timers[node] = n.torrent.poll_timeout();
    }

    /// Opens a stream between `a` and `b`: each sends its handshake, then learns of the other.
    pub fn connect(&mut self, a: usize, b: usize) {
        self.links.insert((a, b));
        self.links.insert((b, a));
        for (from, to) in [(a, b), (b, a)] {
            let have = self.nodes[from].torrent.handshake_have();
            self.handle(from, Event::PeerConnected { peer: key(to) });
            let at = self.now + self.latency;
            let message = handshake(have);
            self.schedule(at, to, message_from(from, message));
        }
    }

    /// Connects every pair of nodes that have joined.
    pub fn connect_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                if self.nodes[a].joined && self.nodes[b].joined {
                    self.connect(a, b);
                }
            }
        }
    }

    /// A late node starts its engine now and connects to every node already here.
    fn join(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let seed = self.seed + i as u64;
        node.torrent = new_torrent(&self.config, &self.content, &node.spec, seed, self.now);
        node.joined = true;
        node.upload_busy_until = self.now;
        self.timers[i] = self.nodes[i].torrent.poll_timeout();
        for other in 0..self.nodes.len() {
            if other != i && self.nodes[other].joined {
                self.connect(i, other);
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
            let next_timer = self.timers.iter().flatten().min().copied();
            let Some(next) = next_event.into_iter().chain(next_timer).min() else {
                return false;
            };
            if next > deadline {
                return false;
            }
            self.now = self.now.max(next);
            if next_event == Some(next) {
                match self.queue.pop_first() {
                    Some((_, Pending::Deliver(node, event))) => self.deliver(node, event),
                    Some((_, Pending::Join(node))) => self.join(node),
                    None => {}
                }
            } else {
                let now = self.now;
                for i in 0..self.nodes.len() {
                    if self.timers[i].is_some_and(|t| t <= now) {
                        self.nodes[i].torrent.handle_timeout(now);
                        self.timers[i] = self.nodes[i].torrent.poll_timeout();
                    }
                }
            }
        }
    }

    fn deliver(&mut self, node: usize, event: Event) {
        let from = match &event {
            Event::Message { peer, .. } => Some(peer.0 as usize),
            _ => None,
        };
        if from.is_some_and(|f| !self.links.contains(&(f, node))) {
            return; // the stream is closed
        }
        self.handle(node, event);
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
        if self.keep_log {
            let summary = match &action {
                Action::WriteBlock { peer, block } => format!(
                    "write {} {} {} from {}",
                    block.piece,
                    block.offset,
                    block.data.len(),
                    peer.0
                ),
                other => format!("{other:?}"),
            };
            self.log.push((now - self.start, i, summary));
        }
        match action {
            Action::Send { peer, message } => {
                let to = peer.0 as usize;
                if self.links.contains(&(i, to)) {
                    let behind = self.link_busy_until.get(&(i, to)).copied();
                    let at = behind.map_or(now, |b| b.max(now)) + self.latency;
                    self.schedule(at, to, message_from(i, message));
                }
            }
            Action::WriteBlock { block, .. } => {
                let block = self.write(i, &block);
                self.schedule(now, i, Event::BlockWritten { block, ok: true });
            }
            Action::VerifyPiece { piece } => {
                let ok = self.verify(i, piece);
                if ok {
                    self.nodes[i].verified_at.insert(piece, now - self.start);
                }
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
                    let event = Event::PeerDisconnected { peer: key(i) };
                    self.schedule(now + self.latency, to, event);
                }
            }
            Action::Completed => self.nodes[i].completed_at = Some(now - self.start),
        }
    }

    fn write(&mut self, i: usize, block: &Block) -> BlockRef {
        let r = BlockRef {
            piece: block.piece,
            offset: block.offset,
            length: block.data.len() as u32,
        };
        if self.lean {
            let right = block.data[..] == *self.content.range(r.piece, r.offset, r.length);
            let written = self.nodes[i].written_ok.entry(r.piece).or_default();
            if right {
                written.insert(r.offset);
            } else {
                written.remove(&r.offset);
            }
        } else {
            let start = self.offset(r.piece, r.offset);
            self.nodes[i].storage[start..start + block.data.len()].copy_from_slice(&block.data);
        }
        r
    }

    fn verify(&mut self, i: usize, piece: u32) -> bool {
        let geometry = self.content.geometry;
        if self.lean {
            let written = self.nodes[i].written_ok.remove(&piece).unwrap_or_default();
            return geometry.blocks_in_piece(piece) == Some(written.len() as u32);
        }
        let size = geometry.piece_size(piece).unwrap();
        let start = self.offset(piece, 0);
        self.nodes[i].storage[start..start + size as usize] == *self.content.range(piece, 0, size)
    }

    fn offset(&self, piece: u32, offset: u32) -> usize {
        (self.content.geometry.piece_offset(piece) + u64::from(offset)) as usize
    }

    fn serve(&mut self, i: usize, to: usize, r: BlockRef) {
        if !self.links.contains(&(i, to)) {
            return;
        }
        let mut data = if self.lean {
            // Only verified pieces are served, and those hold exactly the content.
            self.content.range(r.piece, r.offset, r.length).to_vec()
        } else {
            let start = self.offset(r.piece, r.offset);
            self.nodes[i].storage[start..start + r.length as usize].to_vec()
        };
        let node = &mut self.nodes[i];
        if node.spec.corrupt {
            for b in &mut data {
                *b ^= 0x5a;
            }
        }
        let send_time =
            Duration::from_nanos(u64::from(r.length) * 1_000_000_000 / node.spec.upload_rate);
        let sent_at = node.upload_busy_until.max(self.now) + send_time;
        node.upload_busy_until = sent_at;
        node.upload_busy += send_time;
        if node.spec.seed && node.first_copy_at.is_none() {
            node.first_copy.insert(r);
            if node.first_copy.len() == self.content.geometry.total_size().div_ceil(16384) as usize
            {
                node.first_copy_at = Some((sent_at - self.start, node.upload_busy));
                node.first_copy.clear();
            }
        }
        self.link_busy_until.insert((i, to), sent_at);
        let block = Block {
            piece: r.piece,
            offset: r.offset,
            data: Bytes::from(data),
        };
        let uploaded = Event::Uploaded {
            peer: key(to),
            block: r,
        };
        self.schedule(sent_at, i, uploaded);
        let piece = message_from(i, Message::Piece(block));
        self.schedule(sent_at + self.latency, to, piece);
    }
}

fn key(node: usize) -> PeerKey {
    PeerKey(node as u64)
}

fn message_from(from: usize, message: Message) -> Event {
    Event::Message {
        peer: key(from),
        message,
    }
}

fn new_torrent(
    config: &SwarmConfig,
    content: &Content,
    spec: &NodeSpec,
    seed: u64,
    now: Instant,
) -> Torrent {
    let n = content.geometry.num_pieces();
    let have = if spec.seed {
        Bitfield::full(n)
    } else {
        Bitfield::new(n)
    };
    let config = SwarmConfig {
        upload: config.upload && !spec.free_rider,
        ..config.clone()
    };
    Torrent::new(config, content.geometry, have, seed, now).unwrap()
}
