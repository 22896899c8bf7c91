//! The sans-IO hot path: parse an announce query and answer it from a populated swarm.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_metainfo::InfoHash;
use shoal_tracker::{AnnounceRequest, Event, IpParam, Tracker, TrackerConfig};

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A tracker with one torrent of `peers` peers.
fn populated(peers: usize, rng: &mut SmallRng) -> Tracker {
    let mut tracker = Tracker::new(TrackerConfig::default());
    let now = Instant::now();
    let mut out = Vec::new();
    for i in 0..peers {
        let req = AnnounceRequest {
            info_hash: InfoHash([1; 20]),
            peer_id: rng.random(),
            port: 1024 + i as u16,
            uploaded: 0,
            downloaded: 0,
            left: 100,
            event: Event::Started,
            compact: true,
            numwant: Some(0),
            no_peer_id: false,
            ip: IpParam::Absent,
        };
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        out.clear();
        let _ = tracker.announce(now, rng, &req, ip, &mut out);
    }
    tracker
}

fn bench(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(7);
    let query = format!(
        "info_hash={}&peer_id={}&port=6881&uploaded=0&downloaded=0&left=5&compact=1&numwant=50&event=started",
        escape(&[1; 20]),
        escape(b"-SH0001-abcdefghijkl")
    );
    c.bench_function("parse announce query", |b| {
        b.iter(|| AnnounceRequest::parse(black_box(query.as_bytes())))
    });
    for peers in [40, 5000] {
        let mut tracker = populated(peers, &mut rng);
        let mut out = Vec::with_capacity(512);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        c.bench_function(&format!("parse + announce, swarm of {peers}"), |b| {
            b.iter(|| {
                out.clear();
                let req = AnnounceRequest::parse(query.as_bytes());
                if let Ok(req) = req {
                    let _ = tracker.announce(Instant::now(), &mut rng, &req, ip, &mut out);
                }
                black_box(out.len())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
