//! Super-seeding (after BEP 16): an initial seed hides its pieces and reveals them a few at a
//! time, each to one peer, so that its upload — the swarm's scarcest — goes to pieces the swarm
//! does not have yet, ideally each exactly once, and the leechers spread them among themselves.
//!
//! - The handshake announces no pieces; a piece is revealed to a peer with a Have, and the
//!   peer is unchoked with it. Peers "in a turn" (a revealed piece they lack and we have not
//!   finished uploading to them) are unchoked; at most `slots` peers are in a turn at once.
//! - The piece revealed is the one revealed least often so far, then the one the fewest
//!   connected peers have, random among equals: fresh content first, later the rarest.
//! - Turns go round-robin, one piece each while other peers wait; a peer whose earlier pieces
//!   nobody else has yet (it did not pass them on: a free-rider, or a slow uploader) waits
//!   behind those that did. With nobody waiting, a peer in its turn is kept a few pieces ahead
//!   of its requests (its measured rate × `request_queue_time`), so a lone fast leecher is not
//!   held to one piece per round trip.
//! - `slots` starts at [`crate::SwarmConfig::super_seed_peers`] and grows (up to four times
//!   that) whenever our upload runs dry — no request waiting or being sent — while peers wait
//!   for a turn: on slow or loaded links the requests of a few peers do not cover the round
//!   trip between two turns.

use std::time::Instant;

use shoal_metainfo::PieceGeometry;
use shoal_wire::{BlockRef, Message};

use crate::event::PeerKey;
use crate::peer::Peer;
use crate::torrent::Torrent;

/// How far `slots` may grow, as a multiple of the configured number.
const MAX_SLOTS_FACTOR: usize = 4;

/// The super-seed's own bookkeeping (per-peer state lives in [`Peer::revealed`]).
#[derive(Debug, Clone)]
pub(crate) struct SuperSeed {
    /// Per piece: to how many peers it was revealed.
    reveals: Vec<u32>,
    /// Turn counter: a peer's `turn` is the value this had when its last turn started.
    next_turn: u64,
    /// Peers in a turn at once.
    slots: usize,
    /// Whether peers were left waiting for a turn at the last pump.
    peers_waiting: bool,
}

impl SuperSeed {
    pub(crate) fn new(num_pieces: u32, slots: usize) -> Self {
        Self {
            reveals: vec![0; num_pieces as usize],
            next_turn: 1,
            slots: slots.max(1),
            peers_waiting: false,
        }
    }
}

/// A piece revealed to a peer, and how far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reveal {
    /// When we sent the Have: the first request for it measures a round trip.
    at: Instant,
    /// The peer asked for a block of it.
    requested: bool,
    /// Blocks of it we uploaded to the peer.
    uploaded: u32,
}

/// A peer's standing when turns are handed out.
struct Standing {
    key: PeerKey,
    /// Revealed pieces it has and no other connected peer has: not passed on (yet).
    unproven: usize,
    turn: u64,
}

impl Torrent {
    /// Reveals pieces: tops up the peers in a turn, then starts turns while slots are free.
    pub(crate) fn pump_super_seed(&mut self) {
        let Some(slots) = self.superseed.as_ref().map(|ss| ss.slots) else {
            return;
        };
        let num_pieces = self.geometry.num_pieces();
        let mut active = Vec::new();
        let mut waiting = Vec::new();
        for (&key, peer) in &self.peers {
            let Some(have) = &peer.have else { continue };
            if have.count() >= num_pieces {
                continue;
            }
            if pending(&self.geometry, peer).next().is_some() {
                active.push(key);
            } else {
                let others_have = |p: u32| self.picker.availability(p) > u32::from(peer.has(p));
                let unproven = peer.revealed.keys().filter(|&&p| !others_have(p)).count();
                waiting.push(Standing {
                    key,
                    unproven,
                    turn: peer.turn,
                });
            }
        }
        for &key in &active {
            // Choked in its turn: a NotInterested crossed our Have (we choked it on receipt).
            self.unchoke_for_turn(key);
            if waiting.is_empty() {
                self.reveal_ahead(key);
            }
        }
        waiting.sort_by_key(|s| (s.unproven, s.turn, s.key));
        let mut busy = active.len();
        let mut left = waiting.len();
        for standing in waiting {
            if busy >= slots {
                break;
            }
            left -= 1;
            if self.reveal_one(standing.key) {
                if let (Some(ss), Some(peer)) =
                    (self.superseed.as_mut(), self.peers.get_mut(&standing.key))
                {
                    peer.turn = ss.next_turn;
                    ss.next_turn += 1;
                }
                busy += 1;
            }
        }
        if let Some(ss) = self.superseed.as_mut() {
            ss.peers_waiting = left > 0;
        }
    }

    /// Whether we super-seed and `key` has a revealed piece it lacks that we have not finished
    /// uploading to it.
    pub(crate) fn in_super_seed_turn(&self, key: PeerKey) -> bool {
        self.superseed.is_some()
            && self
                .peers
                .get(&key)
                .is_some_and(|p| pending(&self.geometry, p).next().is_some())
    }

    /// Keeps a peer in its turn (with nobody waiting) enough revealed pieces it has not started
    /// requesting to cover its rate for `request_queue_time`.
    fn reveal_ahead(&mut self, key: PeerKey) {
        let piece_length = self.geometry.piece_length().max(1);
        loop {
            let Some(peer) = self.peers.get(&key) else {
                return;
            };
            let rate = peer.up.rate(self.now).max(peer.up.recent_rate(self.now));
            let ahead = u128::from(rate) * self.request_horizon(peer).as_millis()
                / 1000
                / u128::from(piece_length);
            let ahead = usize::try_from(ahead).unwrap_or(usize::MAX).max(1);
            let unstarted = pending(&self.geometry, peer)
                .filter(|(_, r)| !r.requested)
                .count();
            if unstarted >= ahead || !self.reveal_one(key) {
                return;
            }
        }
    }

    /// Reveals to `key` the piece it lacks that was revealed least, then is rarest; unchokes
    /// it. Returns whether there was such a piece.
    fn reveal_one(&mut self, key: PeerKey) -> bool {
        let (Some(ss), Some(peer)) = (&self.superseed, self.peers.get(&key)) else {
            return false;
        };
        let mut best = Vec::new();
        let mut best_rank = (u32::MAX, u32::MAX);
        for piece in 0..self.geometry.num_pieces() {
            if peer.has(piece) || peer.revealed.contains_key(&piece) || peer.have.is_none() {
                continue;
            }
            let rank = (
                ss.reveals.get(piece as usize).copied().unwrap_or(0),
                self.picker.availability(piece),
            );
            if rank < best_rank {
                best_rank = rank;
                best.clear();
            }
            if rank == best_rank {
                best.push(piece);
            }
        }
        if best.is_empty() {
            return false;
        }
        let piece = best[rand::Rng::random_range(&mut self.rng, 0..best.len())];
        if let Some(count) = self
            .superseed
            .as_mut()
            .and_then(|ss| ss.reveals.get_mut(piece as usize))
        {
            *count += 1;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        let at = self.now;
        peer.revealed.insert(
            piece,
            Reveal {
                at,
                requested: false,
                uploaded: 0,
            },
        );
        self.send(key, Message::Have(piece));
        self.unchoke_for_turn(key);
        true
    }

    fn unchoke_for_turn(&mut self, key: PeerKey) {
        let upload = self.config.upload;
        if let Some(peer) = self.peers.get_mut(&key).filter(|p| p.am_choking && upload) {
            peer.am_choking = false;
            peer.requests_while_choked = 0;
            self.send(key, Message::Unchoke);
        }
    }

    /// A request from `key`: the first for a revealed piece may call for the next reveal.
    pub(crate) fn super_seed_requested(&mut self, key: PeerKey, piece: u32) {
        if self.superseed.is_none() {
            return;
        }
        let now = self.now;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(reveal) = peer.revealed.get_mut(&piece) else {
            return;
        };
        if !reveal.requested {
            reveal.requested = true;
            let rtt = now.saturating_duration_since(reveal.at);
            peer.rtt.record(now, rtt);
            self.pump_super_seed();
        }
    }

    /// A block went out to `key`: a revealed piece fully uploaded ends the peer's turn (without
    /// waiting for its Have); an upload that ran dry while peers wait widens the turns.
    pub(crate) fn super_seed_uploaded(&mut self, key: PeerKey, block: BlockRef) {
        let Some(ss) = &self.superseed else {
            return;
        };
        let dry = ss.peers_waiting
            && self
                .peers
                .values()
                .all(|p| p.serving.is_empty() && p.incoming.is_empty());
        let blocks = self.geometry.blocks_in_piece(block.piece);
        let finished = self
            .peers
            .get_mut(&key)
            .and_then(|p| p.revealed.get_mut(&block.piece))
            .is_some_and(|r| {
                r.uploaded += 1;
                Some(r.uploaded) == blocks
            });
        if dry {
            let max = self.config.super_seed_peers.max(1) * MAX_SLOTS_FACTOR;
            if let Some(ss) = self.superseed.as_mut() {
                ss.slots = (ss.slots + 1).min(max);
            }
        }
        if finished || dry {
            self.pump_super_seed();
        }
    }
}

/// Revealed pieces the peer lacks and we have not finished uploading to it.
fn pending<'a>(
    geometry: &'a PieceGeometry,
    peer: &'a Peer,
) -> impl Iterator<Item = (u32, &'a Reveal)> + 'a {
    peer.revealed
        .iter()
        .filter(|(p, r)| !peer.has(**p) && Some(r.uploaded) < geometry.blocks_in_piece(**p))
        .map(|(p, r)| (*p, r))
}
