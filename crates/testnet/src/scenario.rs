//! Scenario files: what a testnet runs. TOML, documented key by key in testnet/README.md.
//!
//! The types here are what the runner and the report work from; [`Scenario::parse`] reads
//! and checks a file (unknown keys, bad values and impossible combinations are errors that
//! name the key and the line).

use std::path::{Path, PathBuf};
use std::time::Duration;

mod raw;
#[cfg(test)]
mod tests;
mod text;

/// Largest scenario file accepted, in bytes.
pub const MAX_SCENARIO_BYTES: usize = 1 << 20;
/// Most nodes a scenario may start at once: every group's nodes plus the bootstrap nodes.
pub const MAX_NODES: u64 = 10_000;
/// Longest group name, in bytes: it is part of each node's directory name.
pub const MAX_GROUP_NAME: usize = 64;
/// What the DHT bootstrap nodes are named after (`bootstrap-<n>`): no group may be.
pub const BOOTSTRAP_NAME: &str = "bootstrap";

/// Why a scenario file was refused. Every message names the file, and where it can, the line
/// and the key.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_SCENARIO_BYTES`].
    #[error("{origin}: {len} bytes is more than the {limit}-byte limit for a scenario file")]
    TooLarge {
        origin: String,
        len: usize,
        limit: usize,
    },
    /// TOML syntax, an unknown or missing key, or a value of the wrong type.
    #[error("{origin} line {line}: {message}")]
    Toml {
        origin: String,
        line: usize,
        message: String,
    },
    /// A value of the right type that is out of range or contradicts another.
    #[error("{origin} line {line}: {key}: {message}")]
    Value {
        origin: String,
        line: usize,
        key: String,
        message: String,
    },
    /// A problem with the scenario as a whole (e.g. no seeders).
    #[error("{origin}: {message}")]
    Scenario { origin: String, message: String },
}

impl ScenarioError {
    /// The 1-based line the error is about, if it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ScenarioError::Toml { line, .. } | ScenarioError::Value { line, .. } => Some(*line),
            _ => None,
        }
    }
}

impl Scenario {
    /// Parses and checks a scenario from TOML text (named `scenario.toml` in errors).
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Self::parse_named(text, "scenario.toml")
    }

    /// Reads, parses and checks a scenario file (errors name the file).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let read_err = |source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        };
        let origin = path.display().to_string();
        let len = std::fs::metadata(path).map_err(read_err)?.len();
        if len > MAX_SCENARIO_BYTES as u64 {
            return Err(ScenarioError::TooLarge {
                origin,
                len: usize::try_from(len).unwrap_or(usize::MAX),
                limit: MAX_SCENARIO_BYTES,
            });
        }
        // The length above is 0 for a pipe or a device (`<(…)`, /dev/zero): read one byte past
        // the limit at most, whatever the file says.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| {
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(file, MAX_SCENARIO_BYTES as u64 + 1),
                    &mut bytes,
                )
            })
            .map_err(read_err)?;
        if bytes.len() > MAX_SCENARIO_BYTES {
            return Err(ScenarioError::TooLarge {
                origin,
                len: bytes.len(),
                limit: MAX_SCENARIO_BYTES,
            });
        }
        let text = String::from_utf8(bytes)
            .map_err(|e| read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        Self::parse_named(&text, &origin)
    }

    fn parse_named(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        if text.len() > MAX_SCENARIO_BYTES {
            return Err(ScenarioError::TooLarge {
                origin: origin.to_owned(),
                len: text.len(),
                limit: MAX_SCENARIO_BYTES,
            });
        }
        let cx = text::Ctx { text, origin };
        let parsed: raw::RawScenario = toml::from_str(text).map_err(|e| toml_error(&cx, &e))?;
        parsed.convert(&cx)
    }
}

/// Turns toml's error into one with the line and the table it happened in.
fn toml_error(cx: &text::Ctx<'_>, e: &toml::de::Error) -> ScenarioError {
    let offset = e.span().map_or(0, |s| s.start);
    let line = cx.line(offset);
    let (table, path) = text::table_at(cx.text, offset);
    let message = e.message().trim();
    let message = match (
        message.strip_prefix("unknown field `"),
        text::key_at(cx.text, offset),
    ) {
        (Some(rest), parent) => {
            // The span is the unknown key; a key before it on the line is its inline table.
            let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let place = match parent {
                Some(p) if path.is_empty() => format!("'{p}'"),
                Some(p) => format!("'{path}.{p}'"),
                None => table,
            };
            format!("unknown key '{key}' in {place}{expected}")
        }
        (None, Some(key)) if path.is_empty() => format!("{key}: {message}"),
        (None, Some(key)) => format!("{path}.{key}: {message}"),
        (None, None) => format!("in {table}: {message}"),
    };
    ScenarioError::Toml {
        origin: cx.origin.to_owned(),
        line,
        message,
    }
}

/// A whole testnet run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// Seeds the content and every random choice of the runner (join spread, churn picks).
    pub seed: u64,
    /// The run fails when not every node that should finish has finished by then.
    pub timeout: Duration,
    pub content: Content,
    pub tracker: TrackerSpec,
    pub dht: DhtSpec,
    pub groups: Vec<Group>,
    pub faults: Vec<Fault>,
}

/// The content every seeder starts with, generated deterministically from `seed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// Total bytes.
    pub size: u64,
    /// Piece length; `None`: chosen as `shoal create` would.
    pub piece_length: Option<u64>,
    /// 1: a single file; more: a directory of that many files of (about) equal size.
    pub files: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerSpec {
    /// Run a `shoal tracker` and give every node whose group uses trackers its URL.
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtSpec {
    /// Bootstrap nodes (`shoal node`) started before everyone else; nodes with the DHT on join
    /// through all of them. 0: no bootstrap nodes (then DHT groups only meet through others).
    pub bootstrap_nodes: u32,
}

/// Nodes that behave alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub count: u32,
    pub role: Role,
    /// Bytes per second; `None`: unlimited.
    pub upload_limit: Option<u64>,
    pub download_limit: Option<u64>,
    /// When the first node of the group starts, from the start of the run.
    pub join_at: Duration,
    /// The group's nodes start spread evenly over this long after `join_at`.
    pub join_spread: Duration,
    pub leave: Leave,
    pub discovery: Discovery,
    /// Leechers only: start from a bare magnet link (info-hash only) instead of the .torrent.
    pub magnet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Has the content from the start.
    Seeder,
    /// Downloads, then seeds.
    Leecher,
    /// Downloads but never uploads.
    FreeRider,
    /// Downloads, and answers requests with corrupt blocks.
    Hostile,
}

impl Role {
    /// Whether nodes of this role are expected to end with the whole content.
    pub fn should_complete(self) -> bool {
        matches!(self, Role::Leecher | Role::FreeRider)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Leave {
    /// Stays until the run ends.
    Never,
    /// Leaves (is stopped) this long after the run started.
    At(Duration),
    /// Leaves as soon as its download is complete.
    OnCompletion,
    /// Leaves once it has uploaded this many copies of the content.
    AfterUploading(f64),
}

/// Which peer sources the group's nodes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discovery {
    pub dht: bool,
    pub pex: bool,
    pub tracker: bool,
}

/// Something done to the swarm during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub when: Trigger,
    pub action: FaultAction,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// This long after the run started.
    At(Duration),
    /// Once the swarm's progress (pieces held by nodes that should complete, over what they
    /// need) reaches this fraction, 0.0..=1.0.
    Progress(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    KillTracker,
    RestartTracker,
    /// kill -9 `count` running nodes of `group` (all if `None`).
    Kill {
        group: String,
        count: Option<u32>,
    },
    /// SIGSTOP them.
    Pause {
        group: String,
        count: Option<u32>,
    },
    /// SIGCONT every paused node of `group`.
    Resume {
        group: String,
    },
    /// From now on, `rate` nodes of `group` per minute are killed and replaced by fresh ones
    /// (same group settings, empty data), for `duration`.
    Churn {
        group: String,
        per_minute: f64,
        duration: Duration,
    },
    /// Stop the seeders (role seeder, every group) once they have uploaded one full copy.
    KillSeedersAfterOneCopy,
}
