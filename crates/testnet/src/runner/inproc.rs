//! `--in-process` nodes: [`shoal_node::start`] in this process instead of a `shoal` child,
//! with the same `/stats` server, so the runner polls them the same way. Killing one aborts
//! it at once ([`NodeHandle::abort`]: no `stopped` announce, no resume state saved), as
//! `kill -9` ends a process; a planned leave shuts it down cleanly. Pausing one is not
//! possible (SIGSTOP stops a whole process): the runner refuses such scenarios up front.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use shoal_metainfo::{Magnet, Torrent};
use shoal_node::{AddMagnet, AddTorrent, Multiaddr, NodeConfig, NodeHandle, Rate, TorrentHandle};
use tokio::task::JoinHandle;
use tracing::warn;

use super::plan::{Endpoints, NodePaths, Sources};
use super::process::Lines;
use crate::scenario::{Group, Leave, Role};

/// What a node started in this process shares with its task.
#[derive(Debug, Default)]
struct Shared {
    lines: Lines,
    node: Option<NodeHandle>,
    metrics_task: Option<JoinHandle<()>>,
    /// `Some(true)`: stopped after completing (`leave = "on-completion"`); `Some(false)`:
    /// failed, or was stopped or killed.
    exited: Option<bool>,
}

/// A node running inside the runner's process.
#[derive(Debug)]
pub struct InProc {
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

/// How to start a node of a group (a bootstrap node when `group` is `None`).
#[derive(Debug, Clone)]
pub struct InProcSpec {
    pub group: Option<Group>,
    pub paths: NodePaths,
    pub sources: Sources,
    pub endpoints: Endpoints,
    pub torrent: Option<Torrent>,
    /// The node's connection cap, when the process's open-file limit calls for one.
    pub max_connections: Option<u32>,
}

impl InProc {
    /// Starts the node in a task; its addresses appear in [`InProc::lines`] once it is up.
    pub fn spawn(spec: InProcSpec) -> InProc {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let task = tokio::spawn(run_node(spec, Arc::clone(&shared)));
        InProc { shared, task }
    }

    /// What it has "printed" so far.
    pub fn lines(&self) -> Lines {
        self.shared
            .lock()
            .map(|s| s.lines.clone())
            .unwrap_or_default()
    }

    /// `Some(success)` once it has stopped.
    pub fn exited(&self) -> Option<bool> {
        self.shared.lock().ok().and_then(|s| s.exited)
    }

    /// Ends the node at once, the way `kill -9` ends a process: nothing is said to its peers
    /// or trackers and nothing is saved.
    pub fn kill(&mut self) {
        if let Some(node) = self.end() {
            node.abort();
        }
    }

    /// Shuts the node down cleanly in the background, as `shoal` does on SIGINT: its torrent
    /// is stopped (a `stopped` announce, the resume state saved) and its connections closed.
    pub fn stop(&mut self) {
        if let (Some(node), Ok(runtime)) = (self.end(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move { node.shutdown().await });
        }
    }

    /// Stops its task and its `/stats` server; returns the node if it was still running.
    fn end(&mut self) -> Option<NodeHandle> {
        self.task.abort();
        let (node, metrics) = match self.shared.lock() {
            Ok(mut s) => {
                s.exited.get_or_insert(false);
                (s.node.take(), s.metrics_task.take())
            }
            Err(_) => (None, None),
        };
        if let Some(task) = metrics {
            task.abort();
        }
        node
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn run_node(spec: InProcSpec, shared: Arc<Mutex<Shared>>) {
    let name = spec.paths.root.display().to_string();
    if let Err(e) = start_and_watch(spec, &shared).await {
        warn!(node = %name, error = %e, "in-process node failed");
        if let Ok(mut s) = shared.lock() {
            s.exited = Some(false);
        }
    }
}

async fn start_and_watch(
    spec: InProcSpec,
    shared: &Arc<Mutex<Shared>>,
) -> Result<(), shoal_node::NodeError> {
    let mut config = NodeConfig::loopback(spec.paths.data_dir.clone());
    if let Some(cap) = spec.max_connections {
        config.max_connections = cap;
    }
    if let Some(group) = &spec.group {
        config.upload_limit = group.upload_limit.map(Rate);
        config.download_limit = group.download_limit.map(Rate);
        config.dht.enabled = group.discovery.dht;
        config.pex = group.discovery.pex;
        config.corrupt_uploads = group.role == Role::Hostile;
    }
    if config.dht.enabled {
        config.dht.bootstrap = spec
            .endpoints
            .bootstrap
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
            .collect();
    }
    let node = shoal_node::start(config).await?;
    // Kept at once (no await in between), so a kill from now on reaches the node.
    if let Ok(mut s) = shared.lock() {
        s.node = Some(node.clone());
    }
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let (metrics, metrics_task) = shoal_node::metrics::serve(local, node.clone()).await?;
    if let Ok(mut s) = shared.lock() {
        s.lines.metrics = Some(metrics);
        s.lines.listen = node.listen_addrs().iter().map(|a| a.to_string()).collect();
        s.metrics_task = Some(metrics_task);
    }
    let Some(group) = spec.group.clone() else {
        return Ok(());
    };
    let handle = add(&node, &group, &spec).await?;
    if let Ok(mut s) = shared.lock() {
        s.lines.added_at = Some(Instant::now());
    }
    if group.leave == Leave::OnCompletion && group.role != Role::Seeder {
        let mut progress = handle.progress();
        while !progress.borrow_and_update().complete {
            if progress.changed().await.is_err() {
                return Ok(());
            }
        }
        if let Ok(mut s) = shared.lock() {
            s.lines.complete = true;
            s.lines.complete_at = Some(Instant::now());
            s.exited = Some(true);
            s.node = None;
            if let Some(task) = s.metrics_task.take() {
                task.abort();
            }
        }
        node.shutdown().await;
    }
    Ok(())
}

/// Adds the group's torrent as `shoal seed` / `shoal get` would.
async fn add(
    node: &NodeHandle,
    group: &Group,
    spec: &InProcSpec,
) -> Result<TorrentHandle, shoal_node::NodeError> {
    let trackers: Vec<String> = spec
        .endpoints
        .tracker
        .iter()
        .filter(|_| group.discovery.tracker)
        .cloned()
        .collect();
    let download_dir: PathBuf = spec.paths.download_dir.clone();
    if group.role != Role::Seeder && group.magnet {
        if let Ok(mut magnet) = spec.sources.magnet.parse::<Magnet>() {
            magnet.trackers.extend(trackers);
            let mut add = AddMagnet::new(magnet, download_dir);
            add.swarm.upload = group.role != Role::FreeRider;
            return Ok(node.add_magnet(add).await?.1);
        }
    }
    let Some(torrent) = spec.torrent.clone() else {
        return Err(shoal_node::NodeError::Stopped);
    };
    let mut add = AddTorrent::new(torrent, download_dir);
    add.trackers = trackers;
    add.swarm.upload = group.role != Role::FreeRider;
    node.add_torrent(add).await
}
