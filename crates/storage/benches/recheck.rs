//! Recheck throughput: `Storage::open` on a complete 256 MiB torrent already in the page cache,
//! with no resume file, so every piece is read and hashed. Reports bytes of content per second.
//!
//! Run with `cargo bench -p shoal-storage --bench recheck`. Each iteration also creates the
//! marker and writes (and syncs) a resume record: a few milliseconds, included in the figure.

use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shoal_metainfo::{CreateOptions, create_torrent};
use shoal_storage::{Storage, StorageConfig};
use shoal_testkit::pseudo_random;

const SIZE: usize = 256 << 20;

fn recheck(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("content.bin");
    std::fs::write(&path, pseudo_random(SIZE, 0x5eed)).expect("write content");
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);

    let mut group = c.benchmark_group("recheck/256MiB");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(SIZE as u64));
    for (label, piece_length) in [("1MiB-pieces", 1u64 << 20), ("16KiB-pieces", 16 << 10)] {
        let options = CreateOptions {
            piece_length: Some(piece_length),
            ..CreateOptions::default()
        };
        let torrent = create_torrent(&path, &options, &mut |_| {})
            .expect("create torrent")
            .torrent;
        for threads in [cores, 1] {
            let config = StorageConfig {
                recheck_threads: NonZeroUsize::new(threads),
                ..StorageConfig::default()
            };
            let id = BenchmarkId::new(label, format!("{threads}-threads"));
            group.bench_function(id, |b| {
                b.iter_batched(
                    || tempfile::tempdir().expect("state dir"),
                    |state| {
                        let opened = Storage::open(
                            torrent.info_hash,
                            &torrent.info,
                            dir.path(),
                            state.path(),
                            config.clone(),
                        )
                        .expect("open");
                        assert!(opened.have.is_full(), "every piece verifies");
                        opened.storage.close().expect("close");
                        state
                    },
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();

    // The fixed cost inside every figure above: open and close with a valid resume record, so
    // nothing is read (marker, record and directory syncs, stat, set_len checks).
    let torrent = create_torrent(&path, &CreateOptions::default(), &mut |_| {})
        .expect("create torrent")
        .torrent;
    let state = tempfile::tempdir().expect("state dir");
    let open = || {
        Storage::open(
            torrent.info_hash,
            &torrent.info,
            dir.path(),
            state.path(),
            StorageConfig::default(),
        )
        .expect("open")
    };
    open().storage.close().expect("close");
    c.bench_function("open/256MiB-with-resume", |b| {
        b.iter(|| {
            let opened = open();
            assert_eq!(opened.report.rechecked, 0, "the record is trusted");
            opened.storage.close().expect("close");
        });
    });
}

criterion_group!(benches, recheck);
criterion_main!(benches);
