//! Read-only figures about a torrent and its peers, for progress output and metrics.

use std::time::Duration;

use crate::event::PeerKey;

/// A torrent's progress and traffic, as of the last event or timeout handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentStats {
    pub num_pieces: u32,
    /// Verified pieces.
    pub pieces_have: u32,
    pub complete: bool,
    pub in_endgame: bool,
    /// Payload received in blocks we requested, duplicates included.
    pub bytes_downloaded: u64,
    /// Payload sent (reported by [`crate::Event::Uploaded`]).
    pub bytes_uploaded: u64,
    /// Payload received that we already had or were already writing (end game, late blocks).
    pub duplicate_bytes: u64,
    /// Bytes per second, summed over connected peers.
    pub download_rate: u64,
    pub upload_rate: u64,
    pub peers: usize,
    /// Peers we unchoke.
    pub unchoked_peers: usize,
    /// Peers interested in what we have.
    pub interested_peers: usize,
    pub failed_pieces: u32,
    pub banned_peers: u32,
    /// From the engine's creation to the first block received.
    pub time_to_first_byte: Option<Duration>,
    /// From the engine's creation to the last piece verified.
    pub time_to_complete: Option<Duration>,
}

/// One peer as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub peer: PeerKey,
    /// Its handshake arrived.
    pub handshaken: bool,
    /// How many pieces it has.
    pub pieces: u32,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    pub snubbed: bool,
    /// It holds our optimistic unchoke.
    pub optimistic: bool,
    pub bytes_downloaded: u64,
    pub bytes_uploaded: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    /// Our requests to it in flight, and the depth we aim for.
    pub outstanding_requests: usize,
    pub queue_depth: usize,
    /// Its requests queued or being served.
    pub queued_requests: usize,
    pub connected_for: Duration,
    pub since_last_block: Option<Duration>,
}
