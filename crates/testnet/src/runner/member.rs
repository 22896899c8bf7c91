//! A node of the run, whichever way it runs: a `shoal` child process or a node inside this
//! process (`--in-process`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::warn;

use super::inproc::InProc;
use super::process::{Lines, Proc};

/// A running node (or tracker).
#[derive(Debug)]
pub enum Member {
    Process(Proc),
    InProcess(InProc),
}

impl Member {
    /// What it has said so far (`listen`, `metrics`, `tracker`, `complete`).
    pub fn lines(&self) -> Lines {
        match self {
            Member::Process(p) => p.lines(),
            Member::InProcess(n) => n.lines(),
        }
    }

    /// Waits up to `timeout` for `pick` to find something in its output; `None` if it did not
    /// (or it stopped first).
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        pick: impl Fn(&Lines) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = pick(&self.lines()) {
                return Some(found);
            }
            if self.exited().is_some() || Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Where its `/stats` are served, once known.
    pub fn metrics(&self) -> Option<SocketAddr> {
        self.lines().metrics
    }

    /// `Some(success)` once it has stopped by itself; `success` is an exit status of 0.
    pub fn exited(&mut self) -> Option<bool> {
        match self {
            Member::Process(p) => p.exit_status().map(|s| s.success()),
            Member::InProcess(n) => n.exited(),
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `INT`). In-process nodes stop on `INT` and
    /// cannot be paused.
    pub fn signal(&mut self, signal: &str) {
        match self {
            Member::Process(p) => p.signal(signal),
            Member::InProcess(n) if signal == "INT" => n.kill(),
            Member::InProcess(_) => warn!(signal, "in-process nodes cannot be paused or resumed"),
        }
    }

    /// Stops it at once (SIGKILL for a process).
    pub fn kill(&mut self) {
        match self {
            Member::Process(p) => p.kill(),
            Member::InProcess(n) => n.kill(),
        }
    }
}
