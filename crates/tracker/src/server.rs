//! The server: accepting connections within limits, routing requests, sharded locks around the
//! sans-IO [`Tracker`], periodic expiry, statistics and the private-mode ledger's flushes.
//! HTTP framing is in [`crate::connection`].

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shoal_metainfo::InfoHash;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::TrackerConfig;
use crate::connection::{self, Head, Reply};
use crate::encode::{failure, scrape_reply};
use crate::error::TrackerError;
use crate::query::{AnnounceRequest, parse_scrape, peer_ip};
use crate::stats::Counters;
use crate::swarm::{Occupancy, Tracker, TrackerStats, Transfer};
use crate::users::{Ledger, UserId, write_atomic};

/// Default period between writes of changed private-mode totals.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// Default number of independently locked shards of the swarm state.
pub const DEFAULT_SHARDS: usize = 16;
/// Default limit on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Most connections past the limit being told "tracker busy" at once; past that, a
/// connection over the limit is closed without a reply.
pub const MAX_BUSY_REPLIES: usize = 64;

const TEXT: &str = "text/plain";

/// Private mode: who may announce, and where their accounting is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateConfig {
    /// `NAME PASSKEY` lines (see [`crate::users`]).
    pub users_file: PathBuf,
    /// JSON totals per user, rewritten atomically.
    pub state_file: PathBuf,
    /// How often changed totals are written (they are also written on shutdown).
    pub flush_interval: Duration,
}

/// Everything the server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Its `max_swarms` and `max_peers` are limits on the whole server, whatever `shards` is.
    pub tracker: TrackerConfig,
    pub private: Option<PrivateConfig>,
    /// The state is split by info-hash into this many shards, each behind its own lock, so
    /// that announces for different torrents rarely wait for each other.
    pub shards: usize,
    /// Most connections open at once. A connection past it gets a `tracker busy` failure
    /// reason without its request being read, then is closed; while [`MAX_BUSY_REPLIES`] of
    /// those are under way, further ones are closed at once.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6969)),
            tracker: TrackerConfig::default(),
            private: None,
            shards: DEFAULT_SHARDS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

#[derive(Debug)]
struct Private {
    passkeys: HashMap<Box<[u8]>, UserId>,
    ledger: Mutex<Ledger>,
    state_file: PathBuf,
    flush_interval: Duration,
}

#[derive(Debug)]
struct Shared {
    shards: Box<[Mutex<Tracker>]>,
    config: TrackerConfig,
    private: Option<Private>,
    counters: Counters,
}

/// A bound tracker, ready to [`run`](TrackerServer::run).
#[derive(Debug)]
pub struct TrackerServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    max_connections: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Poisoned means a panic while holding the lock; every update under it is a few field
    // writes, so serving on beats taking the whole tracker down.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TrackerServer {
    /// Loads the users (private mode) and binds the listening socket.
    pub async fn bind(config: ServerConfig) -> Result<Self, TrackerError> {
        let private = match &config.private {
            Some(p) => Some({
                let ledger = Ledger::load(&p.users_file, &p.state_file)?;
                Private {
                    passkeys: ledger.passkeys(),
                    ledger: Mutex::new(ledger),
                    state_file: p.state_file.clone(),
                    flush_interval: p.flush_interval,
                }
            }),
            None => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| TrackerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| TrackerError::Bind {
            addr: config.listen,
            source,
        })?;
        // One count of torrents and peers for every shard: the limits are the server's.
        let occupancy = Arc::new(Occupancy::default());
        let shared = Shared {
            shards: (0..config.shards.max(1))
                .map(|_| Mutex::new(Tracker::sharing(config.tracker.clone(), occupancy.clone())))
                .collect(),
            config: config.tracker,
            private,
            counters: Counters::default(),
        };
        Ok(Self {
            listener,
            local_addr,
            shared: Arc::new(shared),
            max_connections: config.max_connections,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR/announce` (private mode: append `/PASSKEY`).
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.local_addr)
    }

    /// Serves until `shutdown` completes, then closes every connection and writes the ledger
    /// one last time.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), TrackerError> {
        let shared = self.shared.clone();
        let sweep_period = (shared.config.peer_timeout / 8)
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        let mut sweep = tokio::time::interval(sweep_period);
        let mut rate_tick = tokio::time::interval(Duration::from_secs(1));
        let flush_period = shared
            .private
            .as_ref()
            .map_or(Duration::from_secs(3600), |p| p.flush_interval);
        let mut flush = tokio::time::interval(flush_period.max(Duration::from_millis(10)));
        let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
        let mut gate = Gate::new(self.max_connections);
        // Connection tasks live here, so none outlives `run`.
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, remote)) => gate.admit(&shared, &mut tasks, stream, remote),
                    Err(error) => {
                        // Out of file descriptors, usually: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = sweep.tick() => shared.expire(Instant::now()),
                _ = rate_tick.tick() => shared.counters.sample_rate(&mut samples),
                _ = flush.tick(), if shared.private.is_some() => {
                    if let Err(error) = shared.flush().await {
                        tracing::error!(%error, "cannot save tracker state");
                    }
                }
            }
        }
        tasks.shutdown().await;
        shared.flush().await
    }
}

/// The connection limit, and the bounded work spent telling clients past it to come back.
struct Gate {
    connections: Arc<Semaphore>,
    busy_replies: Arc<Semaphore>,
    max_connections: usize,
    seeds: RandomState,
    accepted: u64,
}

impl Gate {
    fn new(max_connections: usize) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(max_connections)),
            busy_replies: Arc::new(Semaphore::new(MAX_BUSY_REPLIES)),
            max_connections,
            seeds: RandomState::new(),
            accepted: 0,
        }
    }

    fn admit(
        &mut self,
        shared: &Arc<Shared>,
        tasks: &mut JoinSet<()>,
        stream: TcpStream,
        remote: SocketAddr,
    ) {
        let _ = stream.set_nodelay(true);
        if let Ok(permit) = self.connections.clone().try_acquire_owned() {
            self.accepted += 1;
            let mut rng = SmallRng::seed_from_u64(self.seeds.hash_one(self.accepted));
            let shared = shared.clone();
            tasks.spawn(async move {
                connection::serve(stream, |request| shared.respond(request, remote, &mut rng))
                    .await;
                drop(permit);
            });
            return;
        }
        shared.counters.failures.fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = self.busy_replies.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "too many connections; closing");
            return;
        };
        tracing::debug!(%remote, "too many connections; telling the client");
        let busy = TrackerError::Busy {
            max: self.max_connections,
        };
        let reply = failure_reply(&busy);
        tasks.spawn(async move {
            connection::refuse(stream, reply).await;
            drop(permit);
        });
    }
}

fn failure_reply(error: &TrackerError) -> Reply {
    Reply {
        body: failure(&error.to_string()),
        content_type: TEXT,
    }
}

fn reply(body: Vec<u8>, content_type: &'static str) -> Reply {
    Reply { body, content_type }
}

/// The path and query of a request target. An absolute target (`http://host/path?query`, as
/// sent to a proxy) counts by its path.
fn split_target(target: &str) -> (&str, &str) {
    let target = match target.split_once("://") {
        Some((_, rest)) if !target.starts_with('/') => rest.find('/').map_or("", |at| &rest[at..]),
        _ => target,
    };
    target.split_once('?').unwrap_or((target, ""))
}

impl Shared {
    fn shard(&self, info_hash: &InfoHash) -> &Mutex<Tracker> {
        let at = usize::from(info_hash.0[0]) % self.shards.len();
        &self.shards[at]
    }

    /// The reply to a request, or to what was wrong with it.
    fn respond(
        &self,
        request: Result<Head<'_>, TrackerError>,
        remote: SocketAddr,
        rng: &mut SmallRng,
    ) -> Reply {
        match request.and_then(|head| self.route(head, remote, rng)) {
            Ok(reply) => reply,
            Err(error) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%remote, %error, "request refused");
                failure_reply(&error)
            }
        }
    }

    fn route(
        &self,
        head: Head<'_>,
        remote: SocketAddr,
        rng: &mut SmallRng,
    ) -> Result<Reply, TrackerError> {
        if head.method != "GET" {
            return Err(TrackerError::Method {
                method: head.method.chars().take(16).collect(),
            });
        }
        let (path, query) = split_target(head.target);
        let query = query.as_bytes();
        if query.len() > self.config.max_query_len {
            return Err(TrackerError::QueryTooLong {
                len: query.len(),
                max: self.config.max_query_len,
            });
        }
        let (endpoint, passkey) = match path.get(1..).and_then(|p| p.split_once('/')) {
            Some((endpoint, passkey)) => (endpoint, Some(passkey)),
            None => (path.get(1..).unwrap_or(""), None),
        };
        match (endpoint, passkey) {
            ("announce", _) => {
                let user = self.authorize(passkey)?;
                self.announce(query, remote, user, rng)
            }
            ("scrape", _) => {
                self.authorize(passkey)?;
                self.scrape(query)
            }
            ("stats", None) => Ok(reply(
                self.counters.stats_json(self.totals()),
                "application/json",
            )),
            ("metrics", None) => Ok(reply(
                self.counters.metrics_text(self.totals()).into_bytes(),
                "text/plain; version=0.0.4",
            )),
            _ => Err(TrackerError::UnknownPath {
                path: path.chars().take(64).collect(),
            }),
        }
    }

    fn authorize(&self, passkey: Option<&str>) -> Result<Option<UserId>, TrackerError> {
        let Some(private) = &self.private else {
            return match passkey {
                None => Ok(None),
                Some(_) => Err(TrackerError::UnknownPath {
                    path: "(a passkey URL on a public tracker)".into(),
                }),
            };
        };
        let passkey = passkey.ok_or(TrackerError::PasskeyRequired)?;
        private
            .passkeys
            .get(passkey.as_bytes())
            .copied()
            .map(Some)
            .ok_or(TrackerError::UnknownPasskey)
    }

    fn announce(
        &self,
        query: &[u8],
        remote: SocketAddr,
        user: Option<UserId>,
        rng: &mut SmallRng,
    ) -> Result<Reply, TrackerError> {
        let req = AnnounceRequest::parse(query)?;
        let ip = peer_ip(remote.ip(), req.ip, &self.config.trusted_proxies)?;
        let now = Instant::now();
        let mut out = Vec::with_capacity(128 + 6 * self.config.default_numwant as usize);
        let credit = lock(self.shard(&req.info_hash)).announce(now, rng, &req, ip, &mut out)?;
        if let (Some(user), Some(private), true) =
            (user, &self.private, credit != Transfer::default())
        {
            lock(&private.ledger).credit(user, credit);
        }
        self.counters.announces.fetch_add(1, Ordering::Relaxed);
        Ok(reply(out, TEXT))
    }

    fn scrape(&self, query: &[u8]) -> Result<Reply, TrackerError> {
        let hashes = parse_scrape(query)?;
        let body = if hashes.is_empty() {
            if !self.config.full_scrape {
                return Err(TrackerError::FullScrapeDisabled);
            }
            let mut all = Vec::new();
            for shard in &self.shards {
                all.extend(lock(shard).scrape_all());
            }
            scrape_reply(all)
        } else {
            scrape_reply(
                hashes
                    .iter()
                    .map(|hash| (*hash, lock(self.shard(hash)).scrape(hash))),
            )
        };
        self.counters.scrapes.fetch_add(1, Ordering::Relaxed);
        Ok(reply(body, TEXT))
    }

    fn totals(&self) -> TrackerStats {
        self.shards
            .iter()
            .fold(TrackerStats::default(), |sum, shard| {
                let s = lock(shard).stats();
                TrackerStats {
                    swarms: sum.swarms + s.swarms,
                    peers: sum.peers + s.peers,
                    seeders: sum.seeders + s.seeders,
                }
            })
    }

    fn expire(&self, now: Instant) {
        let dropped: usize = self.shards.iter().map(|s| lock(s).expire(now)).sum();
        if dropped > 0 {
            tracing::debug!(dropped, "expired peers");
        }
    }

    /// Writes the ledger if it changed, off the async threads.
    async fn flush(&self) -> Result<(), TrackerError> {
        let Some(private) = &self.private else {
            return Ok(());
        };
        let Some(bytes) = lock(&private.ledger).take_snapshot() else {
            return Ok(());
        };
        let path = private.state_file.clone();
        let written = tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .unwrap_or_else(|join| {
                Err(TrackerError::Io {
                    path: private.state_file.clone(),
                    source: std::io::Error::other(join.to_string()),
                })
            });
        if written.is_err() {
            lock(&private.ledger).mark_dirty();
        }
        written
    }
}
