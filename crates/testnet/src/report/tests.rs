use std::collections::BTreeMap;

use super::*;
use crate::record::{FaultRecord, NodeRecord, Sample};

const MIB: u64 = 1 << 20;

fn sample(t: f64, pieces: u32, up: u64, down: u64) -> Sample {
    let peers = BTreeMap::from([("dht".to_owned(), 2), ("pex".to_owned(), 1)]);
    Sample {
        t,
        pieces,
        bytes_up: up,
        bytes_down: down,
        peers_by_source: peers,
    }
}

fn node(
    name: &str,
    group: &str,
    role: &str,
    join: f64,
    done: Option<f64>,
    up: u64,
    down: u64,
) -> NodeRecord {
    let end = done.unwrap_or(30.0);
    let start_pieces = if role == "seeder" { 40 } else { 0 };
    NodeRecord {
        name: name.into(),
        group: group.into(),
        role: role.into(),
        should_complete: matches!(role, "leecher" | "free-rider"),
        join_s: join,
        completed_s: done,
        left_s: None,
        bytes_up: up,
        bytes_down: down,
        duplicate_bytes: 0,
        peers_by_source: BTreeMap::from([("dht".to_owned(), 2), ("pex".to_owned(), 1)]),
        bans: 0,
        content_ok: Some(role == "seeder" || done.is_some()),
        upload_limit: Some(MIB),
        download_limit: None,
        samples: vec![sample(join, start_pieces, 0, 0), sample(end, 40, up, down)],
    }
}

/// 10 MiB, a seeder and three leechers at 1 MiB/s up, one free-rider: T_min = max(10/1,
/// 4*10/4) = 10 s; the last completion (the free-rider, 25 s) minus the first join (1 s) is
/// 24 s, so the ratio is 2.4.
pub(crate) fn synthetic(name: &str) -> RunRecord {
    RunRecord {
        scenario: name.into(),
        seed: 3,
        started_unix: 1_700_000_000,
        duration_s: 30.0,
        content_size: 10 * MIB,
        num_pieces: 40,
        mode: "in-process".into(),
        timed_out: false,
        nodes: vec![
            node("seed-0", "seeders", "seeder", 0.0, None, 30 * MIB, 0),
            node(
                "leech-0",
                "leechers",
                "leecher",
                1.0,
                Some(11.0),
                5 * MIB,
                10 * MIB,
            ),
            node(
                "leech-1",
                "leechers",
                "leecher",
                2.0,
                Some(13.0),
                10 * MIB,
                10 * MIB,
            ),
            node(
                "leech-2",
                "leechers",
                "leecher",
                3.0,
                Some(21.0),
                15 * MIB,
                10 * MIB,
            ),
            node("free-0", "free", "free-rider", 1.0, Some(25.0), 0, 10 * MIB),
        ],
        faults: vec![FaultRecord {
            t: 5.0,
            what: "kill-tracker".into(),
        }],
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn writes_three_files_and_summary_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let written = write(dir.path(), &synthetic("<script>alert(1)</script>")).unwrap();
    let text = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    let s: Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(s, written);
    assert!(s.all_complete);
    assert!(!s.timed_out);
    assert!(close(s.t_min_s, 10.0), "{:?}", s.t_min_s);
    assert!(close(s.first_download_join_s, 1.0));
    assert!(close(s.t_last_s, 24.0), "{:?}", s.t_last_s);
    assert!(close(s.ratio, 2.4), "{:?}", s.ratio);
    assert_eq!(s.nodes.len(), 5);
    assert_eq!(s.nodes[0].share_ratio, None);
    assert!(close(s.nodes[1].share_ratio, 0.5));
    let names: Vec<&str> = s.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["seeders", "leechers", "free"]);
    let l = &s.groups[1];
    assert_eq!((l.nodes, l.completed), (3, 3));
    assert!(close(l.first_completion_s, 11.0));
    assert!(close(l.median_completion_s, 13.0));
    assert!(close(l.last_completion_s, 21.0));
    assert!(close(l.mean_share_ratio, 1.0));
    assert!(close(l.mean_download_s, (10.0 + 11.0 + 18.0) / 3.0));
    assert_eq!(s.groups[0].mean_share_ratio, None);
    assert!(close(s.groups[2].mean_share_ratio, 0.0));
    assert_eq!(s.totals.bytes_up, 60 * MIB);
    assert_eq!(s.totals.peers_by_source.get("dht"), Some(&10));
    assert_eq!(
        s.faults,
        vec![FaultRecord {
            t: 5.0,
            what: "kill-tracker".into()
        }]
    );
}

#[test]
fn unfinished_or_corrupt_nodes() {
    let mut r = synthetic("x");
    r.nodes[2].content_ok = Some(false);
    let s = Summary::from_record(&r);
    assert!(!s.all_complete);
    assert!(close(s.t_last_s, 24.0));
    r.nodes[4].completed_s = None;
    r.timed_out = true;
    let s = Summary::from_record(&r);
    assert!(!s.all_complete && s.timed_out);
    assert_eq!((s.t_last_s, s.ratio), (None, None));
    assert_eq!(s.groups[2].completed, 0);
    assert_eq!(s.groups[2].median_completion_s, None);
}

#[test]
fn timeline_csv_rows_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = synthetic("x");
    r.nodes[0].group = "seed,ers".into();
    write(dir.path(), &r).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("timeline.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "t,node,group,pieces,bytes_up,bytes_down,manual,incoming,dht,pex,tracker"
    );
    assert_eq!(lines.len(), 1 + 10);
    assert_eq!(lines[1], "0.000,seed-0,\"seed,ers\",40,0,0,0,0,2,1,0");
    assert_eq!(
        lines[4],
        format!(
            "11.000,leech-0,leechers,40,{},{},0,0,2,1,0",
            5 * MIB,
            10 * MIB
        )
    );
}

#[test]
fn html_has_plots_and_escapes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &synthetic("<script>alert(1)</script>")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for id in ["completion-cdf", "progress", "peers-by-source", "upload"] {
        assert_eq!(
            html.matches(&format!("<svg id=\"{id}\"")).count(),
            1,
            "{id}"
        );
    }
    assert!(!html.contains("<script"), "unescaped script tag");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !html.contains("http://") || !html.contains("src="),
        "external resource"
    );
    assert!(html.contains("T_min = 10.0 s"));
    // The fault line appears on each of the four plots.
    assert_eq!(html.matches(">kill-tracker</text>").count(), 4);
    assert!(html.contains("stroke-dasharray"));
}

#[test]
fn empty_record_still_writes() {
    let mut r = synthetic("empty");
    r.nodes.clear();
    r.faults.clear();
    r.duration_s = 0.0;
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), &r).unwrap();
    // Nobody was expected to complete, so nothing was shown to work: not "all complete".
    assert!(!s.all_complete && s.t_min_s.is_none() && s.t_last_s.is_none());
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("no data"));
    assert!(html.contains("no node was expected to finish"), "{html}");
}

#[test]
fn all_complete_needs_someone_who_completed_with_checked_content() {
    let mut r = synthetic("x");
    assert!(Summary::from_record(&r).all_complete);
    // Content the check did not get to is not known to be good.
    r.nodes[2].content_ok = None;
    assert!(!Summary::from_record(&r).all_complete);
    // Every downloader killed before completing: none left that should complete.
    let mut r = synthetic("x");
    for n in &mut r.nodes {
        if n.should_complete {
            n.should_complete = false;
            n.completed_s = None;
        }
    }
    let s = Summary::from_record(&r);
    assert!(!s.all_complete, "nobody completed, so not all complete");
}

#[test]
fn read_summary_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_summary(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("summary.json") && e.contains("cannot read"),
        "{e}"
    );
    std::fs::write(dir.path().join("summary.json"), "{").unwrap();
    let e = read_summary(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a valid summary"), "{e}");
}

#[test]
fn summary_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &synthetic("x")).unwrap();
    let len = std::fs::metadata(dir.path().join("summary.json"))
        .unwrap()
        .len();
    assert!(read_summary_limited(dir.path(), len).is_ok());
    let e = read_summary_limited(dir.path(), len - 1).unwrap_err();
    assert!(
        matches!(e, ReportError::TooLarge { len: l, .. } if l == len),
        "{e}"
    );
}
