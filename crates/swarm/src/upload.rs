//! The upload side: choking and unchoking, and handing peers' requests to the node.

use std::time::Instant;

use rand::seq::SliceRandom;
use shoal_wire::{BlockRef, Message};

use crate::choker::ChokeCandidate;
use crate::event::{Action, PeerKey};
use crate::peer::Peer;
use crate::torrent::Torrent;

impl Torrent {
    fn choke_candidate(&self, now: Instant, key: PeerKey, peer: &Peer) -> ChokeCandidate {
        let seeding = self.picker.is_complete();
        ChokeCandidate {
            peer: key,
            interested: peer.peer_interested,
            snubbed: peer.snubbed,
            rate: if seeding {
                peer.up.rate(now)
            } else {
                peer.down.rate(now)
            },
            is_new: now.saturating_duration_since(peer.connected_at) < self.config.new_peer_period,
        }
    }

    /// The periodic rechoke; `rotate` also moves the optimistic unchoke.
    pub(crate) fn rechoke(&mut self, now: Instant, rotate: bool) {
        if self.superseed.is_some() {
            self.pump_super_seed();
            return;
        }
        let candidates: Vec<ChokeCandidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.have.is_some())
            .map(|(&k, p)| self.choke_candidate(now, k, p))
            .collect();
        let unchoked = self.choker.rechoke(&candidates, rotate, &mut self.rng);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let choking = self.peers.get(&key).is_some_and(|p| p.am_choking);
            match (unchoked.contains(&key), choking) {
                (true, true) => self.unchoke(key),
                (false, false) => self.choke(key),
                _ => {}
            }
        }
    }

    /// Unchokes interested peers at once while the choker has free slots.
    pub(crate) fn fill_free_slots(&mut self) {
        if self.superseed.is_some() {
            self.pump_super_seed();
            return;
        }
        let now = self.now;
        let mut waiting: Vec<ChokeCandidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.am_choking && p.peer_interested)
            .map(|(&k, p)| self.choke_candidate(now, k, p))
            .collect();
        waiting.shuffle(&mut self.rng);
        for candidate in waiting {
            if self.choker.offer_free_slot(&candidate) {
                self.unchoke(candidate.peer);
            }
        }
    }

    fn unchoke(&mut self, key: PeerKey) {
        if !self.config.upload {
            return;
        }
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.am_choking = false;
            peer.requests_while_choked = 0;
            self.send(key, Message::Unchoke);
        }
    }

    /// Chokes the peer and rejects every request of its still waiting in the engine (BEP 6).
    fn choke(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.am_choking = true;
        let pending: Vec<BlockRef> = peer.incoming.drain(..).collect();
        self.send(key, Message::Choke);
        for block in pending {
            self.send(key, Message::Reject(block));
        }
    }

    pub(crate) fn on_interested(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.peer_interested = true;
        if self.superseed.is_some() {
            // Unchoked when a piece is revealed to it (again, if a NotInterested of its crossed
            // that Have and we choked it).
            self.pump_super_seed();
            return;
        }
        let Some(peer) = self.peers.get(&key).filter(|p| p.am_choking) else {
            return;
        };
        let candidate = self.choke_candidate(now, key, peer);
        if self.choker.offer_free_slot(&candidate) {
            self.unchoke(key);
        }
    }

    /// An uninterested peer gives its slot back at once, to someone who wants it. (While
    /// super-seeding, a peer in its turn stays unchoked: its NotInterested crossed our Have.)
    pub(crate) fn on_not_interested(&mut self, key: PeerKey) {
        let in_turn = self.in_super_seed_turn(key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.peer_interested = false;
        if !peer.am_choking && !in_turn {
            self.choker.remove(key);
            self.choke(key);
            self.fill_free_slots();
        }
    }

    /// Hands queued requests to the node, up to the serve pipeline.
    pub(crate) fn pump_serving(&mut self, key: PeerKey) {
        let limit = self.config.serve_pipeline.max(1);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        while peer.serving.len() < limit {
            let Some(block) = peer.incoming.pop_front() else {
                break;
            };
            peer.serving.push(block);
            self.actions
                .push_back(Action::ServeRequest { peer: key, block });
        }
    }

    fn take_serving(&mut self, key: PeerKey, block: BlockRef) -> bool {
        let Some(peer) = self.peers.get_mut(&key) else {
            return false;
        };
        match peer.serving.iter().position(|b| *b == block) {
            Some(i) => {
                peer.serving.swap_remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn on_uploaded(&mut self, now: Instant, key: PeerKey, block: BlockRef) {
        if !self.take_serving(key, block) {
            return;
        }
        let len = u64::from(block.length);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.up.record(now, len);
        }
        self.counters.uploaded += len;
        self.upload_meter.record(now, len);
        self.pump_serving(key);
        self.super_seed_uploaded(key, block);
    }

    pub(crate) fn on_serve_failed(&mut self, key: PeerKey, block: BlockRef) {
        if self.take_serving(key, block) {
            self.send(key, Message::Reject(block));
            self.pump_serving(key);
        }
    }
}
