//! The parent's side of the worker processes: it starts them (the bench binary again, with a
//! hidden `--worker K`), sends them requests and routes their replies.
//!
//! The protocol is one line each way. A request is `ID VERB ARGS...` on the worker's stdin; the
//! reply is `ID ok KEY=VALUE...` or `ID err MESSAGE` on its stdout, in any order (a worker
//! serves requests concurrently: ten lookups at once, say). The verbs are in `worker.rs`. A
//! worker logs to stderr, which is the parent's.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

use crate::args::Args;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>>;

/// A worker's answer: `KEY=VALUE` fields, in order (a key may repeat).
#[derive(Debug, Default)]
pub struct Reply(Vec<(String, String)>);

impl Reply {
    /// `ok KEY=VALUE...` as a reply, `err MESSAGE` (or anything else) as the error.
    pub fn parse(line: &str) -> Result<Self, String> {
        let Some(fields) = line.strip_prefix("ok") else {
            return Err(line.strip_prefix("err ").unwrap_or(line).to_owned());
        };
        let pairs = fields
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Ok(Self(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A number; `None` if missing or `-`.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok()
    }

    /// A comma-separated list of counts.
    pub fn counts(&self, key: &str) -> Vec<usize> {
        self.get(key)
            .unwrap_or_default()
            .split(',')
            .filter_map(|c| c.parse().ok())
            .collect()
    }
}

/// One worker process.
pub struct Worker {
    pub index: usize,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
    /// Taken out when the worker is reaped.
    child: Mutex<Option<Child>>,
}

impl Worker {
    fn spawn(args: &Args, index: usize, root: &Path) -> std::io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args.worker_argv(index, root))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let pending = Pending::default();
        tokio::spawn(read_replies(index, stdout, pending.clone()));
        Ok(Self {
            index,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
            child: Mutex::new(Some(child)),
        })
    }

    /// Sends `request` (`VERB ARGS...`) and waits for its reply.
    pub async fn call(&self, request: impl AsRef<str>) -> Result<Reply, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id, reply);
        let sent = {
            let mut stdin = self.stdin.lock().await;
            let line = format!("{id} {}\n", request.as_ref());
            match stdin.write_all(line.as_bytes()).await {
                Ok(()) => stdin.flush().await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = sent {
            self.pending.lock().expect("pending").remove(&id);
            return Err(format!("worker {}: cannot send: {e}", self.index));
        }
        let line = answer
            .await
            .map_err(|_| format!("worker {} exited", self.index))?;
        Reply::parse(&line).map_err(|e| format!("worker {}: {e}", self.index))
    }

    /// Waits up to `grace` for the process to exit, then kills it.
    async fn reap(&self, grace: Duration) {
        let Some(mut child) = self.child.lock().expect("child").take() else {
            return;
        };
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            eprintln!(
                "worker {} did not exit in {grace:?}: killing it",
                self.index
            );
            let _ = child.kill().await;
        }
    }

    /// Kills the process unless it was reaped (`std::process::exit` runs no destructors, so
    /// `kill_on_drop` alone would leave workers behind).
    pub fn kill(&self) {
        if let Some(child) = self.child.lock().expect("child").as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Routes each reply line to the request that waits for it. When the worker's stdout closes,
/// the requests still waiting get an error (their sender is dropped).
async fn read_replies(index: usize, stdout: ChildStdout, pending: Pending) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let routed = line.split_once(' ').and_then(|(id, rest)| {
            let reply = pending.lock().ok()?.remove(&id.parse().ok()?)?;
            reply.send(rest.to_owned()).ok()
        });
        if routed.is_none() {
            eprintln!("worker {index}: unexpected line {line:?}");
        }
    }
    pending.lock().expect("pending").clear();
}

/// The worker processes; node `i` lives in worker `i / per_worker`.
pub struct Cluster {
    pub workers: Vec<Worker>,
    pub per_worker: usize,
}

impl Cluster {
    /// Starts the worker processes (no nodes yet). Must run inside the tokio runtime.
    pub fn spawn(args: &Args, root: &Path) -> std::io::Result<Self> {
        let workers = (0..args.process_count())
            .map(|k| Worker::spawn(args, k, root))
            .collect::<std::io::Result<_>>()?;
        Ok(Self {
            workers,
            per_worker: args.nodes_per_process(),
        })
    }

    pub fn worker_of(&self, node: usize) -> &Worker {
        &self.workers[node / self.per_worker]
    }

    /// The same request to every worker, at once.
    pub async fn broadcast(&self, request: impl AsRef<str>) -> Vec<Result<Reply, String>> {
        let request = request.as_ref();
        join_all(self.workers.iter().map(|w| w.call(request))).await
    }

    /// Waits for every worker to exit (after `shutdown`), killing any that lingers.
    pub async fn reap(&self, grace: Duration) {
        join_all(self.workers.iter().map(|w| w.reap(grace))).await;
    }

    pub fn kill(&self) {
        self.workers.iter().for_each(Worker::kill);
    }
}
