//! What to start and how: node names, join times and each process's command line. Pure: no
//! processes, no clock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::scenario::{Group, Leave, Role, Scenario};

/// Where a node keeps its state and its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    /// `nodes/<name>/`: logs go here.
    pub root: PathBuf,
    /// `--data-dir`: identity and resume state.
    pub data_dir: PathBuf,
    /// Where the torrent's files go (seeders: where their copy of the content is).
    pub download_dir: PathBuf,
}

impl NodePaths {
    /// The layout under `nodes_dir/<name>/`.
    pub fn new(nodes_dir: &Path, name: &str) -> Self {
        let root = nodes_dir.join(name);
        Self {
            data_dir: root.join("data"),
            download_dir: root.join("download"),
            root,
        }
    }
}

/// Addresses every node may be given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Multiaddrs (with `/p2p/`) of the bootstrap nodes.
    pub bootstrap: Vec<String>,
    /// The tracker's announce URL, when the scenario runs one.
    pub tracker: Option<String>,
}

/// What a node downloads from: the `.torrent`, or a bare magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub torrent: PathBuf,
    pub magnet: String,
    /// The name of the content inside a download directory.
    pub content_name: String,
}

/// One node of a group, before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    /// `<group>-<NN>`.
    pub name: String,
    /// Index in `Scenario::groups`.
    pub group: usize,
    /// When it starts, from the start of the run.
    pub join: Duration,
}

/// `<group>-<NN>`, numbered from 0 (churn replacements continue the numbering).
pub fn node_name(group: &str, index: u32) -> String {
    format!("{group}-{index:02}")
}

/// When the `i`-th node of `group` starts: `join_at + i * join_spread / count`.
pub fn join_time(group: &Group, i: u32) -> Duration {
    let count = group.count.max(1);
    group.join_at + group.join_spread.mul_f64(f64::from(i) / f64::from(count))
}

/// Every node of every group, in the order they are declared.
pub fn plan_nodes(scenario: &Scenario) -> Vec<NodePlan> {
    let mut nodes = Vec::new();
    for (g, group) in scenario.groups.iter().enumerate() {
        for i in 0..group.count {
            nodes.push(NodePlan {
                name: node_name(&group.name, i),
                group: g,
                join: join_time(group, i),
            });
        }
    }
    nodes
}

/// A rate as `shoal` takes it: bytes per second.
pub fn rate_arg(bytes_per_second: u64) -> String {
    format!("{bytes_per_second}B/s")
}

/// The role's name in the record: `seeder`, `leecher`, `free-rider`, `hostile`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Seeder => "seeder",
        Role::Leecher => "leecher",
        Role::FreeRider => "free-rider",
        Role::Hostile => "hostile",
    }
}

/// `shoal tracker` on `port` (0: any free port).
pub fn tracker_args(port: u16) -> Vec<String> {
    strings(&[
        "tracker",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--interval",
        "30",
    ])
}

/// `shoal node`: a bootstrap node.
pub fn bootstrap_args(paths: &NodePaths) -> Vec<String> {
    let mut args = strings(&["node"]);
    common_args(&mut args, paths);
    args
}

/// The `shoal seed` or `shoal get` command line of a group's node (without the program).
pub fn node_args(
    group: &Group,
    paths: &NodePaths,
    sources: &Sources,
    endpoints: &Endpoints,
) -> Vec<String> {
    let mut args = Vec::new();
    if group.role == Role::Seeder {
        args.push("seed".to_owned());
        args.push(path_arg(&paths.download_dir.join(&sources.content_name)));
        args.push("--torrent".to_owned());
        args.push(path_arg(&sources.torrent));
    } else {
        args.push("get".to_owned());
        args.push(if group.magnet {
            sources.magnet.clone()
        } else {
            path_arg(&sources.torrent)
        });
        args.push("-o".to_owned());
        args.push(path_arg(&paths.download_dir));
    }
    common_args(&mut args, paths);
    discovery_args(&mut args, group, endpoints);
    if let Some(rate) = group.upload_limit {
        args.extend(["--upload-limit".to_owned(), rate_arg(rate)]);
    }
    if let Some(rate) = group.download_limit {
        args.extend(["--download-limit".to_owned(), rate_arg(rate)]);
    }
    match group.role {
        Role::FreeRider => args.push("--free-ride".to_owned()),
        Role::Hostile => args.push("--corrupt-uploads".to_owned()),
        Role::Seeder | Role::Leecher => {}
    }
    if group.leave == Leave::OnCompletion && group.role != Role::Seeder {
        args.push("--exit-when-done".to_owned());
    }
    args
}

fn discovery_args(args: &mut Vec<String>, group: &Group, endpoints: &Endpoints) {
    if group.discovery.dht {
        for address in &endpoints.bootstrap {
            args.extend(["--bootstrap".to_owned(), address.clone()]);
        }
    } else {
        args.push("--no-dht".to_owned());
    }
    if !group.discovery.pex {
        args.push("--no-pex".to_owned());
    }
    if let (true, Some(url)) = (group.discovery.tracker, &endpoints.tracker) {
        args.extend(["--tracker".to_owned(), url.clone()]);
    }
}

fn common_args(args: &mut Vec<String>, paths: &NodePaths) {
    args.extend(strings(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--data-dir",
        &path_arg(&paths.data_dir),
        "--metrics",
        "127.0.0.1:0",
    ]));
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
pub(crate) mod tests;
