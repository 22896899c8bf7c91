//! Throughput benchmarks for shoal-metainfo: raw SHA-1, `create_torrent`, and decoding a large
//! `.torrent`. Every benchmark reports bytes per second (`Throughput::Bytes`).
//!
//! Run with `cargo bench -p shoal-metainfo --bench metainfo`; the whole file takes well under
//! two minutes.

use std::hint::black_box;
use std::io::Write;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use sha1::{Digest, Sha1};
use shoal_metainfo::bencode::{self, DecodeOptions, Value};
use shoal_metainfo::{CreateOptions, Torrent, create_torrent};
use shoal_testkit::pseudo_random;

/// Size of the file hashed by the `create` benchmarks.
const CREATE_FILE_SIZE: usize = 256 << 20;
/// Piece length for the `create` benchmarks (what `bench-create.sh` uses too).
const CREATE_PIECE_LENGTH: u64 = 1 << 20;

/// SHA-1 of one buffer on one thread: the per-core hash rate everything else is bounded by.
fn sha1_piece(c: &mut Criterion) {
    let mut group = c.benchmark_group("sha1/piece");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (label, size) in [("1MiB", 1usize << 20), ("16KiB", 16 << 10)] {
        let data = pseudo_random(size, 0x5eed_0001);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), &data, |b, data| {
            b.iter(|| {
                let digest: [u8; 20] = Sha1::digest(black_box(data.as_slice())).into();
                black_box(digest)
            });
        });
    }
    group.finish();
}

/// `create_torrent` on a 256 MiB file that is already in the page cache: bytes of content
/// hashed per second (so the figure extrapolates directly to a 1 GiB file), with every core and
/// with one thread for comparison.
fn create(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("content.bin");
    {
        let mut file = std::fs::File::create(&path).expect("create content file");
        let block = pseudo_random(8 << 20, 0x5eed_0002);
        for i in 0..CREATE_FILE_SIZE / block.len() {
            // Vary each block a little so no two pieces are equal.
            let mut block = block.clone();
            block[..8].copy_from_slice(&(i as u64).to_le_bytes());
            file.write_all(&block).expect("write content file");
        }
    }
    // Read it once so every measured run hits the page cache.
    black_box(std::fs::read(&path).expect("warm page cache").len());

    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut group = c.benchmark_group("create");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(CREATE_FILE_SIZE as u64));
    for (label, threads) in [
        ("1GiB-equivalent".to_owned(), None),
        ("1GiB-equivalent/1-thread".to_owned(), NonZeroUsize::new(1)),
    ] {
        if threads.is_some() && cores == 1 {
            continue;
        }
        let options = CreateOptions {
            piece_length: Some(CREATE_PIECE_LENGTH),
            threads,
            ..CreateOptions::default()
        };
        group.bench_function(label, |b| {
            b.iter(|| {
                let created = create_torrent(black_box(&path), &options, &mut |_| {})
                    .expect("create_torrent");
                black_box(created.torrent.info_hash)
            });
        });
    }
    group.finish();
}

/// A realistic large multi-file `.torrent`: 10,000 files in nested directories, 5,000 pieces of
/// 4 MiB, trackers and a comment. About 1 MB of bencode.
fn large_torrent() -> Vec<u8> {
    const FILES: usize = 10_000;
    const PIECES: usize = 5_000;
    const PIECE_LENGTH: i64 = 4 << 20;
    // File lengths come in pairs summing to one piece, so the total is exactly PIECES pieces.
    let files: Vec<Value> = (0..FILES)
        .map(|i| {
            let delta = ((i / 2) as i64 * 7919) % (1 << 20);
            let length = if i % 2 == 0 {
                PIECE_LENGTH / 2 + delta
            } else {
                PIECE_LENGTH / 2 - delta
            };
            let path = vec![
                Value::from(format!("Season {:02}", i / 1000).as_str()),
                Value::from(format!("Disc {}", (i / 100) % 10).as_str()),
                Value::from(format!("track {i:05} - some longer descriptive title.flac").as_str()),
            ];
            Value::dict([("length", Value::Int(length)), ("path", Value::List(path))])
        })
        .collect();
    let info = Value::dict([
        ("name", "A Large Collection (2024) [lossless]".into()),
        ("piece length", Value::Int(PIECE_LENGTH)),
        (
            "pieces",
            Value::Bytes(pseudo_random(PIECES * 20, 0x5eed_0003)),
        ),
        ("files", Value::List(files)),
    ]);
    let trackers = [
        "udp://tracker.example.org:6969/announce",
        "https://tracker.example.net/announce",
        "udp://open.example.com:1337/announce",
    ];
    let tiers = trackers
        .iter()
        .map(|t| Value::List(vec![(*t).into()]))
        .collect();
    let torrent = Value::dict([
        ("announce", trackers[0].into()),
        ("announce-list", Value::List(tiers)),
        ("comment", "benchmark fixture".into()),
        ("created by", "shoal-metainfo bench".into()),
        ("creation date", Value::Int(1_700_000_000)),
        ("info", info),
    ]);
    bencode::encode(&torrent)
}

/// Decoding a large `.torrent`: the bencode layer alone, then the full parse into a [`Torrent`].
fn bencode_decode(c: &mut Criterion) {
    let bytes = large_torrent();
    let torrent = Torrent::from_bytes(&bytes).expect("fixture parses");
    assert_eq!(torrent.info.num_pieces(), 5_000);

    let mut group = c.benchmark_group("bencode/decode");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("decode_with/TORRENT_FILE", |b| {
        b.iter(|| {
            let doc = bencode::decode_with(black_box(&bytes), DecodeOptions::TORRENT_FILE)
                .expect("decode");
            black_box(doc.root().span())
        });
    });
    group.bench_function("Torrent::from_bytes", |b| {
        b.iter(|| black_box(Torrent::from_bytes(black_box(&bytes)).expect("parse")));
    });
    group.finish();
}

criterion_group!(benches, sha1_piece, create, bencode_decode);
criterion_main!(benches);
