//! The one error type of shoal-node.

use std::path::PathBuf;

/// What can go wrong starting or driving a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: not a valid shoal identity key ({reason}); move it away to make a new one")]
    BadIdentity { path: PathBuf, reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: String, reason: String },
    #[error("transport setup failed: {0}")]
    Transport(String),
    #[error("magnet link: {0}")]
    Metadata(String),
    #[error("storage: {0}")]
    Storage(String),
    /// Seeding (read-only storage) needs every piece present.
    #[error("only {have} of {total} pieces match the torrent; seed complete data")]
    IncompleteData { have: u32, total: u32 },
    #[error("the node has shut down")]
    Stopped,
}
