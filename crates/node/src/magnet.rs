//! Adding a torrent by magnet link: find peers (the link's `x.pe` peers and `tr` trackers,
//! and the DHT), fetch the info dictionary from them, check it against the info-hash, then
//! download as usual.
//!
//! Up to [`PARALLEL_FETCHES`] peers are asked at once, each for the whole dictionary, so one
//! slow or lying peer neither stalls the fetch nor poisons it: a peer whose bytes do not hash
//! to the info-hash is banned, one that breaks the protocol is not asked again, one that does
//! not have the metadata or fails is asked again a little later; the others carry on. Every
//! peer found on the way (but those that broke the protocol) is handed to the torrent
//! afterwards, with the source that found it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use libp2p::PeerId;
use shoal_metainfo::{InfoHash, Magnet, Torrent};
use shoal_storage::StorageConfig;
use shoal_swarm::SwarmConfig;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::NodeError;
use crate::host::{NodeEvent, NodeHandle};
use crate::metadata::{self, Blame, FetchError};
use crate::peers::{PeerSource, parse_peer_address};
use crate::torrent::{AddTorrent, TorrentHandle};

/// Peers asked for the metadata at once.
const PARALLEL_FETCHES: usize = 3;
/// Times one peer is asked before it is given up on (a liar, or a peer that breaks the
/// protocol, is asked once).
const MAX_TRIES_PER_PEER: u32 = 3;
/// Pause before asking a peer again after a failure.
const RETRY_DELAY: Duration = Duration::from_secs(2);
/// One tracker announce during the metadata fetch may take this long.
const TRACKER_TIMEOUT: Duration = Duration::from_secs(15);
/// Pauses between DHT lookups while the metadata is missing: doubling, up to the maximum.
const FIRST_LOOKUP_BACKOFF: Duration = Duration::from_secs(1);
const MAX_LOOKUP_BACKOFF: Duration = Duration::from_secs(30);

/// A torrent to fetch from a magnet link.
#[derive(Debug, Clone)]
pub struct AddMagnet {
    pub magnet: Magnet,
    /// Where the content goes (under the torrent's name, once known).
    pub download_dir: PathBuf,
    pub swarm: SwarmConfig,
    pub storage: StorageConfig,
    /// Give up when no peer has delivered the metadata by then (default 5 minutes).
    pub metadata_timeout: Duration,
    /// One peer has this long to deliver the whole metadata (default 2 minutes, the most a
    /// shoal peer keeps a metadata stream open), so a peer that answers each request slowly
    /// but just in time cannot hold one of the few fetches run at once.
    pub peer_metadata_timeout: Duration,
}

impl AddMagnet {
    pub fn new(magnet: Magnet, download_dir: PathBuf) -> Self {
        Self {
            magnet,
            download_dir,
            swarm: SwarmConfig::default(),
            storage: StorageConfig::default(),
            metadata_timeout: Duration::from_secs(300),
            peer_metadata_timeout: metadata::MAX_STREAM_LIFE,
        }
    }
}

pub(crate) async fn add(
    node: &NodeHandle,
    add: AddMagnet,
) -> Result<(Torrent, TorrentHandle), NodeError> {
    let span = info_span!("magnet", info_hash = %add.magnet.info_hash);
    async {
        let (info_bytes, found) = fetch_metadata(node, &add).await?;
        let trackers = add
            .magnet
            .trackers
            .iter()
            .map(|t| vec![t.clone()])
            .collect();
        let torrent = Torrent::from_info_bytes(info_bytes, trackers).map_err(|e| {
            NodeError::Metadata(format!("the verified metadata is not a valid torrent: {e}"))
        })?;
        info!(name = %torrent.info.name, "metadata verified");
        let mut torrent_add = AddTorrent::new(torrent.clone(), add.download_dir.clone());
        torrent_add.swarm = add.swarm.clone();
        torrent_add.storage = add.storage.clone();
        let handle = node.add_torrent(torrent_add).await?;
        for (peer, source) in found {
            if !node.is_banned(&peer) {
                handle.add_peer_id(peer, Vec::new(), source).await?;
            }
        }
        Ok((torrent, handle))
    }
    .instrument(span)
    .await
}

/// The verified info bytes, and every peer found on the way with its source (but those that
/// broke the protocol).
async fn fetch_metadata(
    node: &NodeHandle,
    add: &AddMagnet,
) -> Result<(Vec<u8>, HashMap<PeerId, PeerSource>), NodeError> {
    let deadline = Instant::now() + add.metadata_timeout;
    let (found_tx, mut found_rx) = mpsc::unbounded_channel();
    let mut sources = find_peers(node, add, found_tx);
    let mut fetch = Fetch::new(node, add.magnet.info_hash, add.peer_metadata_timeout);
    let bytes = loop {
        fetch.start_attempts();
        let wake = fetch.next_retry().unwrap_or(deadline).min(deadline);
        tokio::select! {
            Some((peer, source)) = found_rx.recv() => fetch.on_found(peer, source),
            Some(done) = fetch.attempts.join_next() => {
                let Ok((peer, result)) = done else { continue };
                match result {
                    Ok(bytes) => break bytes,
                    Err(e) => fetch.on_failure(peer, e),
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    return Err(no_metadata(add, fetch.found.len(), fetch.last_failure.as_deref()));
                }
            }
        }
    };
    fetch.attempts.abort_all();
    sources.abort_all();
    Ok((bytes, fetch.found))
}

/// Starts every source of peers the magnet link and the node allow: the link's `x.pe` peers,
/// DHT lookups and the link's trackers. Each peer found arrives on `found` once connected.
fn find_peers(
    node: &NodeHandle,
    add: &AddMagnet,
    found: mpsc::UnboundedSender<(PeerId, PeerSource)>,
) -> JoinSet<()> {
    let info_hash = add.magnet.info_hash;
    let mut sources = JoinSet::new();
    for text in &add.magnet.peers {
        match parse_peer_address(text) {
            Ok(address) => {
                let (node, found) = (node.clone(), found.clone());
                sources.spawn(async move {
                    match node.dial(address.clone()).await {
                        Ok(peer) => {
                            let _ = found.send((peer, PeerSource::Manual));
                        }
                        Err(e) => debug!(%address, error = %e, "magnet peer unreachable"),
                    }
                });
            }
            Err(e) => warn!(peer = %text, error = %e, "ignoring a magnet peer"),
        }
    }
    if node.dht_enabled() {
        sources.spawn(look_up_while_needed(node.clone(), info_hash, found.clone()));
    }
    if !add.magnet.trackers.is_empty() {
        let tiers = add
            .magnet
            .trackers
            .iter()
            .map(|t| vec![t.clone()])
            .collect();
        let size = add.magnet.exact_length.unwrap_or(1);
        sources.spawn(ask_trackers(node.clone(), info_hash, tiers, size, found));
    }
    sources
}

/// The attempts of one metadata fetch: which peers were found and how, which wait to be
/// asked (again), which are being asked, and which are out for breaking the protocol.
struct Fetch<'a> {
    node: &'a NodeHandle,
    info_hash: InfoHash,
    /// How long one attempt may take.
    per_peer: Duration,
    found: HashMap<PeerId, PeerSource>,
    tries: HashMap<PeerId, u32>,
    queue: VecDeque<PeerId>,
    retries: Vec<(Instant, PeerId)>,
    /// Broke the protocol: never asked again, not handed to the torrent.
    excluded: HashSet<PeerId>,
    attempts: JoinSet<(PeerId, Result<Vec<u8>, FetchError>)>,
    last_failure: Option<String>,
}

impl<'a> Fetch<'a> {
    fn new(node: &'a NodeHandle, info_hash: InfoHash, per_peer: Duration) -> Self {
        Self {
            node,
            info_hash,
            per_peer,
            found: HashMap::new(),
            tries: HashMap::new(),
            queue: VecDeque::new(),
            retries: Vec::new(),
            excluded: HashSet::new(),
            attempts: JoinSet::new(),
            last_failure: None,
        }
    }

    fn on_found(&mut self, peer: PeerId, source: PeerSource) {
        let known = self.found.contains_key(&peer) || self.excluded.contains(&peer);
        if peer != self.node.peer_id() && !known {
            self.found.insert(peer, source);
            self.queue.push_back(peer);
        }
    }

    /// Queues the retries that are due and asks queued peers, up to [`PARALLEL_FETCHES`] at once.
    fn start_attempts(&mut self) {
        let now = Instant::now();
        let queue = &mut self.queue;
        self.retries.retain(|&(at, peer)| {
            let due = at <= now;
            if due {
                queue.push_back(peer);
            }
            !due
        });
        while self.attempts.len() < PARALLEL_FETCHES {
            let Some(peer) = self.queue.pop_front() else {
                break;
            };
            if self.node.is_banned(&peer) || self.excluded.contains(&peer) {
                continue;
            }
            *self.tries.entry(peer).or_default() += 1;
            let mut control = self.node.stream_control();
            let (info_hash, within) = (self.info_hash, self.per_peer);
            self.attempts.spawn(async move {
                let fetched = metadata::fetch(&mut control, peer, info_hash, within).await;
                (peer, fetched)
            });
        }
    }

    fn next_retry(&self) -> Option<Instant> {
        self.retries.iter().map(|(at, _)| *at).min()
    }

    /// A liar is banned; a peer that broke the protocol is not asked again; any other failure
    /// is retried after [`RETRY_DELAY`], up to [`MAX_TRIES_PER_PEER`] tries in all.
    fn on_failure(&mut self, peer: PeerId, error: FetchError) {
        match error.blame() {
            Blame::Lie => {
                warn!(%peer, %error, "banning a peer that served false metadata");
                self.node.ban(peer);
                self.node.emit(NodeEvent::PeerBanned {
                    peer,
                    reason: error.to_string(),
                });
            }
            Blame::Violation => {
                info!(%peer, %error, "not asking a peer that broke the metadata protocol again");
                self.found.remove(&peer);
                self.excluded.insert(peer);
            }
            Blame::Transient => {
                debug!(%peer, %error, "metadata fetch failed");
                if self.tries.get(&peer).copied().unwrap_or(0) < MAX_TRIES_PER_PEER {
                    self.retries.push((Instant::now() + RETRY_DELAY, peer));
                }
            }
        }
        self.last_failure = Some(format!("{peer}: {error}"));
    }
}

fn no_metadata(add: &AddMagnet, peers: usize, last_failure: Option<&str>) -> NodeError {
    let mut reason = format!(
        "no peer delivered the metadata within {:?} ({peers} peers found",
        add.metadata_timeout
    );
    if let Some(last) = last_failure {
        reason.push_str(&format!("; last failure: {last}"));
    }
    reason.push(')');
    NodeError::Metadata(reason)
}

/// Announces to the magnet link's trackers (tier after tier, backing off when all fail) and
/// dials the peers they return, until the fetch no longer listens.
async fn ask_trackers(
    node: NodeHandle,
    info_hash: shoal_metainfo::InfoHash,
    tiers: Vec<Vec<String>>,
    size: u64,
    found: mpsc::UnboundedSender<(PeerId, PeerSource)>,
) {
    use shoal_tracker::client::{self, Announce, AnnounceEvent, AnnounceSchedule};
    let seed = node_seed(&node);
    let mut schedule = AnnounceSchedule::new(tiers, seed, std::time::Instant::now())
        .with_backoff(node.tracker_backoff());
    let request = |event| Announce {
        info_hash,
        peer_id: client::peer_id(&node.peer_id().to_bytes()),
        port: crate::announce::listen_port(&node),
        uploaded: 0,
        downloaded: 0,
        left: size,
        event,
        numwant: 50,
        key: seed as u32,
    };
    while !found.is_closed() {
        let Some(due) = schedule.next_due() else {
            return;
        };
        tokio::time::sleep_until(due.into()).await;
        let Some((url, event)) = schedule.poll(std::time::Instant::now()) else {
            continue;
        };
        let event = event.or(Some(AnnounceEvent::Started));
        match client::announce(&url, &request(event), TRACKER_TIMEOUT).await {
            Ok(reply) => {
                schedule.on_success(&url, &reply, std::time::Instant::now());
                for address in reply.peers {
                    let multiaddr = libp2p::Multiaddr::from(address.ip())
                        .with(libp2p::multiaddr::Protocol::Tcp(address.port()));
                    let (node, found) = (node.clone(), found.clone());
                    tokio::spawn(async move {
                        if let Ok(peer) = node.dial(multiaddr).await {
                            let _ = found.send((peer, PeerSource::Tracker));
                        }
                    });
                }
            }
            Err(e) => {
                debug!(error = %e, "tracker announce failed");
                schedule.on_error(&url, &e, std::time::Instant::now());
            }
        }
    }
}

/// A per-node number for the tracker schedule's shuffle and the announce key.
fn node_seed(node: &NodeHandle) -> u64 {
    let bytes = node.peer_id().to_bytes();
    bytes
        .iter()
        .rev()
        .take(8)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// Runs DHT lookups until the fetch no longer listens, pausing longer after each.
async fn look_up_while_needed(
    node: NodeHandle,
    info_hash: shoal_metainfo::InfoHash,
    found: mpsc::UnboundedSender<(PeerId, PeerSource)>,
) {
    let mut backoff = FIRST_LOOKUP_BACKOFF;
    while !found.is_closed() {
        let Ok(mut providers) = node.find_providers(info_hash).await else {
            return;
        };
        while let Some(peer) = providers.recv().await {
            if found.send((peer, PeerSource::Dht)).is_err() {
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_LOOKUP_BACKOFF);
    }
}
