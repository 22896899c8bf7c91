//! `shoal get` killed with SIGKILL mid-download and started again on the same directory:
//! it completes, the content is identical, and it downloads about what was missing.

mod support;

use std::time::Duration;

use support::{field, pseudo_random, shoal_ok, spawn};

const SIZE: usize = 16 * 1024 * 1024;
const PIECE: u64 = 256 * 1024;

#[test]
fn a_killed_download_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let content = pseudo_random(SIZE, 11);
    std::fs::create_dir_all(dir.path().join("seed")).unwrap();
    std::fs::write(dir.path().join("seed/content.bin"), &content).unwrap();
    let piece = PIECE.to_string();
    shoal_ok(
        dir.path(),
        &[
            "create",
            "seed/content.bin",
            "-o",
            "t.torrent",
            "--piece-length",
            &piece,
        ],
    );

    // 2 MiB/s: the 16 MiB download takes about 8 s, so a kill after 2.5 s lands mid-way.
    let loopback = "/ip4/127.0.0.1/tcp/0";
    let mut seeder = spawn(
        dir.path(),
        &[
            "seed",
            "seed/content.bin",
            "--torrent",
            "t.torrent",
            "--listen",
            loopback,
            "--upload-limit",
            "2MiB/s",
        ],
    );
    let address = seeder.line_starting("listen ");
    let get = [
        "get",
        "t.torrent",
        "-o",
        "dl",
        "--peer",
        &address,
        "--listen",
        loopback,
    ];
    let mut first = spawn(dir.path(), &get);
    assert_eq!(first.line_starting("resume "), "0/64 pieces");
    std::thread::sleep(Duration::from_millis(2500));
    first.child.kill().expect("SIGKILL the first download");
    first.child.wait().expect("reaped");

    let mut again = spawn(dir.path(), &[&get[..], &["--exit-when-done"]].concat());
    let resumed = again.line_starting("resume ");
    let (have, total) = resumed
        .trim_end_matches(" pieces")
        .split_once('/')
        .expect("have/total");
    let (have, total): (u64, u64) = (have.parse().unwrap(), total.parse().unwrap());
    assert!(
        have > 0 && have < total,
        "the kill landed mid-download: {resumed}"
    );
    let summary = again.line_starting("complete ");
    let status = again.wait_within(Duration::from_secs(120));
    assert!(status.success(), "{status}");
    assert!(std::fs::read(dir.path().join("dl/content.bin")).unwrap() == content);
    // What was missing, plus a little slack for blocks requested twice at the end.
    let missing = (total - have) * PIECE;
    let downloaded = field(&summary, "downloaded");
    assert!(
        downloaded >= missing,
        "downloaded {downloaded} < missing {missing}"
    );
    assert!(
        downloaded <= missing + missing / 10 + 4 * PIECE,
        "downloaded {downloaded} bytes after the restart, but only {missing} were missing"
    );
}
