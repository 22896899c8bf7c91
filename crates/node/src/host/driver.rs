//! The host task: it owns the `Swarm`, carries out commands and turns swarm events into node
//! events and DHT bookkeeping.

use super::*;

/// How often the host checks its DHT routing table and repeats announcements that reached
/// nobody.
const DHT_TICK: Duration = Duration::from_secs(5);
/// Listen addresses kept per peer (learned through identify, shared over PEX).
const MAX_ADDRS_PER_PEER: usize = 8;

/// Where each peer listens, as identify told us.
pub(super) type AddressBook = Arc<RwLock<HashMap<PeerId, Vec<Multiaddr>>>>;

pub(super) struct Host {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    /// Dials someone waits for, with what was dialed (for error messages).
    pub(super) dials: HashMap<ConnectionId, (String, oneshot::Sender<Result<PeerId, NodeError>>)>,
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
            Command::Dial(address, reply) => {
                let opts = DialOpts::from(address.clone());
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (address.to_string(), reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Dial {
                            addr: address.to_string(),
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::DialPeer(peer, addresses, reply) => {
                let shown = format!("{peer}");
                let opts = DialOpts::peer_id(peer)
                    .condition(PeerCondition::Disconnected)
                    .addresses(addresses)
                    .extend_addresses_through_behaviour()
                    .allocate_new_port()
                    .build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (shown, reply));
                    }
                    Err(DialError::DialPeerConditionFalse(_)) => {
                        let _ = reply.send(Ok(peer));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Dial {
                            addr: shown,
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
            Command::Provide(info_hash) => self.dht.provide(&mut self.swarm, info_hash),
            Command::StopProviding(info_hash) => {
                self.dht.stop_providing(&mut self.swarm, info_hash);
            }
            Command::FindProviders(info_hash, found) => {
                self.dht.lookup(&mut self.swarm, info_hash, found);
            }
            Command::DhtStats(reply) => {
                let _ = reply.send(self.dht.stats(&mut self.swarm));
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
                            addr: address,
                            reason: format!("{peer_id} is banned"),
                        }));
                    }
                    return;
                }
                debug!(peer = %peer_id, "connected");
                if let Some((_, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                self.dht.on_connected(peer_id);
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
                if let Ok(mut book) = self.addresses.write() {
                    book.remove(&peer_id);
                }
                let _ = self
                    .events
                    .send(NodeEvent::PeerDisconnected { peer: peer_id });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                self.dht.on_dial_failed(peer_id);
                if let Some((address, reply)) = self.dials.remove(&connection_id) {
                    let _ = reply.send(Err(NodeError::Dial {
                        addr: address,
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
                let addrs: Vec<Multiaddr> = info
                    .listen_addrs
                    .into_iter()
                    .take(MAX_ADDRS_PER_PEER)
                    .collect();
                for address in &addrs {
                    self.swarm.add_peer_address(peer_id, address.clone());
                }
                self.dht
                    .on_identified(&mut self.swarm, peer_id, &info.protocols, &addrs);
                if let Ok(mut book) = self.addresses.write() {
                    book.insert(peer_id, addrs);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                self.dht.on_event(&mut self.swarm, event);
            }
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            _ => {}
        }
    }
}
