//! Two real nodes on 127.0.0.1: connect, open streams, restart, shut down.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::StreamProtocol;
use shoal_node::{NodeConfig, NodeError, NodeEvent, NodeHandle};

const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const ECHO: StreamProtocol = StreamProtocol::new("/shoal/test-echo/1");

async fn node(dir: &std::path::Path, name: &str) -> NodeHandle {
    shoal_node::start(NodeConfig::loopback(dir.join(name)))
        .await
        .expect("node starts on loopback")
}

fn tcp_port(address: &libp2p::Multiaddr) -> u16 {
    address
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{address} has no TCP port"))
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test finished in time")
}

#[tokio::test]
async fn two_nodes_connect_and_see_each_other() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let a = node(dir.path(), "a").await;
        let b = node(dir.path(), "b").await;
        let mut b_events = b.subscribe();
        let addr = b.listen_addrs()[0].clone();
        assert!(
            addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"),
            "{addr}"
        );
        assert_eq!(a.dial(addr).await.unwrap(), b.peer_id());
        loop {
            if let NodeEvent::PeerConnected { peer, address } = b_events.recv().await.unwrap() {
                assert_eq!(peer, a.peer_id());
                // a dialed from a fresh port, not its listening one: two nodes dialing each
                // other at once must not merge into one TCP simultaneous open.
                let listening = tcp_port(&a.listen_addrs()[0]);
                assert_ne!(tcp_port(&address), listening, "a dialed from {address}");
                break;
            }
        }
        assert_eq!(a.connected_peers().await.unwrap(), vec![b.peer_id()]);
        a.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn streams_carry_bytes_both_ways() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let a = node(dir.path(), "a").await;
        let b = node(dir.path(), "b").await;
        let mut incoming = b.stream_control().accept(ECHO).unwrap();
        let echo = tokio::spawn(async move {
            let (_, mut stream) = incoming.next().await.unwrap();
            let mut buf = vec![0u8; 1 << 20];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
            stream.close().await.unwrap();
        });
        a.dial(b.listen_addrs()[0].clone()).await.unwrap();
        let mut stream = a
            .stream_control()
            .open_stream(b.peer_id(), ECHO)
            .await
            .unwrap();
        let sent: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        stream.write_all(&sent).await.unwrap();
        let mut back = Vec::new();
        stream.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, sent);
        echo.await.unwrap();
        a.shutdown().await;
        b.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn identity_survives_a_restart() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let first = node(dir.path(), "a").await;
        let id = first.peer_id();
        first.shutdown().await;
        let again = node(dir.path(), "a").await;
        assert_eq!(again.peer_id(), id);
        again.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn dialing_the_wrong_identity_fails_clearly() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let a = node(dir.path(), "a").await;
        let b = node(dir.path(), "b").await;
        let c = node(dir.path(), "c").await;
        // B's address, but C's identity: Noise authenticates B, so the dial must fail.
        let mut addr = b.listen_addrs()[0].clone();
        addr.pop();
        let addr = addr.with_p2p(c.peer_id()).unwrap();
        let err = a.dial(addr.clone()).await.unwrap_err();
        assert!(matches!(err, NodeError::Dial { .. }), "{err}");
        assert!(
            err.to_string().starts_with(&format!("cannot dial {addr}")),
            "{err}"
        );
        for n in [a, b, c] {
            n.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_stopped_node_says_so() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let a = node(dir.path(), "a").await;
        let copy = a.clone();
        a.shutdown().await;
        assert!(matches!(
            copy.connected_peers().await,
            Err(NodeError::Stopped)
        ));
        // Shutting down twice is harmless.
        copy.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn listening_on_a_taken_port_is_an_error() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let a = node(dir.path(), "a").await;
        let taken = a.listen_addrs()[0].clone();
        let mut addr = taken.clone();
        addr.pop();
        let mut config = NodeConfig::loopback(dir.path().join("b"));
        config.listen = vec![addr.clone()];
        let err = shoal_node::start(config).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot listen on {addr}")),
            "{err}"
        );
        a.shutdown().await;
    })
    .await;
}

/// A full node refuses an incoming connection before the Noise handshake, so the dialer never
/// has it established, not even for a moment (and the full node spends no handshake on it).
#[tokio::test]
async fn a_full_node_refuses_before_the_handshake() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::loopback(dir.path().join("b"));
        config.max_connections = 1;
        let b = shoal_node::start(config).await.unwrap();
        let a = node(dir.path(), "a").await;
        let c = node(dir.path(), "c").await;
        a.dial(b.listen_addrs()[0].clone()).await.unwrap();
        // B is full once it has A's connection up too.
        while b.connected_peers().await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut events = c.subscribe();
        let dialed = c.dial(b.listen_addrs()[0].clone()).await;
        assert!(dialed.is_err(), "C got a connection to a full node");
        while let Ok(event) = events.try_recv() {
            assert!(
                !matches!(event, NodeEvent::PeerConnected { .. }),
                "C was connected for a moment: {event:?}"
            );
        }
        assert_eq!(b.connected_peers().await.unwrap(), vec![a.peer_id()]);
        for n in [a, b, c] {
            n.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn connections_past_the_limit_are_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::loopback(dir.path().join("b"));
        config.max_connections = 1;
        let b = shoal_node::start(config).await.unwrap();
        let a = node(dir.path(), "a").await;
        let c = node(dir.path(), "c").await;
        a.dial(b.listen_addrs()[0].clone()).await.unwrap();
        // B is full: C's connection is refused (B closes it as soon as it is up).
        let mut events = c.subscribe();
        let refused = async {
            match c.dial(b.listen_addrs()[0].clone()).await {
                Err(_) => true,
                // The Noise handshake may complete before B applies its limit and closes.
                Ok(_) => loop {
                    match events.recv().await {
                        Ok(NodeEvent::PeerDisconnected { .. }) => break true,
                        Ok(_) => continue,
                        Err(_) => break false,
                    }
                },
            }
        };
        assert!(refused.await, "a second connection got through");
        assert_eq!(b.connected_peers().await.unwrap(), vec![a.peer_id()]);
        for n in [a, b, c] {
            n.shutdown().await;
        }
    })
    .await;
}
