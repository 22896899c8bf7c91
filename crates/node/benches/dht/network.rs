//! The network under test: starting the nodes, waiting for the DHT to form, measuring it idle,
//! and stopping it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use shoal_node::{Multiaddr, NodeConfig, NodeHandle};

use crate::args::Args;
use crate::report::{Summary, say};
use crate::system::{cpu_ticks, open_fds, proc_status_kib};

/// How long the routing tables may take to fill.
const FORM_TIMEOUT: Duration = Duration::from_secs(180);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// What every step shares: the options, the clock, where nodes keep their data, the figures
/// so far, and the nodes running (for a best-effort shutdown after a timeout).
pub struct Bench {
    pub args: Args,
    pub t0: Instant,
    pub root: PathBuf,
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

    /// Starts node `name`, joined through `bootstrap` if given.
    pub async fn start_node(&self, name: &str, bootstrap: Option<Multiaddr>) -> NodeHandle {
        let mut config = NodeConfig::loopback(self.root.join(name));
        if let Some(max) = self.args.max_connections {
            config.max_connections = max;
        }
        if let Some(idle) = self.args.idle_timeout {
            config.idle_connection_timeout = idle;
        }
        if let Some(address) = bootstrap {
            config.dht.bootstrap = vec![address];
        }
        let node = shoal_node::start(config)
            .await
            .unwrap_or_else(|e| panic!("node {name} did not start: {e}"));
        self.live.lock().expect("live nodes").push(node.clone());
        node
    }

    async fn start_node_numbered(&self, i: usize, bootstrap: Multiaddr) -> NodeHandle {
        self.start_node(&format!("n{i}"), Some(bootstrap)).await
    }
}

/// Step 1: node 0 is the bootstrap node, the others join through it (started in batches),
/// until every routing table holds `--min-routing` peers.
pub async fn form(bench: &Bench) -> Vec<NodeHandle> {
    let n = bench.args.nodes;
    let bootstrap = bench.start_node("n0", None).await;
    let address = bootstrap.listen_addrs()[0].clone();
    let mut nodes = vec![bootstrap];
    let started = Instant::now();
    while nodes.len() < n {
        let batch = (nodes.len()..(nodes.len() + bench.args.batch).min(n))
            .map(|i| bench.start_node_numbered(i, address.clone()));
        nodes.extend(join_all(batch).await);
    }
    bench.say(format!(
        "started {n} nodes in {:.2}s (batches of {})",
        started.elapsed().as_secs_f64(),
        bench.args.batch
    ));
    let formed = wait_formed(bench, &nodes, started).await;
    bench.record(|s| {
        s.formed = formed;
        if !formed {
            s.timed_out = Some("form".into());
        }
    });
    nodes
}

async fn wait_formed(bench: &Bench, nodes: &[NodeHandle], started: Instant) -> bool {
    let min = bench.args.min_routing;
    let mut last_report = Instant::now();
    loop {
        let sizes = routing_sizes(nodes).await;
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
                "forming: {thin}/{} nodes below {min} routing peers ({}); open fds {}",
                nodes.len(),
                spread(&sizes),
                open_fds().map_or("?".into(), |f| f.to_string()),
            ));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Step 2: memory per idle DHT node, before any torrent: the growth of the process's RSS since
/// `rss_before` (taken before the first node started), divided by the node count, after the
/// nodes sat idle for `--settle-s`.
pub async fn measure_idle(bench: &Bench, nodes: &[NodeHandle], rss_before: Option<u64>) {
    let (cpu_before, idle_start) = (cpu_ticks(), Instant::now());
    tokio::time::sleep(bench.args.settle).await;
    let idle_cpu = match (cpu_before, cpu_ticks()) {
        (Some(b), Some(a)) => a.saturating_sub(b) as f64 / idle_start.elapsed().as_secs_f64(),
        _ => f64::NAN,
    };
    let rss_after = proc_status_kib("VmRSS:");
    let per_node = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / nodes.len() as f64),
        _ => None,
    };
    bench.record(|s| s.rss_per_node_kib = per_node);
    let connections: Vec<usize> = join_all(nodes.iter().map(|n| n.connected_peers()))
        .await
        .into_iter()
        .map(|c| c.map_or(0, |c| c.len()))
        .collect();
    bench.say(format!(
        "after {:?} idle: VmRSS {} -> {} KiB ({} KiB/node), routing {}, connections {}, \
         CPU while idle {idle_cpu:.0}% of one core",
        bench.args.settle,
        rss_before.unwrap_or(0),
        rss_after.unwrap_or(0),
        per_node.map_or("-".into(), |k| format!("{k:.0}")),
        spread(&routing_sizes(nodes).await),
        spread(&connections),
    ));
}

/// Step 5: stops every node started.
pub async fn shut_down(bench: &Bench) {
    let nodes: Vec<NodeHandle> = std::mem::take(&mut *bench.live.lock().expect("live nodes"));
    let down = Instant::now();
    let all = join_all(nodes.iter().map(|n| n.shutdown()));
    let finished = tokio::time::timeout(SHUTDOWN_TIMEOUT, all).await.is_ok();
    if !finished {
        bench.record(|s| s.timed_out = Some("shutdown".into()));
    }
    bench.say(format!(
        "shut down {} nodes in {:.2}s{}; VmHWM {} KiB",
        nodes.len(),
        down.elapsed().as_secs_f64(),
        if finished { "" } else { " (TIMED OUT)" },
        proc_status_kib("VmHWM:").unwrap_or(0)
    ));
}

/// Every node's routing-table size.
pub async fn routing_sizes(nodes: &[NodeHandle]) -> Vec<usize> {
    join_all(nodes.iter().map(|n| n.dht_stats()))
        .await
        .into_iter()
        .map(|s| s.map_or(0, |s| s.routing_peers))
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
