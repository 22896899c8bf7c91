//! The DHT at scale: a few hundred real nodes in one process on 127.0.0.1.
//!
//! Measures, in order:
//! 1. forming: node 0 is the bootstrap, the others join through it (started in batches), until
//!    every routing table holds `--min-routing` peers;
//! 2. memory per idle DHT node: VmRSS growth divided by the node count, after a few idle
//!    seconds and before any torrent is added;
//! 3. provider lookups from random non-provider nodes: time from `find_providers` to the first
//!    provider (connected, so ready to fetch from), and whether the expected one arrived;
//! 4. magnet links (info-hash only, no peers) from nodes that made no lookup: time to verified
//!    metadata, to the first verified piece and to completion.
//!
//! Targets (loopback): every lookup succeeds, p99 lookup < 500 ms, magnet to first verified
//! piece < 1 s. The last line is a one-line summary ending in `status=OK|FAIL`; FAIL means a
//! lookup or magnet failed or a step timed out (missed latency targets are listed in
//! `missed=`).
//!
//! ```text
//! cargo bench -p shoal-node --bench dht                    # 200 nodes
//! cargo bench -p shoal-node --bench dht -- --nodes 50
//! RUST_LOG=shoal_node=debug cargo bench -p shoal-node --bench dht -- --nodes 50
//! ```
//!
//! Options: `--nodes N` (200), `--batch N` (20), `--min-routing N` (10), `--providers N` (5),
//! `--lookups N` (200), `--concurrency N` (10), `--magnets N` (10), `--magnet-concurrency N`
//! (1), `--settle-s S` (5), `--announce-s S` (2), `--timeout-s S` (300), `--seed N`.
//! Unknown arguments (cargo passes `--bench`) are ignored. Each node and connection costs file
//! descriptors (both ends of every loopback connection live in this process): with 200 nodes,
//! run under `ulimit -n 65536` if the limit printed at the start is low.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;
use shoal_metainfo::{CreateOptions, Magnet, Torrent, create_torrent};
use shoal_node::{AddMagnet, AddTorrent, NodeConfig, NodeHandle, PeerId, TorrentHandle};

const CONTENT_LEN: usize = 256 * 1024;
const PIECE_LENGTH: u64 = 16 * 1024;
/// How long the routing tables may take to fill.
const FORM_TIMEOUT: Duration = Duration::from_secs(180);
/// One lookup: the node's query timeout is 30 s, plus the dials to the providers.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(45);
/// One magnet fetch, metadata to completion.
const MAGNET_TIMEOUT: Duration = Duration::from_secs(60);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Args {
    nodes: usize,
    batch: usize,
    min_routing: usize,
    providers: usize,
    lookups: usize,
    concurrency: usize,
    magnets: usize,
    magnet_concurrency: usize,
    settle: Duration,
    announce: Duration,
    timeout: Duration,
    seed: u64,
    /// Per-node connection cap (`NodeConfig::max_connections`); `None`: fit the fd limit.
    max_connections: Option<u32>,
    /// `NodeConfig::idle_connection_timeout`; `None`: the node's default.
    idle_timeout: Option<Duration>,
}

impl Args {
    fn parse() -> Self {
        let mut args = Self {
            nodes: 200,
            batch: 20,
            min_routing: 10,
            providers: 5,
            lookups: 200,
            concurrency: 10,
            magnets: 10,
            magnet_concurrency: 1,
            settle: Duration::from_secs(5),
            announce: Duration::from_secs(2),
            timeout: Duration::from_secs(300),
            seed: 0x5eed_0d47,
            max_connections: None,
            idle_timeout: None,
        };
        let all: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < all.len() {
            let (flag, inline) = match all[i].split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (all[i].clone(), None),
            };
            let known = matches!(
                flag.as_str(),
                "--nodes"
                    | "--batch"
                    | "--min-routing"
                    | "--providers"
                    | "--lookups"
                    | "--concurrency"
                    | "--magnets"
                    | "--magnet-concurrency"
                    | "--settle-s"
                    | "--announce-s"
                    | "--timeout-s"
                    | "--seed"
                    | "--max-connections"
                    | "--idle-timeout-s"
            );
            if !known {
                i += 1;
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    all.get(i).cloned().unwrap_or_default()
                }
            };
            i += 1;
            let Ok(n) = value.parse::<u64>() else {
                eprintln!("ignoring {flag} {value:?}: not a number");
                continue;
            };
            let count = usize::try_from(n).unwrap_or(usize::MAX);
            match flag.as_str() {
                "--nodes" => args.nodes = count,
                "--batch" => args.batch = count.max(1),
                "--min-routing" => args.min_routing = count,
                "--providers" => args.providers = count.max(1),
                "--lookups" => args.lookups = count,
                "--concurrency" => args.concurrency = count.max(1),
                "--magnets" => args.magnets = count,
                "--magnet-concurrency" => args.magnet_concurrency = count.max(1),
                "--settle-s" => args.settle = Duration::from_secs(n),
                "--announce-s" => args.announce = Duration::from_secs(n),
                "--timeout-s" => args.timeout = Duration::from_secs(n),
                "--max-connections" => args.max_connections = u32::try_from(n).ok(),
                "--idle-timeout-s" => args.idle_timeout = Some(Duration::from_secs(n)),
                _ => args.seed = n,
            }
        }
        args
    }
}

/// What the run found so far: filled step by step, printed even when the run times out.
#[derive(Debug, Default)]
struct Summary {
    nodes: usize,
    form: Option<Duration>,
    formed: bool,
    rss_per_node_kib: Option<f64>,
    lookups: usize,
    lookup_ok: usize,
    lookup_ms: Vec<f64>,
    magnets: usize,
    magnet_ok: usize,
    magnet_meta_ms: Vec<f64>,
    magnet_first_ms: Vec<f64>,
    magnet_complete_ms: Vec<f64>,
    timed_out: Option<String>,
    step: String,
}

impl Summary {
    /// The summary line, and whether the run passed.
    fn line(&self) -> (String, bool) {
        let mut missed: Vec<&str> = Vec::new();
        let lookups_sorted = sorted(&self.lookup_ms);
        let first_sorted = sorted(&self.magnet_first_ms);
        if percentile(&lookups_sorted, 99.0).is_some_and(|p| p >= 500.0) {
            missed.push("lookup_p99<500ms");
        }
        if first_sorted.last().is_some_and(|&m| m >= 1000.0) {
            missed.push("magnet_first_byte<1s");
        }
        let success = if self.lookups == 0 {
            0.0
        } else {
            100.0 * self.lookup_ok as f64 / self.lookups as f64
        };
        let ok = self.timed_out.is_none()
            && self.formed
            && self.lookups > 0
            && self.lookup_ok == self.lookups
            && self.magnet_ok == self.magnets;
        let line = format!(
            "dht nodes={} form_s={} rss_per_node_kib={} lookups={} success={:.1}% p50_ms={} \
             p90_ms={} p99_ms={} max_ms={} magnets={}/{} magnet_meta_p50_ms={} \
             magnet_first_byte_p50_ms={} magnet_first_byte_max_ms={} magnet_complete_p50_ms={} \
             magnet_complete_max_ms={} missed={} status={}{}",
            self.nodes,
            self.form
                .map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64())),
            self.rss_per_node_kib
                .map_or("-".into(), |k| format!("{k:.0}")),
            self.lookups,
            success,
            ms(percentile(&lookups_sorted, 50.0)),
            ms(percentile(&lookups_sorted, 90.0)),
            ms(percentile(&lookups_sorted, 99.0)),
            ms(lookups_sorted.last().copied()),
            self.magnet_ok,
            self.magnets,
            ms(percentile(&sorted(&self.magnet_meta_ms), 50.0)),
            ms(percentile(&first_sorted, 50.0)),
            ms(first_sorted.last().copied()),
            ms(percentile(&sorted(&self.magnet_complete_ms), 50.0)),
            ms(sorted(&self.magnet_complete_ms).last().copied()),
            if missed.is_empty() {
                "none".to_owned()
            } else {
                missed.join(",")
            },
            if ok { "OK" } else { "FAIL" },
            self.timed_out
                .as_ref()
                .map_or(String::new(), |s| format!(" timed_out={s}")),
        );
        (line, ok)
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.0}"))
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// xorshift64*: reproducible choices without another crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A `/proc/self/status` field in KiB (VmRSS, VmHWM).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU time of this process so far, in clock ticks (usually 1/100 s).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses: utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

/// The soft and hard limits on open files.
fn fd_limits() -> Option<(String, String)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

fn say(start: Instant, text: impl std::fmt::Display) {
    println!("[{:7.2}s] {text}", start.elapsed().as_secs_f64());
}

async fn start_node(
    args: &Args,
    root: &Path,
    i: usize,
    bootstrap: Option<shoal_node::Multiaddr>,
) -> NodeHandle {
    let mut config = NodeConfig::loopback(root.join(format!("n{i}")));
    if let Some(max) = args.max_connections {
        config.max_connections = max;
    }
    if let Some(idle) = args.idle_timeout {
        config.idle_connection_timeout = idle;
    }
    if let Some(address) = bootstrap {
        config.dht.bootstrap = vec![address];
    }
    shoal_node::start(config)
        .await
        .unwrap_or_else(|e| panic!("node {i} did not start: {e}"))
}

/// (min, median, max) of the routing-table sizes.
async fn routing_sizes(nodes: &[NodeHandle]) -> Vec<usize> {
    let stats = join_all(nodes.iter().map(|n| n.dht_stats())).await;
    stats
        .into_iter()
        .map(|s| s.map_or(0, |s| s.routing_peers))
        .collect()
}

fn spread(values: &[usize]) -> String {
    let mut v = values.to_vec();
    v.sort_unstable();
    match (v.first(), v.last()) {
        (Some(min), Some(max)) => format!("min={min} p50={} max={max}", v[v.len() / 2]),
        _ => "empty".into(),
    }
}

struct Content {
    torrent: Torrent,
    dir: PathBuf,
    bytes: Vec<u8>,
    file: String,
}

fn make_content(root: &Path, k: usize, seed: u64) -> Content {
    let dir = root.join(format!("seed{k}"));
    std::fs::create_dir_all(&dir).expect("seed dir");
    let file = format!("f{k}.bin");
    let bytes = shoal_testkit::pseudo_random(CONTENT_LEN, seed.wrapping_add(k as u64 * 7919));
    std::fs::write(dir.join(&file), &bytes).expect("write content");
    let options = CreateOptions {
        piece_length: Some(PIECE_LENGTH),
        ..CreateOptions::default()
    };
    let torrent = create_torrent(&dir.join(&file), &options, &mut |_| {})
        .expect("torrent created")
        .torrent;
    Content {
        torrent,
        dir,
        bytes,
        file,
    }
}

#[derive(Debug)]
struct Lookup {
    /// Time to the first provider, if any arrived.
    first: Option<Duration>,
    found_expected: bool,
    /// Provider ids received, and how many distinct.
    received: usize,
    distinct: usize,
    /// Time until the receiver ended (the lookup finished), if it did in time.
    ended: Option<Duration>,
    timed_out: bool,
}

async fn lookup(node: NodeHandle, content: &Content, expected: PeerId) -> Lookup {
    let started = Instant::now();
    let mut result = Lookup {
        first: None,
        found_expected: false,
        received: 0,
        distinct: 0,
        ended: None,
        timed_out: false,
    };
    let Ok(mut found) = node.find_providers(content.torrent.info_hash).await else {
        return result;
    };
    // Drained to the end (the node runs the query to completion either way), to see how long
    // a whole lookup takes and whether providers repeat.
    let deadline = tokio::time::Instant::now() + LOOKUP_TIMEOUT;
    let mut seen = std::collections::HashSet::new();
    loop {
        match tokio::time::timeout_at(deadline, found.recv()).await {
            Ok(Some(peer)) => {
                result.first.get_or_insert_with(|| started.elapsed());
                result.received += 1;
                if seen.insert(peer) {
                    result.distinct += 1;
                }
                if peer == expected {
                    result.found_expected = true;
                }
            }
            Ok(None) => {
                result.ended = Some(started.elapsed());
                break;
            }
            Err(_) => {
                result.timed_out = true;
                break;
            }
        }
    }
    result
}

#[derive(Debug)]
struct MagnetRun {
    meta: Duration,
    first: Duration,
    complete: Duration,
    intact: bool,
}

async fn magnet(node: NodeHandle, content: &Content, out: PathBuf) -> Result<MagnetRun, String> {
    let started = Instant::now();
    let add = AddMagnet::new(Magnet::new(content.torrent.info_hash), out.clone());
    let (torrent, handle): (Torrent, TorrentHandle) =
        tokio::time::timeout(MAGNET_TIMEOUT, node.add_magnet(add))
            .await
            .map_err(|_| "metadata timed out".to_owned())?
            .map_err(|e| format!("add_magnet: {e}"))?;
    let meta = started.elapsed();
    if torrent.info_hash != content.torrent.info_hash {
        return Err("wrong metadata".into());
    }
    let mut progress = handle.progress();
    let left = MAGNET_TIMEOUT.saturating_sub(started.elapsed());
    tokio::time::timeout(left, progress.wait_for(|p| p.pieces_have >= 1))
        .await
        .map_err(|_| "first piece timed out".to_owned())?
        .map_err(|_| "torrent stopped".to_owned())?;
    let first = started.elapsed();
    let left = MAGNET_TIMEOUT.saturating_sub(started.elapsed());
    tokio::time::timeout(left, progress.wait_for(|p| p.complete))
        .await
        .map_err(|_| "completion timed out".to_owned())?
        .map_err(|_| "torrent stopped".to_owned())?;
    let complete = started.elapsed();
    let intact = std::fs::read(out.join(&content.file)).is_ok_and(|b| b == content.bytes);
    Ok(MagnetRun {
        meta,
        first,
        complete,
        intact,
    })
}

async fn run(args: Args, summary: Arc<Mutex<Summary>>, nodes_out: Arc<Mutex<Vec<NodeHandle>>>) {
    let t0 = Instant::now();
    let set_step = |s: &str| summary.lock().expect("summary").step = s.to_owned();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().to_owned();
    let n = args.nodes.max(2);

    // The content first (1.25 MiB by default), so it is in the memory baseline.
    let p = args.providers.min(n - 1);
    let contents: Vec<Arc<Content>> = (0..p)
        .map(|k| Arc::new(make_content(&root, k, args.seed)))
        .collect();

    // 1. Forming.
    set_step("form");
    let rss_before = proc_status_kib("VmRSS:");
    let fds_before = open_fds();
    let bootstrap = start_node(&args, &root, 0, None).await;
    let address = bootstrap.listen_addrs()[0].clone();
    let mut nodes = vec![bootstrap];
    let form_start = Instant::now();
    let mut next = 1;
    while next < n {
        let end = (next + args.batch).min(n);
        let batch =
            join_all((next..end).map(|i| start_node(&args, &root, i, Some(address.clone())))).await;
        nodes.extend(batch);
        next = end;
    }
    *nodes_out.lock().expect("nodes") = nodes.clone();
    say(
        t0,
        format!(
            "started {n} nodes in {:.2}s (batches of {})",
            form_start.elapsed().as_secs_f64(),
            args.batch
        ),
    );
    let mut last_report = Instant::now();
    let formed = loop {
        let sizes = routing_sizes(&nodes).await;
        let thin = sizes.iter().filter(|&&s| s < args.min_routing).count();
        if thin == 0 {
            say(t0, format!("routing tables: {}", spread(&sizes)));
            break true;
        }
        if form_start.elapsed() > FORM_TIMEOUT {
            say(
                t0,
                format!(
                    "FORMING TIMED OUT after {FORM_TIMEOUT:?}: {thin} nodes below {} routing \
                     peers ({})",
                    args.min_routing,
                    spread(&sizes)
                ),
            );
            break false;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            say(
                t0,
                format!(
                    "forming: {thin}/{n} nodes below {} routing peers ({}); {} with <= 1; \
                     bootstrap node connections {}; open fds {}",
                    args.min_routing,
                    spread(&sizes),
                    sizes.iter().filter(|&&s| s <= 1).count(),
                    nodes[0].connected_peers().await.map_or(0, |c| c.len()),
                    open_fds().map_or("?".into(), |f| f.to_string()),
                ),
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let form = form_start.elapsed();
    {
        let mut s = summary.lock().expect("summary");
        s.form = Some(form);
        s.formed = formed;
        if !formed {
            s.timed_out = Some("form".into());
        }
    }
    say(
        t0,
        format!(
            "formed: every routing table >= {} peers after {:.2}s",
            args.min_routing,
            form.as_secs_f64()
        ),
    );

    // 2. Memory per idle node, before any torrent.
    set_step("settle");
    let (cpu_before, idle_start) = (cpu_ticks(), Instant::now());
    tokio::time::sleep(args.settle).await;
    let idle_cpu = match (cpu_before, cpu_ticks()) {
        (Some(b), Some(a)) => {
            100.0 * a.saturating_sub(b) as f64 / 100.0 / idle_start.elapsed().as_secs_f64()
        }
        _ => f64::NAN,
    };
    let rss_after = proc_status_kib("VmRSS:");
    let sizes = routing_sizes(&nodes).await;
    let connections: Vec<usize> = join_all(nodes.iter().map(|n| n.connected_peers()))
        .await
        .into_iter()
        .map(|c| c.map_or(0, |c| c.len()))
        .collect();
    let fds_after = open_fds();
    let per_node = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / n as f64),
        _ => None,
    };
    summary.lock().expect("summary").rss_per_node_kib = per_node;
    say(
        t0,
        format!(
            "after {:?} idle: VmRSS {} -> {} KiB ({} KiB/node), routing {}, connections {}, \
             fds {} -> {}, CPU while idle {idle_cpu:.0}% of one core (ticks at 100 Hz)",
            args.settle,
            rss_before.unwrap_or(0),
            rss_after.unwrap_or(0),
            per_node.map_or("-".into(), |k| format!("{k:.0}")),
            spread(&sizes),
            spread(&connections),
            fds_before.unwrap_or(0),
            fds_after.unwrap_or(0),
        ),
    );

    // 3. Providers and lookups.
    set_step("provide");
    let mut rng = Rng(args.seed | 1);
    let mut order: Vec<usize> = (1..n).collect();
    rng.shuffle(&mut order);
    let providers: Vec<usize> = order.drain(..p).collect();
    let magnet_nodes: Vec<usize> = order
        .drain(..args.magnets.min(order.len().saturating_sub(1)))
        .collect();
    // Lookers: everyone else (the bootstrap node included).
    let mut lookers = order;
    lookers.push(0);
    let mut seeds = Vec::new();
    for (k, &i) in providers.iter().enumerate() {
        let handle = nodes[i]
            .add_torrent(AddTorrent::new(
                contents[k].torrent.clone(),
                contents[k].dir.clone(),
            ))
            .await
            .expect("provider adds its torrent");
        assert!(
            handle.progress().borrow().complete,
            "provider {i} has all pieces"
        );
        seeds.push(handle);
    }
    say(
        t0,
        format!(
            "{p} providers (nodes {providers:?}) seed {p} torrents of {} KiB; waiting {:?}",
            CONTENT_LEN / 1024,
            args.announce
        ),
    );
    tokio::time::sleep(args.announce).await;
    for (k, &i) in providers.iter().enumerate() {
        let stats = nodes[i].dht_stats().await.expect("provider stats");
        say(
            t0,
            format!(
                "provider {k} (node {i}): announces={} provided_keys={} routing={}",
                stats.announces, stats.provided_keys, stats.routing_peers
            ),
        );
    }

    set_step("lookups");
    // Distinct (looker, torrent) pairs first, so a lookup rarely starts already connected.
    let mut pairs: Vec<(usize, usize)> = lookers
        .iter()
        .flat_map(|&i| (0..p).map(move |k| (i, k)))
        .collect();
    rng.shuffle(&mut pairs);
    let plan: Vec<(usize, usize)> = (0..args.lookups).map(|j| pairs[j % pairs.len()]).collect();
    let lookups_start = Instant::now();
    let mut results = futures::stream::iter(plan.into_iter().map(|(i, k)| {
        let node = nodes[i].clone();
        let expected = nodes[providers[k]].peer_id();
        let content = Arc::clone(&contents[k]);
        async move { (i, k, lookup(node, &content, expected).await) }
    }))
    .buffer_unordered(args.concurrency);
    let mut failures = Vec::new();
    let (mut ended_ms, mut received, mut distinct) = (Vec::new(), 0, 0);
    while let Some((i, k, result)) = results.next().await {
        let mut s = summary.lock().expect("summary");
        s.lookups += 1;
        if result.found_expected {
            s.lookup_ok += 1;
        } else {
            failures.push(format!(
                "node {i} torrent {k}: received={} distinct={} first={:?} ended={:?} \
                 timed_out={}",
                result.received, result.distinct, result.first, result.ended, result.timed_out
            ));
        }
        if let Some(first) = result.first {
            s.lookup_ms.push(millis(first));
        }
        if let Some(ended) = result.ended {
            ended_ms.push(millis(ended));
        }
        received += result.received;
        distinct += result.distinct;
    }
    drop(results);
    {
        let s = summary.lock().expect("summary");
        let sorted = sorted(&s.lookup_ms);
        say(
            t0,
            format!(
                "{} lookups ({} at once) in {:.2}s: {} found the expected provider; first \
                 provider p50={} p90={} p99={} max={} ms",
                s.lookups,
                args.concurrency,
                lookups_start.elapsed().as_secs_f64(),
                s.lookup_ok,
                ms(percentile(&sorted, 50.0)),
                ms(percentile(&sorted, 90.0)),
                ms(percentile(&sorted, 99.0)),
                ms(sorted.last().copied()),
            ),
        );
    }
    let ended_sorted = sorted(&ended_ms);
    say(
        t0,
        format!(
            "whole lookups (until the receiver ended): {} ended in time, p50={} p99={} max={} \
             ms; provider ids received={received} distinct={distinct}",
            ended_ms.len(),
            ms(percentile(&ended_sorted, 50.0)),
            ms(percentile(&ended_sorted, 99.0)),
            ms(ended_sorted.last().copied()),
        ),
    );
    for f in failures.iter().take(20) {
        say(t0, format!("LOOKUP FAILED: {f}"));
    }
    let stats = join_all(nodes.iter().map(|n| n.dht_stats())).await;
    let (lookups_run, providers_found) = stats
        .iter()
        .flatten()
        .fold((0, 0), |(l, f), s| (l + s.lookups, f + s.providers_found));
    say(
        t0,
        format!("node counters: lookups={lookups_run} providers_found={providers_found}"),
    );

    // 4. Magnets.
    set_step("magnets");
    let runs = futures::stream::iter(magnet_nodes.into_iter().enumerate().map(|(j, i)| {
        let node = nodes[i].clone();
        let k = j % p;
        let content = Arc::clone(&contents[k]);
        let out = root.join(format!("out{j}"));
        async move { (i, k, magnet(node, &content, out).await) }
    }))
    .buffer_unordered(args.magnet_concurrency)
    .collect::<Vec<_>>()
    .await;
    for (i, k, run) in runs {
        let mut s = summary.lock().expect("summary");
        s.magnets += 1;
        match run {
            Ok(run) => {
                say(
                    t0,
                    format!(
                        "magnet node {i} torrent {k}: metadata {:.0} ms, first piece {:.0} ms, \
                         complete {:.0} ms{}",
                        millis(run.meta),
                        millis(run.first),
                        millis(run.complete),
                        if run.intact { "" } else { " CONTENT DIFFERS" }
                    ),
                );
                if run.intact {
                    s.magnet_ok += 1;
                }
                s.magnet_meta_ms.push(millis(run.meta));
                s.magnet_first_ms.push(millis(run.first));
                s.magnet_complete_ms.push(millis(run.complete));
            }
            Err(e) => say(t0, format!("MAGNET FAILED: node {i} torrent {k}: {e}")),
        }
    }

    // 5. Shutdown.
    set_step("shutdown");
    drop(seeds);
    let down = Instant::now();
    let all_down = tokio::time::timeout(
        SHUTDOWN_TIMEOUT,
        join_all(nodes.iter().map(|n| n.shutdown())),
    )
    .await;
    if all_down.is_err() {
        summary.lock().expect("summary").timed_out = Some("shutdown".into());
    }
    nodes_out.lock().expect("nodes").clear();
    say(
        t0,
        format!(
            "shut down {n} nodes in {:.2}s{}; VmHWM {} KiB",
            down.elapsed().as_secs_f64(),
            if all_down.is_err() {
                " (TIMED OUT)"
            } else {
                ""
            },
            proc_status_kib("VmHWM:").unwrap_or(0)
        ),
    );
}

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut args = args;
    match fd_limits() {
        Some((soft, hard)) => {
            println!("open files limit: soft {soft}, hard {hard}");
            // Both ends of every loopback connection are in this process: the sum of all
            // nodes' connections is about the number of descriptors. A node's default cap
            // (512) times the node count must fit, or the process runs out (EMFILE).
            if let Ok(soft) = soft.parse::<usize>() {
                let fit = soft.saturating_sub(1024) / args.nodes.max(1);
                if args.max_connections.is_none() && fit < 512 {
                    let cap = u32::try_from(fit.max(8)).unwrap_or(512);
                    println!(
                        "NOTE: {soft} open files cannot hold {} nodes x 512 connections; \
                         capping each node at {cap} connections (override with \
                         --max-connections N, or raise the limit: `ulimit -n 65536`)",
                        args.nodes
                    );
                    args.max_connections = Some(cap);
                }
            }
        }
        None => println!("open files limit: unknown"),
    }
    println!("{args:?}, {cores} worker threads");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let summary = Arc::new(Mutex::new(Summary {
        nodes: args.nodes,
        ..Summary::default()
    }));
    let nodes = Arc::new(Mutex::new(Vec::new()));
    let timeout = args.timeout;
    let finished = runtime.block_on(async {
        let mut task = tokio::spawn(run(args, summary.clone(), nodes.clone()));
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(done) => done.map_err(|e| format!("panicked: {e}")),
            Err(_) => {
                task.abort();
                Err(format!("overall timeout after {timeout:?}"))
            }
        }
    });
    if let Err(why) = finished {
        let mut s = summary.lock().expect("summary");
        let step = s.step.clone();
        println!("THE RUN DID NOT FINISH during step {step}: {why}");
        s.timed_out = Some(step);
        drop(s);
        // Best effort: stop the nodes still running, briefly.
        let left: Vec<NodeHandle> = std::mem::take(&mut *nodes.lock().expect("nodes"));
        let _ = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(15),
                join_all(left.iter().map(|n| n.shutdown())),
            )
            .await
        });
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    let (line, ok) = summary.lock().expect("summary").line();
    println!("{line}");
    // Exit explicitly: nothing left to wait for.
    std::process::exit(i32::from(!ok));
}
