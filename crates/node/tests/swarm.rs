//! Swarms of real nodes on 127.0.0.1.

mod support;

use shoal_node::{NodeHandle, Rate, TorrentHandle};
use support::{fetch, make_torrent, node, node_with, pseudo_random, seed, wait_complete};

const LEECHERS: usize = 8;

/// The seeder's upload is capped so that it cannot serve everyone: the leechers must trade
/// among themselves, and together upload more than the seeder does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leechers_trade_when_the_seeder_is_slow() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(4 * 1024 * 1024, 7);
    std::fs::write(seed_dir.join("content.bin"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("content.bin"), 64 * 1024);

    let seeder = node_with(dir.path(), "seeder", |c| {
        c.upload_limit = Some(Rate(1024 * 1024))
    })
    .await;
    let seeding = seed(&seeder, &torrent, &seed_dir).await;
    let mut leechers: Vec<(NodeHandle, TorrentHandle)> = Vec::new();
    for i in 0..LEECHERS {
        let n = node(dir.path(), &format!("leecher{i}")).await;
        let handle = fetch(&n, &torrent, &dir.path().join(format!("leech{i}"))).await;
        handle
            .add_peer(seeder.listen_addrs()[0].clone())
            .await
            .unwrap();
        for (other, _) in &leechers {
            handle
                .add_peer(other.listen_addrs()[0].clone())
                .await
                .unwrap();
        }
        leechers.push((n, handle));
    }
    for (_, handle) in &leechers {
        wait_complete(handle).await;
    }
    for i in 0..LEECHERS {
        let got = std::fs::read(dir.path().join(format!("leech{i}/content.bin"))).unwrap();
        assert!(got == content, "leecher {i} has different content");
    }
    let seeder_up = seeding.status().await.unwrap().stats.bytes_uploaded;
    let mut leechers_up = 0;
    for (_, handle) in &leechers {
        leechers_up += handle.status().await.unwrap().stats.bytes_uploaded;
    }
    assert!(
        leechers_up > seeder_up,
        "leechers uploaded {leechers_up} bytes, the seeder {seeder_up}"
    );
    seeder.shutdown().await;
    for (n, _) in leechers {
        n.shutdown().await;
    }
}
