//! Step 3: some nodes seed a torrent each (and so provide it); the others look the providers
//! up. A lookup's latency is the time from `find_providers` to the first provider, connected
//! (so ready to fetch from); it succeeds if the expected provider arrives.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use shoal_metainfo::{CreateOptions, Torrent, create_torrent};
use shoal_node::{AddTorrent, NodeHandle, PeerId, TorrentHandle};

use crate::network::Bench;
use crate::report::{millis, ms, percentile, sorted};

const CONTENT_LEN: usize = 256 * 1024;
const PIECE_LENGTH: u64 = 16 * 1024;
/// One lookup: the node's query timeout is 30 s, plus the dials to the providers.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(45);

/// One torrent of the run, with its content on disk where its provider seeds it.
pub struct Content {
    pub torrent: Torrent,
    pub dir: PathBuf,
    pub bytes: Vec<u8>,
    pub file: String,
}

pub fn make_content(root: &Path, k: usize, seed: u64) -> Content {
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

/// xorshift64*: reproducible choices without another crate.
pub struct Rng(pub u64);

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

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Node `providers[k]` seeds `contents[k]`; returns the torrents' handles once the
/// announcements had `--announce-s` to spread.
pub async fn provide(
    bench: &Bench,
    nodes: &[NodeHandle],
    providers: &[usize],
    contents: &[Arc<Content>],
) -> Vec<TorrentHandle> {
    let mut seeds = Vec::new();
    for (&i, content) in providers.iter().zip(contents) {
        let add = AddTorrent::new(content.torrent.clone(), content.dir.clone());
        let handle = nodes[i].add_torrent(add).await.expect("provider adds");
        assert!(
            handle.progress().borrow().complete,
            "provider {i} has all pieces"
        );
        seeds.push(handle);
    }
    bench.say(format!(
        "{} providers (nodes {providers:?}) seed a torrent of {} KiB each; waiting {:?}",
        providers.len(),
        CONTENT_LEN / 1024,
        bench.args.announce
    ));
    tokio::time::sleep(bench.args.announce).await;
    seeds
}

/// `--lookups` lookups from the `lookers`, `--concurrency` at once, spread over the torrents:
/// each (looker, torrent) pair once before any repeats, so a lookup rarely starts connected.
pub async fn look_up(
    bench: &Bench,
    nodes: &[NodeHandle],
    lookers: &[usize],
    providers: &[usize],
    contents: &[Arc<Content>],
    rng: &mut Rng,
) {
    let mut pairs: Vec<(usize, usize)> = lookers
        .iter()
        .flat_map(|&i| (0..providers.len()).map(move |k| (i, k)))
        .collect();
    rng.shuffle(&mut pairs);
    let plan = (0..bench.args.lookups).map(|j| pairs[j % pairs.len()]);
    let started = Instant::now();
    let mut results = futures::stream::iter(plan.map(|(i, k)| {
        let node = nodes[i].clone();
        let expected = nodes[providers[k]].peer_id();
        let info_hash = contents[k].torrent.info_hash;
        async move { (i, k, lookup(node, info_hash, expected).await) }
    }))
    .buffer_unordered(bench.args.concurrency);
    let mut failures = Vec::new();
    while let Some((i, k, result)) = results.next().await {
        bench.record(|s| {
            s.lookups += 1;
            s.lookup_ok += usize::from(result.found_expected);
            s.lookup_ms.extend(result.first.map(millis));
        });
        if !result.found_expected {
            failures.push(format!("node {i} torrent {k}: {result:?}"));
        }
    }
    report(bench, started, &failures);
}

fn report(bench: &Bench, started: Instant, failures: &[String]) {
    let (count, ok, latencies) = {
        let s = bench.summary.lock().expect("summary");
        (s.lookups, s.lookup_ok, sorted(&s.lookup_ms))
    };
    bench.say(format!(
        "{count} lookups ({} at once) in {:.2}s: {ok} found the expected provider; first \
         provider p50={} p90={} p99={} max={} ms",
        bench.args.concurrency,
        started.elapsed().as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied()),
    ));
    for failure in failures.iter().take(20) {
        bench.say(format!("LOOKUP FAILED: {failure}"));
    }
}

#[derive(Debug, Default)]
struct Lookup {
    /// Time to the first provider, if any arrived.
    first: Option<Duration>,
    found_expected: bool,
    /// Provider ids received.
    received: usize,
    /// Time until the lookup finished, if it did in time.
    ended: Option<Duration>,
}

/// One lookup, drained to its end (the node runs the query to completion either way).
async fn lookup(node: NodeHandle, info_hash: shoal_metainfo::InfoHash, expected: PeerId) -> Lookup {
    let started = Instant::now();
    let mut result = Lookup::default();
    let Ok(mut found) = node.find_providers(info_hash).await else {
        return result;
    };
    let deadline = tokio::time::Instant::now() + LOOKUP_TIMEOUT;
    while let Ok(next) = tokio::time::timeout_at(deadline, found.recv()).await {
        let Some(peer) = next else {
            result.ended = Some(started.elapsed());
            break;
        };
        result.first.get_or_insert_with(|| started.elapsed());
        result.received += 1;
        result.found_expected |= peer == expected;
    }
    result
}
