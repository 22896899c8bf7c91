//! Read-only storage, for seeding data that belongs to the user: files are never created,
//! extended or written, and what is missing simply lacks its pieces.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use shoal_storage::{StorageConfig, StorageError};
use support::{Dirs, Entry, multi_file};

fn read_only() -> StorageConfig {
    StorageConfig {
        read_only: true,
        ..StorageConfig::default()
    }
}

#[test]
fn complete_data_is_found_and_served_without_write_access() {
    let built = multi_file(
        "album",
        &[
            Entry::File(&["a.bin"], 40_000),
            Entry::File(&["b.bin"], 30_000),
        ],
        16384,
        5,
    );
    let dirs = Dirs::new();
    let root = dirs.download.path().join("album");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("a.bin"), &built.content[..40_000]).unwrap();
    fs::write(root.join("b.bin"), &built.content[40_000..]).unwrap();
    for file in ["a.bin", "b.bin"] {
        fs::set_permissions(root.join(file), fs::Permissions::from_mode(0o444)).unwrap();
    }
    let before = fs::metadata(root.join("a.bin"))
        .unwrap()
        .modified()
        .unwrap();

    let opened = dirs.open_with(&built, read_only()).unwrap();
    assert!(opened.have.is_full());
    let storage = opened.storage;
    assert_eq!(storage.read_piece(2).unwrap(), built.content[32768..49152]);
    assert!(matches!(
        storage.write_block(0, 0, &[1, 2, 3]),
        Err(StorageError::ReadOnly { piece: 0 })
    ));
    storage.close().unwrap();
    assert_eq!(
        fs::metadata(root.join("a.bin"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
}

#[test]
fn short_and_missing_files_are_left_alone_and_lack_their_pieces() {
    let built = multi_file(
        "partial",
        &[
            Entry::File(&["a.bin"], 40_000),
            Entry::File(&["b.bin"], 30_000),
        ],
        16384,
        6,
    );
    let dirs = Dirs::new();
    let root = dirs.download.path().join("partial");
    fs::create_dir(&root).unwrap();
    // a.bin is 10 bytes short; b.bin does not exist.
    fs::write(root.join("a.bin"), &built.content[..39_990]).unwrap();

    let opened = dirs.open_with(&built, read_only()).unwrap();
    // Pieces 0 and 1 lie wholly in a.bin's first 32768 bytes; everything after is incomplete.
    assert_eq!(opened.have.iter().collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(fs::metadata(root.join("a.bin")).unwrap().len(), 39_990);
    assert!(!root.join("b.bin").exists());
    opened.storage.close().unwrap();
}
