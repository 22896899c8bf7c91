//! `shoal seed`, `shoal get` and `shoal node`: start a node, add one torrent (or none), show
//! progress.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use shoal_metainfo::{CreateOptions, InfoHash, Magnet, Torrent, create_torrent};
use shoal_node::{
    AddMagnet, AddTorrent, Multiaddr, NodeConfig, NodeHandle, Rate, TorrentHandle, TorrentProgress,
};

use crate::{quoted_input, read_torrent};

/// Options shared by every command that runs a node.
#[derive(Args)]
pub struct NodeArgs {
    /// Address to listen on; repeat for more [default: /ip4/0.0.0.0/tcp/0]
    #[arg(long = "listen", value_name = "MULTIADDR")]
    listen: Vec<Multiaddr>,
    /// Where the node keeps its identity and resume state [default: .shoal/<info-hash> beside
    /// the data for seed and get (in -o DIR for get), .shoal-node for node]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Cap on upload, e.g. 2MiB/s or 500KiB/s
    #[arg(long, value_name = "RATE")]
    upload_limit: Option<Rate>,
    /// Cap on download, e.g. 10MiB/s
    #[arg(long, value_name = "RATE")]
    download_limit: Option<Rate>,
    /// Serve stats on this local address: /stats (JSON) and /metrics (Prometheus)
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// A DHT node to join through, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3…; repeatable
    #[arg(long = "bootstrap", value_name = "MULTIADDR")]
    bootstrap: Vec<Multiaddr>,
    /// Stay out of the DHT: no announcements, no provider lookups
    #[arg(long)]
    no_dht: bool,
    /// Do not exchange peer lists (PEX) with peers
    #[arg(long)]
    no_pex: bool,
    /// Answer every request with corrupt data (a hostile peer, as testnets play one)
    #[arg(long)]
    corrupt_uploads: bool,
    /// Threads that run the network (encryption, multiplexing, the swarm logic); disk reads,
    /// writes and hashing have threads of their own. One measured fastest on a 2-core machine
    #[arg(long, value_name = "N", default_value_t = NonZeroUsize::MIN)]
    pub network_threads: NonZeroUsize,
}

#[derive(Args)]
pub struct DhtNodeArgs {
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Args)]
pub struct SeedArgs {
    /// The file or directory to share
    path: PathBuf,
    /// Its .torrent, if it has one already (otherwise one is made)
    #[arg(long, value_name = "FILE.torrent")]
    torrent: Option<PathBuf>,
    /// An HTTP tracker to announce to, besides the torrent's own; repeatable
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Args)]
pub struct GetArgs {
    /// A .torrent file or a magnet link (quote it: it contains `&`)
    source: String,
    /// Directory to download into (the torrent's files go below it)
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// A peer to trade with, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3…; repeatable
    #[arg(long = "peer", value_name = "MULTIADDR")]
    peers: Vec<Multiaddr>,
    /// An HTTP tracker to announce to, besides the torrent's own; repeatable
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Exit (status 0) once every piece is verified on disk, instead of seeding on
    #[arg(long)]
    exit_when_done: bool,
    /// Never upload (a free-rider, as testnets play one)
    #[arg(long)]
    free_ride: bool,
    /// With a magnet link: write the fetched metadata to this .torrent file
    #[arg(long, value_name = "FILE")]
    save_torrent: Option<PathBuf>,
    /// With a magnet link: give up when no peer has delivered the metadata in this time
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    metadata_timeout: u64,
    #[command(flatten)]
    pub node: NodeArgs,
}

async fn start_node(args: &NodeArgs, default_data_dir: PathBuf) -> Result<NodeHandle> {
    let data_dir = args.data_dir.clone().unwrap_or(default_data_dir);
    let mut config = NodeConfig::loopback(data_dir);
    config.listen = if args.listen.is_empty() {
        vec!["/ip4/0.0.0.0/tcp/0".parse()?]
    } else {
        args.listen.clone()
    };
    config.upload_limit = args.upload_limit;
    config.download_limit = args.download_limit;
    config.dht.enabled = !args.no_dht;
    config.dht.bootstrap = args.bootstrap.clone();
    config.pex = !args.no_pex;
    config.corrupt_uploads = args.corrupt_uploads;
    let node = shoal_node::start(config).await?;
    if let Some(addr) = args.metrics {
        let (bound, _task) = shoal_node::metrics::serve(addr, node.clone()).await?;
        announce(&format!("metrics http://{bound}/stats"))?;
    }
    Ok(node)
}

/// Prints a line on stdout and flushes it at once: scripts wait for these lines.
fn announce(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// The data directory used without `--data-dir`: `.shoal/<info-hash>` in `dir`, one per torrent,
/// so two nodes started beside each other never share an identity or resume state, and the
/// same command run again finds its own.
fn default_data_dir(dir: &Path, info_hash: &InfoHash) -> PathBuf {
    dir.join(".shoal").join(info_hash.to_hex())
}

pub async fn seed(args: SeedArgs) -> Result<()> {
    let path = args
        .path
        .canonicalize()
        .with_context(|| args.path.display().to_string())?;
    let parent = path
        .parent()
        .with_context(|| format!("{}: cannot seed the root directory", path.display()))?
        .to_owned();
    let torrent = match &args.torrent {
        Some(file) => read_torrent(file)?,
        None => {
            let options = CreateOptions {
                created_by: Some(format!("shoal/{}", env!("CARGO_PKG_VERSION"))),
                ..CreateOptions::default()
            };
            create_torrent(&path, &options, &mut |_| {})?.torrent
        }
    };
    let data_dir = default_data_dir(&parent, &torrent.info_hash);
    let node = start_node(&args.node, data_dir).await?;
    let mut add = AddTorrent::new(torrent.clone(), parent);
    add.trackers = args.trackers.clone();
    // The data is the user's: never create, extend or write its files.
    add.storage.read_only = true;
    let handle = match node.add_torrent(add).await {
        Ok(handle) => handle,
        Err(e) => {
            node.shutdown().await;
            return Err(e).with_context(|| path.display().to_string());
        }
    };
    let mut magnet = torrent.magnet();
    for url in &args.trackers {
        if !magnet.trackers.contains(url) {
            magnet.trackers.push(url.clone());
        }
    }
    for address in node.listen_addrs() {
        announce(&format!("listen {address}"))?;
        magnet.peers.push(address.to_string());
    }
    announce(&format!("magnet {magnet}"))?;
    run_until_interrupted(&node, &handle, false).await
}

/// What `shoal get` fetches.
enum Source {
    Torrent(Torrent),
    Magnet(Magnet),
}

impl Source {
    /// A magnet link, or else the path of a .torrent file. Errors name the input.
    fn read(source: &str) -> Result<Source> {
        if source.starts_with("magnet:") {
            let magnet = source.parse().with_context(|| quoted_input(source))?;
            Ok(Source::Magnet(magnet))
        } else {
            Ok(Source::Torrent(read_torrent(Path::new(source))?))
        }
    }

    fn info_hash(&self) -> InfoHash {
        match self {
            Source::Torrent(torrent) => torrent.info_hash,
            Source::Magnet(magnet) => magnet.info_hash,
        }
    }
}

pub async fn get(args: GetArgs) -> Result<()> {
    let source = Source::read(&args.source)?;
    std::fs::create_dir_all(&args.output).with_context(|| args.output.display().to_string())?;
    let data_dir = default_data_dir(&args.output, &source.info_hash());
    let node = start_node(&args.node, data_dir).await?;
    for address in node.listen_addrs() {
        announce(&format!("listen {address}"))?;
    }
    let handle = match source {
        Source::Torrent(torrent) => {
            let mut add = AddTorrent::new(torrent, args.output.clone());
            add.trackers = args.trackers.clone();
            add.swarm.upload = !args.free_ride;
            node.add_torrent(add).await?
        }
        Source::Magnet(mut magnet) => {
            magnet
                .peers
                .extend(args.peers.iter().map(|p| p.to_string()));
            for url in &args.trackers {
                if !magnet.trackers.contains(url) {
                    magnet.trackers.push(url.clone());
                }
            }
            fetch_metadata(&node, magnet, &args).await?
        }
    };
    let start = handle.progress().borrow().clone();
    announce(&format!(
        "resume {}/{} pieces",
        start.pieces_have, start.num_pieces
    ))?;
    for peer in args.peers {
        handle.add_peer(peer).await?;
    }
    run_until_interrupted(&node, &handle, args.exit_when_done).await
}

/// Fetches a magnet link's metadata (a spinner meanwhile), saves it if asked, and returns the
/// torrent, now downloading.
async fn fetch_metadata(
    node: &NodeHandle,
    magnet: Magnet,
    args: &GetArgs,
) -> Result<TorrentHandle> {
    let info_hash = magnet.info_hash;
    let spinner =
        ProgressBar::new_spinner().with_message(format!("fetching metadata of {info_hash}"));
    spinner.enable_steady_tick(Duration::from_millis(200));
    let mut add = AddMagnet::new(magnet, args.output.clone());
    add.swarm.upload = !args.free_ride;
    add.metadata_timeout = Duration::from_secs(args.metadata_timeout);
    let added = node.add_magnet(add).await;
    spinner.finish_and_clear();
    let (torrent, handle) = match added {
        Ok(added) => added,
        Err(e) => {
            node.shutdown().await;
            return Err(anyhow::Error::from(e).context(quoted_input(&args.source)));
        }
    };
    if let Some(path) = &args.save_torrent {
        std::fs::write(path, torrent.to_bytes()).with_context(|| path.display().to_string())?;
    }
    announce(&format!(
        "metadata {} {} bytes in {} pieces",
        torrent.info.name,
        torrent.info.total_size,
        torrent.info.geometry().num_pieces()
    ))?;
    Ok(handle)
}

/// `shoal node`: a DHT participant with no torrents, until Ctrl-C.
pub async fn dht_node(args: DhtNodeArgs) -> Result<()> {
    let node = start_node(&args.node, PathBuf::from(".shoal-node")).await?;
    for address in node.listen_addrs() {
        announce(&format!("listen {address}"))?;
    }
    tokio::signal::ctrl_c().await?;
    node.shutdown().await;
    Ok(())
}

fn progress_bar(progress: &TorrentProgress) -> ProgressBar {
    let style = ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(u64::from(progress.num_pieces.max(1))).with_style(style)
}

fn status_line(p: &TorrentProgress) -> String {
    format!(
        "{}/{} pieces, down {}/s up {}/s, {} peers, {} uploaded",
        p.pieces_have,
        p.num_pieces,
        HumanBytes(p.download_rate),
        HumanBytes(p.upload_rate),
        p.peers,
        HumanBytes(p.bytes_uploaded)
    )
}

/// Shows progress until Ctrl-C (or completion with `exit_when_done`), then stops cleanly:
/// the resume state is saved and every connection closed.
async fn run_until_interrupted(
    node: &NodeHandle,
    handle: &TorrentHandle,
    exit_when_done: bool,
) -> Result<()> {
    let mut progress = handle.progress();
    let bar = progress_bar(&progress.borrow());
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let p = progress.borrow_and_update().clone();
        bar.set_position(u64::from(p.pieces_have));
        bar.set_message(status_line(&p));
        if (p.complete && exit_when_done) || p.error.is_some() {
            break;
        }
        tokio::select! {
            _ = &mut interrupted => break,
            changed = progress.changed() => if changed.is_err() { break },
            _ = ticker.tick() => {}
        }
    }
    bar.finish_and_clear();
    let last = handle.progress().borrow().clone();
    if let Some(error) = &last.error {
        // The torrent stopped itself, its resume state saved.
        node.shutdown().await;
        anyhow::bail!("{error}");
    }
    let complete = last.complete;
    if complete && exit_when_done {
        announce(&format!(
            "complete downloaded={} uploaded={}",
            last.bytes_downloaded, last.bytes_uploaded
        ))?;
    }
    handle.stop().await?;
    node.shutdown().await;
    if exit_when_done && !complete {
        bail!("stopped before the download was complete");
    }
    Ok(())
}
