//! shoal-metainfo held against libtorrent's own .torrent test corpus and libtorrent 2.0.8's
//! verdict on each file (../shared/testdata/libtorrent-torrents/manifest.json).

use std::path::PathBuf;

use serde_json::Value as Json;
use shoal_metainfo::{MetainfoError, Torrent};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/libtorrent-torrents")
}

fn manifest() -> serde_json::Map<String, Json> {
    let path = corpus_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the corpus lives in ../shared beside the repo)",
            path.display()
        )
    });
    match serde_json::from_str(&text).expect("manifest.json is JSON") {
        Json::Object(map) => map,
        other => panic!("manifest.json is not an object: {other}"),
    }
}

/// Checks one file against libtorrent's verdict; returns a description of any disagreement.
fn check(file: &str, expected: &Json) -> Option<String> {
    let bytes = std::fs::read(corpus_dir().join(file)).expect("corpus file is readable");
    let parsed = Torrent::from_bytes(&bytes);
    let lt_ok = expected["libtorrent"] == "ok";
    let has_v1 = expected["has_v1"].as_bool().unwrap_or(false);
    match (lt_ok, has_v1, parsed) {
        (true, true, Ok(t)) => {
            let want = |key: &str| expected[key].clone();
            let got = [
                ("info_hash_v1", Json::from(t.info_hash.to_hex())),
                ("total_size", Json::from(t.info.total_size)),
                ("piece_length", Json::from(t.info.piece_length)),
                ("num_pieces", Json::from(t.info.num_pieces())),
                ("num_files", Json::from(t.info.files.len())),
            ];
            let diffs: Vec<String> = got
                .iter()
                .filter(|(key, value)| want(key) != *value)
                .map(|(key, value)| format!("{key}: libtorrent {} shoal {value}", want(key)))
                .collect();
            (!diffs.is_empty()).then(|| diffs.join(", "))
        }
        (true, true, Err(e)) => Some(format!("libtorrent accepts it, shoal refuses: {e}")),
        (true, false, Err(MetainfoError::V2Only)) => None,
        (true, false, other) => Some(format!("v2-only: expected the BEP 52 error, got {other:?}")),
        (false, _, Ok(_)) => Some(format!(
            "libtorrent refuses it ({}), shoal accepts it",
            expected["error"]
        )),
        (false, _, Err(e)) => {
            let message = e.to_string();
            (message.is_empty()).then(|| "error without a message".to_owned())
        }
    }
}

#[test]
fn every_corpus_file_gets_libtorrents_verdict() {
    let manifest = manifest();
    assert!(
        manifest.len() >= 100,
        "corpus has {} entries",
        manifest.len()
    );
    let failures: Vec<String> = manifest
        .iter()
        .filter_map(|(file, expected)| check(file, expected).map(|why| format!("{file}: {why}")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn accepted_paths_never_escape_the_download_directory() {
    for (file, expected) in manifest() {
        if expected["libtorrent"] != "ok" || expected["has_v1"] != true {
            continue;
        }
        let bytes = std::fs::read(corpus_dir().join(&file)).expect("readable");
        let torrent = Torrent::from_bytes(&bytes).expect("accepted above");
        for entry in &torrent.info.files {
            for part in entry.components() {
                assert!(
                    !part.is_empty()
                        && part != "."
                        && part != ".."
                        && !part.contains(['/', '\\', '\0']),
                    "{file}: unsafe component {part:?} in {:?}",
                    entry.path
                );
            }
            let path = entry.relative_path();
            assert!(path.is_relative(), "{file}: {path:?}");
        }
        let mut seen = std::collections::HashSet::new();
        for entry in torrent.info.data_files() {
            assert!(
                seen.insert(entry.path.clone()),
                "{file}: two files at {:?}",
                entry.path
            );
        }
    }
}

#[test]
fn specific_verdicts_and_messages() {
    let read = |name: &str| std::fs::read(corpus_dir().join(name)).expect("readable");
    let err = |name: &str| Torrent::from_bytes(&read(name)).unwrap_err().to_string();
    assert!(err("v2_only.torrent").contains("BEP 52"));
    assert_eq!(
        err("many_pieces.torrent"),
        "torrent has 107374183 pieces, more than the limit of 2097152"
    );
    assert_eq!(
        err("unaligned_pieces.torrent"),
        "info.pieces length 24 is not a multiple of 20"
    );
    assert!(err("v2_mismatching_metadata.torrent").contains("v1 and v2 file lists disagree"));
    assert!(err("zero.torrent").contains("total size is 0"));

    // Unsorted keys and a trailing newline are accepted, as libtorrent does.
    let unordered = Torrent::from_bytes(&read("unordered.torrent")).unwrap();
    assert_eq!(unordered.info.name, "temp");
    // A name of ".." becomes the info-hash.
    let dotdot = Torrent::from_bytes(&read("invalid_name2.torrent")).unwrap();
    assert_eq!(dotdot.info.name, dotdot.info_hash.to_hex());
    // Pad files are recognised.
    let pad = Torrent::from_bytes(&read("pad_file.torrent")).unwrap();
    assert_eq!(pad.info.files.iter().filter(|f| f.is_pad()).count(), 1);
    assert_eq!(pad.info.data_files().count(), 1);
}
