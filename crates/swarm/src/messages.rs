//! What the engine does with each message a peer sends.

use std::time::Instant;

use shoal_metainfo::BLOCK_SIZE;
use shoal_wire::{Bitfield, Block, BlockRef, Handshake, HaveState, Message};

use crate::event::{Action, DisconnectReason, PeerKey};
use crate::picker::BlockOutcome;
use crate::torrent::Torrent;

impl Torrent {
    pub(crate) fn on_message(&mut self, now: Instant, key: PeerKey, message: Message) {
        let Some(peer) = self.peers.get(&key) else {
            return; // forgotten (disconnected, banned): messages still in flight
        };
        if peer.have.is_none() && !matches!(message, Message::Handshake(_)) {
            let kind = message.kind();
            self.disconnect(key, DisconnectReason::MessageBeforeHandshake { kind });
            return;
        }
        match message {
            Message::Handshake(handshake) => self.on_handshake(key, handshake),
            Message::KeepAlive => {}
            Message::Have(piece) => self.on_have(key, piece),
            Message::Interested => self.on_interested(now, key),
            Message::NotInterested => self.on_not_interested(key),
            Message::Choke => self.on_choked(now, key),
            Message::Unchoke => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.peer_choking = false;
                    peer.rejected_pieces.clear();
                }
                self.fill_requests(key);
            }
            Message::Request(block) => self.on_request(key, block),
            Message::Piece(block) => self.on_block(now, key, block),
            Message::Cancel(block) => {
                // Already handed to the node as ServeRequest: too late, it goes out.
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.incoming.retain(|b| *b != block);
                }
            }
            Message::Reject(block) => self.on_reject(now, key, block),
        }
    }

    fn on_handshake(&mut self, key: PeerKey, handshake: Handshake) {
        let num_pieces = self.geometry.num_pieces();
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.have.is_some() {
            self.disconnect(key, DisconnectReason::SecondHandshake);
            return;
        }
        let have = match handshake.have {
            HaveState::All => Bitfield::full(num_pieces),
            HaveState::None => Bitfield::new(num_pieces),
            HaveState::Bitfield(b) if b.len() == num_pieces => b,
            HaveState::Bitfield(b) => {
                let len = b.len();
                self.disconnect(key, DisconnectReason::BitfieldLength { len, num_pieces });
                return;
            }
        };
        self.picker.add_peer(&have);
        peer.wanted = self.picker.wanted_from(&have);
        peer.have = Some(have);
        if self.drop_if_both_complete(key) {
            return;
        }
        self.update_interest(key);
        self.pump_super_seed();
    }

    fn on_have(&mut self, key: PeerKey, piece: u32) {
        let num_pieces = self.geometry.num_pieces();
        if piece >= num_pieces {
            self.disconnect(key, DisconnectReason::HaveOutOfRange { piece, num_pieces });
            return;
        }
        let we_have = self.picker.have().get(piece);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let newly = peer.have.as_mut().is_some_and(|h| h.set(piece, true));
        if !newly {
            return;
        }
        self.picker.add_piece(piece);
        if !we_have {
            peer.wanted += 1;
            self.update_interest(key);
            self.fill_requests(key);
        }
        // Its last piece, while we seed: a seed-to-seed connection now.
        if self.drop_if_both_complete(key) {
            return;
        }
        self.pump_super_seed();
    }

    /// Tells the peer whether we want something it has, when that changed.
    pub(crate) fn update_interest(&mut self, key: PeerKey) {
        let complete = self.picker.is_complete();
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.have.is_none() {
            return;
        }
        let want = peer.wanted > 0 && !complete;
        if want != peer.am_interested {
            peer.am_interested = want;
            let message = if want {
                Message::Interested
            } else {
                Message::NotInterested
            };
            self.send(key, message);
        }
    }

    /// They choked us: their queue is dropped (BEP 6: they reject each request), so the
    /// blocks go to other peers now. Blocks already on the way are still welcome.
    fn on_choked(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.peer_choking = true;
        let dropped = std::mem::take(&mut peer.outstanding);
        for r in &dropped {
            peer.remember_cancelled(r.block);
            self.picker.release(key, r.block);
        }
        peer.refresh_waiting(now);
        if !dropped.is_empty() {
            self.fill_all_requests();
        }
    }

    fn on_reject(&mut self, now: Instant, key: PeerKey, block: BlockRef) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.take_outstanding(block) {
            return; // a request we already gave up (cancelled, choked)
        }
        peer.rejected_pieces.insert(block.piece);
        peer.refresh_waiting(now);
        self.picker.release(key, block);
        self.fill_all_requests();
    }

    fn on_request(&mut self, key: PeerKey, block: BlockRef) {
        let have_piece = self.picker.have().get(block.piece);
        let max_choked = self.config.max_requests_while_choked;
        let max_queued = self.config.max_incoming_requests;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_choking {
            peer.requests_while_choked += 1;
            let count = peer.requests_while_choked;
            if count > max_choked {
                self.disconnect(key, DisconnectReason::RequestsWhileChoked { count });
            } else {
                self.send(key, Message::Reject(block));
            }
            return;
        }
        if peer.incoming.contains(&block) || peer.serving.contains(&block) {
            return;
        }
        let full = peer.incoming.len() >= max_queued;
        if !have_piece || block.length > BLOCK_SIZE || full {
            self.send(key, Message::Reject(block));
            return;
        }
        peer.incoming.push_back(block);
        self.pump_serving(key);
        self.super_seed_requested(key, block.piece);
    }

    fn on_block(&mut self, now: Instant, key: PeerKey, block: Block) {
        let block_ref = block.block_ref();
        let len = u64::from(block_ref.length);
        let max_unrequested = self.config.max_unrequested_blocks;
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let sent_at = peer
            .outstanding
            .iter()
            .find(|r| r.block == block_ref)
            .map(|r| r.sent_at);
        if let Some(sent_at) = sent_at {
            peer.rtt.record(now, now.saturating_duration_since(sent_at));
        }
        if !peer.take_outstanding(block_ref) && !peer.take_cancelled(block_ref) {
            peer.unrequested_blocks += 1;
            let count = peer.unrequested_blocks;
            if count > max_unrequested {
                self.disconnect(key, DisconnectReason::UnrequestedBlocks { count });
            }
            return;
        }
        peer.down.record(now, len);
        peer.last_block_at = Some(now);
        peer.snubbed = false;
        peer.waiting_since = Some(now);
        peer.refresh_waiting(now);
        self.counters.downloaded += len;
        self.download_meter.record(now, len);
        self.counters.first_byte_at.get_or_insert(now);

        match self.picker.block_received(key, block_ref) {
            BlockOutcome::Accepted { cancel } => {
                for other in &cancel {
                    if let Some(p) = self.peers.get_mut(other) {
                        if p.take_outstanding(block_ref) {
                            p.remember_cancelled(block_ref);
                            p.refresh_waiting(now);
                            self.send(*other, Message::Cancel(block_ref));
                        }
                    }
                }
                self.actions
                    .push_back(Action::WriteBlock { peer: key, block });
                self.fill_requests(key);
                for other in cancel {
                    self.fill_requests(other);
                }
            }
            BlockOutcome::NotNeeded => {
                self.counters.duplicate_bytes += len;
                self.fill_requests(key);
            }
        }
    }
}
