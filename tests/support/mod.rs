//! Shared helpers for the end-to-end tests: running the `shoal` binary, making file trees.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
