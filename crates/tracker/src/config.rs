//! Tracker settings and the limits that keep its memory bounded.

use std::net::IpAddr;
use std::time::Duration;

/// Seconds a client should wait between announces.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);
/// Seconds a client must wait between announces.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(900);
/// Peers returned when the announce does not say `numwant`.
pub const DEFAULT_NUMWANT: u32 = 50;
/// Most peers returned by one announce, whatever `numwant` says.
pub const MAX_NUMWANT: u32 = 200;
/// Longest query string accepted, in bytes: a full announce is about 300, a scrape of
/// [`MAX_SCRAPE_HASHES`] fully escaped info-hashes about 4,600.
pub const MAX_QUERY_LEN: usize = 5120;
/// Most `info_hash` parameters in one scrape.
pub const MAX_SCRAPE_HASHES: usize = 64;
/// Longest decoded `key`, `trackerid` or `ip` value, in bytes.
pub const MAX_PARAM_LEN: usize = 64;
/// Default limit on torrents tracked at once.
pub const DEFAULT_MAX_SWARMS: usize = 100_000;
/// Default limit on peers in one torrent.
pub const DEFAULT_MAX_PEERS_PER_SWARM: usize = 20_000;
/// Default limit on peers in all torrents (about 150 bytes each).
pub const DEFAULT_MAX_PEERS: usize = 1_000_000;

/// How the tracker answers and what it holds. `max_swarms` and `max_peers` apply to all the
/// [`crate::Tracker`]s that share one [`crate::Occupancy`]: a whole server, however many shards
/// its state is split into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// `interval` in announce replies.
    pub interval: Duration,
    /// `min interval` in announce replies.
    pub min_interval: Duration,
    /// A peer that has not announced for this long is dropped (default: two intervals).
    pub peer_timeout: Duration,
    /// Peers returned when the request has no `numwant`.
    pub default_numwant: u32,
    /// Most peers returned by one announce.
    pub max_numwant: u32,
    /// Most torrents tracked; an announce that would add one more gets a failure reason.
    pub max_swarms: usize,
    /// Most peers in one torrent; a new peer past it gets a failure reason.
    pub max_peers_per_swarm: usize,
    /// Most peers in all torrents.
    pub max_peers: usize,
    /// Longest query string accepted.
    pub max_query_len: usize,
    /// Addresses (reverse proxies) whose requests may set the peer's address with `ip`.
    pub trusted_proxies: Vec<IpAddr>,
    /// Whether `/scrape` without `info_hash` lists every torrent.
    pub full_scrape: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            min_interval: DEFAULT_MIN_INTERVAL,
            peer_timeout: DEFAULT_INTERVAL * 2,
            default_numwant: DEFAULT_NUMWANT,
            max_numwant: MAX_NUMWANT,
            max_swarms: DEFAULT_MAX_SWARMS,
            max_peers_per_swarm: DEFAULT_MAX_PEERS_PER_SWARM,
            max_peers: DEFAULT_MAX_PEERS,
            max_query_len: MAX_QUERY_LEN,
            trusted_proxies: Vec::new(),
            full_scrape: false,
        }
    }
}

impl TrackerConfig {
    /// A config with `interval` and the timings derived from it: `min interval` is half of it
    /// and peers expire after two intervals.
    pub fn with_interval(interval: Duration) -> Self {
        Self {
            interval,
            min_interval: interval / 2,
            peer_timeout: interval * 2,
            ..Self::default()
        }
    }
}
