//! Announcing a torrent to its HTTP trackers, with shoal-tracker's client.
//!
//! One task per torrent with trackers: it announces `started` at once, again at the interval
//! the tracker asks for, `completed` when the download finishes and `stopped` when the torrent
//! stops. [`AnnounceSchedule`] decides when and to which tracker (BEP 12 tiers, back-off after
//! failures); this task does the I/O and hands the returned addresses to the torrent, which
//! dials them (the libp2p handshake reveals who answered). A failing tracker costs nothing else:
//! the torrent keeps its DHT and PEX peers, and the schedule comes back to the tracker later.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use shoal_metainfo::InfoHash;
use shoal_tracker::client::{
    self, Announce, AnnounceBackoff, AnnounceEvent, AnnounceSchedule, AnnounceStats, redact,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info};

use crate::host::NodeHandle;
use crate::progress::TorrentProgress;

/// One announce may take this long, end to end.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(15);
/// The final `stopped` announce gets less: the user is waiting for the torrent to stop.
const STOPPED_TIMEOUT: Duration = Duration::from_secs(3);
/// Peers asked for per announce.
const NUMWANT: u32 = 50;

/// What the torrent needs to know to announce, and where the peers go.
pub(crate) struct AnnounceSetup {
    pub(crate) info_hash: InfoHash,
    pub(crate) tiers: Vec<Vec<String>>,
    pub(crate) total_size: u64,
    pub(crate) piece_length: u64,
    pub(crate) progress: watch::Receiver<TorrentProgress>,
    pub(crate) rng_seed: u64,
}

/// The running announcer of one torrent.
pub(crate) struct Announcer {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    stats: Arc<Mutex<AnnounceStats>>,
}

impl Announcer {
    /// Starts announcing; `None` if the torrent has no trackers. Returned peers go to `peers`.
    pub(crate) fn start(
        node: &NodeHandle,
        setup: AnnounceSetup,
        peers: mpsc::UnboundedSender<Vec<SocketAddr>>,
    ) -> Option<Self> {
        if setup.tiers.iter().all(Vec::is_empty) {
            return None;
        }
        let (stop, stopped) = oneshot::channel();
        let stats = Arc::new(Mutex::new(AnnounceStats::default()));
        let context = Context {
            peer_id: client::peer_id(&node.peer_id().to_bytes()),
            port: listen_port(node),
            backoff: node.tracker_backoff(),
            stats: stats.clone(),
            peers,
        };
        let span = tracing::Span::current();
        let task = tokio::spawn(context.run(setup, stopped).instrument(span));
        Some(Self {
            stop: Some(stop),
            task,
            stats,
        })
    }

    pub(crate) fn stats(&self) -> AnnounceStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sends `stopped` to the last tracker that answered (briefly) and ends the task.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // At most two final announces (completed, stopped), then a margin.
        if tokio::time::timeout(STOPPED_TIMEOUT * 3, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Dropped without [`Announcer::stop`] (its torrent's task was aborted): no `stopped`
/// announce, the task just ends.
impl Drop for Announcer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The TCP port the node listens on (what peers behind the tracker should dial).
pub(crate) fn listen_port(node: &NodeHandle) -> u16 {
    node.listen_addrs()
        .iter()
        .flat_map(|a| a.iter())
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or(0)
}

struct Context {
    peer_id: [u8; 20],
    port: u16,
    backoff: AnnounceBackoff,
    stats: Arc<Mutex<AnnounceStats>>,
    peers: mpsc::UnboundedSender<Vec<SocketAddr>>,
}

impl Context {
    async fn run(self, setup: AnnounceSetup, mut stopped: oneshot::Receiver<()>) {
        let mut progress = setup.progress.clone();
        let mut schedule =
            AnnounceSchedule::new(setup.tiers.clone(), setup.rng_seed, Instant::now())
                .with_backoff(self.backoff);
        // A torrent complete from the start is seeding: it never sends `completed`.
        let mut was_complete = progress.borrow().complete;
        loop {
            let due = schedule.next_due();
            let wait = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stopped => break,
                changed = progress.changed(), if !was_complete => {
                    if changed.is_err() {
                        break;
                    }
                    if progress.borrow().complete {
                        was_complete = true;
                        schedule.completed(Instant::now());
                    }
                }
                () = wait => {
                    let Some((url, event)) = schedule.poll(Instant::now()) else { continue };
                    let request = self.request(&setup, event);
                    tokio::select! {
                        _ = &mut stopped => break,
                        result = client::announce(&url, &request, ANNOUNCE_TIMEOUT) => {
                            self.on_result(&mut schedule, &url, result);
                        }
                    }
                }
            }
        }
        // A download that finished just before the stop may not have been announced yet.
        if !was_complete && progress.borrow().complete {
            schedule.completed(Instant::now());
        }
        let completed_pending = schedule.pending_event() == Some(AnnounceEvent::Completed);
        if let Some(url) = schedule.stopped() {
            if completed_pending {
                self.final_announce(&setup, &url, AnnounceEvent::Completed)
                    .await;
            }
            self.final_announce(&setup, &url, AnnounceEvent::Stopped)
                .await;
        }
    }

    /// One of the announces sent as the torrent stops, with a short timeout.
    async fn final_announce(&self, setup: &AnnounceSetup, url: &str, event: AnnounceEvent) {
        let request = self.request(setup, Some(event));
        match client::announce(url, &request, STOPPED_TIMEOUT).await {
            Ok(_) => debug!(tracker = %redact(url), ?event, "announced"),
            Err(e) => debug!(error = %e, ?event, "the final announce failed"),
        }
    }

    fn on_result(
        &self,
        schedule: &mut AnnounceSchedule,
        url: &str,
        result: Result<client::AnnounceReply, client::ClientError>,
    ) {
        let now = Instant::now();
        match result {
            Ok(reply) => {
                debug!(
                    tracker = %redact(url),
                    peers = reply.peers.len(),
                    interval = ?reply.interval,
                    "announced"
                );
                if let Some(warning) = &reply.warning {
                    info!(tracker = %redact(url), %warning, "tracker warning");
                }
                schedule.on_success(url, &reply, now);
                if !reply.peers.is_empty() {
                    let _ = self.peers.send(reply.peers);
                }
            }
            Err(e) => {
                info!(error = %e, "announce failed; backing off");
                schedule.on_error(url, &e, now);
            }
        }
        if let Ok(mut stats) = self.stats.lock() {
            *stats = schedule.stats();
        }
    }

    fn request(&self, setup: &AnnounceSetup, event: Option<AnnounceEvent>) -> Announce {
        let p = setup.progress.borrow().clone();
        let left = if p.complete {
            0
        } else {
            let have = u64::from(p.pieces_have) * setup.piece_length;
            setup.total_size.saturating_sub(have).max(1)
        };
        Announce {
            info_hash: setup.info_hash,
            peer_id: self.peer_id,
            port: self.port,
            uploaded: p.bytes_uploaded,
            downloaded: p.bytes_downloaded,
            left,
            event,
            numwant: NUMWANT,
            key: setup.rng_seed as u32,
        }
    }
}
