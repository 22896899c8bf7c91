//! The libp2p host: one task owns the `Swarm`; everyone else talks to it through a
//! [`NodeHandle`] (commands in, replies on oneshot channels, events on a broadcast channel).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, connection_limits, identify, ping};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use shoal_metainfo::InfoHash;

use crate::error::NodeError;
use crate::identity;
use crate::progress::TorrentStatus;
use crate::rate::{Rate, TokenBucket};
use crate::streams::{self, Limits, Router};
use crate::torrent::{self, AddTorrent, TorrentHandle};
use crate::transport;

/// The identify protocol name: shoal nodes only ever talk to shoal nodes.
const IDENTIFY_PROTOCOL: &str = "/shoal/id/1.0.0";
/// How long `start` waits for the listeners to report their addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections to one peer: one is the rule; a second covers a simultaneous dial.
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Incoming connections still in their handshake at once.
const MAX_PENDING_INCOMING: u32 = 64;
/// Commands queued to the host task before senders wait.
const COMMAND_QUEUE: usize = 64;
/// Events buffered for each subscriber; a slow subscriber misses the oldest.
const EVENT_QUEUE: usize = 1024;

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
    /// Most connections up at once (in and out); more are refused.
    pub max_connections: u32,
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
struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    streams: libp2p_stream::Behaviour,
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NodeError>>),
    Disconnect(PeerId),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
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
    /// tasks have ended and its connections are closed.
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
        let _ = self.commands.send(Command::Shutdown).await;
        for task in self.tasks.lock().await.drain(..) {
            task.abort();
            if let Err(e) = task.await {
                if !e.is_cancelled() {
                    warn!(error = %e, "node task ended abnormally");
                }
            }
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

fn build_swarm(config: &NodeConfig) -> Result<Swarm<Behaviour>, NodeError> {
    let keypair = identity::load_or_create(&config.data_dir)?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(transport::build)
        .map_err(|e| NodeError::Transport(e.to_string()))?
        .with_behaviour(|key| Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(config.max_connections))
                    .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                    .with_max_pending_incoming(Some(MAX_PENDING_INCOMING)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                    .with_agent_version(format!("shoal/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            streams: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| NodeError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok(swarm)
}

/// Starts a node: loads or creates its identity, listens, and returns once every listener has
/// an address.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
    let mut swarm = build_swarm(&config)?;
    let peer_id = *swarm.local_peer_id();
    let mut pending = Vec::new();
    for addr in &config.listen {
        ensure_port_free(addr)?;
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        pending.push((id, addr.clone()));
    }
    let listen_addrs = wait_for_listeners(&mut swarm, pending).await?;
    let control = swarm.behaviour().streams.new_control();
    let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let banned = Arc::new(RwLock::new(HashSet::new()));
    let host = Host {
        swarm,
        events: events.clone(),
        dials: HashMap::new(),
        banned: banned.clone(),
    };
    let span = info_span!("node", %peer_id);
    let bucket = |rate: Option<Rate>| {
        rate.map(|r| {
            Arc::new(Mutex::new(TokenBucket::new(
                r,
                r.0 / 4,
                std::time::Instant::now(),
            )))
        })
    };
    let limits = Limits {
        upload: bucket(config.upload_limit),
        download: bucket(config.download_limit),
    };
    let router = Router::default();
    let host_task = tokio::spawn(host.run(inbox).instrument(span.clone()));
    let acceptor = tokio::spawn(
        streams::accept_loop(control.clone(), router.clone(), limits.clone()).instrument(span),
    );
    Ok(NodeHandle {
        peer_id,
        listen_addrs,
        commands,
        events,
        control,
        data_dir: config.data_dir,
        router,
        limits,
        banned,
        torrents: Arc::new(RwLock::new(Vec::new())),
        tasks: Arc::new(tokio::sync::Mutex::new(vec![host_task, acceptor])),
    })
}

/// libp2p-tcp sets SO_REUSEPORT on every listener, so a second process asking for a port that
/// is taken would silently share it (and get half the connections). A plain bind without that
/// option fails with "address in use" instead, which is what a user needs to hear.
fn ensure_port_free(addr: &Multiaddr) -> Result<(), NodeError> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for part in addr.iter() {
        match part {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind((ip, port))
        .map(drop)
        .map_err(|e| NodeError::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}

async fn wait_for_listeners(
    swarm: &mut Swarm<Behaviour>,
    mut pending: Vec<(libp2p::core::transport::ListenerId, Multiaddr)>,
) -> Result<Vec<Multiaddr>, NodeError> {
    let mut addrs = Vec::new();
    let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
    while !pending.is_empty() {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .map_err(|_| NodeError::Listen {
                addr: pending[0].1.to_string(),
                reason: "no address reported in time".into(),
            })?;
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                pending.retain(|(id, _)| *id != listener_id);
                addrs.push(address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some((_, addr)) = pending.iter().find(|(id, _)| *id == listener_id) {
                    return Err(NodeError::Listen {
                        addr: addr.to_string(),
                        reason: format!("{reason:?}"),
                    });
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                if let Some((_, addr)) = pending.iter().find(|(id, _)| *id == listener_id) {
                    return Err(NodeError::Listen {
                        addr: addr.to_string(),
                        reason: error.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(addrs)
}

struct Host {
    swarm: Swarm<Behaviour>,
    events: broadcast::Sender<NodeEvent>,
    dials: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, NodeError>>)>,
    banned: Arc<RwLock<HashSet<PeerId>>>,
}

impl Host {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.handle_command(command),
                },
                event = self.swarm.select_next_some() => self.handle_event(event),
            }
        }
        info!("node stopped");
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Dial(address, reply) => {
                let opts = DialOpts::from(address.clone());
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (address, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Dial {
                            addr: address.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::Disconnect(peer) => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Shutdown => {}
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if self.banned.read().is_ok_and(|b| b.contains(&peer_id)) {
                    debug!(peer = %peer_id, "refused a banned peer");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    if let Some((address, reply)) = self.dials.remove(&connection_id) {
                        let _ = reply.send(Err(NodeError::Dial {
                            addr: address.to_string(),
                            reason: format!("{peer_id} is banned"),
                        }));
                    }
                    return;
                }
                debug!(peer = %peer_id, "connected");
                if let Some((_, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                let _ = self.events.send(NodeEvent::PeerConnected {
                    peer: peer_id,
                    address: endpoint.get_remote_address().clone(),
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                debug!(peer = %peer_id, "disconnected");
                let _ = self
                    .events
                    .send(NodeEvent::PeerDisconnected { peer: peer_id });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let Some((address, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        addr: address.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                // Remember where the peer listens, so later dials by PeerId can find it.
                for address in info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, address);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            _ => {}
        }
    }
}
