//! Shared helpers for the end-to-end tests: running the `shoal` binary, making file trees.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub mod testnet;

/// The `shoal` binary built for these tests.
pub fn shoal_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shoal"))
}

/// The output of one command, decoded.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `shoal ARGS` in `dir`.
pub fn shoal(dir: &Path, args: &[&str]) -> Run {
    Command::new(shoal_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the shoal binary runs")
        .into()
}

/// Runs `shoal ARGS` in `dir` like [`shoal`], but kills it and fails the test if it has not
/// exited after `limit`: a guard against a hang, not a measurement.
pub fn shoal_within(dir: &Path, args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(shoal_bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shoal binary runs");
    let read_all = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            panic!("shoal {args:?} did not exit within {limit:?}; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        status: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Runs `shoal ARGS` and returns stdout, failing the test with stderr if it did not succeed.
pub fn shoal_ok(dir: &Path, args: &[&str]) -> String {
    let run = shoal(dir, args);
    assert_eq!(run.status, 0, "shoal {args:?} failed: {}", run.stderr);
    run.stdout
}

/// `shoal show --json FILE` as JSON.
pub fn show_json(dir: &Path, torrent: &Path) -> serde_json::Value {
    let path = torrent.to_str().expect("utf-8 path");
    serde_json::from_str(&shoal_ok(dir, &["show", "--json", path]))
        .expect("show --json prints JSON")
}

pub use shoal_testkit::pseudo_random;

/// Writes `files` (relative path, size) under `root` with seeded content.
pub fn write_tree(root: &Path, files: &[(&str, usize)], seed: u64) {
    for (i, (path, size)) in files.iter().enumerate() {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create test directories");
        }
        std::fs::write(&path, pseudo_random(*size, seed + i as u64)).expect("write test file");
    }
}

/// A `shoal` process in the background, killed when dropped so a failed assertion never
/// leaves one behind.
pub struct Running {
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    /// Where its stderr (logs at `debug` for shoal) goes, shown when a wait fails.
    stderr: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Reads stdout lines until one starts with `prefix`; returns the rest of it, trimmed.
    pub fn line_starting(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).expect("read stdout");
            assert!(n > 0, "no {prefix:?} line before the output ended");
            if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    /// What is left of its stdout (read to the end: call once it has exited).
    pub fn rest_of_stdout(&mut self) -> String {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut rest);
        rest
    }

    /// Waits for the process to exit, killing it and failing the test after `limit`.
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "shoal did not exit within {limit:?}; the end of its log:\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `shoal ARGS` in `dir` with stdout piped and stderr (debug logs) in a file there.
pub fn spawn(dir: &Path, args: &[&str]) -> Running {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stderr = dir.join(format!("shoal-{n}.stderr"));
    let log = std::fs::File::create(&stderr).expect("create the log file");
    let mut child = Command::new(shoal_bin())
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "shoal_node=debug,info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("shoal starts");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    Running {
        child,
        stdout,
        stderr,
    }
}

/// The number after `key=` in a `key=value ...` line.
pub fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}
