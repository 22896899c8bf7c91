//! The `shoal` command line: argument parsing and output. Everything it does lives in the crates.

mod net;
mod report;
mod testnet;

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use shoal_metainfo::{CreateOptions, HashProgress, Magnet, Torrent, create_torrent};

/// Inputs smaller than this are hashed without a progress bar.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
/// Largest .torrent file read: the parser's own input limit, so nothing it would refuse is read.
const MAX_TORRENT_FILE: u64 = shoal_metainfo::bencode::DecodeLimits::TORRENT.max_input as u64;

#[derive(Parser)]
#[command(
    name = "shoal",
    version,
    about = "A trackerless BitTorrent-style peer network on libp2p"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hash a file or directory and write its .torrent
    Create(CreateArgs),
    /// Share a file or directory: prints `listen` lines and a `magnet` line, then seeds
    Seed(net::SeedArgs),
    /// Download a torrent from peers, verify it, then seed it (or exit with --exit-when-done)
    Get(net::GetArgs),
    /// Describe a .torrent file
    Show {
        /// The .torrent file
        torrent: PathBuf,
        /// Print a JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Print a .torrent's magnet link, or explain a magnet link with --parse
    Magnet {
        /// The .torrent file
        #[arg(required_unless_present = "parse", conflicts_with = "parse")]
        torrent: Option<PathBuf>,
        /// A magnet link to explain
        #[arg(long, value_name = "URI")]
        parse: Option<String>,
        /// With --parse: print a JSON object
        #[arg(long, requires = "parse")]
        json: bool,
    },
    /// Run a DHT node with no torrents (a bootstrap node): prints `listen` lines, runs until Ctrl-C
    Node(net::DhtNodeArgs),
    /// Run an HTTP BitTorrent tracker: prints a `tracker URL` line, then serves until Ctrl-C or
    /// SIGTERM
    Tracker(TrackerArgs),
    /// Run a whole swarm on this machine from a scenario file, or compare two runs
    Testnet(testnet::TestnetArgs),
}

#[derive(Args)]
struct TrackerArgs {
    /// Address to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6969")]
    listen: std::net::SocketAddr,
    /// Seconds between a client's announces (min interval is half; peers expire after two)
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    interval: u64,
    /// Private mode: a file of `NAME PASSKEY` lines; users announce to /announce/PASSKEY
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// With --users: where per-user uploaded/downloaded totals are kept [default: FILE.state.json]
    #[arg(long, value_name = "FILE", requires = "users")]
    state: Option<PathBuf>,
    /// A reverse proxy whose requests may set the peer's address with `ip`; repeat for more
    #[arg(long = "trusted-proxy", value_name = "IP")]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Answer /scrape without info_hash with every torrent
    #[arg(long)]
    full_scrape: bool,
    /// Most torrents tracked at once
    #[arg(long, value_name = "N", default_value_t = shoal_tracker::DEFAULT_MAX_SWARMS)]
    max_torrents: usize,
    /// Most peers in one torrent
    #[arg(long, value_name = "N", default_value_t = shoal_tracker::DEFAULT_MAX_PEERS_PER_SWARM)]
    max_peers_per_torrent: usize,
    /// Most peers in all torrents together
    #[arg(long, value_name = "N", default_value_t = shoal_tracker::DEFAULT_MAX_PEERS)]
    max_peers: usize,
    /// Most connections open at once; one more is told the tracker is busy
    #[arg(long, value_name = "N", default_value_t = shoal_tracker::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

#[derive(Args)]
struct CreateArgs {
    /// The file or directory to share
    path: PathBuf,
    /// Where to write the .torrent [default: NAME.torrent in the current directory]
    #[arg(short, long, value_name = "OUT.torrent")]
    output: Option<PathBuf>,
    /// Piece length in bytes: a power of two from 16384 to 536870912 [default: 1000-2000 pieces]
    #[arg(long, value_name = "BYTES")]
    piece_length: Option<u64>,
    /// Tracker announce URL; repeat for more (each becomes its own tier)
    #[arg(long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Mark the torrent private (BEP 27): trackers and given peers only, no DHT or PEX
    #[arg(long)]
    private: bool,
    /// A comment stored in the torrent
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// Store the current time as the creation date (left out by default so the same content
    /// always gives the same file)
    #[arg(long)]
    creation_date: bool,
    /// Hashing threads [default: one per core]
    #[arg(long, value_name = "N")]
    threads: Option<NonZeroUsize>,
    /// Replace OUT.torrent if it exists
    #[arg(long)]
    force: bool,
    /// Print the `show --json` object of the new torrent instead of text
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Create(args) => create(args),
        Command::Seed(args) => {
            let threads = Some(args.node.network_threads);
            run_async(net::seed(args), threads)
        }
        Command::Get(args) => {
            let threads = Some(args.node.network_threads);
            run_async(net::get(args), threads)
        }
        Command::Node(args) => {
            let threads = Some(args.node.network_threads);
            run_async(net::dht_node(args), threads)
        }
        Command::Show { torrent, json } => show(&torrent, json),
        Command::Magnet {
            torrent,
            parse,
            json,
        } => magnet(torrent.as_deref(), parse.as_deref(), json),
        Command::Tracker(args) => run_async(tracker(args), None),
        Command::Testnet(args) => run_async(testnet::testnet(args), None),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `shoal show --json x | head`: the reader left, which is not a failure.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings and errors only, except the
/// stream multiplexer's warnings about peers that closed their connection mid-frame, which a
/// large swarm produces by the thousand and which say nothing wrong).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,yamux=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs `job` on a runtime with `threads` worker threads (`None`: one per core).
fn run_async(
    job: impl std::future::Future<Output = Result<()>>,
    threads: Option<NonZeroUsize>,
) -> Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        runtime.worker_threads(threads.get());
    }
    runtime.enable_all().build()?.block_on(job)
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writes to stdout, reporting a closed pipe as an error instead of panicking like `print!`.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Reads and parses a .torrent file, refusing one larger than [`MAX_TORRENT_FILE`] without
/// reading it all: the size is checked on the open file, and the read stops one byte past the
/// limit, so a file that grows meanwhile (or a pipe, whose size is unknown) is refused too.
pub(crate) fn read_torrent(path: &Path) -> Result<Torrent> {
    use std::io::Read;
    let name = path.display();
    let limit = MAX_TORRENT_FILE;
    let file = std::fs::File::open(path).with_context(|| name.to_string())?;
    let size = file.metadata().with_context(|| name.to_string())?.len();
    if size > limit {
        bail!("{name}: {size} bytes is larger than the {limit}-byte limit for a .torrent");
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| name.to_string())?;
    if bytes.len() as u64 > limit {
        bail!("{name}: more than the {limit}-byte limit for a .torrent");
    }
    Torrent::from_bytes(&bytes).with_context(|| name.to_string())
}

/// Longest part of a command-line input quoted in an error message.
const MAX_QUOTED_INPUT: usize = 120;

/// A command-line input as an error message names it: cut to [`MAX_QUOTED_INPUT`] characters
/// (a magnet link may be 64 KiB), with control characters escaped so the error stays one line.
pub(crate) fn quoted_input(input: &str) -> String {
    let mut out = String::new();
    for c in input.chars().take(MAX_QUOTED_INPUT) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if input.chars().nth(MAX_QUOTED_INPUT).is_some() {
        out.push('…');
    }
    out
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    emit(&text)
}

fn show(path: &Path, json: bool) -> Result<()> {
    let torrent = read_torrent(path)?;
    if json {
        print_json(&report::torrent_json(&torrent))
    } else {
        emit(&report::torrent_text(&torrent))
    }
}

fn magnet(torrent: Option<&Path>, parse: Option<&str>, json: bool) -> Result<()> {
    if let Some(uri) = parse {
        let magnet: Magnet = uri.parse().with_context(|| quoted_input(uri))?;
        if json {
            return print_json(&report::magnet_json(&magnet));
        }
        return emit(&report::magnet_text(&magnet));
    }
    let Some(path) = torrent else {
        bail!("give a .torrent file, or --parse URI");
    };
    emit(&format!("{}\n", read_torrent(path)?.magnet()))
}

async fn tracker(args: TrackerArgs) -> Result<()> {
    let mut tracker = shoal_tracker::TrackerConfig::with_interval(std::time::Duration::from_secs(
        args.interval.max(1),
    ));
    tracker.trusted_proxies = args.trusted_proxies;
    tracker.full_scrape = args.full_scrape;
    tracker.max_swarms = args.max_torrents;
    tracker.max_peers_per_swarm = args.max_peers_per_torrent;
    tracker.max_peers = args.max_peers;
    let private = args.users.map(|users_file| {
        let state_file = args.state.unwrap_or_else(|| {
            let mut name = users_file.clone().into_os_string();
            name.push(".state.json");
            PathBuf::from(name)
        });
        shoal_tracker::PrivateConfig {
            users_file,
            state_file,
            flush_interval: shoal_tracker::DEFAULT_FLUSH_INTERVAL,
        }
    });
    let config = shoal_tracker::ServerConfig {
        listen: args.listen,
        tracker,
        private,
        max_connections: args.max_connections.max(1),
        ..Default::default()
    };
    let server = shoal_tracker::TrackerServer::bind(config).await?;
    // Ctrl-C and SIGTERM stop it cleanly: private-mode totals are written one last time.
    let stop = interrupted()?;
    emit(&format!("tracker {}\n", server.announce_url()))?;
    server.run(stop).await?;
    Ok(())
}

/// A progress bar that appears once hashing turns out to be long enough to need one.
fn hashing_progress() -> impl FnMut(HashProgress) {
    let mut bar: Option<ProgressBar> = None;
    move |p: HashProgress| {
        if p.total_bytes < PROGRESS_MIN_BYTES {
            return;
        }
        let bar = bar.get_or_insert_with(|| {
            let style = ProgressStyle::with_template(
                "hashing {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(p.total_bytes).with_style(style)
        });
        bar.set_position(p.bytes_hashed);
        if p.bytes_hashed >= p.total_bytes {
            bar.finish_and_clear();
        }
    }
}

fn create(args: CreateArgs) -> Result<()> {
    let options = CreateOptions {
        piece_length: args.piece_length,
        trackers: args.trackers,
        comment: args.comment,
        private: args.private,
        created_by: Some(format!("shoal/{}", env!("CARGO_PKG_VERSION"))),
        creation_date: args.creation_date.then(unix_now).transpose()?,
        threads: args.threads,
    };
    // The library's errors name the file they are about.
    let created = create_torrent(&args.path, &options, &mut hashing_progress())?;
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", created.torrent.info.name)));
    write_new_file(&output, &created.bytes, args.force)?;
    if args.json {
        return print_json(&report::torrent_json(&created.torrent));
    }
    emit(&format!(
        "created    {}\ninfo-hash  {}\nmagnet     {}\n",
        output.display(),
        created.torrent.info_hash,
        created.torrent.magnet()
    ))
}

fn unix_now() -> Result<i64> {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?;
    Ok(i64::try_from(since.as_secs())?)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half
/// a torrent and a failed write leaves nothing behind.
fn write_new_file(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let name = path.display();
    if !force && path.exists() {
        bail!("{name}: already exists (add --force to replace it)");
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .with_context(|| format!("{name}: not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| name.to_string());
    }
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so either stops a long-running command cleanly. The
/// handlers are installed now, so a signal that comes early is not fatal either.
#[cfg(unix)]
fn interrupted() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn interrupted() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}
