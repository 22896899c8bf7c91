//! Piece-exchange streams between two real nodes on 127.0.0.1: handshakes, routing by
//! info-hash, and refusals.

use std::time::Duration;

use shoal_metainfo::InfoHash;
use shoal_node::streams::{self, HandshakeError, Limits};
use shoal_node::{NodeConfig, NodeHandle};
use shoal_wire::{Bitfield, Handshake, HaveState, Message, PROTOCOL_VERSION};
use tokio::sync::mpsc;

const TEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn node(dir: &std::path::Path, name: &str) -> NodeHandle {
    shoal_node::start(NodeConfig::loopback(dir.join(name)))
        .await
        .expect("node starts")
}

fn handshake(info_hash: InfoHash, have: HaveState) -> Handshake {
    Handshake {
        version: PROTOCOL_VERSION,
        info_hash,
        have,
    }
}

#[tokio::test]
async fn handshakes_reach_the_right_torrent_and_back() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (node(dir.path(), "a").await, node(dir.path(), "b").await);
        let known = InfoHash([1; 20]);
        let (sink, mut streams_for_known) = mpsc::channel(4);
        b.router().register(known, sink);
        a.dial(b.listen_addrs()[0].clone()).await.unwrap();

        // A opens for the known torrent; B's torrent receives A's handshake and answers.
        let mut bits = Bitfield::new(10);
        bits.set(3, true);
        let ours = handshake(known, HaveState::Bitfield(bits.clone()));
        let mut control = a.stream_control();
        let opening = tokio::spawn({
            let ours = ours.clone();
            let peer = b.peer_id();
            async move { streams::open(&mut control, peer, ours, &Limits::default()).await }
        });
        let mut at_b = streams_for_known.recv().await.unwrap();
        assert_eq!(at_b.peer, a.peer_id());
        assert_eq!(at_b.handshake, ours);
        assert!(!at_b.outbound);
        at_b.writer
            .push(&Message::Handshake(handshake(known, HaveState::All)))
            .await
            .unwrap();
        at_b.writer.push(&Message::Have(9)).await.unwrap();
        at_b.writer.flush().await.unwrap();
        let mut at_a = opening.await.unwrap().unwrap();
        assert_eq!(at_a.handshake.have, HaveState::All);
        assert!(at_a.outbound);
        assert_eq!(at_a.reader.next().await.unwrap(), Some(Message::Have(9)));

        // An unknown torrent: B closes the stream and A hears why.
        let mut control = a.stream_control();
        let unknown = handshake(InfoHash([2; 20]), HaveState::None);
        let err = streams::open(&mut control, b.peer_id(), unknown, &Limits::default())
            .await
            .unwrap_err();
        assert!(matches!(err, HandshakeError::Closed), "{err}");
        // The first stream is undisturbed.
        at_b.writer.push(&Message::Unchoke).await.unwrap();
        at_b.writer.flush().await.unwrap();
        assert_eq!(at_a.reader.next().await.unwrap(), Some(Message::Unchoke));

        a.shutdown().await;
        b.shutdown().await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test]
async fn a_first_message_that_is_not_a_handshake_is_refused() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (node(dir.path(), "a").await, node(dir.path(), "b").await);
        let known = InfoHash([1; 20]);
        let (sink, mut at_b) = mpsc::channel(4);
        b.router().register(known, sink);
        a.dial(b.listen_addrs()[0].clone()).await.unwrap();
        // B's torrent answers A's handshake with a Have instead of a handshake.
        let mut control = a.stream_control();
        let peer = b.peer_id();
        let opening = tokio::spawn(async move {
            streams::open(
                &mut control,
                peer,
                handshake(known, HaveState::None),
                &Limits::default(),
            )
            .await
        });
        let mut stream = at_b.recv().await.unwrap();
        stream.writer.push(&Message::Have(1)).await.unwrap();
        stream.writer.flush().await.unwrap();
        let err = opening.await.unwrap().unwrap_err();
        assert!(
            matches!(err, HandshakeError::NotAHandshake("have")),
            "{err}"
        );
        a.shutdown().await;
        b.shutdown().await;
    })
    .await
    .expect("test finished in time");
}
