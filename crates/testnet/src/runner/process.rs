//! One `shoal` child process: started with its output in log files, the lines the runner needs
//! (`listen`, `metrics`, `tracker`, `resume`, `complete`) picked out of its stdout as they
//! arrive, signals sent with the `kill` command, and killed when dropped so no run leaves
//! processes behind.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::RunError;

/// How long after a process exits its stdout may stay open before the exit is reported anyway.
const STDOUT_GRACE: Duration = Duration::from_secs(2);

/// What the process has said on stdout so far.
#[derive(Debug, Clone, Default)]
pub struct Lines {
    /// `listen <multiaddr>` lines.
    pub listen: Vec<String>,
    /// From `metrics http://ADDR/stats`.
    pub metrics: Option<SocketAddr>,
    /// From `tracker <url>`.
    pub tracker: Option<String>,
    /// A `complete …` line was printed (`--exit-when-done`).
    pub complete: bool,
    /// When the `resume N/M pieces` line arrived: `shoal get` prints it as soon as its torrent
    /// is added (after the metadata, for a magnet link), which is when the node's own clock
    /// for `time_to_complete_ms` starts.
    pub added_at: Option<Instant>,
    /// When the `complete …` line arrived.
    pub complete_at: Option<Instant>,
}

impl Lines {
    /// Takes a line that arrived at `now`.
    pub(crate) fn take(&mut self, line: &str, now: Instant) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("listen ") {
            self.listen.push(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("metrics http://") {
            let addr = rest.trim().trim_end_matches("/stats");
            self.metrics = addr.parse().ok();
        } else if let Some(rest) = line.strip_prefix("tracker ") {
            self.tracker = Some(rest.trim().to_owned());
        } else if line.starts_with("resume ") {
            self.added_at.get_or_insert(now);
        } else if line.starts_with("complete") {
            self.complete = true;
            self.complete_at.get_or_insert(now);
        }
    }
}

/// A running (or exited) child; killed with SIGKILL on drop.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Lines>>,
    /// The thread reading stdout; it ends at EOF, soon after the process exits.
    reader: Option<std::thread::JoinHandle<()>>,
    /// The child's exit and when it was seen, before its output is known to be read.
    child_exit: Option<(ExitStatus, Instant)>,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Starts `program args…` with stdout and stderr logged to `log_dir/{stdout,stderr}.log`
    /// (appended to, so a restarted tracker keeps its earlier logs).
    pub fn spawn(program: &Path, args: &[String], log_dir: &Path) -> Result<Proc, RunError> {
        let io = |source| RunError::Io {
            path: log_dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(log_dir).map_err(io)?;
        let open = |name: &str| {
            File::options()
                .create(true)
                .append(true)
                .open(log_dir.join(name))
                .map_err(|source| RunError::Io {
                    path: log_dir.join(name),
                    source,
                })
        };
        let stderr = open("stderr.log")?;
        let mut stdout_log = open("stdout.log")?;
        let mut command = Command::new(program);
        // Its own process group: a Ctrl-C in the terminal reaches the runner only, which then
        // stops every node itself (and records the run up to then).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|source| RunError::Spawn {
                program: program.to_owned(),
                source,
            })?;
        let lines = Arc::new(Mutex::new(Lines::default()));
        let reader = child.stdout.take().map(|stdout| {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let now = Instant::now();
                    let _ = writeln!(stdout_log, "{line}");
                    if let Ok(mut lines) = lines.lock() {
                        lines.take(&line, now);
                    }
                }
            })
        });
        debug!(pid = child.id(), ?args, "started");
        Ok(Proc {
            child,
            lines,
            reader,
            child_exit: None,
            exited: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A copy of what it has said so far.
    pub fn lines(&self) -> Lines {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How it exited, if it has. It is reported only once everything it printed has been
    /// read (or, should a grandchild hold its stdout open, 2 s after the exit): a `complete`
    /// line written just before exiting is never missed. Never blocks.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        if self.child_exit.is_none() {
            let status = self.child.try_wait().ok().flatten()?;
            self.child_exit = Some((status, Instant::now()));
        }
        let (status, at) = self.child_exit?;
        let read_all = self.reader.as_ref().is_none_or(|r| r.is_finished());
        if !read_all && at.elapsed() < STDOUT_GRACE {
            return None;
        }
        if !read_all {
            warn!(pid = self.pid(), "stdout still open after exit");
        }
        self.exited = Some(status);
        self.exited
    }

    /// Sends a signal by name (`STOP`, `CONT`, `INT`, `KILL`) with the `kill` command. A
    /// process that has exited is left alone.
    pub fn signal(&mut self, signal: &str) {
        if self.exit_status().is_some() {
            return;
        }
        let pid = self.pid().to_string();
        match Command::new("kill")
            .args([format!("-{signal}"), pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => warn!(pid = self.pid(), signal, %status, "kill failed"),
            Err(e) => warn!(pid = self.pid(), signal, error = %e, "cannot run kill"),
        }
    }

    /// SIGKILL and reap (a stopped process dies too).
    pub fn kill(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        if let Err(e) = self.child.kill() {
            warn!(pid = self.pid(), error = %e, "cannot kill");
        }
        if let Ok(status) = self.child.wait() {
            self.child_exit.get_or_insert((status, Instant::now()));
        }
        // Killed: whatever it had not printed yet is of no interest.
        self.exited = self.child_exit.map(|(status, _)| status);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_out_the_lines_the_runner_needs() {
        let mut lines = Lines::default();
        let start = Instant::now();
        let at = |ms| start + std::time::Duration::from_millis(ms);
        lines.take("listen /ip4/127.0.0.1/tcp/5/p2p/X", at(1));
        lines.take("metrics http://127.0.0.1:8080/stats", at(2));
        lines.take("tracker http://127.0.0.1:9/announce", at(3));
        lines.take("resume 0/3 pieces", at(4));
        assert!(!lines.complete);
        assert_eq!(lines.added_at, Some(at(4)));
        lines.take("complete downloaded=1 uploaded=0", at(9));
        assert_eq!(lines.complete_at, Some(at(9)));
        assert_eq!(lines.listen, ["/ip4/127.0.0.1/tcp/5/p2p/X"]);
        assert_eq!(lines.metrics, "127.0.0.1:8080".parse().ok());
        assert_eq!(
            lines.tracker.as_deref(),
            Some("http://127.0.0.1:9/announce")
        );
        assert!(lines.complete);
    }

    #[test]
    fn dropping_kills_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let proc = Proc::spawn(Path::new("sleep"), &["30".to_owned()], dir.path()).unwrap();
        let pid = proc.pid().to_string();
        drop(proc);
        let alive = Command::new("kill").args(["-0", &pid]).status().unwrap();
        assert!(!alive.success(), "process {pid} still alive");
    }
}
