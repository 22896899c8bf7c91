//! How a torrent finds peers besides the ones it is given: DHT announcements and provider
//! lookups, and peer exchange with the peers it has.

use std::time::{Duration, Instant};

use std::net::SocketAddr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use shoal_metainfo::InfoHash;
use shoal_swarm::PexVerdict;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::{Session, Target};
use crate::announce::{AnnounceSetup, Announcer};
use crate::host::NodeHandle;
use crate::peers::PeerSource;
use crate::pex;

/// While it has fewer peers than this, a fetching torrent keeps looking up providers.
const PEER_TARGET: usize = 30;
/// No more dials from trackers, PEX records or DHT providers once this many peers are
/// connected or being dialed.
const MAX_PEERS: usize = 80;
/// The first pause between lookups; it doubles after each lookup up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// PEX messages queued for a torrent; more are dropped (a flood costs the flooder).
const PEX_QUEUE: usize = 64;
/// An address a tracker returned is not dialed again within this time.
pub(super) const TRACKER_REDIAL: Duration = Duration::from_secs(5 * 60);
/// Dials in flight past which PEX records are not dialed: PEX may use half of [`MAX_PEERS`],
/// so that a peer naming addresses that never answer cannot take every dial slot from the
/// trackers and the DHT.
const MAX_PEX_DIALS_IN_FLIGHT: usize = MAX_PEERS / 2;
/// A peer named in PEX messages is not dialed again within this time.
pub(super) const PEX_REDIAL: Duration = Duration::from_secs(5 * 60);
/// Tracker addresses, and PEX-named peers, remembered as dialed (each).
pub(super) const MAX_REMEMBERED_DIALS: usize = 4096;

pub(crate) type PexInbox = mpsc::Receiver<(PeerId, pex::Received)>;

/// The torrent's PEX inbox; with PEX off nothing is routed to it.
pub(super) fn pex_inbox(node: &NodeHandle, info_hash: InfoHash, enabled: bool) -> PexInbox {
    let (sink, inbox) = mpsc::channel(PEX_QUEUE);
    if enabled {
        node.router().register_pex(info_hash, sink);
    }
    inbox
}

/// The provider lookups of one torrent.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    running: Option<mpsc::UnboundedReceiver<PeerId>>,
    next_at: Option<Instant>,
    backoff: Duration,
}

impl Lookup {
    /// The next provider of the running lookup; `None` once it has finished. Pending while no
    /// lookup runs.
    pub(super) async fn next_provider(&mut self) -> Option<PeerId> {
        match &mut self.running {
            Some(providers) => {
                let found = providers.recv().await;
                if found.is_none() {
                    self.running = None;
                }
                found
            }
            None => std::future::pending().await,
        }
    }
}

impl Session {
    /// Starts announcing to the trackers, announces the torrent in the DHT and, if it is
    /// fetching, starts looking for providers.
    pub(super) async fn start_discovery(&mut self) {
        let setup = AnnounceSetup {
            info_hash: self.info_hash,
            tiers: self.discovery.trackers.clone(),
            total_size: self.discovery.total_size,
            piece_length: self.discovery.piece_length,
            progress: self.progress.subscribe(),
            rng_seed: self.discovery.rng_seed,
        };
        self.announcer = Announcer::start(&self.node, setup, self.tracker_peers_tx.clone());
        if !self.use_dht {
            return;
        }
        if self.node.provide(self.info_hash).await.is_err() {
            return;
        }
        if !self.completed {
            self.start_lookup().await;
        }
    }

    pub(super) async fn stop_discovery(&mut self) {
        if self.use_dht {
            let _ = self.node.stop_providing(self.info_hash).await;
        }
        if let Some(announcer) = self.announcer.take() {
            announcer.stop().await;
        }
    }

    /// Addresses from a tracker: dialed unless dialed lately (the handshake tells who it is).
    pub(super) fn on_tracker_peers(&mut self, addresses: Vec<SocketAddr>) {
        let now = Instant::now();
        for address in addresses {
            if self.peer_cap_reached() {
                break;
            }
            if !self.tracker_dialed.try_dial(address, now) {
                continue;
            }
            let multiaddr = Multiaddr::from(address.ip()).with(Protocol::Tcp(address.port()));
            self.dial(Target::Address(multiaddr), PeerSource::Tracker);
        }
    }

    async fn start_lookup(&mut self) {
        self.lookup.next_at = None;
        match self.node.find_providers(self.info_hash).await {
            Ok(providers) => {
                debug!("looking up providers");
                self.lookup.running = Some(providers);
            }
            Err(e) => debug!(error = %e, "cannot look up providers"),
        }
    }

    /// A provider from the running lookup (`None`: the lookup finished).
    pub(super) fn on_provider(&mut self, found: Option<PeerId>) {
        match found {
            Some(peer) if !self.peer_cap_reached() => {
                self.dial(Target::Peer(peer, Vec::new()), PeerSource::Dht);
            }
            Some(_) => {}
            None if !self.completed && self.peers.len() < PEER_TARGET => {
                let backoff = (self.lookup.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                self.lookup.backoff = backoff;
                self.lookup.next_at = Some(Instant::now() + backoff);
                debug!(
                    peers = self.peers.len(),
                    ?backoff,
                    "too few peers; will look again"
                );
            }
            None => {}
        }
    }

    /// When the next lookup or PEX message is due.
    pub(super) fn discovery_deadline(&self) -> Option<Instant> {
        let pex = self.pex.as_ref().and_then(|p| p.next_due());
        [self.lookup.next_at, pex].into_iter().flatten().min()
    }

    pub(super) async fn on_discovery_timer(&mut self, now: Instant) {
        if self.lookup.next_at.is_some_and(|at| at <= now) {
            self.lookup.next_at = None;
            if !self.completed && self.peers.len() < PEER_TARGET {
                self.start_lookup().await;
            }
        }
        let Some(pex) = &mut self.pex else { return };
        for update in pex.poll_send(now) {
            let message = pex::message(&self.node, self.info_hash, &update);
            pex::send(&self.node, update.to, message);
        }
    }

    /// A PEX message from a peer: rate-checked, size-checked, and its new peers dialed.
    pub(super) fn on_pex(&mut self, from: PeerId, received: pex::Received) {
        let Some(pex) = &mut self.pex else { return };
        let now = Instant::now();
        let (verdict, message) = match received {
            pex::Received::Message(message) => (pex.on_received(&from, now), Some(message)),
            pex::Received::Oversized(error) => {
                debug!(peer = %from, %error, "PEX message over the limits");
                (pex.on_oversized(&from, now), None)
            }
        };
        match verdict {
            PexVerdict::Accept => {}
            PexVerdict::Throttle => {
                debug!(peer = %from, "ignored a PEX message that broke the rules");
                return;
            }
            PexVerdict::Drop => {
                let reason = "its PEX messages broke the rules too often".to_owned();
                self.drop_for_pex(from, reason);
                return;
            }
        }
        let Some(message) = message else { return };
        for (peer, addresses) in pex::dialable(&from, &message) {
            if self.peer_cap_reached() || self.dials_in_flight >= MAX_PEX_DIALS_IN_FLIGHT {
                break;
            }
            if self.node.is_banned(&peer)
                || self.keys.contains_key(&peer)
                || !self.pex_dialed.try_dial(peer, now)
            {
                continue;
            }
            self.dial(Target::Peer(peer, addresses), PeerSource::Pex);
        }
    }

    /// Whether the peers connected and being dialed reach [`MAX_PEERS`].
    fn peer_cap_reached(&self) -> bool {
        self.peers.len() + self.dials_in_flight >= MAX_PEERS
    }

    fn drop_for_pex(&mut self, peer: PeerId, reason: String) {
        info!(%peer, %reason, "dropping peer");
        if let Some(&key) = self.keys.get(&peer) {
            self.drop_peer(key);
            self.handle(shoal_swarm::Event::PeerDisconnected { peer: key });
        }
    }
}
