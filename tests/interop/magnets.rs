//! Magnet links: shoal's parse in libtorrent, and libtorrent's in shoal.

use std::path::{Path, PathBuf};

use crate::support::write_tree;
use crate::tools::{Tool, create_field, lt, parse_json, path_str, run, shoal_show};
use crate::trees::SEEDS;

/// A name with spaces and non-ASCII characters, as the issue asks.
const MAGNET_NAME: &str = "Ünïcödé & spaces — 日本 #1+2";
/// Trackers, one with a query string.
const MAGNET_TRACKERS: [&str; 2] = [
    "http://tracker.example:6969/announce?passkey=a1b2&uid=7",
    "udp://tracker.example:1337/announce",
];

/// A small tree named [`MAGNET_NAME`] (a directory, or a single file), in `dir`.
fn magnet_source(dir: &Path, single: bool, seed: u64) -> PathBuf {
    if single {
        write_tree(dir, &[(MAGNET_NAME, 40_000)], seed);
    } else {
        let a = format!("{MAGNET_NAME}/a file.bin");
        let b = format!("{MAGNET_NAME}/sub dir/b ü.bin");
        write_tree(dir, &[(a.as_str(), 33_333), (b.as_str(), 1_234)], seed);
    }
    dir.join(MAGNET_NAME)
}

#[test]
fn shoal_magnets_parse_in_libtorrent() {
    for (single, &seed) in [true, false].into_iter().zip(&SEEDS) {
        let case = format!("shoal magnet, single file {single}, seed {seed:#x}");
        let dir = tempfile::tempdir().expect("temp dir");
        let source = magnet_source(dir.path(), single, seed);
        let torrent = dir.path().join("magnet test.torrent");
        let mut args = vec![
            "create",
            path_str(&source),
            "-o",
            path_str(&torrent),
            "--piece-length",
            "16384",
        ];
        for t in MAGNET_TRACKERS {
            args.extend(["--tracker", t]);
        }
        let out = run(Tool::Shoal, dir.path(), &args);
        let info_hash = create_field(&out, "info-hash").to_owned();
        let created_magnet = create_field(&out, "magnet").to_owned();
        let magnet = run(Tool::Shoal, dir.path(), &["magnet", path_str(&torrent)])
            .trim()
            .to_owned();
        assert_eq!(magnet, created_magnet, "{case}: create and magnet agree");

        let parsed = lt(dir.path(), &["magnet-parse", &magnet]);
        assert_eq!(parsed["info_hash_v1"], info_hash, "{case}: {magnet}");
        assert_eq!(parsed["name"], MAGNET_NAME, "{case}: {magnet}");
        assert_eq!(
            parsed["trackers"],
            serde_json::json!(MAGNET_TRACKERS),
            "{case}: {magnet}"
        );
        // And libtorrent's own magnet for the torrent names the same content.
        let lt_magnet = lt(dir.path(), &["make-magnet", path_str(&torrent)]);
        let lt_parsed = lt(
            dir.path(),
            &[
                "magnet-parse",
                lt_magnet["magnet"].as_str().expect("magnet"),
            ],
        );
        assert_eq!(lt_parsed["info_hash_v1"], info_hash, "{case}: {lt_magnet}");
        assert_eq!(lt_parsed["name"], parsed["name"], "{case}: {lt_magnet}");
        assert_eq!(
            lt_parsed["trackers"], parsed["trackers"],
            "{case}: {lt_magnet}"
        );
    }
}

#[test]
fn libtorrent_magnets_parse_in_shoal() {
    let cases = [(true, true), (false, true), (true, false), (false, false)];
    for ((single, v1_only), &seed) in cases.into_iter().zip(SEEDS.iter().cycle()) {
        let case =
            format!("libtorrent magnet, single file {single}, v1 only {v1_only}, seed {seed:#x}");
        let dir = tempfile::tempdir().expect("temp dir");
        let source = magnet_source(dir.path(), single, seed);
        let torrent = dir.path().join("magnet test.torrent");
        let mut args = vec![
            "create",
            path_str(&source),
            path_str(&torrent),
            "--piece-length",
            "16384",
        ];
        if v1_only {
            args.push("--v1-only");
        }
        for t in MAGNET_TRACKERS {
            args.extend(["--tracker", t]);
        }
        let info = lt(dir.path(), &args);
        let v1 = info["info_hash_v1"]
            .as_str()
            .expect("a v1 info-hash")
            .to_owned();
        assert_eq!(
            info["trackers"],
            serde_json::json!(MAGNET_TRACKERS),
            "{case}"
        );

        let magnet = lt(dir.path(), &["make-magnet", path_str(&torrent)])["magnet"]
            .as_str()
            .expect("magnet")
            .to_owned();
        let out = run(
            Tool::Shoal,
            dir.path(),
            &["magnet", "--parse", &magnet, "--json"],
        );
        let parsed = parse_json(&out, "shoal magnet --parse --json");
        assert_eq!(parsed["info_hash"], v1, "{case}: {magnet}");
        assert_eq!(parsed["name"], MAGNET_NAME, "{case}: {magnet}");
        assert_eq!(parsed["name"], info["name"], "{case}: {magnet}");
        assert_eq!(
            parsed["trackers"],
            serde_json::json!(MAGNET_TRACKERS),
            "{case}: {magnet}"
        );
        // libtorrent reads its own link the same way.
        let lt_parsed = lt(dir.path(), &["magnet-parse", &magnet]);
        assert_eq!(lt_parsed["info_hash_v1"], v1, "{case}: {magnet}");
        assert_eq!(lt_parsed["name"], parsed["name"], "{case}: {magnet}");
        assert_eq!(
            lt_parsed["trackers"], parsed["trackers"],
            "{case}: {magnet}"
        );

        // And shoal's reading of the .torrent gives the same link data.
        let show = shoal_show(dir.path(), &torrent);
        assert_eq!(show["info_hash"], v1, "{case}");
    }
}
