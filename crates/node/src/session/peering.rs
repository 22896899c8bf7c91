//! Admitting peers: dialing them, settling simultaneous opens, giving each the engine key it
//! keeps across reconnections, and dropping them.

use std::time::Instant;

use libp2p::PeerId;
use shoal_swarm::{Event, PeerKey};
use shoal_wire::{Handshake, HaveState, Message, PROTOCOL_VERSION};
use tracing::{debug, info};

use super::links::{Conn, Outgoing, PeerLink, outbox, read_loop, write_loop};
use super::{Input, MAX_REMEMBERED_PEERS, Session, Target};
use crate::peers::{PeerInfo, PeerSource};
use crate::streams::{self, PeerStream};

impl Session {
    pub(super) fn our_handshake(&self) -> Handshake {
        Handshake {
            version: PROTOCOL_VERSION,
            info_hash: self.info_hash,
            have: self.engine.handshake_have(),
        }
    }

    /// Connects to a peer and opens a piece-exchange stream, in the background.
    pub(super) fn dial(&mut self, target: Target, source: PeerSource) {
        if let Target::Peer(peer, _) = &target {
            if source == PeerSource::Manual {
                // Named by the user: dialed whatever we thought of it.
                self.no_redial.release(peer);
            }
            if self.keys.contains_key(peer)
                || *peer == self.node.peer_id()
                || self.no_redial.holds(peer, Instant::now())
            {
                return;
            }
        }
        self.dials_in_flight += 1;
        let node = self.node.clone();
        let handshake = self.our_handshake();
        let limits = self.limits.clone();
        let tx = self.input_tx.clone();
        let known: Vec<PeerId> = self.keys.keys().copied().collect();
        tokio::spawn(async move {
            let result = async {
                let peer = match target {
                    Target::Address(address) => node.dial(address).await,
                    Target::Peer(peer, addresses) => node.dial_peer(peer, addresses).await,
                }
                .map_err(|e| e.to_string())?;
                if peer == node.peer_id() || known.contains(&peer) {
                    return Err(format!("already connected to {peer}"));
                }
                let mut control = node.stream_control();
                let sent = handshake.have.clone();
                let stream = streams::open(&mut control, peer, handshake, &limits)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((stream, sent))
            }
            .await;
            let _ = tx.send(Input::Dialed(Box::new(result), source));
        });
    }

    /// A stream whose handshakes are read: settle duplicates, then hand the peer to the engine.
    /// `sent` is the have-state our handshake carried, if we sent it already (outbound).
    pub(super) fn on_stream(
        &mut self,
        stream: PeerStream,
        source: PeerSource,
        sent: Option<HaveState>,
    ) {
        // The engine's actions so far were meant for the peer's current stream, if it has
        // one: carry them out before a new stream may take over the peer's key (a turn takes
        // many inputs, and a Disconnect or Ban for the old stream must not end the new one).
        self.perform_actions();
        if self.node.is_banned(&stream.peer) {
            debug!(peer = %stream.peer, "refused a stream from a banned peer");
            return;
        }
        // Dropping the stream closes it; the peer's other streams are not affected.
        if let Err(e) = self.validator.check_handshake(&stream.handshake) {
            info!(peer = %stream.peer, error = %e, "refused a peer's handshake");
            return;
        }
        if stream.outbound {
            // Dialed by address (a tracker's, PEX's), it turned out to be a seed we left.
            if source != PeerSource::Manual && self.no_redial.holds(&stream.peer, Instant::now()) {
                debug!(peer = %stream.peer, "not trading again with a seed we left");
                return;
            }
        } else {
            // It came to us: whatever it is now, it is welcome (a seed is closed again).
            self.no_redial.release(&stream.peer);
        }
        if let Some(&existing) = self.keys.get(&stream.peer) {
            // Both sides opened at once: keep the stream opened by the smaller PeerId, so both
            // ends make the same choice.
            let ours_smaller = self.node.peer_id() < stream.peer;
            let keep_new = stream.outbound == ours_smaller;
            let old_outbound = self.peers.get(&existing).map(|l| l.outbound);
            if !keep_new || old_outbound == Some(stream.outbound) {
                return;
            }
            self.drop_peer(existing);
            self.handle(Event::PeerDisconnected { peer: existing });
        }
        let conn = Conn {
            key: self.key_of(stream.peer),
            serial: self.next_serial,
        };
        self.next_serial += 1;
        let PeerStream {
            peer,
            handshake,
            outbound,
            reader,
            writer,
        } = stream;
        let (outbox, queue) = outbox();
        match sent {
            // Our handshake went out when the stream opened; pieces verified since then
            // reach the peer as Have messages (none from a super-seed: it reveals its own).
            Some(sent) => {
                for piece in self.engine.haves_since(&sent) {
                    outbox.send(Outgoing::Message(Message::Have(piece)));
                }
            }
            None => {
                let ours = Message::Handshake(self.our_handshake());
                outbox.send(Outgoing::Message(ours));
            }
        }
        let tx = self.input_tx.clone();
        let send_timeout = self.node.peer_send_timeout();
        tokio::spawn(write_loop(conn, writer, queue, send_timeout, tx.clone()));
        let messages = self.message_tx.clone();
        let reader = tokio::spawn(read_loop(
            conn,
            reader,
            outbox.clone(),
            self.validator.clone(),
            messages,
            tx,
        ));
        info!(%peer, ?source, "peer connected");
        if let Some(pex) = &mut self.pex {
            pex.peer_connected(peer, Instant::now());
        }
        let info = PeerInfo {
            peer_id: peer,
            source,
        };
        self.peers.insert(
            conn.key,
            PeerLink {
                info,
                serial: conn.serial,
                outbound,
                outbox,
                reader,
            },
        );
        self.keys.insert(peer, conn.key);
        self.found.record(source, peer);
        self.handle(Event::PeerConnected { peer: conn.key });
        self.handle(Event::Message {
            peer: conn.key,
            message: Message::Handshake(handshake),
        });
    }

    /// The engine's key for `peer`: the one it had before, if it was here already.
    pub(super) fn key_of(&mut self, peer: PeerId) -> PeerKey {
        if let Some(&key) = self.identities.get(&peer) {
            return key;
        }
        if self.identities.len() >= MAX_REMEMBERED_PEERS {
            // Forget the peers that are gone (and what the engine held against them) rather
            // than grow without bound on a torrent that has seen very many peers.
            let connected = &self.keys;
            self.identities.retain(|id, _| connected.contains_key(id));
        }
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        self.identities.insert(peer, key);
        key
    }

    pub(super) fn drop_peer(&mut self, key: PeerKey) {
        if let Some(link) = self.peers.remove(&key) {
            link.reader.abort();
            self.forget(&link.info.peer_id);
        }
    }

    pub(super) fn forget(&mut self, peer: &PeerId) {
        self.keys.remove(peer);
        if let Some(pex) = &mut self.pex {
            pex.peer_disconnected(peer);
        }
    }
}
