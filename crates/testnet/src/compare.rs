//! Side-by-side comparison of two runs from their `summary.json` files.

use std::collections::BTreeSet;
use std::path::Path;

use crate::report::{GroupSummary, ReportError, Summary, read_summary};

/// One row of the table: the label, the two values and the difference `b - a` with percent.
struct Row {
    label: String,
    a: String,
    b: String,
    diff: String,
    pct: String,
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn num(label: impl Into<String>, a: Option<f64>, b: Option<f64>, digits: usize) -> Row {
    let (diff, pct) = match (a, b) {
        (Some(a), Some(b)) => {
            let d = b - a;
            let pct = if a != 0.0 {
                format!("{:+.1}%", d / a.abs() * 100.0)
            } else {
                String::new()
            };
            (format!("{d:+.digits$}"), pct)
        }
        _ => (String::new(), String::new()),
    };
    Row {
        label: label.into(),
        a: fmt(a, digits),
        b: fmt(b, digits),
        diff,
        pct,
    }
}

fn int(label: impl Into<String>, a: Option<u64>, b: Option<u64>) -> Row {
    let mut row = num(label, a.map(|v| v as f64), b.map(|v| v as f64), 0);
    row.a = a.map_or_else(|| "-".to_owned(), |v| v.to_string());
    row.b = b.map_or_else(|| "-".to_owned(), |v| v.to_string());
    row
}

fn text(label: impl Into<String>, a: impl ToString, b: impl ToString) -> Row {
    let (a, b) = (a.to_string(), b.to_string());
    let diff = if a == b {
        String::new()
    } else {
        "differs".to_owned()
    };
    Row {
        label: label.into(),
        a,
        b,
        diff,
        pct: String::new(),
    }
}

/// Reads `a/summary.json` and `b/summary.json` and returns a text table of the two runs side
/// by side, with `b - a` and the change in percent of `a` where both are numbers.
pub fn compare(a: &Path, b: &Path) -> Result<String, ReportError> {
    let (sa, sb) = (read_summary(a)?, read_summary(b)?);
    Ok(table(
        &a.display().to_string(),
        &b.display().to_string(),
        &sa,
        &sb,
    ))
}

/// The table for two summaries (`compare` without the files).
pub fn table(name_a: &str, name_b: &str, a: &Summary, b: &Summary) -> String {
    let mut rows = vec![
        text("scenario", &a.scenario, &b.scenario),
        text("seed", a.seed, b.seed),
        text("all_complete", a.all_complete, b.all_complete),
        text("timed_out", a.timed_out, b.timed_out),
        num("t_last (s)", a.t_last_s, b.t_last_s, 1),
        num("T_min (s)", a.t_min_s, b.t_min_s, 1),
        num("t_last / T_min", a.ratio, b.ratio, 2),
        num("duration (s)", Some(a.duration_s), Some(b.duration_s), 1),
    ];
    let mut groups: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
    for g in &b.groups {
        if !groups.contains(&g.name.as_str()) {
            groups.push(&g.name);
        }
    }
    for name in groups {
        let ga = a.groups.iter().find(|g| g.name == name);
        let gb = b.groups.iter().find(|g| g.name == name);
        let f = |pick: fn(&GroupSummary) -> Option<f64>| (ga.and_then(pick), gb.and_then(pick));
        let done = |g: Option<&GroupSummary>| {
            g.map_or("-".to_owned(), |g| format!("{}/{}", g.completed, g.nodes))
        };
        rows.push(text(format!("[{name}] completed"), done(ga), done(gb)));
        let (x, y) = f(|g| g.first_completion_s);
        rows.push(num(format!("[{name}] first completion (s)"), x, y, 1));
        let (x, y) = f(|g| g.median_completion_s);
        rows.push(num(format!("[{name}] median completion (s)"), x, y, 1));
        let (x, y) = f(|g| g.last_completion_s);
        rows.push(num(format!("[{name}] last completion (s)"), x, y, 1));
        let (x, y) = f(|g| g.mean_share_ratio);
        rows.push(num(format!("[{name}] mean share ratio"), x, y, 2));
    }
    rows.push(int(
        "bytes up",
        Some(a.totals.bytes_up),
        Some(b.totals.bytes_up),
    ));
    rows.push(int(
        "bytes down",
        Some(a.totals.bytes_down),
        Some(b.totals.bytes_down),
    ));
    rows.push(int(
        "duplicate bytes",
        Some(a.totals.duplicate_bytes),
        Some(b.totals.duplicate_bytes),
    ));
    rows.push(int("bans", Some(a.totals.bans), Some(b.totals.bans)));
    let sources: BTreeSet<&String> = a
        .totals
        .peers_by_source
        .keys()
        .chain(b.totals.peers_by_source.keys())
        .collect();
    for s in sources {
        let get = |x: &Summary| Some(x.totals.peers_by_source.get(s).copied().unwrap_or(0));
        rows.push(int(format!("peers via {s}"), get(a), get(b)));
    }
    rows.push(int(
        "faults fired",
        Some(a.faults.len() as u64),
        Some(b.faults.len() as u64),
    ));
    for i in 0..a.faults.len().max(b.faults.len()) {
        let f = |x: &Summary| {
            x.faults
                .get(i)
                .map_or("-".to_owned(), |f| format!("{:.1}s {}", f.t, f.what))
        };
        rows.push(text(format!("fault {}", i + 1), f(a), f(b)));
    }
    render(name_a, name_b, &rows)
}

fn render(name_a: &str, name_b: &str, rows: &[Row]) -> String {
    let header = Row {
        label: String::new(),
        a: format!("a: {name_a}"),
        b: format!("b: {name_b}"),
        diff: "b - a".to_owned(),
        pct: "%".to_owned(),
    };
    let all: Vec<&Row> = std::iter::once(&header).chain(rows).collect();
    let w = |f: fn(&Row) -> &str| all.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
    let widths = (w(|r| &r.label), w(|r| &r.a), w(|r| &r.b), w(|r| &r.diff));
    let mut out = String::new();
    for r in all {
        let line = format!(
            "{:<lw$}  {:>aw$}  {:>bw$}  {:>dw$}  {}",
            r.label,
            r.a,
            r.b,
            r.diff,
            r.pct,
            lw = widths.0,
            aw = widths.1,
            bw = widths.2,
            dw = widths.3
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{tests::synthetic, write};

    #[test]
    fn compares_two_runs() {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(da.path(), &synthetic("before")).unwrap();
        let mut b = synthetic("after");
        b.nodes[4].completed_s = Some(21.0); // t_last 20 s: ratio 2.0
        b.nodes[1].peers_by_source.insert("tracker".into(), 4);
        b.faults.clear();
        write(db.path(), &b).unwrap();
        let out = compare(da.path(), db.path()).unwrap();
        let row = |label: &str| -> Vec<String> {
            let line = out
                .lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} in\n{out}"));
            line[label.len()..]
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(row("scenario"), ["before", "after", "differs"]);
        assert_eq!(row("t_last (s)"), ["24.0", "20.0", "-4.0", "-16.7%"]);
        assert_eq!(row("T_min (s)"), ["10.0", "10.0", "+0.0", "+0.0%"]);
        assert_eq!(row("t_last / T_min"), ["2.40", "2.00", "-0.40", "-16.7%"]);
        assert_eq!(
            row("[free] last completion (s)"),
            ["25.0", "21.0", "-4.0", "-16.0%"]
        );
        assert_eq!(
            row("[leechers] median completion (s)"),
            ["13.0", "13.0", "+0.0", "+0.0%"]
        );
        assert_eq!(
            row("[leechers] mean share ratio"),
            ["1.00", "1.00", "+0.00", "+0.0%"]
        );
        assert_eq!(row("[seeders] mean share ratio"), ["-", "-"]);
        assert_eq!(row("peers via tracker"), ["0", "4", "+4"]);
        assert_eq!(row("bytes up"), ["62914560", "62914560", "+0", "+0.0%"]);
        assert_eq!(row("faults fired"), ["1", "0", "-1", "-100.0%"]);
        assert_eq!(row("fault 1"), ["5.0s", "kill-tracker", "-", "differs"]);
    }

    #[test]
    fn missing_run_directory() {
        let d = tempfile::tempdir().unwrap();
        let e = compare(d.path(), d.path()).unwrap_err().to_string();
        assert!(e.contains("summary.json"), "{e}");
    }
}
