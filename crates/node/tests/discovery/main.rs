//! Trackerless discovery between real nodes on 127.0.0.1: the DHT finds providers (and keeps
//! finding them as nodes die, come late, or stop providing), PEX passes peers along, magnet
//! links fetch verified metadata, private torrents stay quiet.

#[path = "../support/mod.rs"]
mod support;

mod dht;
mod exchange;

use std::future::Future;
use std::time::Duration;

use libp2p::PeerId;
use shoal_metainfo::Torrent;
use shoal_node::{NodeConfig, NodeHandle};
use support::{make_torrent, node_with, pseudo_random};

/// How long a lookup, a PEX round or any awaited condition may take before the test fails.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A DHT of `count` nodes, each joined through the first.
async fn dht(dir: &std::path::Path, count: usize) -> Vec<NodeHandle> {
    dht_with(dir, count, |_| {}).await
}

/// [`dht`], every node set up with `edit` too.
async fn dht_with(
    dir: &std::path::Path,
    count: usize,
    edit: impl Fn(&mut NodeConfig),
) -> Vec<NodeHandle> {
    let bootstrap = node_with(dir, "n0", &edit).await;
    let address = bootstrap.listen_addrs()[0].clone();
    let mut nodes = vec![bootstrap];
    for i in 1..count {
        let node = node_with(dir, &format!("n{i}"), |c| {
            edit(c);
            c.dht.bootstrap = vec![address.clone()];
        })
        .await;
        nodes.push(node);
    }
    nodes
}

/// Waits until every node has at least `min` routing-table peers.
async fn wait_routing(nodes: &[NodeHandle], min: usize) {
    eventually("every routing table filled", || async {
        for n in nodes {
            if n.dht_stats().await.unwrap().routing_peers < min {
                return false;
            }
        }
        true
    })
    .await;
}

/// Polls `check` until it holds, failing the test after [`DISCOVERY_TIMEOUT`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let poll = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(DISCOVERY_TIMEOUT, poll)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// All providers one lookup returns.
async fn providers(node: &NodeHandle, torrent: &Torrent) -> Vec<PeerId> {
    let mut found = node.find_providers(torrent.info_hash).await.unwrap();
    let mut all = Vec::new();
    let collect = async {
        while let Some(peer) = found.recv().await {
            all.push(peer);
        }
    };
    tokio::time::timeout(DISCOVERY_TIMEOUT, collect)
        .await
        .expect("lookup finished in time");
    all
}

/// Which of `nodes` hold a provider record of the torrent in their own store.
async fn holders(nodes: &[NodeHandle], torrent: &Torrent) -> Vec<usize> {
    let mut holding = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if !n
            .stored_providers(torrent.info_hash)
            .await
            .unwrap()
            .is_empty()
        {
            holding.push(i);
        }
    }
    holding
}

fn content_torrent(dir: &std::path::Path, len: usize, seed_byte: u64) -> (Vec<u8>, Torrent) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(len, seed_byte);
    std::fs::write(seed_dir.join("f.bin"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("f.bin"), 64 * 1024);
    (content, torrent)
}

async fn shutdown(nodes: &[NodeHandle]) {
    for n in nodes {
        n.shutdown().await;
    }
}
