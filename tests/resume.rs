//! `shoal get` killed with SIGKILL mid-download and started again on the same directory:
//! it completes, the content is identical, and it downloads about what was missing.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{pseudo_random, shoal_bin, shoal_ok};

const SIZE: usize = 16 * 1024 * 1024;
const PIECE: u64 = 256 * 1024;

/// Kills the child when dropped, so a failed assertion never leaves a process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &std::path::Path, args: &[&str]) -> Running {
    Running(
        Command::new(shoal_bin())
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("shoal starts"),
    )
}

/// Reads stdout lines until one starts with `prefix`; returns the rest of it.
fn line_starting(child: &mut Running, prefix: &str) -> String {
    let stdout = child.0.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "no {prefix:?} line before the output ended");
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
}

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

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
    let address = line_starting(&mut seeder, "listen ");
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
    assert_eq!(line_starting(&mut first, "resume "), "0/64 pieces");
    std::thread::sleep(Duration::from_millis(2500));
    first.0.kill().expect("SIGKILL the first download");
    first.0.wait().expect("reaped");

    let mut again = spawn(dir.path(), &[&get[..], &["--exit-when-done"]].concat());
    let resumed = line_starting(&mut again, "resume ");
    let (have, total) = resumed
        .trim_end_matches(" pieces")
        .split_once('/')
        .expect("have/total");
    let (have, total): (u64, u64) = (have.parse().unwrap(), total.parse().unwrap());
    assert!(
        have > 0 && have < total,
        "the kill landed mid-download: {resumed}"
    );
    let summary = line_starting(&mut again, "complete ");
    let status = again.0.wait().expect("second download exits");
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
