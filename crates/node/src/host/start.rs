//! Starting a node: the swarm, its listeners, and the tasks that run it.

use super::*;
use driver::{AddressBook, Host};

/// The identify protocol name: shoal nodes only ever talk to shoal nodes.
const IDENTIFY_PROTOCOL: &str = "/shoal/id/1.0.0";
/// How long `start` waits for the listeners to report their addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// A listener on an unspecified address (`0.0.0.0`, `::`) reports one address per network
/// interface, all at once when it starts: after its first, `start` takes the others that
/// arrive within this time.
const INTERFACE_SETTLE: Duration = Duration::from_millis(250);
/// Connections to one peer: one is the rule; a second covers a simultaneous dial.
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Incoming connections still in their handshake at once.
const MAX_PENDING_INCOMING: u32 = 64;
/// Commands queued to the host task before senders wait.
const COMMAND_QUEUE: usize = 64;
/// Events buffered for each subscriber; a slow subscriber misses the oldest.
const EVENT_QUEUE: usize = 1024;

fn build_swarm(config: &NodeConfig) -> Result<Swarm<Behaviour>, NodeError> {
    let keypair = identity::load_or_create(&config.data_dir)?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(transport::build)
        .map_err(|e| NodeError::Transport(e.to_string()))?
        .with_behaviour(|key| Behaviour {
            refuse_when_full: RefuseWhenFull::new(config.max_connections),
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
            kad: Toggle::from(
                config
                    .dht
                    .enabled
                    .then(|| dht::behaviour(key.public().to_peer_id(), &config.dht)),
            ),
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
    let listen_addrs = listen(&mut swarm, &config.listen).await?;
    for address in &listen_addrs {
        // Provider records and identify carry the addresses we confirm; on a LAN or
        // loopback testnet the listen addresses are the ones to reach us on.
        swarm.add_external_address(address.clone());
    }
    let control = swarm.behaviour().streams.new_control();
    let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let banned = Arc::new(RwLock::new(HashSet::new()));
    let addresses = AddressBook::default();
    let mut host = Host {
        swarm,
        events: events.clone(),
        dials: HashMap::new(),
        banned: banned.clone(),
        addresses: addresses.clone(),
        dht: Dht::new(&config.dht, banned.clone()),
    };
    host.dht.join(&mut host.swarm);
    let limits = rate_limits(&config);
    let router = Router::default();
    let span = info_span!("node", %peer_id);
    let tasks = vec![
        tokio::spawn(host.run(inbox).instrument(span.clone())),
        tokio::spawn(
            streams::accept_loop(control.clone(), router.clone(), limits.clone())
                .instrument(span.clone()),
        ),
        tokio::spawn(pex::accept_loop(control.clone(), router.clone()).instrument(span.clone())),
        tokio::spawn(metadata::accept_loop(control.clone(), router.clone()).instrument(span)),
    ];
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
        addresses,
        dht_enabled: config.dht.enabled,
        pex: config.pex,
        pex_timing: config.pex_timing.clone(),
        corrupt_uploads: config.corrupt_uploads,
        tracker_backoff: config.tracker_backoff,
        peer_send_timeout: config.peer_send_timeout,
        torrents: Arc::new(RwLock::new(Vec::new())),
        tasks: Arc::new(tokio::sync::Mutex::new(tasks)),
    })
}

/// Listens on every address and waits until each listener reports the address it got.
async fn listen(
    swarm: &mut Swarm<Behaviour>,
    addresses: &[Multiaddr],
) -> Result<Vec<Multiaddr>, NodeError> {
    let mut pending = Vec::new();
    for addr in addresses {
        ensure_port_free(addr)?;
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| NodeError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        pending.push((id, addr.clone()));
    }
    wait_for_listeners(swarm, pending).await
}

/// The node-wide upload and download caps, as token buckets shared by every stream.
fn rate_limits(config: &NodeConfig) -> Limits {
    let bucket = |rate: Option<Rate>| {
        rate.map(|r| {
            Arc::new(Mutex::new(TokenBucket::new(
                r,
                r.0 / 4,
                std::time::Instant::now(),
            )))
        })
    };
    Limits {
        upload: bucket(config.upload_limit),
        download: bucket(config.download_limit),
    }
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
    let any_unspecified = pending.iter().any(|(_, addr)| is_unspecified(addr));
    let mut addrs = Vec::new();
    let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
    while !pending.is_empty() {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .map_err(|_| NodeError::Listen {
                addr: pending[0].1.to_string(),
                reason: "no address reported in time".into(),
            })?;
        if let Some(address) = listener_event(event, &mut pending)? {
            addrs.push(address);
        }
    }
    if any_unspecified {
        let settle = tokio::time::Instant::now() + INTERFACE_SETTLE;
        while let Ok(event) = tokio::time::timeout_at(settle, swarm.select_next_some()).await {
            if let Some(address) = listener_event(event, &mut pending)? {
                if !addrs.contains(&address) {
                    addrs.push(address);
                }
            }
        }
    }
    Ok(addrs)
}

fn is_unspecified(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    addr.iter().any(|part| match part {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// A new listen address from `event`, or the error that a pending listener failed with.
fn listener_event(
    event: SwarmEvent<BehaviourEvent>,
    pending: &mut Vec<(libp2p::core::transport::ListenerId, Multiaddr)>,
) -> Result<Option<Multiaddr>, NodeError> {
    let failed = |listener_id, reason: String| {
        pending
            .iter()
            .find(|(id, _)| *id == listener_id)
            .map(|(_, addr)| NodeError::Listen {
                addr: addr.to_string(),
                reason,
            })
    };
    match event {
        SwarmEvent::NewListenAddr {
            listener_id,
            address,
        } => {
            pending.retain(|(id, _)| *id != listener_id);
            Ok(Some(address))
        }
        SwarmEvent::ListenerClosed {
            listener_id,
            reason,
            ..
        } => failed(listener_id, format!("{reason:?}")).map_or(Ok(None), Err),
        SwarmEvent::ListenerError { listener_id, error } => {
            failed(listener_id, error.to_string()).map_or(Ok(None), Err)
        }
        _ => Ok(None),
    }
}
