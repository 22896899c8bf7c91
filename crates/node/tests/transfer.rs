//! Whole transfers between real nodes on 127.0.0.1: content must arrive byte-identical.

mod support;

use std::time::Duration;

use shoal_node::{AddTorrent, Rate};
use support::{
    TRANSFER_TIMEOUT, assert_same_tree, make_torrent, node, node_with, pseudo_random, seed,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_one_leecher_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    // 5 MiB and a bit: the last piece is short.
    let content = pseudo_random(5 * 1024 * 1024 + 12_345, 1);
    std::fs::write(seed_dir.join("content.bin"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("content.bin"), 256 * 1024);

    let (a, b) = (node(dir.path(), "a").await, node(dir.path(), "b").await);
    let _seeding = seed(&a, &torrent, &seed_dir).await;
    let leech_dir = dir.path().join("leech");
    let fetching = b
        .add_torrent(AddTorrent::new(torrent.clone(), leech_dir.clone()))
        .await
        .unwrap();
    fetching
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();
    tokio::time::timeout(TRANSFER_TIMEOUT, fetching.wait_complete())
        .await
        .expect("transfer finished in time")
        .unwrap();
    assert_eq!(
        std::fs::read(leech_dir.join("content.bin")).unwrap(),
        content
    );
    let status = fetching.status().await.unwrap();
    assert_eq!(status.stats.pieces_have, torrent.info.num_pieces() as u32);
    assert!(status.stats.bytes_downloaded >= content.len() as u64);
    a.shutdown().await;
    b.shutdown().await;
    // Shutting a node down stops its torrents too.
    assert!(matches!(
        fetching.status().await,
        Err(shoal_node::NodeError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_file_with_empty_files_and_nested_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("seed").join("album");
    std::fs::create_dir_all(root.join("cd1/extras")).unwrap();
    std::fs::create_dir_all(root.join("cd2")).unwrap();
    let files = [
        ("cd1/01.flac", 700_001),
        ("cd1/extras/empty.txt", 0),
        ("cd1/extras/notes.txt", 1_234),
        ("cd2/01.flac", 333_333),
        ("cover.jpg", 65_536),
        ("zero", 0),
    ];
    for (i, (name, size)) in files.iter().enumerate() {
        std::fs::write(root.join(name), pseudo_random(*size, i as u64 + 10)).unwrap();
    }
    let torrent = make_torrent(&root, 64 * 1024);
    let (a, b) = (node(dir.path(), "a").await, node(dir.path(), "b").await);
    let _seeding = seed(&a, &torrent, &dir.path().join("seed")).await;
    let leech_dir = dir.path().join("leech");
    let fetching = b
        .add_torrent(AddTorrent::new(torrent.clone(), leech_dir.clone()))
        .await
        .unwrap();
    fetching
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();
    tokio::time::timeout(TRANSFER_TIMEOUT, fetching.wait_complete())
        .await
        .expect("transfer finished in time")
        .unwrap();
    assert_same_tree(&root, &leech_dir.join("album"));
    assert!(
        leech_dir.join("album/zero").is_file(),
        "empty files are created"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// GETs `path` from a local HTTP server and returns (status line, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_are_served_as_json_and_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("f"), pseudo_random(300_000, 5)).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 64 * 1024);
    // b fetches slowly (300 kB at 100 KiB/s), so that its stats can be read mid-transfer too.
    let a = node(dir.path(), "a").await;
    let b = node_with(dir.path(), "b", |c| {
        c.download_limit = Some(Rate(100 * 1024))
    })
    .await;
    let _seeding = seed(&a, &torrent, &seed_dir).await;
    let fetching = b
        .add_torrent(AddTorrent::new(torrent.clone(), dir.path().join("leech")))
        .await
        .unwrap();
    let (addr, server) = shoal_node::metrics::serve("127.0.0.1:0".parse().unwrap(), b.clone())
        .await
        .unwrap();
    fetching
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();

    // Mid-transfer: the seeder is listed with what b knows of it.
    let during = tokio::time::timeout(TRANSFER_TIMEOUT, async {
        loop {
            let (_, body) = http_get(addr, "/stats").await;
            let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
            let t = stats["torrents"][0].clone();
            if t["peers"][0]["pieces"] == 5 && t["complete"] == false {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the seeder listed during the transfer");
    assert_eq!(during["peers"][0]["peer_id"], a.peer_id().to_string());
    assert_eq!(during["peers"][0]["source"], "manual");
    assert_eq!(during["peers"][0]["am_interested"], true, "{during}");
    assert_eq!(during["peers_by_source"]["manual"], 1);
    assert_eq!(during["peers_by_source"]["dht"], 0);

    tokio::time::timeout(TRANSFER_TIMEOUT, fetching.wait_complete())
        .await
        .expect("transfer finished in time")
        .unwrap();
    let (status, body) = http_get(addr, "/stats").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["peer_id"], b.peer_id().to_string());
    let t = &stats["torrents"][0];
    assert_eq!(t["info_hash"], torrent.info_hash.to_hex());
    assert_eq!(t["complete"], true);
    assert_eq!(t["pieces_have"], 5);
    assert!(t["bytes_downloaded"].as_u64().unwrap() >= 300_000);
    // One peer, no end game: nothing arrived twice.
    assert_eq!(t["duplicate_bytes"], 0);
    assert!(t["time_to_first_byte_ms"].is_u64(), "{t}");
    assert!(
        t["time_to_complete_ms"].as_u64().unwrap() >= t["time_to_first_byte_ms"].as_u64().unwrap()
    );
    // Rates are averages over the last seconds: the download's is still visible.
    assert!(t["download_rate"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["upload_rate"], 0, "b uploaded nothing");
    // Two seeds have nothing to trade: b closed its connection to a on completion ...
    assert_eq!(t["peers"].as_array().map(Vec::len), Some(0), "{t}");
    assert_eq!(t["peers_by_source"]["manual"], 0);
    // ... and still counts it among the peers ever connected, per source.
    assert_eq!(t["peers_found_by_source"]["manual"], 1);
    assert_eq!(t["peers_found_by_source"]["tracker"], 0);
    assert_eq!(t["pex"]["throttled"], 0);
    // b fetched, so it announced itself as a provider (no DHT peers to store it with yet).
    assert_eq!(stats["dht"]["enabled"], true);
    assert_eq!(stats["dht"]["provided_keys"], 1);
    assert!(stats["dht"]["announces"].as_u64().unwrap() >= 1, "{stats}");

    let (status, text) = http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let hash = torrent.info_hash.to_hex();
    assert!(
        text.contains(&format!("shoal_pieces_have{{info_hash=\"{hash}\"}} 5\n")),
        "{text}"
    );
    assert!(
        text.contains("# TYPE shoal_downloaded_bytes_total counter"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "shoal_peers_by_source{{info_hash=\"{hash}\",source=\"manual\"}} 0\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "shoal_upload_rate_bytes{{info_hash=\"{hash}\"}} 0\n"
        )),
        "{text}"
    );
    assert!(text.contains("# TYPE shoal_time_to_first_byte_seconds gauge"));
    let (status, _) = http_get(addr, "/nope").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    // A stopped torrent is no longer reported.
    fetching.stop().await.unwrap();
    let (_, body) = http_get(addr, "/stats").await;
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["torrents"].as_array().map(Vec::len), Some(0));
    server.abort();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_opens_settle_on_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(1024 * 1024, 8);
    std::fs::write(seed_dir.join("f"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 64 * 1024);
    // b fetches slowly (1 MiB at 200 KiB/s), so that the peers are looked at while they trade:
    // two seeds close their connection.
    let a = node(dir.path(), "a").await;
    let b = node_with(dir.path(), "b", |c| {
        c.download_limit = Some(Rate(200 * 1024))
    })
    .await;
    let seeding = seed(&a, &torrent, &seed_dir).await;
    let fetching = b
        .add_torrent(AddTorrent::new(torrent.clone(), dir.path().join("leech")))
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        seeding.add_peer(b.listen_addrs()[0].clone()),
        fetching.add_peer(a.listen_addrs()[0].clone())
    );
    x.unwrap();
    y.unwrap();
    // Give a losing duplicate stream time to be noticed and closed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_a = seeding.status().await.unwrap().peers;
    let at_b = fetching.status().await.unwrap();
    assert!(
        !at_b.stats.complete,
        "looked too late: the transfer is over"
    );
    assert_eq!(at_a.len(), 1, "{at_a:?}");
    assert_eq!(at_b.peers.len(), 1, "{:?}", at_b.peers);
    assert_eq!(at_a[0].info.peer_id, b.peer_id());
    tokio::time::timeout(TRANSFER_TIMEOUT, fetching.wait_complete())
        .await
        .expect("transfer finished in time")
        .unwrap();
    assert!(std::fs::read(dir.path().join("leech/f")).unwrap() == content);
    a.shutdown().await;
    b.shutdown().await;
}
