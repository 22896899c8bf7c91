//! What the engine remembers about one connected peer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use shoal_wire::{Bitfield, BlockRef};

use crate::rate::{MinRtt, RateMeter};
use crate::superseed::Reveal;

/// Cancelled requests remembered per peer, so that blocks crossing our Cancel (or its Choke)
/// are not taken for unrequested ones.
const CANCELLED_MEMORY: usize = 512;

/// A request we sent and that is not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutstandingRequest {
    pub(crate) block: BlockRef,
    pub(crate) sent_at: Instant,
    /// Unanswered for longer than the request timeout: offered to other peers too.
    pub(crate) timed_out: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) connected_at: Instant,
    /// Their pieces; `None` until their handshake arrives.
    pub(crate) have: Option<Bitfield>,
    /// How many of their pieces we lack: we are interested while this is above zero.
    pub(crate) wanted: u32,
    pub(crate) am_choking: bool,
    pub(crate) am_interested: bool,
    pub(crate) peer_choking: bool,
    pub(crate) peer_interested: bool,
    pub(crate) snubbed: bool,
    /// Payload from them / to them.
    pub(crate) down: RateMeter,
    pub(crate) up: RateMeter,
    /// The smallest round trip of our requests to them, lately.
    pub(crate) rtt: MinRtt,
    /// Our requests to them, oldest first.
    pub(crate) outstanding: Vec<OutstandingRequest>,
    pub(crate) recently_cancelled: VecDeque<BlockRef>,
    /// Since when we have waited on them without a block (for snubbing).
    pub(crate) waiting_since: Option<Instant>,
    pub(crate) last_block_at: Option<Instant>,
    pub(crate) unrequested_blocks: u32,
    /// Requests received while we choke them, since our last Choke.
    pub(crate) requests_while_choked: u32,
    /// Pieces they rejected a request for; not asked again until they unchoke us anew or the
    /// next rechoke.
    pub(crate) rejected_pieces: BTreeSet<u32>,
    /// Their requests waiting to be handed to the node.
    pub(crate) incoming: VecDeque<BlockRef>,
    /// Their requests handed to the node as ServeRequest and not yet uploaded.
    pub(crate) serving: Vec<BlockRef>,
    /// Super-seeding: the pieces we told them we have.
    pub(crate) revealed: BTreeMap<u32, Reveal>,
    /// Super-seeding: when their last turn started (0: never), for round-robin order.
    pub(crate) turn: u64,
}

impl Peer {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            connected_at: now,
            have: None,
            wanted: 0,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            snubbed: false,
            down: RateMeter::new(now),
            up: RateMeter::new(now),
            rtt: MinRtt::new(now),
            outstanding: Vec::new(),
            recently_cancelled: VecDeque::new(),
            waiting_since: None,
            last_block_at: None,
            unrequested_blocks: 0,
            requests_while_choked: 0,
            rejected_pieces: BTreeSet::new(),
            incoming: VecDeque::new(),
            serving: Vec::new(),
            revealed: BTreeMap::new(),
            turn: 0,
        }
    }

    pub(crate) fn has(&self, piece: u32) -> bool {
        self.have.as_ref().is_some_and(|h| h.get(piece))
    }

    /// Removes our request for `block`; whether there was one.
    pub(crate) fn take_outstanding(&mut self, block: BlockRef) -> bool {
        let before = self.outstanding.len();
        self.outstanding.retain(|r| r.block != block);
        self.outstanding.len() != before
    }

    pub(crate) fn remember_cancelled(&mut self, block: BlockRef) {
        if self.recently_cancelled.len() >= CANCELLED_MEMORY {
            self.recently_cancelled.pop_front();
        }
        self.recently_cancelled.push_back(block);
    }

    /// Whether `block` is one we cancelled (and forgets it).
    pub(crate) fn take_cancelled(&mut self, block: BlockRef) -> bool {
        match self.recently_cancelled.iter().position(|b| *b == block) {
            Some(i) => {
                self.recently_cancelled.remove(i);
                true
            }
            None => false,
        }
    }

    /// Keeps `waiting_since` meaning "waiting on them with requests out, nothing delivered".
    pub(crate) fn refresh_waiting(&mut self, now: Instant) {
        if self.outstanding.is_empty() {
            self.waiting_since = None;
        } else if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
    }
}
