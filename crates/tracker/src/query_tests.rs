use std::net::IpAddr;

use super::*;

const HASH: &str = "%00%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%ff";
const PEER: &str = "-SH0001-abcdefghijkl";

fn base() -> String {
    format!("info_hash={HASH}&peer_id={PEER}&port=6881&uploaded=1&downloaded=2&left=3")
}

fn parse(query: &str) -> Result<AnnounceRequest, TrackerError> {
    AnnounceRequest::parse(query.as_bytes())
}

fn reason(query: &str) -> String {
    match parse(query) {
        Ok(req) => panic!("accepted {query}: {req:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_a_full_announce() {
    let req = parse(&format!(
        "{}&event=started&compact=0&numwant=7&no_peer_id=1&key=abc&trackerid=x&supportcrypto=1",
        base()
    ))
    .unwrap();
    let mut hash = [0u8; 20];
    for (i, b) in hash.iter_mut().enumerate().take(19) {
        *b = i as u8;
    }
    hash[19] = 0xff;
    assert_eq!(req.info_hash.0, hash);
    assert_eq!(&req.peer_id, PEER.as_bytes());
    assert_eq!(
        (req.port, req.uploaded, req.downloaded, req.left),
        (6881, 1, 2, 3)
    );
    assert_eq!(req.event, Event::Started);
    assert!(!req.compact);
    assert_eq!(req.numwant, Some(7));
    assert!(req.no_peer_id);
    assert_eq!(req.ip, IpParam::Absent);
}

#[test]
fn defaults_and_literal_bytes() {
    // Unescaped bytes, `+` included, are taken literally.
    let req = parse("info_hash=abcdefghij+lmnopqrst&peer_id=ABCDEFGHIJKLMNOPQRST&port=1&uploaded=0&downloaded=0&left=0").unwrap();
    assert_eq!(&req.info_hash.0, b"abcdefghij+lmnopqrst");
    assert!(req.compact);
    assert_eq!(req.event, Event::None);
    assert_eq!(req.numwant, None);
    assert!(!req.no_peer_id);
    let req = parse(&format!("{}&event=&numwant=99999999999", base())).unwrap();
    assert_eq!(req.event, Event::None);
    assert_eq!(req.numwant, Some(u32::MAX));
    assert_eq!(
        parse(&format!("{}&event=empty", base())).unwrap().event,
        Event::None
    );
    assert_eq!(
        parse(&format!("{}&event=completed", base())).unwrap().event,
        Event::Completed
    );
    assert_eq!(
        parse(&format!("{}&event=stopped", base())).unwrap().event,
        Event::Stopped
    );
}

#[test]
fn every_missing_parameter_is_named() {
    for param in [
        "info_hash",
        "peer_id",
        "port",
        "uploaded",
        "downloaded",
        "left",
    ] {
        let query: Vec<&str> = base()
            .leak()
            .split('&')
            .filter(|p| !p.starts_with(&format!("{param}=")))
            .collect();
        assert_eq!(reason(&query.join("&")), format!("missing {param}"));
    }
    assert_eq!(reason(""), "missing info_hash");
}

#[test]
fn wrong_lengths_are_refused() {
    let short = &HASH[..HASH.len() - 3];
    let q = format!("info_hash={short}&peer_id={PEER}&port=1&uploaded=0&downloaded=0&left=0");
    assert_eq!(reason(&q), "info_hash must be 20 bytes, got 19");
    let q = format!("info_hash={HASH}a&peer_id={PEER}&port=1&uploaded=0&downloaded=0&left=0");
    assert_eq!(reason(&q), "info_hash must be 20 bytes, got 21");
    let q = format!("info_hash={HASH}&peer_id={PEER}x&port=1&uploaded=0&downloaded=0&left=0");
    assert_eq!(reason(&q), "peer_id must be 20 bytes, got 21");
    let q = format!("info_hash=&peer_id={PEER}&port=1&uploaded=0&downloaded=0&left=0");
    assert_eq!(reason(&q), "info_hash must be 20 bytes, got 0");
}

#[test]
fn bad_values_are_refused() {
    let cases = [
        ("&info_hash=x", "info_hash is given more than once"),
        ("&port=2", "port is given more than once"),
        (
            "&event=bogus",
            "unknown event \"bogus\"; expected started, completed, stopped or empty",
        ),
        (
            "&event=startedstartedstarted",
            "unknown event \"startedstartedstarted\"; expected started, completed, stopped or empty",
        ),
        ("&numwant=ten", "numwant is not a non-negative integer"),
        ("&numwant=-1", "numwant is not a non-negative integer"),
        ("&compact=yes", "compact is not a non-negative integer"),
        ("&key=%zz", "malformed percent-encoding in key"),
        ("&ip=%4", "malformed percent-encoding in ip"),
    ];
    for (extra, expected) in cases {
        assert_eq!(reason(&format!("{}{extra}", base())), expected, "{extra}");
    }
    let long = "k".repeat(MAX_PARAM_LEN);
    assert!(parse(&format!("{}&key={long}", base())).is_ok());
    assert_eq!(
        reason(&format!("{}&key={long}k", base())),
        format!("key is longer than {MAX_PARAM_LEN} bytes")
    );
    assert_eq!(
        reason(&format!("{}&trackerid={long}k", base())),
        format!("trackerid is longer than {MAX_PARAM_LEN} bytes")
    );
}

#[test]
fn numbers_and_ports() {
    let with = |param: &str, value: &str| {
        base()
            .split('&')
            .map(|p| {
                if p.starts_with(&format!("{param}=")) {
                    format!("{param}={value}")
                } else {
                    p.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    for bad in ["0", "65536", "abc", "", "-1", "99999999999999999999999"] {
        assert_eq!(
            reason(&with("port", bad)),
            "port must be a number from 1 to 65535"
        );
    }
    assert_eq!(parse(&with("port", "65535")).unwrap().port, 65535);
    for bad in ["-1", "1e5", "", "12a", "18446744073709551616"] {
        assert_eq!(
            reason(&with("left", bad)),
            "left is not a non-negative integer",
            "{bad}"
        );
        assert_eq!(
            reason(&with("uploaded", bad)),
            "uploaded is not a non-negative integer"
        );
    }
    assert_eq!(
        parse(&with("left", "18446744073709551615")).unwrap().left,
        u64::MAX
    );
    assert_eq!(parse(&with("downloaded", "%31%32")).unwrap().downloaded, 12);
}

#[test]
fn scrape_hashes_up_to_the_limit() {
    assert!(parse_scrape(b"").unwrap().is_empty());
    let one = format!("info_hash={HASH}");
    let at_limit = vec![one.as_str(); MAX_SCRAPE_HASHES].join("&");
    assert_eq!(
        parse_scrape(at_limit.as_bytes()).unwrap().len(),
        MAX_SCRAPE_HASHES
    );
    let over = format!("{at_limit}&{one}");
    assert_eq!(
        parse_scrape(over.as_bytes()).unwrap_err().to_string(),
        format!("too many info_hash parameters: at most {MAX_SCRAPE_HASHES} per scrape")
    );
    assert_eq!(
        parse_scrape(b"info_hash=abc").unwrap_err().to_string(),
        "info_hash must be 20 bytes, got 3"
    );
}

#[test]
fn ip_counts_only_from_a_trusted_proxy() {
    let proxy: IpAddr = "10.0.0.1".parse().unwrap();
    let client: IpAddr = "192.0.2.9".parse().unwrap();
    let claimed = IpParam::Valid("198.51.100.4".parse().unwrap());
    assert_eq!(peer_ip(client, claimed, &[proxy]).unwrap(), client);
    assert_eq!(
        peer_ip(proxy, claimed, &[proxy]).unwrap(),
        "198.51.100.4".parse::<IpAddr>().unwrap()
    );
    assert_eq!(peer_ip(proxy, IpParam::Absent, &[proxy]).unwrap(), proxy);
    assert_eq!(peer_ip(client, IpParam::Invalid, &[proxy]).unwrap(), client);
    assert!(matches!(
        peer_ip(proxy, IpParam::Invalid, &[proxy]),
        Err(TrackerError::BadIp { .. })
    ));
    // An IPv4 client on an IPv6 socket is stored as IPv4.
    let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
    assert_eq!(peer_ip(mapped, IpParam::Absent, &[]).unwrap(), client);
    let q = format!("{}&ip=198.51.100.4", base());
    assert_eq!(parse(&q).unwrap().ip, claimed);
    let q = format!("{}&ip=example.com", base());
    assert_eq!(parse(&q).unwrap().ip, IpParam::Invalid);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn escape(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("%{b:02X}")).collect()
    }

    proptest! {
        #[test]
        fn arbitrary_queries_never_panic(query in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = AnnounceRequest::parse(&query);
            let _ = parse_scrape(&query);
        }

        #[test]
        fn arbitrary_values_never_panic(value in "[%0-9a-zA-Z+=&.:-]{0,80}") {
            for param in ["info_hash", "peer_id", "port", "left", "event", "numwant", "ip", "key", "compact"] {
                let query = format!("{}&{param}={value}", base());
                let _ = AnnounceRequest::parse(query.as_bytes());
            }
        }

        #[test]
        fn escaped_binary_values_round_trip(
            hash in any::<[u8; 20]>(),
            id in any::<[u8; 20]>(),
            port in 1u16..,
            left in any::<u64>(),
            numwant in any::<u32>(),
        ) {
            let query = format!(
                "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}&numwant={numwant}",
                escape(&hash),
                escape(&id)
            );
            let req = AnnounceRequest::parse(query.as_bytes()).unwrap();
            prop_assert_eq!(req.info_hash.0, hash);
            prop_assert_eq!(req.peer_id, id);
            prop_assert_eq!((req.port, req.left, req.numwant), (port, left, Some(numwant)));
        }
    }
}
