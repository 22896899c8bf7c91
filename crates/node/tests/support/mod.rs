//! Helpers shared by the node tests: content, torrents, nodes on loopback.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::time::Duration;

use shoal_metainfo::{CreateOptions, Torrent, create_torrent};
use shoal_node::{AddTorrent, NodeConfig, NodeHandle, TorrentHandle};

pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(90);

pub use shoal_testkit::pseudo_random;

pub async fn node(dir: &Path, name: &str) -> NodeHandle {
    shoal_node::start(NodeConfig::loopback(dir.join(name).join("data")))
        .await
        .expect("node starts")
}

pub fn make_torrent(source: &Path, piece_length: u64) -> Torrent {
    let options = CreateOptions {
        piece_length: Some(piece_length),
        ..CreateOptions::default()
    };
    create_torrent(source, &options, &mut |_| {})
        .expect("torrent created")
        .torrent
}

pub async fn seed(node: &NodeHandle, torrent: &Torrent, dir: &Path) -> TorrentHandle {
    let handle = node
        .add_torrent(AddTorrent::new(torrent.clone(), dir.to_owned()))
        .await
        .expect("seeder adds the torrent");
    assert!(
        handle.progress().borrow().complete,
        "the seeder found all its pieces"
    );
    handle
}

pub fn assert_same_tree(a: &Path, b: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let other = b.join(path.file_name().unwrap());
        if path.is_dir() {
            assert_same_tree(&path, &other);
        } else {
            let (want, got) = (
                std::fs::read(&path).unwrap(),
                std::fs::read(&other).unwrap(),
            );
            assert!(
                want == got,
                "{} differs from {}",
                other.display(),
                path.display()
            );
        }
    }
}

/// A node with its own config (limits) on loopback.
pub async fn node_with(dir: &Path, name: &str, edit: impl FnOnce(&mut NodeConfig)) -> NodeHandle {
    let mut config = NodeConfig::loopback(dir.join(name).join("data"));
    edit(&mut config);
    shoal_node::start(config).await.expect("node starts")
}

/// Waits for a torrent to complete, failing the test after `TRANSFER_TIMEOUT`.
pub async fn wait_complete(handle: &TorrentHandle) {
    tokio::time::timeout(TRANSFER_TIMEOUT, handle.wait_complete())
        .await
        .expect("transfer finished in time")
        .expect("node still running");
}

/// Adds `torrent` to `node` as a download into `dir`.
pub async fn fetch(node: &NodeHandle, torrent: &Torrent, dir: &Path) -> TorrentHandle {
    node.add_torrent(AddTorrent::new(torrent.clone(), dir.to_owned()))
        .await
        .expect("leecher adds the torrent")
}

/// A bare libp2p host (TCP, Noise, Yamux, raw streams, nothing else) on 127.0.0.1: it speaks
/// only what the test makes it speak, to play a peer that breaks shoal's protocols where a
/// shoal node never would.
pub struct RawPeer {
    pub peer_id: libp2p::PeerId,
    /// Where it listens, ending in `/p2p/<peer id>`.
    pub address: libp2p::Multiaddr,
    pub control: libp2p_stream::Control,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn raw_peer() -> RawPeer {
    use futures::StreamExt;
    use libp2p::swarm::SwarmEvent;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .expect("listens");
    let listening = async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    };
    let address = tokio::time::timeout(Duration::from_secs(10), listening)
        .await
        .expect("listening in time");
    let peer_id = *swarm.local_peer_id();
    let control = swarm.behaviour().new_control();
    let task = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    RawPeer {
        peer_id,
        address: address.with_p2p(peer_id).unwrap(),
        control,
        task,
    }
}

/// A node on a runtime of its own, so that a test can kill it as kill -9 would: every task
/// dropped where it stands, no torrent stopped, no goodbye; the OS closes its sockets.
pub struct KillableNode {
    pub node: NodeHandle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl KillableNode {
    pub fn kill(mut self) {
        self.stop_runtime();
    }

    fn stop_runtime(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for KillableNode {
    fn drop(&mut self) {
        self.stop_runtime();
    }
}

pub async fn killable_node(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut NodeConfig),
) -> KillableNode {
    let mut config = NodeConfig::loopback(dir.join(name).join("data"));
    edit(&mut config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the node");
    let node = runtime
        .spawn(shoal_node::start(config))
        .await
        .expect("start did not panic")
        .expect("node starts");
    KillableNode {
        node,
        runtime: Some(runtime),
    }
}
