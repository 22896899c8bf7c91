//! Runs a [`Scenario`]: every node a separate `shoal` process on 127.0.0.1 with its own data
//! directory (so `kill -9` is real), the tracker a `shoal tracker` process.
//!
//! A run lives in `<out>/<scenario>-<YYYYmmdd-HHMMSS>/`: `content/` (the generated content and
//! `content.torrent`), `nodes/<name>/` (data dir, download dir, `stdout.log`, `stderr.log`),
//! `tracker/` (its logs), `record.json` and the report. Progress is sent as [`RunEvent`]s for a
//! live view; every process is killed when the run ends, fails, or is dropped.
//!
//! ```no_run
//! # async fn demo(scenario: shoal_testnet::Scenario) -> Result<(), shoal_testnet::runner::RunError> {
//! use shoal_testnet::runner::{Interrupts, RunOptions, run};
//! let options = RunOptions::new("target/debug/shoal".into(), "runs".into());
//! let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
//! let outcome = run(&scenario, &options, events, Interrupts::never()).await?;
//! println!("{} complete: {:?}", outcome.run_dir.display(), outcome.summary.all_complete);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::UnboundedSender;

use crate::content::{self, ContentError, PreparedContent};
use crate::record::RunRecord;
use crate::report::{self, ReportError, Summary};
use crate::scenario::{FaultAction, Scenario};

mod faults;
mod fd_budget;
mod inproc;
mod interrupts;
mod member;
mod node;
pub mod plan;
mod process;
mod stats;
mod swarm;

pub use interrupts::{Interrupter, Interrupts};
use swarm::Swarm;

/// How often every node's `/stats` is polled (and the live view ticks) by default.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why a run could not be carried out. A run that times out or is interrupted once it has
/// started is not an error: its [`RunOutcome`] says so.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Creating or writing a file or directory of the run failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `shoal` binary could not be started.
    #[error("cannot start {program}: {source} (is it the path of a built `shoal` binary?)")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The tracker or a bootstrap node did not print its address in time.
    #[error("{what} did not start in time; see {log}")]
    Startup { what: String, log: PathBuf },
    /// The scenario pauses or resumes nodes, which `--in-process` cannot do.
    #[error(
        "faults[{fault}] ({action}) cannot run with --in-process: pausing is SIGSTOP, which \
         stops a whole process, and with --in-process every node shares this one; run the \
         scenario without --in-process (one process per node)"
    )]
    PauseInProcess { fault: usize, action: &'static str },
    /// Interrupted while the content was being generated: no node was started.
    #[error("interrupted while generating the content; no node was started ({run_dir})")]
    Interrupted { run_dir: PathBuf },
    /// Making the content or its torrent failed.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Writing the report failed.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `shoal` binary every node runs.
    pub shoal: PathBuf,
    /// Runs go in a new directory below this one.
    pub out: PathBuf,
    /// How often every node is polled (completion times come from the nodes themselves, to
    /// the millisecond).
    pub poll_interval: Duration,
    /// Run every node inside this process ([`shoal_node::start`]) instead of one `shoal`
    /// process each; the tracker is still a process. A kill aborts the node at once; nodes
    /// cannot be paused, so scenarios with `pause` or `resume` faults are refused.
    pub in_process: bool,
}

impl RunOptions {
    /// Runs `shoal`, writing below `out`, polling every [`DEFAULT_POLL_INTERVAL`].
    pub fn new(shoal: PathBuf, out: PathBuf) -> Self {
        Self {
            shoal,
            out,
            poll_interval: DEFAULT_POLL_INTERVAL,
            in_process: false,
        }
    }
}

/// A group's figures at one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupTick {
    pub name: String,
    /// `seeder`, `leecher`, `free-rider`, `hostile`.
    pub role: String,
    /// Nodes that completed, of the `total` expected to.
    pub done: usize,
    pub total: usize,
    /// Nodes running now.
    pub running: usize,
    /// Mean fraction of the pieces held by the running nodes.
    pub progress: f64,
}

/// Once a tick: where the run is.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Seconds since the run started.
    pub t: f64,
    /// Swarm progress (what faults trigger on).
    pub progress: f64,
    pub groups: Vec<GroupTick>,
    /// Bytes per second, all nodes together, since the last tick.
    pub down_rate: f64,
    pub up_rate: f64,
    /// Node processes running.
    pub running: usize,
}

/// What a run reports as it goes, for a live view.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// The run directory exists and the content is ready; processes start next.
    Started {
        run_dir: PathBuf,
        nodes: usize,
        content_size: u64,
        num_pieces: u32,
    },
    Tick(Tick),
    FaultFired {
        t: f64,
        what: String,
    },
    NodeFinished {
        name: String,
        t: f64,
    },
    /// Every process is stopped; the nodes' content is compared next, then the record and
    /// report are written.
    Finished {
        t: f64,
        timed_out: bool,
        interrupted: bool,
    },
    /// Comparing this many nodes' downloads with the original (a second interrupt skips it).
    CheckingContent {
        nodes: usize,
    },
    /// With `--in-process`, each node's connections are capped so that all of them fit in the
    /// process's open-file limit.
    ConnectionCap {
        per_node: u32,
        open_file_limit: u64,
        nodes: u64,
        /// Too few descriptors even for that: accepts, dials and file opens may fail.
        short: bool,
    },
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: PathBuf,
    pub record: RunRecord,
    pub summary: Summary,
    /// Stopped early by the caller (Ctrl-C).
    pub interrupted: bool,
    /// Nodes that should have completed and did not.
    pub unfinished: Vec<String>,
}

impl RunOutcome {
    /// Whether the run succeeded: every node that should complete did (and there was at least
    /// one), with good content, in time.
    pub fn success(&self) -> bool {
        self.summary.all_complete && !self.record.timed_out && !self.interrupted
    }
}

/// Why the tick loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Every node that should complete has.
    Settled,
    TimedOut,
    Interrupted,
}

/// Runs `scenario` to the end: until every node that should complete has, the scenario's
/// timeout, or an interrupt (then the partial record and report are still written).
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    events: UnboundedSender<RunEvent>,
    interrupts: Interrupts,
) -> Result<RunOutcome, RunError> {
    if options.in_process {
        refuse_pauses(scenario)?;
    }
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run_dir = make_run_dir(&options.out, &scenario.name, started_unix)?;
    let prepared = prepare_content(scenario, &run_dir, interrupts.clone()).await?;
    let _ = events.send(RunEvent::Started {
        run_dir: run_dir.clone(),
        nodes: scenario.groups.iter().map(|g| g.count as usize).sum(),
        content_size: prepared.size,
        num_pieces: prepared.num_pieces,
    });
    let mut swarm = Swarm::new(
        scenario.clone(),
        options,
        run_dir.clone(),
        prepared,
        events.clone(),
    );
    let mut stop = interrupts.clone();
    let stopped_early = tokio::select! {
        started = swarm.start_infrastructure() => { started?; false }
        () = stop.reached(1) => true,
    };
    swarm.start_clock();
    let (t, end) = if stopped_early {
        (Duration::ZERO, End::Interrupted)
    } else {
        drive(&mut swarm, options.poll_interval, interrupts.clone()).await?
    };
    let (timed_out, interrupted) = (end == End::TimedOut, end == End::Interrupted);
    swarm.stop_all();
    let _ = events.send(RunEvent::Finished {
        t: t.as_secs_f64(),
        timed_out,
        interrupted,
    });
    swarm.check_content(interrupts).await;
    let record = swarm.record(t, timed_out, started_unix);
    let unfinished = swarm.unfinished();
    drop(swarm);
    write_record(&run_dir, &record)?;
    let summary = report::write(&run_dir, &record)?;
    Ok(RunOutcome {
        run_dir,
        record,
        summary,
        interrupted,
        unfinished,
    })
}

/// `--in-process` cannot pause a node: say so before anything starts.
fn refuse_pauses(scenario: &Scenario) -> Result<(), RunError> {
    for (fault, f) in scenario.faults.iter().enumerate() {
        let action = match f.action {
            FaultAction::Pause { .. } => "pause",
            FaultAction::Resume { .. } => "resume",
            _ => continue,
        };
        return Err(RunError::PauseInProcess { fault, action });
    }
    Ok(())
}

/// Generates the content in a blocking thread; the first interrupt stops it.
async fn prepare_content(
    scenario: &Scenario,
    run_dir: &Path,
    mut interrupts: Interrupts,
) -> Result<PreparedContent, RunError> {
    let content_dir = run_dir.join("content");
    let spec = scenario.content.clone();
    let seed = scenario.seed;
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let mut task =
        tokio::task::spawn_blocking(move || content::prepare(&content_dir, &spec, seed, &flag));
    let joined = tokio::select! {
        joined = &mut task => joined,
        () = interrupts.reached(1) => {
            cancel.store(true, Ordering::Relaxed);
            task.await
        }
    };
    match joined {
        Ok(Ok(prepared)) => Ok(prepared),
        Ok(Err(ContentError::Cancelled)) => Err(RunError::Interrupted {
            run_dir: run_dir.to_owned(),
        }),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(RunError::Io {
            path: run_dir.join("content"),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// The tick loop; returns when the run ended (on the run clock) and why.
async fn drive(
    swarm: &mut Swarm,
    every: Duration,
    mut interrupts: Interrupts,
) -> Result<(Duration, End), RunError> {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(50)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // A whole tick gives way to an interrupt: a tracker restart waiting for its address,
        // or polls waiting for answers, do not hold up a Ctrl-C.
        let step = async {
            ticker.tick().await;
            swarm.step().await
        };
        let stepped = tokio::select! {
            () = interrupts.reached(1) => None,
            stepped = step => Some(stepped?),
        };
        match stepped {
            None => return Ok((swarm.now(), End::Interrupted)),
            Some(Some(end)) => return Ok(end),
            Some(None) => {}
        }
    }
}

fn write_record(run_dir: &Path, record: &RunRecord) -> Result<(), RunError> {
    let path = run_dir.join("record.json");
    let json = serde_json::to_vec_pretty(record).map_err(|e| RunError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&path, json).map_err(|source| RunError::Io { path, source })
}

/// Creates `<out>/<name>-<YYYYmmdd-HHMMSS>/` (with `-2`, `-3`… if that exists already).
fn make_run_dir(out: &Path, name: &str, unix: u64) -> Result<PathBuf, RunError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RunError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = format!("{safe}-{}", utc_stamp(unix));
    for n in 1u32.. {
        let dir = if n == 1 {
            out.join(&base)
        } else {
            out.join(format!("{base}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&dir)(e)),
        }
    }
    Err(io(out)(std::io::Error::other("no free run directory name")))
}

/// `YYYYmmdd-HHMMSS` in UTC for Unix seconds (civil-from-days, proleptic Gregorian).
pub fn utc_stamp(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_in_utc() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400 + 3661), "20000229-010101");
        assert_eq!(utc_stamp(1_795_000_000), "20261118-110640");
    }

    fn tiny_scenario() -> Scenario {
        use crate::scenario::{Content, DhtSpec, TrackerSpec};
        Scenario {
            name: "tiny".into(),
            seed: 5,
            timeout: Duration::from_secs(10),
            content: Content {
                size: 40_000,
                piece_length: None,
                files: 2,
            },
            tracker: TrackerSpec { enabled: false },
            dht: DhtSpec { bootstrap_nodes: 1 },
            groups: vec![crate::runner::plan::tests::group(
                "seeders",
                crate::scenario::Role::Seeder,
                1,
            )],
            faults: vec![],
        }
    }

    #[tokio::test]
    async fn a_missing_binary_is_an_error_that_names_it() {
        let out = tempfile::tempdir().unwrap();
        let options = RunOptions::new(out.path().join("no-such-shoal"), out.path().join("runs"));
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let error = run(&tiny_scenario(), &options, events, Interrupts::never())
            .await
            .unwrap_err();
        assert!(matches!(error, RunError::Spawn { .. }), "{error}");
        assert!(error.to_string().contains("no-such-shoal"), "{error}");
        let Some(RunEvent::Started {
            run_dir,
            num_pieces,
            ..
        }) = received.recv().await
        else {
            panic!("no Started event");
        };
        assert_eq!(num_pieces, 3);
        assert!(run_dir.join("content/content.torrent").is_file());
        assert!(run_dir.join("content/content/file-001.bin").is_file());
    }

    #[tokio::test]
    async fn in_process_refuses_to_pause_before_anything_starts() {
        use crate::scenario::{Fault, FaultAction, Trigger};
        let out = tempfile::tempdir().unwrap();
        let mut scenario = tiny_scenario();
        scenario.faults.push(Fault {
            when: Trigger::At(Duration::from_secs(1)),
            action: FaultAction::Resume {
                group: "seeders".into(),
            },
        });
        let mut options = RunOptions::new(out.path().join("shoal"), out.path().join("runs"));
        options.in_process = true;
        let (events, _received) = tokio::sync::mpsc::unbounded_channel();
        let error = run(&scenario, &options, events, Interrupts::never())
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                RunError::PauseInProcess {
                    fault: 0,
                    action: "resume"
                }
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("without --in-process"),
            "{error}"
        );
        assert!(!out.path().join("runs").exists(), "nothing was made");
    }

    #[tokio::test]
    async fn an_interrupt_stops_generating_the_content() {
        let out = tempfile::tempdir().unwrap();
        let mut scenario = tiny_scenario();
        scenario.content.size = 256 << 20;
        scenario.content.files = 1;
        let options = RunOptions::new(out.path().join("shoal"), out.path().join("runs"));
        let (events, _received) = tokio::sync::mpsc::unbounded_channel();
        let (interrupter, interrupts) = Interrupts::channel();
        interrupter.interrupt();
        let error = run(&scenario, &options, events, interrupts)
            .await
            .unwrap_err();
        assert!(matches!(error, RunError::Interrupted { .. }), "{error}");
    }

    #[test]
    fn run_dirs_do_not_collide() {
        let out = tempfile::tempdir().unwrap();
        let a = make_run_dir(out.path(), "quick start", 0).unwrap();
        let b = make_run_dir(out.path(), "quick start", 0).unwrap();
        assert!(a.ends_with("quick_start-19700101-000000"));
        assert!(b.ends_with("quick_start-19700101-000000-2"));
    }
}
