//! Step 4: what `shoal get MAGNET --bootstrap ADDR` does, one link after another: a fresh node
//! starts in the parent process (as `shoal get` would, apart from the network's nodes), joins
//! the DHT through node 0, and fetches a magnet link that carries only the info-hash. The
//! figure is the time from starting the node to the first verified piece on disk (the
//! process's own start-up, a few milliseconds, is not included). The fetchers stay up until
//! the end, seeding, as finished `shoal get` processes might.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_metainfo::Magnet;
use shoal_node::{AddMagnet, Multiaddr};

use crate::lookups::Content;
use crate::network::Bench;
use crate::report::millis;

/// One magnet link, start to completion.
const MAGNET_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct MagnetRun {
    started: Duration,
    metadata: Duration,
    first_byte: Duration,
    complete: Duration,
    intact: bool,
}

/// `--magnets` fresh nodes, each fetching one of the torrents by magnet link.
pub async fn fetch_magnets(bench: &Bench, bootstrap: &Multiaddr, contents: &[Arc<Content>]) {
    for j in 0..bench.args.magnets {
        let k = j % contents.len();
        let run = magnet(bench, j, bootstrap, &contents[k]).await;
        bench.record(|s| s.magnets += 1);
        match run {
            Ok(run) => {
                bench.say(format!(
                    "magnet {j} (torrent {k}): node up {:.0} ms, metadata {:.0} ms, first \
                     verified piece {:.0} ms, complete {:.0} ms{}",
                    millis(run.started),
                    millis(run.metadata),
                    millis(run.first_byte),
                    millis(run.complete),
                    if run.intact { "" } else { " CONTENT DIFFERS" }
                ));
                bench.record(|s| {
                    s.magnet_ok += usize::from(run.intact);
                    s.first_byte_ms.push(millis(run.first_byte));
                });
            }
            Err(e) => bench.say(format!("MAGNET FAILED: magnet {j} (torrent {k}): {e}")),
        }
    }
}

async fn magnet(
    bench: &Bench,
    j: usize,
    bootstrap: &Multiaddr,
    content: &Content,
) -> Result<MagnetRun, String> {
    let t = Instant::now();
    let node = bench
        .start_node(&format!("magnet{j}"), bootstrap.clone())
        .await;
    let started = t.elapsed();
    let out = bench.root.join(format!("out{j}"));
    let add = AddMagnet::new(Magnet::new(content.torrent.info_hash), out.clone());
    let (torrent, handle) = tokio::time::timeout(MAGNET_TIMEOUT, node.add_magnet(add))
        .await
        .map_err(|_| "metadata timed out".to_owned())?
        .map_err(|e| format!("add_magnet: {e}"))?;
    let metadata = t.elapsed();
    if torrent.info_hash != content.torrent.info_hash {
        return Err("wrong metadata".into());
    }
    let mut progress = handle.progress();
    let left = MAGNET_TIMEOUT.saturating_sub(t.elapsed());
    tokio::time::timeout(left, progress.wait_for(|p| p.pieces_have >= 1))
        .await
        .map_err(|_| "first piece timed out".to_owned())?
        .map_err(|_| "torrent stopped".to_owned())?;
    let first_byte = t.elapsed();
    let left = MAGNET_TIMEOUT.saturating_sub(t.elapsed());
    tokio::time::timeout(left, progress.wait_for(|p| p.complete))
        .await
        .map_err(|_| "completion timed out".to_owned())?
        .map_err(|_| "torrent stopped".to_owned())?;
    let complete = t.elapsed();
    let intact = std::fs::read(out.join(&content.file)).is_ok_and(|b| b == content.bytes);
    Ok(MagnetRun {
        started,
        metadata,
        first_byte,
        complete,
        intact,
    })
}
