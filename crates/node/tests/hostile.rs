//! Peers that lie or break the protocol, against real nodes on 127.0.0.1.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use libp2p::StreamProtocol;
use shoal_metainfo::{BLOCK_SIZE, Torrent};
use shoal_node::framed::{FrameReader, FrameWriter, StreamError};
use shoal_node::streams::{self, Limits, PeerStream};
use shoal_node::{
    AddMagnet, NodeEvent, NodeHandle, PeerSource, Rate, TorrentHandle, TorrentStatus,
};
use shoal_wire::{
    Block, BlockRef, Handshake, HaveState, Message, MetadataMessage, PIECES_PROTOCOL,
    PROTOCOL_VERSION,
};
use support::{
    RawPeer, fetch, make_torrent, node, node_with, pseudo_random, raw_peer, seed, wait_complete,
};

fn handshake(torrent: &Torrent, have: HaveState) -> Handshake {
    Handshake {
        version: PROTOCOL_VERSION,
        info_hash: torrent.info_hash,
        have,
    }
}

async fn open(from: &NodeHandle, to: &NodeHandle, hs: Handshake) -> PeerStream {
    from.dial(to.listen_addrs()[0].clone()).await.unwrap();
    let mut control = from.stream_control();
    streams::open(&mut control, to.peer_id(), hs, &Limits::default())
        .await
        .expect("stream opens")
}

/// Unchokes and answers every request with wrong bytes; with `leave_after`, closes the stream
/// right after answering that many, so that they fail verification after it is gone.
async fn serve_garbage(mut stream: PeerStream, leave_after: Option<usize>) {
    let _ = stream.writer.push(&Message::Unchoke).await;
    let _ = stream.writer.flush().await;
    let mut answered = 0;
    while let Ok(Some(message)) = stream.reader.next().await {
        if let Message::Request(BlockRef {
            piece,
            offset,
            length,
        }) = message
        {
            let data = Bytes::from(vec![0xAB; length as usize]);
            let block = Message::Piece(Block {
                piece,
                offset,
                data,
            });
            if stream.writer.push(&block).await.is_err() || stream.writer.flush().await.is_err() {
                return;
            }
            answered += 1;
            if leave_after == Some(answered) {
                let _ = stream.writer.close().await;
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_wrong_data_is_banned_and_the_download_still_completes() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(2 * 1024 * 1024, 3);
    std::fs::write(seed_dir.join("content.bin"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("content.bin"), 32 * 1024);
    // The honest seeder is slow, so the victim asks the liar for many blocks.
    let seeder = node_with(dir.path(), "seeder", |c| {
        c.upload_limit = Some(Rate(512 * 1024))
    })
    .await;
    let _seeding = seed(&seeder, &torrent, &seed_dir).await;
    let victim = node(dir.path(), "victim").await;
    let mut victim_events = victim.subscribe();
    let fetching = fetch(&victim, &torrent, &dir.path().join("leech")).await;
    let liar = node(dir.path(), "liar").await;
    let liar_stream = open(&liar, &victim, handshake(&torrent, HaveState::All)).await;
    let liar_task = tokio::spawn(serve_garbage(liar_stream, None));
    fetching
        .add_peer(seeder.listen_addrs()[0].clone())
        .await
        .unwrap();

    wait_complete(&fetching).await;
    assert!(std::fs::read(dir.path().join("leech/content.bin")).unwrap() == content);
    assert!(victim.is_banned(&liar.peer_id()), "the liar is banned");
    let stats = fetching.status().await.unwrap().stats;
    assert!(
        stats.failed_pieces > 0,
        "the liar's pieces failed verification"
    );
    assert_eq!(stats.banned_peers, 1);
    let mut banned = Vec::new();
    let mut completed = false;
    while let Ok(event) = victim_events.try_recv() {
        match event {
            NodeEvent::PeerBanned { peer, .. } => banned.push(peer),
            NodeEvent::TorrentCompleted { info_hash } => completed = info_hash == torrent.info_hash,
            _ => {}
        }
    }
    assert_eq!(
        banned,
        [liar.peer_id()],
        "one PeerBanned event, for the liar"
    );
    assert!(completed, "a TorrentCompleted event");
    liar_task.abort();
    for n in [seeder, victim, liar] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_that_leaves_before_its_pieces_are_checked_is_banned_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("content.bin"), pseudo_random(2 << 20, 3)).unwrap();
    let torrent = make_torrent(&seed_dir.join("content.bin"), 32 * 1024);
    let victim = node(dir.path(), "victim").await;
    let mut events = victim.subscribe();
    let fetching = fetch(&victim, &torrent, &dir.path().join("leech")).await;
    let liar = node(dir.path(), "liar").await;
    let stream = open(&liar, &victim, handshake(&torrent, HaveState::All)).await;
    // The victim's first requests (its minimum pipeline, 8 blocks) are whole 32 KiB pieces.
    serve_garbage(stream, Some(8)).await;

    let banned = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::PeerBanned { peer, .. }) => break peer,
                Ok(_) => {}
                Err(e) => panic!("the victim's events ended: {e}"),
            }
        }
    })
    .await
    .expect("a PeerBanned event within 20 s");
    assert_eq!(banned, liar.peer_id());
    assert!(victim.is_banned(&liar.peer_id()));
    let stats = fetching.status().await.unwrap().stats;
    assert!(
        stats.failed_pieces > 0,
        "the liar's pieces failed: {stats:?}"
    );
    assert_eq!(stats.banned_peers, 1);
    for n in [victim, liar] {
        n.shutdown().await;
    }
}

/// Sends `bytes` raw on a fresh piece-exchange stream and returns whether the receiver closed
/// it within a few seconds.
async fn raw_stream_is_closed(from: &NodeHandle, to: &NodeHandle, bytes: Vec<u8>) -> bool {
    let mut control = from.stream_control();
    let protocol = StreamProtocol::new(PIECES_PROTOCOL);
    let mut stream = control.open_stream(to.peer_id(), protocol).await.unwrap();
    let _ = stream.write_all(&bytes).await;
    let _ = stream.flush().await;
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut sink)).await;
    read.is_ok()
}

fn frame(message: &Message) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    shoal_wire::encode(message, &mut buf).unwrap();
    buf.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_close_only_that_stream() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    // 52 pieces: the last bitfield byte has spare bits.
    let content = pseudo_random(3 * 1024 * 1024 + 200_000, 4);
    std::fs::write(seed_dir.join("content.bin"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("content.bin"), 64 * 1024);
    // Slow enough (about 6 s) that the honest transfer is still running while the attacks
    // happen; that is checked below.
    let seeder = node_with(dir.path(), "seeder", |c| {
        c.upload_limit = Some(Rate(512 * 1024))
    })
    .await;
    let _seeding = seed(&seeder, &torrent, &seed_dir).await;
    let honest = node(dir.path(), "honest").await;
    let fetching = fetch(&honest, &torrent, &dir.path().join("leech")).await;
    fetching
        .add_peer(seeder.listen_addrs()[0].clone())
        .await
        .unwrap();
    // Connected before the attacks start (checked again while they run).
    status_until(&fetching, "the honest leecher meets the seeder", |s| {
        s.peers.len() == 1
    })
    .await;

    let attacker = node(dir.path(), "attacker").await;
    attacker
        .dial(seeder.listen_addrs()[0].clone())
        .await
        .unwrap();
    let hello = frame(&Message::Handshake(handshake(&torrent, HaveState::None)));
    let num_pieces = torrent.info.num_pieces() as u32;
    let out_of_range = Message::Request(BlockRef {
        piece: num_pieces,
        offset: 0,
        length: BLOCK_SIZE,
    });
    let unknown = Torrent {
        info_hash: shoal_metainfo::InfoHash([9; 20]),
        ..torrent.clone()
    };
    let bad_handshake = |edit: &dyn Fn(&mut Handshake)| {
        let mut hs = handshake(&torrent, HaveState::None);
        edit(&mut hs);
        frame(&Message::Handshake(hs))
    };
    assert!(num_pieces % 8 != 0, "the torrent leaves spare bits");
    let mut bytes = vec![0; (num_pieces as usize).div_ceil(8)];
    *bytes.last_mut().unwrap() |= 1;
    let spare_bits = shoal_wire::Bitfield::from_bytes(bytes, num_pieces).unwrap();
    let attacks: [(&str, Vec<u8>); 7] = [
        (
            "out-of-range request",
            [hello.clone(), frame(&out_of_range)].concat(),
        ),
        (
            "garbage bytes",
            [
                hello.clone(),
                vec![0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff],
            ]
            .concat(),
        ),
        (
            "oversized frame",
            [hello.clone(), vec![0xff, 0xff, 0xff, 0xf0]].concat(),
        ),
        (
            "unknown info-hash",
            frame(&Message::Handshake(handshake(&unknown, HaveState::None))),
        ),
        (
            "handshake of another protocol version",
            bad_handshake(&|hs| hs.version = PROTOCOL_VERSION + 1),
        ),
        (
            "bitfield of the wrong length",
            bad_handshake(&|hs| {
                hs.have = HaveState::Bitfield(shoal_wire::Bitfield::new(num_pieces + 8))
            }),
        ),
        (
            "bitfield with spare bits set",
            bad_handshake(&|hs| hs.have = HaveState::Bitfield(spare_bits.clone())),
        ),
    ];
    for (name, bytes) in attacks {
        assert!(
            raw_stream_is_closed(&attacker, &seeder, bytes).await,
            "{name}: stream left open"
        );
    }
    // A flood of valid but useless messages: queued with backpressure, not in memory.
    let mut flood = open(&attacker, &seeder, handshake(&torrent, HaveState::None)).await;
    let flooding = tokio::spawn(async move {
        for _ in 0..200_000 {
            if flood.writer.push(&Message::Interested).await.is_err() {
                return;
            }
        }
        let _ = flood.writer.flush().await;
    });
    let during = fetching.status().await.unwrap();
    assert!(
        !during.stats.complete,
        "the honest transfer must still be running while the attacks happen"
    );
    assert_eq!(during.peers.len(), 1, "the honest peer is still connected");
    // The honest transfer went on undisturbed.
    wait_complete(&fetching).await;
    flooding.abort();
    assert!(std::fs::read(dir.path().join("leech/content.bin")).unwrap() == content);
    for n in [seeder, honest, attacker] {
        n.shutdown().await;
    }
}

/// One PEX message from `from` to `to` on its own stream, as the protocol sends it.
async fn send_pex(from: &NodeHandle, to: &NodeHandle, message: &shoal_wire::PexMessage) {
    let mut buf = bytes::BytesMut::new();
    shoal_wire::encode_pex(message, &mut buf).unwrap();
    send_pex_frame(from, to, &buf).await;
}

/// One PEX message as a sloppy or hostile peer would send it: no limits checked.
async fn send_unchecked_pex(from: &NodeHandle, to: &NodeHandle, message: &shoal_wire::PexMessage) {
    let payload = bincode::serde::encode_to_vec(message, bincode::config::standard()).unwrap();
    let frame = [&(payload.len() as u32).to_be_bytes()[..], &payload].concat();
    send_pex_frame(from, to, &frame).await;
}

async fn send_pex_frame(from: &NodeHandle, to: &NodeHandle, frame: &[u8]) {
    let mut stream = from
        .stream_control()
        .open_stream(to.peer_id(), StreamProtocol::new(shoal_wire::PEX_PROTOCOL))
        .await
        .unwrap();
    stream.write_all(frame).await.unwrap();
    stream.close().await.unwrap();
}

/// Polls the torrent's status until `done` holds, failing the test after 30 s.
async fn status_until(
    handle: &TorrentHandle,
    what: &str,
    done: impl Fn(&TorrentStatus) -> bool,
) -> TorrentStatus {
    let poll = async {
        loop {
            let status = handle.status().await.unwrap();
            if done(&status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
}

fn has_peer(status: &TorrentStatus, peer: PeerId) -> bool {
    status.peers.iter().any(|p| p.info.peer_id == peer)
}

/// A small torrent seeded by a node made with `edit`, and a peer `x` joined to it through a
/// raw piece-exchange stream (kept open by the returned stream).
async fn pex_target(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut shoal_node::NodeConfig),
) -> (NodeHandle, NodeHandle, Torrent, TorrentHandle, PeerStream) {
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("f"), pseudo_random(64 * 1024, 73)).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 16 * 1024);
    let a = node_with(dir, "a", edit).await;
    let x = node(dir, "x").await;
    let seeding = seed(&a, &torrent, &seed_dir).await;
    let stream = open(&x, &a, handshake(&torrent, HaveState::None)).await;
    status_until(&seeding, "x joined", |s| has_peer(s, x.peer_id())).await;
    (a, x, torrent, seeding, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_pex_lists_are_ignored_three_times_in_a_window_then_the_peer_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let window = Duration::from_secs(2);
    let (a, x, torrent, seeding, _stream) =
        pex_target(dir.path(), |c| c.pex_timing.violation_window = window).await;
    // 51 dropped peers: one over the limit, whenever it comes.
    let oversized = shoal_wire::PexMessage {
        info_hash: torrent.info_hash,
        added: Vec::new(),
        dropped: (0..51).map(|_| PeerId::random().to_bytes()).collect(),
    };
    for n in 1..=3 {
        send_unchecked_pex(&x, &a, &oversized).await;
        status_until(&seeding, "an oversized message counted", |s| {
            s.pex.oversized == n
        })
        .await;
    }
    let status = seeding.status().await.unwrap();
    assert!(
        has_peer(&status, x.peer_id()),
        "dropped too soon: {:?}",
        status.pex
    );
    assert_eq!(status.pex.throttled, 3, "{:?}", status.pex);
    // Once those three have left the window, three more are only ignored too ...
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    for n in 4..=6 {
        send_unchecked_pex(&x, &a, &oversized).await;
        status_until(&seeding, "an oversized message counted", |s| {
            s.pex.oversized == n
        })
        .await;
    }
    let status = seeding.status().await.unwrap();
    assert!(
        has_peer(&status, x.peer_id()),
        "old violations counted: {:?}",
        status.pex
    );
    // ... and a fourth within the window drops the peer.
    send_unchecked_pex(&x, &a, &oversized).await;
    let status = status_until(&seeding, "x was dropped", |s| !has_peer(s, x.peer_id())).await;
    assert_eq!(
        (
            status.pex.oversized,
            status.pex.throttled,
            status.pex.dropped_peers
        ),
        (7, 6, 1),
        "{:?}",
        status.pex
    );
    assert_eq!(status.pex.accepted, 0);
    a.shutdown().await;
    x.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pex_record_with_a_bad_address_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (a, x, torrent, seeding, _stream) = pex_target(dir.path(), |_| {}).await;
    // c fetches slowly (64 KiB at 8 KiB/s), so that it is still connected to a while the test
    // looks: a seed closes its connection to a peer that finished.
    let c = node_with(dir.path(), "c", |c| c.download_limit = Some(Rate(8 * 1024))).await;
    let _fetching = fetch(&c, &torrent, &dir.path().join("c")).await;
    let mut c_address = c.listen_addrs()[0].clone();
    c_address.pop(); // as identify reports it: no /p2p/ suffix
    let message = shoal_wire::PexMessage {
        info_hash: torrent.info_hash,
        added: vec![
            shoal_wire::PexPeer {
                peer_id: c.peer_id().to_bytes(),
                // Not a multiaddr, then a good one.
                addrs: vec![vec![0xff, 0xfe, 0x01], c_address.to_vec()],
            },
            shoal_wire::PexPeer {
                peer_id: vec![1, 2, 3], // not a peer id
                addrs: vec![c_address.to_vec()],
            },
        ],
        dropped: Vec::new(),
    };
    send_pex(&x, &a, &message).await;
    // The good part of the message is used: a meets c through PEX ...
    let status = status_until(&seeding, "a met c", |s| has_peer(s, c.peer_id())).await;
    let c_at_a = status.peers.iter().find(|p| p.info.peer_id == c.peer_id());
    assert_eq!(c_at_a.map(|p| p.info.source), Some(PeerSource::Pex));
    // ... and the sender is neither dropped nor held to account.
    assert!(has_peer(&status, x.peer_id()), "x was dropped");
    assert_eq!(
        (
            status.pex.received,
            status.pex.accepted,
            status.pex.throttled
        ),
        (1, 1, 0),
        "{:?}",
        status.pex
    );
    for n in [a, x, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pex_flooder_is_throttled_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("f"), pseudo_random(64 * 1024, 71)).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 16 * 1024);
    let (a, flooder) = (node(dir.path(), "a").await, node(dir.path(), "x").await);
    let seeding = seed(&a, &torrent, &seed_dir).await;
    // The flooder joins the torrent with a raw piece-exchange stream, then floods PEX.
    let _stream = open(&flooder, &a, handshake(&torrent, HaveState::None)).await;
    let message = shoal_wire::PexMessage {
        info_hash: torrent.info_hash,
        added: Vec::new(),
        dropped: vec![libp2p::PeerId::random().to_bytes()],
    };
    let dropped = async {
        for _ in 0..10 {
            send_pex(&flooder, &a, &message).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let status = seeding.status().await.unwrap();
            if status.peers.is_empty() {
                return status.pex;
            }
        }
        panic!("the flooder was never dropped");
    };
    let pex = tokio::time::timeout(Duration::from_secs(30), dropped)
        .await
        .expect("flood handled in time");
    // One message accepted, three ignored, the fifth got it dropped.
    assert_eq!(
        (pex.received, pex.accepted, pex.throttled, pex.dropped_peers),
        (5, 1, 3, 1),
        "{pex:?}"
    );
    a.shutdown().await;
    flooder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_set_to_corrupt_its_uploads_is_banned_by_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let content = pseudo_random(512 * 1024, 72);
    std::fs::write(seed_dir.join("f"), &content).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 32 * 1024);
    let liar = node_with(dir.path(), "liar", |c| c.corrupt_uploads = true).await;
    let honest = node(dir.path(), "honest").await;
    let _lying = seed(&liar, &torrent, &seed_dir).await;
    let _honest = seed(&honest, &torrent, &seed_dir).await;
    let fetcher = node(dir.path(), "fetcher").await;
    let mut events = fetcher.subscribe();
    let handle = fetch(&fetcher, &torrent, &dir.path().join("out")).await;
    // The liar alone first: every piece it sends fails, and it is banned.
    handle
        .add_peer(liar.listen_addrs()[0].clone())
        .await
        .unwrap();
    let banned = async {
        loop {
            if let NodeEvent::PeerBanned { peer, .. } = events.recv().await.unwrap() {
                return peer;
            }
        }
    };
    let banned = tokio::time::timeout(Duration::from_secs(30), banned)
        .await
        .expect("the liar was banned in time");
    assert_eq!(banned, liar.peer_id());
    assert!(handle.status().await.unwrap().stats.failed_pieces >= 1);
    handle
        .add_peer(honest.listen_addrs()[0].clone())
        .await
        .unwrap();
    wait_complete(&handle).await;
    assert!(std::fs::read(dir.path().join("out/f")).unwrap() == content);
    assert!(fetcher.is_banned(&liar.peer_id()));
    assert!(!fetcher.is_banned(&honest.peer_id()));
    for n in [liar, honest, fetcher] {
        n.shutdown().await;
    }
}

type MetadataReader = FrameReader<futures::io::ReadHalf<libp2p::Stream>>;
type MetadataWriter = FrameWriter<futures::io::WriteHalf<libp2p::Stream>>;

/// A metadata stream from `from` to `to`, or `None` if `to` refused it at once.
async fn metadata_stream(
    from: &NodeHandle,
    to: &NodeHandle,
) -> Option<(MetadataReader, MetadataWriter)> {
    let protocol = StreamProtocol::new(shoal_wire::METADATA_PROTOCOL);
    let stream = from
        .stream_control()
        .open_stream(to.peer_id(), protocol)
        .await
        .ok()?;
    let (read, write) = stream.split();
    Some((FrameReader::new(read, None), FrameWriter::new(write, None)))
}

/// Sends `count` requests for piece 0, then counts the Data answers until the stream ends
/// (`Err` if it ended in an error instead of a close, or went silent).
async fn ask_metadata(
    stream: &mut (MetadataReader, MetadataWriter),
    torrent: &Torrent,
    count: usize,
) -> Result<usize, StreamError> {
    let (reader, writer) = stream;
    let request = MetadataMessage::Request {
        info_hash: torrent.info_hash,
        piece: 0,
    };
    for _ in 0..count {
        writer
            .push_with(|buf| shoal_wire::encode_metadata(&request, buf))
            .await?;
    }
    writer.flush().await?;
    let mut answers = 0;
    while answers < count {
        let next = reader
            .next_as_within(shoal_wire::decode_metadata, Duration::from_secs(20))
            .await?;
        match next {
            Some(MetadataMessage::Data { .. }) => answers += 1,
            Some(other) => panic!("unexpected answer {other:?}"),
            None => break,
        }
    }
    Ok(answers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_serving_is_bounded_per_peer_and_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("f"), pseudo_random(64 * 1024, 74)).unwrap();
    let torrent = make_torrent(&seed_dir.join("f"), 16 * 1024);
    let (a, x, y) = (
        node(dir.path(), "a").await,
        node(dir.path(), "x").await,
        node(dir.path(), "y").await,
    );
    let _seeding = seed(&a, &torrent, &seed_dir).await;
    for n in [&x, &y] {
        n.dial(a.listen_addrs()[0].clone()).await.unwrap();
    }
    // Two streams from x at once are served ...
    let mut first = metadata_stream(&x, &a).await.expect("first stream");
    assert_eq!(ask_metadata(&mut first, &torrent, 1).await.unwrap(), 1);
    let mut second = metadata_stream(&x, &a).await.expect("second stream");
    assert_eq!(ask_metadata(&mut second, &torrent, 1).await.unwrap(), 1);
    // ... a third is refused while they are open ...
    if let Some(mut third) = metadata_stream(&x, &a).await {
        let answered = ask_metadata(&mut third, &torrent, 1).await;
        assert!(
            matches!(answered, Ok(0)) || matches!(answered, Err(StreamError::Io(_))),
            "a third stream from one peer was served: {answered:?}"
        );
    }
    // ... while another peer is served as usual.
    let mut other = metadata_stream(&y, &a).await.expect("y's stream");
    assert_eq!(ask_metadata(&mut other, &torrent, 1).await.unwrap(), 1);
    // Once x closes one, it may open another; a stream answers 1024 requests (every piece of
    // the largest info dictionary), then closes.
    let _ = first.1.close().await;
    let fresh = async {
        loop {
            if let Some(mut stream) = metadata_stream(&x, &a).await {
                if let Ok(answers) = ask_metadata(&mut stream, &torrent, 1025).await {
                    if answers > 0 {
                        return answers;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let answers = tokio::time::timeout(Duration::from_secs(30), fresh)
        .await
        .expect("x got a stream again");
    assert_eq!(answers, 1024);
    drop(second);
    for n in [a, x, y] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_sends_without_reading_is_held_back_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("content.bin"), pseudo_random(1 << 20, 7)).unwrap();
    let torrent = make_torrent(&seed_dir.join("content.bin"), 64 * 1024);
    let victim = node_with(dir.path(), "victim", |c| {
        c.peer_send_timeout = Duration::from_secs(3)
    })
    .await;
    let seeding = seed(&victim, &torrent, &seed_dir).await;
    let attacker = node(dir.path(), "attacker").await;
    let mut stream = open(&attacker, &victim, handshake(&torrent, HaveState::None)).await;
    stream.writer.push(&Message::Interested).await.unwrap();
    stream.writer.flush().await.unwrap();
    while stream.reader.next().await.unwrap() != Some(Message::Unchoke) {}

    // From now on the attacker never reads. Each request is too long to serve, so the victim
    // answers each with a Reject that waits in its queue for the attacker.
    let request = Message::Request(BlockRef {
        piece: 0,
        offset: 0,
        length: 2 * BLOCK_SIZE,
    });
    let flood = 1_000_000;
    let mut sent = 0;
    while sent < flood {
        let push = stream.writer.push(&request);
        match tokio::time::timeout(Duration::from_secs(2), push).await {
            Ok(result) => result.unwrap(),
            Err(_) => break, // The victim stopped reading: the stream's window is full.
        }
        sent += 1;
    }
    assert!(
        sent < flood,
        "the victim read all {flood} requests of a peer that reads nothing"
    );
    status_until(&seeding, "the victim drops the peer", |s| {
        !has_peer(s, attacker.peer_id())
    })
    .await;
    for n in [victim, attacker] {
        n.shutdown().await;
    }
}

/// A bare libp2p host (not a shoal node) that answers each metadata request after `delay`,
/// claiming the largest metadata allowed: a fetch from it never times out an answer and never
/// completes.
async fn dripping_metadata_server(delay: Duration) -> RawPeer {
    use futures::StreamExt;
    let mut server = raw_peer().await;
    let protocol = StreamProtocol::new(shoal_wire::METADATA_PROTOCOL);
    let mut incoming = server.control.accept(protocol).unwrap();
    tokio::spawn(async move {
        while let Some((_, stream)) = incoming.next().await {
            tokio::spawn(drip_metadata(stream, delay));
        }
    });
    server
}

async fn drip_metadata(stream: libp2p::Stream, delay: Duration) {
    let (read, write) = stream.split();
    let (mut reader, mut writer) = (FrameReader::new(read, None), FrameWriter::new(write, None));
    let within = Duration::from_secs(60);
    while let Ok(Some(MetadataMessage::Request { piece, .. })) = reader
        .next_as_within(shoal_wire::decode_metadata, within)
        .await
    {
        tokio::time::sleep(delay).await;
        let data = MetadataMessage::Data {
            piece,
            total_len: shoal_wire::MAX_METADATA_LEN,
            data: Bytes::from(vec![0; shoal_wire::METADATA_PIECE_LEN as usize]),
        };
        let sent = writer
            .push_with(|buf| shoal_wire::encode_metadata(&data, buf))
            .await;
        if sent.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_drips_the_metadata_is_given_up_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("content.bin");
    std::fs::write(&path, pseudo_random(100_000, 9)).unwrap();
    let torrent = make_torrent(&path, 32 * 1024);
    let dripper = dripping_metadata_server(Duration::from_millis(500)).await;
    let victim = node(dir.path(), "victim").await;
    let mut magnet = torrent.magnet();
    magnet.peers = vec![dripper.address.to_string()];
    let mut add = AddMagnet::new(magnet, dir.path().join("out"));
    add.metadata_timeout = Duration::from_secs(6);
    add.peer_metadata_timeout = Duration::from_secs(2);
    let err = victim.add_magnet(add).await.unwrap_err().to_string();
    assert!(
        err.contains(": the peer did not send the whole metadata within 2s)"),
        "{err}"
    );
    victim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_opening_many_silent_piece_streams_gets_only_a_few_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let victim = node(dir.path(), "victim").await;
    let attacker = node(dir.path(), "attacker").await;
    attacker
        .dial(victim.listen_addrs()[0].clone())
        .await
        .unwrap();
    let protocol = StreamProtocol::new(PIECES_PROTOCOL);
    let mut control = attacker.stream_control();
    let mut streams = Vec::new();
    for _ in 0..80 {
        let stream = control
            .open_stream(victim.peer_id(), protocol.clone())
            .await
            .unwrap();
        streams.push(stream);
    }
    // None sends a handshake. The victim waits for the handshake of the streams it accepted
    // (10 s) and resets the others at once.
    let reads = streams.iter_mut().map(|stream| async move {
        let mut byte = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut byte)).await;
        read.is_err()
    });
    let waiting = futures::future::join_all(reads).await;
    let waiting = waiting.into_iter().filter(|&w| w).count();
    assert_eq!(waiting, 32, "streams the victim waits on");
    for n in [victim, attacker] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_named_in_pex_again_is_not_dialed_again() {
    let dir = tempfile::tempdir().unwrap();
    let (a, x, torrent, seeding, _x_stream) = pex_target(dir.path(), |_| {}).await;
    let y = node(dir.path(), "y").await;
    let _y_stream = open(&y, &a, handshake(&torrent, HaveState::None)).await;
    status_until(&seeding, "y joined", |s| has_peer(s, y.peer_id())).await;
    // The address both name: a plain TCP port that counts the connections made to it.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let (count_tx, mut counted) = tokio::sync::mpsc::unbounded_channel();
    let counter = tokio::spawn(async move {
        while let Ok((socket, _)) = target.accept().await {
            let _ = count_tx.send(socket);
        }
    });
    let address: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let message = shoal_wire::PexMessage {
        info_hash: torrent.info_hash,
        added: vec![shoal_wire::PexPeer {
            peer_id: PeerId::random().to_bytes(),
            addrs: vec![address.to_vec()],
        }],
        dropped: Vec::new(),
    };
    send_pex(&x, &a, &message).await;
    send_pex(&y, &a, &message).await;
    status_until(&seeding, "both messages were taken", |s| {
        s.pex.accepted == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut connections = Vec::new();
    while let Ok(socket) = counted.try_recv() {
        connections.push(socket);
    }
    assert_eq!(connections.len(), 1, "dials of the named address");
    counter.abort();
    for n in [a, x, y] {
        n.shutdown().await;
    }
}
