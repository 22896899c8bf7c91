use std::net::SocketAddr;
use std::time::Duration;

use shoal_metainfo::InfoHash;

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// `d8:intervali1800e` + `rest` + `e`.
fn reply(rest: &[u8]) -> Vec<u8> {
    let mut body = b"d8:intervali1800e".to_vec();
    body.extend_from_slice(rest);
    body.push(b'e');
    body
}

fn bytes_field(key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:{key}{}:", key.len(), value.len()).into_bytes();
    out.extend_from_slice(value);
    out
}

#[test]
fn compact_peers() {
    let body = reply(&bytes_field(
        "peers",
        &[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80],
    ));
    let parsed = parse_announce_reply(&body).unwrap();
    assert_eq!(parsed.interval, Duration::from_secs(1800));
    assert_eq!(parsed.min_interval, None);
    assert_eq!(
        parsed.peers,
        vec![addr("10.0.0.1:6881"), addr("192.168.1.2:80")]
    );
    assert_eq!((parsed.complete, parsed.incomplete), (None, None));
}

#[test]
fn compact_peers6_follow_peers() {
    let mut v6 = [0u8; 18];
    v6[0] = 0x20;
    v6[1] = 0x01;
    v6[2] = 0x0d;
    v6[3] = 0xb8;
    v6[15] = 1;
    v6[16] = 0x1a;
    v6[17] = 0xe2;
    let mut rest = bytes_field("peers", &[1, 2, 3, 4, 0, 1]);
    rest.extend(bytes_field("peers6", &v6));
    let parsed = parse_announce_reply(&reply(&rest)).unwrap();
    assert_eq!(
        parsed.peers,
        vec![addr("1.2.3.4:1"), addr("[2001:db8::1]:6882")]
    );
}

#[test]
fn dictionary_peers_skip_host_names_and_bad_ports() {
    let body = b"d8:intervali60e5:peersl\
        d2:ip8:10.0.0.77:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee\
        d2:ip11:example.org4:porti1ee\
        d2:ip3:::14:porti7000ee\
        d2:ip7:1.1.1.14:porti0ee\
        d2:ip7:1.1.1.14:porti70000ee\
        ee";
    let parsed = parse_announce_reply(body).unwrap();
    assert_eq!(
        parsed.peers,
        vec![addr("10.0.0.7:6881"), addr("[::1]:7000")]
    );
}

#[test]
fn counts_min_interval_warning_and_tracker_id() {
    let mut rest = b"8:completei5e10:incompletei2e12:min intervali900e".to_vec();
    rest.extend(bytes_field("peers", b""));
    rest.extend(bytes_field("tracker id", b"abc"));
    rest.extend(bytes_field("warning message", b"slow down"));
    let parsed = parse_announce_reply(&reply(&rest)).unwrap();
    assert_eq!(parsed.complete, Some(5));
    assert_eq!(parsed.incomplete, Some(2));
    assert_eq!(parsed.min_interval, Some(Duration::from_secs(900)));
    assert_eq!(parsed.warning.as_deref(), Some("slow down"));
    assert_eq!(parsed.tracker_id.as_deref(), Some(&b"abc"[..]));
    assert!(parsed.peers.is_empty());
}

#[test]
fn interval_is_clamped() {
    let short = parse_announce_reply(b"d8:intervali1e5:peers0:e").unwrap();
    assert_eq!(short.interval, MIN_INTERVAL);
    let long = parse_announce_reply(b"d8:intervali999999e5:peers0:e").unwrap();
    assert_eq!(long.interval, MAX_INTERVAL);
    let negative = parse_announce_reply(b"d8:intervali-5e5:peers0:e").unwrap_err();
    assert!(negative.contains("interval"), "{negative}");
}

#[test]
fn failure_reason_is_reported() {
    let err = parse_announce_reply(b"d14:failure reason12:unregisterede").unwrap_err();
    assert_eq!(err, "failure reason: unregistered");
    // The internal form tells a refusal from garbage.
    assert_eq!(
        response::parse_announce(b"d14:failure reason2:noe"),
        Err(response::ReplyError::Failure("no".into()))
    );
}

#[test]
fn missing_interval_is_garbage() {
    let err = parse_announce_reply(b"d5:peers0:e").unwrap_err();
    assert_eq!(err, "missing interval");
}

#[test]
fn peers_length_must_be_a_multiple_of_six() {
    let err = parse_announce_reply(&reply(&bytes_field("peers", &[1; 7]))).unwrap_err();
    assert_eq!(err, "peers is 7 bytes, not a multiple of 6");
    let err = parse_announce_reply(&reply(&bytes_field("peers6", &[1; 19]))).unwrap_err();
    assert_eq!(err, "peers6 is 19 bytes, not a multiple of 18");
}

#[test]
fn garbage_is_refused() {
    for body in [
        &b"<html>502 Bad Gateway</html>"[..],
        b"",
        b"i42e",
        b"d8:interval",
        b"d8:intervali60e5:peersi3ee",
    ] {
        assert!(parse_announce_reply(body).is_err(), "{body:?}");
    }
}

#[test]
fn oversized_body_is_refused_one_past_the_limit() {
    // A valid reply padded with a long warning to exactly the limit parses...
    let head = b"d8:intervali60e5:peers0:15:warning message";
    let pad = MAX_REPLY_BODY - head.len() - 1 - "1048500:".len();
    let mut body = head.to_vec();
    body.extend(format!("{pad}:").as_bytes());
    body.resize(body.len() + pad, b'x');
    body.push(b'e');
    assert_eq!(body.len(), MAX_REPLY_BODY);
    let parsed = parse_announce_reply(&body).unwrap();
    assert_eq!(parsed.warning.map(|w| w.len()), Some(MAX_TEXT_LEN));
    // ...one byte more does not.
    body.push(b'\n');
    let err = parse_announce_reply(&body).unwrap_err();
    assert!(err.contains("limit"), "{err}");
}

#[test]
fn peer_count_is_capped() {
    let peers: Vec<u8> = (0..(MAX_REPLY_PEERS + 10) as u32)
        .flat_map(|i| {
            let mut p = i.to_be_bytes().to_vec();
            p.extend([0, 1]);
            p
        })
        .collect();
    let parsed = parse_announce_reply(&reply(&bytes_field("peers", &peers))).unwrap();
    assert_eq!(parsed.peers.len(), MAX_REPLY_PEERS);
}

#[test]
fn scrape_reply_for_one_hash() {
    let hash = InfoHash([5; 20]);
    let body = crate::scrape_reply([(
        hash,
        crate::ScrapeCounts {
            complete: 3,
            incomplete: 1,
            downloaded: 9,
        },
    )]);
    let counts = parse_scrape_reply(&body, hash).unwrap();
    assert_eq!(
        counts,
        ScrapeReply {
            complete: 3,
            downloaded: 9,
            incomplete: 1
        }
    );
    assert_eq!(
        parse_scrape_reply(&body, InfoHash([6; 20])).unwrap(),
        ScrapeReply::default()
    );
    assert!(parse_scrape_reply(b"d5:filesi1ee", hash).is_err());
}

#[test]
fn query_escapes_like_bep3_clients() {
    let mut hash = [0u8; 20];
    hash[..6].copy_from_slice(b"aZ9-._");
    hash[6] = b'~';
    hash[7] = b' ';
    hash[8] = 0xff;
    let request = Announce {
        info_hash: InfoHash(hash),
        peer_id: *b"-SH0100-abcdefghijkl",
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Some(AnnounceEvent::Started),
        numwant: 50,
        key: 0xab,
    };
    assert_eq!(
        announce_query(&request),
        "info_hash=aZ9-._~%20%FF%00%00%00%00%00%00%00%00%00%00%00\
         &peer_id=-SH0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3\
         &compact=1&numwant=50&key=000000AB&event=started"
    );
    // The server's own parser reads it back.
    let parsed = crate::AnnounceRequest::parse(announce_query(&request).as_bytes()).unwrap();
    assert_eq!(parsed.info_hash, InfoHash(hash));
}

#[test]
fn scrape_urls_follow_bep48() {
    let ok = [
        ("http://t.example/announce", "http://t.example/scrape"),
        (
            "http://t.example:80/x/announce.php?pk=1",
            "http://t.example:80/x/scrape.php?pk=1",
        ),
        (
            "http://t.example/announce/abcdef",
            "http://t.example/scrape/abcdef",
        ),
    ];
    for (announce, scrape) in ok {
        assert_eq!(scrape_url(announce).unwrap(), scrape);
    }
    for bad in [
        "http://t.example/a",
        "http://t.example",
        "http://t.example/x/annonce",
    ] {
        assert!(
            matches!(scrape_url(bad), Err(ClientError::UnsupportedUrl { .. })),
            "{bad}"
        );
    }
}

#[test]
fn redact_hides_passkeys() {
    assert_eq!(
        redact("http://t.example:6969/announce/0123456789abcdef0123456789abcdef"),
        "http://t.example:6969/announce/***"
    );
    assert_eq!(
        redact("http://user:pw@t.example/announce.php?passkey=secret"),
        "http://t.example/announce.php?***"
    );
}
