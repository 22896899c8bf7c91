//! Adding a torrent by magnet link: find peers (the link's `x.pe` peers and `tr` trackers,
//! and the DHT), fetch the info dictionary from them, check it against the info-hash, then download as usual.
//!
//! Up to [`PARALLEL_FETCHES`] peers are asked at once, each for the whole dictionary, so one
//! slow or lying peer neither stalls the fetch nor poisons it: a peer whose bytes do not hash
//! to the info-hash is banned, the others carry on. Every peer found on the way is handed to
//! the torrent afterwards, with the source that found it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use libp2p::PeerId;
use shoal_metainfo::{Magnet, Torrent};
use shoal_storage::StorageConfig;
use shoal_swarm::SwarmConfig;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::NodeError;
use crate::host::{NodeEvent, NodeHandle};
use crate::metadata::{self, FetchError};
use crate::peers::{PeerSource, parse_peer_address};
use crate::torrent::{AddTorrent, TorrentHandle};

/// Peers asked for the metadata at once.
const PARALLEL_FETCHES: usize = 3;
/// Times one peer is asked before it is given up on (a liar is asked once).
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
}

impl AddMagnet {
    pub fn new(magnet: Magnet, download_dir: PathBuf) -> Self {
        Self {
            magnet,
            download_dir,
            swarm: SwarmConfig::default(),
            storage: StorageConfig::default(),
            metadata_timeout: Duration::from_secs(300),
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

/// The verified info bytes, and every peer found on the way with its source.
async fn fetch_metadata(
    node: &NodeHandle,
    add: &AddMagnet,
) -> Result<(Vec<u8>, HashMap<PeerId, PeerSource>), NodeError> {
    let info_hash = add.magnet.info_hash;
    let deadline = Instant::now() + add.metadata_timeout;
    let (found_tx, mut found_rx) = mpsc::unbounded_channel();
    let mut sources = JoinSet::new();
    for text in &add.magnet.peers {
        match parse_peer_address(text) {
            Ok(address) => {
                let (node, found) = (node.clone(), found_tx.clone());
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
        sources.spawn(look_up_while_needed(
            node.clone(),
            info_hash,
            found_tx.clone(),
        ));
    }
    if !add.magnet.trackers.is_empty() {
        let tiers = add
            .magnet
            .trackers
            .iter()
            .map(|t| vec![t.clone()])
            .collect();
        let size = add.magnet.exact_length.unwrap_or(1);
        sources.spawn(ask_trackers(
            node.clone(),
            info_hash,
            tiers,
            size,
            found_tx.clone(),
        ));
    }
    drop(found_tx);

    let mut found: HashMap<PeerId, PeerSource> = HashMap::new();
    let mut tries: HashMap<PeerId, u32> = HashMap::new();
    let mut queue: VecDeque<PeerId> = VecDeque::new();
    let mut retries: Vec<(Instant, PeerId)> = Vec::new();
    let mut attempts = JoinSet::new();
    let mut failures = Vec::new();
    let bytes = loop {
        let now = Instant::now();
        retries.retain(|&(at, peer)| {
            let due = at <= now;
            if due {
                queue.push_back(peer);
            }
            !due
        });
        while attempts.len() < PARALLEL_FETCHES {
            let Some(peer) = queue.pop_front() else { break };
            if node.is_banned(&peer) {
                continue;
            }
            *tries.entry(peer).or_default() += 1;
            let mut control = node.stream_control();
            attempts
                .spawn(async move { (peer, metadata::fetch(&mut control, peer, info_hash).await) });
        }
        let next_retry = retries.iter().map(|(at, _)| *at).min().unwrap_or(deadline);
        tokio::select! {
            Some((peer, source)) = found_rx.recv() => {
                if peer != node.peer_id() && !found.contains_key(&peer) {
                    found.insert(peer, source);
                    queue.push_back(peer);
                }
            }
            Some(done) = attempts.join_next() => {
                let Ok((peer, result)) = done else { continue };
                match result {
                    Ok(bytes) => break bytes,
                    Err(e) => on_failure(node, peer, e, &tries, &mut retries, &mut failures),
                }
            }
            () = tokio::time::sleep_until(next_retry.min(deadline)) => {
                if Instant::now() >= deadline {
                    return Err(no_metadata(add, found.len(), &failures));
                }
            }
        }
    };
    attempts.abort_all();
    sources.abort_all();
    Ok((bytes, found))
}

fn on_failure(
    node: &NodeHandle,
    peer: PeerId,
    error: FetchError,
    tries: &HashMap<PeerId, u32>,
    retries: &mut Vec<(Instant, PeerId)>,
    failures: &mut Vec<String>,
) {
    if error.is_lie() {
        warn!(%peer, %error, "banning a peer that served false metadata");
        node.ban(peer);
        node.emit(NodeEvent::PeerBanned {
            peer,
            reason: error.to_string(),
        });
    } else {
        debug!(%peer, %error, "metadata fetch failed");
        if tries.get(&peer).copied().unwrap_or(0) < MAX_TRIES_PER_PEER {
            retries.push((Instant::now() + RETRY_DELAY, peer));
        }
    }
    failures.push(format!("{peer}: {error}"));
}

fn no_metadata(add: &AddMagnet, peers: usize, failures: &[String]) -> NodeError {
    let mut reason = format!(
        "no peer delivered the metadata within {:?} ({peers} peers found",
        add.metadata_timeout
    );
    if let Some(last) = failures.last() {
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
