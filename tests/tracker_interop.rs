//! `shoal tracker` with real BitTorrent clients: two libtorrent sessions that can only find
//! each other through it complete a transfer, and aria2 seeds through it; the tracker's `/stats`
//! and `/scrape` must show those swarms, and forget the peers once they announce `stopped`.
//!
//! The clients come from Debian packages, which CI installs: `python3-libtorrent` (used through
//! `tests/interop/lt_tracker.py` with `/usr/bin/python3`) and `aria2` (`aria2c`). A missing tool
//! fails the test, naming the package. Everything listens on 127.0.0.1 and lives in temporary
//! directories; every process is killed when the test ends, also when it fails.

mod support;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::tracker::{TrackerProcess, stat};
use support::{Program, lines_of, log_tail, path_str, shoal_ok, write_tree};

/// Longest a client may take to do its part; the transfers are a few MiB on loopback, so this
/// only stops a hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn info_hash_bytes(hex: &str) -> [u8; 20] {
    assert_eq!(hex.len(), 40, "a v1 info-hash in hex: {hex:?}");
    let mut out = [0u8; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .unwrap_or_else(|_| panic!("not hex: {hex:?}"));
    }
    out
}

/// Every file under `root`, relative, sorted.
fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read a test directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// libtorrent
// ---------------------------------------------------------------------------------------------

/// Two libtorrent 2.0 sessions (DHT, LSD, PEX, UPnP and NAT-PMP off; 127.0.0.1 only; no peer
/// added by hand) find each other through `shoal tracker` and transfer a few MiB, byte for
/// byte; the tracker sees both peers, the `completed` event, and then both `stopped` events.
#[test]
fn libtorrent_peers_find_each_other_only_through_the_tracker() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let seed_dir = tmp.path().join("seed");
    let download_dir = tmp.path().join("download");
    fs::create_dir_all(&download_dir).unwrap();
    write_tree(
        &seed_dir,
        &[
            ("payload/a.bin", (3 << 20) + 12_345),
            ("payload/nested/b.bin", (2 << 20) - 999),
            ("payload/c.txt", 4_321),
        ],
        0x7ac4_0001,
    );
    let mut tracker = TrackerProcess::start(tmp.path());
    let torrent = tmp.path().join("libtorrent.torrent");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_tracker.py");
    let script_stderr = tmp.path().join("lt_tracker.stderr");
    let stderr_file = File::create(&script_stderr).unwrap();
    let time_limit = CLIENT_TIMEOUT.as_secs().to_string();
    let mut lt = Program::spawn(
        Path::new("/usr/bin/python3"),
        "python3-libtorrent",
        &[
            path_str(&script),
            "--tracker",
            &tracker.url,
            "--source",
            path_str(&seed_dir.join("payload")),
            "--dest",
            path_str(&download_dir),
            "--torrent",
            path_str(&torrent),
            "--piece-length",
            "65536",
            "--time-limit",
            &time_limit,
        ],
        |c| {
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr_file);
        },
    );
    let lines = lines_of(lt.child.stdout.take().expect("piped stdout"));
    let fail = |what: &str, lt: &mut Program| -> ! {
        let status = lt.wait_for_exit(Duration::from_secs(1));
        panic!(
            "lt_tracker.py: {what} (exit: {status:?}); if libtorrent is missing, install the \
             Debian package python3-libtorrent\nstderr:\n{}",
            log_tail(&script_stderr)
        )
    };
    let Ok(line) = lines.recv_timeout(CLIENT_TIMEOUT + Duration::from_secs(10)) else {
        fail("no result line", &mut lt)
    };
    let result: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("lt_tracker.py printed no JSON ({e}): {line}"));
    assert_eq!(result["ok"], true, "libtorrent's transfer failed: {line}");

    // The downloader learnt exactly one peer, the seeder, and only from the tracker; the lone
    // seeder's first announce got nobody (the tracker never lists a peer to itself).
    assert_eq!(result["peers_from_tracker"], 1, "{line}");
    assert_eq!(result["seeder_announces"][0], 0, "{line}");
    assert_eq!(
        result["downloader_peer_sources"],
        serde_json::json!(["tracker"]),
        "{line}"
    );
    let seeder_port = result["status"]["seeder"]["listen_port"].as_u64().unwrap();
    assert_eq!(
        result["downloader_peers"],
        serde_json::json!([format!("127.0.0.1:{seeder_port}")]),
        "{line}"
    );

    // Byte-identical, checked here as well as by the script.
    let source_root = seed_dir.join("payload");
    let sent = files_under(&source_root);
    let got = files_under(&download_dir.join("payload"));
    assert_eq!(sent, got, "the downloaded tree differs");
    for file in &sent {
        assert!(
            fs::read(source_root.join(file)).unwrap()
                == fs::read(download_dir.join("payload").join(file)).unwrap(),
            "{} differs after the transfer",
            file.display()
        );
    }

    // shoal reads libtorrent's torrent the same way.
    let show: Value = serde_json::from_str(&shoal_ok(
        tmp.path(),
        &["show", "--json", path_str(&torrent)],
    ))
    .expect("show --json prints JSON");
    let info_hash_hex = result["info_hash"]
        .as_str()
        .expect("an info_hash")
        .to_string();
    assert_eq!(show["info_hash"], info_hash_hex.as_str());
    assert_eq!(show["trackers"], serde_json::json!([tracker.url]));
    let info_hash = info_hash_bytes(&info_hash_hex);

    // While both are in the swarm: two peers, both seeders once the `completed` event is in.
    let stats = tracker.stats_until("two seeders", |s| s["peers"] == 2 && s["seeders"] == 2);
    assert_eq!(stat(&stats, "swarms"), 1, "{stats}");
    assert_eq!(stat(&stats, "leechers"), 0, "{stats}");
    assert!(
        stat(&stats, "announces") >= 3,
        "two `started` and a `completed`: {stats}"
    );
    assert_eq!(stat(&stats, "failures"), 0, "{stats}");
    assert_eq!(
        tracker.scrape(&info_hash),
        (2, 1, 0),
        "scrape (complete, downloaded, incomplete) after one completed download"
    );

    // Both torrents stop and announce `stopped`: the tracker forgets them.
    let mut stdin = lt.child.stdin.take().expect("piped stdin");
    let _ = stdin.write_all(b"stop\n");
    drop(stdin);
    let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) else {
        fail("no `stopped` line", &mut lt)
    };
    let stopped: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("lt_tracker.py printed no JSON ({e}): {line}"));
    assert_eq!(stopped["stopped"], true, "{line}");
    match lt.wait_for_exit(Duration::from_secs(30)) {
        Some(status) => assert!(
            status.success(),
            "lt_tracker.py failed ({status}): {line}\nstderr:\n{}",
            log_tail(&script_stderr)
        ),
        None => fail("did not exit after stopping", &mut lt),
    }
    let stats = tracker.stats_until("the swarm emptied by `stopped`", |s| s["peers"] == 0);
    assert!(
        stat(&stats, "announces") >= 5,
        "and two `stopped` announces: {stats}"
    );
    assert_eq!(stat(&stats, "failures"), 0, "{stats}");
    let (complete, _, incomplete) = tracker.scrape(&info_hash);
    assert_eq!(
        (complete, incomplete),
        (0, 0),
        "nobody left after `stopped`"
    );
}

// ---------------------------------------------------------------------------------------------
// aria2
// ---------------------------------------------------------------------------------------------

/// aria2c checks a torrent made by `shoal create --tracker URL` against its data, seeds it and
/// announces to `shoal tracker`: a scrape shows one complete peer. Stopped gracefully (SIGINT),
/// it announces `stopped` and the tracker forgets it.
#[test]
fn aria2_seeds_through_the_tracker() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let data = tmp.path().join("data");
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    write_tree(
        &data,
        &[
            ("payload/a.bin", (2 << 20) + 77),
            ("payload/sub/b.bin", 300_001),
        ],
        0x7ac4_0002,
    );
    let mut tracker = TrackerProcess::start(tmp.path());
    let torrent = tmp.path().join("shoal.torrent");
    let show: Value = serde_json::from_str(&shoal_ok(
        tmp.path(),
        &[
            "create",
            path_str(&data.join("payload")),
            "--tracker",
            &tracker.url,
            "-o",
            path_str(&torrent),
            "--json",
        ],
    ))
    .expect("create --json prints JSON");
    let info_hash = info_hash_bytes(show["info_hash"].as_str().expect("an info_hash"));

    let log = tmp.path().join("aria2.log");
    let output = tmp.path().join("aria2.out");
    let out_file = File::create(&output).unwrap();
    let err_file = out_file.try_clone().unwrap();
    let log_arg = format!("--log={}", path_str(&log));
    let stop_arg = format!("--stop={}", CLIENT_TIMEOUT.as_secs());
    let mut aria = Program::spawn(
        Path::new("aria2c"),
        "aria2",
        &[
            "--no-conf",
            // aria2's own hard limit, should this test die without killing it.
            &stop_arg,
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            "--interface=127.0.0.1",
            // Seed until stopped.
            "--seed-ratio=0.0",
            "--check-integrity=true",
            "--summary-interval=0",
            "--console-log-level=warn",
            &log_arg,
            "--log-level=info",
            "--dir",
            path_str(&data),
            path_str(&torrent),
        ],
        |c| {
            c.env("HOME", &home).stdout(out_file).stderr(err_file);
        },
    );
    aria.interrupt_first = true;
    let aria_logs = || {
        format!(
            "aria2c output:\n{}\naria2c log:\n{}",
            log_tail(&output),
            log_tail(&log)
        )
    };

    // aria2c verifies the data, then announces `started` with left=0.
    let started = Instant::now();
    loop {
        if let Some(status) = aria.exited() {
            panic!("aria2c exited early ({status})\n{}", aria_logs());
        }
        let (complete, _, incomplete) = tracker.scrape(&info_hash);
        if complete == 1 {
            assert_eq!(incomplete, 0, "aria2c is a seeder");
            break;
        }
        assert!(
            started.elapsed() < CLIENT_TIMEOUT,
            "the tracker never saw aria2c seed within {CLIENT_TIMEOUT:?} (scrape: complete \
             {complete}, incomplete {incomplete})\n{}\ntracker stderr:\n{}",
            aria_logs(),
            tracker.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = tracker.stats();
    assert_eq!(
        (
            stat(&stats, "swarms"),
            stat(&stats, "peers"),
            stat(&stats, "seeders"),
            stat(&stats, "leechers")
        ),
        (1, 1, 1, 0),
        "{stats}"
    );
    assert!(stat(&stats, "announces") >= 1, "{stats}");
    assert_eq!(stat(&stats, "failures"), 0, "{stats}\n{}", aria_logs());

    // A graceful stop announces `stopped`.
    aria.interrupt();
    match aria.wait_for_exit(Duration::from_secs(30)) {
        Some(status) => assert!(
            status.success(),
            "aria2c failed ({status})\n{}",
            aria_logs()
        ),
        None => panic!("aria2c did not stop on SIGINT\n{}", aria_logs()),
    }
    let stats = tracker.stats_until("aria2c gone after `stopped`", |s| s["peers"] == 0);
    assert!(stat(&stats, "announces") >= 2, "{stats}\n{}", aria_logs());
    assert_eq!(stat(&stats, "failures"), 0, "{stats}");
    assert_eq!(tracker.scrape(&info_hash), (0, 0, 0), "{}", aria_logs());
}
