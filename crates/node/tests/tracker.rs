//! Nodes and shoal-tracker on 127.0.0.1: a swarm that finds itself through the tracker alone,
//! one that keeps going through the DHT and PEX when the tracker dies, and a node that starts
//! while its tracker is down and announces once it is up.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use shoal_metainfo::Torrent;
use shoal_node::{
    AddTorrent, AnnounceBackoff, AnnounceStats, NodeConfig, NodeHandle, PeerSource, TorrentHandle,
};
use shoal_tracker::{ServerConfig, TrackerServer, client};
use support::{TRANSFER_TIMEOUT, make_torrent, node_with, pseudo_random, wait_complete};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A tracker on a free loopback port, stopped by [`Tracker::kill`].
struct Tracker {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), shoal_tracker::TrackerError>>,
}

impl Tracker {
    async fn start() -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    async fn start_on(listen: SocketAddr) -> Self {
        let config = ServerConfig {
            listen,
            ..ServerConfig::default()
        };
        let server = TrackerServer::bind(config).await.unwrap();
        let url = server.announce_url();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self { url, stop, task }
    }

    async fn kill(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn content(dir: &std::path::Path) -> (Vec<u8>, Torrent) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(2_000_000, 81);
    std::fs::write(seed_dir.join("f.bin"), &content).unwrap();
    (content, make_torrent(&seed_dir.join("f.bin"), 64 * 1024))
}

async fn add_with_tracker(
    node: &NodeHandle,
    torrent: &Torrent,
    dir: &std::path::Path,
    url: &str,
) -> TorrentHandle {
    let mut add = AddTorrent::new(torrent.clone(), dir.to_owned());
    add.trackers = vec![url.to_owned()];
    node.add_torrent(add).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_alone_brings_a_swarm_together() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content(dir.path());
    let tracker = Tracker::start().await;
    let tracker_only = |c: &mut NodeConfig| {
        c.dht.enabled = false;
        c.pex = false;
    };
    let seeder = node_with(dir.path(), "seeder", tracker_only).await;
    let seeding = add_with_tracker(&seeder, &torrent, &dir.path().join("seed"), &tracker.url).await;
    assert!(seeding.progress().borrow().complete);
    let mut leechers = Vec::new();
    for i in 0..5 {
        let node = node_with(dir.path(), &format!("l{i}"), tracker_only).await;
        let out = dir.path().join(format!("out{i}"));
        let handle = add_with_tracker(&node, &torrent, &out, &tracker.url).await;
        leechers.push((node, handle, out));
    }
    let mut dialed_from_tracker = 0;
    for (_, handle, out) in &leechers {
        wait_complete(handle).await;
        assert!(std::fs::read(out.join("f.bin")).unwrap() == content);
        let status = handle.status().await.unwrap();
        assert!(status.tracker.ok >= 1, "{:?}", status.tracker);
        // Every peer met was dialed because the tracker named it, or dialed us for the same
        // reason (seeds close their connections to each other, so count those ever met). A
        // leecher may have met all its peers through their dials: when two peers dial each
        // other at once, only one of the two streams is kept.
        let found = &status.found_by_source;
        assert!(found.values().sum::<usize>() >= 1, "{found:?}");
        dialed_from_tracker += found.get(&PeerSource::Tracker).copied().unwrap_or(0);
        for (source, n) in found {
            assert!(
                matches!(source, PeerSource::Tracker | PeerSource::Incoming) || *n == 0,
                "{found:?}"
            );
        }
    }
    // Every connection was opened by a leecher dialing an address the tracker gave it.
    assert!(
        dialed_from_tracker >= 1,
        "no peer was dialed from the tracker's list"
    );
    // A stopped torrent says so: the tracker forgets it.
    let (first, handle, _) = &leechers[0];
    handle.stop().await.unwrap();
    let scrape = client::scrape(&tracker.url, torrent.info_hash, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        scrape.complete, 5,
        "seeder and 4 finished leechers: {scrape:?}"
    );
    assert_eq!(
        scrape.downloaded, 5,
        "each leecher's completed counted once: {scrape:?}"
    );
    first.shutdown().await;
    for (node, _, _) in &leechers[1..] {
        node.shutdown().await;
    }
    seeder.shutdown().await;
    tracker.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_outlives_its_tracker_through_the_dht_and_pex() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content(dir.path());
    let tracker = Tracker::start().await;
    let url = tracker.url.clone();
    let boot = node_with(dir.path(), "boot", |_| {}).await;
    let bootstrap = boot.listen_addrs()[0].clone();
    let joined = |c: &mut NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
    let seeder = node_with(dir.path(), "seeder", joined).await;
    let seeding = add_with_tracker(&seeder, &torrent, &dir.path().join("seed"), &url).await;
    assert!(seeding.progress().borrow().complete);
    let mut leechers = Vec::new();
    let mut tracker = Some(tracker);
    for i in 0..5 {
        let node = node_with(dir.path(), &format!("l{i}"), joined).await;
        let out = dir.path().join(format!("out{i}"));
        let handle = add_with_tracker(&node, &torrent, &out, &url).await;
        leechers.push((node, handle, out));
        // The tracker dies as the download starts.
        if let Some(tracker) = tracker.take() {
            tracker.kill().await;
        }
    }
    for (_, handle, out) in &leechers {
        wait_complete(handle).await;
        assert!(std::fs::read(out.join("f.bin")).unwrap() == content);
    }
    // Those that came after the tracker died never reached it, and did not need to.
    for (_, handle, _) in &leechers[1..] {
        let status = handle.status().await.unwrap();
        assert_eq!(status.tracker.ok, 0, "{:?}", status.tracker);
        assert!(status.tracker.failed >= 1, "{:?}", status.tracker);
        assert!(status.tracker.backoff.is_some(), "{:?}", status.tracker);
    }
    for (node, _, _) in &leechers {
        node.shutdown().await;
    }
    seeder.shutdown().await;
    boot.shutdown().await;
}

/// A loopback address where nothing listens (connections are refused) and that stays
/// reserved while the returned socket lives: it is bound, with `SO_REUSEADDR`, but not
/// listening, so a tracker can bind the same address later (Linux allows that as long as no
/// socket listens on it).
fn refusing_address() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Polls the torrent's announce figures until `ready` holds, for at most the transfer timeout.
async fn tracker_stats_until(
    handle: &TorrentHandle,
    what: &str,
    ready: impl Fn(&AnnounceStats) -> bool,
) -> AnnounceStats {
    let poll = async {
        loop {
            let stats = handle.status().await.unwrap().tracker;
            if ready(&stats) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    match tokio::time::timeout(TRANSFER_TIMEOUT, poll).await {
        Ok(stats) => stats,
        Err(_) => panic!(
            "{what} never happened; announce stats: {:?}",
            handle.status().await.unwrap().tracker
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_while_its_tracker_is_down_announces_once_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content(dir.path());
    let (placeholder, addr) = refusing_address();
    let url = format!("http://{addr}/announce");
    // Tracker only, and a back-off short enough that the test need not wait.
    let tracker_only = |c: &mut NodeConfig| {
        c.dht.enabled = false;
        c.pex = false;
        c.tracker_backoff = AnnounceBackoff {
            first: Duration::from_millis(50),
            max: Duration::from_millis(200),
        };
    };
    let seeder = node_with(dir.path(), "seeder", tracker_only).await;
    let seeding = add_with_tracker(&seeder, &torrent, &dir.path().join("seed"), &url).await;

    // Refused, over and over: the node backs off and says why.
    let down = tracker_stats_until(&seeding, "two refused announces", |s| s.failed >= 2).await;
    assert_eq!(down.ok, 0, "{down:?}");
    assert!(down.backoff.is_some(), "{down:?}");
    let error = down.last_error.clone().unwrap_or_default();
    assert!(error.starts_with("cannot connect to tracker"), "{error}");
    // The torrent is unaffected: still complete, still seeding.
    assert!(seeding.progress().borrow().complete);

    // The tracker comes up on that address.
    let tracker = Tracker::start_on(addr).await;
    drop(placeholder);
    let up = tracker_stats_until(&seeding, "a successful announce", |s| s.ok >= 1).await;
    assert!(up.failed >= down.failed, "{up:?}");
    assert_eq!(
        (up.backoff, up.last_error.as_deref()),
        (None, None),
        "{up:?}"
    );
    let scrape = client::scrape(&url, torrent.info_hash, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((scrape.complete, scrape.incomplete), (1, 0), "{scrape:?}");

    // And it is the seeder's real address: a tracker-only leecher finds it there.
    let leecher = node_with(dir.path(), "leecher", tracker_only).await;
    let out = dir.path().join("out");
    let fetching = add_with_tracker(&leecher, &torrent, &out, &url).await;
    wait_complete(&fetching).await;
    assert!(std::fs::read(out.join("f.bin")).unwrap() == content);
    // The seeder was found through the tracker (the connection itself is closed once both
    // have everything).
    let found = fetching.status().await.unwrap().found_by_source;
    assert_eq!(found.get(&PeerSource::Tracker), Some(&1), "{found:?}");
    leecher.shutdown().await;
    seeder.shutdown().await;
    tracker.kill().await;
}

/// `abort` ends a node like `kill -9`: its tracker never hears `stopped`, while a node that
/// shuts down cleanly says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_node_leaves_without_a_stopped_announce() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = content(dir.path());
    let seed_dir = dir.path().join("seed");
    let tracker = Tracker::start().await;
    let tracker_only = |c: &mut NodeConfig| {
        c.dht.enabled = false;
        c.pex = false;
    };
    let killed = node_with(dir.path(), "killed", tracker_only).await;
    let stopped = node_with(dir.path(), "stopped", tracker_only).await;
    let killed_torrent = add_with_tracker(&killed, &torrent, &seed_dir, &tracker.url).await;
    add_with_tracker(&stopped, &torrent, &seed_dir, &tracker.url).await;
    let seeders = || async {
        client::scrape(&tracker.url, torrent.info_hash, Duration::from_secs(5))
            .await
            .unwrap()
            .complete
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seeders().await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both seeders never announced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    killed.abort();
    stopped.shutdown().await;
    assert_eq!(seeders().await, 1, "only the clean shutdown said `stopped`");
    assert!(
        killed_torrent.status().await.is_err(),
        "the torrent is gone"
    );
    assert!(killed.torrent_statuses().await.is_empty());
    assert!(killed.connected_peers().await.is_err(), "the host is gone");
    tracker.kill().await;
}
