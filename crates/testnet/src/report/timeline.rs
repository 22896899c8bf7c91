//! `timeline.csv` and the time series the plots draw, all from the nodes' samples.

use std::fmt::Write as _;

use crate::record::{NodeRecord, RunRecord, Sample};

/// The peer sources, in column order.
pub const SOURCES: [&str; 5] = ["manual", "incoming", "dht", "pex", "tracker"];

/// Points on the time axis of every plot.
const GRID_POINTS: usize = 240;

/// One line of a plot: a name and (t, value) points.
pub(crate) type Series = (String, Vec<(f64, f64)>);

/// `timeline.csv`: a header, then one row per node per sample, in node order.
pub fn csv(record: &RunRecord) -> String {
    let mut out = String::from("t,node,group,pieces,bytes_up,bytes_down");
    for s in SOURCES {
        out.push(',');
        out.push_str(s);
    }
    out.push('\n');
    for n in &record.nodes {
        for s in &n.samples {
            let _ = write!(
                out,
                "{:.3},{},{},{},{},{}",
                s.t,
                csv_field(&n.name),
                csv_field(&n.group),
                s.pieces,
                s.bytes_up,
                s.bytes_down
            );
            for source in SOURCES {
                let _ = write!(
                    out,
                    ",{}",
                    s.peers_by_source.get(source).copied().unwrap_or(0)
                );
            }
            out.push('\n');
        }
    }
    out
}

/// Quotes a field that holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The run's end: its recorded duration, or the last sample if later.
pub(crate) fn end_time(record: &RunRecord) -> f64 {
    record
        .nodes
        .iter()
        .flat_map(|n| n.samples.iter().map(|s| s.t))
        .chain([record.duration_s])
        .filter(|t| t.is_finite())
        .fold(0.0, f64::max)
}

/// Evenly spaced times from 0 to the end of the run.
pub(crate) fn grid(record: &RunRecord) -> Vec<f64> {
    let end = end_time(record);
    if end <= 0.0 {
        return vec![0.0];
    }
    (0..=GRID_POINTS)
        .map(|i| end * i as f64 / GRID_POINTS as f64)
        .collect()
}

/// A sampled figure at `t`, linear between samples, the last value after the last sample,
/// `None` before the first.
fn value_at(samples: &[Sample], t: f64, f: impl Fn(&Sample) -> f64) -> Option<f64> {
    let after = samples.partition_point(|s| s.t <= t);
    let prev = samples.get(after.checked_sub(1)?)?;
    match samples.get(after) {
        Some(next) if next.t > prev.t => {
            let w = (t - prev.t) / (next.t - prev.t);
            Some(f(prev) + (f(next) - f(prev)) * w)
        }
        _ => Some(f(prev)),
    }
}

/// The last sample at or before `t`, while the node is still in the run.
fn sample_at(n: &NodeRecord, t: f64) -> Option<&Sample> {
    if n.left_s.is_some_and(|l| t > l) {
        return None;
    }
    let after = n.samples.partition_point(|s| s.t <= t);
    n.samples.get(after.checked_sub(1)?)
}

/// Mean fraction of pieces held, per group of downloading nodes (every role but seeder);
/// nodes count as 0 before their first sample.
pub(crate) fn progress(record: &RunRecord, grid: &[f64], groups: &[String]) -> Vec<Series> {
    let pieces = f64::from(record.num_pieces.max(1));
    groups
        .iter()
        .filter_map(|g| {
            let members: Vec<&NodeRecord> = record
                .nodes
                .iter()
                .filter(|n| &n.group == g && n.role != "seeder")
                .collect();
            if members.is_empty() {
                return None;
            }
            let points = grid
                .iter()
                .map(|&t| {
                    let sum: f64 = members
                        .iter()
                        .map(|n| value_at(&n.samples, t, |s| f64::from(s.pieces)).unwrap_or(0.0))
                        .sum();
                    (t, (sum / members.len() as f64 / pieces).min(1.0))
                })
                .collect();
            Some((g.clone(), points))
        })
        .collect()
}

/// Connected peers summed over the nodes in the run, one series per source seen.
pub(crate) fn peers(record: &RunRecord, grid: &[f64]) -> Vec<Series> {
    let mut sources: Vec<String> = SOURCES.iter().map(|s| (*s).to_owned()).collect();
    for n in &record.nodes {
        for s in &n.samples {
            for k in s.peers_by_source.keys() {
                if !sources.contains(k) {
                    sources.push(k.clone());
                }
            }
        }
    }
    sources
        .into_iter()
        .map(|source| {
            let points = grid
                .iter()
                .map(|&t| {
                    let sum: u64 = record
                        .nodes
                        .iter()
                        .filter_map(|n| sample_at(n, t))
                        .map(|s| u64::from(s.peers_by_source.get(&source).copied().unwrap_or(0)))
                        .sum();
                    (t, sum as f64)
                })
                .collect();
            (source, points)
        })
        .collect()
}

/// Aggregate upload rate between grid points: as a fraction of the upload capacity of the
/// nodes present when every uploading node is capped (`true`), else in MB/s (`false`).
pub(crate) fn upload(record: &RunRecord, grid: &[f64]) -> (Vec<(f64, f64)>, bool) {
    let uploaders: Vec<&NodeRecord> = record
        .nodes
        .iter()
        .filter(|n| n.role != "free-rider")
        .collect();
    let capped = !uploaders.is_empty() && uploaders.iter().all(|n| n.upload_limit.is_some());
    let total_up = |t: f64| -> f64 {
        record
            .nodes
            .iter()
            .map(|n| value_at(&n.samples, t, |s| s.bytes_up as f64).unwrap_or(0.0))
            .sum()
    };
    let mut points = Vec::with_capacity(grid.len());
    for pair in grid.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let rate = (total_up(b) - total_up(a)).max(0.0) / (b - a);
        let value = if capped {
            let capacity: u64 = uploaders
                .iter()
                .filter(|n| n.join_s <= b && n.left_s.is_none_or(|l| l >= a))
                .filter_map(|n| n.upload_limit)
                .sum();
            if capacity == 0 {
                0.0
            } else {
                rate / capacity as f64
            }
        } else {
            rate / 1e6
        };
        points.push((b, value));
    }
    (points, capped)
}
