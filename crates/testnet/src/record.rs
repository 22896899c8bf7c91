//! What a run recorded: the runner fills it in, the report is written from it alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t: f64,
    pub pieces: u32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Peers connected at that moment, by the source that found them (`manual`, `incoming`,
    /// `dht`, `pex`, `tracker`).
    pub peers_by_source: BTreeMap<String, u32>,
}

/// One node over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Unique in the run, e.g. `leechers-07`.
    pub name: String,
    pub group: String,
    /// `seeder`, `leecher`, `free-rider`, `hostile`.
    pub role: String,
    /// Whether this node is expected to end with the whole content.
    pub should_complete: bool,
    /// When its process was started, in seconds since the run started (for a node that never
    /// started, when it was planned to).
    pub join_s: f64,
    /// When it had every piece: when it added the torrent plus its own `time_to_complete_ms`
    /// (see `Node::observe`); `None`: never.
    pub completed_s: Option<f64>,
    pub left_s: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duplicate_bytes: u64,
    /// Distinct peers it connected to over the run, by the source that found each (a peer
    /// connected through two sources counts under both); from the node's
    /// `peers_found_by_source`.
    pub peers_by_source: BTreeMap<String, u32>,
    /// Peers this node banned.
    pub bans: u32,
    /// At the end of the run its download directory was compared byte for byte with the
    /// generated original: `Some(true)` the same, `Some(false)` not (or missing); `None` not
    /// compared (it never started, or a second Ctrl-C cut the check short).
    pub content_ok: Option<bool>,
    /// Upload cap in bytes per second, if any (for the fluid bound).
    pub upload_limit: Option<u64>,
    pub download_limit: Option<u64>,
    pub samples: Vec<Sample>,
}

/// A fault as it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub t: f64,
    pub what: String,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub scenario: String,
    pub seed: u64,
    /// Unix seconds when the run started.
    pub started_unix: u64,
    pub duration_s: f64,
    pub content_size: u64,
    pub num_pieces: u32,
    /// `processes` or `in-process`.
    pub mode: String,
    pub timed_out: bool,
    pub nodes: Vec<NodeRecord>,
    pub faults: Vec<FaultRecord>,
}
