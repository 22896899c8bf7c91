//! One torrent on a node: the task that owns its engine (shoal-swarm) and storage, and the
//! reader and writer tasks of each peer stream.
//!
//! The session loop feeds the engine (peer messages, disk results, timeouts) and carries out
//! its actions: messages go to the peer's writer task, disk work runs on blocking threads and
//! comes back as events. Nothing else touches the engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};
use shoal_metainfo::InfoHash;
use shoal_storage::Storage;
use shoal_swarm::{Action, DisconnectReason, Event, PeerKey, Torrent as Engine};
use shoal_wire::{BlockRef, HaveState, Message, Validator};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::disk::{Disk, Done, Job, Reply};
use crate::host::{NodeEvent, NodeHandle};
use crate::peers::{FoundPeers, PeerSource};
use crate::progress::{PeerStatus, TorrentProgress, TorrentStatus};
use crate::streams::{Limits, PeerStream};

mod discovery;
mod disk_health;
mod links;
mod no_redial;
mod peering;
mod recent_dials;

use disk_health::DiskHealth;
use no_redial::NoRedial;
use recent_dials::RecentDials;

use discovery::{Lookup, MAX_REMEMBERED_DIALS, PEX_REDIAL, PexInbox, TRACKER_REDIAL};
pub(crate) use links::Conn;
use links::{Outgoing, PeerLink};

/// Requests to a session from its [`crate::TorrentHandle`].
pub(crate) enum TorrentCommand {
    AddPeer(Multiaddr, PeerSource),
    /// A peer known by identity (DHT, PEX, metadata exchange), at these or known addresses.
    AddPeerId(PeerId, Vec<Multiaddr>, PeerSource),
    Status(oneshot::Sender<TorrentStatus>),
    Stop(oneshot::Sender<()>),
}

/// Byte counters and rates are republished at most this often; a new piece, peer count or
/// completion goes out at once. Every publication wakes every watcher (the CLI's progress
/// loop, on another thread): publishing after every block cost a wake-up per 16 KiB.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Peer messages queued to the session before readers wait: a fast sender is throttled by its
/// own TCP window instead of growing our memory.
const PEER_MESSAGE_QUEUE: usize = 1024;

/// Peers whose engine key a torrent remembers after they left (see [`Conn`]).
const MAX_REMEMBERED_PEERS: usize = 65_536;
/// How often a torrent asks storage whether a resume record is due.
const FLUSH_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Queued inputs of each kind the session takes in one turn besides the one that woke it, so
/// that the engine's actions for a burst of blocks go out together (one disk job, one flush
/// per peer) while timers and commands still get their turn.
const MAX_INPUTS_PER_TURN: usize = 256;

/// The session's incoming queues: peer messages (bounded) and everything else (bounded by
/// the engine: one reply per disk job or dial it asked for).
pub(crate) struct Inputs {
    messages: mpsc::Receiver<(Conn, Message)>,
    others: mpsc::UnboundedReceiver<Input>,
    pex: PexInbox,
    tracker_peers: mpsc::UnboundedReceiver<Vec<std::net::SocketAddr>>,
}

/// How a torrent finds peers, fixed when it is added.
pub(crate) struct Discovery {
    pub(crate) private: bool,
    /// Tracker tiers (BEP 12), the torrent's own and any added by the user.
    pub(crate) trackers: Vec<Vec<String>>,
    pub(crate) total_size: u64,
    pub(crate) piece_length: u64,
    pub(crate) rng_seed: u64,
}

/// What the session's helper tasks report back, besides peer messages.
pub(crate) enum Input {
    Closed(Conn, String),
    /// Results of one disk job, in order.
    Disk(Vec<DiskResult>),
    /// Blocks written to a peer's stream.
    Uploaded(Conn, Vec<BlockRef>),
    /// An outbound stream, with the have-state our handshake carried.
    Dialed(Box<Result<(PeerStream, HaveState), String>>, PeerSource),
}

/// A disk result for the engine; `failure`: what the disk said, if the operation failed.
pub(crate) struct DiskResult {
    event: Event,
    failure: Option<String>,
}

/// Whom to dial: an address (the peer's identity comes with the connection) or an identity.
enum Target {
    Address(Multiaddr),
    Peer(PeerId, Vec<Multiaddr>),
}

pub(crate) struct Session {
    info_hash: InfoHash,
    engine: Engine,
    storage: Arc<Storage>,
    disk: Disk,
    validator: Arc<Validator>,
    node: NodeHandle,
    limits: Limits,
    peers: HashMap<PeerKey, PeerLink>,
    /// The connected peers' keys.
    keys: HashMap<PeerId, PeerKey>,
    /// Every key handed out, kept after the peer leaves so that it gets the same key again.
    identities: HashMap<PeerId, PeerKey>,
    /// Distinct peers found by each source, for stats.
    found: FoundPeers,
    /// Seeds we or they closed the connection to while we were complete: not dialed again
    /// for a while (they would be dropped again).
    no_redial: NoRedial,
    next_key: u64,
    next_serial: u64,
    input_tx: mpsc::UnboundedSender<Input>,
    message_tx: mpsc::Sender<(Conn, Message)>,
    progress: watch::Sender<TorrentProgress>,
    /// When held-back progress is to be published; `None` while the published one is current.
    progress_due: Option<Instant>,
    last_published: Instant,
    completed: bool,
    /// Consecutive disk failures; too many stop the torrent.
    disk_health: DiskHealth,
    next_flush_check: Instant,
    /// Announce to and look up in the DHT (the node runs one and the torrent is public).
    use_dht: bool,
    lookup: Lookup,
    /// Peer exchange, unless the node has it off or the torrent is private.
    pex: Option<shoal_swarm::PexState<PeerId>>,
    discovery: Discovery,
    tracker_peers_tx: mpsc::UnboundedSender<Vec<std::net::SocketAddr>>,
    announcer: Option<crate::announce::Announcer>,
    /// Tracker addresses and PEX-named peers dialed lately: not dialed again for a while.
    tracker_dialed: RecentDials<std::net::SocketAddr>,
    pex_dialed: RecentDials<PeerId>,
    /// Dials started and not yet answered (`Input::Dialed`); they count against the peer cap.
    dials_in_flight: usize,
}

impl Session {
    pub(crate) fn new(
        engine: Engine,
        storage: Arc<Storage>,
        node: NodeHandle,
        discovery: Discovery,
        progress: watch::Sender<TorrentProgress>,
    ) -> std::io::Result<(Self, Inputs)> {
        let private = discovery.private;
        let limits = node.limits();
        let info_hash = storage.info_hash();
        let disk = Disk::start(storage.clone(), &info_hash.to_hex()[..8])?;
        let validator = Arc::new(Validator::new(info_hash, *engine.geometry()));
        let (input_tx, others) = mpsc::unbounded_channel();
        let (message_tx, messages) = mpsc::channel(PEER_MESSAGE_QUEUE);
        let completed = engine.is_complete();
        let use_dht = node.dht_enabled() && !private;
        let pex =
            (node.pex_enabled() && !private).then(|| shoal_swarm::PexState::new(node.pex_timing()));
        let pex_inbox = discovery::pex_inbox(&node, info_hash, pex.is_some());
        let (tracker_peers_tx, tracker_peers) = mpsc::unbounded_channel();
        let session = Self {
            info_hash,
            engine,
            storage,
            disk,
            validator,
            node,
            limits,
            peers: HashMap::new(),
            keys: HashMap::new(),
            identities: HashMap::new(),
            found: FoundPeers::default(),
            no_redial: NoRedial::new(MAX_REMEMBERED_PEERS),
            next_key: 0,
            next_serial: 0,
            input_tx,
            message_tx,
            progress,
            progress_due: None,
            last_published: Instant::now(),
            completed,
            disk_health: DiskHealth::default(),
            next_flush_check: Instant::now() + FLUSH_CHECK_INTERVAL,
            use_dht,
            lookup: Lookup::default(),
            pex,
            discovery,
            tracker_peers_tx,
            announcer: None,
            tracker_dialed: RecentDials::new(TRACKER_REDIAL, MAX_REMEMBERED_DIALS),
            pex_dialed: RecentDials::new(PEX_REDIAL, MAX_REMEMBERED_DIALS),
            dials_in_flight: 0,
        };
        let inputs = Inputs {
            messages,
            others,
            pex: pex_inbox,
            tracker_peers,
        };
        Ok((session, inputs))
    }

    pub(crate) async fn run(
        mut self,
        mut inputs: Inputs,
        mut streams: mpsc::Receiver<PeerStream>,
        mut commands: mpsc::Receiver<TorrentCommand>,
    ) {
        let span = info_span!("torrent", info_hash = %self.info_hash);
        async move {
            self.publish_progress();
            self.start_discovery().await;
            loop {
                let deadline = [
                    self.engine.poll_timeout(),
                    self.progress_due,
                    self.discovery_deadline(),
                ]
                .into_iter()
                .flatten()
                .min()
                .map(tokio::time::Instant::from_std);
                let timer = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    Some((conn, message)) = inputs.messages.recv() => self.on_message(conn, message),
                    Some(input) = inputs.others.recv() => self.on_input(input),
                    Some(stream) = streams.recv() => self.on_stream(stream, PeerSource::Incoming, None),
                    Some((from, message)) = inputs.pex.recv() => self.on_pex(from, message),
                    Some(addresses) = inputs.tracker_peers.recv() => self.on_tracker_peers(addresses),
                    found = self.lookup.next_provider() => self.on_provider(found),
                    command = commands.recv() => match command {
                        Some(TorrentCommand::Stop(done)) => {
                            self.stop().await;
                            let _ = done.send(());
                            return;
                        }
                        Some(command) => self.on_command(command),
                        None => {
                            self.stop().await;
                            return;
                        }
                    },
                    () = timer => {
                        let now = Instant::now();
                        self.engine.handle_timeout(now);
                        self.flush_storage_if_due(now);
                        self.on_discovery_timer(now).await;
                    }
                }
                self.take_queued(&mut inputs);
                self.perform_actions();
                if let Some(error) = self.disk_health.failed() {
                    error!(%error, "the disk keeps failing; stopping the torrent");
                    self.publish_progress();
                    self.stop().await;
                    return;
                }
                self.publish_progress();
            }
        }
        .instrument(span)
        .await
    }

    fn handle(&mut self, event: Event) {
        self.engine.handle(Instant::now(), event);
    }

    /// Whether `conn` is the peer's current stream: what is still queued from a stream that
    /// was dropped, or replaced by a newer one, is ignored.
    fn is_current(&self, conn: Conn) -> bool {
        self.peers
            .get(&conn.key)
            .is_some_and(|link| link.serial == conn.serial)
    }

    fn on_message(&mut self, conn: Conn, message: Message) {
        if self.is_current(conn) {
            self.handle(Event::Message {
                peer: conn.key,
                message,
            });
        }
    }

    /// Handles the peer messages and other inputs queued already (a bounded number).
    fn take_queued(&mut self, inputs: &mut Inputs) {
        for _ in 0..MAX_INPUTS_PER_TURN {
            let Ok((conn, message)) = inputs.messages.try_recv() else {
                break;
            };
            self.on_message(conn, message);
        }
        for _ in 0..MAX_INPUTS_PER_TURN {
            let Ok(input) = inputs.others.try_recv() else {
                break;
            };
            self.on_input(input);
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Closed(conn, reason) => {
                if !self.is_current(conn) {
                    return;
                }
                if let Some(link) = self.peers.remove(&conn.key) {
                    debug!(peer = %link.info.peer_id, %reason, "peer stream closed");
                    // A peer that closes on us while we seed is a seed too, or does not want
                    // us: it can dial us if it ever needs our pieces.
                    if self.engine.is_complete() {
                        self.no_redial.hold(link.info.peer_id, Instant::now());
                    }
                    self.forget(&link.info.peer_id);
                    self.handle(Event::PeerDisconnected { peer: conn.key });
                }
            }
            Input::Disk(results) => {
                for DiskResult { event, failure } in results {
                    self.disk_health.record(&event, failure);
                    self.handle(event);
                }
            }
            Input::Uploaded(conn, blocks) => {
                if self.is_current(conn) {
                    for block in blocks {
                        self.handle(Event::Uploaded {
                            peer: conn.key,
                            block,
                        });
                    }
                }
            }
            Input::Dialed(result, source) => {
                self.dials_in_flight = self.dials_in_flight.saturating_sub(1);
                match *result {
                    Ok((stream, sent)) => self.on_stream(stream, source, Some(sent)),
                    Err(reason) => debug!(%reason, ?source, "could not reach peer"),
                }
            }
        }
    }

    fn on_command(&mut self, command: TorrentCommand) {
        match command {
            TorrentCommand::AddPeer(address, source) => self.dial(Target::Address(address), source),
            TorrentCommand::AddPeerId(peer, addresses, source) => {
                self.dial(Target::Peer(peer, addresses), source);
            }
            TorrentCommand::Status(reply) => {
                let peers = self
                    .peers
                    .iter()
                    .map(|(key, link)| PeerStatus {
                        info: link.info.clone(),
                        state: self.engine.peer(*key),
                    })
                    .collect();
                let _ = reply.send(TorrentStatus {
                    stats: self.engine.stats(),
                    peers,
                    pex: self.pex.as_ref().map(|p| p.stats()).unwrap_or_default(),
                    tracker: self
                        .announcer
                        .as_ref()
                        .map(|a| a.stats())
                        .unwrap_or_default(),
                    found_by_source: self.found.counts(),
                });
            }
            TorrentCommand::Stop(_) => {}
        }
    }

    fn send(&self, key: PeerKey, outgoing: Outgoing) {
        if let Some(link) = self.peers.get(&key) {
            link.outbox.send(outgoing);
        }
    }

    fn perform_actions(&mut self) {
        // Blocks to serve, gathered per peer so that the read thread takes them in one job.
        let mut serves: Vec<(PeerKey, Vec<BlockRef>)> = Vec::new();
        // Blocks to write, in one job.
        let mut writes = Vec::new();
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Send { peer, message } => self.send(peer, Outgoing::Message(message)),
                Action::WriteBlock { block, .. } => writes.push(block),
                Action::VerifyPiece { piece } => self.verify_piece(piece),
                Action::ServeRequest { peer, block } => {
                    match serves.iter_mut().find(|(p, _)| *p == peer) {
                        Some((_, blocks)) => blocks.push(block),
                        None => serves.push((peer, vec![block])),
                    }
                }
                Action::Disconnect { peer, reason } => {
                    if let Some(link) = self.peers.get(&peer) {
                        let id = link.info.peer_id;
                        if reason == DisconnectReason::BothComplete {
                            debug!(peer = %id, "closing a seed-to-seed connection");
                            self.no_redial.hold(id, Instant::now());
                        } else {
                            info!(peer = %id, %reason, "dropping peer");
                        }
                    }
                    self.drop_peer(peer);
                }
                Action::Ban { peer, reason } => {
                    self.ban(peer, &reason.to_string());
                    self.drop_peer(peer);
                }
                Action::Completed => {
                    info!("download complete; seeding");
                    self.completed = true;
                    self.node.emit(NodeEvent::TorrentCompleted {
                        info_hash: self.info_hash,
                    });
                    self.flush_storage();
                }
            }
        }
        if !writes.is_empty() {
            self.disk.submit(Job::Write(writes, self.reply()));
        }
        for (peer, blocks) in serves {
            self.serve(peer, blocks);
        }
    }

    /// A reply that feeds a disk result back into this session.
    fn reply(&self) -> Reply {
        let tx = self.input_tx.clone();
        Box::new(move |done| {
            let results = match done {
                Done::Written { blocks } => blocks
                    .into_iter()
                    .map(|(block, result)| DiskResult {
                        event: Event::BlockWritten {
                            block,
                            ok: result.is_ok(),
                        },
                        failure: result.err(),
                    })
                    .collect(),
                Done::Verified {
                    piece,
                    result: Ok(ok),
                } => vec![DiskResult {
                    event: Event::PieceVerified { piece, ok },
                    failure: None,
                }],
                Done::Verified {
                    piece,
                    result: Err(error),
                } => vec![DiskResult {
                    event: Event::PieceUnverifiable { piece },
                    failure: Some(error),
                }],
                // Reads answer through `serve`'s own reply.
                Done::Read { .. } => return,
            };
            let _ = tx.send(Input::Disk(results));
        })
    }

    fn verify_piece(&self, piece: u32) {
        self.disk.submit(Job::Verify(piece, self.reply()));
    }

    /// Bans the peer behind `key` by its PeerId, connected or not: a peer whose corrupt piece
    /// fails verification after it left is banned all the same (the engine never names it
    /// again).
    fn ban(&self, key: PeerKey, reason: &str) {
        let peer = self
            .peers
            .get(&key)
            .map(|link| link.info.peer_id)
            .or_else(|| {
                let known = self.identities.iter().find(|(_, k)| **k == key);
                known.map(|(peer, _)| *peer)
            });
        let Some(peer) = peer else {
            warn!(%reason, "cannot ban a peer whose identity is no longer remembered");
            return;
        };
        warn!(%peer, %reason, "banning peer");
        self.node.ban(peer);
        self.node.emit(NodeEvent::PeerBanned {
            peer,
            reason: reason.to_owned(),
        });
    }

    /// Reads `blocks` for `peer` on the read thread and queues them to its stream.
    fn serve(&self, peer: PeerKey, blocks: Vec<BlockRef>) {
        let Some(outbox) = self.peers.get(&peer).map(|l| l.outbox.clone()) else {
            return;
        };
        let tx = self.input_tx.clone();
        let corrupt = self.node.corrupt_uploads();
        let reply: Reply = Box::new(move |done| {
            let Done::Read { blocks } = done else { return };
            for (block, data) in blocks {
                match data {
                    Ok(data) => {
                        let data = if corrupt {
                            data.iter().map(|b| !b).collect()
                        } else {
                            data
                        };
                        outbox.send(Outgoing::Served(block, data));
                    }
                    Err(e) => {
                        warn!(piece = block.piece, error = %e, "cannot read a block to serve");
                        let event = Event::ServeFailed { peer, block };
                        let _ = tx.send(Input::Disk(vec![DiskResult {
                            event,
                            failure: None,
                        }]));
                    }
                }
            }
        });
        self.disk.submit(Job::Read(blocks, reply));
    }

    fn flush_storage(&self) {
        self.disk.submit(Job::Flush);
    }

    /// Every few seconds, lets storage record verified pieces it has not recorded yet (it does
    /// after verifying too; this covers a download that went quiet).
    fn flush_storage_if_due(&mut self, now: Instant) {
        if now >= self.next_flush_check {
            self.next_flush_check = now + FLUSH_CHECK_INTERVAL;
            self.disk.submit(Job::FlushIfDue);
        }
    }

    /// Publishes progress: at once when a piece, the peer count or completion changed, otherwise
    /// at most every [`PROGRESS_INTERVAL`] (the run loop's timer publishes what was held back).
    fn publish_progress(&mut self) {
        let now = Instant::now();
        let mut next = TorrentProgress::from_stats(&self.engine.stats(), self.completed);
        next.error = self
            .disk_health
            .failed()
            .map(|e| format!("the disk keeps failing: {e}"));
        let due = now.duration_since(self.last_published) >= PROGRESS_INTERVAL;
        let mut held = false;
        let published = self.progress.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            let milestone = current.pieces_have != next.pieces_have
                || current.peers != next.peers
                || current.complete != next.complete
                || current.error != next.error;
            if milestone || due {
                *current = next;
                true
            } else {
                held = true;
                false
            }
        });
        if published {
            self.last_published = now;
        }
        self.progress_due = held.then(|| self.last_published + PROGRESS_INTERVAL);
    }

    /// Stops the torrent: leaves the DHT and the trackers, closes every peer stream, lets the
    /// disk threads finish their queues, then saves the resume state and closes the storage
    /// (so the next start trusts the resume record instead of rechecking).
    async fn stop(mut self) {
        self.stop_discovery().await;
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.drop_peer(key);
        }
        let Self { storage, disk, .. } = self;
        let closed = tokio::task::spawn_blocking(move || {
            disk.finish();
            match Arc::try_unwrap(storage) {
                Ok(storage) => storage.close(),
                // Someone still holds the storage: save what we can; the next start rechecks
                // what the record does not vouch for.
                Err(shared) => shared.flush(),
            }
        })
        .await;
        match closed {
            Ok(Ok(())) => debug!("resume state saved, storage closed"),
            Ok(Err(e)) => warn!(error = %e, "saving resume state failed"),
            Err(e) => warn!(error = %e, "saving resume state failed"),
        }
    }
}
