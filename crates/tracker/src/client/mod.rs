//! The announce client: how a shoal node talks to HTTP BitTorrent trackers.
//!
//! Three parts, kept apart so that the logic can be tested without a network:
//! - [`announce`] and [`scrape`]: one HTTP/1.1 GET each (hyper over a plain
//!   `TcpStream`, no pool, no TLS), bounded end to end by a timeout, with the reply body
//!   capped at [`MAX_REPLY_BODY`] before it is parsed.
//! - [`parse_announce_reply`]: the bencoded reply (BEP 3), with compact `peers` (BEP 23),
//!   `peers6` (BEP 7) and the older list of dictionaries.
//! - [`AnnounceSchedule`]: sans-IO, decides *when* and *where* a torrent announces: tiers of
//!   trackers (BEP 12), intervals, the `started`/`completed` events and back-off.
//!
//! Only `http://` trackers are supported; `https://` and `udp://` (BEP 15) URLs are refused
//! with [`ClientError::UnsupportedUrl`]. URLs in errors are shortened by [`redact`] so that
//! passkeys of private trackers do not end up in logs.
//!
//! ```no_run
//! use std::time::Duration;
//! use shoal_tracker::client::{Announce, AnnounceEvent, announce, peer_id};
//!
//! # async fn run(info_hash: shoal_metainfo::InfoHash) -> Result<(), shoal_tracker::client::ClientError> {
//! let request = Announce {
//!     info_hash,
//!     peer_id: peer_id(b"bytes of the node's libp2p PeerId"),
//!     port: 6881,
//!     uploaded: 0,
//!     downloaded: 0,
//!     left: 1 << 20,
//!     event: Some(AnnounceEvent::Started),
//!     numwant: 50,
//!     key: 0x1234_abcd,
//! };
//! let reply = announce("http://tracker.example:6969/announce", &request, Duration::from_secs(20)).await?;
//! println!("{} peers, next announce in {:?}", reply.peers.len(), reply.interval);
//! # Ok(())
//! # }
//! ```

mod http;
mod response;
mod schedule;

#[cfg(test)]
mod response_tests;
#[cfg(test)]
mod schedule_tests;

use std::net::SocketAddr;
use std::time::Duration;

use shoal_metainfo::InfoHash;

pub use http::{announce, announce_query, redact, scrape, scrape_url};
pub use response::{parse_announce_reply, parse_scrape_reply};
pub use schedule::{
    AnnounceBackoff, AnnounceSchedule, AnnounceStats, FIRST_BACKOFF, MAX_BACKOFF, MIN_BACKOFF,
};

/// Largest reply body read from a tracker, in bytes. A compact reply with 200 peers is about
/// 1.2 KiB; anything near this limit is not a tracker.
pub const MAX_REPLY_BODY: usize = 1 << 20;
/// Most peers taken from one reply (IPv4 and IPv6 together); the rest are ignored.
pub const MAX_REPLY_PEERS: usize = 5000;
/// Shortest `interval` honoured: a tracker asking for less gets this.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Longest `interval` honoured: a tracker asking for more gets this.
pub const MAX_INTERVAL: Duration = Duration::from_secs(2 * 3600);
/// Longest `tracker id` or `warning message` kept, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// The peer-id prefix of shoal (Azureus style: client `SH`, version 0.1.0.0).
pub const PEER_ID_PREFIX: &[u8; 8] = b"-SH0100-";

/// What the client tells the tracker.
#[derive(Debug, Clone)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// This node's BitTorrent peer id (see [`peer_id`]).
    pub peer_id: [u8; 20],
    /// The TCP port peers should connect to.
    pub port: u16,
    /// Bytes uploaded since the `started` event.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` event.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// `started`, `completed`, `stopped`, or none for a regular announce.
    pub event: Option<AnnounceEvent>,
    /// How many peers the client would like.
    pub numwant: u32,
    /// Random per session (BEP 7 `key`), sent as 8 hex digits.
    pub key: u32,
}

/// The `event` parameter of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// The first announce of a session.
    Started,
    /// The download just finished.
    Completed,
    /// The torrent is leaving the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// The value of the `event` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Completed => "completed",
            Self::Stopped => "stopped",
        }
    }
}

/// What a tracker answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReply {
    /// When to announce again, clamped to [`MIN_INTERVAL`]`..=`[`MAX_INTERVAL`].
    pub interval: Duration,
    /// The tracker's `min interval`, at most [`MAX_INTERVAL`].
    pub min_interval: Option<Duration>,
    /// Peers from compact `peers` (6 bytes each), `peers6` (18 bytes each) or the list of
    /// dictionaries (`ip` as text, `port`); entries with port 0 or a host name are skipped.
    pub peers: Vec<SocketAddr>,
    /// Seeders, if the tracker said.
    pub complete: Option<u64>,
    /// Leechers, if the tracker said.
    pub incomplete: Option<u64>,
    /// The tracker's `warning message`.
    pub warning: Option<String>,
    /// The tracker's `tracker id`.
    pub tracker_id: Option<Vec<u8>>,
}

/// A torrent's counts from a scrape (BEP 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeReply {
    /// Seeders.
    pub complete: u64,
    /// Completed downloads the tracker has counted.
    pub downloaded: u64,
    /// Leechers.
    pub incomplete: u64,
}

/// Why an announce or scrape failed. `url` is always the [`redact`]ed tracker URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tracker {url}: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[error("cannot connect to tracker {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("tracker {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("HTTP exchange with tracker {url} failed: {reason}")]
    Exchange { url: String, reason: String },
    #[error("tracker {url} answered HTTP status {status}")]
    Http { url: String, status: u16 },
    #[error("tracker {url} sent a reply larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("tracker {url} refused the request: {reason}")]
    Failure { url: String, reason: String },
    #[error("tracker {url} sent an invalid reply: {reason}")]
    Garbage { url: String, reason: String },
}

/// A 20-byte BitTorrent peer id for a shoal node: [`PEER_ID_PREFIX`] followed by 12
/// letters and digits derived (SHA-1) from `seed`, so the same node keeps the same id.
pub fn peer_id(seed: &[u8]) -> [u8; 20] {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = InfoHash::of_info_bytes(seed).0;
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(PEER_ID_PREFIX);
    for (slot, byte) in id[8..].iter_mut().zip(digest) {
        *slot = ALPHABET[usize::from(byte) % ALPHABET.len()];
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_has_the_prefix_and_depends_on_the_seed() {
        let a = peer_id(b"node a");
        assert_eq!(&a[..8], b"-SH0100-");
        assert!(a[8..].iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(a, peer_id(b"node a"));
        assert_ne!(a, peer_id(b"node b"));
    }
}
