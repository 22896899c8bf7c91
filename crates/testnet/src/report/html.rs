//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, nothing fetched).

use std::fmt::Write as _;

use super::summary::{Summary, group_names};
use super::svg::{Marker, Plot};
use super::timeline;
use crate::record::RunRecord;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}svg{display:block;margin:1em 0}\
svg text{font-size:11px}svg text.title{font-size:14px;font-weight:bold}.bad{color:#b00}.ok{color:#070}";

/// The whole page.
pub fn page(record: &RunRecord, summary: &Summary) -> String {
    let mut o = String::new();
    let name = escape(&summary.scenario);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>shoal testnet: {name}</title><style>{STYLE}</style></head><body>\n<h1>Scenario {name}</h1>\n"
    );
    headline(&mut o, summary);
    groups_table(&mut o, summary);
    for plot in plots(record, summary) {
        o.push_str(&plot.render());
        o.push('\n');
    }
    faults_list(&mut o, summary);
    nodes_table(&mut o, summary);
    o.push_str("</body></html>\n");
    o
}

fn headline(o: &mut String, s: &Summary) {
    let expected = s.nodes.iter().any(|n| n.should_complete);
    let (class, verdict) = match (s.all_complete, expected) {
        (true, _) => (
            "ok",
            "every node that should finish finished, with correct content",
        ),
        (false, true) => (
            "bad",
            "NOT every node that should finish finished with correct content",
        ),
        (false, false) => ("bad", "no node was expected to finish"),
    };
    let _ = write!(
        o,
        "<p class=\"{class}\"><b>{verdict}</b>{}</p>\n<table><tr><th class=\"l\">seed</th><td>{}</td><th class=\"l\">mode</th><td>{}</td><th class=\"l\">content</th><td>{} bytes, {} pieces</td></tr>\
<tr><th class=\"l\">t_last (s)</th><td>{}</td><th class=\"l\">T_min (s)</th><td>{}</td><th class=\"l\">t_last / T_min</th><td>{}</td></tr>\
<tr><th class=\"l\">duration (s)</th><td>{:.1}</td><th class=\"l\">bytes up</th><td>{}</td><th class=\"l\">bytes down</th><td>{}</td></tr></table>\n",
        if s.timed_out {
            " — the run timed out"
        } else {
            ""
        },
        s.seed,
        escape(&s.mode),
        s.content_size,
        s.num_pieces,
        opt(s.t_last_s, 1),
        opt(s.t_min_s, 1),
        opt(s.ratio, 2),
        s.duration_s,
        s.totals.bytes_up,
        s.totals.bytes_down,
    );
}

fn groups_table(o: &mut String, s: &Summary) {
    o.push_str("<h2>Groups</h2><table><tr><th class=\"l\">group</th><th class=\"l\">role</th><th>nodes</th><th>completed</th><th>first (s)</th><th>median (s)</th><th>last (s)</th><th>mean download (s)</th><th>mean share ratio</th><th>bytes up</th><th>bytes down</th></tr>\n");
    for g in &s.groups {
        let _ = writeln!(
            o,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&g.name),
            escape(&g.role),
            g.nodes,
            g.completed,
            opt(g.first_completion_s, 1),
            opt(g.median_completion_s, 1),
            opt(g.last_completion_s, 1),
            opt(g.mean_download_s, 1),
            opt(g.mean_share_ratio, 2),
            g.bytes_up,
            g.bytes_down
        );
    }
    o.push_str("</table>\n");
}

fn faults_list(o: &mut String, s: &Summary) {
    o.push_str("<h2>Faults</h2>");
    if s.faults.is_empty() {
        o.push_str("<p>none fired</p>\n");
        return;
    }
    o.push_str("<ul>");
    for f in &s.faults {
        let _ = write!(o, "<li>{:.1} s: {}</li>", f.t, escape(&f.what));
    }
    o.push_str("</ul>\n");
}

fn nodes_table(o: &mut String, s: &Summary) {
    o.push_str("<h2>Nodes</h2><table id=\"nodes\"><tr><th class=\"l\">node</th><th class=\"l\">group</th><th class=\"l\">role</th><th>join (s)</th><th>completed (s)</th><th>left (s)</th><th>bytes up</th><th>bytes down</th><th>duplicate</th><th>share ratio</th><th class=\"l\">peers found by source</th><th>bans</th><th>content</th></tr>\n");
    for n in &s.nodes {
        let peers: Vec<String> = n
            .peers_by_source
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let content = match (n.content_ok, n.should_complete) {
            (Some(true), _) => "<span class=\"ok\">ok</span>",
            (Some(false), true) => "<span class=\"bad\">NOT ok</span>",
            (Some(false), false) => "–",
            (None, _) => "not checked",
        };
        let _ = writeln!(
            o,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{content}</td></tr>",
            escape(&n.name),
            escape(&n.group),
            escape(&n.role),
            n.join_s,
            opt(n.completed_s, 1),
            opt(n.left_s, 1),
            n.bytes_up,
            n.bytes_down,
            n.duplicate_bytes,
            opt(n.share_ratio, 2),
            escape(&peers.join(", ")),
            n.bans,
        );
    }
    o.push_str("</table>\n");
}

/// The four plots, in page order.
fn plots<'a>(record: &RunRecord, s: &Summary) -> Vec<Plot<'a>> {
    let grid = timeline::grid(record);
    let x_max = timeline::end_time(record);
    let faults: Vec<Marker> = s
        .faults
        .iter()
        .map(|f| Marker {
            x: f.t,
            label: f.what.clone(),
            dashed: true,
        })
        .collect();
    let mut cdf_markers = faults.clone();
    if let (Some(t_min), Some(join)) = (s.t_min_s, s.first_download_join_s) {
        cdf_markers.push(Marker {
            x: join + t_min,
            label: format!("T_min = {t_min:.1} s"),
            dashed: false,
        });
    }
    let (upload, capped) = timeline::upload(record, &grid);
    vec![
        Plot {
            id: "completion-cdf",
            title: "Completion: fraction of downloaders finished",
            x_label: "seconds since start",
            y_label: "fraction complete",
            series: vec![("completed".to_owned(), completion_cdf(record, x_max))],
            x_max,
            y_max: Some(1.0),
            markers: cdf_markers,
        },
        Plot {
            id: "progress",
            title: "Swarm progress: mean fraction of pieces, by group",
            x_label: "seconds since start",
            y_label: "fraction of pieces",
            series: timeline::progress(record, &grid, &group_names(record)),
            x_max,
            y_max: Some(1.0),
            markers: faults.clone(),
        },
        Plot {
            id: "peers-by-source",
            title: "Connected peers by discovery source (sum over nodes)",
            x_label: "seconds since start",
            y_label: "peers",
            series: timeline::peers(record, &grid),
            x_max,
            y_max: None,
            markers: faults.clone(),
        },
        Plot {
            id: "upload",
            title: if capped {
                "Upload utilisation: aggregate rate over capacity"
            } else {
                "Aggregate upload rate (MB/s)"
            },
            x_label: "seconds since start",
            y_label: if capped {
                "fraction of capacity"
            } else {
                "MB/s"
            },
            series: vec![("upload".to_owned(), upload)],
            x_max,
            y_max: capped.then_some(1.0),
            markers: faults,
        },
    ]
}

/// Step points of the fraction of downloaders (nodes with `should_complete`) finished.
fn completion_cdf(record: &RunRecord, x_max: f64) -> Vec<(f64, f64)> {
    let total = record.nodes.iter().filter(|n| n.should_complete).count();
    if total == 0 {
        return Vec::new();
    }
    let mut done: Vec<f64> = record
        .nodes
        .iter()
        .filter(|n| n.should_complete)
        .filter_map(|n| n.completed_s)
        .collect();
    done.sort_by(f64::total_cmp);
    let mut points = vec![(0.0, 0.0)];
    for (i, t) in done.iter().enumerate() {
        points.push((*t, i as f64 / total as f64));
        points.push((*t, (i + 1) as f64 / total as f64));
    }
    let last = done.len() as f64 / total as f64;
    points.push((x_max.max(done.last().copied().unwrap_or(0.0)), last));
    points
}
