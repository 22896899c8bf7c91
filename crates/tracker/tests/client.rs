//! The announce client against the real shoal-tracker server, a closed port and a silent one.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use shoal_metainfo::InfoHash;
use shoal_tracker::client::{self, Announce, AnnounceEvent, ClientError, ScrapeReply};
use shoal_tracker::{ServerConfig, TrackerConfig};
use support::{Running, TIMEOUT};
use tokio::net::TcpListener;

const HASH: InfoHash = InfoHash([0x5a; 20]);

fn request(seed: &[u8], port: u16, left: u64) -> Announce {
    Announce {
        info_hash: HASH,
        peer_id: client::peer_id(seed),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: Some(AnnounceEvent::Started),
        numwant: 50,
        key: 0xdead_beef,
    }
}

#[tokio::test]
async fn two_clients_find_each_other_and_scrape_counts_them() {
    let config = ServerConfig {
        tracker: TrackerConfig::with_interval(Duration::from_secs(120)),
        ..ServerConfig::default()
    };
    let tracker = Running::start(config).await;
    let url = format!("http://{}/announce", tracker.addr);

    let seeder = client::announce(&url, &request(b"seeder", 7001, 0), TIMEOUT)
        .await
        .unwrap();
    assert!(seeder.peers.is_empty());
    assert_eq!(seeder.interval, Duration::from_secs(120));
    assert_eq!(seeder.min_interval, Some(Duration::from_secs(60)));

    let leecher = client::announce(&url, &request(b"leecher", 7002, 100), TIMEOUT)
        .await
        .unwrap();
    let seeder_addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    assert_eq!(leecher.peers, vec![seeder_addr]);
    assert_eq!((leecher.complete, leecher.incomplete), (Some(1), Some(1)));

    let counts = client::scrape(&url, HASH, TIMEOUT).await.unwrap();
    assert_eq!(
        counts,
        ScrapeReply {
            complete: 1,
            downloaded: 0,
            incomplete: 1
        }
    );

    // The leecher finishes: one download counted, two seeders.
    let mut done = request(b"leecher", 7002, 0);
    done.event = Some(AnnounceEvent::Completed);
    client::announce(&url, &done, TIMEOUT).await.unwrap();
    let counts = client::scrape(&url, HASH, TIMEOUT).await.unwrap();
    assert_eq!(
        (counts.complete, counts.downloaded, counts.incomplete),
        (2, 1, 0)
    );

    // A tracker's refusal comes back as Failure with its reason.
    let mut bad = request(b"bad", 7003, 0);
    bad.port = 0;
    match client::announce(&url, &bad, TIMEOUT).await {
        Err(ClientError::Failure { reason, .. }) => assert!(reason.contains("port"), "{reason}"),
        other => panic!("expected a failure reason, got {other:?}"),
    }
    tracker.stop().await;
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/announce");
    match client::announce(&url, &request(b"x", 1, 0), TIMEOUT).await {
        Err(ClientError::Connect { url: shown, .. }) => assert_eq!(shown, url),
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_tracker_times_out_within_the_bound() {
    use tokio::io::AsyncReadExt;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and read connections without ever answering; report what each one sent.
    let (heard, mut requests) = tokio::sync::mpsc::unbounded_channel();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let _ = heard.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            held.push(stream);
        }
    });
    let bound = Duration::from_millis(300);
    let url = format!("http://{addr}/announce");
    match client::announce(&url, &request(b"x", 1, 0), bound).await {
        Err(ClientError::Timeout { after, url: shown }) => {
            assert_eq!(after, bound);
            assert_eq!(shown, url);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    // It was the answer that never came: the request itself got through.
    let sent = tokio::time::timeout(TIMEOUT, requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(sent.starts_with("GET /announce?info_hash="), "{sent}");
    match client::scrape(&url, HASH, bound).await {
        Err(ClientError::Timeout { after, .. }) => assert_eq!(after, bound),
        other => panic!("expected Timeout, got {other:?}"),
    }
    let sent = tokio::time::timeout(TIMEOUT, requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(sent.starts_with("GET /scrape?info_hash="), "{sent}");
    silent.abort();
}

#[tokio::test]
async fn https_and_udp_trackers_are_refused_by_name() {
    let cases = [
        ("https://t.example/announce", "HTTPS"),
        ("udp://t.example:6969/announce", "BEP 15"),
        ("wss://t.example/announce", "http://"),
    ];
    for (url, needle) in cases {
        match client::announce(url, &request(b"x", 1, 0), TIMEOUT).await {
            Err(error @ ClientError::UnsupportedUrl { .. }) => {
                let text = error.to_string();
                assert!(text.contains(needle) && text.contains(url), "{text}");
            }
            other => panic!("expected UnsupportedUrl for {url}, got {other:?}"),
        }
    }
}

/// A fake tracker that answers every connection with `reply` after reading the request head.
async fn canned(reply: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(&reply).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn oversized_bodies_and_bad_statuses_are_refused() {
    let limit = client::MAX_REPLY_BODY;
    let declared = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", limit + 1);
    let mut streamed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    streamed.resize(streamed.len() + limit + 1, b'x');
    let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec();
    let refused =
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 27\r\n\r\nd14:failure reason6:bannede".to_vec();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (declared.into_bytes(), "TooLarge"),
        (streamed, "TooLarge"),
        (not_found, "Http"),
        (refused, "Failure"),
    ];
    for (reply, expected) in cases {
        let (addr, task) = canned(reply).await;
        let url = format!("http://{addr}/announce");
        let result = client::announce(&url, &request(b"x", 1, 0), TIMEOUT).await;
        let got = match &result {
            Err(ClientError::TooLarge { limit: l, .. }) if *l == limit => "TooLarge",
            Err(ClientError::Http { status: 404, .. }) => "Http",
            Err(ClientError::Failure { reason, .. }) if reason == "banned" => "Failure",
            _ => "other",
        };
        assert_eq!(got, expected, "{result:?}");
        task.abort();
    }
}
