//! shoal-tracker: a standard BitTorrent HTTP tracker, and the client that announces to one.
//!
//! It owns the swarm state (who is in which torrent), the announce rules (BEP 3, compact
//! replies of BEP 23 with `peers6`, scrape of BEP 48), private mode with per-user passkeys and
//! upload/download accounting, and an HTTP server with `/stats` (JSON) and `/metrics`
//! (Prometheus). It does not own any torrent files, and it does not speak the UDP tracker
//! protocol (BEP 15) or enforce `min interval`.
//!
//! The announce *client* the node uses is in [`client`]: `announce` and `scrape` over plain
//! HTTP/1.1 (bounded in time and size), a bounded reply parser, and the sans-IO
//! [`client::AnnounceSchedule`] that decides when and to which tracker (BEP 12 tiers) a
//! torrent announces.
//!
//! The logic is sans-IO: [`Tracker`] takes parsed requests ([`AnnounceRequest`]), `now` and
//! an RNG, and writes bencoded replies into a `Vec`; [`TrackerServer`] is a thin tokio layer
//! that splits the state into shards locked by info-hash (sharing one [`Occupancy`], so the
//! limits are the server's), frames HTTP/1.1 requests itself so that it can answer *every*
//! bad request — an oversized or malformed head included — with a bencoded `failure reason`
//! (HTTP 200, as clients expect), and parses queries on raw bytes.
//!
//! Rules:
//! - `numwant` defaults to [`DEFAULT_NUMWANT`] and is capped at [`MAX_NUMWANT`]; a swarm
//!   larger than that gives a random selection; the requester is never in its own reply.
//! - `compact` is on unless the client sends `compact=0`; then peers come as a list of
//!   dictionaries with `peer id` (left out with `no_peer_id=1`).
//! - A peer not heard from for [`TrackerConfig::peer_timeout`] (two intervals) is dropped;
//!   `stopped` drops it at once; `completed` counts one download per peer entry.
//! - Peers are told apart by peer id and address; the `ip` parameter counts only from a
//!   [`TrackerConfig::trusted_proxies`] address.
//! - Limits ([`TrackerConfig`], [`ServerConfig`], the constants) bound memory: torrents,
//!   peers per torrent, peers in all, request head and query length, scrape size,
//!   connections. A request past a limit gets a failure reason (a connection past the
//!   connection limit gets `tracker busy`, see [`ServerConfig::max_connections`]); the
//!   tracker keeps serving everyone else.
//! - Private mode ([`users`]): `/announce/PASSKEY` and `/scrape/PASSKEY`; each user's
//!   uploaded/downloaded growth is added up and written atomically to a state file
//!   periodically and on shutdown. `/stats` and `/metrics` stay public (totals only).
//!
//! `bench/tracker_load.sh` measures announces per second, latency and peak memory under wrk
//! with the same load as the shared opentracker reference script, and
//! `bench/compare_opentracker.sh` runs both in one sitting; `benches/announce.rs` times the
//! sans-IO path.
//!
//! ```
//! use std::time::Instant;
//! use rand::{SeedableRng, rngs::SmallRng};
//! use shoal_tracker::{AnnounceRequest, Tracker, TrackerConfig};
//!
//! # fn main() -> Result<(), shoal_tracker::TrackerError> {
//! let mut tracker = Tracker::new(TrackerConfig::default());
//! let query = b"info_hash=%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13%14\
//!     &peer_id=-SH0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=100&event=started";
//! let request = AnnounceRequest::parse(query)?;
//! let mut reply = Vec::new();
//! let ip = "192.0.2.7".parse().unwrap();
//! tracker.announce(Instant::now(), &mut SmallRng::seed_from_u64(1), &request, ip, &mut reply)?;
//! assert_eq!(
//!     reply,
//!     b"d8:completei0e10:incompletei1e8:intervali1800e12:min intervali900e5:peers0:e"
//! );
//! # Ok(())
//! # }
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod client;
mod config;
mod connection;
mod encode;
mod error;
mod query;
mod server;
mod stats;
mod swarm;
pub mod users;

pub use config::{
    DEFAULT_INTERVAL, DEFAULT_MAX_PEERS, DEFAULT_MAX_PEERS_PER_SWARM, DEFAULT_MAX_SWARMS,
    DEFAULT_MIN_INTERVAL, DEFAULT_NUMWANT, MAX_NUMWANT, MAX_PARAM_LEN, MAX_QUERY_LEN,
    MAX_SCRAPE_HASHES, TrackerConfig,
};
pub use connection::{
    HEADER_READ_TIMEOUT, LINGER_BYTES, LINGER_TIME, MAX_HEADERS, MAX_REQUEST_HEAD,
    REPLY_WRITE_TIMEOUT,
};
pub use encode::{failure, scrape_reply};
pub use error::TrackerError;
pub use query::{AnnounceRequest, Event, IpParam, parse_scrape, peer_ip};
pub use server::{
    DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_CONNECTIONS, DEFAULT_SHARDS, MAX_BUSY_REPLIES,
    PrivateConfig, ServerConfig, TrackerServer,
};
pub use swarm::{Occupancy, Peer, ScrapeCounts, Tracker, TrackerStats, Transfer};
