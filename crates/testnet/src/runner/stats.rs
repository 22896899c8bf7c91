//! Polling a node's `/stats` JSON (plain HTTP/1.1 over a TCP stream) and the swarm-wide
//! progress figure that faults can trigger on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest `/stats` answer read.
const MAX_STATS_BYTES: u64 = 4 << 20;

/// The figures of a node's (only) torrent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeStats {
    pub pieces_have: u32,
    pub num_pieces: u32,
    pub complete: bool,
    pub bytes_uploaded: u64,
    pub bytes_downloaded: u64,
    pub duplicate_bytes: u64,
    pub banned_peers: u32,
    /// Connected peers now, by the source that found them.
    pub peers_by_source: BTreeMap<String, u32>,
    /// Distinct peers connected over the torrent's life, by source.
    pub peers_found_by_source: BTreeMap<String, u32>,
    /// From when the node added the torrent to when its last piece was verified, by the
    /// node's own clock.
    pub time_to_complete_ms: Option<u64>,
}

/// GETs `http://addr/stats` and reads the first torrent's figures. `None` when the node does not
/// answer within `timeout` (paused, stopping) or has no torrent yet (a magnet still fetching).
pub async fn fetch(addr: SocketAddr, timeout: Duration) -> Option<NodeStats> {
    let body = tokio::time::timeout(timeout, get(addr)).await.ok()??;
    let value: Value = serde_json::from_slice(&body).ok()?;
    parse(&value)
}

async fn get(addr: SocketAddr) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream
        .take(MAX_STATS_BYTES)
        .read_to_end(&mut answer)
        .await
        .ok()?;
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status_ok = answer.starts_with(b"HTTP/1.1 200");
    status_ok.then(|| answer[head_end + 4..].to_vec())
}

/// The first torrent's figures from a `/stats` document.
pub fn parse(stats: &Value) -> Option<NodeStats> {
    let torrent = stats.get("torrents")?.as_array()?.first()?;
    let num = |key: &str| torrent.get(key).and_then(Value::as_u64).unwrap_or(0);
    let small = |key: &str| u32::try_from(num(key)).unwrap_or(u32::MAX);
    Some(NodeStats {
        pieces_have: small("pieces_have"),
        num_pieces: small("num_pieces"),
        complete: torrent
            .get("complete")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        bytes_uploaded: num("bytes_uploaded"),
        bytes_downloaded: num("bytes_downloaded"),
        duplicate_bytes: num("duplicate_bytes"),
        banned_peers: small("banned_peers"),
        peers_by_source: counts(torrent, "peers_by_source"),
        peers_found_by_source: counts(torrent, "peers_found_by_source"),
        time_to_complete_ms: torrent.get("time_to_complete_ms").and_then(Value::as_u64),
    })
}

/// A `{source: count}` object; missing or malformed counts are 0.
fn counts(torrent: &Value, key: &str) -> BTreeMap<String, u32> {
    torrent
        .get(key)
        .and_then(Value::as_object)
        .map(|sources| {
            sources
                .iter()
                .map(|(k, v)| {
                    let n = v.as_u64().unwrap_or(0);
                    (k.clone(), u32::try_from(n).unwrap_or(u32::MAX))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Swarm progress: pieces held by the nodes that should complete, over what they need in all
/// (`held` is one entry per such node). 1.0 when no node needs anything.
pub fn swarm_progress(held: &[u32], num_pieces: u32) -> f64 {
    let need = held.len() as f64 * f64::from(num_pieces);
    if need <= 0.0 {
        return 1.0;
    }
    let have: f64 = held.iter().map(|&h| f64::from(h.min(num_pieces))).sum();
    have / need
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_first_torrent() {
        let doc = json!({
            "peer_id": "X",
            "torrents": [{
                "num_pieces": 10, "pieces_have": 4, "complete": false,
                "bytes_uploaded": 5, "bytes_downloaded": 6, "duplicate_bytes": 7,
                "banned_peers": 1, "time_to_complete_ms": null,
                "peers_by_source": {"manual": 0, "dht": 2, "pex": 1, "tracker": 3, "incoming": 0},
                "peers_found_by_source": {"manual": 0, "dht": 5, "pex": 4, "tracker": 3}
            }]
        });
        let s = parse(&doc).unwrap();
        assert_eq!((s.pieces_have, s.num_pieces, s.complete), (4, 10, false));
        assert_eq!(
            (s.bytes_uploaded, s.bytes_downloaded, s.duplicate_bytes),
            (5, 6, 7)
        );
        assert_eq!(s.banned_peers, 1);
        assert_eq!(s.peers_by_source["dht"], 2);
        assert_eq!(s.peers_by_source["tracker"], 3);
        assert_eq!(s.peers_found_by_source["dht"], 5);
        assert_eq!(s.time_to_complete_ms, None);
        assert!(parse(&json!({"torrents": []})).is_none());
    }

    #[test]
    fn progress_over_nodes_that_should_complete() {
        assert_eq!(swarm_progress(&[], 10), 1.0);
        assert_eq!(swarm_progress(&[0, 0], 10), 0.0);
        assert_eq!(swarm_progress(&[10, 5], 10), 0.75);
        assert_eq!(swarm_progress(&[20, 0], 10), 0.5);
    }

    #[tokio::test]
    async fn fetches_over_http() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await.unwrap();
            let body = r#"{"torrents":[{"num_pieces":3,"pieces_have":3,"complete":true,"time_to_complete_ms":1250}]}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
        });
        let stats = fetch(addr, Duration::from_secs(5)).await.unwrap();
        assert!(stats.complete);
        assert_eq!(stats.num_pieces, 3);
        assert_eq!(stats.time_to_complete_ms, Some(1250));
    }
}
