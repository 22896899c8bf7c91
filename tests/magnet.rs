//! `shoal node`, `shoal seed --bootstrap` and `shoal get MAGNET` as separate processes: a bare
//! magnet link (no peers, no trackers) and a bootstrap address are enough to fetch.

mod support;

use std::time::Duration;

use shoal_metainfo::{Magnet, Torrent};
use support::{pseudo_random, shoal, spawn};

const LOOPBACK: &str = "/ip4/127.0.0.1/tcp/0";

#[test]
fn a_bare_magnet_link_is_fetched_through_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let content = pseudo_random(3_000_000, 61);
    std::fs::create_dir_all(dir.path().join("seed")).unwrap();
    std::fs::write(dir.path().join("seed/data.bin"), &content).unwrap();

    let mut boot = spawn(
        dir.path(),
        &["node", "--listen", LOOPBACK, "--data-dir", "boot"],
    );
    let bootstrap = boot.line_starting("listen ");
    assert!(bootstrap.contains("/p2p/12D3"), "{bootstrap}");
    let mut seeder = spawn(
        dir.path(),
        &[
            "seed",
            "seed/data.bin",
            "--listen",
            LOOPBACK,
            "--bootstrap",
            &bootstrap,
        ],
    );
    let magnet: Magnet = seeder.line_starting("magnet ").parse().unwrap();
    let bare = Magnet::new(magnet.info_hash).to_string();

    let mut getter = spawn(
        dir.path(),
        &[
            "get",
            &bare,
            "-o",
            "out",
            "--listen",
            LOOPBACK,
            "--bootstrap",
            &bootstrap,
            "--save-torrent",
            "fetched.torrent",
            "--exit-when-done",
            // More than the default one network thread: the runtime takes what it is told.
            "--network-threads",
            "3",
        ],
    );
    assert_eq!(
        getter.line_starting("metadata "),
        "data.bin 3000000 bytes in 184 pieces"
    );
    getter.line_starting("complete ");
    let status = getter.wait_within(Duration::from_secs(90));
    assert!(status.success(), "{status}");
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
    let saved =
        Torrent::from_bytes(&std::fs::read(dir.path().join("fetched.torrent")).unwrap()).unwrap();
    assert_eq!(saved.info_hash, magnet.info_hash);
}

#[test]
fn without_the_dht_a_bare_magnet_link_finds_nobody_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let bare = Magnet::new("0123456789abcdef0123456789abcdef01234567".parse().unwrap());
    let run = shoal(
        dir.path(),
        &[
            "get",
            &bare.to_string(),
            "-o",
            "out",
            "--listen",
            LOOPBACK,
            "--no-dht",
            "--metadata-timeout",
            "1",
        ],
    );
    assert_eq!(run.status, 1, "{run:?}");
    // One line that names the link and says what went wrong.
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: {bare}: magnet link: no peer delivered the metadata within 1s (0 peers found)"
        ),
    );
}

#[test]
fn a_magnet_link_with_a_tracker_works_with_the_dht_and_pex_off() {
    let dir = tempfile::tempdir().unwrap();
    let content = pseudo_random(1_000_000, 62);
    std::fs::create_dir_all(dir.path().join("seed")).unwrap();
    std::fs::write(dir.path().join("seed/data.bin"), &content).unwrap();
    let mut tracker = spawn(dir.path(), &["tracker", "--listen", "127.0.0.1:0"]);
    let url = tracker.line_starting("tracker ");
    let tracker_only = ["--no-dht", "--no-pex", "--listen", LOOPBACK];
    let mut seeder = spawn(
        dir.path(),
        &[
            &["seed", "seed/data.bin", "--tracker", &url][..],
            &tracker_only,
        ]
        .concat(),
    );
    let magnet: Magnet = seeder.line_starting("magnet ").parse().unwrap();
    assert_eq!(
        magnet.trackers,
        vec![url.clone()],
        "the seeder's magnet names the tracker"
    );
    // Only the info-hash and the tracker: the tracker is the one way to the seeder.
    let mut bare = Magnet::new(magnet.info_hash);
    bare.trackers = vec![url];
    let mut getter = spawn(
        dir.path(),
        &[
            &["get", &bare.to_string(), "-o", "out", "--exit-when-done"][..],
            &tracker_only,
        ]
        .concat(),
    );
    getter.line_starting("metadata ");
    getter.line_starting("complete ");
    let status = getter.wait_within(Duration::from_secs(90));
    assert!(status.success(), "{status}");
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
}

#[test]
fn a_magnet_link_with_a_peer_works_with_the_dht_off() {
    let dir = tempfile::tempdir().unwrap();
    let content = pseudo_random(1_000_000, 63);
    std::fs::create_dir_all(dir.path().join("seed")).unwrap();
    std::fs::write(dir.path().join("seed/data.bin"), &content).unwrap();
    let no_dht = ["--no-dht", "--listen", LOOPBACK];
    let mut seeder = spawn(
        dir.path(),
        &[&["seed", "seed/data.bin"][..], &no_dht].concat(),
    );
    let address = seeder.line_starting("listen ");
    let magnet: Magnet = seeder.line_starting("magnet ").parse().unwrap();
    // The info-hash and the seeder's address (x.pe): no DHT, no tracker.
    let mut with_peer = Magnet::new(magnet.info_hash);
    with_peer.peers = vec![address];
    let link = with_peer.to_string();
    let mut getter = spawn(
        dir.path(),
        &[
            &["get", &link, "-o", "out", "--exit-when-done"][..],
            &no_dht,
        ]
        .concat(),
    );
    assert_eq!(
        getter.line_starting("metadata "),
        "data.bin 1000000 bytes in 62 pieces"
    );
    getter.line_starting("complete ");
    let status = getter.wait_within(Duration::from_secs(90));
    assert!(status.success(), "{status}");
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
}
