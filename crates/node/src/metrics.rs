//! The node's figures over HTTP: `/stats` as JSON, `/metrics` as Prometheus text.
//!
//! Meant for a local port (`--metrics 127.0.0.1:PORT`): testnet runners poll it, and so can a
//! Prometheus server. It only answers GET for those two paths; anything else is a 404.

use std::convert::Infallible;
use std::fmt::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::dht::DhtStats;
use crate::error::NodeError;
use crate::host::NodeHandle;
use crate::peers::PeerSource;
use crate::progress::{PeerStatus, TorrentStatus};

/// Binds `addr` and serves the node's figures until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    node: NodeHandle,
) -> Result<(SocketAddr, JoinHandle<()>), NodeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Listen {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    let local = listener.local_addr().map_err(|e| NodeError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let node = node.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| answer(request, node.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service);
                if let Err(e) = connection.await {
                    debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    Ok((local, task))
}

async fn answer(
    request: Request<Incoming>,
    node: NodeHandle,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = kind.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        Ok(response)
    };
    if request.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    let statuses = node.torrent_statuses().await;
    match request.uri().path() {
        "/stats" => {
            let dht = node.dht_stats().await.unwrap_or_default();
            let body = stats_json(&node, &dht, &statuses).to_string();
            reply(StatusCode::OK, "application/json", body)
        }
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            prometheus(&statuses),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /stats or /metrics\n".into(),
        ),
    }
}

/// The `/stats` document: the node and its DHT, and per torrent its figures, its PEX counters
/// and its peers (with the source that found each).
pub fn stats_json(
    node: &NodeHandle,
    dht: &DhtStats,
    statuses: &[(String, TorrentStatus)],
) -> Value {
    let torrents: Vec<Value> = statuses
        .iter()
        .map(|(info_hash, status)| torrent_json(info_hash, status))
        .collect();
    json!({
        "peer_id": node.peer_id().to_string(),
        "dht": {
            "enabled": node.dht_enabled(),
            "routing_peers": dht.routing_peers,
            "provided_keys": dht.provided_keys,
            "announces": dht.announces,
            "republished": dht.republished,
            "lookups": dht.lookups,
            "providers_found": dht.providers_found,
        },
        "torrents": torrents,
    })
}

fn torrent_json(info_hash: &str, status: &TorrentStatus) -> Value {
    let s = &status.stats;
    json!({
        "info_hash": info_hash,
        "num_pieces": s.num_pieces,
        "pieces_have": s.pieces_have,
        "complete": s.complete,
        "bytes_downloaded": s.bytes_downloaded,
        "bytes_uploaded": s.bytes_uploaded,
        "duplicate_bytes": s.duplicate_bytes,
        "download_rate": s.download_rate,
        "upload_rate": s.upload_rate,
        "failed_pieces": s.failed_pieces,
        "banned_peers": s.banned_peers,
        "time_to_first_byte_ms": s.time_to_first_byte.map(|d| d.as_millis() as u64),
        "time_to_complete_ms": s.time_to_complete.map(|d| d.as_millis() as u64),
        "peers_by_source": peers_by_source(status),
        "peers_found_by_source": found_by_source(status),
        "tracker": {
            "announces_ok": status.tracker.ok,
            "announces_failed": status.tracker.failed,
            "backoff_ms": status.tracker.backoff.map(|d| d.as_millis() as u64),
            "last_error": status.tracker.last_error,
        },
        "pex": {
            "sent": status.pex.sent,
            "added_sent": status.pex.added_sent,
            "dropped_sent": status.pex.dropped_sent,
            "received": status.pex.received,
            "accepted": status.pex.accepted,
            "oversized": status.pex.oversized,
            "throttled": status.pex.throttled,
            "dropped_peers": status.pex.dropped_peers,
        },
        "peers": status.peers.iter().map(peer_json).collect::<Vec<_>>(),
    })
}

/// One peer: its identity and source, and the engine's view of it once it has one.
fn peer_json(p: &PeerStatus) -> Value {
    let mut peer = json!({
        "peer_id": p.info.peer_id.to_string(),
        "source": p.info.source.as_str(),
    });
    if let Some(st) = &p.state {
        peer["pieces"] = json!(st.pieces);
        peer["am_choking"] = json!(st.am_choking);
        peer["am_interested"] = json!(st.am_interested);
        peer["peer_choking"] = json!(st.peer_choking);
        peer["peer_interested"] = json!(st.peer_interested);
        peer["snubbed"] = json!(st.snubbed);
        peer["optimistic"] = json!(st.optimistic);
        peer["bytes_downloaded"] = json!(st.bytes_downloaded);
        peer["bytes_uploaded"] = json!(st.bytes_uploaded);
        peer["download_rate"] = json!(st.download_rate);
        peer["upload_rate"] = json!(st.upload_rate);
        peer["outstanding_requests"] = json!(st.outstanding_requests);
    }
    peer
}

/// How many connected peers each source found.
fn peers_by_source(status: &TorrentStatus) -> Value {
    let mut counts = serde_json::Map::new();
    for source in PeerSource::ALL {
        let n = status
            .peers
            .iter()
            .filter(|p| p.info.source == source)
            .count();
        counts.insert(source.as_str().to_owned(), json!(n));
    }
    Value::Object(counts)
}

/// How many distinct peers each source found over the torrent's life.
fn found_by_source(status: &TorrentStatus) -> Value {
    let mut counts = serde_json::Map::new();
    for source in PeerSource::ALL {
        let n = status.found_by_source.get(&source).copied().unwrap_or(0);
        counts.insert(source.as_str().to_owned(), json!(n));
    }
    Value::Object(counts)
}

/// Prometheus exposition text, one sample per torrent and figure.
pub fn prometheus(statuses: &[(String, TorrentStatus)]) -> String {
    type Figure = (
        &'static str,
        &'static str,
        &'static str,
        fn(&TorrentStatus) -> f64,
    );
    const FIGURES: [Figure; 11] = [
        ("shoal_pieces_have", "gauge", "verified pieces", |s| {
            f64::from(s.stats.pieces_have)
        }),
        (
            "shoal_pieces_total",
            "gauge",
            "pieces in the torrent",
            |s| f64::from(s.stats.num_pieces),
        ),
        (
            "shoal_downloaded_bytes_total",
            "counter",
            "payload received",
            |s| s.stats.bytes_downloaded as f64,
        ),
        (
            "shoal_uploaded_bytes_total",
            "counter",
            "payload sent",
            |s| s.stats.bytes_uploaded as f64,
        ),
        (
            "shoal_duplicate_bytes_total",
            "counter",
            "payload received twice",
            |s| s.stats.duplicate_bytes as f64,
        ),
        (
            "shoal_failed_pieces_total",
            "counter",
            "pieces that failed verification",
            |s| f64::from(s.stats.failed_pieces),
        ),
        ("shoal_banned_peers_total", "counter", "peers banned", |s| {
            f64::from(s.stats.banned_peers)
        }),
        ("shoal_peers", "gauge", "connected peers", |s| {
            s.peers.len() as f64
        }),
        (
            "shoal_download_rate_bytes",
            "gauge",
            "payload received per second, recent average",
            |s| s.stats.download_rate as f64,
        ),
        (
            "shoal_upload_rate_bytes",
            "gauge",
            "payload sent per second, recent average",
            |s| s.stats.upload_rate as f64,
        ),
        (
            "shoal_time_to_first_byte_seconds",
            "gauge",
            "from the torrent's start to its first payload byte (0 until then)",
            |s| s.stats.time_to_first_byte.map_or(0.0, |d| d.as_secs_f64()),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in FIGURES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (info_hash, status) in statuses {
            let _ = writeln!(out, "{name}{{info_hash=\"{info_hash}\"}} {}", value(status));
        }
    }
    let name = "shoal_peers_by_source";
    let _ = writeln!(
        out,
        "# HELP {name} connected peers by the source that found them\n# TYPE {name} gauge"
    );
    for (info_hash, status) in statuses {
        for source in PeerSource::ALL {
            let n = status
                .peers
                .iter()
                .filter(|p| p.info.source == source)
                .count();
            let source = source.as_str();
            let _ = writeln!(
                out,
                "{name}{{info_hash=\"{info_hash}\",source=\"{source}\"}} {n}"
            );
        }
    }
    out
}
