//! End-to-end tests of `shoal create`, `shoal show` and `shoal magnet`.

mod support;

use std::path::Path;

use sha1::{Digest, Sha1};
use support::{pseudo_random, shoal, shoal_ok, show_json, write_tree};

fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

#[test]
fn create_then_show_and_magnet_agree() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("album/a.bin", 70_001),
        ("album/sub/b.txt", 5),
        ("album/empty", 0),
    ];
    write_tree(dir.path(), &files, 7);
    let out = shoal_ok(
        dir.path(),
        &[
            "create",
            "album",
            "-o",
            "album.torrent",
            "--tracker",
            "http://t.example/announce",
            "--piece-length",
            "16384",
        ],
    );
    let info_hash = field(&out, "info-hash");
    let magnet = field(&out, "magnet");
    assert_eq!(info_hash.len(), 40);

    let json = show_json(dir.path(), Path::new("album.torrent"));
    assert_eq!(json["info_hash"], info_hash);
    assert_eq!(json["name"], "album");
    assert_eq!(json["total_size"], 70_006);
    assert_eq!(json["piece_length"], 16384);
    assert_eq!(json["num_pieces"], 5);
    assert_eq!(json["private"], false);
    assert_eq!(
        json["trackers"],
        serde_json::json!(["http://t.example/announce"])
    );
    assert_eq!(json["magnet"], magnet);
    let listed: Vec<(String, u64)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("album/a.bin", 70_001),
        ("album/empty", 0),
        ("album/sub/b.txt", 5),
    ];
    assert_eq!(listed, expected.map(|(p, s)| (p.to_owned(), s)));

    assert_eq!(
        shoal_ok(dir.path(), &["magnet", "album.torrent"]).trim(),
        magnet
    );
    let parsed: serde_json::Value = serde_json::from_str(&shoal_ok(
        dir.path(),
        &["magnet", "--parse", magnet, "--json"],
    ))
    .unwrap();
    assert_eq!(parsed["info_hash"], info_hash);
    assert_eq!(parsed["name"], "album");
    assert_eq!(
        parsed["trackers"],
        serde_json::json!(["http://t.example/announce"])
    );
    assert_eq!(parsed["peers"], serde_json::json!([]));
}

#[test]
fn torrent_pieces_are_the_sha1_of_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(300_000, 3);
    std::fs::write(dir.path().join("data.bin"), &data).unwrap();
    shoal_ok(
        dir.path(),
        &["create", "data.bin", "--piece-length", "65536"],
    );
    let bytes = std::fs::read(dir.path().join("data.bin.torrent")).unwrap();
    let torrent = shoal_metainfo::Torrent::from_bytes(&bytes).unwrap();
    for (i, chunk) in data.chunks(65536).enumerate() {
        let expected: [u8; 20] = Sha1::digest(chunk).into();
        assert_eq!(torrent.info.piece_hash(i), Some(expected), "piece {i}");
    }
    assert_eq!(torrent.info.num_pieces(), 5);
}

#[test]
fn same_content_gives_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("x/1", 1000), ("x/2", 2000)], 1);
    shoal_ok(dir.path(), &["create", "x", "-o", "one.torrent"]);
    shoal_ok(dir.path(), &["create", "x", "-o", "two.torrent"]);
    let one = std::fs::read(dir.path().join("one.torrent")).unwrap();
    let two = std::fs::read(dir.path().join("two.torrent")).unwrap();
    assert_eq!(one, two);
    // --creation-date adds a date outside the info dictionary: same info-hash, new file.
    shoal_ok(
        dir.path(),
        &["create", "x", "-o", "dated.torrent", "--creation-date"],
    );
    let dated = show_json(dir.path(), Path::new("dated.torrent"));
    let plain = show_json(dir.path(), Path::new("one.torrent"));
    assert_eq!(dated["info_hash"], plain["info_hash"]);
    assert!(dated["creation_date"].as_i64().unwrap() > 1_700_000_000);
    assert!(plain["creation_date"].is_null());
}

#[test]
fn private_and_options() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("f", 5000)], 2);
    let out = shoal_ok(
        dir.path(),
        &[
            "create",
            "f",
            "--private",
            "--comment",
            "hello there",
            "--tracker",
            "http://a/ann",
            "--tracker",
            "udp://b:80",
            "--json",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["private"], true);
    assert_eq!(json["comment"], "hello there");
    assert_eq!(
        json["trackers"],
        serde_json::json!(["http://a/ann", "udp://b:80"])
    );
    assert_eq!(
        json["tracker_tiers"],
        serde_json::json!([["http://a/ann"], ["udp://b:80"]])
    );
    assert_eq!(json, show_json(dir.path(), Path::new("f.torrent")));
}

#[test]
fn existing_output_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("f", 10)], 2);
    std::fs::write(dir.path().join("f.torrent"), b"precious").unwrap();
    let run = shoal(dir.path(), &["create", "f"]);
    assert_ne!(run.status, 0);
    assert_eq!(
        run.stderr.trim(),
        "error: f.torrent: already exists (add --force to replace it)"
    );
    assert_eq!(
        std::fs::read(dir.path().join("f.torrent")).unwrap(),
        b"precious"
    );
    shoal_ok(dir.path(), &["create", "f", "--force"]);
    assert_eq!(
        show_json(dir.path(), Path::new("f.torrent"))["total_size"],
        10
    );
}

/// Every failure: a non-zero exit and one line on stderr naming the input and the problem.
#[test]
fn failures_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = b"d4:infod6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces41:".to_vec();
    bad.extend_from_slice(&[b'a'; 41]);
    bad.extend_from_slice(b"ee");
    std::fs::write(dir.path().join("bad.torrent"), bad).unwrap();
    std::fs::write(dir.path().join("garbage.torrent"), b"d4:infoi01ee").unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    std::fs::write(dir.path().join("data"), b"xyz").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["show", "bad.torrent"],
            "error: bad.torrent: info.pieces length 41 is not a multiple of 20",
        ),
        (
            &["show", "garbage.torrent"],
            "error: garbage.torrent: bencode at byte 8: integer has a leading zero",
        ),
        (
            &["show", "missing.torrent"],
            "error: missing.torrent: No such file or directory (os error 2)",
        ),
        (
            &["magnet", "--parse", "magnet:?dn=x"],
            "error: invalid magnet link: missing xt=urn:btih:<info-hash>",
        ),
        (
            &["create", "empty"],
            "error: empty: holds no data (0 bytes): a torrent needs at least one byte, as in libtorrent",
        ),
        (
            &["create", "nowhere"],
            "error: nowhere: No such file or directory (os error 2)",
        ),
        (
            &["create", "data", "--piece-length", "1000"],
            "error: piece length 1000 is invalid: it must be a power of two from 16 KiB to 512 MiB",
        ),
    ];
    for (args, expected) in cases {
        let run = shoal(dir.path(), args);
        assert_eq!(run.status, 1, "{args:?}");
        assert_eq!(run.stderr.trim_end(), expected, "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
}

#[test]
fn corpus_torrents_show_without_error() {
    // A hybrid torrent from libtorrent's corpus: shown by its v1 half, pad files left out.
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/libtorrent-torrents");
    let dir = tempfile::tempdir().unwrap();
    let json = show_json(dir.path(), &corpus.join("v2_hybrid.torrent"));
    assert_eq!(json["info_hash"].as_str().unwrap().len(), 40);
    assert_eq!(json["hybrid"], true);
    assert!(
        json["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["path"].as_str().unwrap().contains(".pad"))
    );
    let text = shoal_ok(
        dir.path(),
        &["show", corpus.join("sample.torrent").to_str().unwrap()],
    );
    assert!(text.contains("sample/text_file.txt"), "{text}");
}
