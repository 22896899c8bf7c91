//! The network under test: starting the nodes in the worker processes, waiting for the DHT to
//! form, measuring it idle, and stopping it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use shoal_node::{Multiaddr, NodeConfig, NodeHandle, PeerId};

use crate::args::Args;
use crate::cluster::{Cluster, Reply};
use crate::report::{Summary, say};
use crate::system::proc_status_kib;

/// How long the routing tables may take to fill.
const FORM_TIMEOUT: Duration = Duration::from_secs(180);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// The network is quiet once all its nodes together use less than this share of one core.
const QUIET_CPU_PCT: f64 = 20.0;
/// How often the CPU use is sampled while waiting for quiet.
const QUIET_WINDOW: Duration = Duration::from_secs(5);

/// What every step shares: the options, the clock, the worker processes and the addresses of
/// their nodes, where nodes keep their data, the figures so far, and the parent's own nodes
/// (the magnet fetchers).
pub struct Bench {
    pub args: Args,
    pub t0: Instant,
    pub root: PathBuf,
    pub cluster: Cluster,
    /// Node `i`'s address, ending in `/p2p/<peer id>`, once started.
    pub addresses: Mutex<Vec<Multiaddr>>,
    pub summary: Arc<Mutex<Summary>>,
    pub live: Arc<Mutex<Vec<NodeHandle>>>,
}

impl Bench {
    pub fn say(&self, text: impl std::fmt::Display) {
        say(self.t0, text);
    }

    pub fn record(&self, update: impl FnOnce(&mut Summary)) {
        update(&mut self.summary.lock().expect("summary"));
    }

    pub fn step(&self, name: &str) {
        self.record(|s| s.step = name.to_owned());
    }

    /// Node `i`'s address (with its peer id).
    pub fn address(&self, i: usize) -> Multiaddr {
        self.addresses.lock().expect("addresses")[i].clone()
    }

    pub fn peer(&self, i: usize) -> PeerId {
        match self.address(i).iter().last() {
            Some(libp2p::multiaddr::Protocol::P2p(peer)) => peer,
            _ => panic!("node {i}'s address has no peer id"),
        }
    }

    /// Starts a node in this (the parent) process, joined through `bootstrap`.
    pub async fn start_node(&self, name: &str, bootstrap: Multiaddr) -> NodeHandle {
        let mut config = NodeConfig::loopback(self.root.join(name));
        if let Some(idle) = self.args.idle_timeout {
            config.idle_connection_timeout = idle;
        }
        config.dht.bootstrap = vec![bootstrap];
        let node = shoal_node::start(config)
            .await
            .unwrap_or_else(|e| panic!("node {name} did not start: {e}"));
        self.live.lock().expect("live nodes").push(node.clone());
        node
    }

    /// Starts nodes `range` in their workers (a range may span several), joined through
    /// `bootstrap`, and records their addresses.
    async fn start_nodes(&self, range: std::ops::Range<usize>, bootstrap: Option<&Multiaddr>) {
        let per = self.cluster.per_worker;
        let mut parts = Vec::new();
        let mut first = range.start;
        while first < range.end {
            let end = range.end.min((first / per + 1) * per);
            parts.push(first..end);
            first = end;
        }
        let joined = bootstrap.map_or("-".to_owned(), ToString::to_string);
        let replies = join_all(parts.iter().map(|part| {
            let request = format!("start {} {} {joined}", part.start, part.end);
            self.cluster.worker_of(part.start).call(request)
        }))
        .await;
        for reply in replies {
            let reply = reply.unwrap_or_else(|e| panic!("starting nodes: {e}"));
            let mut addresses = self.addresses.lock().expect("addresses");
            for node in reply.all("node") {
                let (i, address) = node.split_once(',').expect("node=I,ADDR");
                let i: usize = i.parse().expect("node index");
                if addresses.len() <= i {
                    addresses.resize(i + 1, Multiaddr::empty());
                }
                addresses[i] = address.parse().expect("node address");
            }
        }
    }

    /// Every worker's status, in worker order.
    pub async fn statuses(&self) -> Vec<Reply> {
        self.cluster
            .broadcast("status")
            .await
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("status: {e}")))
            .collect()
    }
}

/// Step 1: node 0 is the bootstrap node, the others join through it (started in batches),
/// until every routing table holds `--min-routing` peers.
pub async fn form(bench: &Bench) {
    let n = bench.args.nodes;
    bench.start_nodes(0..1, None).await;
    let bootstrap = bench.address(0);
    let started = Instant::now();
    let mut next = 1;
    while next < n {
        let end = (next + bench.args.batch).min(n);
        bench.start_nodes(next..end, Some(&bootstrap)).await;
        next = end;
    }
    bench.say(format!(
        "started {n} nodes in {} processes in {:.2}s (batches of {})",
        bench.cluster.workers.len(),
        started.elapsed().as_secs_f64(),
        bench.args.batch
    ));
    let formed = wait_formed(bench, started).await;
    bench.record(|s| {
        s.formed = formed;
        if !formed {
            s.timed_out = Some("form".into());
        }
    });
}

async fn wait_formed(bench: &Bench, started: Instant) -> bool {
    let min = bench.args.min_routing;
    let mut last_report = Instant::now();
    loop {
        let statuses = bench.statuses().await;
        let sizes = all_counts(&statuses, "routing");
        let thin = sizes.iter().filter(|&&s| s < min).count();
        if thin == 0 {
            bench.say(format!(
                "formed: every routing table >= {min} peers after {:.2}s ({})",
                started.elapsed().as_secs_f64(),
                spread(&sizes)
            ));
            return true;
        }
        if started.elapsed() > FORM_TIMEOUT {
            bench.say(format!(
                "FORMING TIMED OUT after {FORM_TIMEOUT:?}: {thin} nodes below {min} routing \
                 peers ({})",
                spread(&sizes)
            ));
            return false;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            bench.say(format!(
                "forming: {thin}/{} nodes below {min} routing peers ({}); open fds per \
                 process {}",
                sizes.len(),
                spread(&sizes),
                spread(&field(&statuses, "fds")),
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Step 1b: waits until the joining traffic is over (the workers' CPU below
/// `QUIET_CPU_PCT` % of one core over `QUIET_WINDOW`), at most `--quiet-timeout-s`. Every
/// joining node bootstraps (a lookup of its own id, then one per bucket), which on 200 nodes
/// that joined at once reaches nearly every other node: a full mesh of connections for a few
/// minutes, until the queries end and the connections sit idle past their timeout. A network
/// in use is past that; the figures are taken there.
pub async fn wait_quiet(bench: &Bench) {
    let limit = bench.args.quiet_timeout;
    if limit.is_zero() {
        return;
    }
    let started = Instant::now();
    let ticks = |s: &[Reply]| field(s, "cpu").iter().sum::<usize>();
    let mut before = ticks(&bench.statuses().await);
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(QUIET_WINDOW).await;
        let statuses = bench.statuses().await;
        let now = ticks(&statuses);
        // Clock ticks are 1/100 s: ticks per second is the percentage of one core.
        let cpu = now.saturating_sub(before) as f64 / QUIET_WINDOW.as_secs_f64();
        before = now;
        let state = format!(
            "CPU {cpu:.0}% of one core (all workers), connections {}",
            spread(&all_counts(&statuses, "connections"))
        );
        if cpu < QUIET_CPU_PCT {
            let waited = started.elapsed().as_secs_f64();
            bench.say(format!("quiet after {waited:.0}s more: {state}"));
            return;
        }
        if started.elapsed() > limit {
            bench.say(format!(
                "NOT QUIET after {limit:?} (measuring anyway): {state}"
            ));
            return;
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            bench.say(format!("joining traffic: {state}"));
            last_report = Instant::now();
        }
    }
}

/// Step 2: memory per idle DHT node, before any torrent: the growth of each worker's RSS since
/// before its first node started, summed over the workers and divided by the node count,
/// after the nodes sat idle for `--settle-s`.
pub async fn measure_idle(bench: &Bench) {
    let (before, idle_start) = (bench.statuses().await, Instant::now());
    tokio::time::sleep(bench.args.settle).await;
    let after = bench.statuses().await;
    let ticks = |s: &[Reply]| field(s, "cpu").iter().sum::<usize>();
    let idle_cpu =
        ticks(&after).saturating_sub(ticks(&before)) as f64 / idle_start.elapsed().as_secs_f64();
    let growth: Vec<usize> = after
        .iter()
        .map(|s| {
            let kib = |key| s.num(key).unwrap_or(0.0) as usize;
            kib("rss").saturating_sub(kib("rss0"))
        })
        .collect();
    let per_node = growth.iter().sum::<usize>() as f64 / bench.args.nodes as f64;
    bench.record(|s| s.rss_per_node_kib = Some(per_node));
    bench.say(format!(
        "after {:?} idle: RSS growth per process {} KiB, {per_node:.0} KiB/node; routing {}, \
         connections {}, open fds per process {}, CPU while idle {idle_cpu:.0}% of one core \
         (all workers)",
        bench.args.settle,
        spread(&growth),
        spread(&all_counts(&after, "routing")),
        spread(&all_counts(&after, "connections")),
        spread(&field(&after, "fds")),
    ));
}

/// Step 5: stops the parent's nodes, then every worker (which stops its nodes and exits).
pub async fn shut_down(bench: &Bench) {
    let nodes: Vec<NodeHandle> = std::mem::take(&mut *bench.live.lock().expect("live nodes"));
    let down = Instant::now();
    let all = join_all(nodes.iter().map(|n| n.shutdown()));
    let mut finished = tokio::time::timeout(SHUTDOWN_TIMEOUT, all).await.is_ok();
    let replies = bench.cluster.broadcast("shutdown").await;
    let mut stopped = 0;
    let mut hwm = Vec::new();
    for reply in &replies {
        match reply {
            Ok(r) => {
                stopped += r.num("nodes").unwrap_or(0.0) as usize;
                finished &= r.get("finished") == Some("1");
                hwm.push(r.num("hwm").unwrap_or(0.0) as usize);
            }
            Err(e) => {
                finished = false;
                bench.say(format!("SHUTDOWN: {e}"));
            }
        }
    }
    bench.cluster.reap(Duration::from_secs(10)).await;
    if !finished {
        bench.record(|s| s.timed_out = Some("shutdown".into()));
    }
    bench.say(format!(
        "shut down {} nodes in {:.2}s{}; VmHWM per worker {} KiB, parent {} KiB",
        stopped + nodes.len(),
        down.elapsed().as_secs_f64(),
        if finished { "" } else { " (TIMED OUT)" },
        spread(&hwm),
        proc_status_kib("VmHWM:").unwrap_or(0)
    ));
}

/// A list field of every worker's status, concatenated (node order, since workers hold
/// consecutive nodes).
fn all_counts(statuses: &[Reply], key: &str) -> Vec<usize> {
    statuses.iter().flat_map(|s| s.counts(key)).collect()
}

/// A numeric field of every worker's status.
fn field(statuses: &[Reply], key: &str) -> Vec<usize> {
    statuses
        .iter()
        .map(|s| s.num(key).unwrap_or(0.0) as usize)
        .collect()
}

/// `min=.. p50=.. max=..` of some counts.
pub fn spread(values: &[usize]) -> String {
    let mut v = values.to_vec();
    v.sort_unstable();
    match (v.first(), v.last()) {
        (Some(min), Some(max)) => format!("min={min} p50={} max={max}", v[v.len() / 2]),
        _ => "empty".into(),
    }
}
