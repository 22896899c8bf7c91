//! Step 3: some nodes seed a torrent each (and so provide it); the others look the providers
//! up. A lookup's latency is the time from `find_providers` to the first provider, connected
//! (so ready to fetch from); it succeeds if the expected provider arrives.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::kad::{K_VALUE, KBucketKey, RecordKey};
use shoal_metainfo::{CreateOptions, Torrent, create_torrent};
use shoal_node::{NodeHandle, PeerId};

use crate::cluster::Reply;
use crate::network::Bench;
use crate::report::{millis, ms, percentile, sorted};

const CONTENT_LEN: usize = 256 * 1024;
const PIECE_LENGTH: u64 = 16 * 1024;
/// One lookup: the node's query timeout is 30 s, plus the dials to the providers.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(45);

/// One torrent of the run, with its content on disk where its provider seeds it.
pub struct Content {
    pub torrent: Torrent,
    pub bytes: Vec<u8>,
    pub file: String,
}

fn content_paths(root: &Path, k: usize) -> (PathBuf, String) {
    (root.join(format!("seed{k}")), format!("f{k}.bin"))
}

/// The parent writes torrent `k`'s content under the run's directory.
pub fn make_content(root: &Path, k: usize, seed: u64) -> Content {
    let (dir, file) = content_paths(root, k);
    std::fs::create_dir_all(&dir).expect("seed dir");
    let bytes = shoal_testkit::pseudo_random(CONTENT_LEN, seed.wrapping_add(k as u64 * 7919));
    std::fs::write(dir.join(&file), &bytes).expect("write content");
    let (torrent, _) = load_content(root, k).expect("torrent created");
    Content {
        torrent,
        bytes,
        file,
    }
}

/// Torrent `k` and the directory it is seeded from, made from the content the parent wrote
/// (the same bytes and options give the same info-hash in every process).
pub fn load_content(root: &Path, k: usize) -> Result<(Torrent, PathBuf), String> {
    let (dir, file) = content_paths(root, k);
    let options = CreateOptions {
        piece_length: Some(PIECE_LENGTH),
        ..CreateOptions::default()
    };
    let created = create_torrent(&dir.join(&file), &options, &mut |_| {})
        .map_err(|e| format!("torrent {k}: {e}"))?;
    Ok((created.torrent, dir))
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

/// Node `providers[k]` seeds `contents[k]` (in its worker); returns once the announcements
/// had `--announce-s` to spread.
pub async fn provide(bench: &Bench, providers: &[usize], contents: &[Arc<Content>]) {
    for (k, (&i, content)) in providers.iter().zip(contents).enumerate() {
        let hex = content.torrent.info_hash.to_hex();
        if let Err(e) = bench
            .cluster
            .worker_of(i)
            .call(&format!("provide {i} {k} {hex}"))
            .await
        {
            panic!("node {i} cannot seed torrent {k}: {e}");
        }
    }
    bench.say(format!(
        "{} providers (nodes {providers:?}) seed a torrent of {} KiB each; waiting {:?}",
        providers.len(),
        CONTENT_LEN / 1024,
        bench.args.announce
    ));
    tokio::time::sleep(bench.args.announce).await;
    for (k, content) in contents.iter().enumerate() {
        report_holders(bench, k, content.torrent.info_hash).await;
    }
}

/// Which nodes hold torrent `k`'s provider record, against the k (20) nodes closest to its
/// key, where the announcement should have put it and where lookups converge.
async fn report_holders(bench: &Bench, k: usize, info_hash: shoal_metainfo::InfoHash) {
    let mut held: Vec<usize> = bench
        .cluster
        .broadcast(format!("stored {info_hash}"))
        .await
        .into_iter()
        .filter_map(Result::ok)
        .flat_map(|r| r.counts("held"))
        .collect();
    held.sort_unstable();
    let key = KBucketKey::new(RecordKey::new(&info_hash.0));
    let mut by_distance: Vec<usize> = (0..bench.args.nodes).collect();
    by_distance.sort_by_key(|&i| KBucketKey::from(bench.peer(i)).distance(&key));
    let closest = &by_distance[..K_VALUE.get().min(by_distance.len())];
    let missing: Vec<usize> = closest
        .iter()
        .copied()
        .filter(|i| held.binary_search(i).is_err())
        .collect();
    bench.say(format!(
        "torrent {k}: provider record on {} nodes, {} of the {} closest to its key (missing: \
         {missing:?})",
        held.len(),
        closest.len() - missing.len(),
        closest.len(),
    ));
}

/// `--lookups` lookups from the `lookers`, `--concurrency` at once, spread over the torrents:
/// each (looker, torrent) pair once before any repeats, so a lookup rarely starts connected.
pub async fn look_up(
    bench: &Bench,
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
        let expected = bench.peer(providers[k]);
        let request = format!("lookup {i} {} {expected}", contents[k].torrent.info_hash);
        async move {
            let reply = bench.cluster.worker_of(i).call(&request).await;
            (i, k, reply.map(|r| Lookup::from_reply(&r)))
        }
    }))
    .buffer_unordered(bench.args.concurrency);
    let mut failures = Vec::new();
    while let Some((i, k, result)) = results.next().await {
        let found = result.as_ref().is_ok_and(|r| r.found_expected);
        bench.record(|s| {
            s.lookups += 1;
            s.lookup_ok += usize::from(found);
            s.lookup_ms
                .extend(result.as_ref().ok().and_then(|r| r.first).map(millis));
        });
        if !found {
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
pub struct Lookup {
    /// Time to the first provider, if any arrived.
    first: Option<Duration>,
    found_expected: bool,
    /// Provider ids received.
    received: usize,
    /// Time until the lookup finished, if it did in time.
    ended: Option<Duration>,
}

impl Lookup {
    /// As a worker's reply.
    pub fn to_fields(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1}", millis(d)));
        format!(
            "first_ms={} found={} received={} ended_ms={}",
            ms(self.first),
            u8::from(self.found_expected),
            self.received,
            ms(self.ended)
        )
    }

    fn from_reply(reply: &Reply) -> Self {
        let duration = |key| {
            reply
                .num(key)
                .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        };
        Self {
            first: duration("first_ms"),
            found_expected: reply.get("found") == Some("1"),
            received: reply.num("received").unwrap_or(0.0) as usize,
            ended: duration("ended_ms"),
        }
    }
}

/// One lookup (in a worker), drained to its end (the node runs the query to completion
/// either way).
pub async fn lookup(
    node: NodeHandle,
    info_hash: shoal_metainfo::InfoHash,
    expected: PeerId,
) -> Lookup {
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
