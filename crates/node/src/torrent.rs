//! Adding a torrent to a node, and the handle that drives it.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use libp2p::Multiaddr;
use shoal_metainfo::{InfoHash, Torrent};
use shoal_storage::{OpenReport, Storage, StorageConfig};
use shoal_swarm::{SwarmConfig, Torrent as Engine};
use shoal_wire::Bitfield;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::error::NodeError;
use crate::host::NodeHandle;
use crate::peers::PeerSource;
use crate::progress::{TorrentProgress, TorrentStatus};
use crate::session::{Discovery, Session, TorrentCommand};

/// Streams queued for a torrent before the acceptor waits.
const STREAM_QUEUE: usize = 64;

/// A torrent to seed or fetch.
#[derive(Debug, Clone)]
pub struct AddTorrent {
    pub torrent: Torrent,
    /// Where the content is (seeding) or goes (fetching): the torrent's files are created
    /// below it, under the torrent's name.
    pub download_dir: PathBuf,
    pub swarm: SwarmConfig,
    pub storage: StorageConfig,
    /// Trackers to announce to besides the torrent's own (`--tracker`), each its own tier.
    pub trackers: Vec<String>,
}

impl AddTorrent {
    pub fn new(torrent: Torrent, download_dir: PathBuf) -> Self {
        Self {
            torrent,
            download_dir,
            swarm: SwarmConfig::default(),
            storage: StorageConfig::default(),
            trackers: Vec::new(),
        }
    }

    /// The torrent's tracker tiers, then each extra tracker not listed already.
    fn tracker_tiers(&self) -> Vec<Vec<String>> {
        let mut tiers = self.torrent.trackers.clone();
        for url in &self.trackers {
            if !tiers.iter().flatten().any(|known| known == url) {
                tiers.push(vec![url.clone()]);
            }
        }
        tiers
    }
}

/// Drives one torrent of a node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TorrentHandle {
    info_hash: InfoHash,
    commands: mpsc::Sender<TorrentCommand>,
    progress: watch::Receiver<TorrentProgress>,
    open_report: OpenReport,
    /// The torrent's task, for [`NodeHandle::abort`].
    task: AbortHandle,
}

impl TorrentHandle {
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// What opening the storage found (resume file used, pieces rechecked, pieces present).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// Connects to a peer at `address` (a multiaddr, with or without `/p2p/<id>`) and trades
    /// with it.
    pub async fn add_peer(&self, address: Multiaddr) -> Result<(), NodeError> {
        self.commands
            .send(TorrentCommand::AddPeer(address, PeerSource::Manual))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Connects to a peer known by identity, at `addresses` or wherever the node knows it
    /// listens, and trades with it.
    pub async fn add_peer_id(
        &self,
        peer: libp2p::PeerId,
        addresses: Vec<Multiaddr>,
        source: PeerSource,
    ) -> Result<(), NodeError> {
        self.commands
            .send(TorrentCommand::AddPeerId(peer, addresses, source))
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Progress updates; `borrow()` gives the latest.
    pub fn progress(&self) -> watch::Receiver<TorrentProgress> {
        self.progress.clone()
    }

    /// Waits until every piece is verified on disk; fails if the torrent stopped first (its
    /// disk kept failing: [`NodeError::Storage`]).
    pub async fn wait_complete(&self) -> Result<(), NodeError> {
        let mut progress = self.progress.clone();
        let done = progress
            .wait_for(|p| p.complete || p.error.is_some())
            .await
            .map_err(|_| NodeError::Stopped)?;
        match &done.error {
            Some(error) if !done.complete => Err(NodeError::Storage(error.clone())),
            _ => Ok(()),
        }
    }

    /// The engine's figures and the connected peers.
    pub async fn status(&self) -> Result<TorrentStatus, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(TorrentCommand::Status(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    /// Ends the torrent's task at once, with none of what [`TorrentHandle::stop`] does.
    pub(crate) fn abort(&self) {
        self.task.abort();
    }

    /// Stops trading, closes every peer stream and saves the resume state.
    pub async fn stop(&self) -> Result<(), NodeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(TorrentCommand::Stop(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)
    }
}

/// The engine's RNG seed: different on every node and torrent, so peers do not all pick the
/// same pieces, yet reproducible for a given node identity and torrent.
fn rng_seed(node: &NodeHandle, info_hash: &InfoHash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    node.peer_id().hash(&mut hasher);
    info_hash.hash(&mut hasher);
    hasher.finish()
}

pub(crate) async fn add(node: &NodeHandle, add: AddTorrent) -> Result<TorrentHandle, NodeError> {
    let info_hash = add.torrent.info_hash;
    let info = add.torrent.info.clone();
    let state_dir = node.data_dir().join("torrents").join(info_hash.to_hex());
    let download_dir = add.download_dir.clone();
    let storage_config = add.storage.clone();
    let opened = tokio::task::spawn_blocking(move || {
        Storage::open(info_hash, &info, &download_dir, &state_dir, storage_config)
    })
    .await
    .map_err(|e| NodeError::Storage(e.to_string()))?
    .map_err(|e| NodeError::Storage(e.to_string()))?;
    let geometry = add.torrent.info.geometry();
    if add.storage.read_only && !opened.have.is_full() {
        // Nothing could be downloaded into read-only files.
        let (have, total) = (opened.have.count(), geometry.num_pieces());
        let storage = opened.storage;
        let _ = tokio::task::spawn_blocking(move || storage.close()).await;
        return Err(NodeError::IncompleteData { have, total });
    }
    let trackers = add.tracker_tiers();
    let mut have = Bitfield::new(geometry.num_pieces());
    for piece in 0..geometry.num_pieces() {
        if opened.have.contains(piece) {
            have.set(piece, true);
        }
    }
    let engine = Engine::new(
        add.swarm,
        geometry,
        have,
        rng_seed(node, &info_hash),
        Instant::now(),
    )
    .map_err(|e| NodeError::Storage(e.to_string()))?;
    let initial = TorrentProgress::from_stats(&engine.stats(), engine.is_complete());
    let (progress_tx, progress) = watch::channel(initial);
    let (stream_tx, streams) = mpsc::channel(STREAM_QUEUE);
    let (commands, inbox) = mpsc::channel(STREAM_QUEUE);
    let discovery = Discovery {
        private: add.torrent.info.private,
        trackers,
        total_size: add.torrent.info.total_size,
        piece_length: geometry.piece_length(),
        rng_seed: rng_seed(node, &info_hash),
    };
    let (session, inputs) = Session::new(
        engine,
        Arc::new(opened.storage),
        node.clone(),
        discovery,
        progress_tx,
    )
    .map_err(|e| NodeError::Storage(format!("cannot start disk threads: {e}")))?;
    node.router().register(info_hash, stream_tx);
    node.router().register_metadata(
        info_hash,
        bytes::Bytes::from(add.torrent.info_bytes.clone()),
    );
    let router = node.router();
    let task = tokio::spawn(async move {
        session.run(inputs, streams, inbox).await;
        router.unregister(&info_hash);
    });
    Ok(TorrentHandle {
        info_hash,
        commands,
        progress,
        open_report: opened.report,
        task: task.abort_handle(),
    })
}
