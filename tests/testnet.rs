//! `shoal testnet run` end to end: scaled-down scenarios run as real processes, checked through
//! the run directory's summary.json, timeline.csv and report.html.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::shoal;

/// What a finished `shoal testnet run` left behind.
struct Finished {
    run_dir: PathBuf,
    stdout: String,
    summary: Value,
}

/// Writes `toml` as a scenario in `dir`, runs it with `--out dir/runs` and reads the summary.
fn run_scenario(dir: &Path, toml: &str, limit: Duration) -> Finished {
    run_scenario_with(dir, toml, limit, &[])
}

fn run_scenario_with(dir: &Path, toml: &str, limit: Duration, extra: &[&str]) -> Finished {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, toml).unwrap();
    let out = dir.join("runs");
    let started = Instant::now();
    let mut args = vec![
        "testnet",
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = shoal(dir, &args);
    let took = started.elapsed();
    assert_eq!(
        run.status, 0,
        "testnet run failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(took < limit, "the run took {took:?}");
    let run_dir = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .map(PathBuf::from)
        .expect("a `run DIR` line");
    assert!(
        run_dir.starts_with(&out),
        "{run_dir:?} is not under {out:?}"
    );
    let summary = std::fs::read_to_string(run_dir.join("summary.json")).unwrap();
    Finished {
        summary: serde_json::from_str(&summary).unwrap(),
        stdout: run.stdout,
        run_dir,
    }
}

/// Checks what every run must have: all complete, every node's content intact, the report with
/// its plots, the data directories.
fn check_common(run: &Finished, nodes: usize) {
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
        assert_eq!(node["content_ok"], true, "{node:#}");
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

#[test]
fn quickstart_scaled_down() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"
name = "quickstart-small"
seed = 1
timeout = "45s"

[content]
size = "4MiB"

[tracker]
enabled = false

[dht]
bootstrap_nodes = 1

[[groups]]
name = "seeders"
role = "seeder"
count = 1

[[groups]]
name = "leechers"
role = "leecher"
count = 4
join_at = "1s"
join_spread = "1s"
"#,
        Duration::from_secs(55),
    );
    check_common(&run, 5);
    let nodes = run.summary["nodes"].as_array().unwrap();
    for leecher in nodes.iter().filter(|n| n["group"] == "leechers") {
        assert!(leecher["completed_s"].as_f64().is_some(), "{leecher:#}");
        assert_eq!(leecher["peers_by_source"]["tracker"], 0);
    }
    // The same run compared with itself: the text names both.
    let dir_arg = run.run_dir.to_str().unwrap();
    let compared = shoal(dir.path(), &["testnet", "compare", dir_arg, dir_arg]);
    assert_eq!(compared.status, 0, "{}", compared.stderr);
    assert!(!compared.stdout.trim().is_empty());
}

/// Peers by source per (node, t) from timeline.csv, after `after` seconds.
fn dht_or_pex_peers_after(run_dir: &Path, after: f64) -> Vec<(String, f64, u64)> {
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

#[test]
fn tracker_failure_swarm_carries_on_through_dht_and_pex() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"
name = "tracker-failure-small"
seed = 2
timeout = "50s"

[content]
size = "6MiB"

[tracker]
enabled = true

[dht]
bootstrap_nodes = 1

[[groups]]
name = "seeders"
role = "seeder"
count = 1
upload_limit = "1MiB/s"

[[groups]]
name = "early"
role = "leecher"
count = 4
upload_limit = "1MiB/s"
join_at = "1s"
join_spread = "1s"

[[groups]]
name = "late"
role = "leecher"
count = 1
upload_limit = "1MiB/s"
join_at = "12s"          # well after the tracker is gone, even on a slow machine

[[faults]]
progress = 0.2
action = "kill-tracker"
"#,
        Duration::from_secs(58),
    );
    check_common(&run, 6);
    let faults = run.summary["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    let killed_at = faults[0]["t"].as_f64().unwrap();
    assert!(faults[0]["what"].as_str().unwrap().contains("tracker"));
    let nodes = run.summary["nodes"].as_array().unwrap();
    let late = nodes.iter().find(|n| n["group"] == "late").unwrap();
    assert!(
        late["join_s"].as_f64().unwrap() > killed_at,
        "the late node joined before the tracker died at {killed_at}: {late:#}"
    );
    // The late node could only find the swarm without the tracker.
    assert_eq!(late["peers_by_source"]["tracker"], 0, "{late:#}");
    let found = dht_or_pex_peers_after(&run.run_dir, killed_at);
    assert!(
        found.iter().any(|(node, _, _)| node.starts_with("late")),
        "no DHT/PEX peers for the late node after the kill: {found:?}"
    );
}

#[test]
fn in_process_mode_with_a_magnet_leecher_that_leaves_on_completion() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario_with(
        dir.path(),
        r#"
name = "in-process-small"
seed = 3
timeout = "40s"

[content]
size = "2MiB"
files = 2

[tracker]
enabled = false

[dht]
bootstrap_nodes = 1

[[groups]]
name = "seeders"
role = "seeder"
count = 1

[[groups]]
name = "leechers"
role = "leecher"
count = 2
join_at = "1s"

[[groups]]
name = "magnets"
role = "leecher"
count = 1
magnet = true
join_at = "1s"
leave = "on-completion"
"#,
        Duration::from_secs(50),
        &["--in-process"],
    );
    check_common(&run, 4);
    assert_eq!(run.summary["mode"], "in-process");
    let nodes = run.summary["nodes"].as_array().unwrap();
    let magnet = nodes.iter().find(|n| n["group"] == "magnets").unwrap();
    assert!(magnet["left_s"].as_f64().is_some(), "{magnet:#}");
}
