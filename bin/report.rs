//! How torrents and magnet links are printed: text for people, JSON for scripts.

use std::fmt::Write;

use indicatif::HumanBytes;
use serde_json::{Value, json};
use shoal_metainfo::{Magnet, Torrent};

/// The `show --json` object. Scripts rely on `info_hash`, `name`, `total_size`, `piece_length`,
/// `num_pieces`, `files` (`path`, `size`; pad files left out), `private`, `trackers`, `magnet`.
pub fn torrent_json(t: &Torrent) -> Value {
    let files: Vec<Value> = t
        .info
        .data_files()
        .map(|f| json!({ "path": f.path, "size": f.length }))
        .collect();
    json!({
        "info_hash": t.info_hash.to_hex(),
        "name": t.info.name,
        "total_size": t.info.total_size,
        "piece_length": t.info.piece_length,
        "num_pieces": t.info.num_pieces(),
        "files": files,
        "private": t.info.private,
        "trackers": t.tracker_urls(),
        "tracker_tiers": t.trackers,
        "magnet": t.magnet().to_string(),
        "hybrid": t.info.hybrid,
        "comment": t.comment,
        "created_by": t.created_by,
        "creation_date": t.creation_date,
        "url_list": t.url_list,
    })
}

pub fn torrent_text(t: &Torrent) -> String {
    let info = &t.info;
    let mut out = String::new();
    let mut line = |label: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{label:<16}{value}");
    };
    line("name", &info.name);
    line("info-hash", &t.info_hash);
    line(
        "size",
        &format!(
            "{} ({} bytes)",
            HumanBytes(info.total_size),
            info.total_size
        ),
    );
    line(
        "pieces",
        &format!("{} x {}", info.num_pieces(), HumanBytes(info.piece_length)),
    );
    line("private", &if info.private { "yes" } else { "no" });
    if info.hybrid {
        line("format", &"hybrid v1+v2 (v1 used)");
    }
    for (i, tier) in t.trackers.iter().enumerate() {
        line(&format!("tracker tier {}", i + 1), &tier.join(" "));
    }
    if let Some(comment) = &t.comment {
        line("comment", comment);
    }
    if let Some(by) = &t.created_by {
        line("created by", by);
    }
    if let Some(date) = t.creation_date {
        line("creation date", &date);
    }
    for url in &t.url_list {
        line("web seed", url);
    }
    line("magnet", &t.magnet());
    let files: Vec<_> = info.data_files().collect();
    let _ = writeln!(out, "files ({}):", files.len());
    for file in files {
        let _ = writeln!(out, "  {:>14}  {}", file.length, file.path);
    }
    out
}

/// The `magnet --parse --json` object: `info_hash`, `name`, `trackers`, `peers`, `exact_length`.
pub fn magnet_json(m: &Magnet) -> Value {
    json!({
        "info_hash": m.info_hash.to_hex(),
        "name": m.display_name,
        "trackers": m.trackers,
        "peers": m.peers,
        "exact_length": m.exact_length,
    })
}

pub fn magnet_text(m: &Magnet) -> String {
    let mut out = format!("info-hash       {}\n", m.info_hash);
    if let Some(name) = &m.display_name {
        let _ = writeln!(out, "name            {name}");
    }
    if let Some(length) = m.exact_length {
        let _ = writeln!(
            out,
            "size            {} ({length} bytes)",
            HumanBytes(length)
        );
    }
    for tracker in &m.trackers {
        let _ = writeln!(out, "tracker         {tracker}");
    }
    for peer in &m.peers {
        let _ = writeln!(out, "peer            {peer}");
    }
    out
}
