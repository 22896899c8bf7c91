//! shoal-testnet: scenario files, launching whole swarms on one machine, faults, live view and
//! reports.
//!
//! A [`Scenario`] says what to run: the content, groups of nodes (seeders, leechers,
//! free-riders, hostile nodes) with their caps, join times, leave conditions and discovery
//! settings, the tracker and DHT bootstrap nodes, and faults at times or progress thresholds.
//! The runner launches it (every node a `shoal` process by default) and records a
//! [`RunRecord`]; the report is written from that record alone.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod compare;
pub mod content;
pub mod fluid;
pub mod record;
pub mod report;
pub mod runner;
pub mod scenario;

pub use compare::compare;
pub use fluid::fluid_bound;
pub use record::{FaultRecord, NodeRecord, RunRecord, Sample};
pub use report::{ReportError, Summary};
pub use runner::{Interrupter, Interrupts, RunError, RunEvent, RunOptions, RunOutcome, run};
pub use scenario::{
    Content, DhtSpec, Discovery, Fault, FaultAction, Group, Leave, Role, Scenario, ScenarioError,
    TrackerSpec, Trigger,
};
