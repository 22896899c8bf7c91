//! Resume records and rechecks: clean restarts, crashes, damaged records, existing data.

mod support;

use std::fs;
use std::os::unix::fs::FileExt;

use shoal_metainfo::{CreateOptions, create_torrent};
use shoal_storage::{PieceSet, ResumeStatus, StorageConfig, StorageError};
use support::{Built, Dirs, Entry, download, multi_file, scrambled_blocks};

fn torrent() -> Built {
    multi_file(
        "resume",
        &[
            Entry::File(&["a"], 50_000),
            Entry::Pad(65536 - 50_000),
            Entry::File(&["b", "c"], 100_000),
            Entry::File(&["b", "empty"], 0),
            Entry::File(&["d"], 70_000),
        ],
        16384,
        7,
    )
}

/// Never flushes on its own: records are written only at open, `flush()` and `close()`.
fn manual_flush() -> StorageConfig {
    StorageConfig {
        flush_bytes: u64::MAX,
        flush_interval: std::time::Duration::from_secs(3600),
        ..StorageConfig::default()
    }
}

fn blocks_of(built: &Built, pieces: impl Fn(u32) -> bool) -> Vec<(u32, u32, usize)> {
    scrambled_blocks(built, 16384)
        .into_iter()
        .filter(|b| pieces(b.0))
        .collect()
}

#[test]
fn clean_close_then_reopen_skips_the_recheck() {
    let built = torrent();
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    download(&storage, &built, &blocks_of(&built, |p| p % 3 != 1));
    let have = storage.have();
    assert!(have.count() > 0 && !have.is_full());
    storage.close().unwrap();
    assert!(!dirs.marker_file(&built).exists());

    let opened = dirs.open(&built);
    assert_eq!(opened.have, have);
    assert_eq!(
        opened.report.resume,
        ResumeStatus::Used { changed_files: 0 }
    );
    assert!(!opened.report.unclean_shutdown);
    assert_eq!(opened.report.rechecked, 0);
    assert_eq!(opened.report.trusted, have.count());
    assert!(
        dirs.marker_file(&built).exists(),
        "marker is back while open"
    );

    // Finish the download in the second session.
    let storage = opened.storage;
    download(&storage, &built, &blocks_of(&built, |p| p % 3 == 1));
    assert!(storage.have().is_full());
    storage.close().unwrap();
    support::assert_files_match(dirs.download.path(), &built);
}

#[test]
fn crash_rechecks_and_never_trusts_altered_data() {
    let built = torrent();
    let n = built.torrent.info.num_pieces() as u32;
    let dirs = Dirs::new();
    let storage = dirs.open_with(&built, manual_flush()).unwrap().storage;
    download(&storage, &built, &blocks_of(&built, |p| p < n / 2));
    storage.flush().unwrap(); // the record names the first half
    download(&storage, &built, &blocks_of(&built, |p| p >= n / 2));
    drop(storage); // kill -9: no close, the marker stays
    assert!(dirs.marker_file(&built).exists());

    // Another program alters a piece the record names (piece 5 lies in file b/c).
    let path = dirs.download.path().join("resume/b/c");
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    let at = 5 * 16384 - 65536 + 10;
    let original = built.content[5 * 16384 + 10];
    file.write_all_at(&[original ^ 0xff], at as u64).unwrap();
    drop(file);

    let opened = dirs.open(&built);
    assert!(opened.report.unclean_shutdown);
    assert!(matches!(opened.report.resume, ResumeStatus::Used { .. }));
    assert!(!opened.have.contains(5), "altered piece is not trusted");
    let mut expected = PieceSet::full(n);
    expected.remove(5);
    assert_eq!(
        opened.have, expected,
        "pieces verified after the last record are found again"
    );
    assert!(opened.report.rechecked > 0);
    opened.storage.close().unwrap();

    let clean = dirs.open(&built);
    assert_eq!(clean.have, expected);
    assert_eq!(clean.report.rechecked, 0);
}

#[test]
fn crash_with_a_stale_record_rechecks_unnamed_pieces_only() {
    let built = torrent();
    let n = built.torrent.info.num_pieces() as u32;
    let dirs = Dirs::new();
    let storage = dirs.open_with(&built, manual_flush()).unwrap().storage;
    download(&storage, &built, &blocks_of(&built, |p| p < 4));
    storage.flush().unwrap();
    drop(storage);

    let opened = dirs.open(&built);
    assert!(opened.report.unclean_shutdown);
    assert_eq!(opened.have.count(), 4);
    // Pieces 0..4 hold a.txt (+ pad): a is unchanged since the record, so they are trusted.
    assert_eq!(opened.report.trusted, 4);
    assert_eq!(opened.report.rechecked, n - 4);
}

#[test]
fn garbage_or_truncated_resume_files_mean_a_full_recheck() {
    let built = torrent();
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    download(&storage, &built, &scrambled_blocks(&built, 16384));
    storage.close().unwrap();
    let resume = dirs.resume_file(&built);
    let good = fs::read(&resume).unwrap();
    let n = built.torrent.info.num_pieces() as u32;

    let longer = [good.as_slice(), &[0]].concat();
    let mut flipped = good.clone();
    flipped[good.len() - 25] ^= 1;
    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("one byte long", longer),
        ("garbage", support::pseudo_random(good.len(), 99)),
        ("bit flip", flipped),
    ];
    for (what, bytes) in damaged {
        fs::write(&resume, &bytes).unwrap();
        let opened = dirs.open(&built);
        assert!(
            matches!(opened.report.resume, ResumeStatus::Rejected { .. }),
            "{what}: {:?}",
            opened.report
        );
        assert_eq!(opened.report.rechecked, n, "{what}");
        assert!(opened.have.is_full(), "{what}");
        opened.storage.close().unwrap();
        assert_eq!(
            fs::read(&resume).unwrap().len(),
            good.len(),
            "{what}: rewritten"
        );
    }
}

#[test]
fn a_resume_file_for_another_torrent_is_rejected() {
    let built = torrent();
    let other = multi_file("resume", &[Entry::File(&["a"], 5)], 16384, 8);
    let dirs = Dirs::new();
    dirs.open(&other).storage.close().unwrap();
    fs::rename(dirs.resume_file(&other), dirs.resume_file(&built)).unwrap();
    let opened = dirs.open(&built);
    let ResumeStatus::Rejected { reason } = &opened.report.resume else {
        panic!("{:?}", opened.report);
    };
    assert!(reason.contains("bytes"), "{reason}");
}

#[test]
fn missing_resume_file_rechecks_existing_complete_data() {
    // Seeding what `shoal create` just hashed: the content is already in place.
    let source = tempfile::tempdir().unwrap();
    let top = source.path().join("content");
    fs::create_dir_all(top.join("x/y")).unwrap();
    fs::write(top.join("x/y/big.bin"), support::pseudo_random(3 << 20, 1)).unwrap();
    fs::write(top.join("x/small"), support::pseudo_random(12_345, 2)).unwrap();
    fs::write(top.join("empty"), b"").unwrap();
    let options = CreateOptions {
        piece_length: Some(32768),
        ..CreateOptions::default()
    };
    let created = create_torrent(&top, &options, &mut |_| {}).unwrap();
    let built = Built {
        torrent: created.torrent,
        content: Vec::new(),
    };
    let state = tempfile::tempdir().unwrap();
    let dirs = Dirs {
        download: source,
        state,
    };
    let opened = dirs
        .open_with(
            &built,
            StorageConfig {
                recheck_threads: std::num::NonZeroUsize::new(2),
                ..StorageConfig::default()
            },
        )
        .unwrap();
    let n = built.torrent.info.num_pieces() as u32;
    assert_eq!(opened.report.resume, ResumeStatus::Missing);
    assert_eq!((opened.report.rechecked, opened.report.found), (n, n));
    assert!(opened.have.is_full());
}

#[test]
fn files_changed_after_a_clean_close_are_rechecked() {
    let built = torrent();
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    download(&storage, &built, &scrambled_blocks(&built, 16384));
    storage.close().unwrap();

    // Truncate d: its pieces can no longer verify, the others are still trusted.
    let d = dirs.download.path().join("resume/d");
    fs::OpenOptions::new()
        .write(true)
        .open(&d)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let opened = dirs.open(&built);
    assert_eq!(
        opened.report.resume,
        ResumeStatus::Used { changed_files: 1 }
    );
    let g = built.torrent.info.geometry();
    let d_start = (65536 + 100_000) / 16384; // piece holding the start of d (shared with c)
    for piece in 0..g.num_pieces() {
        assert_eq!(
            opened.have.contains(piece),
            piece < d_start,
            "piece {piece}"
        );
    }
    assert_eq!(fs::metadata(&d).unwrap().len(), 70_000, "extended again");
}

#[test]
fn the_marker_is_written_at_open_and_removed_on_close() {
    let built = torrent();
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    assert!(dirs.marker_file(&built).exists());
    assert!(
        dirs.resume_file(&built).exists(),
        "a record is written at open"
    );
    storage.close().unwrap();
    assert!(!dirs.marker_file(&built).exists());
}

#[test]
fn records_are_written_in_batches_and_a_crash_loses_only_the_last_batch() {
    let built = torrent();
    let dirs = Dirs::new();
    let config = StorageConfig {
        flush_bytes: 2 * 16384, // a record every second verified piece
        ..manual_flush()
    };
    let storage = dirs.open_with(&built, config).unwrap().storage;
    // Pieces 0 and 1 lie in file a only, piece 11 in file d only.
    download(&storage, &built, &blocks_of(&built, |p| p < 2));
    download(&storage, &built, &blocks_of(&built, |p| p == 11));
    assert_eq!(storage.have().count(), 3);
    drop(storage); // crash before piece 11 was recorded

    let opened = dirs.open(&built);
    assert!(opened.report.unclean_shutdown);
    // a was not written after the record that named 0 and 1: they are trusted. d was, so its
    // pieces are hashed, and 11 is found again.
    assert_eq!(
        opened.report.resume,
        ResumeStatus::Used { changed_files: 1 }
    );
    assert_eq!(opened.report.trusted, 2);
    assert_eq!(opened.have.iter().collect::<Vec<_>>(), [0, 1, 11]);
}

#[test]
fn flush_if_due_records_quiet_torrents() {
    let built = torrent();
    let dirs = Dirs::new();
    let config = StorageConfig {
        flush_bytes: u64::MAX,
        flush_interval: std::time::Duration::ZERO,
        ..StorageConfig::default()
    };
    let storage = dirs.open_with(&built, config).unwrap().storage;
    let before = fs::read(dirs.resume_file(&built)).unwrap();
    storage.flush_if_due().unwrap();
    assert_eq!(
        fs::read(dirs.resume_file(&built)).unwrap(),
        before,
        "nothing new"
    );
    download(&storage, &built, &blocks_of(&built, |p| p == 0));
    storage.flush_if_due().unwrap();
    assert_ne!(fs::read(dirs.resume_file(&built)).unwrap(), before);
}

/// Makes a FIFO at `path`; `false` if this system has no `mkfifo`.
fn mkfifo(path: &std::path::Path) -> bool {
    std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `f` on another thread and gives up after a while, so that a hang fails the test
/// rather than the whole run.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("Storage::open hung on a FIFO in the state directory")
}

#[test]
fn a_fifo_at_the_resume_file_is_rejected_not_waited_on() {
    // Opening a FIFO for reading blocks until a writer comes: it must not hang the open.
    let built = torrent();
    let dirs = Dirs::new();
    if !mkfifo(&dirs.resume_file(&built)) {
        return;
    }
    let resume = dirs.resume_file(&built);
    let (opened, _dirs) = within_a_minute(move || {
        let opened = dirs.open_with(&built, StorageConfig::default()).unwrap();
        (opened.report, dirs)
    });
    assert_eq!(
        opened.resume,
        ResumeStatus::Rejected {
            reason: "it is not a regular file".into()
        }
    );
    assert!(
        fs::symlink_metadata(&resume).unwrap().is_file(),
        "replaced by a real record"
    );
}

#[test]
fn a_fifo_at_the_marker_or_temporary_file_is_refused_not_waited_on() {
    // Opening a FIFO for writing blocks until a reader comes.
    for (what, suffix) in [("marker", "dirty"), ("temporary record", "resume.tmp")] {
        let built = torrent();
        let dirs = Dirs::new();
        let path = dirs
            .state
            .path()
            .join(format!("{}.{suffix}", built.torrent.info_hash.to_hex()));
        if !mkfifo(&path) {
            return;
        }
        let (result, _dirs) = within_a_minute(move || {
            let result = dirs.open_with(&built, StorageConfig::default());
            (result.map(|_| ()), dirs)
        });
        let err = result.unwrap_err();
        assert!(
            matches!(&err, StorageError::WrongFileType { path: p, expected: "regular file" }
                if *p == path),
            "{what}: {err}"
        );
    }
}
