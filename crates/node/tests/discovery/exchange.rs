//! Peers passing peers along and metadata: PEX introduces a peer of a peer; a liar is banned
//! and a peer that breaks the metadata protocol is not asked again, while an honest one serves;
//! a private torrent neither announces nor exchanges peers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::StreamProtocol;
use shoal_metainfo::{Magnet, Torrent};
use shoal_node::{AddMagnet, AddTorrent, NodeConfig, NodeEvent, NodeHandle, PeerSource, Rate};

use super::support::{TRANSFER_TIMEOUT, node_with, pseudo_random, raw_peer, seed, wait_complete};
use super::{
    DISCOVERY_TIMEOUT, content_torrent, eventually, holders, providers, shutdown, wait_routing,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pex_introduces_a_peer_of_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content_torrent(dir.path(), 300_000, 43);
    // No DHT: PEX is the only way C can hear of A.
    let quick_pex = |c: &mut NodeConfig| {
        c.dht.enabled = false;
        c.pex_timing.first_delay = Duration::from_millis(300);
    };
    // A ignores PEX, so it never hears of C and dials it first: C must dial A.
    let a = node_with(dir.path(), "a", |c| {
        quick_pex(c);
        c.pex = false;
    })
    .await;
    // B and C download slowly (300 kB at 48 KiB/s: about 6 s): B is still connected to A (and
    // lists it) when C arrives, and C is still fetching while the test looks at its peers. Two
    // seeds close their connection, having nothing to trade.
    let slow = |c: &mut NodeConfig| {
        quick_pex(c);
        c.download_limit = Some(Rate(48 * 1024));
    };
    let b = node_with(dir.path(), "b", slow).await;
    let c = node_with(dir.path(), "c", slow).await;
    let _at_a = seed(&a, &torrent, &dir.path().join("seed")).await;
    let at_b = b
        .add_torrent(AddTorrent::new(torrent.clone(), dir.path().join("b")))
        .await
        .unwrap();
    at_b.add_peer(a.listen_addrs()[0].clone()).await.unwrap();
    let at_c = c
        .add_torrent(AddTorrent::new(torrent.clone(), dir.path().join("c")))
        .await
        .unwrap();
    at_c.add_peer(b.listen_addrs()[0].clone()).await.unwrap();
    let met_a = async {
        loop {
            let peers = at_c.status().await.unwrap().peers;
            if let Some(p) = peers.iter().find(|p| p.info.peer_id == a.peer_id()) {
                return p.info.source;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let source = tokio::time::timeout(DISCOVERY_TIMEOUT, met_a)
        .await
        .expect("C met A in time");
    assert_eq!(source, PeerSource::Pex);
    wait_complete(&at_b).await;
    wait_complete(&at_c).await;
    assert!(std::fs::read(dir.path().join("c/f.bin")).unwrap() == content);
    let pex_at_b = at_b.status().await.unwrap().pex;
    assert!(
        pex_at_b.sent >= 1 && pex_at_b.added_sent >= 1,
        "{pex_at_b:?}"
    );
    shutdown(&[a, b, c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_false_metadata_is_banned_and_an_honest_one_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content_torrent(dir.path(), 400_000, 44);
    let boot = node_with(dir.path(), "boot", |_| {}).await;
    let bootstrap = boot.listen_addrs()[0].clone();
    let joined = |c: &mut NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
    // The liar answers for the info-hash with other bytes of the same length.
    let liar = node_with(dir.path(), "liar", joined).await;
    let mut false_info = torrent.info_bytes.clone();
    let last = false_info.len() - 2;
    false_info[last] ^= 0x55;
    liar.router()
        .register_metadata(torrent.info_hash, false_info.into());
    let fetcher = node_with(dir.path(), "fetcher", joined).await;
    let mut events = fetcher.subscribe();
    let mut magnet = Magnet::new(torrent.info_hash);
    magnet.peers.push(liar.listen_addrs()[0].to_string());
    let out = dir.path().join("out");
    let fetch = {
        let fetcher = fetcher.clone();
        tokio::spawn(async move { fetcher.add_magnet(AddMagnet::new(magnet, out)).await })
    };
    let banned = async {
        loop {
            if let NodeEvent::PeerBanned { peer, .. } = events.recv().await.unwrap() {
                return peer;
            }
        }
    };
    let banned = tokio::time::timeout(DISCOVERY_TIMEOUT, banned)
        .await
        .expect("the liar was banned in time");
    assert_eq!(banned, liar.peer_id());
    assert!(fetcher.is_banned(&liar.peer_id()));
    // Only now does an honest seeder join; the fetcher's lookups find it.
    let honest = node_with(dir.path(), "honest", joined).await;
    let _seeding = seed(&honest, &torrent, &dir.path().join("seed")).await;
    let (fetched, handle) = tokio::time::timeout(TRANSFER_TIMEOUT, fetch)
        .await
        .expect("metadata fetched in time")
        .unwrap()
        .unwrap();
    assert_eq!(fetched.info_hash, torrent.info_hash);
    wait_complete(&handle).await;
    assert!(std::fs::read(dir.path().join("out/f.bin")).unwrap() == content);
    shutdown(&[boot, liar, fetcher, honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_breaking_the_metadata_protocol_is_asked_once_and_an_honest_one_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content_torrent(dir.path(), 300_000, 46);
    let boot = node_with(dir.path(), "boot", |_| {}).await;
    let bootstrap = boot.listen_addrs()[0].clone();
    let joined = |c: &mut NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
    // The rude peer answers every metadata request with a frame that is no metadata message.
    let rude = raw_peer().await;
    let asked = Arc::new(AtomicUsize::new(0));
    let mut incoming = rude
        .control
        .clone()
        .accept(StreamProtocol::new(shoal_wire::METADATA_PROTOCOL))
        .unwrap();
    let counter = asked.clone();
    let _answering = tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = [0u8; 64];
            let _ = stream.read(&mut request).await;
            // A 3-byte frame whose tag names no message.
            let _ = stream.write_all(&[0, 0, 0, 3, 0x7f, 0x7f, 0x7f]).await;
            let _ = stream.close().await;
        }
    });
    let fetcher = node_with(dir.path(), "fetcher", joined).await;
    let mut magnet = Magnet::new(torrent.info_hash);
    magnet.peers.push(rude.address.to_string());
    let out = dir.path().join("out");
    let fetch = {
        let fetcher = fetcher.clone();
        tokio::spawn(async move { fetcher.add_magnet(AddMagnet::new(magnet, out)).await })
    };
    let first_ask = async {
        while asked.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(DISCOVERY_TIMEOUT, first_ask)
        .await
        .expect("the rude peer was asked");
    // Longer than the 2 s after which a peer that only failed is asked again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let honest = node_with(dir.path(), "honest", joined).await;
    let _seeding = seed(&honest, &torrent, &dir.path().join("seed")).await;
    let (fetched, handle) = tokio::time::timeout(TRANSFER_TIMEOUT, fetch)
        .await
        .expect("metadata fetched in time")
        .unwrap()
        .unwrap();
    assert_eq!(fetched.info_hash, torrent.info_hash);
    wait_complete(&handle).await;
    assert!(std::fs::read(dir.path().join("out/f.bin")).unwrap() == content);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the rude peer was asked again"
    );
    assert!(
        !fetcher.is_banned(&rude.peer_id),
        "breaking the protocol is not lying"
    );
    shutdown(&[boot, fetcher, honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_torrent_makes_no_announce_and_no_pex() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("f.bin"), pseudo_random(100_000, 45)).unwrap();
    let make = |private| {
        let options = shoal_metainfo::CreateOptions {
            piece_length: Some(16 * 1024),
            private,
            ..Default::default()
        };
        shoal_metainfo::create_torrent(&seed_dir.join("f.bin"), &options, &mut |_| {})
            .unwrap()
            .torrent
    };
    let (public, private) = (make(false), make(true));
    assert_ne!(public.info_hash, private.info_hash);
    // Six nodes in one DHT. Each torrent gets the same swarm: a seeder and two fetchers that
    // know only the seeder, so a public one tells each fetcher about the other.
    let quick_pex = |c: &mut NodeConfig| c.pex_timing.first_delay = Duration::from_millis(200);
    let c = node_with(dir.path(), "c", quick_pex).await;
    let bootstrap = c.listen_addrs()[0].clone();
    let joined = |c: &mut NodeConfig| {
        quick_pex(c);
        c.dht.bootstrap = vec![bootstrap.clone()];
    };
    let mut nodes = vec![c.clone()];
    for name in ["a", "e", "f", "b", "d"] {
        // The public fetchers download slowly (100 kB at 16 KiB/s), so that their swarm is
        // still trading when PEX runs: a seed closes its connections to peers that finished.
        let slow = matches!(name, "b" | "d");
        nodes.push(
            node_with(dir.path(), name, |c| {
                joined(c);
                if slow {
                    c.download_limit = Some(Rate(16 * 1024));
                }
            })
            .await,
        );
    }
    let [_, a, e, f, b, d] = <[NodeHandle; 6]>::try_from(nodes.clone()).unwrap();
    wait_routing(&nodes, 2).await;

    // Private first: by the time the public swarm has exchanged peers, it had longer.
    let private_swarm = swarm(&a, &[&e, &f], &private, &seed_dir, dir.path()).await;
    for handle in &private_swarm[1..] {
        wait_complete(handle).await;
    }
    let public_swarm = swarm(&c, &[&b, &d], &public, &seed_dir, dir.path()).await;
    eventually("the public torrent exchanged peers", || {
        exchanged_peers(&public_swarm)
    })
    .await;
    // The public torrent is announced: nodes hold its record and a lookup finds the seeder.
    eventually("the public record is stored", || async {
        !holders(&nodes, &public).await.is_empty()
    })
    .await;
    assert!(providers(&b, &public).await.contains(&c.peer_id()));

    // The private one: no PEX at all, no announcement, no lookup; nobody holds a record of it.
    for handle in &private_swarm {
        let pex = handle.status().await.unwrap().pex;
        assert_eq!(pex, Default::default(), "private torrent PEX: {pex:?}");
    }
    for node in [&a, &e, &f] {
        let stats = node.dht_stats().await.unwrap();
        assert_eq!(
            (stats.announces, stats.provided_keys, stats.lookups),
            (0, 0, 0),
            "{stats:?}"
        );
    }
    assert_eq!(holders(&nodes, &private).await, Vec::<usize>::new());
    assert_eq!(providers(&b, &private).await, Vec::new());
    // The public fetchers announced and looked up their torrent, the control for the above.
    for node in [&b, &d] {
        let stats = node.dht_stats().await.unwrap();
        assert!(
            stats.announces >= 1 && stats.provided_keys == 1,
            "{stats:?}"
        );
        assert!(stats.lookups >= 1, "{stats:?}");
    }
    shutdown(&nodes).await;
}

/// Whether the seeder of this swarm sent each fetcher a PEX message and they accepted them.
async fn exchanged_peers(swarm: &[shoal_node::TorrentHandle]) -> bool {
    let sent = swarm[0].status().await.unwrap().pex.sent;
    let mut accepted = 0;
    for handle in &swarm[1..] {
        accepted += handle.status().await.unwrap().pex.accepted;
    }
    sent >= 2 && accepted >= 2
}

/// `seeder` seeds the torrent; each fetcher adds it and is given the seeder's address only.
/// Returns the seeder's handle, then the fetchers'.
async fn swarm(
    seeder: &NodeHandle,
    fetchers: &[&NodeHandle],
    torrent: &Torrent,
    seed_dir: &std::path::Path,
    dir: &std::path::Path,
) -> Vec<shoal_node::TorrentHandle> {
    let mut handles = vec![seed(seeder, torrent, seed_dir).await];
    for fetcher in fetchers {
        let out = dir.join(format!(
            "{}-{}",
            fetcher.peer_id(),
            &torrent.info_hash.to_hex()[..8]
        ));
        let handle = fetcher
            .add_torrent(AddTorrent::new(torrent.clone(), out))
            .await
            .unwrap();
        handle
            .add_peer(seeder.listen_addrs()[0].clone())
            .await
            .unwrap();
        handles.push(handle);
    }
    handles
}
