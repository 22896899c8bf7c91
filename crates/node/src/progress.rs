//! What a torrent reports while it runs.

use std::collections::HashMap;

use shoal_swarm::{PeerSnapshot, PexStats, TorrentStats};

use crate::peers::{PeerInfo, PeerSource};

/// A cheap summary, republished after every change (a `watch` channel): progress bars and
/// "wait until complete" read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorrentProgress {
    pub num_pieces: u32,
    pub pieces_have: u32,
    pub bytes_downloaded: u64,
    pub bytes_uploaded: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub peers: usize,
    /// Every piece is verified on disk.
    pub complete: bool,
    /// Why the torrent stopped by itself (its disk kept failing); it no longer trades.
    pub error: Option<String>,
}

impl TorrentProgress {
    pub(crate) fn from_stats(stats: &TorrentStats, complete: bool) -> Self {
        Self {
            num_pieces: stats.num_pieces,
            pieces_have: stats.pieces_have,
            bytes_downloaded: stats.bytes_downloaded,
            bytes_uploaded: stats.bytes_uploaded,
            download_rate: stats.download_rate,
            upload_rate: stats.upload_rate,
            peers: stats.peers,
            complete: complete || stats.complete,
            error: None,
        }
    }
}

/// One connected peer: who, found how, and what the engine knows of it.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub info: PeerInfo,
    /// Choke and interest flags, bytes, rates, requests in flight.
    pub state: Option<PeerSnapshot>,
}

/// The full picture: the engine's figures and the connected peers.
#[derive(Debug, Clone)]
pub struct TorrentStatus {
    pub stats: TorrentStats,
    pub peers: Vec<PeerStatus>,
    /// PEX messages sent and received (all zero when PEX is off or the torrent is private).
    pub pex: PexStats,
    /// Announces to the torrent's trackers: successes, failures, current back-off, last error.
    pub tracker: shoal_tracker::client::AnnounceStats,
    /// Distinct peers ever connected, by the source that found them (a peer connected through
    /// two sources over time counts under both); `peers` only has those connected now.
    pub found_by_source: HashMap<PeerSource, usize>,
}
