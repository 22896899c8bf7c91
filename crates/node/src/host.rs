//! The libp2p host: one task owns the `Swarm`; everyone else talks to it through a
//! [`NodeHandle`] (commands in, replies on oneshot channels, events on a broadcast channel).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::{self, store::MemoryStore};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, connection_limits, identify, ping};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use shoal_metainfo::{InfoHash, Torrent};
use shoal_swarm::PexConfig;
use shoal_tracker::client::AnnounceBackoff;

use crate::dht::{self, Dht, DhtConfig, DhtStats};
use crate::error::NodeError;
use crate::identity;
use crate::magnet::{self, AddMagnet};
use crate::metadata;
use crate::pex;
use crate::progress::TorrentStatus;
use crate::rate::{Rate, TokenBucket};
use crate::streams::{self, Limits, Router};
use crate::torrent::{self, AddTorrent, TorrentHandle};
use crate::transport;

mod driver;
mod refuse_when_full;
mod start;

use driver::AddressBook;
use refuse_when_full::RefuseWhenFull;
pub use start::start;

/// The longest [`NodeHandle::shutdown`] waits for the host task to take the command, and for
/// each node task to end once aborted.
const SHUTDOWN_STEP: Duration = Duration::from_secs(10);

/// How a node is set up. Tests build it directly; the CLI maps its flags onto it.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Addresses to listen on. Port 0 picks a free port.
    pub listen: Vec<Multiaddr>,
    /// Where the node keeps its identity key (and, later, resume state).
    pub data_dir: PathBuf,
    /// How long a connection with no open stream stays up.
    pub idle_connection_timeout: Duration,
    /// Cap on the node's total upload (all torrents, all peers).
    pub upload_limit: Option<Rate>,
    /// Cap on the node's total download.
    pub download_limit: Option<Rate>,
    /// Most connections up at once (in and out); more are refused (an incoming one before
    /// its handshake when the node is already full).
    pub max_connections: u32,
    /// The Kademlia DHT: on or off, bootstrap nodes, record lifetimes and limits.
    pub dht: DhtConfig,
    /// Peer exchange with the peers of each (public) torrent (`--no-pex` turns it off).
    pub pex: bool,
    /// PEX timing and limits: one message a minute per peer, the first 5 s after connecting.
    pub pex_timing: PexConfig,
    /// Testnets only: answer every request with corrupt data, to play a hostile peer.
    pub corrupt_uploads: bool,
    /// The wait after every tracker of a torrent failed: 15 s, doubling up to 30 min by
    /// default (tests shorten it).
    pub tracker_backoff: AnnounceBackoff,
    /// A peer whose stream takes nothing we send for this long is dropped (60 s by default;
    /// tests shorten it; the upload limit's own waits do not count). Meanwhile, while
    /// thousands of our messages wait for it, it is not read from either, so it cannot grow
    /// that queue.
    pub peer_send_timeout: Duration,
}

impl NodeConfig {
    /// A node listening on a free loopback TCP port.
    pub fn loopback(data_dir: PathBuf) -> Self {
        Self {
            listen: vec![loopback_any_port()],
            data_dir,
            idle_connection_timeout: Duration::from_secs(60),
            upload_limit: None,
            download_limit: None,
            max_connections: 512,
            dht: DhtConfig::default(),
            pex: true,
            pex_timing: PexConfig::default(),
            corrupt_uploads: false,
            tracker_backoff: AnnounceBackoff::default(),
            peer_send_timeout: Duration::from_secs(60),
        }
    }
}

fn loopback_any_port() -> Multiaddr {
    Multiaddr::from(std::net::Ipv4Addr::LOCALHOST).with(libp2p::multiaddr::Protocol::Tcp(0))
}

/// Something that happened on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    PeerConnected {
        peer: PeerId,
        address: Multiaddr,
    },
    PeerDisconnected {
        peer: PeerId,
    },
    /// Every piece of a torrent is verified on disk (emitted once per download).
    TorrentCompleted {
        info_hash: InfoHash,
    },
    /// A peer sent data that failed verification too often and is refused from now on.
    PeerBanned {
        peer: PeerId,
        reason: String,
    },
}

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First, so that a full node refuses before anything else looks at the connection.
    refuse_when_full: RefuseWhenFull,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    pub(crate) kad: Toggle<kad::Behaviour<MemoryStore>>,
    streams: libp2p_stream::Behaviour,
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NodeError>>),
    DialPeer(
        PeerId,
        Vec<Multiaddr>,
        oneshot::Sender<Result<PeerId, NodeError>>,
    ),
    Disconnect(PeerId),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    Provide(InfoHash),
    StopProviding(InfoHash),
    FindProviders(InfoHash, mpsc::UnboundedSender<PeerId>),
    StoredProviders(InfoHash, oneshot::Sender<Vec<PeerId>>),
    DhtStats(oneshot::Sender<DhtStats>),
    Shutdown,
}

/// The cheap, cloneable handle through which the CLI, tests and the testnet drive a node.
#[derive(Clone)]
pub struct NodeHandle {
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    control: libp2p_stream::Control,
    data_dir: PathBuf,
    router: Router,
    limits: Limits,
    banned: Arc<RwLock<HashSet<PeerId>>>,
    addresses: AddressBook,
    dht_enabled: bool,
    pex: bool,
    pex_timing: PexConfig,
    corrupt_uploads: bool,
    tracker_backoff: AnnounceBackoff,
    peer_send_timeout: Duration,
    torrents: Arc<RwLock<Vec<TorrentHandle>>>,
    tasks: Arc<tokio::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("peer_id", &self.peer_id)
            .field("listen_addrs", &self.listen_addrs)
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses the node listens on, each ending in `/p2p/<peer id>`, ready to share.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen_addrs
            .iter()
            .map(|a| a.clone().with_p2p(self.peer_id).unwrap_or_else(|a| a))
            .collect()
    }

    /// Connects to a peer; resolves once the connection is up (Noise handshake done).
    pub async fn dial(&self, address: Multiaddr) -> Result<PeerId, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Dial(address, reply)).await?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    /// Connects to `peer` at one of `addresses` (or at addresses the node already knows),
    /// unless it is connected already.
    pub async fn dial_peer(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    ) -> Result<PeerId, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::DialPeer(peer, addresses, reply)).await?;
        answer.await.map_err(|_| NodeError::Stopped)?
    }

    /// Where `peer` said it listens (identify), for sharing over PEX.
    pub fn peer_addresses(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.addresses
            .read()
            .ok()
            .and_then(|book| book.get(peer).cloned())
            .unwrap_or_default()
    }

    /// Whether this node takes part in the DHT.
    pub fn dht_enabled(&self) -> bool {
        self.dht_enabled
    }

    /// Whether this node exchanges peers (PEX) on public torrents.
    pub fn pex_enabled(&self) -> bool {
        self.pex
    }

    pub(crate) fn pex_timing(&self) -> PexConfig {
        self.pex_timing.clone()
    }

    pub(crate) fn corrupt_uploads(&self) -> bool {
        self.corrupt_uploads
    }

    pub(crate) fn tracker_backoff(&self) -> AnnounceBackoff {
        self.tracker_backoff
    }

    pub(crate) fn peer_send_timeout(&self) -> Duration {
        self.peer_send_timeout
    }

    /// Becomes a DHT provider for `info_hash` (announced at once, then republished).
    pub(crate) async fn provide(&self, info_hash: InfoHash) -> Result<(), NodeError> {
        self.send(Command::Provide(info_hash)).await
    }

    pub(crate) async fn stop_providing(&self, info_hash: InfoHash) -> Result<(), NodeError> {
        self.send(Command::StopProviding(info_hash)).await
    }

    /// Looks up the providers of `info_hash` in the DHT; each arrives once connected. The
    /// receiver ends when the lookup has finished and its dials are settled.
    pub async fn find_providers(
        &self,
        info_hash: InfoHash,
    ) -> Result<mpsc::UnboundedReceiver<PeerId>, NodeError> {
        let (found, providers) = mpsc::unbounded_channel();
        self.send(Command::FindProviders(info_hash, found)).await?;
        Ok(providers)
    }

    /// The providers of `info_hash` that this node's own DHT store holds (records it keeps for
    /// other nodes, and its own if it provides the torrent), without asking the network. For
    /// tests and testnets: which nodes hold a record, and whether it is still there.
    pub async fn stored_providers(&self, info_hash: InfoHash) -> Result<Vec<PeerId>, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::StoredProviders(info_hash, reply))
            .await?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    /// The DHT's figures: routing table size, provided keys, announcements, lookups.
    pub async fn dht_stats(&self) -> Result<DhtStats, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::DhtStats(reply)).await?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ConnectedPeers(reply)).await?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    /// Node events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Opens and accepts streams of shoal's own protocols.
    pub fn stream_control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    /// Stops every torrent (saving its resume state), then the node, and waits until its
    /// tasks have ended and its connections are closed. A torrent takes as long as its disk
    /// needs to save its data; the node's own steps are bounded (10 s each; one that
    /// overruns is logged and cut short).
    pub async fn shutdown(&self) {
        let torrents: Vec<TorrentHandle> = self
            .torrents
            .write()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for torrent in torrents {
            // A torrent stopped earlier has nothing left to do.
            let _ = torrent.stop().await;
        }
        if tokio::time::timeout(SHUTDOWN_STEP, self.commands.send(Command::Shutdown))
            .await
            .is_err()
        {
            warn!("the host task did not take the shutdown in time; aborting it");
        }
        for task in self.tasks.lock().await.drain(..) {
            task.abort();
            match tokio::time::timeout(SHUTDOWN_STEP, task).await {
                Ok(Err(e)) if !e.is_cancelled() => warn!(error = %e, "node task ended abnormally"),
                Ok(_) => {}
                Err(_) => warn!("a node task did not end in time after it was aborted"),
            }
        }
    }

    /// Ends the node at once, the way `kill -9` ends a `shoal` process: every torrent's task
    /// and every node task is aborted, and nothing says goodbye. No torrent is stopped, so its
    /// trackers get no `stopped` announce and its resume state is not saved again (what was
    /// saved before stays); connections drop with the host task. Testnets kill in-process
    /// nodes with it; [`NodeHandle::shutdown`] is the clean way to stop.
    pub fn abort(&self) {
        let torrents: Vec<TorrentHandle> = self
            .torrents
            .write()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for torrent in &torrents {
            torrent.abort();
        }
        match self.tasks.try_lock() {
            Ok(mut tasks) => tasks.drain(..).for_each(|task| task.abort()),
            // `shutdown` holds them and ends them itself.
            Err(_) => debug!("abort during shutdown: the shutdown ends the node's tasks"),
        }
    }

    /// Starts seeding or fetching a torrent.
    pub async fn add_torrent(&self, add: AddTorrent) -> Result<TorrentHandle, NodeError> {
        let handle = torrent::add(self, add).await?;
        if let Ok(mut torrents) = self.torrents.write() {
            torrents.push(handle.clone());
        }
        Ok(handle)
    }

    /// Fetches a magnet link's metadata from peers (the link's `x.pe` peers and the DHT),
    /// verifies it against the info-hash, and starts fetching the torrent. Returns once the
    /// metadata is in, with the torrent it describes (to save as a `.torrent`).
    pub async fn add_magnet(&self, add: AddMagnet) -> Result<(Torrent, TorrentHandle), NodeError> {
        magnet::add(self, add).await
    }

    /// Every running torrent's status, keyed by its info-hash in hex.
    pub async fn torrent_statuses(&self) -> Vec<(String, TorrentStatus)> {
        let handles: Vec<TorrentHandle> =
            self.torrents.read().map(|t| t.clone()).unwrap_or_default();
        let mut statuses = Vec::new();
        let mut stopped = Vec::new();
        for handle in handles {
            match handle.status().await {
                Ok(status) => statuses.push((handle.info_hash().to_hex(), status)),
                Err(_) => stopped.push(handle.info_hash()),
            }
        }
        // A torrent stopped through its handle leaves the registry here.
        if let Ok(mut torrents) = self.torrents.write() {
            torrents.retain(|t| !stopped.contains(&t.info_hash()));
        }
        statuses
    }

    pub(crate) fn emit(&self, event: NodeEvent) {
        let _ = self.events.send(event);
    }

    /// Closes every connection to `peer` and refuses it from now on.
    pub fn ban(&self, peer: PeerId) {
        if let Ok(mut banned) = self.banned.write() {
            banned.insert(peer);
        }
        let _ = self.commands.try_send(Command::Disconnect(peer));
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.read().is_ok_and(|b| b.contains(peer))
    }

    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where incoming piece-exchange streams go, by info-hash. Torrents register themselves;
    /// tools that speak the protocol directly (tests, hostile testnet peers) may too.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits.clone()
    }

    async fn send(&self, command: Command) -> Result<(), NodeError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NodeError::Stopped)
    }
}
