//! Shared by the integration tests: start a tracker on 127.0.0.1:0, send raw HTTP/1.1.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use shoal_tracker::{ServerConfig, TrackerServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every network step of a test gets this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), shoal_tracker::TrackerError>>,
}

impl Running {
    pub async fn start(mut config: ServerConfig) -> Self {
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = TrackerServer::bind(config).await.unwrap();
        let addr = server.local_addr();
        assert_eq!(server.announce_url(), format!("http://{addr}/announce"));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    /// Stops the server and waits for its final flush.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    pub async fn get(&self, target: &str) -> (u16, Vec<u8>) {
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n");
        raw(self.addr, request.as_bytes()).await
    }
}

/// Sends `request` as is and returns the status code and body of the reply.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        reply
    };
    let reply = tokio::time::timeout(TIMEOUT, exchange).await.unwrap();
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&reply)));
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, reply[split + 4..].to_vec())
}

/// Percent-encodes every byte.
pub fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

/// An announce query for torrent `hash` from peer `id` on `port`, with 100 bytes left.
pub fn announce_query(hash: [u8; 20], id: [u8; 20], port: u16, extra: &str) -> String {
    announce_left(hash, id, port, 100, extra)
}

/// An announce query with `left` bytes left (0: a seeder).
pub fn announce_left(hash: [u8; 20], id: [u8; 20], port: u16, left: u64, extra: &str) -> String {
    format!(
        "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        escape(&hash),
        escape(&id)
    )
}

/// The `failure reason` of a reply, if it is one.
pub fn failure_reason(body: &[u8]) -> Option<String> {
    let doc = shoal_metainfo::bencode::decode(body).ok()?;
    let reason = doc.root().get(b"failure reason")?.as_str()?.to_owned();
    Some(reason)
}
