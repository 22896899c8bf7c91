//! End-to-end tests of `shoal create`, `shoal show` and `shoal magnet`, of how every command
//! reports a failure, and of where `seed` keeps its identity.

mod support;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Duration;

use sha1::{Digest, Sha1};
use shoal_metainfo::Magnet;
use shoal_metainfo::bencode::DecodeLimits;
use support::{pseudo_random, shoal, shoal_ok, show_json, spawn, write_tree};

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
    let cases: [(&[&str], &str); 9] = [
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
            "error: magnet:?dn=x: invalid magnet link: missing xt=urn:btih:<info-hash>",
        ),
        (
            &["magnet", "--parse", "magnet:?xt=urn:btih:zz"],
            "error: magnet:?xt=urn:btih:zz: invalid magnet link: xt: invalid info-hash \"zz\": expected 40 hex digits or 32 base32 characters",
        ),
        (
            &["get", "magnet:?xt=urn:btih:zz", "-o", "out"],
            "error: magnet:?xt=urn:btih:zz: invalid magnet link: xt: invalid info-hash \"zz\": expected 40 hex digits or 32 base32 characters",
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
    assert!(!dir.path().join("out").exists(), "get made its directory");
}

/// A long input is named by its beginning, so the error stays one readable line.
#[test]
fn a_long_bad_magnet_link_is_named_by_its_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("magnet:?dn={}&xt=urn:btih:zz", "n".repeat(5000));
    let run = shoal(dir.path(), &["magnet", "--parse", &long]);
    assert_eq!(run.status, 1);
    let shown: String = long.chars().take(120).collect();
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: {shown}…: invalid magnet link: xt: invalid info-hash \"zz\": expected 40 hex digits or 32 base32 characters"
        )
    );
}

/// A file over the .torrent size limit is refused from its size, by every command that reads
/// one; a file of exactly the limit is read (and then refused by the parser for its content).
#[test]
fn torrent_files_over_the_size_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let limit = DecodeLimits::TORRENT.max_input as u64;
    // Sparse files: nothing is written to disk.
    let huge = std::fs::File::create(dir.path().join("huge.torrent")).unwrap();
    huge.set_len(limit + 1).unwrap();
    let edge = std::fs::File::create(dir.path().join("edge.torrent")).unwrap();
    edge.set_len(limit).unwrap();
    std::fs::write(dir.path().join("data"), b"xyz").unwrap();
    let too_large = format!(
        "error: huge.torrent: {} bytes is larger than the {limit}-byte limit for a .torrent",
        limit + 1
    );
    let commands: [&[&str]; 4] = [
        &["show", "huge.torrent"],
        &["magnet", "huge.torrent"],
        &["get", "huge.torrent", "-o", "out"],
        &["seed", "data", "--torrent", "huge.torrent"],
    ];
    for args in commands {
        let run = shoal(dir.path(), args);
        assert_eq!(run.status, 1, "{args:?}");
        assert_eq!(run.stderr.trim_end(), too_large, "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    assert!(!dir.path().join("out").exists(), "get made its directory");
    let run = shoal(dir.path(), &["show", "edge.torrent"]);
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stderr.trim_end(),
        "error: edge.torrent: bencode at byte 0: unexpected byte 0x00"
    );
}

/// The `/p2p/<peer id>` at the end of a `listen` address.
fn peer_id(listen: &str) -> &str {
    listen
        .rsplit_once("/p2p/")
        .map(|(_, id)| id)
        .unwrap_or_else(|| panic!("no /p2p/ in {listen:?}"))
}

/// Without --data-dir each torrent gets its own identity beside the data, kept across restarts.
#[test]
fn two_seeds_in_one_directory_have_their_own_identities() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("a.bin", 20_000), ("b.bin", 30_000)], 5);
    let seed = |file: &str| {
        let args = ["seed", file, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-dht"];
        spawn(dir.path(), &args)
    };
    let mut a = seed("a.bin");
    let mut b = seed("b.bin");
    let listen_a = a.line_starting("listen ");
    let listen_b = b.line_starting("listen ");
    assert_ne!(
        peer_id(&listen_a),
        peer_id(&listen_b),
        "two seeds, one identity"
    );
    let magnet: Magnet = a.line_starting("magnet ").parse().unwrap();
    let key = dir
        .path()
        .join(".shoal")
        .join(magnet.info_hash.to_hex())
        .join("identity.key");
    assert!(key.is_file(), "{} is missing", key.display());
    drop(a);
    let mut again = seed("a.bin");
    let listen = again.line_starting("listen ");
    assert_eq!(
        peer_id(&listen),
        peer_id(&listen_a),
        "a restart keeps the identity"
    );
}

/// Waiting for a line that never comes fails the test, with what was printed and the log,
/// instead of hanging it.
#[test]
fn waiting_for_a_line_that_never_comes_fails_with_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "node",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--data-dir",
        "n",
    ];
    let mut node = spawn(dir.path(), &args);
    let listen = node.line_starting("listen ");
    let wait = std::panic::catch_unwind(AssertUnwindSafe(|| {
        node.line_starting_within("never ", Duration::from_millis(300))
    }));
    let payload = wait.expect_err("there is no `never` line");
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("no \"never \" line within 300ms"),
        "{message}"
    );
    assert!(message.contains(&format!("listen {listen}")), "{message}");
    assert!(message.contains("--- the end of its log"), "{message}");
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

#[test]
fn seeding_incomplete_data_is_refused_and_the_data_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(100_000, 9);
    std::fs::write(dir.path().join("whole.bin"), &data).unwrap();
    shoal_ok(
        dir.path(),
        &[
            "create",
            "whole.bin",
            "-o",
            "whole.torrent",
            "--piece-length",
            "16384",
        ],
    );
    // The copy to seed lost its tail since the torrent was made.
    std::fs::write(dir.path().join("whole.bin"), &data[..60_000]).unwrap();
    let run = shoal(
        dir.path(),
        &[
            "seed",
            "whole.bin",
            "--torrent",
            "whole.torrent",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let path = dir.path().canonicalize().unwrap().join("whole.bin");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: {}: only 3 of 7 pieces match the torrent; seed complete data",
            path.display()
        )
    );
    assert_eq!(
        std::fs::read(dir.path().join("whole.bin")).unwrap(),
        data[..60_000],
        "seed never writes the user's file"
    );
}

#[test]
fn network_threads_must_be_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = shoal(dir.path(), &["node", "--network-threads", "0"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("invalid value '0' for '--network-threads <N>'"),
        "{}",
        run.stderr
    );
}
