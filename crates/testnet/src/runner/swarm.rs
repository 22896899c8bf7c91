//! The processes of a run and what is done to them: the tracker, bootstrap nodes, the groups'
//! nodes joining and polling here; leaving and faults in `apply`; the end in `finish`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::mpsc::UnboundedSender;

use crate::content::{PreparedContent, link_or_copy};
use crate::record::FaultRecord;
use crate::scenario::{Role, Scenario};

use super::faults::{Churn, FaultClock};
use super::inproc::{InProc, InProcSpec};
use super::member::Member;
use super::node::{Node, Phase, Poll};
use super::plan::{self, Endpoints, NodePaths, Sources};
use super::process::Proc;
use super::stats;
use super::{End, GroupTick, RunError, RunEvent, Tick};

mod apply;
mod finish;
#[cfg(test)]
mod tests;

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
    /// Each in-process node's connection cap (see `fd_budget`).
    max_connections: Option<u32>,
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
    /// The start of the run clock: nodes' join and completion times count from here.
    epoch: Instant,
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
            max_connections: None,
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
            epoch: Instant::now(),
        }
    }

    /// Starts the run clock (once the tracker and bootstrap nodes are up).
    pub fn start_clock(&mut self) {
        self.epoch = Instant::now();
    }

    /// Time on the run clock.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// One tick at `now()`: start the nodes due, poll them all, let them leave, fire faults,
    /// report. Returns when and why the run is over, if it is.
    pub async fn step(&mut self) -> Result<Option<(Duration, End)>, RunError> {
        let t = self.now();
        self.start_due(t)?;
        self.poll(t).await;
        self.leave(t);
        self.faults(t).await?;
        let tick = self.tick(t);
        self.emit(RunEvent::Tick(tick));
        if self.settled() {
            return Ok(Some((t, End::Settled)));
        }
        if t >= self.scenario.timeout {
            return Ok(Some((t, End::TimedOut)));
        }
        Ok(None)
    }

    fn emit(&self, event: RunEvent) {
        let _ = self.events.send(event);
    }

    /// In-process runs: shares the open-file limit out between the nodes that are alive at
    /// once (bootstrap nodes and every group's nodes; churn replaces nodes it ended) and
    /// announces the cap when it is below a node's default.
    fn budget_connections(&mut self) {
        if !self.in_process {
            return;
        }
        let Some(limit) = super::fd_budget::open_file_limit() else {
            return;
        };
        let nodes = u64::from(self.scenario.dht.bootstrap_nodes)
            + self
                .scenario
                .groups
                .iter()
                .map(|g| u64::from(g.count))
                .sum::<u64>();
        let default_cap = shoal_node::NodeConfig::loopback(PathBuf::new()).max_connections;
        let files = u64::from(self.scenario.content.files);
        let budget = super::fd_budget::connections_per_node(limit, nodes, files, default_cap);
        if budget.per_node < default_cap {
            self.max_connections = Some(budget.per_node);
            self.emit(RunEvent::ConnectionCap {
                per_node: budget.per_node,
                open_file_limit: limit,
                nodes,
                short: budget.short,
            });
        }
    }

    /// Starts the tracker (if the scenario has one) and the bootstrap nodes, and waits for
    /// their addresses.
    pub async fn start_infrastructure(&mut self) -> Result<(), RunError> {
        self.budget_connections();
        if self.scenario.tracker.enabled {
            let url = self.start_tracker().await?;
            self.tracker_port = tracker_port(&url).unwrap_or(0);
            self.endpoints.tracker = Some(url);
        }
        let nodes_dir = self.run_dir.join("nodes");
        for i in 0..self.scenario.dht.bootstrap_nodes {
            let paths = NodePaths::new(
                &nodes_dir,
                &plan::node_name(crate::scenario::BOOTSTRAP_NAME, i),
            );
            let member = if self.in_process {
                Member::InProcess(InProc::spawn(InProcSpec {
                    group: None,
                    paths,
                    sources: self.sources.clone(),
                    endpoints: Endpoints::default(),
                    torrent: None,
                    max_connections: self.max_connections,
                }))
            } else {
                let args = plan::bootstrap_args(&paths);
                Member::Process(Proc::spawn(&self.shoal, &args, &paths.root)?)
            };
            self.bootstrap.push(member);
        }
        for (i, proc) in self.bootstrap.iter_mut().enumerate() {
            let name = plan::node_name(crate::scenario::BOOTSTRAP_NAME, i as u32);
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
                max_connections: self.max_connections,
            }))
        } else {
            let args = plan::node_args(group, &node.paths, &self.sources, &self.endpoints);
            Member::Process(Proc::spawn(&self.shoal, &args, &node.paths.root)?)
        };
        let at = self.now();
        self.nodes[i].launched(proc, at);
        Ok(())
    }

    /// Polls every running node's `/stats` at once and records what they say.
    pub async fn poll(&mut self, t: Duration) {
        let secs = t.as_secs_f64();
        let epoch = self.epoch;
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
        let answers = futures::future::join_all(polls).await;
        let answered = self.now().as_secs_f64();
        for (i, answer) in answers {
            let Some(stats) = answer else { continue };
            let node = &mut self.nodes[i];
            let added = node.proc.as_ref().and_then(|p| p.lines().added_at);
            let poll = Poll {
                sent: secs,
                answered,
                added: added.map(|a| a.saturating_duration_since(epoch).as_secs_f64()),
            };
            if node.observe(stats, poll) {
                self.finished(i);
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].check_exit(t, epoch) {
                self.finished(i);
            }
        }
    }

    fn finished(&self, i: usize) {
        if let Some(node) = self.nodes.get(i) {
            self.emit(RunEvent::NodeFinished {
                name: node.plan.name.clone(),
                t: node.record.completed_s.unwrap_or_default(),
            });
        }
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
}

/// The port of `http://127.0.0.1:PORT/announce`.
fn tracker_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let host_port = rest.split('/').next()?;
    host_port.rsplit(':').next()?.parse().ok()
}
