//! Trackerless discovery between real nodes on 127.0.0.1: the DHT finds providers, PEX passes
//! peers along, magnet links fetch verified metadata, private torrents stay quiet.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use shoal_metainfo::{Magnet, Torrent};
use shoal_node::{AddMagnet, AddTorrent, NodeEvent, NodeHandle, PeerSource};
use support::{
    TRANSFER_TIMEOUT, make_torrent, node_with, pseudo_random, raw_peer, seed, wait_complete,
};

/// How long a lookup or a PEX round may take before the test fails.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A DHT of `count` nodes, each joined through the first.
async fn dht(dir: &std::path::Path, count: usize) -> Vec<NodeHandle> {
    let bootstrap = node_with(dir, "n0", |_| {}).await;
    let address = bootstrap.listen_addrs()[0].clone();
    let mut nodes = vec![bootstrap];
    for i in 1..count {
        let address = address.clone();
        nodes.push(node_with(dir, &format!("n{i}"), |c| c.dht.bootstrap = vec![address]).await);
    }
    nodes
}

/// Waits until every node has at least `min` routing-table peers.
async fn wait_routing(nodes: &[NodeHandle], min: usize) {
    let filled = async {
        loop {
            let mut thin = 0;
            for n in nodes {
                if n.dht_stats().await.unwrap().routing_peers < min {
                    thin += 1;
                }
            }
            if thin == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(DISCOVERY_TIMEOUT, filled)
        .await
        .expect("every routing table filled in time");
}

/// All providers one lookup returns.
async fn providers(node: &NodeHandle, torrent: &Torrent) -> Vec<PeerId> {
    let mut found = node.find_providers(torrent.info_hash).await.unwrap();
    let mut all = Vec::new();
    let collect = async {
        while let Some(peer) = found.recv().await {
            all.push(peer);
        }
    };
    tokio::time::timeout(DISCOVERY_TIMEOUT, collect)
        .await
        .expect("lookup finished in time");
    all
}

fn content_torrent(dir: &std::path::Path, len: usize, seed_byte: u64) -> (Vec<u8>, Torrent) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(len, seed_byte);
    std::fs::write(seed_dir.join("f.bin"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("f.bin"), 64 * 1024);
    (content, torrent)
}

async fn shutdown(nodes: &[NodeHandle]) {
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_and_a_bootstrap_node_are_enough() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content_torrent(dir.path(), 1_500_000, 41);
    let nodes = dht(dir.path(), 20).await;
    wait_routing(&nodes, 3).await;
    let seeding = seed(&nodes[7], &torrent, &dir.path().join("seed")).await;

    // A newcomer knows the bootstrap address and a magnet link with no peers, no trackers.
    let bootstrap = nodes[0].listen_addrs()[0].clone();
    let newcomer = node_with(dir.path(), "newcomer", |c| {
        c.dht.bootstrap = vec![bootstrap]
    })
    .await;
    let magnet = Magnet::new(torrent.info_hash);
    let out = dir.path().join("out");
    let (fetched, handle) = tokio::time::timeout(
        TRANSFER_TIMEOUT,
        newcomer.add_magnet(AddMagnet::new(magnet, out.clone())),
    )
    .await
    .expect("metadata fetched in time")
    .unwrap();
    assert_eq!(fetched.info_bytes, torrent.info_bytes);
    assert_eq!(fetched.info_hash, torrent.info_hash);
    wait_complete(&handle).await;
    assert!(std::fs::read(out.join("f.bin")).unwrap() == content);
    let peers = handle.status().await.unwrap().peers;
    let seeder = peers
        .iter()
        .find(|p| p.info.peer_id == nodes[7].peer_id())
        .expect("the seeder is a peer");
    assert_eq!(seeder.info.source, PeerSource::Dht);
    assert_eq!(nodes[7].dht_stats().await.unwrap().provided_keys, 1);
    drop(seeding);
    newcomer.shutdown().await;
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_survive_a_tenth_of_the_dht_dying() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = content_torrent(dir.path(), 200_000, 42);
    let mut nodes = dht(dir.path(), 20).await;
    wait_routing(&nodes, 3).await;
    let provider = nodes[11].clone();
    let _seeding = seed(&provider, &torrent, &dir.path().join("seed")).await;
    // The announcement has reached the nodes closest to the key.
    let announced = async {
        while providers(&nodes[3], &torrent).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(DISCOVERY_TIMEOUT, announced)
        .await
        .expect("the provider became visible");
    // Kill 2 of 20, the bootstrap node among them.
    for victim in [nodes.remove(0), nodes.remove(4)] {
        victim.shutdown().await;
    }
    for (i, n) in nodes.iter().enumerate() {
        if n.peer_id() == provider.peer_id() {
            continue;
        }
        let found = providers(n, &torrent).await;
        assert!(
            found.contains(&provider.peer_id()),
            "node {i} did not find the provider: {found:?}"
        );
        // Many nodes hold the record; the lookup reports the provider once.
        assert_eq!(found.len(), 1, "node {i}: {found:?}");
    }
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pex_introduces_a_peer_of_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content_torrent(dir.path(), 300_000, 43);
    // No DHT: PEX is the only way C can hear of A.
    let quick_pex = |c: &mut shoal_node::NodeConfig| {
        c.dht.enabled = false;
        c.pex_timing.first_delay = Duration::from_millis(300);
    };
    // A ignores PEX, so it never hears of C and dials it first: C must dial A.
    let a = node_with(dir.path(), "a", |c| {
        quick_pex(c);
        c.pex = false;
    })
    .await;
    let b = node_with(dir.path(), "b", quick_pex).await;
    let c = node_with(dir.path(), "c", quick_pex).await;
    let _at_a = seed(&a, &torrent, &dir.path().join("seed")).await;
    let at_b = b
        .add_torrent(AddTorrent::new(torrent.clone(), dir.path().join("b")))
        .await
        .unwrap();
    at_b.add_peer(a.listen_addrs()[0].clone()).await.unwrap();
    wait_complete(&at_b).await;
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
    let joined = |c: &mut shoal_node::NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
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
    let joined = |c: &mut shoal_node::NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
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
    let options = |private| shoal_metainfo::CreateOptions {
        piece_length: Some(16 * 1024),
        private,
        ..Default::default()
    };
    let make = |private| {
        shoal_metainfo::create_torrent(&seed_dir.join("f.bin"), &options(private), &mut |_| {})
            .unwrap()
            .torrent
    };
    let (public, private) = (make(false), make(true));
    assert_ne!(public.info_hash, private.info_hash);
    let quick_pex = |c: &mut shoal_node::NodeConfig| {
        c.pex_timing.first_delay = Duration::from_millis(200);
    };
    let [a, b, c, d] = [
        node_with(dir.path(), "a", quick_pex).await,
        node_with(dir.path(), "b", quick_pex).await,
        node_with(dir.path(), "c", quick_pex).await,
        node_with(dir.path(), "d", quick_pex).await,
    ];
    // Private: a seeds, b fetches.
    let private_at_a = seed(&a, &private, &seed_dir).await;
    let private_at_b = b
        .add_torrent(AddTorrent::new(private.clone(), dir.path().join("b")))
        .await
        .unwrap();
    private_at_b
        .add_peer(a.listen_addrs()[0].clone())
        .await
        .unwrap();
    // Public, the control: c seeds, b and d fetch from it.
    let public_at_c = seed(&c, &public, &seed_dir).await;
    for (fetcher, name) in [(&b, "b-pub"), (&d, "d-pub")] {
        let handle = fetcher
            .add_torrent(AddTorrent::new(public.clone(), dir.path().join(name)))
            .await
            .unwrap();
        handle.add_peer(c.listen_addrs()[0].clone()).await.unwrap();
    }
    wait_complete(&private_at_b).await;
    let public_pex = async {
        loop {
            let pex = public_at_c.status().await.unwrap().pex;
            if pex.sent >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(DISCOVERY_TIMEOUT, public_pex)
        .await
        .expect("the public torrent exchanged peers");
    // By now the private torrent had as long to do the same, and did nothing.
    for handle in [&private_at_a, &private_at_b] {
        let pex = handle.status().await.unwrap().pex;
        assert_eq!(pex, Default::default(), "private torrent PEX: {pex:?}");
    }
    let at_a = a.dht_stats().await.unwrap();
    assert_eq!(
        (at_a.announces, at_a.provided_keys, at_a.lookups),
        (0, 0, 0),
        "{at_a:?}"
    );
    // b announces the public torrent only.
    let at_b = b.dht_stats().await.unwrap();
    assert!(at_b.announces >= 1 && at_b.provided_keys == 1, "{at_b:?}");
    shutdown(&[a, b, c, d]).await;
}
