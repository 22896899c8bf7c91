//! `shoal tracker --listen 127.0.0.1:0` in the background, and plain HTTP/1.1 requests to it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_metainfo::bencode;

use super::{Running, log_tail, spawn};

/// Longest the tracker may take to show what a client just announced.
pub const TRACKER_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `shoal tracker`, killed when dropped; its logs go to a file in the test's
/// directory.
pub struct TrackerProcess {
    process: Running,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT/announce`, from its `tracker URL` line.
    pub url: String,
}

impl TrackerProcess {
    /// Starts the tracker in `dir` and reads its `tracker URL` line.
    pub fn start(dir: &Path) -> TrackerProcess {
        Self::start_with(dir, &[])
    }

    /// [`start`](Self::start) with more arguments for `shoal tracker`.
    pub fn start_with(dir: &Path, extra: &[&str]) -> TrackerProcess {
        let mut args = vec!["tracker", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut process = spawn(dir, &args);
        let url = process.line_starting("tracker ");
        let addr = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix("/announce"))
            .unwrap_or_else(|| panic!("not an http://ADDR/announce URL: {url:?}"))
            .to_string();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        TrackerProcess { process, addr, url }
    }

    /// Stops the tracker with SIGTERM and waits (at most `limit`) for it to exit.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.process.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        self.process.wait_within(limit)
    }

    /// The end of the tracker's log, for failure messages.
    pub fn log(&self) -> String {
        log_tail(self.process.stderr_path())
    }

    /// `GET target` on a connection of its own: the body of the answer, which must be
    /// `200 OK`.
    pub fn get(&mut self, target: &str) -> Vec<u8> {
        if let Ok(Some(status)) = self.process.child.try_wait() {
            panic!("shoal tracker exited ({status}); its log:\n{}", self.log());
        }
        let mut socket = TcpStream::connect(&self.addr).expect("the tracker accepts connections");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        socket
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("GET {target}: {e}"));
        let mut response = Vec::new();
        socket
            .read_to_end(&mut response)
            .unwrap_or_else(|e| panic!("GET {target}: {e}"));
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("GET {target}: no HTTP head"));
        assert!(
            response.starts_with(b"HTTP/1.1 200 OK"),
            "GET {target}:\n{}",
            String::from_utf8_lossy(&response)
        );
        response[split + 4..].to_vec()
    }

    /// `/stats` as JSON.
    pub fn stats(&mut self) -> Value {
        let body = self.get("/stats");
        serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "/stats is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })
    }

    /// `/scrape` of one torrent: (complete, downloaded, incomplete); zeros if it is not listed.
    pub fn scrape(&mut self, info_hash: &[u8; 20]) -> (i64, i64, i64) {
        let escaped: String = info_hash.iter().map(|b| format!("%{b:02X}")).collect();
        let body = self.get(&format!("/scrape?info_hash={escaped}"));
        let doc = bencode::decode(&body)
            .unwrap_or_else(|e| panic!("scrape answer is not bencode ({e:?}): {body:?}"));
        let root = doc.root();
        assert!(
            root.get(b"failure reason").is_none(),
            "scrape failed: {}",
            String::from_utf8_lossy(&body)
        );
        let files = root.get(b"files").expect("a scrape answer has `files`");
        let Some(entry) = files.get(info_hash) else {
            return (0, 0, 0);
        };
        let count = |key: &[u8]| {
            entry
                .get(key)
                .and_then(|v| v.as_int())
                .unwrap_or_else(|| panic!("scrape entry without {}", String::from_utf8_lossy(key)))
        };
        (
            count(b"complete"),
            count(b"downloaded"),
            count(b"incomplete"),
        )
    }

    /// Polls `/stats` until `ready` holds, at most [`TRACKER_TIMEOUT`].
    pub fn stats_until(&mut self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TRACKER_TIMEOUT;
        loop {
            let stats = self.stats();
            if ready(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "the tracker's /stats never showed {what} within {TRACKER_TIMEOUT:?}; last: \
                 {stats}\ntracker log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A number in `/stats`.
pub fn stat(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("/stats has no number {key}: {stats}"))
}
