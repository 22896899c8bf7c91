//! A worker process: it holds some of the network's nodes and does what the parent asks,
//! one request per stdin line, each answered on one stdout line (see `cluster.rs`). Requests
//! run concurrently; only `shutdown` is served alone, and ends the process.
//!
//! Verbs:
//! - `start FIRST END BOOTSTRAP|-`: starts nodes FIRST..END (global indices), joined through
//!   BOOTSTRAP; answers `node=I,ADDR` for each, ADDR ending in `/p2p/<peer id>`;
//! - `status`: `rss= rss0= fds= cpu= routing=R,R,.. connections=C,C,..` (KiB, clock ticks;
//!   `rss0` is the process before its first node; lists in node order);
//! - `provide I K HEX`: node I seeds torrent K (`seedK/` under the run's directory, which the
//!   parent wrote), whose info-hash must be HEX;
//! - `lookup I HEX PEER`: node I looks up HEX's providers; answers as `lookups::Lookup`;
//! - `stored HEX`: `held=I,I,..`, this worker's nodes whose DHT store holds a provider record
//!   for HEX;
//! - `shutdown`: stops every node, answers `nodes= seconds= finished=0|1 hwm=`, and exits.
//!
//! A worker whose stdin closes (the parent died) stops its nodes and exits too.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use shoal_metainfo::InfoHash;
use shoal_node::{AddTorrent, Multiaddr, NodeConfig, NodeHandle, PeerId, TorrentHandle};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::args::Args;
use crate::lookups::{load_content, lookup};
use crate::system::{cpu_ticks, open_fds, proc_status_kib};

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// The nodes this process holds, by global index, and the torrents they seed.
struct Nodes {
    args: Args,
    root: PathBuf,
    rss_before: Option<u64>,
    nodes: Mutex<BTreeMap<usize, NodeHandle>>,
    seeds: Mutex<Vec<TorrentHandle>>,
}

/// Runs worker `index` until the parent says `shutdown` or goes away; the exit code.
pub fn run(args: Args, index: usize) -> i32 {
    let Some(root) = args.root.clone() else {
        eprintln!("worker {index}: --root missing");
        return 2;
    };
    // Two threads: the parent's cores are shared by all the workers.
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(2))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let nodes = Arc::new(Nodes {
        args,
        root,
        rss_before: proc_status_kib("VmRSS:"),
        nodes: Mutex::new(BTreeMap::new()),
        seeds: Mutex::new(Vec::new()),
    });
    let span = tracing::info_span!("worker", index);
    runtime.block_on(tracing::Instrument::instrument(serve(nodes), span));
    runtime.shutdown_timeout(Duration::from_secs(5));
    0
}

async fn serve(nodes: Arc<Nodes>) {
    let (replies, outbox) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(write_replies(outbox));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stopped = false;
    while let Ok(Some(line)) = lines.next_line().await {
        let (id, request) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        if request == "shutdown" {
            let _ = replies.send(format!("{id} {}", shut_down(&nodes).await));
            stopped = true;
            break;
        }
        let (nodes, replies) = (nodes.clone(), replies.clone());
        let (id, request) = (id.to_owned(), request.to_owned());
        tokio::spawn(async move {
            let reply = match handle(&nodes, &request).await {
                Ok(fields) => format!("ok {fields}"),
                Err(e) => format!("err {e}"),
            };
            let _ = replies.send(format!("{id} {reply}"));
        });
    }
    if !stopped {
        shut_down(&nodes).await;
    }
    drop(replies);
    let _ = writer.await;
}

/// The only writer of stdout: one reply per line.
async fn write_replies(mut outbox: mpsc::UnboundedReceiver<String>) {
    let mut stdout = tokio::io::stdout();
    while let Some(line) = outbox.recv().await {
        let written = stdout.write_all(format!("{line}\n").as_bytes()).await;
        if written.is_err() || stdout.flush().await.is_err() {
            break;
        }
    }
}

async fn handle(nodes: &Nodes, request: &str) -> Result<String, String> {
    let words: Vec<&str> = request.split_whitespace().collect();
    let number = |i: usize| -> Result<usize, String> {
        let word = words.get(i).ok_or("missing argument")?;
        word.parse().map_err(|_| format!("not a number: {word}"))
    };
    match words.first().copied() {
        Some("start") => {
            let bootstrap = words.get(3).and_then(|a| Multiaddr::from_str(a).ok());
            start(nodes, number(1)?..number(2)?, bootstrap).await
        }
        Some("status") => Ok(status(nodes).await),
        Some("provide") => provide(nodes, number(1)?, number(2)?, words.get(3)).await,
        Some("lookup") => {
            let node = nodes.get(number(1)?)?;
            let info_hash = parse::<InfoHash>(words.get(2))?;
            let expected = parse::<PeerId>(words.get(3))?;
            Ok(lookup(node, info_hash, expected).await.to_fields())
        }
        Some("stored") => stored(nodes, parse::<InfoHash>(words.get(1))?).await,
        _ => Err(format!("unknown request {request:?}")),
    }
}

fn parse<T: FromStr>(word: Option<&&str>) -> Result<T, String> {
    let word = word.ok_or("missing argument")?;
    word.parse().map_err(|_| format!("cannot parse {word}"))
}

impl Nodes {
    fn get(&self, index: usize) -> Result<NodeHandle, String> {
        let nodes = self.nodes.lock().expect("nodes");
        nodes
            .get(&index)
            .cloned()
            .ok_or_else(|| format!("node {index} is not here"))
    }

    fn all(&self) -> Vec<NodeHandle> {
        self.nodes
            .lock()
            .expect("nodes")
            .values()
            .cloned()
            .collect()
    }
}

async fn start(
    nodes: &Nodes,
    range: std::ops::Range<usize>,
    bootstrap: Option<Multiaddr>,
) -> Result<String, String> {
    let started = join_all(range.map(|i| {
        let mut config = NodeConfig::loopback(nodes.root.join(format!("n{i}")));
        if let Some(max) = nodes.args.max_connections {
            config.max_connections = max;
        }
        if let Some(idle) = nodes.args.idle_timeout {
            config.idle_connection_timeout = idle;
        }
        config.dht.bootstrap.extend(bootstrap.clone());
        async move { (i, shoal_node::start(config).await) }
    }))
    .await;
    let mut fields = Vec::new();
    for (i, node) in started {
        let node = node.map_err(|e| format!("node {i} did not start: {e}"))?;
        fields.push(format!("node={i},{}", node.listen_addrs()[0]));
        nodes.nodes.lock().expect("nodes").insert(i, node);
    }
    Ok(fields.join(" "))
}

async fn status(nodes: &Nodes) -> String {
    let all = nodes.all();
    let routing = join_all(all.iter().map(|n| n.dht_stats())).await;
    let connections = join_all(all.iter().map(|n| n.connected_peers())).await;
    let list = |counts: Vec<usize>| {
        counts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let or_dash = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    format!(
        "rss={} rss0={} fds={} cpu={} routing={} connections={}",
        or_dash(proc_status_kib("VmRSS:")),
        or_dash(nodes.rss_before),
        or_dash(open_fds().map(|f| f as u64)),
        or_dash(cpu_ticks()),
        list(
            routing
                .into_iter()
                .map(|s| s.map_or(0, |s| s.routing_peers))
                .collect()
        ),
        list(
            connections
                .into_iter()
                .map(|c| c.map_or(0, |c| c.len()))
                .collect()
        ),
    )
}

async fn provide(
    nodes: &Nodes,
    index: usize,
    k: usize,
    hex: Option<&&str>,
) -> Result<String, String> {
    let node = nodes.get(index)?;
    let expected = parse::<InfoHash>(hex)?;
    let (torrent, dir) = load_content(&nodes.root, k)?;
    if torrent.info_hash != expected {
        return Err(format!("torrent {k} has info-hash {}", torrent.info_hash));
    }
    let handle = node
        .add_torrent(AddTorrent::new(torrent, dir))
        .await
        .map_err(|e| format!("node {index} cannot add torrent {k}: {e}"))?;
    if !handle.progress().borrow().complete {
        return Err(format!("node {index} does not have all of torrent {k}"));
    }
    nodes.seeds.lock().expect("seeds").push(handle);
    Ok(String::new())
}

async fn stored(nodes: &Nodes, info_hash: InfoHash) -> Result<String, String> {
    let all: Vec<(usize, NodeHandle)> = nodes
        .nodes
        .lock()
        .expect("nodes")
        .iter()
        .map(|(&i, n)| (i, n.clone()))
        .collect();
    let stored = join_all(all.iter().map(|(_, n)| n.stored_providers(info_hash))).await;
    let held: Vec<String> = all
        .iter()
        .zip(stored)
        .filter(|(_, providers)| providers.as_ref().is_ok_and(|p| !p.is_empty()))
        .map(|((i, _), _)| i.to_string())
        .collect();
    Ok(format!("held={}", held.join(",")))
}

async fn shut_down(nodes: &Nodes) -> String {
    nodes.seeds.lock().expect("seeds").clear();
    let all: Vec<NodeHandle> = std::mem::take(&mut *nodes.nodes.lock().expect("nodes"))
        .into_values()
        .collect();
    let down = Instant::now();
    let finished = tokio::time::timeout(
        SHUTDOWN_TIMEOUT,
        join_all(all.iter().map(NodeHandle::shutdown)),
    )
    .await
    .is_ok();
    format!(
        "ok nodes={} seconds={:.2} finished={} hwm={}",
        all.len(),
        down.elapsed().as_secs_f64(),
        u8::from(finished),
        proc_status_kib("VmHWM:").unwrap_or(0)
    )
}
