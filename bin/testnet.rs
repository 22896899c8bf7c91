//! `shoal testnet run FILE.toml` (a whole swarm on this machine, with a live view) and
//! `shoal testnet compare RUN_A RUN_B`.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use shoal_testnet::runner::{Interrupter, Interrupts, RunEvent, RunOptions, RunOutcome, Tick};
use shoal_testnet::{Scenario, compare, run};
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Args)]
pub struct TestnetArgs {
    #[command(subcommand)]
    command: TestnetCommand,
}

#[derive(Subcommand)]
enum TestnetCommand {
    /// Run a scenario: every node a `shoal` process on 127.0.0.1; prints `run DIR`,
    /// `all_complete`, and `t_last … t_min … ratio …`; exits 1 unless every node completed
    Run {
        /// The scenario file (see testnet/README.md)
        file: PathBuf,
        /// Runs go in a new directory below this one
        #[arg(long, value_name = "DIR", default_value = "runs")]
        out: PathBuf,
        /// Run every node inside this process instead of one process per node (the tracker
        /// stays a process; a kill aborts a node at once; scenarios that pause nodes are
        /// refused)
        #[arg(long)]
        in_process: bool,
    },
    /// Compare the summaries of two runs
    Compare {
        /// A run directory (or its summary.json)
        run_a: PathBuf,
        /// Another run directory (or its summary.json)
        run_b: PathBuf,
    },
}

pub async fn testnet(args: TestnetArgs) -> Result<()> {
    match args.command {
        TestnetCommand::Run {
            file,
            out,
            in_process,
        } => run_scenario(file, out, in_process).await,
        TestnetCommand::Compare { run_a, run_b } => {
            let text = compare(&run_a, &run_b)?;
            crate::emit(&text)
        }
    }
}

async fn run_scenario(file: PathBuf, out: PathBuf, in_process: bool) -> Result<()> {
    let scenario = Scenario::load(&file)?;
    let shoal = std::env::current_exe().context("cannot find the shoal binary to run nodes")?;
    let mut options = RunOptions::new(shoal, out);
    options.in_process = in_process;
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let view = tokio::spawn(live_view(received));
    let (interrupter, interrupts) = Interrupts::channel();
    count_interrupts(interrupter)?;
    let outcome = run(&scenario, &options, events, interrupts).await;
    let _ = view.await;
    let outcome = outcome.with_context(|| format!("running {}", file.display()))?;
    print_outcome(&outcome)
}

/// Counts every Ctrl-C (SIGINT) and SIGTERM for the run: the first ends it cleanly (every node
/// killed, the report written), a second skips the content check. The handlers are installed
/// now, before the run starts, and stay for good, so no Ctrl-C kills the runner before it has
/// ended its nodes.
#[cfg(unix)]
fn count_interrupts(interrupter: Interrupter) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = int.recv() => interrupter.interrupt(),
                Some(()) = term.recv() => interrupter.interrupt(),
                else => return,
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn count_interrupts(interrupter: Interrupter) -> Result<()> {
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            interrupter.interrupt();
        }
    });
    Ok(())
}

fn print_outcome(outcome: &RunOutcome) -> Result<()> {
    let s = &outcome.summary;
    let secs = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    crate::emit(&format!(
        "run {}\nall_complete {}\nt_last {} t_min {} ratio {}\n",
        outcome.run_dir.display(),
        s.all_complete,
        secs(s.t_last_s),
        secs(s.t_min_s),
        s.ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
    ))?;
    eprintln!("report: {}", outcome.run_dir.join("report.html").display());
    if outcome.interrupted {
        bail!(
            "the run was interrupted; partial results are in {}",
            outcome.run_dir.display()
        );
    }
    if outcome.record.timed_out {
        bail!(
            "timed out after {:.0}s; not finished: {}",
            outcome.record.duration_s,
            outcome.unfinished.join(", ")
        );
    }
    if !s.all_complete {
        if !s.nodes.iter().any(|n| n.should_complete) {
            bail!(
                "no node was expected to complete: the scenario has no leechers or free-riders, \
                 or every one of them left or was killed before completing"
            );
        }
        let bad: Vec<&str> = s
            .nodes
            .iter()
            .filter(|n| {
                n.should_complete && !(n.completed_s.is_some() && n.content_ok == Some(true))
            })
            .map(|n| n.name.as_str())
            .collect();
        bail!(
            "not every node completed with correct content: {}",
            bad.join(", ")
        );
    }
    Ok(())
}

/// Draws the run's progress on stderr: an overall bar, a bar per group, a status line, and a
/// line per fault and per node that completes (above the bars on a terminal, plain lines
/// otherwise).
async fn live_view(mut events: UnboundedReceiver<RunEvent>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let say = |line: String| {
        if multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = multi.println(line);
        }
    };
    let overall = multi.add(bar("{prefix:>12} {bar:40} {percent:>3}% {msg}"));
    overall.set_prefix("swarm");
    overall.set_length(1000);
    let mut groups: HashMap<String, ProgressBar> = HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            RunEvent::Started {
                run_dir,
                nodes,
                content_size,
                num_pieces,
            } => say(format!(
                "run {}: {nodes} nodes, {} in {num_pieces} pieces",
                run_dir.display(),
                HumanBytes(content_size)
            )),
            RunEvent::Tick(tick) => draw_tick(&multi, &overall, &mut groups, &tick),
            RunEvent::FaultFired { t, what } => say(format!("{t:>7.1}s fault: {what}")),
            RunEvent::NodeFinished { name, t } => say(format!("{t:>7.1}s {name} complete")),
            RunEvent::Finished {
                t,
                timed_out,
                interrupted,
            } => {
                let how = match (interrupted, timed_out) {
                    (true, _) => "interrupted",
                    (false, true) => "timed out",
                    (false, false) => "finished",
                };
                say(format!("{t:>7.1}s {how}; every node stopped"));
            }
            RunEvent::ConnectionCap {
                per_node,
                open_file_limit,
                nodes,
                short,
            } => {
                say(format!(
                    "in-process: {nodes} nodes share {open_file_limit} open files: at most {per_node} connections each"
                ));
                if short {
                    say(format!(
                        "warning: {open_file_limit} open files are too few for {nodes} nodes in one process; \
                         raise the limit (ulimit -n) or run fewer nodes, or sockets and files will fail at random"
                    ));
                }
            }
            RunEvent::CheckingContent { nodes } => say(format!(
                "comparing {nodes} nodes' downloads with the original (Ctrl-C to skip)"
            )),
        }
    }
    for group in groups.values() {
        group.finish();
    }
    overall.finish();
}

fn bar(template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::no_length().with_style(style)
}

fn draw_tick(
    multi: &MultiProgress,
    overall: &ProgressBar,
    groups: &mut HashMap<String, ProgressBar>,
    tick: &Tick,
) {
    overall.set_position((tick.progress * 1000.0).round() as u64);
    let done: usize = tick.groups.iter().map(|g| g.done).sum();
    let total: usize = tick.groups.iter().map(|g| g.total).sum();
    overall.set_message(format!(
        "{done}/{total} done, {} running, down {}/s up {}/s, t {:.0}s",
        tick.running,
        HumanBytes(tick.down_rate as u64),
        HumanBytes(tick.up_rate as u64),
        tick.t
    ));
    for g in &tick.groups {
        let group_bar = groups.entry(g.name.clone()).or_insert_with(|| {
            let b = multi.add(bar("{prefix:>12} {bar:40} {percent:>3}% {msg}"));
            b.set_prefix(g.name.clone());
            b.set_length(1000);
            b
        });
        group_bar.set_position((g.progress * 1000.0).round() as u64);
        group_bar.set_message(if g.total == 0 {
            format!("{}, {} running", g.role, g.running)
        } else {
            format!(
                "{} {}/{} done, {} running",
                g.role, g.done, g.total, g.running
            )
        });
    }
}
