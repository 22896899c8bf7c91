//! Everything that can go wrong, from a malformed announce to an unreadable users file.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A tracker error. Request errors (see [`TrackerError::is_request_error`]) are answered with
/// a bencoded `failure reason` holding this error's text; the others stop the server or its
/// start-up.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("query string is {len} bytes, more than the {max}-byte limit")]
    QueryTooLong { len: usize, max: usize },
    #[error("request is too large: its head is over the {max}-byte limit")]
    HeadTooLarge { max: usize },
    #[error("malformed HTTP request: {reason}")]
    MalformedRequest { reason: String },
    #[error("tracker busy: it serves at most {max} connections at once; announce again later")]
    Busy { max: usize },
    #[error("missing {param}")]
    Missing { param: &'static str },
    #[error("{param} must be 20 bytes, got {len}")]
    WrongLength { param: &'static str, len: usize },
    #[error("{param} is given more than once")]
    Duplicate { param: &'static str },
    #[error("malformed percent-encoding in {param}")]
    BadEscape { param: &'static str },
    #[error("{param} is not a non-negative integer")]
    NotANumber { param: &'static str },
    #[error("port must be a number from 1 to 65535")]
    BadPort,
    #[error("{param} is longer than {max} bytes")]
    TooLong { param: &'static str, max: usize },
    #[error("unknown event {event:?}; expected started, completed, stopped or empty")]
    UnknownEvent { event: String },
    #[error("ip {ip:?} is not an IP address")]
    BadIp { ip: String },
    #[error("unknown path {path:?}; use /announce or /scrape")]
    UnknownPath { path: String },
    #[error("method {method} is not supported; use GET")]
    Method { method: String },
    #[error("too many info_hash parameters: at most {max} per scrape")]
    TooManyHashes { max: usize },
    #[error("full scrape is disabled; give one or more info_hash parameters")]
    FullScrapeDisabled,
    #[error("tracker is full: it tracks at most {max} torrents")]
    TooManySwarms { max: usize },
    #[error("torrent is full: at most {max} peers per torrent")]
    SwarmFull { max: usize },
    #[error("tracker is full: at most {max} peers in all")]
    TooManyPeers { max: usize },
    #[error("this is a private tracker: use the announce URL with your passkey")]
    PasskeyRequired,
    #[error("unknown passkey")]
    UnknownPasskey,

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} line {line}: {reason}")]
    UsersFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: not a tracker state file: {source}")]
    StateFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

impl TrackerError {
    /// Whether this error is about one request (answered with a failure reason) rather than
    /// about the tracker itself.
    pub fn is_request_error(&self) -> bool {
        !matches!(
            self,
            Self::Io { .. } | Self::UsersFile { .. } | Self::StateFile { .. } | Self::Bind { .. }
        )
    }
}
