//! The processes of a run and what is done to them: the tracker, bootstrap nodes, the groups'
//! nodes joining, polling, leaving, and faults.

use std::path::PathBuf;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

use crate::content::{PreparedContent, link_or_copy, same_content};
use crate::record::{FaultRecord, RunRecord};
use crate::scenario::{FaultAction, Role, Scenario};

use super::faults::{Churn, FaultClock, describe};
use super::inproc::{InProc, InProcSpec};
use super::member::Member;
use super::node::{Node, Phase};
use super::plan::{self, Endpoints, NodePaths, NodePlan, Sources};
use super::process::Proc;
use super::stats::{self, swarm_progress};
use super::{GroupTick, RunError, RunEvent, Tick};

/// How long the tracker and bootstrap nodes get to print their addresses.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one `/stats` poll may take (a paused node never answers).
const POLL_TIMEOUT: Duration = Duration::from_millis(800);

/// Everything running in one run.
#[derive(Debug)]
pub struct Swarm {
    pub scenario: Scenario,
    shoal: PathBuf,
    in_process: bool,
    run_dir: PathBuf,
    pub content: PreparedContent,
    sources: Sources,
    endpoints: Endpoints,
    tracker: Option<Member>,
    tracker_port: u16,
    bootstrap: Vec<Member>,
    pub nodes: Vec<Node>,
    /// Per group, the number the next node gets (churn replacements continue it).
    next_index: Vec<u32>,
    clock: FaultClock,
    churns: Vec<Churn>,
    seeders_one_copy: bool,
    pub faults: Vec<FaultRecord>,
    rng: SmallRng,
    events: UnboundedSender<RunEvent>,
    /// Total bytes down and up at the previous tick, and its time, for rates.
    last_totals: (u64, u64, f64),
}

impl Swarm {
    /// Nothing started yet.
    pub fn new(
        scenario: Scenario,
        options: &super::RunOptions,
        run_dir: PathBuf,
        content: PreparedContent,
        events: UnboundedSender<RunEvent>,
    ) -> Swarm {
        let sources = Sources {
            torrent: content.torrent_path.clone(),
            magnet: content.bare_magnet(),
            content_name: crate::content::CONTENT_NAME.to_owned(),
        };
        let nodes_dir = run_dir.join("nodes");
        let nodes = plan::plan_nodes(&scenario)
            .into_iter()
            .filter_map(|p| {
                let group = scenario.groups.get(p.group)?;
                let paths = NodePaths::new(&nodes_dir, &p.name);
                Some(Node::new(p, group, paths))
            })
            .collect();
        Swarm {
            next_index: scenario.groups.iter().map(|g| g.count).collect(),
            clock: FaultClock::new(scenario.faults.len()),
            rng: SmallRng::seed_from_u64(scenario.seed),
            scenario,
            shoal: options.shoal.clone(),
            in_process: options.in_process,
            run_dir,
            content,
            sources,
            endpoints: Endpoints::default(),
            tracker: None,
            tracker_port: 0,
            bootstrap: Vec::new(),
            nodes,
            churns: Vec::new(),
            seeders_one_copy: false,
            faults: Vec::new(),
            events,
            last_totals: (0, 0, 0.0),
        }
    }

    fn emit(&self, event: RunEvent) {
        let _ = self.events.send(event);
    }

    /// Starts the tracker (if the scenario has one) and the bootstrap nodes, and waits for
    /// their addresses.
    pub async fn start_infrastructure(&mut self) -> Result<(), RunError> {
        if self.scenario.tracker.enabled {
            let url = self.start_tracker().await?;
            self.tracker_port = tracker_port(&url).unwrap_or(0);
            self.endpoints.tracker = Some(url);
        }
        let nodes_dir = self.run_dir.join("nodes");
        for i in 0..self.scenario.dht.bootstrap_nodes {
            let paths = NodePaths::new(&nodes_dir, &plan::node_name("bootstrap", i));
            let member = if self.in_process {
                Member::InProcess(InProc::spawn(InProcSpec {
                    group: None,
                    paths,
                    sources: self.sources.clone(),
                    endpoints: Endpoints::default(),
                    torrent: None,
                }))
            } else {
                let args = plan::bootstrap_args(&paths);
                Member::Process(Proc::spawn(&self.shoal, &args, &paths.root)?)
            };
            self.bootstrap.push(member);
        }
        for (i, proc) in self.bootstrap.iter_mut().enumerate() {
            let name = plan::node_name("bootstrap", i as u32);
            let listen = proc
                .wait_for(STARTUP_TIMEOUT, |l| l.listen.first().cloned())
                .await
                .ok_or_else(|| RunError::Startup {
                    what: format!("bootstrap node {name}"),
                    log: nodes_dir.join(&name).join("stderr.log"),
                })?;
            self.endpoints.bootstrap.push(listen);
        }
        Ok(())
    }

    async fn start_tracker(&mut self) -> Result<String, RunError> {
        let log_dir = self.run_dir.join("tracker");
        let args = plan::tracker_args(self.tracker_port);
        let mut proc = Member::Process(Proc::spawn(&self.shoal, &args, &log_dir)?);
        let url = proc
            .wait_for(STARTUP_TIMEOUT, |l| l.tracker.clone())
            .await
            .ok_or_else(|| RunError::Startup {
                what: "the tracker".to_owned(),
                log: log_dir.join("stderr.log"),
            })?;
        self.tracker = Some(proc);
        Ok(url)
    }

    /// Starts every node whose join time has come.
    pub fn start_due(&mut self, t: Duration) -> Result<(), RunError> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].phase == Phase::Waiting && self.nodes[i].plan.join <= t {
                self.start_node(i)?;
            }
        }
        Ok(())
    }

    fn start_node(&mut self, i: usize) -> Result<(), RunError> {
        let node = &self.nodes[i];
        let Some(group) = self.scenario.groups.get(node.plan.group) else {
            return Ok(());
        };
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| RunError::Io { path, source }
        };
        std::fs::create_dir_all(&node.paths.data_dir).map_err(io(&node.paths.data_dir))?;
        std::fs::create_dir_all(&node.paths.download_dir).map_err(io(&node.paths.download_dir))?;
        if group.role == Role::Seeder {
            let copy = node.paths.download_dir.join(&self.sources.content_name);
            link_or_copy(&self.content.path, &copy)?;
        }
        let proc = if self.in_process {
            Member::InProcess(InProc::spawn(InProcSpec {
                group: Some(group.clone()),
                paths: node.paths.clone(),
                sources: self.sources.clone(),
                endpoints: self.endpoints.clone(),
                torrent: Some(self.content.torrent.clone()),
            }))
        } else {
            let args = plan::node_args(group, &node.paths, &self.sources, &self.endpoints);
            Member::Process(Proc::spawn(&self.shoal, &args, &node.paths.root)?)
        };
        let node = &mut self.nodes[i];
        node.proc = Some(proc);
        node.phase = Phase::Running;
        Ok(())
    }

    /// Polls every running node's `/stats` at once and records what they say.
    pub async fn poll(&mut self, t: Duration) {
        let secs = t.as_secs_f64();
        let mut polls = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if node.phase != Phase::Running {
                continue;
            }
            if node.metrics.is_none() {
                node.metrics = node.proc.as_ref().and_then(Member::metrics);
            }
            if let Some(addr) = node.metrics {
                polls.push(async move { (i, stats::fetch(addr, POLL_TIMEOUT).await) });
            }
        }
        for (i, answer) in futures::future::join_all(polls).await {
            let Some(stats) = answer else { continue };
            if self.nodes[i].observe(stats, secs) {
                let name = self.nodes[i].plan.name.clone();
                self.emit(RunEvent::NodeFinished { name, t: secs });
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].check_exit(t) {
                let name = self.nodes[i].plan.name.clone();
                self.emit(RunEvent::NodeFinished { name, t: secs });
            }
        }
    }

    /// Stops nodes whose leave condition holds (and seeders past one copy, once that fault
    /// fired).
    pub fn leave(&mut self, t: Duration) {
        let size = self.content.size;
        for i in 0..self.nodes.len() {
            let node = &self.nodes[i];
            let one_copy = self.seeders_one_copy
                && node.role == Role::Seeder
                && node.phase == Phase::Running
                && node.record.bytes_up >= size;
            if node.should_leave(t, size) {
                self.nodes[i].leave_now(t);
            } else if one_copy {
                self.nodes[i].kill_now(t);
                let what = format!(
                    "{} stopped after uploading one copy",
                    self.nodes[i].plan.name
                );
                self.record_fault(t, what);
            }
        }
    }

    /// Swarm progress over the nodes that should complete.
    pub fn progress(&self) -> f64 {
        let n = self.content.num_pieces;
        let held: Vec<u32> = self
            .nodes
            .iter()
            .filter(|node| node.record.should_complete)
            .map(|node| node.pieces(n))
            .collect();
        swarm_progress(&held, n)
    }

    fn record_fault(&mut self, t: Duration, what: String) {
        let t = t.as_secs_f64();
        tracing::info!(t, %what, "fault");
        self.emit(RunEvent::FaultFired {
            t,
            what: what.clone(),
        });
        self.faults.push(FaultRecord { t, what });
    }

    /// Fires the faults that are due and carries on churns.
    pub async fn faults(&mut self, t: Duration) -> Result<(), RunError> {
        let progress = self.progress();
        let due = self.clock.due(&self.scenario.faults, t, progress);
        for i in due {
            let Some(fault) = self.scenario.faults.get(i) else {
                continue;
            };
            let action = fault.action.clone();
            self.record_fault(t, describe(&action));
            self.apply(&action, t).await?;
        }
        let mut churns = std::mem::take(&mut self.churns);
        for churn in &mut churns {
            for _ in 0..churn.due(t) {
                self.replace_one(&churn.group, t)?;
            }
        }
        churns.retain(|c| !c.done());
        self.churns = churns;
        Ok(())
    }

    async fn apply(&mut self, action: &FaultAction, t: Duration) -> Result<(), RunError> {
        match action {
            FaultAction::KillTracker => {
                if let Some(tracker) = &mut self.tracker {
                    tracker.kill();
                }
            }
            FaultAction::RestartTracker => {
                if let Some(tracker) = &mut self.tracker {
                    tracker.kill();
                }
                if let Err(e) = self.start_tracker().await {
                    warn!(error = %e, "tracker restart failed");
                    self.record_fault(t, format!("tracker restart failed: {e}"));
                }
            }
            FaultAction::Kill { group, count } => {
                for i in self.pick(group, *count, Phase::Running) {
                    self.nodes[i].kill_now(t);
                }
            }
            FaultAction::Pause { group, count } => {
                for i in self.pick(group, *count, Phase::Running) {
                    if let Some(proc) = &mut self.nodes[i].proc {
                        proc.signal("STOP");
                    }
                    self.nodes[i].phase = Phase::Paused;
                }
            }
            FaultAction::Resume { group } => {
                for i in self.pick(group, None, Phase::Paused) {
                    if let Some(proc) = &mut self.nodes[i].proc {
                        proc.signal("CONT");
                    }
                    self.nodes[i].phase = Phase::Running;
                }
            }
            FaultAction::Churn { .. } => self.churns.extend(Churn::new(action, t)),
            FaultAction::KillSeedersAfterOneCopy => self.seeders_one_copy = true,
        }
        Ok(())
    }

    /// `count` (all if `None`) random nodes of `group` in `phase`.
    fn pick(&mut self, group: &str, count: Option<u32>, phase: Phase) -> Vec<usize> {
        let mut found: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].record.group == group && self.nodes[i].phase == phase)
            .collect();
        found.shuffle(&mut self.rng);
        if let Some(count) = count {
            found.truncate(count as usize);
        }
        found.sort_unstable();
        found
    }

    /// Churn: kills one random running node of `group` and starts a fresh one in its place.
    fn replace_one(&mut self, group: &str, t: Duration) -> Result<(), RunError> {
        let Some(victim) = self.pick(group, Some(1), Phase::Running).first().copied() else {
            return Ok(());
        };
        self.nodes[victim].kill_now(t);
        let g = self.nodes[victim].plan.group;
        let Some(spec) = self.scenario.groups.get(g) else {
            return Ok(());
        };
        let index = self.next_index.get(g).copied().unwrap_or(0);
        if let Some(next) = self.next_index.get_mut(g) {
            *next += 1;
        }
        let name = plan::node_name(group, index);
        let paths = NodePaths::new(&self.run_dir.join("nodes"), &name);
        let plan = NodePlan {
            name: name.clone(),
            group: g,
            join: t,
        };
        self.nodes.push(Node::new(plan, spec, paths));
        let what = format!("churn: {} replaced by {name}", self.nodes[victim].plan.name);
        self.record_fault(t, what);
        self.start_node(self.nodes.len() - 1)
    }

    /// Whether the run is over: every node started, every node that should complete has,
    /// nodes leaving on completion have left, and no churn is under way.
    pub fn settled(&self) -> bool {
        self.churns.is_empty()
            && self.nodes.iter().all(|n| {
                n.phase != Phase::Waiting
                    && n.finished()
                    && !(n.leave == crate::scenario::Leave::OnCompletion
                        && n.phase == Phase::Running
                        && n.role != Role::Seeder)
            })
    }

    /// The nodes that should have completed and have not.
    pub fn unfinished(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.failed())
            .map(|n| n.plan.name.clone())
            .collect()
    }

    /// The live view's figures at `t`.
    pub fn tick(&mut self, t: Duration) -> Tick {
        let secs = t.as_secs_f64();
        let n = self.content.num_pieces.max(1);
        let groups = self
            .scenario
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let members: Vec<&Node> = self.nodes.iter().filter(|x| x.plan.group == g).collect();
                let expected: Vec<&&Node> = members
                    .iter()
                    .filter(|x| x.record.should_complete)
                    .collect();
                let running: Vec<&&Node> = members
                    .iter()
                    .filter(|x| x.phase == Phase::Running)
                    .collect();
                let mean = if running.is_empty() {
                    0.0
                } else {
                    let sum: f64 = running.iter().map(|x| f64::from(x.pieces(n))).sum();
                    sum / (running.len() as f64 * f64::from(n))
                };
                GroupTick {
                    name: group.name.clone(),
                    role: plan::role_name(group.role).to_owned(),
                    done: expected
                        .iter()
                        .filter(|x| x.record.completed_s.is_some())
                        .count(),
                    total: expected.len(),
                    running: running.len(),
                    progress: mean,
                }
            })
            .collect();
        let down: u64 = self.nodes.iter().map(|x| x.record.bytes_down).sum();
        let up: u64 = self.nodes.iter().map(|x| x.record.bytes_up).sum();
        let (last_down, last_up, last_t) = self.last_totals;
        let dt = (secs - last_t).max(1e-3);
        self.last_totals = (down, up, secs);
        Tick {
            t: secs,
            progress: self.progress(),
            groups,
            down_rate: down.saturating_sub(last_down) as f64 / dt,
            up_rate: up.saturating_sub(last_up) as f64 / dt,
            running: self
                .nodes
                .iter()
                .filter(|x| x.phase == Phase::Running)
                .count(),
        }
    }

    /// Stops every process, checks every node's content and returns the record.
    pub fn finish(&mut self, t: Duration, timed_out: bool, started_unix: u64) -> RunRecord {
        for node in &mut self.nodes {
            if let Some(proc) = &mut node.proc {
                proc.kill();
            }
        }
        for proc in &mut self.bootstrap {
            proc.kill();
        }
        if let Some(tracker) = &mut self.tracker {
            tracker.kill();
        }
        for node in &mut self.nodes {
            let copy = node.paths.download_dir.join(&self.sources.content_name);
            node.record.content_ok =
                node.phase != Phase::Waiting && same_content(&self.content.path, &copy);
        }
        RunRecord {
            scenario: self.scenario.name.clone(),
            seed: self.scenario.seed,
            started_unix,
            duration_s: t.as_secs_f64(),
            content_size: self.content.size,
            num_pieces: self.content.num_pieces,
            mode: if self.in_process {
                "in-process"
            } else {
                "processes"
            }
            .to_owned(),
            timed_out,
            nodes: self.nodes.iter().map(|n| n.record.clone()).collect(),
            faults: self.faults.clone(),
        }
    }
}

/// The port of `http://127.0.0.1:PORT/announce`.
fn tracker_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let host_port = rest.split('/').next()?;
    host_port.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tracker_port_from_url() {
        assert_eq!(
            super::tracker_port("http://127.0.0.1:6969/announce"),
            Some(6969)
        );
        assert_eq!(super::tracker_port("udp://x"), None);
    }
}
