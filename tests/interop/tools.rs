//! Running the external tools (libtorrent through `lt_tool.py`, Transmission, mktorrent, shoal)
//! with a time limit, and reading what they print.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::support::path_str;
use crate::support::shoal_bin;

/// Longest any one command may run: the data is tiny, so this only stops a hang.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The libtorrent helper script, run with the system Python.
pub fn lt_tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_tool.py")
}

/// An external program and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub enum Tool {
    Python,
    TransmissionShow,
    TransmissionCreate,
    Mktorrent,
    Shoal,
}

impl Tool {
    fn program(self) -> PathBuf {
        match self {
            Tool::Python => PathBuf::from("/usr/bin/python3"),
            Tool::TransmissionShow => PathBuf::from("transmission-show"),
            Tool::TransmissionCreate => PathBuf::from("transmission-create"),
            Tool::Mktorrent => PathBuf::from("mktorrent"),
            Tool::Shoal => shoal_bin(),
        }
    }

    fn package(self) -> &'static str {
        match self {
            Tool::Python => "python3-libtorrent",
            Tool::TransmissionShow | Tool::TransmissionCreate => "transmission-cli",
            Tool::Mktorrent => "mktorrent",
            Tool::Shoal => "(built by cargo)",
        }
    }
}

/// Runs `tool ARGS` in `dir` with a time limit; returns stdout. Fails the test if the program
/// is missing (naming its Debian package), times out, or exits unsuccessfully.
pub fn run(tool: Tool, dir: &Path, args: &[&str]) -> String {
    let program = tool.program();
    let shown = format!("{} {args:?}", program.display());
    let mut child = match Command::new(&program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{} not found: install the Debian package {} (the interop tests need it and do \
             not skip without it)",
            program.display(),
            tool.package()
        ),
        Err(e) => panic!("cannot start {shown}: {e}"),
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {COMMAND_TIMEOUT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().expect("stderr reader")).into_owned();
    assert!(
        status.success(),
        "{shown} failed ({status}); if a tool is missing, install the Debian package {}\n\
         stdout:\n{stdout}\nstderr:\n{stderr}",
        tool.package()
    );
    stdout
}

pub fn parse_json(text: &str, what: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what} did not print JSON ({e}):\n{text}"))
}

/// `lt_tool.py ARGS` as JSON.
pub fn lt(dir: &Path, args: &[&str]) -> Value {
    let script = lt_tool();
    let mut full = vec![path_str(&script)];
    full.extend_from_slice(args);
    let out = run(Tool::Python, dir, &full);
    parse_json(&out, &format!("lt_tool.py {args:?}"))
}

/// libtorrent's `torrent_info` of a .torrent file.
pub fn lt_info(dir: &Path, torrent: &Path) -> Value {
    lt(dir, &["info", path_str(torrent)])
}

/// `shoal show --json FILE`.
pub fn shoal_show(dir: &Path, torrent: &Path) -> Value {
    let out = run(Tool::Shoal, dir, &["show", "--json", path_str(torrent)]);
    parse_json(&out, "shoal show --json")
}

/// The value of the `label` line in `shoal create`'s text output.
pub fn create_field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

/// What `transmission-show -u` says about a torrent (it prints sizes only rounded).
#[derive(Debug)]
pub struct TransmissionView {
    pub info_hash: String,
    pub piece_count: u64,
    /// File paths in the torrent's order.
    pub paths: Vec<String>,
}

pub fn transmission_show(dir: &Path, torrent: &Path) -> TransmissionView {
    let out = run(Tool::TransmissionShow, dir, &["-u", path_str(torrent)]);
    let general = |label: &str| {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label:?} in transmission-show output:\n{out}"))
    };
    let info_hash = general("Hash:");
    let piece_count = general("Piece Count:")
        .parse()
        .unwrap_or_else(|e| panic!("bad Piece Count ({e}) in:\n{out}"));
    let files = out
        .split_once("\nFILES\n")
        .unwrap_or_else(|| panic!("no FILES section in transmission-show output:\n{out}"))
        .1;
    let paths = files
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.strip_prefix("  ").unwrap_or(l);
            let (path, _size) = l
                .rsplit_once(" (")
                .unwrap_or_else(|| panic!("unexpected file line {l:?} in:\n{out}"));
            path.to_owned()
        })
        .collect();
    TransmissionView {
        info_hash,
        piece_count,
        paths,
    }
}
