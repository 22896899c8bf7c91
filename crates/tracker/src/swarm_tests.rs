use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shoal_metainfo::bencode::{Value, decode, encode};

use super::*;
use crate::query::IpParam;

const HASH: InfoHash = InfoHash([7; 20]);

fn request(id: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: HASH,
        peer_id: [id; 20],
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        compact: true,
        numwant: None,
        no_peer_id: false,
        ip: IpParam::Absent,
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

struct Harness {
    tracker: Tracker,
    rng: SmallRng,
    now: Instant,
}

impl Harness {
    fn new(config: TrackerConfig) -> Self {
        Self {
            tracker: Tracker::new(config),
            rng: SmallRng::seed_from_u64(42),
            now: Instant::now(),
        }
    }

    fn announce(&mut self, req: &AnnounceRequest, ip: IpAddr) -> Result<Vec<u8>, TrackerError> {
        let mut out = Vec::new();
        self.tracker
            .announce(self.now, &mut self.rng, req, ip, &mut out)
            .map(|_| out)
    }

    fn credit(&mut self, req: &AnnounceRequest, ip: IpAddr) -> Transfer {
        let mut out = Vec::new();
        self.tracker
            .announce(self.now, &mut self.rng, req, ip, &mut out)
            .unwrap()
    }

    /// Fills the swarm with `n` leechers 10.0.x.y:1000+i, peer ids from `i`.
    fn fill(&mut self, n: usize) {
        for i in 0..n {
            let mut req = request(0, 1000 + i as u16, 5, Event::Started);
            req.peer_id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8));
            self.announce(&req, ip).unwrap();
        }
    }
}

fn peers_of(reply: &[u8]) -> Vec<(IpAddr, u16)> {
    let doc = decode(reply).unwrap();
    let mut out = Vec::new();
    for chunk in doc
        .root()
        .get(b"peers")
        .unwrap()
        .as_bytes()
        .unwrap()
        .chunks(6)
    {
        let ip = IpAddr::V4(Ipv4Addr::new(chunk[0], chunk[1], chunk[2], chunk[3]));
        out.push((ip, u16::from_be_bytes([chunk[4], chunk[5]])));
    }
    if let Some(six) = doc.root().get(b"peers6") {
        for chunk in six.as_bytes().unwrap().chunks(18) {
            let octets: [u8; 16] = chunk[..16].try_into().unwrap();
            out.push((
                IpAddr::from(octets),
                u16::from_be_bytes([chunk[16], chunk[17]]),
            ));
        }
    }
    out
}

fn int(reply: &[u8], key: &[u8]) -> i64 {
    decode(reply)
        .unwrap()
        .root()
        .get(key)
        .unwrap()
        .as_int()
        .unwrap()
}

fn header_value(complete: i64, incomplete: i64) -> BTreeMap<Vec<u8>, Value> {
    let Value::Dict(map) = Value::dict([
        ("complete", Value::Int(complete)),
        ("incomplete", Value::Int(incomplete)),
        ("interval", Value::Int(1800)),
        ("min interval", Value::Int(900)),
    ]) else {
        unreachable!()
    };
    map
}

#[test]
fn compact_reply_bytes() {
    let mut h = Harness::new(TrackerConfig::default());
    h.announce(&request(1, 6881, 0, Event::Started), v4(1))
        .unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    h.announce(&request(2, 6882, 10, Event::Started), v6)
        .unwrap();
    let reply = h
        .announce(&request(3, 6883, 10, Event::Started), v4(3))
        .unwrap();
    let mut peers6 = v6_octets(v6).to_vec();
    peers6.extend_from_slice(&6882u16.to_be_bytes());
    let mut expected = header_value(1, 2);
    expected.insert(b"peers".to_vec(), Value::bytes([10, 0, 0, 1, 0x1a, 0xe1]));
    expected.insert(b"peers6".to_vec(), Value::bytes(peers6));
    assert_eq!(reply, encode(&Value::Dict(expected)));
    // Only IPv4 peers: no `peers6` key at all.
    let mut h = Harness::new(TrackerConfig::default());
    h.announce(&request(1, 6881, 0, Event::Started), v4(1))
        .unwrap();
    let reply = h
        .announce(&request(3, 6883, 10, Event::None), v4(3))
        .unwrap();
    assert_eq!(
        reply,
        b"d8:completei1e10:incompletei1e8:intervali1800e12:min intervali900e5:peers6:\x0a\x00\x00\x01\x1a\xe1e"
    );
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(ip) => ip.octets(),
        IpAddr::V4(_) => unreachable!(),
    }
}

#[test]
fn dictionary_list_reply_bytes() {
    let mut h = Harness::new(TrackerConfig::default());
    h.announce(&request(1, 6881, 0, Event::Started), v4(1))
        .unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    h.announce(&request(2, 6882, 10, Event::Started), v6)
        .unwrap();
    let mut req = request(3, 6883, 10, Event::Started);
    req.compact = false;
    req.numwant = Some(10);
    let reply = h.announce(&req, v4(3)).unwrap();
    let peer = |ip: &str, id: u8, port: i64, with_id: bool| {
        let mut fields = vec![("ip", Value::from(ip)), ("port", Value::Int(port))];
        if with_id {
            fields.push(("peer id", Value::bytes([id; 20])));
        }
        Value::dict(fields)
    };
    let mut expected = header_value(1, 2);
    // Reply order is the swarm's (both fit, so no sampling).
    expected.insert(
        b"peers".to_vec(),
        Value::List(vec![
            peer("10.0.0.1", 1, 6881, true),
            peer("2001:db8::1", 2, 6882, true),
        ]),
    );
    assert_eq!(reply, encode(&Value::Dict(expected.clone())));
    req.no_peer_id = true;
    let reply = h.announce(&req, v4(3)).unwrap();
    expected.insert(
        b"peers".to_vec(),
        Value::List(vec![
            peer("10.0.0.1", 1, 6881, false),
            peer("2001:db8::1", 2, 6882, false),
        ]),
    );
    assert_eq!(reply, encode(&Value::Dict(expected)));
}

#[test]
fn numwant_defaults_to_50_and_is_capped_at_200() {
    let mut h = Harness::new(TrackerConfig::default());
    h.fill(300);
    let mut req = request(200, 9999, 5, Event::None);
    assert_eq!(peers_of(&h.announce(&req, v4(250)).unwrap()).len(), 50);
    req.numwant = Some(200);
    assert_eq!(peers_of(&h.announce(&req, v4(250)).unwrap()).len(), 200);
    req.numwant = Some(201);
    assert_eq!(peers_of(&h.announce(&req, v4(250)).unwrap()).len(), 200);
    req.numwant = Some(u32::MAX);
    assert_eq!(peers_of(&h.announce(&req, v4(250)).unwrap()).len(), 200);
    req.numwant = Some(0);
    assert_eq!(peers_of(&h.announce(&req, v4(250)).unwrap()).len(), 0);
}

#[test]
fn selection_is_random_distinct_and_never_self() {
    let mut h = Harness::new(TrackerConfig::default());
    h.fill(120);
    let me = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 1005);
    let mut req = request(0, 1005, 5, Event::None);
    req.peer_id[..8].copy_from_slice(&5u64.to_be_bytes());
    let mut seen = HashSet::new();
    for _ in 0..50 {
        let peers = peers_of(&h.announce(&req, me.0).unwrap());
        assert_eq!(peers.len(), 50);
        assert!(!peers.contains(&me));
        assert_eq!(peers.iter().collect::<HashSet<_>>().len(), 50, "duplicates");
        seen.extend(peers);
    }
    // 50 random picks of 50 out of 119 cover (almost surely) all of them.
    assert_eq!(seen.len(), 119);
    // A small swarm: everyone but the requester, including when numwant equals the others.
    let mut h = Harness::new(TrackerConfig::default());
    h.fill(3);
    let mut req = request(0, 1000, 5, Event::None);
    req.peer_id[..8].copy_from_slice(&0u64.to_be_bytes());
    req.numwant = Some(2);
    let peers = peers_of(&h.announce(&req, v4(0)).unwrap());
    assert_eq!(peers, vec![(v4(1), 1001), (v4(2), 1002)]);
}

#[test]
fn an_old_entry_at_the_same_address_is_not_returned() {
    let mut h = Harness::new(TrackerConfig::default());
    h.announce(&request(1, 6881, 5, Event::Started), v4(1))
        .unwrap();
    // The same client restarted with a new peer id.
    let reply = h
        .announce(&request(2, 6881, 5, Event::Started), v4(1))
        .unwrap();
    assert!(peers_of(&reply).is_empty());
    assert_eq!(int(&reply, b"incomplete"), 2);
}

#[test]
fn peers_expire_after_the_timeout() {
    let config = TrackerConfig::with_interval(Duration::from_secs(10));
    let mut h = Harness::new(config);
    let t0 = h.now;
    h.announce(&request(1, 1, 0, Event::Started), v4(1))
        .unwrap();
    h.now = t0 + Duration::from_secs(15);
    h.announce(&request(2, 2, 5, Event::Started), v4(2))
        .unwrap();
    assert_eq!(
        h.tracker
            .expire(t0 + Duration::from_secs(20) - Duration::from_millis(1)),
        0
    );
    assert_eq!(h.tracker.expire(t0 + Duration::from_secs(20)), 1);
    assert_eq!(
        h.tracker.stats(),
        TrackerStats {
            swarms: 1,
            peers: 1,
            seeders: 0
        }
    );
    assert_eq!(
        h.tracker.scrape(&HASH),
        ScrapeCounts {
            complete: 0,
            incomplete: 1,
            downloaded: 0
        }
    );
    // The survivor is still indexed correctly: its re-announce does not add a peer.
    h.now = t0 + Duration::from_secs(21);
    h.announce(&request(2, 2, 5, Event::None), v4(2)).unwrap();
    assert_eq!(h.tracker.stats().peers, 1);
    assert_eq!(h.tracker.expire(t0 + Duration::from_secs(41)), 1);
    assert_eq!(h.tracker.stats(), TrackerStats::default());
}

#[test]
fn stopped_removes_the_peer() {
    let mut h = Harness::new(TrackerConfig::default());
    h.announce(&request(1, 1, 0, Event::Started), v4(1))
        .unwrap();
    h.announce(&request(2, 2, 5, Event::Started), v4(2))
        .unwrap();
    let reply = h
        .announce(&request(1, 1, 0, Event::Stopped), v4(1))
        .unwrap();
    assert_eq!(
        reply,
        b"d8:completei0e10:incompletei1e8:intervali1800e12:min intervali900e5:peers0:e"
    );
    let reply = h
        .announce(&request(3, 3, 5, Event::Started), v4(3))
        .unwrap();
    assert_eq!(peers_of(&reply), vec![(v4(2), 2)]);
    // Someone else cannot stop peer 2 by sending its peer id from another address.
    h.announce(&request(2, 2, 5, Event::Stopped), v4(9))
        .unwrap();
    assert_eq!(h.tracker.stats().peers, 2);
    h.announce(&request(2, 2, 5, Event::Stopped), v4(2))
        .unwrap();
    h.announce(&request(3, 3, 5, Event::Stopped), v4(3))
        .unwrap();
    assert_eq!(h.tracker.stats(), TrackerStats::default());
    // Stopping in an unknown torrent creates nothing.
    h.announce(&request(4, 4, 5, Event::Stopped), v4(4))
        .unwrap();
    assert_eq!(h.tracker.stats(), TrackerStats::default());
}

#[test]
fn completed_is_counted_once_per_peer() {
    let mut h = Harness::new(TrackerConfig::default());
    h.announce(&request(1, 1, 10, Event::Started), v4(1))
        .unwrap();
    assert_eq!(
        h.tracker.scrape(&HASH),
        ScrapeCounts {
            complete: 0,
            incomplete: 1,
            downloaded: 0
        }
    );
    h.announce(&request(1, 1, 0, Event::Completed), v4(1))
        .unwrap();
    h.announce(&request(1, 1, 0, Event::Completed), v4(1))
        .unwrap();
    assert_eq!(
        h.tracker.scrape(&HASH),
        ScrapeCounts {
            complete: 1,
            incomplete: 0,
            downloaded: 1
        }
    );
    // A peer first heard of with `completed` counts too.
    h.announce(&request(2, 2, 0, Event::Completed), v4(2))
        .unwrap();
    assert_eq!(h.tracker.scrape(&HASH).downloaded, 2);
    // Going back to leeching (e.g. a re-check) moves it between the counts.
    h.announce(&request(1, 1, 3, Event::None), v4(1)).unwrap();
    assert_eq!(
        h.tracker.scrape(&HASH),
        ScrapeCounts {
            complete: 1,
            incomplete: 1,
            downloaded: 2
        }
    );
    assert_eq!(
        h.tracker.stats(),
        TrackerStats {
            swarms: 1,
            peers: 2,
            seeders: 1
        }
    );
    assert_eq!(
        h.tracker.scrape(&InfoHash([0; 20])),
        ScrapeCounts::default()
    );
    assert_eq!(h.tracker.scrape_all().count(), 1);
}

#[test]
fn swarm_limit_one_past_the_edge() {
    let config = TrackerConfig {
        max_swarms: 2,
        ..TrackerConfig::default()
    };
    let mut h = Harness::new(config);
    for n in 0..2 {
        let mut req = request(1, 1, 5, Event::Started);
        req.info_hash = InfoHash([n; 20]);
        h.announce(&req, v4(1)).unwrap();
    }
    let mut req = request(1, 1, 5, Event::Started);
    req.info_hash = InfoHash([2; 20]);
    let error = h.announce(&req, v4(1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "tracker is full: it tracks at most 2 torrents"
    );
    // Known torrents keep working.
    req.info_hash = InfoHash([1; 20]);
    h.announce(&req, v4(2)).unwrap();
    assert_eq!(h.tracker.stats().swarms, 2);
}

#[test]
fn peers_per_swarm_limit_one_past_the_edge() {
    let config = TrackerConfig {
        max_peers_per_swarm: 3,
        ..TrackerConfig::default()
    };
    let mut h = Harness::new(config);
    h.fill(3);
    let error = h
        .announce(&request(99, 99, 5, Event::Started), v4(99))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "torrent is full: at most 3 peers per torrent"
    );
    // Peers already in still announce.
    let mut req = request(0, 1000, 5, Event::None);
    req.peer_id[..8].copy_from_slice(&0u64.to_be_bytes());
    assert_eq!(peers_of(&h.announce(&req, v4(0)).unwrap()).len(), 2);
}

#[test]
fn total_peer_limit_one_past_the_edge() {
    let config = TrackerConfig {
        max_peers: 2,
        ..TrackerConfig::default()
    };
    let mut h = Harness::new(config);
    h.fill(2);
    let mut req = request(9, 9, 5, Event::Started);
    req.info_hash = InfoHash([9; 20]);
    let error = h.announce(&req, v4(9)).unwrap_err();
    assert_eq!(error.to_string(), "tracker is full: at most 2 peers in all");
    // The refused announce leaves no empty torrent behind.
    assert_eq!(
        h.tracker.stats(),
        TrackerStats {
            swarms: 1,
            peers: 2,
            seeders: 0
        }
    );
}

#[test]
fn credit_is_the_growth_since_the_last_announce() {
    let mut h = Harness::new(TrackerConfig::default());
    let mut req = request(1, 1, 5, Event::Started);
    req.uploaded = 100;
    assert_eq!(
        h.credit(&req, v4(1)),
        Transfer {
            uploaded: 100,
            downloaded: 0
        }
    );
    req.event = Event::None;
    req.uploaded = 250;
    req.downloaded = 40;
    assert_eq!(
        h.credit(&req, v4(1)),
        Transfer {
            uploaded: 150,
            downloaded: 40
        }
    );
    // Counters that went backwards (a client restart without `started`) credit nothing.
    req.uploaded = 10;
    assert_eq!(
        h.credit(&req, v4(1)),
        Transfer {
            uploaded: 0,
            downloaded: 0
        }
    );
    req.uploaded = 30;
    req.event = Event::Stopped;
    assert_eq!(
        h.credit(&req, v4(1)),
        Transfer {
            uploaded: 20,
            downloaded: 0
        }
    );
    // First seen without `started` (after expiry or a tracker restart): only a baseline.
    req.event = Event::None;
    req.uploaded = 5000;
    assert_eq!(h.credit(&req, v4(1)), Transfer::default());
}

/// Two trackers sharing one [`Occupancy`], as the shards of a server do.
fn shards(config: TrackerConfig) -> (Harness, Harness, Arc<Occupancy>) {
    let occupancy = Arc::new(Occupancy::default());
    let shard = |seed| Harness {
        tracker: Tracker::sharing(config.clone(), occupancy.clone()),
        rng: SmallRng::seed_from_u64(seed),
        now: Instant::now(),
    };
    (shard(1), shard(2), occupancy)
}

fn in_torrent(hash: u8, id: u8, event: Event) -> AnnounceRequest {
    let mut req = request(id, 1000 + u16::from(id), 5, event);
    req.info_hash = InfoHash([hash; 20]);
    req
}

#[test]
fn shared_swarm_limit_holds_across_trackers_and_frees_slots() {
    let (mut a, mut b, occupancy) = shards(TrackerConfig {
        max_swarms: 2,
        ..TrackerConfig::default()
    });
    // Both slots taken in one tracker: the other may add none.
    a.announce(&in_torrent(1, 1, Event::Started), v4(1))
        .unwrap();
    a.announce(&in_torrent(2, 1, Event::Started), v4(1))
        .unwrap();
    let error = b
        .announce(&in_torrent(3, 1, Event::Started), v4(1))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "tracker is full: it tracks at most 2 torrents"
    );
    assert_eq!((occupancy.swarms(), occupancy.peers()), (2, 2));
    // `stopped` empties a torrent and frees its slot for the other tracker.
    a.announce(&in_torrent(1, 1, Event::Stopped), v4(1))
        .unwrap();
    assert_eq!((occupancy.swarms(), occupancy.peers()), (1, 1));
    b.announce(&in_torrent(3, 1, Event::Started), v4(1))
        .unwrap();
    // Expiry frees slots too.
    a.now += a.tracker.config().peer_timeout;
    assert_eq!(a.tracker.expire(a.now), 1);
    assert_eq!((occupancy.swarms(), occupancy.peers()), (1, 1));
    a.announce(&in_torrent(4, 1, Event::Started), v4(1))
        .unwrap();
    // A tracker that goes away gives its slots back.
    drop(b);
    assert_eq!((occupancy.swarms(), occupancy.peers()), (1, 1));
}

#[test]
fn shared_peer_limit_holds_across_trackers() {
    let (mut a, mut b, occupancy) = shards(TrackerConfig {
        max_peers: 3,
        ..TrackerConfig::default()
    });
    a.announce(&in_torrent(1, 1, Event::Started), v4(1))
        .unwrap();
    a.announce(&in_torrent(1, 2, Event::Started), v4(2))
        .unwrap();
    b.announce(&in_torrent(2, 3, Event::Started), v4(3))
        .unwrap();
    for (in_a, hash) in [(true, 1), (false, 2), (false, 9)] {
        let h = if in_a { &mut a } else { &mut b };
        let error = h
            .announce(&in_torrent(hash, 4, Event::Started), v4(4))
            .unwrap_err();
        assert_eq!(error.to_string(), "tracker is full: at most 3 peers in all");
    }
    // The refusal in a new torrent left no empty torrent behind, nor a slot taken.
    assert_eq!((occupancy.swarms(), occupancy.peers()), (2, 3));
    assert_eq!(b.tracker.stats().swarms, 1);
    // Peers already in keep announcing.
    a.announce(&in_torrent(1, 2, Event::None), v4(2)).unwrap();
    b.announce(&in_torrent(2, 3, Event::Stopped), v4(3))
        .unwrap();
    a.announce(&in_torrent(1, 4, Event::Started), v4(4))
        .unwrap();
    assert_eq!((occupancy.swarms(), occupancy.peers()), (1, 3));
}
