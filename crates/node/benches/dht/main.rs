//! The DHT at scale: a few hundred real nodes on 127.0.0.1, spread over several processes as
//! real nodes would be (issue 4's performance figures).
//!
//! ```text
//! cargo bench -p shoal-node --bench dht                    # 200 nodes: the figures
//! cargo bench -p shoal-node --bench dht -- --nodes 20      # a quick smoke run
//! RUST_LOG=shoal_node::dht=debug cargo bench -p shoal-node --bench dht -- --nodes 50
//! ```
//!
//! The nodes live in `--processes` worker processes (default: one per 25 nodes, 8 for 200):
//! the bench binary starts itself again with a hidden `--worker K`, and drives the workers
//! over their stdin and stdout (`cluster.rs`, `worker.rs`); node `i` lives in worker
//! `i / ceil(nodes / processes)`. In one process both ends of every loopback connection would
//! share one open-files limit, which forced a connection cap far below a real node's (512)
//! and distorted every figure; a worker's budget is printed at the start, and a cap is set
//! only if `per-process nodes x 512` does not fit it.
//!
//! Steps, each printed as it goes:
//! 1. forming: node 0 is the bootstrap node, the others join through it (started in batches),
//!    until every routing table holds `--min-routing` peers;
//!    then, until the joining traffic is over (the workers' CPU below 20 % of one core, at
//!    most `--quiet-timeout-s`): 200 nodes that join within a second all bootstrap at once,
//!    a full mesh of connections and a saturated CPU for about three minutes on two cores,
//!    which no network in use looks like; the connections then idle out;
//! 2. memory per idle DHT node: the growth of each worker's VmRSS from before its first node
//!    started, summed over the workers and divided by the node count, after `--settle-s` idle
//!    seconds and before any torrent is added (after the joining traffic, so the RSS still
//!    holds what the full mesh of connections made the allocator take);
//! 3. provider lookups: `--providers` nodes seed a torrent each (then it prints how many of
//!    the 20 nodes closest to each key hold the record); other nodes look them up:
//!    time (in the looking node's worker) from `find_providers` to the first provider
//!    (connected, so ready to fetch from), and whether the expected provider arrived;
//! 4. magnet links, as `shoal get MAGNET --bootstrap ADDR` does them: a fresh node in the
//!    parent process joins through node 0 and fetches a link with only the info-hash; time
//!    from starting the node to the first verified piece.
//!
//! At the end it prints exactly the four figures, labelled (lookup latency p50/p99, lookup
//! success rate, magnet to first verified byte, memory per idle DHT node), then a one-line
//! summary ending in `status=OK|FAIL`. FAIL means a lookup or magnet link failed or a step
//! timed out; missed latency targets (100 % success, p99 lookup < 500 ms, first byte < 1 s)
//! are listed in `missed=`.
//!
//! Options: `--nodes N` (200), `--processes P` (nodes / 25, rounded up), `--batch N` (20),
//! `--min-routing N` (10), `--providers N` (5), `--lookups N` (200), `--concurrency N` (10),
//! `--magnets N` (10), `--settle-s S` (5), `--announce-s S` (2), `--quiet-timeout-s S` (360;
//! 0: measure at once, during the joining traffic), `--timeout-s S` (900),
//! `--seed N`, `--max-connections N` (a per-node cap; default: none unless the open-files
//! limit needs one), `--idle-timeout-s S`. Unknown arguments (cargo passes `--bench`) are
//! ignored. `RUST_LOG` applies to the workers too; their log lines carry `worker{index=K}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod args;
mod cluster;
mod lookups;
mod magnets;
mod network;
mod report;
mod system;
mod worker;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use args::Args;
use cluster::Cluster;
use lookups::{Content, Rng, look_up, make_content, provide};
use network::{Bench, form, measure_idle, shut_down, wait_quiet};
use report::Summary;

fn main() {
    let mut args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Some(index) = args.worker {
        std::process::exit(worker::run(args, index));
    }
    if args.max_connections.is_none() {
        let node_cap = shoal_node::NodeConfig::loopback(PathBuf::new()).max_connections;
        args.max_connections =
            system::connection_cap_for_fd_limit(args.nodes_per_process(), node_cap);
    }
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    println!(
        "{args:?}, {} worker processes of up to {} nodes, {cores} cores",
        args.process_count(),
        args.nodes_per_process()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tmp = tempfile::tempdir().expect("temp dir");
    let ok = runtime.block_on(async {
        let cluster = Cluster::spawn(&args, tmp.path()).expect("worker processes");
        let bench = Arc::new(Bench {
            summary: Arc::new(Mutex::new(Summary {
                nodes: args.nodes,
                processes: cluster.workers.len(),
                ..Summary::default()
            })),
            args,
            t0: Instant::now(),
            root: tmp.path().to_owned(),
            cluster,
            addresses: Mutex::new(Vec::new()),
            live: Arc::new(Mutex::new(Vec::new())),
        });
        run_within_timeout(bench.clone()).await;
        bench.cluster.kill();
        let summary = bench.summary.lock().expect("summary");
        summary.print();
        summary.ok()
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(tmp);
    // Exit explicitly: nothing left to wait for.
    std::process::exit(i32::from(!ok));
}

/// The run, bounded by `--timeout-s`; after a timeout, the nodes still up are stopped briefly.
async fn run_within_timeout(bench: Arc<Bench>) {
    let timeout = bench.args.timeout;
    let mut task = tokio::spawn(run(bench.clone()));
    let why = match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("panicked: {e}"),
        Err(_) => {
            task.abort();
            format!("overall timeout after {timeout:?}")
        }
    };
    let step = bench.summary.lock().expect("summary").step.clone();
    println!("THE RUN DID NOT FINISH during step {step}: {why}");
    bench.record(|s| s.timed_out = Some(step));
    let _ = tokio::time::timeout(Duration::from_secs(15), shut_down(&bench)).await;
}

async fn run(bench: Arc<Bench>) {
    let n = bench.args.nodes;
    let p = bench.args.providers.min(n - 1);
    let contents: Vec<Arc<Content>> = (0..p)
        .map(|k| Arc::new(make_content(&bench.root, k, bench.args.seed)))
        .collect();
    bench.step("form");
    form(&bench).await;
    bench.step("quiet");
    wait_quiet(&bench).await;
    bench.step("idle");
    measure_idle(&bench).await;

    bench.step("provide");
    let mut rng = Rng(bench.args.seed | 1);
    let mut order: Vec<usize> = (1..n).collect();
    rng.shuffle(&mut order);
    let providers: Vec<usize> = order.drain(..p).collect();
    // Lookers: everyone else, the bootstrap node included.
    let mut lookers = order;
    lookers.push(0);
    provide(&bench, &providers, &contents).await;
    bench.step("lookups");
    look_up(&bench, &lookers, &providers, &contents, &mut rng).await;

    bench.step("magnets");
    magnets::fetch_magnets(&bench, &bench.address(0), &contents).await;

    bench.step("shutdown");
    shut_down(&bench).await;
}
