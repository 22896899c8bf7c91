//! The DHT: a magnet link and a bootstrap node are enough; lookups survive dying nodes; records
//! are republished before they expire and vanish when a torrent stops; a node whose bootstrap
//! was down joins later; a fetching torrent keeps looking until a provider appears; a banned
//! provider is left out of lookups.

use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::kad::{KBucketKey, RecordKey};
use shoal_metainfo::Magnet;
use shoal_node::{AddMagnet, NodeConfig, NodeHandle, PeerSource};

use super::support::{TRANSFER_TIMEOUT, fetch, killable_node, node_with, seed, wait_complete};
use super::{
    DISCOVERY_TIMEOUT, content_torrent, dht, dht_with, eventually, holders, providers, shutdown,
    wait_routing,
};

/// Provider records that live 3 s and are republished every second.
fn short_lived(c: &mut NodeConfig) {
    c.dht.provider_publication_interval = Duration::from_secs(1);
    c.dht.provider_record_ttl = Duration::from_secs(3);
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
    // The seeder is the only node with the content, and the newcomer met exactly one peer
    // through the DHT (the connection itself is closed once both have everything).
    let found = handle.status().await.unwrap().found_by_source;
    assert_eq!(found.get(&PeerSource::Dht), Some(&1), "{found:?}");
    assert_eq!(nodes[7].dht_stats().await.unwrap().provided_keys, 1);
    drop(seeding);
    newcomer.shutdown().await;
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_survive_a_tenth_of_the_dht_dying() {
    // Few copies of each record (k = 4 of 30 nodes), so that killing record holders matters.
    const NODES: usize = 30;
    const K: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = content_torrent(dir.path(), 200_000, 42);
    let few_copies = |c: &mut NodeConfig| c.dht.replication_factor = NonZeroUsize::new(K).unwrap();
    // Every node but the provider runs on a runtime of its own, so it can die abruptly.
    let boot = killable_node(dir.path(), "n0", few_copies).await;
    let bootstrap = boot.node.listen_addrs()[0].clone();
    let joined = |c: &mut NodeConfig| {
        few_copies(c);
        c.dht.bootstrap = vec![bootstrap.clone()];
    };
    let mut others = vec![boot];
    for i in 1..NODES - 1 {
        others.push(killable_node(dir.path(), &format!("n{i}"), joined).await);
    }
    let provider = node_with(dir.path(), "provider", joined).await;
    let handles = |others: &[super::support::KillableNode]| -> Vec<NodeHandle> {
        others.iter().map(|k| k.node.clone()).collect()
    };
    let mut everyone = handles(&others);
    everyone.push(provider.clone());
    wait_routing(&everyone, 3).await;
    let _seeding = seed(&provider, &torrent, &dir.path().join("seed")).await;

    // The announcement stores the record on the k nodes closest to the key ...
    let nodes = handles(&others);
    let stored = async {
        loop {
            let holding = holders(&nodes, &torrent).await;
            if holding.len() >= K {
                return holding;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut holding = tokio::time::timeout(DISCOVERY_TIMEOUT, stored)
        .await
        .expect("the record reached k nodes");
    // ... and the three of them closest to it (a tenth of the DHT) die, abruptly.
    let key = KBucketKey::new(RecordKey::new(&torrent.info_hash.0));
    holding.sort_by_key(|&i| KBucketKey::from(others[i].node.peer_id()).distance(&key));
    let mut victims: Vec<usize> = holding[..NODES / 10].to_vec();
    victims.sort_unstable_by(|a, b| b.cmp(a));
    for victim in victims {
        others.remove(victim).kill();
    }

    // Every survivor that does not hold the record finds the provider through the others.
    let mut asked = 0;
    for (i, n) in handles(&others).iter().enumerate() {
        if !n
            .stored_providers(torrent.info_hash)
            .await
            .unwrap()
            .is_empty()
        {
            continue;
        }
        let found = providers(n, &torrent).await;
        assert!(
            found.contains(&provider.peer_id()),
            "node {i} did not find the provider: {found:?}"
        );
        // Several nodes hold the record; the lookup reports the provider once.
        assert_eq!(found.len(), 1, "node {i}: {found:?}");
        asked += 1;
    }
    assert!(asked >= NODES - 1 - K, "only {asked} nodes looked up");
    provider.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_records_are_republished_before_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = content_torrent(dir.path(), 100_000, 47);
    let nodes = dht_with(dir.path(), 5, short_lived).await;
    wait_routing(&nodes, 2).await;
    let (provider, others) = (&nodes[3], [&nodes[0], &nodes[1], &nodes[2], &nodes[4]]);
    let others: Vec<NodeHandle> = others.into_iter().cloned().collect();
    let before = provider.dht_stats().await.unwrap().republished;
    let _seeding = seed(provider, &torrent, &dir.path().join("seed")).await;
    eventually("the record is stored", || async {
        !holders(&others, &torrent).await.is_empty()
    })
    .await;
    // The first copies expire 3 s after the announcement. Five republications, a second
    // apart, take longer than that: whatever the others hold by then was republished.
    eventually("five republications", || async {
        provider.dht_stats().await.unwrap().republished >= before + 5
    })
    .await;
    eventually("a republished record is held", || async {
        !holders(&others, &torrent).await.is_empty()
    })
    .await;
    assert!(
        providers(&nodes[0], &torrent)
            .await
            .contains(&provider.peer_id())
    );
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_torrent_stops_being_provided() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = content_torrent(dir.path(), 100_000, 48);
    let nodes = dht_with(dir.path(), 5, short_lived).await;
    wait_routing(&nodes, 2).await;
    let provider = &nodes[3];
    let seeding = seed(provider, &torrent, &dir.path().join("seed")).await;
    eventually("the provider is found", || async {
        providers(&nodes[1], &torrent)
            .await
            .contains(&provider.peer_id())
    })
    .await;
    // The provider answers lookups itself: wait for the announcement to be stored elsewhere
    // too, or its messages could still be on their way when the torrent stops.
    let others: Vec<NodeHandle> = nodes
        .iter()
        .filter(|n| n.peer_id() != provider.peer_id())
        .cloned()
        .collect();
    eventually("the announcement is stored", || async {
        !holders(&others, &torrent).await.is_empty()
    })
    .await;
    assert_eq!(provider.dht_stats().await.unwrap().provided_keys, 1);
    seeding.stop().await.unwrap();
    assert_eq!(provider.dht_stats().await.unwrap().provided_keys, 0);
    // No longer republished, the records expire (3 s here): nobody holds one, nobody finds it.
    eventually("the records expired", || async {
        holders(&nodes, &torrent).await.is_empty()
    })
    .await;
    assert_eq!(providers(&nodes[1], &torrent).await, Vec::new());
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_bootstrap_was_down_joins_once_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = content_torrent(dir.path(), 100_000, 49);
    // The bootstrap node's address, from a first run that then stops.
    let first = node_with(dir.path(), "boot", |_| {}).await;
    let bootstrap = first.listen_addrs()[0].clone();
    first.shutdown().await;
    let joined = |c: &mut NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
    let joiner = node_with(dir.path(), "joiner", joined).await;
    // The bootstrap node comes back (same identity, same port), and a seeder joins through it.
    let mut port = bootstrap.clone();
    port.pop();
    let boot = node_with(dir.path(), "boot", |c| c.listen = vec![port]).await;
    assert_eq!(boot.listen_addrs()[0], bootstrap);
    let seeder = node_with(dir.path(), "seeder", joined).await;
    let _seeding = seed(&seeder, &torrent, &dir.path().join("seed")).await;
    // The joiner's only way in is the bootstrap node: finding the seeder means it rejoined.
    eventually("the joiner finds the seeder", || async {
        providers(&joiner, &torrent)
            .await
            .contains(&seeder.peer_id())
    })
    .await;
    shutdown(&[joiner, boot, seeder]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetching_torrent_keeps_looking_until_a_provider_appears() {
    let dir = tempfile::tempdir().unwrap();
    let (content, torrent) = content_torrent(dir.path(), 200_000, 50);
    let mut nodes = dht(dir.path(), 4).await;
    let bootstrap = nodes[0].listen_addrs()[0].clone();
    let joined = |c: &mut NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
    let fetcher = node_with(dir.path(), "fetcher", joined).await;
    nodes.push(fetcher.clone());
    wait_routing(&nodes, 2).await;
    let fetching = fetch(&fetcher, &torrent, &dir.path().join("out")).await;
    // Its first lookup finds nobody; once it has started another, a seeder appears.
    eventually("a second lookup", || async {
        fetcher.dht_stats().await.unwrap().lookups >= 2
    })
    .await;
    let seeder = node_with(dir.path(), "seeder", joined).await;
    let _seeding = seed(&seeder, &torrent, &dir.path().join("seed")).await;
    wait_complete(&fetching).await;
    assert!(std::fs::read(dir.path().join("out/f.bin")).unwrap() == content);
    // The seeder is the only node with the content: the one peer the DHT found.
    let found = fetching.status().await.unwrap().found_by_source;
    assert_eq!(found.get(&PeerSource::Dht), Some(&1), "{found:?}");
    nodes.push(seeder);
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_provider_neither_reaches_a_lookup_nor_holds_it_open() {
    let dir = tempfile::tempdir().unwrap();
    let (_, torrent) = content_torrent(dir.path(), 200_000, 51);
    let mut nodes = dht(dir.path(), 3).await;
    let bootstrap = nodes[0].listen_addrs()[0].clone();
    let joined = |c: &mut NodeConfig| c.dht.bootstrap = vec![bootstrap.clone()];
    let liar = node_with(dir.path(), "liar", joined).await;
    let honest = node_with(dir.path(), "honest", joined).await;
    let victim = node_with(dir.path(), "victim", joined).await;
    nodes.extend([liar.clone(), honest.clone(), victim.clone()]);
    wait_routing(&nodes, 2).await;
    let _liar_seeding = seed(&liar, &torrent, &dir.path().join("seed")).await;
    let _honest_seeding = seed(&honest, &torrent, &dir.path().join("seed")).await;
    eventually("a lookup finds both providers", || async {
        let found = providers(&victim, &torrent).await;
        found.contains(&liar.peer_id()) && found.contains(&honest.peer_id())
    })
    .await;

    victim.ban(liar.peer_id());
    let mut lookup = victim.find_providers(torrent.info_hash).await.unwrap();
    let mut found = Vec::new();
    let collect = async {
        while let Some(peer) = lookup.recv().await {
            found.push(peer);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("a lookup that meets a banned provider still ends");
    assert!(found.contains(&honest.peer_id()), "{found:?}");
    assert!(!found.contains(&liar.peer_id()), "{found:?}");
    shutdown(&nodes).await;
}
