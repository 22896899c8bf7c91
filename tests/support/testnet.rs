//! Helpers for the `shoal testnet run` end-to-end tests: running a scenario, reading its run
//! directory, and what the assertions compute from it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::shoal_within;

/// How long a `shoal testnet run` may take before the test kills it and fails: far above the
/// scenarios' own timeouts (the runner stops itself at those), for a loaded 2-core machine.
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// What a finished `shoal testnet run` left behind.
pub struct Finished {
    pub run_dir: PathBuf,
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
    pub summary: Value,
    pub record: Value,
}

/// Writes `toml` as a scenario in `dir`, runs it with `--out dir/runs` (killed after `limit`:
/// a hang guard, far above what the scenario's own timeout allows) and expects success.
pub fn run_scenario(dir: &Path, toml: &str, limit: Duration) -> Finished {
    run_scenario_with(dir, toml, limit, &[])
}

pub fn run_scenario_with(dir: &Path, toml: &str, limit: Duration, extra: &[&str]) -> Finished {
    let run = run_any(dir, toml, limit, extra);
    assert_eq!(
        run.status, 0,
        "testnet run failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run
}

/// Like [`run_scenario_with`], whatever the exit status.
pub fn run_any(dir: &Path, toml: &str, limit: Duration, extra: &[&str]) -> Finished {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, toml).unwrap();
    let out = dir.join("runs");
    let mut args = vec![
        "testnet",
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = shoal_within(dir, &args, limit);
    let run_dir = only_run_dir(&out);
    let read = |name: &str| {
        let text = std::fs::read_to_string(run_dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", run.stderr));
        serde_json::from_str(&text).unwrap()
    };
    Finished {
        summary: read("summary.json"),
        record: read("record.json"),
        stdout: run.stdout,
        stderr: run.stderr,
        status: run.status,
        run_dir,
    }
}

/// The one run directory below `out`.
pub fn only_run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// The nodes of `group` in a summary.
pub fn group<'a>(summary: &'a Value, name: &str) -> Vec<&'a Value> {
    let nodes = summary["nodes"].as_array().unwrap();
    nodes.iter().filter(|n| n["group"] == name).collect()
}

/// Checks what every run must have: all complete, the content of every seeder and of every node
/// that should complete intact, the report with its plots, the data directories.
pub fn check_common(run: &Finished, nodes: usize) {
    assert_eq!(run.status, 0, "{}", run.stderr);
    let run_line = format!("run {}", run.run_dir.display());
    assert!(run.stdout.contains(&run_line), "{}", run.stdout);
    assert!(run.stdout.contains("all_complete true"), "{}", run.stdout);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("t_last ")),
        "{}",
        run.stdout
    );
    let s = &run.summary;
    assert_eq!(s["all_complete"], true, "{s:#}");
    assert_eq!(s["timed_out"], false);
    let list = s["nodes"].as_array().unwrap();
    assert_eq!(list.len(), nodes);
    for node in list {
        if node["should_complete"] == true || node["role"] == "seeder" {
            assert_eq!(node["content_ok"], true, "{node:#}");
        }
        if node["should_complete"] == true {
            let (join, done) = (node["join_s"].as_f64(), node["completed_s"].as_f64());
            assert!(done.unwrap() >= join.unwrap(), "{node:#}");
        }
    }
    let html = std::fs::read_to_string(run.run_dir.join("report.html")).unwrap();
    for id in ["completion-cdf", "progress", "peers-by-source", "upload"] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "report.html lacks #{id}"
        );
    }
    assert!(run.run_dir.join("timeline.csv").is_file());
    assert!(run.run_dir.join("content/content.torrent").is_file());
    let first = list[0]["name"].as_str().unwrap();
    assert!(run.run_dir.join("nodes").join(first).join("data").is_dir());
}

/// Peers by source per (node, t) from timeline.csv, after `after` seconds.
pub fn dht_or_pex_peers_after(run_dir: &Path, after: f64) -> Vec<(String, f64, u64)> {
    let csv = std::fs::read_to_string(run_dir.join("timeline.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (t, node, dht, pex) = (col("t"), col("node"), col("dht"), col("pex"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter_map(|f| {
            let at: f64 = f[t].parse().ok()?;
            let n: u64 = f[dht].parse::<u64>().ok()? + f[pex].parse::<u64>().ok()?;
            (at > after && n > 0).then(|| (f[node].to_owned(), at, n))
        })
        .collect()
}

/// Swarm progress (pieces held by the nodes that should complete, over all they need) at the
/// last sample before `t` and at `t`, from record.json as the runner saw it: each node at its
/// latest sample by then, a node not started yet at 0.
pub fn progress_around(record: &Value, t: f64) -> (f64, f64) {
    let pieces = record["num_pieces"].as_f64().unwrap();
    let nodes: Vec<&Value> = record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["should_complete"] == true)
        .collect();
    let samples = |n: &Value| -> Vec<(f64, f64)> {
        let list = n["samples"].as_array().unwrap();
        let point = |s: &Value| (s["t"].as_f64().unwrap(), s["pieces"].as_f64().unwrap());
        list.iter().map(point).collect()
    };
    let at = |when: f64| {
        let held: f64 = nodes
            .iter()
            .map(|n| {
                let mut upto = samples(n).into_iter().filter(|(st, _)| *st <= when);
                upto.next_back().map_or(0.0, |(_, p)| p)
            })
            .sum();
        held / (nodes.len() as f64 * pieces)
    };
    let ticks = nodes.iter().flat_map(|n| samples(n)).map(|(st, _)| st);
    let before = ticks.filter(|st| *st < t).fold(f64::MIN, f64::max);
    (at(before), at(t))
}

/// The pids of `parent`'s child processes, from /proc.
#[cfg(target_os = "linux")]
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (name) state ppid ...": the name may hold spaces, so split after it.
            let fields = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            fields.split_whitespace().nth(1) == Some(parent.to_string().as_str())
        })
        .collect()
}
