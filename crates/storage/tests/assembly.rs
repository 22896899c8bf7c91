//! Pieces assembled in memory: nothing reaches the disk before its piece is verified, a piece
//! that fails its hash never does, and past the memory cap pieces are written through.

mod support;

use std::fs;

use shoal_metainfo::BLOCK_SIZE;
use shoal_storage::{PieceCheck, StorageConfig};
use support::{Dirs, single_file};

const B: usize = BLOCK_SIZE as usize;

fn on_disk(dirs: &Dirs, name: &str, range: std::ops::Range<usize>) -> Vec<u8> {
    fs::read(dirs.download.path().join(name)).unwrap()[range].to_vec()
}

#[test]
fn a_piece_reaches_the_disk_only_once_verified() {
    // Four pieces of two blocks each.
    let built = single_file("mem.bin", 8 * B, 2 * B, 11);
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    storage
        .write_block(1, 0, &built.content[2 * B..3 * B])
        .unwrap();
    storage
        .write_block(1, B as u32, &built.content[3 * B..4 * B])
        .unwrap();
    assert_eq!(
        on_disk(&dirs, "mem.bin", 2 * B..4 * B),
        vec![0; 2 * B],
        "blocks wait in memory"
    );
    assert_eq!(storage.verify_piece(1).unwrap(), PieceCheck::Verified);
    assert_eq!(
        on_disk(&dirs, "mem.bin", 2 * B..4 * B),
        built.content[2 * B..4 * B]
    );
    assert!(storage.has_piece(1));
    assert_eq!(
        storage.read_block(1, 100, 50).unwrap(),
        built.content[2 * B + 100..2 * B + 150]
    );
    storage.close().unwrap();
}

#[test]
fn a_corrupt_piece_is_never_written_and_can_be_fetched_again() {
    let built = single_file("bad.bin", 4 * B, 2 * B, 12);
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    storage.write_block(0, 0, &built.content[..B]).unwrap();
    storage.write_block(0, B as u32, &vec![0xAB; B]).unwrap();
    assert_eq!(storage.verify_piece(0).unwrap(), PieceCheck::HashMismatch);
    assert_eq!(on_disk(&dirs, "bad.bin", 0..2 * B), vec![0; 2 * B]);
    assert!(!storage.has_piece(0));
    // Refetched, the piece verifies.
    storage
        .write_block(0, B as u32, &built.content[B..2 * B])
        .unwrap();
    storage.write_block(0, 0, &built.content[..B]).unwrap();
    assert_eq!(storage.verify_piece(0).unwrap(), PieceCheck::Verified);
    assert_eq!(on_disk(&dirs, "bad.bin", 0..2 * B), built.content[..2 * B]);
    storage.close().unwrap();
}

#[test]
fn a_piece_verified_before_all_its_blocks_came_fails() {
    let built = single_file("early.bin", 4 * B, 2 * B, 13);
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    storage.write_block(0, 0, &built.content[..B]).unwrap();
    assert_eq!(storage.verify_piece(0).unwrap(), PieceCheck::HashMismatch);
    storage.close().unwrap();
}

#[test]
fn past_the_memory_cap_pieces_go_through_to_disk_and_still_verify() {
    let built = single_file("cap.bin", 8 * B, 2 * B, 14);
    let dirs = Dirs::new();
    // Room for one piece.
    let config = StorageConfig {
        assembly_bytes: 2 * B,
        ..StorageConfig::default()
    };
    let storage = dirs.open_with(&built, config).unwrap().storage;
    // Pieces 0 and 1 start together: 0 is held in memory, 1 goes to disk at once.
    storage.write_block(0, 0, &built.content[..B]).unwrap();
    storage
        .write_block(1, 0, &built.content[2 * B..3 * B])
        .unwrap();
    assert_eq!(on_disk(&dirs, "cap.bin", 0..B), vec![0; B]);
    assert_eq!(
        on_disk(&dirs, "cap.bin", 2 * B..3 * B),
        built.content[2 * B..3 * B]
    );
    // Piece 0 verifies and frees its room; piece 1 stays on disk to the end.
    storage
        .write_block(0, B as u32, &built.content[B..2 * B])
        .unwrap();
    assert_eq!(storage.verify_piece(0).unwrap(), PieceCheck::Verified);
    storage
        .write_block(1, B as u32, &built.content[3 * B..4 * B])
        .unwrap();
    assert_eq!(storage.verify_piece(1).unwrap(), PieceCheck::Verified);
    assert_eq!(on_disk(&dirs, "cap.bin", 0..4 * B), built.content[..4 * B]);
    storage.close().unwrap();
}

#[test]
fn a_late_duplicate_block_after_verification_is_refused() {
    let built = single_file("dup.bin", 2 * B, 2 * B, 15);
    let dirs = Dirs::new();
    let storage = dirs.open(&built).storage;
    storage.write_block(0, 0, &built.content[..B]).unwrap();
    storage
        .write_block(0, B as u32, &built.content[B..])
        .unwrap();
    assert_eq!(storage.verify_piece(0).unwrap(), PieceCheck::Verified);
    assert!(matches!(
        storage.write_block(0, 0, &[0; B]),
        Err(shoal_storage::StorageError::PieceAlreadyVerified { piece: 0 })
    ));
    assert_eq!(on_disk(&dirs, "dup.bin", 0..2 * B), built.content);
    storage.close().unwrap();
}
