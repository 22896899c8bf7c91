//! Command-line options of the benchmark, and the hidden ones a worker process is started with.

use std::path::PathBuf;
use std::time::Duration;

/// Nodes per worker process when `--processes` is not given.
const NODES_PER_PROCESS: usize = 25;

/// What to run; see the crate documentation in `main.rs` for each option.
#[derive(Debug, Clone)]
pub struct Args {
    pub nodes: usize,
    pub batch: usize,
    pub min_routing: usize,
    pub providers: usize,
    pub lookups: usize,
    pub concurrency: usize,
    pub magnets: usize,
    pub settle: Duration,
    pub announce: Duration,
    pub timeout: Duration,
    /// How long to wait for the joining traffic to end before measuring (0: do not wait).
    pub quiet_timeout: Duration,
    pub seed: u64,
    /// Per-node connection cap (`NodeConfig::max_connections`); `None`: fit the fd limit.
    pub max_connections: Option<u32>,
    /// `NodeConfig::idle_connection_timeout`; `None`: the node's default.
    pub idle_timeout: Option<Duration>,
    /// Worker processes the nodes are spread over; `None`: one per 25 nodes.
    pub processes: Option<usize>,
    /// Hidden: run as worker process number K (the parent starts them).
    pub worker: Option<usize>,
    /// Hidden: the run's directory, where a worker's nodes keep their data.
    pub root: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            nodes: 200,
            batch: 20,
            min_routing: 10,
            providers: 5,
            lookups: 200,
            concurrency: 10,
            magnets: 10,
            settle: Duration::from_secs(5),
            announce: Duration::from_secs(2),
            timeout: Duration::from_secs(900),
            quiet_timeout: Duration::from_secs(360),
            seed: 0x5eed_0d47,
            max_connections: None,
            idle_timeout: None,
            processes: None,
            worker: None,
            root: None,
        }
    }
}

const FLAGS: [&str; 16] = [
    "--nodes",
    "--batch",
    "--min-routing",
    "--providers",
    "--lookups",
    "--concurrency",
    "--magnets",
    "--settle-s",
    "--announce-s",
    "--timeout-s",
    "--quiet-timeout-s",
    "--seed",
    "--max-connections",
    "--idle-timeout-s",
    "--processes",
    "--worker",
];

impl Args {
    /// The process arguments: `--flag N` or `--flag=N`; anything else (cargo passes
    /// `--bench`) is ignored.
    pub fn parse() -> Self {
        let mut args = Self::default();
        let all: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < all.len() {
            let (flag, inline) = match all[i].split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (all[i].clone(), None),
            };
            i += 1;
            if !FLAGS.contains(&flag.as_str()) && flag != "--root" {
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    all.get(i - 1).cloned().unwrap_or_default()
                }
            };
            if flag == "--root" {
                args.root = Some(PathBuf::from(value));
                continue;
            }
            match value.parse::<u64>() {
                Ok(n) => args.set(&flag, n),
                Err(_) => eprintln!("ignoring {flag} {value:?}: not a number"),
            }
        }
        args
    }

    fn set(&mut self, flag: &str, n: u64) {
        let count = usize::try_from(n).unwrap_or(usize::MAX);
        let secs = Duration::from_secs(n);
        match flag {
            "--nodes" => self.nodes = count.max(2),
            "--batch" => self.batch = count.max(1),
            "--min-routing" => self.min_routing = count,
            "--providers" => self.providers = count.max(1),
            "--lookups" => self.lookups = count,
            "--concurrency" => self.concurrency = count.max(1),
            "--magnets" => self.magnets = count,
            "--settle-s" => self.settle = secs,
            "--announce-s" => self.announce = secs,
            "--timeout-s" => self.timeout = secs,
            "--quiet-timeout-s" => self.quiet_timeout = secs,
            "--max-connections" => self.max_connections = u32::try_from(n).ok(),
            "--idle-timeout-s" => self.idle_timeout = Some(secs),
            "--processes" => self.processes = Some(count.max(1)),
            "--worker" => self.worker = Some(count),
            _ => self.seed = n,
        }
    }

    /// Nodes per worker process: node `i` lives in worker `i / nodes_per_process()`.
    pub fn nodes_per_process(&self) -> usize {
        let processes = self
            .processes
            .unwrap_or_else(|| self.nodes.div_ceil(NODES_PER_PROCESS));
        self.nodes.div_ceil(processes.clamp(1, self.nodes))
    }

    /// Worker processes actually started (fewer than `--processes` if that does not divide
    /// the nodes evenly).
    pub fn process_count(&self) -> usize {
        self.nodes.div_ceil(self.nodes_per_process())
    }

    /// What a worker process is started with: its number, the run's directory, and the options
    /// that shape its nodes.
    pub fn worker_argv(&self, worker: usize, root: &std::path::Path) -> Vec<String> {
        let mut argv = vec![
            "--worker".to_owned(),
            worker.to_string(),
            "--root".to_owned(),
            root.display().to_string(),
        ];
        if let Some(max) = self.max_connections {
            argv.extend(["--max-connections".to_owned(), max.to_string()]);
        }
        if let Some(idle) = self.idle_timeout {
            argv.extend(["--idle-timeout-s".to_owned(), idle.as_secs().to_string()]);
        }
        argv
    }
}
