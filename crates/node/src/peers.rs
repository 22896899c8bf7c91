//! Where peers come from. Every connected peer keeps the source that found it, so stats and
//! testnets can tell which path (manual, incoming, and later DHT, PEX, tracker) found whom.

use libp2p::PeerId;

/// How we learned of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerSource {
    /// Given by the user (`--peer`) or by the API (`TorrentHandle::add_peer`).
    Manual,
    /// It opened a stream to us.
    Incoming,
}

impl PeerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::Manual => "manual",
            PeerSource::Incoming => "incoming",
        }
    }
}

/// A connected peer of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer_id: PeerId,
    pub source: PeerSource,
}
