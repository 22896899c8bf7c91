//! Shared helpers for the end-to-end tests: running the `shoal` binary, making file trees.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
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

/// How long [`Running::line_starting`] waits for its line: far longer than any test's transfer
/// takes, so reaching it means something is stuck, and the test fails instead of hanging.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(120);

/// How many lines of stdout and of the log a failed wait shows.
const TAIL_LINES: usize = 40;

/// A `shoal` process in the background, killed when dropped so a failed assertion never
/// leaves one behind.
pub struct Running {
    pub child: Child,
    /// Its stdout, line by line, from a reader thread (so a wait can time out); disconnected
    /// once stdout closes.
    lines: Receiver<String>,
    /// The stdout lines taken from `lines` so far, shown when a wait fails.
    seen: Vec<String>,
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
    /// Fails the test if no such line comes within [`LINE_TIMEOUT`].
    pub fn line_starting(&mut self, prefix: &str) -> String {
        self.line_starting_within(prefix, LINE_TIMEOUT)
    }

    /// Like [`Running::line_starting`], but fails the test after `limit` (or when stdout
    /// ends first), showing the stdout read so far and the end of the process's log.
    pub fn line_starting_within(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no {prefix:?} line within {limit:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("no {prefix:?} line before stdout ended"))
                }
            };
            self.seen.push(line);
            let line = self.seen.last().map_or("", |l| l.trim_end());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    /// What is left of its stdout, read to the end: call once it has exited. Fails the test
    /// if stdout stays open for [`LINE_TIMEOUT`] (a child of it still holds it).
    pub fn rest_of_stdout(&mut self) -> String {
        let mut rest = String::new();
        loop {
            match self.lines.recv_timeout(LINE_TIMEOUT) {
                Ok(line) => {
                    // Lines keep their newline.
                    rest.push_str(&line);
                    self.seen.push(line);
                }
                Err(RecvTimeoutError::Disconnected) => return rest,
                Err(RecvTimeoutError::Timeout) => self.fail("stdout never ended"),
            }
        }
    }

    /// Waits for the process to exit, killing it and failing the test after `limit`.
    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("shoal did not exit within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `n` lines of the process's stderr log.
    pub fn stderr_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        last_lines(log.lines(), n)
    }

    /// Fails the test with `what`, the process's state, its stdout so far and its log's end.
    fn fail(&mut self, what: &str) -> ! {
        let state = match self.child.try_wait() {
            Ok(Some(status)) => format!("it exited: {status}"),
            Ok(None) => "it is still running (killed now)".to_owned(),
            Err(e) => format!("its state is unknown: {e}"),
        };
        let _ = self.child.kill();
        let stdout = last_lines(self.seen.iter().map(String::as_str), TAIL_LINES);
        panic!(
            "{what}; {state}\n--- stdout so far ---\n{stdout}\n--- the end of its log ({}) ---\n{}",
            self.stderr.display(),
            self.stderr_tail(TAIL_LINES)
        );
    }
}

fn last_lines<'a>(lines: impl DoubleEndedIterator<Item = &'a str>, n: usize) -> String {
    let mut tail: Vec<&str> = lines.rev().take(n).collect();
    tail.reverse();
    tail.join("\n")
}

/// Sends each line of `stdout` (lossily decoded, newline included) until it ends or fails.
fn forward_lines(stdout: ChildStdout, lines: Sender<String>) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if lines
                    .send(String::from_utf8_lossy(&buf).into_owned())
                    .is_err()
                {
                    return;
                }
            }
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
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || forward_lines(stdout, sender));
    Running {
        child,
        lines,
        seen: Vec::new(),
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

/// `shoal tracker` as a process, and HTTP requests to it.
pub mod tracker;

/// A path as a command-line argument (test paths are UTF-8).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

impl Running {
    /// The file its stderr (debug logs) goes to.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }
}

/// Lines of a child's stdout, read on a thread so that they can be awaited with a time limit
/// (`recv_timeout`).
pub fn lines_of(stdout: ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// The end of a log file (its last 12,000 bytes, where a failure is explained), or nothing if
/// it cannot be read.
pub fn log_tail(path: &Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let skip = text.len().saturating_sub(12_000);
    let start = (skip..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[start..].to_string()
}

/// An external program (a BitTorrent client from a Debian package) in the background, killed
/// when dropped — after a polite SIGINT if `interrupt_first` — so a failed assertion never
/// leaves one behind.
pub struct Program {
    pub child: Child,
    pub interrupt_first: bool,
}

impl Program {
    /// Starts `program ARGS` after `setup` has set its stdio; a missing program fails the test
    /// naming its Debian `package`.
    pub fn spawn(
        program: &Path,
        package: &str,
        args: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> Program {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null());
        setup(&mut command);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "{} not found: install the Debian package {package} (the interop tests need it \
                 and do not skip without it)",
                program.display()
            ),
            Err(e) => panic!("cannot start {} {args:?}: {e}", program.display()),
        };
        Program {
            child,
            interrupt_first: false,
        }
    }

    /// Sends SIGINT (a graceful stop: aria2c, for one, announces `stopped` then).
    pub fn interrupt(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The exit status, if the program ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("poll a child process")
    }

    /// Waits for the program to end, at most `limit`.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        if self.interrupt_first {
            self.interrupt();
            if self.wait_for_exit(Duration::from_secs(5)).is_some() {
                return;
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
