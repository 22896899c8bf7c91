//! A torrent's and a node's life: clean stops and restarts, read-only seeding, rate caps, and
//! nothing left running after shutdown.

mod support;

use std::time::{Duration, Instant};

use shoal_node::{AddTorrent, NodeError, Rate};
use support::{fetch, make_torrent, node, node_with, pseudo_random, seed, wait_complete};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_lets_the_restart_trust_the_resume_record() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(1024 * 1024 + 777, 41);
    std::fs::write(seed_dir.join("f"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 64 * 1024);
    let num_pieces = torrent.info.num_pieces() as u32;
    let (a, b) = (node(dir.path(), "a").await, node(dir.path(), "b").await);
    let _seeding = seed(&a, &torrent, &seed_dir).await;
    let leech_dir = dir.path().join("leech");
    let fetching = fetch(&b, &torrent, &leech_dir).await;
    let first = fetching.open_report().clone();
    assert_eq!((first.trusted, first.found), (0, 0), "a fresh download");
    fetching
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();
    wait_complete(&fetching).await;
    fetching.stop().await.unwrap();

    // The same node adds it again: the record vouches for every piece, nothing is read.
    let again = fetch(&b, &torrent, &leech_dir).await;
    let report = again.open_report();
    assert!(!report.unclean_shutdown, "{report:?}");
    assert_eq!((report.trusted, report.rechecked), (num_pieces, 0));
    assert!(again.progress().borrow().complete);
    again.stop().await.unwrap();

    // So does a new node on the same data directory after a node shutdown.
    b.shutdown().await;
    let b2 = node(dir.path(), "b").await;
    let third = fetch(&b2, &torrent, &leech_dir).await;
    let report = third.open_report();
    assert!(!report.unclean_shutdown, "{report:?}");
    assert_eq!((report.trusted, report.rechecked), (num_pieces, 0));
    assert!(std::fs::read(leech_dir.join("f")).unwrap() == content);
    b2.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_seeding_refuses_incomplete_data_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(256 * 1024, 42);
    std::fs::write(seed_dir.join("f"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 16 * 1024);
    // The user's copy lost its last 20,000 bytes.
    std::fs::write(seed_dir.join("f"), &content[..content.len() - 20_000]).unwrap();
    let a = node(dir.path(), "a").await;
    let mut add = AddTorrent::new(torrent.clone(), seed_dir.clone());
    add.storage.read_only = true;
    match a.add_torrent(add).await {
        Err(NodeError::IncompleteData { have, total }) => {
            assert_eq!((have, total), (14, 16));
        }
        other => panic!("expected IncompleteData, got {other:?}"),
    }
    assert_eq!(
        std::fs::metadata(seed_dir.join("f")).unwrap().len(),
        content.len() as u64 - 20_000,
        "the file was not extended"
    );
    a.shutdown().await;
}

/// Time to move `content` from a seeder to a leecher, with `edit` applied to both nodes.
async fn timed_transfer(
    content_len: usize,
    seeder_limit: Option<Rate>,
    leecher_limit: Option<Rate>,
) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(content_len, 43);
    std::fs::write(seed_dir.join("f"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 64 * 1024);
    let a = node_with(dir.path(), "a", |c| c.upload_limit = seeder_limit).await;
    let b = node_with(dir.path(), "b", |c| c.download_limit = leecher_limit).await;
    let _seeding = seed(&a, &torrent, &seed_dir).await;
    let fetching = fetch(&b, &torrent, &dir.path().join("leech")).await;
    let started = Instant::now();
    fetching
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();
    wait_complete(&fetching).await;
    let took = started.elapsed();
    assert!(std::fs::read(dir.path().join("leech/f")).unwrap() == content);
    a.shutdown().await;
    b.shutdown().await;
    took
}

// A cap is a lower bound on the time a transfer takes, whatever the machine's load: these
// can only fail if the cap lets more through than it should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_download_caps_hold() {
    let len = 3 * 1024 * 1024;
    let cap = Rate(1024 * 1024);
    // The bucket starts with a quarter second of burst: 3 MiB at 1 MiB/s takes >= 2.75 s.
    let floor = Duration::from_millis(2700);
    let up = timed_transfer(len, Some(cap), None).await;
    assert!(up >= floor, "upload cap: 3 MiB at 1 MiB/s in {up:?}");
    let down = timed_transfer(len, None, Some(cap)).await;
    assert!(down >= floor, "download cap: 3 MiB at 1 MiB/s in {down:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_ends_after_shutdown() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("f"), pseudo_random(512 * 1024, 44)).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 32 * 1024);
    let (a, b) = (node(dir.path(), "a").await, node(dir.path(), "b").await);
    let seeding = seed(&a, &torrent, &seed_dir).await;
    let fetching = fetch(&b, &torrent, &dir.path().join("leech")).await;
    fetching
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();
    wait_complete(&fetching).await;
    assert!(metrics.num_alive_tasks() > before);
    a.shutdown().await;
    b.shutdown().await;
    drop((a, b, seeding, fetching));
    // Tasks finish asynchronously after their channels close: give them a moment.
    let mut alive = metrics.num_alive_tasks();
    for _ in 0..100 {
        if alive == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        alive = metrics.num_alive_tasks();
    }
    assert_eq!(
        alive, before,
        "tasks still alive after both nodes shut down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_whose_disk_keeps_failing_stops_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let content_dir = dir.path().join("seed").join("content");
    std::fs::create_dir_all(&content_dir).unwrap();
    std::fs::write(content_dir.join("a"), pseudo_random(256 * 1024, 43)).unwrap();
    std::fs::write(content_dir.join("b"), pseudo_random(256 * 1024, 44)).unwrap();
    let torrent = make_torrent(&content_dir, 16 * 1024);
    let (a, b) = (node(dir.path(), "a").await, node(dir.path(), "b").await);
    let _seeding = seed(&a, &torrent, &dir.path().join("seed")).await;
    let leech_dir = dir.path().join("leech");
    let fetching = fetch(&b, &torrent, &leech_dir).await;
    // Its file `b` is replaced by a directory before a block arrives: every write to it fails
    // (writes to `a` succeed in between).
    let broken = leech_dir.join("content").join("b");
    std::fs::remove_file(&broken).unwrap();
    std::fs::create_dir(&broken).unwrap();
    fetching
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(60), fetching.wait_complete())
        .await
        .expect("the torrent gave up in time");
    match ended {
        Err(NodeError::Storage(message)) => {
            assert!(message.contains("the disk keeps failing"), "{message}");
            assert!(message.contains("content/b"), "names the file: {message}");
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    let progress = fetching.progress().borrow().clone();
    assert!(
        !progress.complete && progress.error.is_some(),
        "{progress:?}"
    );
    // It stopped: no more trading, and the node goes on.
    assert!(matches!(fetching.status().await, Err(NodeError::Stopped)));
    assert!(b.connected_peers().await.is_ok());
    a.shutdown().await;
    b.shutdown().await;
}
