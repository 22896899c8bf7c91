//! The Kademlia DHT on `/shoal/kad/1.0.0`: provider records keyed by the 20-byte info-hash.
//!
//! rust-libp2p's defaults suit IPFS (provider records republished every 12 h, kept 48 h, at most
//! 1024 provided keys and 20 providers per key). A swarm needs minutes: a node that starts
//! seeding must be findable at once and must vanish soon after it stops. [`DhtConfig`] holds
//! shoal's defaults; each is a field so tests and testnets can tighten them.
//!
//! The host task owns the `kad::Behaviour`; [`Dht`] is its bookkeeping: which lookups want
//! which providers, which announcements reached nobody yet (they are repeated as soon as the
//! routing table has peers), and the figures [`DhtStats`] reports.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use libp2p::kad::store::{MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{self, QueryResult, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};
use shoal_metainfo::InfoHash;
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::host::Behaviour;

/// Shoal's own DHT: never the public IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/shoal/kad/1.0.0");

/// Below this many routing-table peers the node dials its bootstrap addresses again and
/// re-runs a bootstrap query.
const THIN_ROUTING_TABLE: usize = 4;

/// How the node takes part in the DHT.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// Off: no Kademlia at all (`--no-dht`); torrents find peers through the other sources.
    pub enabled: bool,
    /// Nodes to join the DHT through (`--bootstrap`), with or without `/p2p/<id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// How often our provider records are announced again (default 5 min).
    pub provider_publication_interval: Duration,
    /// How long other nodes keep a provider record (default 15 min: three missed
    /// republications before a provider that vanished is forgotten).
    pub provider_record_ttl: Duration,
    /// How often the routing table is refreshed with a bootstrap query (default 5 min).
    pub refresh_interval: Duration,
    /// How long one lookup or announcement may take (default 30 s).
    pub query_timeout: Duration,
    /// Kademlia's k (default 20): an announcement stores the provider record on the k nodes
    /// closest to the info-hash, and a lookup ends once the k closest live nodes it found
    /// have answered. Smaller is cheaper but leaves fewer copies of each record when nodes
    /// die; a DHT of at most k nodes stores every record on every node.
    pub replication_factor: NonZeroUsize,
    /// Info-hashes this node may provide at once (default 65 536).
    pub max_provided_keys: usize,
    /// Providers remembered per info-hash (default 1 024: a swarm, not a handful).
    pub max_providers_per_key: usize,
    /// Records of any kind this node stores for others (default 65 536).
    pub max_records: usize,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bootstrap: Vec::new(),
            provider_publication_interval: Duration::from_secs(5 * 60),
            provider_record_ttl: Duration::from_secs(15 * 60),
            refresh_interval: Duration::from_secs(5 * 60),
            query_timeout: Duration::from_secs(30),
            replication_factor: kad::K_VALUE,
            max_provided_keys: 65_536,
            max_providers_per_key: 1024,
            max_records: 65_536,
        }
    }
}

/// What the DHT has done on this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DhtStats {
    /// Peers in the routing table.
    pub routing_peers: usize,
    /// Info-hashes this node provides.
    pub provided_keys: usize,
    /// Provider announcements started: one when a torrent is added, and again when the last
    /// one reached no node.
    pub announces: u64,
    /// Periodic re-publications of a provider record (every
    /// [`DhtConfig::provider_publication_interval`]) that reached at least one node.
    pub republished: u64,
    /// Provider lookups started.
    pub lookups: u64,
    /// Providers those lookups returned (each peer counted once per lookup).
    pub providers_found: u64,
}

pub(crate) fn behaviour(peer: PeerId, config: &DhtConfig) -> kad::Behaviour<MemoryStore> {
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config
        .set_provider_publication_interval(Some(config.provider_publication_interval))
        .set_provider_record_ttl(Some(config.provider_record_ttl))
        .set_periodic_bootstrap_interval(Some(config.refresh_interval))
        .set_query_timeout(config.query_timeout)
        .set_replication_factor(config.replication_factor);
    let store = MemoryStore::with_config(
        peer,
        MemoryStoreConfig {
            max_records: config.max_records,
            max_provided_keys: config.max_provided_keys,
            max_providers_per_key: config.max_providers_per_key,
            ..MemoryStoreConfig::default()
        },
    );
    let mut kad = kad::Behaviour::with_config(peer, store, kad_config);
    // Loopback and private addresses are fine (testnets); a node that listens serves.
    kad.set_mode(Some(kad::Mode::Server));
    kad
}

fn key(info_hash: &InfoHash) -> RecordKey {
    RecordKey::new(&info_hash.0)
}

fn info_hash_of(key: &RecordKey) -> Option<InfoHash> {
    <[u8; 20]>::try_from(key.as_ref()).ok().map(InfoHash)
}

/// Providers one lookup dials at most: every DHT node it asks may return hundreds, and a
/// torrent takes 80 peers at most.
const MAX_PROVIDERS_PER_LOOKUP: usize = 100;

/// One running provider lookup.
struct Lookup {
    info_hash: InfoHash,
    found: mpsc::UnboundedSender<PeerId>,
    seen: HashSet<PeerId>,
}

/// The host's DHT bookkeeping.
#[derive(Default)]
pub(crate) struct Dht {
    bootstrap: Vec<Multiaddr>,
    /// Running lookups: where their providers go, and those already sent (a lookup hears of
    /// the same provider from many nodes).
    lookups: HashMap<kad::QueryId, Lookup>,
    /// Providers being dialed, and the lookups that want them once connected.
    waiting: HashMap<PeerId, Vec<mpsc::UnboundedSender<PeerId>>>,
    provided: HashSet<InfoHash>,
    /// Provided keys whose last announcement reached no other node.
    unannounced: HashSet<InfoHash>,
    /// The node's banned peers: never dialed as providers.
    banned: Arc<RwLock<HashSet<PeerId>>>,
    stats: DhtStats,
}

impl Dht {
    pub(crate) fn new(config: &DhtConfig, banned: Arc<RwLock<HashSet<PeerId>>>) -> Self {
        Self {
            bootstrap: config.bootstrap.clone(),
            banned,
            ..Self::default()
        }
    }

    /// Dials the bootstrap nodes and starts a bootstrap query with those whose id we know.
    pub(crate) fn join(&mut self, swarm: &mut Swarm<Behaviour>) {
        for address in &self.bootstrap {
            let opts = match split_p2p(address) {
                Some((peer, bare)) => {
                    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
                        kad.add_address(&peer, bare.clone());
                    }
                    // By identity, so the bootstrap query's own dial of the same peer is
                    // recognised as already under way: one connection per joiner, not two.
                    DialOpts::peer_id(peer)
                        .addresses(vec![bare])
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .allocate_new_port()
                        .build()
                }
                None => DialOpts::unknown_peer_id()
                    .address(address.clone())
                    .allocate_new_port()
                    .build(),
            };
            match swarm.dial(opts) {
                Ok(()) | Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => debug!(%address, error = %e, "cannot dial a bootstrap node"),
            }
        }
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            let _ = kad.bootstrap();
        }
    }

    /// Every few seconds: rejoin when the routing table is thin, and repeat announcements
    /// that reached nobody.
    pub(crate) fn tick(&mut self, swarm: &mut Swarm<Behaviour>) {
        let routing_peers = routing_peers(swarm);
        if routing_peers < THIN_ROUTING_TABLE && !self.bootstrap.is_empty() {
            self.join(swarm);
        }
        if routing_peers > 0 {
            let again: Vec<InfoHash> = self.unannounced.drain().collect();
            for info_hash in again {
                self.provide(swarm, info_hash);
            }
        }
    }

    pub(crate) fn provide(&mut self, swarm: &mut Swarm<Behaviour>, info_hash: InfoHash) {
        let Some(kad) = swarm.behaviour_mut().kad.as_mut() else {
            return;
        };
        match kad.start_providing(key(&info_hash)) {
            Ok(_) => {
                self.provided.insert(info_hash);
                self.stats.announces += 1;
                debug!(%info_hash, "announcing as a provider");
            }
            Err(e) => info!(%info_hash, error = %e, "cannot provide"),
        }
    }

    pub(crate) fn stop_providing(&mut self, swarm: &mut Swarm<Behaviour>, info_hash: InfoHash) {
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            let key = key(&info_hash);
            kad.stop_providing(&key);
            // An announcement that is sending its records has its unsent ones dropped. One
            // still looking for the closest nodes is left alone: finishing it would send at
            // once, to the nodes found so far (kad cannot cancel a query outright); a record
            // it stores after the stop expires with the record lifetime.
            for mut query in kad.iter_queries_mut() {
                let sending = matches!(
                    query.info(),
                    kad::QueryInfo::AddProvider {
                        key: k,
                        phase: kad::AddProviderPhase::AddProvider { .. },
                        ..
                    } if *k == key
                );
                if sending {
                    query.finish();
                }
            }
        }
        self.provided.remove(&info_hash);
        self.unannounced.remove(&info_hash);
    }

    /// Starts a provider lookup; providers arrive on `found` once connected. With the DHT off,
    /// `found` is dropped at once (the lookup ends empty).
    pub(crate) fn lookup(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        info_hash: InfoHash,
        found: mpsc::UnboundedSender<PeerId>,
    ) {
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            let id = kad.get_providers(key(&info_hash));
            let lookup = Lookup {
                info_hash,
                found,
                seen: HashSet::new(),
            };
            self.lookups.insert(id, lookup);
            self.stats.lookups += 1;
        }
    }

    /// The providers of `info_hash` in this node's own store (records it keeps for others, and
    /// its own), without asking the network; expired records are left out.
    pub(crate) fn stored_providers(
        &self,
        swarm: &mut Swarm<Behaviour>,
        info_hash: InfoHash,
    ) -> Vec<PeerId> {
        let Some(kad) = swarm.behaviour_mut().kad.as_mut() else {
            return Vec::new();
        };
        let now = Instant::now();
        kad.store_mut()
            .providers(&key(&info_hash))
            .into_iter()
            .filter(|record| !record.is_expired(now))
            .map(|record| record.provider)
            .collect()
    }

    pub(crate) fn stats(&self, swarm: &mut Swarm<Behaviour>) -> DhtStats {
        DhtStats {
            routing_peers: routing_peers(swarm),
            provided_keys: self.provided.len(),
            ..self.stats
        }
    }

    /// A peer told us where it listens: if it speaks our DHT, it goes into the routing table.
    pub(crate) fn on_identified(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        protocols: &[StreamProtocol],
        listen_addrs: &[Multiaddr],
    ) {
        if !protocols.contains(&KAD_PROTOCOL) {
            return;
        }
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            for address in listen_addrs {
                kad.add_address(&peer, address.clone());
            }
        }
    }

    pub(crate) fn on_connected(&mut self, peer: PeerId) {
        for found in self.waiting.remove(&peer).unwrap_or_default() {
            let _ = found.send(peer);
        }
    }

    pub(crate) fn on_dial_failed(&mut self, peer: Option<PeerId>) {
        if let Some(peer) = peer {
            self.waiting.remove(&peer);
        }
    }

    /// A banned peer: lookups stop waiting for it, and it leaves the routing table (so our
    /// queries stop connecting to it only to be refused).
    pub(crate) fn on_banned(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        self.waiting.remove(&peer);
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            kad.remove_peer(&peer);
        }
    }

    pub(crate) fn on_event(&mut self, swarm: &mut Swarm<Behaviour>, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id,
            result,
            step,
            stats,
        } = event
        else {
            return;
        };
        match result {
            QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => self.on_providers(swarm, id, providers),
            QueryResult::RepublishProvider(_) if stats.num_successes() > 0 => {
                self.stats.republished += 1;
            }
            QueryResult::StartProviding(result) | QueryResult::RepublishProvider(result) => {
                let announced = match &result {
                    Ok(ok) => info_hash_of(&ok.key),
                    Err(e) => info_hash_of(e.key()),
                };
                if let Some(info_hash) = announced.filter(|h| self.provided.contains(h)) {
                    if stats.num_successes() == 0 {
                        debug!(%info_hash, "the announcement reached no node; will repeat");
                        self.unannounced.insert(info_hash);
                    }
                }
            }
            QueryResult::Bootstrap(Ok(ok)) if ok.num_remaining == 0 => {
                debug!(peers = routing_peers(swarm), "DHT bootstrap finished");
            }
            _ => {}
        }
        if step.last {
            if let Some(lookup) = self.lookups.remove(&id) {
                debug!(info_hash = %lookup.info_hash, providers = lookup.seen.len(), "provider lookup finished");
            }
        }
    }

    fn on_providers(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        id: kad::QueryId,
        providers: HashSet<PeerId>,
    ) {
        let local = *swarm.local_peer_id();
        let Some(lookup) = self.lookups.get_mut(&id) else {
            return;
        };
        let found = lookup.found.clone();
        let new: Vec<PeerId> = {
            let banned = self.banned.read().ok();
            let banned = |p: &PeerId| banned.as_ref().is_some_and(|b| b.contains(p));
            let seen = &mut lookup.seen;
            providers
                .into_iter()
                .filter(|p| *p != local && !banned(p))
                .filter(|p| seen.len() < MAX_PROVIDERS_PER_LOOKUP && seen.insert(*p))
                .collect()
        };
        for peer in new {
            self.stats.providers_found += 1;
            if swarm.is_connected(&peer) {
                let _ = found.send(peer);
                continue;
            }
            // Dial now, while the query still holds the provider's addresses.
            let opts = DialOpts::peer_id(peer)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .allocate_new_port()
                .build();
            match swarm.dial(opts) {
                Ok(()) => self.waiting.entry(peer).or_default().push(found.clone()),
                Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => {
                    // Someone is dialing it already: wait for that connection.
                    self.waiting.entry(peer).or_default().push(found.clone());
                }
                Err(e) => debug!(%peer, error = %e, "cannot dial a provider"),
            }
        }
    }
}

fn routing_peers(swarm: &mut Swarm<Behaviour>) -> usize {
    swarm
        .behaviour_mut()
        .kad
        .as_mut()
        .map(|kad| kad.kbuckets().map(|b| b.num_entries()).sum())
        .unwrap_or(0)
}

/// `addr/p2p/<id>` as the id and the address without it.
fn split_p2p(address: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut bare = address.clone();
    match bare.pop() {
        Some(Protocol::P2p(peer)) => Some((peer, bare)),
        _ => None,
    }
}
