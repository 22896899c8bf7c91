//! Pieces onto files: single and multi-file torrents, pad files, file boundaries, verification,
//! path safety and the bounded open-file cache.

mod support;

use std::fs;

use shoal_metainfo::{CreateOptions, create_torrent};
use shoal_storage::{PieceCheck, Storage, StorageConfig, StorageError};
use support::{Built, Dirs, Entry, assert_files_match, download, multi_file, scrambled_blocks};

#[test]
fn single_file_with_a_short_last_piece() {
    let source = tempfile::tempdir().unwrap();
    let content = support::pseudo_random(3 * 16384 + 1000, 1);
    fs::write(source.path().join("one.bin"), &content).unwrap();
    let options = CreateOptions {
        piece_length: Some(16384),
        ..CreateOptions::default()
    };
    let created = create_torrent(&source.path().join("one.bin"), &options, &mut |_| {}).unwrap();
    let built = Built {
        torrent: created.torrent,
        content,
    };
    let g = built.torrent.info.geometry();
    assert_eq!((g.num_pieces(), g.piece_size(3)), (4, Some(1000)));

    let dirs = Dirs::new();
    let opened = dirs.open(&built);
    assert_eq!(opened.have.count(), 0);
    let storage = opened.storage;
    // Sparse file of the full length from the start.
    let path = dirs.download.path().join("one.bin");
    assert_eq!(fs::metadata(&path).unwrap().len(), content_len(&built));

    let mut blocks = scrambled_blocks(&built, 4096);
    blocks.reverse();
    download(&storage, &built, &blocks);
    assert!(storage.have().is_full());
    assert_eq!(fs::read(&path).unwrap(), built.content);
    assert_eq!(storage.read_piece(3).unwrap(), built.content[3 * 16384..]);
    assert_eq!(
        storage.read_block(1, 100, 50).unwrap(),
        built.content[16384 + 100..16384 + 150]
    );
    storage.close().unwrap();
}

fn content_len(built: &Built) -> u64 {
    built.content.len() as u64
}

fn mixed_torrent() -> Built {
    multi_file(
        "mixed",
        &[
            Entry::File(&["a.txt"], 100),
            Entry::Pad(16384 - 100),
            Entry::File(&["empty-first"], 0),
            Entry::File(&["d", "e", "f", "deep.bin"], 40_000),
            Entry::File(&["d", "empty"], 0),
            Entry::Link(&["link"], &["a.txt"]),
            Entry::File(&["d", "small"], 7),
            Entry::Pad(16384 * 3 - 40_007),
            Entry::File(&["z", "last.bin"], 20_000),
        ],
        16384,
        10,
    )
}

#[test]
fn multi_file_with_empty_files_nested_dirs_pads_and_links() {
    let built = mixed_torrent();
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    let root = dirs.download.path().join("mixed");
    assert_eq!(
        fs::metadata(root.join("d/e/f/deep.bin")).unwrap().len(),
        40_000
    );
    assert_eq!(fs::metadata(root.join("empty-first")).unwrap().len(), 0);
    assert_eq!(fs::metadata(root.join("d/empty")).unwrap().len(), 0);
    assert!(!root.join(".pad").exists(), "pad files are never created");
    assert!(
        fs::symlink_metadata(root.join("link")).is_err(),
        "links are not created"
    );

    download(&storage, &built, &scrambled_blocks(&built, 16384));
    assert!(storage.have().is_full());
    assert_files_match(dirs.download.path(), &built);
    // The pad range at the end of piece 0 reads as zeros, so the piece still verifies.
    assert_eq!(storage.read_block(0, 100, 16284).unwrap(), vec![0; 16284]);
    assert!(!root.join(".pad").exists());
    storage.close().unwrap();
}

#[test]
fn odd_blocks_out_of_order_across_file_boundaries() {
    let built = multi_file(
        "many",
        &[
            Entry::File(&["1"], 5000),
            Entry::File(&["2"], 7000),
            Entry::File(&["3"], 1),
            Entry::File(&["4"], 0),
            Entry::File(&["5"], 30_000),
            Entry::File(&["sub", "6"], 16384),
            Entry::File(&["sub", "7"], 12_345),
        ],
        16384,
        20,
    );
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    // 3000-byte blocks straddle every file boundary at some point.
    download(&storage, &built, &scrambled_blocks(&built, 3000));
    assert!(storage.have().is_full());
    assert_files_match(dirs.download.path(), &built);
    let g = built.torrent.info.geometry();
    for piece in 0..g.num_pieces() {
        let start = g.piece_offset(piece) as usize;
        let end = start + g.piece_size(piece).unwrap() as usize;
        assert_eq!(
            storage.read_piece(piece).unwrap(),
            built.content[start..end]
        );
    }
    storage.close().unwrap();
}

#[test]
fn a_corrupted_piece_fails_verification_and_is_not_marked() {
    let built = mixed_torrent();
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    let mut bad = built.content[16384..2 * 16384].to_vec();
    bad[5000] ^= 0x40;
    storage.write_block(1, 0, &bad).unwrap();
    assert_eq!(storage.verify_piece(1).unwrap(), PieceCheck::HashMismatch);
    assert!(!storage.has_piece(1));
    assert_eq!(storage.have().count(), 0);
    storage.close().unwrap();

    // Not named by the resume record either.
    let opened = dirs.open(&built);
    assert!(!opened.have.contains(1));
    let storage = opened.storage;
    storage
        .write_block(1, 0, &built.content[16384..2 * 16384])
        .unwrap();
    assert_eq!(storage.verify_piece(1).unwrap(), PieceCheck::Verified);
    assert!(storage.has_piece(1));
    storage.close().unwrap();
}

#[test]
fn verified_pieces_and_bad_ranges_are_refused() {
    let built = mixed_torrent();
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    download(&storage, &built, &scrambled_blocks(&built, 16384));
    let err = storage.write_block(0, 0, &[1, 2, 3]).unwrap_err();
    assert!(matches!(
        err,
        StorageError::PieceAlreadyVerified { piece: 0 }
    ));
    let n = built.torrent.info.num_pieces() as u32;
    assert!(matches!(
        storage.read_block(n, 0, 1),
        Err(StorageError::PieceOutOfRange { .. })
    ));
    assert!(matches!(
        storage.read_block(0, 16000, 385),
        Err(StorageError::BlockOutOfRange { .. })
    ));
    assert!(matches!(
        storage.read_block(0, 0, 0),
        Err(StorageError::BlockOutOfRange { .. })
    ));
    // Refused by its range, before 4 GiB are allocated for it.
    assert!(matches!(
        storage.read_block(0, 0, u32::MAX),
        Err(StorageError::BlockOutOfRange { .. })
    ));
    assert!(matches!(
        storage.verify_piece(n),
        Err(StorageError::PieceOutOfRange { .. })
    ));
    // The data on disk is untouched by the refused write.
    assert_files_match(dirs.download.path(), &built);
}

#[test]
fn a_symlink_planted_at_a_file_path_is_refused() {
    let built = mixed_torrent();
    let dirs = Dirs::new();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    fs::create_dir_all(dirs.download.path().join("mixed")).unwrap();
    std::os::unix::fs::symlink(&victim, dirs.download.path().join("mixed/a.txt")).unwrap();

    let err = dirs
        .open_with(&built, StorageConfig::default())
        .unwrap_err();
    assert!(matches!(err, StorageError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("a.txt"), "{err}");
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(fs::metadata(&victim).unwrap().len(), 8, "not extended");
}

#[test]
fn a_symlink_planted_at_a_directory_is_refused() {
    let built = mixed_torrent();
    let dirs = Dirs::new();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(dirs.download.path().join("mixed")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dirs.download.path().join("mixed/d")).unwrap();

    let err = dirs
        .open_with(&built, StorageConfig::default())
        .unwrap_err();
    assert!(matches!(err, StorageError::Symlink { .. }), "{err}");
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
}

#[test]
fn a_fifo_at_a_file_path_is_refused() {
    let built = mixed_torrent();
    let dirs = Dirs::new();
    fs::create_dir_all(dirs.download.path().join("mixed")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dirs.download.path().join("mixed/a.txt"))
        .status();
    if !status.is_ok_and(|s| s.success()) {
        return; // no mkfifo on this system
    }
    let err = dirs
        .open_with(&built, StorageConfig::default())
        .unwrap_err();
    assert!(matches!(err, StorageError::WrongFileType { .. }), "{err}");
}

#[test]
fn open_files_stay_bounded_with_many_files() {
    let names: Vec<&'static str> = (0..300)
        .map(|i| &*Box::leak(format!("f{i:03}").into_boxed_str()))
        .collect();
    let entries: Vec<Entry> = names
        .iter()
        .map(|n| Entry::File(Box::leak(Box::new([*n])), 1000))
        .collect();
    let built = multi_file("lots", &entries, 16384, 30);
    let dirs = Dirs::new();
    let config = StorageConfig {
        open_files: 8,
        ..StorageConfig::default()
    };
    let storage = dirs.open_with(&built, config.clone()).unwrap().storage;
    download(&storage, &built, &scrambled_blocks(&built, 5000));
    assert!(storage.open_file_count() <= 8);
    assert!(storage.have().is_full());
    assert_files_match(dirs.download.path(), &built);
    storage.close().unwrap();

    // Evicted files were synced and recorded: a clean reopen trusts everything.
    let reopened = dirs.open_with(&built, config).unwrap();
    assert!(reopened.have.is_full());
    assert_eq!(reopened.report.rechecked, 0);
}

#[test]
fn storage_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Storage>();

    let built = multi_file(
        "shared",
        &[Entry::File(&["x"], 300_000), Entry::File(&["y"], 99_999)],
        16384,
        40,
    );
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    let blocks = scrambled_blocks(&built, 16384);
    let g = built.torrent.info.geometry();
    std::thread::scope(|s| {
        for part in blocks.chunks(blocks.len().div_ceil(4)) {
            let (storage, built) = (&storage, &built);
            s.spawn(move || {
                for &(piece, offset, len) in part {
                    let start = (g.piece_offset(piece) + u64::from(offset)) as usize;
                    storage
                        .write_block(piece, offset, &built.content[start..start + len])
                        .unwrap();
                }
            });
        }
    });
    for piece in 0..g.num_pieces() {
        assert_eq!(storage.verify_piece(piece).unwrap(), PieceCheck::Verified);
    }
    assert_files_match(dirs.download.path(), &built);
    storage.close().unwrap();
}

#[test]
fn a_block_written_during_verification_is_never_trusted() {
    let built = multi_file("race", &[Entry::File(&["x"], 1 << 20)], 1 << 20, 50);
    for round in 0..20 {
        let dirs = Dirs::new();
        let storage = dirs.open(&built).storage;
        storage.write_block(0, 0, &built.content).unwrap();
        let mut bad = built.content[..16384].to_vec();
        bad[round] ^= 1;
        std::thread::scope(|s| {
            // A hostile duplicate of block 0, racing the verification.
            s.spawn(|| {
                for _ in 0..50 {
                    match storage.write_block(0, 0, &bad) {
                        Ok(()) => std::thread::yield_now(),
                        Err(StorageError::PieceAlreadyVerified { .. }) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            });
            for _ in 0..20 {
                match storage.verify_piece(0) {
                    Ok(PieceCheck::Verified) => break,
                    Ok(PieceCheck::HashMismatch) | Err(StorageError::PieceBusy { .. }) => {
                        let _ = storage.write_block(0, 0, &built.content[..16384]);
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        });
        if storage.has_piece(0) {
            assert!(
                storage.read_piece(0).unwrap() == built.content,
                "round {round}: a verified piece holds other bytes"
            );
        }
    }
}

#[test]
fn a_piece_that_is_all_padding_is_verified_at_open() {
    let built = multi_file(
        "padded",
        &[Entry::Pad(16384), Entry::File(&["x"], 20_000)],
        16384,
        60,
    );
    let dirs = Dirs::new();
    let opened = dirs.open(&built);
    assert!(
        opened.have.contains(0),
        "zeros hash to the pad piece's hash"
    );
    assert_eq!(opened.have.count(), 1);
    assert_eq!(opened.storage.read_piece(0).unwrap(), vec![0; 16384]);
}

/// Writes `piece` of `content` (64 KiB pieces) as 16 KiB blocks in the order of `offsets`,
/// with `bad` (an offset) flipped in one byte.
fn write_piece(storage: &Storage, content: &[u8], piece: u32, offsets: &[u32], bad: Option<u32>) {
    let base = piece as usize * 65536;
    for &offset in offsets {
        let at = base + offset as usize;
        let mut block = content[at..at + 16384].to_vec();
        if bad == Some(offset) {
            block[100] ^= 0x01;
        }
        storage.write_block(piece, offset, &block).unwrap();
    }
}

#[test]
fn a_piece_hashed_as_written_is_judged_on_the_bytes_on_disk() {
    let built = multi_file("inorder", &[Entry::File(&["x"], 6 * 65536)], 65536, 60);
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    let content = &built.content;
    let in_order = [0, 16384, 32768, 49152];

    // In order and right.
    write_piece(&storage, content, 0, &in_order, None);
    assert_eq!(storage.verify_piece(0).unwrap(), PieceCheck::Verified);

    // In order with one bad block: refused; downloaded again in order: accepted.
    write_piece(&storage, content, 1, &in_order, Some(32768));
    assert_eq!(storage.verify_piece(1).unwrap(), PieceCheck::HashMismatch);
    write_piece(&storage, content, 1, &in_order, None);
    assert_eq!(storage.verify_piece(1).unwrap(), PieceCheck::Verified);

    // A block already hashed is overwritten with bad bytes: the disk holds them, so refused.
    write_piece(&storage, content, 2, &in_order, None);
    write_piece(&storage, content, 2, &[16384], Some(16384));
    assert_eq!(storage.verify_piece(2).unwrap(), PieceCheck::HashMismatch);

    // A bad block overwritten with the right bytes (a second copy from another peer): the
    // disk is right, so accepted.
    write_piece(&storage, content, 3, &in_order, Some(0));
    write_piece(&storage, content, 3, &[0], None);
    assert_eq!(storage.verify_piece(3).unwrap(), PieceCheck::Verified);

    // Out of order, and a piece with a block that failed to arrive at first.
    write_piece(&storage, content, 4, &[49152, 0, 32768, 16384], None);
    assert_eq!(storage.verify_piece(4).unwrap(), PieceCheck::Verified);
    write_piece(&storage, content, 5, &[0, 32768, 49152, 16384], Some(16384));
    assert_eq!(storage.verify_piece(5).unwrap(), PieceCheck::HashMismatch);

    let have: Vec<u32> = storage.have().iter().collect();
    assert_eq!(have, [0, 1, 3, 4]);
    let file = dirs.download.path().join("inorder").join("x");
    let on_disk = fs::read(&file).unwrap();
    assert_eq!(on_disk[..2 * 65536], content[..2 * 65536]);
    assert_eq!(on_disk[3 * 65536..5 * 65536], content[3 * 65536..5 * 65536]);

    // The in-order hash is what a verification of such a piece relies on: bytes changed
    // behind the storage's back after the writes are not read (a piece written out of order
    // would be read back, and refused).
    write_piece(&storage, content, 5, &in_order, None);
    let mut tampered = on_disk;
    tampered[5 * 65536 + 7] ^= 0xff;
    fs::write(&file, &tampered).unwrap();
    // The fresh download of piece 5 (after its mismatch) started a new in-order hash.
    assert_eq!(storage.verify_piece(5).unwrap(), PieceCheck::Verified);
    storage.close().unwrap();
}
