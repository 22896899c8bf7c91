//! The host task: it owns the `Swarm`, carries out commands and turns swarm events into node
//! events and DHT bookkeeping.

use libp2p::multiaddr::Protocol;

use super::*;

/// How often the host checks its DHT routing table and repeats announcements that reached
/// nobody.
const DHT_TICK: Duration = Duration::from_secs(5);
/// Listen addresses kept per peer (learned through identify, shared over PEX).
const MAX_ADDRS_PER_PEER: usize = 8;

/// Where the outcome of a dial goes.
type DialReply = oneshot::Sender<Result<PeerId, NodeError>>;

/// Where each peer listens, as identify told us.
pub(super) type AddressBook = Arc<RwLock<HashMap<PeerId, Vec<Multiaddr>>>>;

pub(super) struct Host {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    /// Dials someone waits for, with what was dialed (for error messages).
    pub(super) dials: HashMap<ConnectionId, (String, DialReply)>,
    pub(super) banned: Arc<RwLock<HashSet<PeerId>>>,
    pub(super) addresses: AddressBook,
    pub(super) dht: Dht,
}

impl Host {
    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let mut dht_tick = tokio::time::interval(DHT_TICK);
        dht_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.handle_command(command),
                },
                event = self.swarm.select_next_some() => self.handle_event(event),
                _ = dht_tick.tick() => self.dht.tick(&mut self.swarm),
            }
        }
        info!("node stopped");
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Dial(address, reply) => self.dial_address(address, reply),
            Command::DialPeer(peer, addresses, reply) => self.dial_peer(peer, addresses, reply),
            Command::Disconnect(peer) => {
                let _ = self.swarm.disconnect_peer_id(peer);
                self.dht.on_banned(&mut self.swarm, peer);
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Provide(info_hash) => self.dht.provide(&mut self.swarm, info_hash),
            Command::StopProviding(info_hash) => {
                self.dht.stop_providing(&mut self.swarm, info_hash);
            }
            Command::FindProviders(info_hash, found) => {
                self.dht.lookup(&mut self.swarm, info_hash, found);
            }
            Command::StoredProviders(info_hash, reply) => {
                let _ = reply.send(self.dht.stored_providers(&mut self.swarm, info_hash));
            }
            Command::DhtStats(reply) => {
                let _ = reply.send(self.dht.stats(&mut self.swarm));
            }
            Command::Shutdown => {}
        }
    }

    /// Dials an address. One that names the peer (`/p2p/<id>`) is not dialed again while that
    /// peer is connected (a DHT or PEX connection may be up already): the answer is the peer.
    fn dial_address(&mut self, address: Multiaddr, reply: DialReply) {
        if let Some(Protocol::P2p(peer)) = address.iter().last() {
            if self.swarm.is_connected(&peer) {
                let _ = reply.send(Ok(peer));
                return;
            }
        }
        let opts = DialOpts::from(address.clone());
        self.start_dial(opts, address.to_string(), reply);
    }

    /// Dials `peer` at `addresses` or at the addresses the node knows, unless it is connected.
    fn dial_peer(&mut self, peer: PeerId, addresses: Vec<Multiaddr>, reply: DialReply) {
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::Disconnected)
            .addresses(addresses)
            .extend_addresses_through_behaviour()
            .allocate_new_port()
            .build();
        self.start_dial(opts, peer.to_string(), reply);
    }

    fn start_dial(&mut self, opts: DialOpts, shown: String, reply: DialReply) {
        let id = opts.connection_id();
        let peer = opts.get_peer_id();
        match (self.swarm.dial(opts), peer) {
            (Ok(()), _) => {
                self.dials.insert(id, (shown, reply));
            }
            // Connected already (only dials by peer id carry a condition).
            (Err(DialError::DialPeerConditionFalse(_)), Some(peer)) => {
                let _ = reply.send(Ok(peer));
            }
            (Err(e), _) => {
                let _ = reply.send(Err(NodeError::Dial {
                    addr: shown,
                    reason: dial_error_reason(&e),
                }));
            }
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.on_connection(peer_id, connection_id, endpoint.get_remote_address()),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.on_disconnected(peer_id),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                self.dht.on_dial_failed(peer_id);
                if let Some((address, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        addr: address,
                        reason: dial_error_reason(&error),
                    }));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identified(peer_id, info),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                self.dht.on_event(&mut self.swarm, event);
            }
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            _ => {}
        }
    }

    fn on_connection(&mut self, peer: PeerId, connection: ConnectionId, address: &Multiaddr) {
        if self.banned.read().is_ok_and(|b| b.contains(&peer)) {
            debug!(%peer, "refused a banned peer");
            let _ = self.swarm.disconnect_peer_id(peer);
            self.dht.on_banned(&mut self.swarm, peer);
            if let Some((address, reply)) = self.dials.remove(&connection) {
                let _ = reply.send(Err(NodeError::Dial {
                    addr: address,
                    reason: format!("{peer} is banned"),
                }));
            }
            return;
        }
        debug!(%peer, "connected");
        if let Some((_, reply)) = self.dials.remove(&connection) {
            let _ = reply.send(Ok(peer));
        }
        self.dht.on_connected(peer);
        let _ = self.events.send(NodeEvent::PeerConnected {
            peer,
            address: address.clone(),
        });
    }

    fn on_disconnected(&mut self, peer: PeerId) {
        debug!(%peer, "disconnected");
        if let Ok(mut book) = self.addresses.write() {
            book.remove(&peer);
        }
        let _ = self.events.send(NodeEvent::PeerDisconnected { peer });
    }

    /// Remembers where the peer listens, so later dials by PeerId (and PEX) can find it.
    fn on_identified(&mut self, peer: PeerId, info: identify::Info) {
        let addrs: Vec<Multiaddr> = info
            .listen_addrs
            .into_iter()
            .take(MAX_ADDRS_PER_PEER)
            .collect();
        for address in &addrs {
            self.swarm.add_peer_address(peer, address.clone());
        }
        self.dht
            .on_identified(&mut self.swarm, peer, &info.protocols, &addrs);
        if let Ok(mut book) = self.addresses.write() {
            book.insert(peer, addrs);
        }
    }
}

/// Why a dial failed, with the cause libp2p keeps behind a bare "Dial error" (a connection
/// limit, for one).
fn dial_error_reason(error: &DialError) -> String {
    match error {
        DialError::Denied { cause } => format!("connection denied: {cause}"),
        other => other.to_string(),
    }
}
