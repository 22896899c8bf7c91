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
    /// What it has said so far (`listen`, `metrics`, `tracker`, `resume`, `complete`).
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
            if self.exited().is_some() {
                // Its last lines are read once its exit is reported: look once more.
                return pick(&self.lines());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Where its `/stats` are served, once known.
    pub fn metrics(&self) -> Option<SocketAddr> {
        self.lines().metrics
    }

    /// The process id of a child process.
    #[cfg(test)]
    pub fn pid(&self) -> Option<u32> {
        match self {
            Member::Process(p) => Some(p.pid()),
            Member::InProcess(_) => None,
        }
    }

    /// `Some(success)` once it has stopped by itself; `success` is an exit status of 0.
    pub fn exited(&mut self) -> Option<bool> {
        match self {
            Member::Process(p) => p.exit_status().map(|s| s.success()),
            Member::InProcess(n) => n.exited(),
        }
    }

    /// SIGSTOP; returns whether it is paused now. A node inside this process cannot be: the
    /// runner refuses scenarios that pause with `--in-process` before they start.
    pub fn pause(&mut self) -> bool {
        match self {
            Member::Process(p) => {
                p.signal("STOP");
                true
            }
            Member::InProcess(_) => {
                warn!("an in-process node cannot be paused; it keeps running");
                false
            }
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if let Member::Process(p) = self {
            p.signal("CONT");
        }
    }

    /// A planned leave: SIGINT, after which `shoal` stops its torrent (a `stopped` announce,
    /// the resume state saved) and exits; an in-process node shuts down the same way. A
    /// paused process must be resumed first to act on it.
    pub fn stop(&mut self) {
        match self {
            Member::Process(p) => p.signal("INT"),
            Member::InProcess(n) => n.stop(),
        }
    }

    /// Ends it at once, saying nothing to anyone: SIGKILL for a process (a paused one too),
    /// [`shoal_node::NodeHandle::abort`] for a node in this process.
    pub fn kill(&mut self) {
        match self {
            Member::Process(p) => p.kill(),
            Member::InProcess(n) => n.kill(),
        }
    }
}
