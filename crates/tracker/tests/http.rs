//! The public tracker over real HTTP on 127.0.0.1.

mod support;

use shoal_metainfo::bencode::decode;
use shoal_tracker::{DEFAULT_SHARDS, MAX_QUERY_LEN, ServerConfig, TrackerConfig};
use support::{Running, announce_left, announce_query, escape, failure_reason, raw};

const HASH: [u8; 20] = [0xab; 20];

#[tokio::test]
async fn hostile_requests_get_failure_reasons_and_the_tracker_keeps_serving() {
    let tracker = Running::start(ServerConfig::default()).await;
    let id = escape(b"-SH0001-abcdefghijkl");
    let hash = escape(&HASH);
    let ok_rest = "port=1&uploaded=0&downloaded=0&left=0";
    let cases: Vec<(String, &str)> = vec![
        ("/announce".into(), "missing info_hash"),
        (
            format!("/announce?peer_id={id}&{ok_rest}"),
            "missing info_hash",
        ),
        (
            format!("/announce?info_hash=%ab%ab&peer_id={id}&{ok_rest}"),
            "info_hash must be 20 bytes, got 2",
        ),
        (
            format!("/announce?info_hash={hash}%ab&peer_id={id}&{ok_rest}"),
            "info_hash must be 20 bytes, got 21",
        ),
        (
            format!("/announce?info_hash={hash}&{ok_rest}"),
            "missing peer_id",
        ),
        (
            format!("/announce?info_hash={hash}&peer_id=short&{ok_rest}"),
            "peer_id must be 20 bytes, got 5",
        ),
        (
            format!("/announce?info_hash=%zz{hash}&peer_id={id}&{ok_rest}"),
            "malformed percent-encoding in info_hash",
        ),
        (
            format!("/announce?info_hash={hash}&peer_id={id}&uploaded=0&downloaded=0&left=0"),
            "missing port",
        ),
        (
            format!(
                "/announce?info_hash={hash}&peer_id={id}&port=0&uploaded=0&downloaded=0&left=0"
            ),
            "port must be a number from 1 to 65535",
        ),
        (
            format!(
                "/announce?info_hash={hash}&peer_id={id}&port=70000&uploaded=0&downloaded=0&left=0"
            ),
            "port must be a number from 1 to 65535",
        ),
        (
            format!(
                "/announce?info_hash={hash}&peer_id={id}&port=1&uploaded=-5&downloaded=0&left=0"
            ),
            "uploaded is not a non-negative integer",
        ),
        (
            format!(
                "/announce?info_hash={hash}&peer_id={id}&port=1&uploaded=0&downloaded=0&left=1e9"
            ),
            "left is not a non-negative integer",
        ),
        (
            format!("/announce?info_hash={hash}&peer_id={id}&{ok_rest}&numwant=lots"),
            "numwant is not a non-negative integer",
        ),
        (
            format!("/announce?info_hash={hash}&peer_id={id}&{ok_rest}&event=paused"),
            "unknown event \"paused\"; expected started, completed, stopped or empty",
        ),
        (
            format!("/announce?info_hash={hash}&info_hash={hash}&peer_id={id}&{ok_rest}"),
            "info_hash is given more than once",
        ),
        (
            format!("/announce?{}", "a".repeat(MAX_QUERY_LEN + 1)),
            "query string is 5121 bytes, more than the 5120-byte limit",
        ),
        ("/".into(), "unknown path \"/\"; use /announce or /scrape"),
        (
            "/announce.php".into(),
            "unknown path \"/announce.php\"; use /announce or /scrape",
        ),
        (
            "/announce/somepasskey".into(),
            "unknown path \"(a passkey URL on a public tracker)\"; use /announce or /scrape",
        ),
        (
            "/scrape".into(),
            "full scrape is disabled; give one or more info_hash parameters",
        ),
        (
            "/scrape?info_hash=abc".into(),
            "info_hash must be 20 bytes, got 3",
        ),
        (
            format!(
                "/scrape?{}",
                vec![format!("info_hash={hash}"); 65].join("&")
            ),
            "too many info_hash parameters: at most 64 per scrape",
        ),
    ];
    for (target, expected) in &cases {
        let (status, body) = tracker.get(target).await;
        assert_eq!(status, 200, "{target}");
        assert_eq!(
            failure_reason(&body).as_deref(),
            Some(*expected),
            "{target}"
        );
    }
    let (status, body) = raw(
        tracker.addr,
        b"POST /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        failure_reason(&body).as_deref(),
        Some("method POST is not supported; use GET")
    );

    // Heads the HTTP framing refuses get a failure reason too, then the connection closes.
    let (status, body) = tracker
        .get(&format!("/announce?{}", "a".repeat(20_000)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        failure_reason(&body).as_deref(),
        Some("request is too large: its head is over the 16384-byte limit")
    );
    let (status, body) = raw(
        tracker.addr,
        b"GET /announce HTTP/1.1\r\nBad Header\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        failure_reason(&body).as_deref(),
        Some("malformed HTTP request: invalid header name")
    );

    // A normal announce still works, and the next peer is told about the first.
    let (_, body) = tracker
        .get(&format!(
            "/announce?{}",
            announce_query(HASH, [1; 20], 6881, "&event=started")
        ))
        .await;
    assert_eq!(
        failure_reason(&body),
        None,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (_, body) = tracker
        .get(&format!(
            "/announce?{}",
            announce_query(HASH, [2; 20], 6882, "&compact=1")
        ))
        .await;
    let doc = decode(&body).unwrap();
    assert_eq!(
        doc.root().get(b"peers").unwrap().as_bytes().unwrap(),
        [127, 0, 0, 1, 0x1a, 0xe1]
    );
    assert_eq!(doc.root().get(b"incomplete").unwrap().as_int(), Some(2));

    // Scrape, stats and metrics see both peers and the failures.
    let (_, body) = tracker.get(&format!("/scrape?info_hash={hash}")).await;
    let doc = decode(&body).unwrap();
    let files = doc.root().get(b"files").unwrap();
    assert_eq!(
        files
            .get(&HASH)
            .unwrap()
            .get(b"incomplete")
            .unwrap()
            .as_int(),
        Some(2)
    );
    let (status, body) = tracker.get("/stats").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["swarms"], 1);
    assert_eq!(stats["peers"], 2);
    assert_eq!(stats["leechers"], 2);
    assert_eq!(stats["seeders"], 0);
    assert_eq!(stats["announces"], 2);
    assert_eq!(stats["failures"], cases.len() as u64 + 3);
    assert!(stats["announces_per_second"].is_number());
    let (_, body) = tracker.get("/metrics").await;
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("\nshoal_tracker_peers 2\n"), "{text}");
    assert!(text.contains(
        "# TYPE shoal_tracker_announces_total counter\nshoal_tracker_announces_total 2\n"
    ));
    tracker.stop().await;
}

#[tokio::test]
async fn keep_alive_dictionary_replies_and_limits() {
    let config = ServerConfig {
        tracker: TrackerConfig {
            max_swarms: 1,
            full_scrape: true,
            ..TrackerConfig::default()
        },
        ..ServerConfig::default()
    };
    let tracker = Running::start(config).await;
    // Two requests on one connection.
    let first = announce_query(HASH, [1; 20], 6881, "&event=started");
    let second = announce_query(HASH, [2; 20], 6882, "&compact=0&no_peer_id=1");
    let request = format!(
        "GET /announce?{first} HTTP/1.1\r\nHost: t\r\n\r\nGET /announce?{second} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = raw(tracker.addr, request.as_bytes()).await;
    assert_eq!(status, 200);
    // The body of the second reply is the last bencoded dictionary of the stream.
    let text = String::from_utf8_lossy(&body).into_owned();
    let second_body = text.rsplit("\r\n\r\n").next().unwrap();
    assert!(
        second_body.ends_with("5:peersld2:ip9:127.0.0.14:porti6881eeee"),
        "{second_body}"
    );
    // The tracker holds one torrent at most: a second one is refused with a reason.
    let other = announce_query([0xcd; 20], [1; 20], 6881, "");
    let (_, body) = tracker.get(&format!("/announce?{other}")).await;
    assert_eq!(
        failure_reason(&body).as_deref(),
        Some("tracker is full: it tracks at most 1 torrents")
    );
    // Full scrape when enabled.
    let (_, body) = tracker.get("/scrape").await;
    let doc = decode(&body).unwrap();
    assert_eq!(
        doc.root().get(b"files").unwrap().as_dict().unwrap().count(),
        1
    );
    tracker.stop().await;
}

#[tokio::test]
async fn stopping_closes_open_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tracker = Running::start(ServerConfig::default()).await;
    let mut stream = tokio::net::TcpStream::connect(tracker.addr).await.unwrap();
    stream
        .write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // The connection is kept alive until the server stops, then closed.
    tracker.stop().await;
    let closed = tokio::time::timeout(support::TIMEOUT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    closed.await.unwrap();
}

/// The failure reason of an announce, `None` if it was accepted.
async fn refusal(tracker: &Running, hash: u8, peer: u8, extra: &str) -> Option<String> {
    let query = announce_query([hash; 20], [peer; 20], 6000 + u16::from(peer), extra);
    let (status, body) = tracker.get(&format!("/announce?{query}")).await;
    assert_eq!(status, 200);
    failure_reason(&body)
}

#[tokio::test]
async fn limits_hold_for_the_whole_server_across_shards() {
    let config = ServerConfig {
        tracker: TrackerConfig {
            max_swarms: 3,
            max_peers: 5,
            ..TrackerConfig::default()
        },
        ..ServerConfig::default()
    };
    assert!(config.shards > 1, "{}", config.shards);
    let tracker = Running::start(config).await;
    // Three torrents in one shard (info_hash[0] % shards is 0 for each): all are accepted.
    let shards = DEFAULT_SHARDS as u8;
    let same_shard = [0, shards, 2 * shards];
    for hash in same_shard {
        assert_eq!(refusal(&tracker, hash, 1, "").await, None, "torrent {hash}");
    }
    // A fourth is refused whatever shard it falls in, naming the configured limit.
    for hash in [1, 3 * shards] {
        assert_eq!(
            refusal(&tracker, hash, 1, "").await.as_deref(),
            Some("tracker is full: it tracks at most 3 torrents")
        );
    }
    // Peers: three so far, two more fit, the sixth is refused in any torrent.
    assert_eq!(refusal(&tracker, 0, 2, "").await, None);
    assert_eq!(refusal(&tracker, shards, 2, "").await, None);
    for hash in same_shard {
        assert_eq!(
            refusal(&tracker, hash, 3, "").await.as_deref(),
            Some("tracker is full: at most 5 peers in all")
        );
    }
    // A torrent emptied by `stopped` frees its slots for a torrent in another shard.
    assert_eq!(
        refusal(&tracker, 2 * shards, 1, "&event=stopped").await,
        None
    );
    assert_eq!(refusal(&tracker, 1, 1, "").await, None);
    let (_, body) = tracker.get("/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (stats["swarms"].as_u64(), stats["peers"].as_u64()),
        (Some(3), Some(5))
    );
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_new_torrents_never_pass_the_limit() {
    let config = ServerConfig {
        tracker: TrackerConfig {
            max_swarms: 8,
            ..TrackerConfig::default()
        },
        ..ServerConfig::default()
    };
    let tracker = std::sync::Arc::new(Running::start(config).await);
    let mut tasks = tokio::task::JoinSet::new();
    for hash in 0..48u8 {
        let tracker = tracker.clone();
        tasks.spawn(async move { refusal(&tracker, hash, 1, "").await });
    }
    let mut accepted = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            None => accepted += 1,
            Some(reason) => assert_eq!(reason, "tracker is full: it tracks at most 8 torrents"),
        }
    }
    assert_eq!(accepted, 8);
    let (_, body) = tracker.get("/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["swarms"], 8);
    let Ok(tracker) = std::sync::Arc::try_unwrap(tracker) else {
        panic!("a task still holds the tracker");
    };
    tracker.stop().await;
}

/// BEP 48: one scrape with several `info_hash` parameters reports each torrent.
#[tokio::test]
async fn one_scrape_reports_several_torrents() {
    let tracker = Running::start(ServerConfig::default()).await;
    let (one, two, unknown) = ([0x11; 20], [0x22; 20], [0x33; 20]);
    let announces = [
        // `one`: a seeder and two leechers.
        announce_left(one, [1; 20], 6001, 0, "&event=started"),
        announce_left(one, [2; 20], 6002, 100, "&event=started"),
        announce_left(one, [3; 20], 6003, 100, "&event=started"),
        // `two`: a leecher that completes, and one that does not.
        announce_left(two, [4; 20], 6004, 100, "&event=started"),
        announce_left(two, [4; 20], 6004, 0, "&event=completed"),
        announce_left(two, [5; 20], 6005, 100, "&event=started"),
    ];
    for query in &announces {
        let (_, body) = tracker.get(&format!("/announce?{query}")).await;
        assert_eq!(failure_reason(&body), None, "{query}");
    }
    let target = format!(
        "/scrape?info_hash={}&info_hash={}&info_hash={}",
        escape(&one),
        escape(&two),
        escape(&unknown)
    );
    let (status, body) = tracker.get(&target).await;
    assert_eq!(status, 200);
    let doc = decode(&body).unwrap();
    let files = doc.root().get(b"files").unwrap();
    assert_eq!(files.as_dict().unwrap().count(), 3);
    let counts = |hash: &[u8; 20]| {
        let entry = files.get(hash).unwrap();
        let field = |key: &[u8]| entry.get(key).unwrap().as_int().unwrap();
        (
            field(b"complete"),
            field(b"downloaded"),
            field(b"incomplete"),
        )
    };
    assert_eq!(counts(&one), (1, 0, 2));
    assert_eq!(counts(&two), (1, 1, 1));
    assert_eq!(
        counts(&unknown),
        (0, 0, 0),
        "an unknown torrent is reported empty"
    );
    tracker.stop().await;
}

#[tokio::test]
async fn a_connection_past_the_limit_is_told_the_tracker_is_busy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let config = ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    };
    let tracker = Running::start(config).await;
    // The one connection allowed, kept open after its first answer.
    let mut held = tokio::net::TcpStream::connect(tracker.addr).await.unwrap();
    held.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = held.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    let query = announce_query([7; 20], [1; 20], 6881, "");
    let (status, body) = tracker.get(&format!("/announce?{query}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        failure_reason(&body).as_deref(),
        Some("tracker busy: it serves at most 1 connections at once; announce again later")
    );
    // Once the connection closes, the next client is served (its slot is given back just
    // after the close, hence the retries).
    drop(held);
    let body = get_past_busy(&tracker, &format!("/announce?{query}")).await;
    assert_eq!(failure_reason(&body), None);
    let body = get_past_busy(&tracker, "/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        stats["announces"], 1,
        "the refused connection never reached the tracker"
    );
    assert!(stats["failures"].as_u64() >= Some(1), "{stats}");
    tracker.stop().await;
}

/// `GET target`, again while the tracker answers that it is busy (for at most
/// [`support::TIMEOUT`]); the body of the first other answer.
async fn get_past_busy(tracker: &Running, target: &str) -> Vec<u8> {
    let attempts = async {
        loop {
            let (status, body) = tracker.get(target).await;
            assert_eq!(status, 200);
            match failure_reason(&body) {
                Some(reason) if reason.starts_with("tracker busy") => {}
                _ => return body,
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(support::TIMEOUT, attempts)
        .await
        .unwrap()
}
