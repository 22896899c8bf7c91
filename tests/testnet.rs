//! `shoal testnet run` end to end: scaled-down scenarios run as real processes, checked through
//! the run directory's summary.json, timeline.csv and report.html.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
#[cfg(target_os = "linux")]
use support::testnet::children;
use support::testnet::{
    Finished, HANG_GUARD, check_common, dht_or_pex_peers_after, group, only_run_dir,
    progress_around, run_any, run_scenario, run_scenario_with,
};
use support::{shoal, shoal_within};

#[test]
fn quickstart_scaled_down() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"
name = "quickstart-small"
seed = 1
timeout = "90s"

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
        HANG_GUARD,
    );
    check_common(&run, 5);
    for leecher in group(&run.summary, "leechers") {
        assert!(leecher["completed_s"].as_f64().is_some(), "{leecher:#}");
        assert_eq!(leecher["peers_by_source"]["tracker"], 0);
    }
    compare_shows_both_runs(dir.path(), &run);
}

/// `shoal testnet compare` of the run with a copy of its summary whose t_last is 2 s later:
/// each figure appears under its run, with the difference.
fn compare_shows_both_runs(dir: &Path, run: &Finished) {
    let mut later = run.summary.clone();
    let t_last = run.summary["t_last_s"].as_f64().unwrap();
    later["t_last_s"] = Value::from(t_last + 2.0);
    later["scenario"] = Value::from("quickstart-later");
    let b = dir.join("later.json");
    std::fs::write(&b, serde_json::to_string(&later).unwrap()).unwrap();
    let a = run.run_dir.to_str().unwrap();
    let compared = shoal(dir, &["testnet", "compare", a, b.to_str().unwrap()]);
    assert_eq!(compared.status, 0, "{}", compared.stderr);
    let out = &compared.stdout;
    let header = out.lines().next().unwrap();
    assert!(header.contains(&format!("a: {a}")), "{out}");
    assert!(header.contains(&format!("b: {}", b.display())), "{out}");
    let row = |label: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.starts_with(label));
        let line = line.unwrap_or_else(|| panic!("no {label:?} row in\n{out}"));
        line[label.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        row("scenario"),
        ["quickstart-small", "quickstart-later", "differs"]
    );
    let t_last_row = row("t_last (s)");
    assert_eq!(t_last_row[0], format!("{t_last:.1}"), "{out}");
    assert_eq!(t_last_row[1], format!("{:.1}", t_last + 2.0), "{out}");
    assert_eq!(t_last_row[2], "+2.0", "{out}");
    assert_eq!(row("[leechers] completed"), ["4/4", "4/4"], "{out}");
}

#[test]
fn tracker_failure_swarm_carries_on_through_dht_and_pex() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"
name = "tracker-failure-small"
seed = 2
timeout = "90s"

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
        HANG_GUARD,
    );
    check_common(&run, 6);
    let faults = run.summary["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    let killed_at = faults[0]["t"].as_f64().unwrap();
    assert!(faults[0]["what"].as_str().unwrap().contains("tracker"));
    // It fired at the first tick that saw 20 % swarm progress: not before, not much after.
    let (before, at_kill) = progress_around(&run.record, killed_at);
    assert!(at_kill >= 0.2, "fired at {at_kill:.3} progress");
    assert!(before < 0.2, "already {before:.3} a tick before it fired");
    // Before its death the tracker was a real source of peers.
    let early = group(&run.summary, "early");
    assert!(
        early
            .iter()
            .any(|n| n["peers_by_source"]["tracker"].as_u64() > Some(0)),
        "no early node found a peer through the tracker: {early:#?}"
    );
    let late = group(&run.summary, "late")[0];
    assert!(
        late["join_s"].as_f64().unwrap() > killed_at,
        "the late node joined before the tracker died at {killed_at}: {late:#}"
    );
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
timeout = "90s"

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

[[groups]]
name = "victims"
role = "leecher"
download_limit = "16KiB/s"   # far from done when it is killed

[[faults]]
at = "1s"
action = "kill"
group = "victims"
"#,
        HANG_GUARD,
        &["--in-process"],
    );
    check_common(&run, 5);
    assert_eq!(run.summary["mode"], "in-process");
    let magnet = group(&run.summary, "magnets")[0];
    assert!(magnet["left_s"].as_f64().is_some(), "{magnet:#}");
    // The kill is an abort, and the record says so.
    let what = run.summary["faults"][0]["what"].as_str().unwrap();
    assert_eq!(
        what,
        "abort (in-process, like kill -9) all nodes of victims"
    );
    let victim = group(&run.summary, "victims")[0];
    assert!(victim["left_s"].as_f64().is_some(), "{victim:#}");
    assert_eq!(victim["should_complete"], false, "{victim:#}");
    assert_eq!(victim["completed_s"], Value::Null, "{victim:#}");
}

#[test]
fn in_process_refuses_a_scenario_that_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    let toml = r#"
name = "pausing"
[content]
size = "1KiB"
[[groups]]
name = "seeders"
role = "seeder"
[[faults]]
at = "1s"
action = "pause"
group = "seeders"
"#;
    std::fs::write(&file, toml).unwrap();
    let out = dir.path().join("runs");
    let args = ["testnet", "run", file.to_str().unwrap(), "--in-process"];
    let mut args = args.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    let run = shoal_within(dir.path(), &args, HANG_GUARD);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("faults[0] (pause)"), "{}", run.stderr);
    assert!(
        run.stderr.contains("without --in-process"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing ran");
}

#[test]
fn a_run_that_cannot_finish_times_out_and_names_who_did_not() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_any(
        dir.path(),
        r#"
name = "stuck"
seed = 4
timeout = "3s"

[content]
size = "64KiB"

[dht]
bootstrap_nodes = 0

[[groups]]
name = "seeders"
role = "seeder"

[[groups]]
name = "leechers"
role = "leecher"
count = 2
discovery = { dht = false, pex = false, tracker = false }   # no way to find anyone
"#,
        HANG_GUARD,
        &[],
    );
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let error = run.stderr.lines().find(|l| l.starts_with("error:"));
    let error = error.unwrap_or_else(|| panic!("no error line in\n{}", run.stderr));
    assert!(error.contains("timed out after"), "{error}");
    assert!(
        error.ends_with("not finished: leechers-00, leechers-01"),
        "{error}"
    );
    assert!(run.stdout.contains("all_complete false"), "{}", run.stdout);
    assert_eq!(run.summary["timed_out"], true);
    assert_eq!(run.summary["all_complete"], false);
    for leecher in group(&run.summary, "leechers") {
        assert_eq!(leecher["completed_s"], Value::Null, "{leecher:#}");
        assert_eq!(leecher["content_ok"], false, "{leecher:#}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_ends_every_node_and_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.toml");
    std::fs::write(
        &file,
        r#"
name = "interrupted"
seed = 7
timeout = "300s"

[content]
size = "4MiB"

[dht]
bootstrap_nodes = 1

[[groups]]
name = "seeders"
role = "seeder"

[[groups]]
name = "leechers"
role = "leecher"
count = 2
download_limit = "16KiB/s"   # minutes from done
"#,
    )
    .unwrap();
    let out = dir.path().join("runs");
    let args = ["testnet", "run", file.to_str().unwrap()];
    let mut runner = support::spawn(
        dir.path(),
        &[&args[..], &["--out", out.to_str().unwrap()]].concat(),
    );
    let pid = runner.child.id();
    // The bootstrap node, the seeder and both leechers.
    let deadline = std::time::Instant::now() + HANG_GUARD;
    let mut nodes = children(pid);
    while nodes.len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {nodes:?} started"
        );
        std::thread::sleep(Duration::from_millis(50));
        nodes = children(pid);
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = runner.wait_within(HANG_GUARD);
    assert_eq!(
        status.code(),
        Some(1),
        "an interrupted run is not a success"
    );
    for node in &nodes {
        let proc = PathBuf::from(format!("/proc/{node}"));
        assert!(!proc.exists(), "node process {node} outlived the run");
    }
    let stdout = runner.rest_of_stdout();
    let run_dir = only_run_dir(&out);
    assert!(
        stdout.contains(&format!("run {}", run_dir.display())),
        "{stdout}"
    );
    assert!(stdout.contains("all_complete false"), "{stdout}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["timed_out"], false);
    assert_eq!(summary["all_complete"], false);
    assert_eq!(summary["nodes"].as_array().unwrap().len(), 3);
    for leecher in group(&summary, "leechers") {
        assert_eq!(leecher["completed_s"], Value::Null, "{leecher:#}");
    }
    assert!(run_dir.join("record.json").is_file());
    assert!(run_dir.join("report.html").is_file());
}

#[test]
fn nodes_leave_on_completion_at_a_time_and_after_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"
name = "leaving"
seed = 5
timeout = "90s"

[content]
size = "2MiB"

[dht]
bootstrap_nodes = 1

[[groups]]
name = "seeders"
role = "seeder"
upload_limit = "256KiB/s"    # so the fetchers take most from the uploader

[[groups]]
name = "uploaders"
role = "seeder"
leave = { after_uploading = 0.25 }

[[groups]]
name = "fetchers"
role = "leecher"
count = 2
join_at = "1s"
leave = "on-completion"

[[groups]]
name = "quitters"
role = "leecher"
download_limit = "16KiB/s"   # cannot be done by its leave time
leave = { at = "2s" }
"#,
        HANG_GUARD,
    );
    check_common(&run, 5);
    let size = run.summary["content_size"].as_f64().unwrap();
    for fetcher in group(&run.summary, "fetchers") {
        let done = fetcher["completed_s"].as_f64().unwrap();
        let left = fetcher["left_s"].as_f64();
        assert!(left.is_some_and(|l| l >= done), "{fetcher:#}");
    }
    let uploader = group(&run.summary, "uploaders")[0];
    assert!(uploader["left_s"].as_f64().is_some(), "{uploader:#}");
    let up = uploader["bytes_up"].as_f64().unwrap();
    assert!(up >= 0.25 * size, "left after {up} bytes: {uploader:#}");
    // Leaving before completing, it is no longer one that should complete.
    let quitter = group(&run.summary, "quitters")[0];
    assert!(
        quitter["left_s"].as_f64().is_some_and(|l| l >= 2.0),
        "{quitter:#}"
    );
    assert_eq!(quitter["completed_s"], Value::Null, "{quitter:#}");
    assert_eq!(quitter["should_complete"], false, "{quitter:#}");
}

#[test]
fn poisoned_honest_nodes_ban_the_hostile_ones_and_finish() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"
name = "poisoned-small"
seed = 6
timeout = "90s"

[content]
size = "2MiB"

[dht]
bootstrap_nodes = 1

[[groups]]
name = "seeders"
role = "seeder"
upload_limit = "512KiB/s"    # so the honest nodes also ask the hostile ones

[[groups]]
name = "hostile"
role = "hostile"
count = 2

[[groups]]
name = "honest"
role = "leecher"
count = 2
join_at = "3s"               # the hostile nodes hold pieces by then
"#,
        HANG_GUARD,
    );
    check_common(&run, 5);
    let honest = group(&run.summary, "honest");
    let bans: u64 = honest.iter().map(|n| n["bans"].as_u64().unwrap()).sum();
    assert!(bans > 0, "no honest node banned anyone: {honest:#?}");
    for node in &honest {
        // Only the two hostile nodes deserve it.
        assert!(node["bans"].as_u64() <= Some(2), "{node:#}");
    }
    for node in group(&run.summary, "hostile") {
        assert_eq!(node["should_complete"], false);
    }
}
