//! `summary.json`: the run's results in numbers, computed from a [`RunRecord`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fluid::fluid_bound;
use crate::record::{FaultRecord, NodeRecord, RunRecord};

/// The content of `summary.json`. Times are seconds since the run started unless named
/// otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    /// `processes` or `in-process`.
    pub mode: String,
    pub duration_s: f64,
    pub content_size: u64,
    pub num_pieces: u32,
    /// The run hit its timeout.
    pub timed_out: bool,
    /// At least one node was expected to complete, and every node that should complete
    /// finished with `content_ok: true`. `false` when no node was expected to complete (none
    /// was planned, or every one left or was killed before completing): nothing was shown to
    /// work.
    pub all_complete: bool,
    /// The fluid-model lower bound on distribution time, if the caps give one.
    pub t_min_s: Option<f64>,
    /// When the earliest downloading node (one with `should_complete`) joined.
    pub first_download_join_s: Option<f64>,
    /// Last completion minus `first_download_join_s`; `None` unless every node that should
    /// complete finished.
    pub t_last_s: Option<f64>,
    /// `t_last_s / t_min_s`: 1.0 is the theoretical best.
    pub ratio: Option<f64>,
    pub nodes: Vec<NodeSummary>,
    pub groups: Vec<GroupSummary>,
    pub totals: Totals,
    /// Faults as they fired.
    pub faults: Vec<FaultRecord>,
}

/// One node's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub name: String,
    pub group: String,
    pub role: String,
    pub should_complete: bool,
    /// When its process started (for a node that never started: when it was planned to).
    pub join_s: f64,
    /// When it had every piece, from the node's own clock (`None`: it never finished).
    pub completed_s: Option<f64>,
    pub left_s: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duplicate_bytes: u64,
    /// `bytes_up / bytes_down`; `None` when it downloaded nothing.
    pub share_ratio: Option<f64>,
    /// Distinct peers it connected to over the run, by the source that found each (a peer
    /// connected through two sources counts under both).
    pub peers_by_source: BTreeMap<String, u32>,
    /// Peers it banned.
    pub bans: u32,
    /// Its download compared byte for byte with the generated original at the end: `None` if
    /// it was not compared (never started, or a second Ctrl-C cut the check short).
    pub content_ok: Option<bool>,
}

/// One group's aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub name: String,
    pub role: String,
    pub nodes: u32,
    /// Nodes that finished downloading.
    pub completed: u32,
    pub first_completion_s: Option<f64>,
    pub median_completion_s: Option<f64>,
    pub last_completion_s: Option<f64>,
    /// Mean of completion minus join over the nodes that finished.
    pub mean_download_s: Option<f64>,
    /// Mean share ratio over the nodes that have one.
    pub mean_share_ratio: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// Sums over every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duplicate_bytes: u64,
    pub bans: u64,
    /// Distinct peers found per source, summed over nodes (a peer two nodes found counts
    /// twice).
    pub peers_by_source: BTreeMap<String, u64>,
}

impl Summary {
    /// Computes the summary of a run.
    pub fn from_record(record: &RunRecord) -> Summary {
        let downloaders: Vec<&NodeRecord> =
            record.nodes.iter().filter(|n| n.should_complete).collect();
        let all_complete = !downloaders.is_empty()
            && downloaders
                .iter()
                .all(|n| n.completed_s.is_some() && n.content_ok == Some(true));
        let first_download_join_s = downloaders.iter().map(|n| n.join_s).reduce(f64::min);
        let every_finished =
            !downloaders.is_empty() && downloaders.iter().all(|n| n.completed_s.is_some());
        let t_last_s = if every_finished {
            let last = downloaders
                .iter()
                .filter_map(|n| n.completed_s)
                .reduce(f64::max);
            last.zip(first_download_join_s)
                .map(|(l, j)| (l - j).max(0.0))
        } else {
            None
        };
        let t_min_s = fluid_bound(record).filter(|t| t.is_finite());
        let ratio = t_last_s
            .zip(t_min_s)
            .filter(|(_, m)| *m > 0.0)
            .map(|(l, m)| l / m);
        let mut totals = Totals::default();
        for n in &record.nodes {
            totals.bytes_up = totals.bytes_up.saturating_add(n.bytes_up);
            totals.bytes_down = totals.bytes_down.saturating_add(n.bytes_down);
            totals.duplicate_bytes = totals.duplicate_bytes.saturating_add(n.duplicate_bytes);
            totals.bans += u64::from(n.bans);
            for (source, count) in &n.peers_by_source {
                *totals.peers_by_source.entry(source.clone()).or_default() += u64::from(*count);
            }
        }
        Summary {
            scenario: record.scenario.clone(),
            seed: record.seed,
            mode: record.mode.clone(),
            duration_s: record.duration_s,
            content_size: record.content_size,
            num_pieces: record.num_pieces,
            timed_out: record.timed_out,
            all_complete,
            t_min_s,
            first_download_join_s,
            t_last_s,
            ratio,
            nodes: record.nodes.iter().map(node_summary).collect(),
            groups: group_summaries(record),
            totals,
            faults: record.faults.clone(),
        }
    }
}

fn share_ratio(n: &NodeRecord) -> Option<f64> {
    (n.bytes_down > 0).then(|| n.bytes_up as f64 / n.bytes_down as f64)
}

fn node_summary(n: &NodeRecord) -> NodeSummary {
    NodeSummary {
        name: n.name.clone(),
        group: n.group.clone(),
        role: n.role.clone(),
        should_complete: n.should_complete,
        join_s: n.join_s,
        completed_s: n.completed_s,
        left_s: n.left_s,
        bytes_up: n.bytes_up,
        bytes_down: n.bytes_down,
        duplicate_bytes: n.duplicate_bytes,
        share_ratio: share_ratio(n),
        peers_by_source: n.peers_by_source.clone(),
        bans: n.bans,
        content_ok: n.content_ok,
    }
}

/// Groups in the order their first node appears in the record.
pub(crate) fn group_names(record: &RunRecord) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for n in &record.nodes {
        if !names.contains(&n.group) {
            names.push(n.group.clone());
        }
    }
    names
}

fn group_summaries(record: &RunRecord) -> Vec<GroupSummary> {
    group_names(record)
        .into_iter()
        .map(|name| {
            let members: Vec<&NodeRecord> =
                record.nodes.iter().filter(|n| n.group == name).collect();
            let mut done: Vec<f64> = members.iter().filter_map(|n| n.completed_s).collect();
            done.sort_by(f64::total_cmp);
            let downloads: Vec<f64> = members
                .iter()
                .filter_map(|n| n.completed_s.map(|c| c - n.join_s))
                .collect();
            let ratios: Vec<f64> = members.iter().filter_map(|n| share_ratio(n)).collect();
            GroupSummary {
                role: members.first().map(|n| n.role.clone()).unwrap_or_default(),
                nodes: u32::try_from(members.len()).unwrap_or(u32::MAX),
                completed: u32::try_from(done.len()).unwrap_or(u32::MAX),
                first_completion_s: done.first().copied(),
                median_completion_s: median(&done),
                last_completion_s: done.last().copied(),
                mean_download_s: mean(&downloads),
                mean_share_ratio: mean(&ratios),
                bytes_up: members
                    .iter()
                    .map(|n| n.bytes_up)
                    .fold(0, u64::saturating_add),
                bytes_down: members
                    .iter()
                    .map(|n| n.bytes_down)
                    .fold(0, u64::saturating_add),
                name,
            }
        })
        .collect()
}

/// Median of sorted values (mean of the middle two for an even count).
pub(crate) fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => sorted.get(n / 2).copied(),
        _ => Some((sorted.get(n / 2 - 1)? + sorted.get(n / 2)?) / 2.0),
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}
