use std::fs;
use std::num::NonZeroUsize;

use sha1::{Digest, Sha1};

use super::*;

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn create(path: &Path, options: &CreateOptions) -> Result<CreatedTorrent, MetainfoError> {
    create_torrent(path, options, &mut |_| {})
}

/// SHA-1 of each piece of `data`, concatenated: what the torrent must hold.
fn expected_pieces(data: &[u8], piece_length: usize) -> Vec<[u8; 20]> {
    data.chunks(piece_length)
        .map(|c| Sha1::digest(c).into())
        .collect()
}

#[test]
fn auto_piece_length_targets_1000_to_2000_pieces() {
    assert_eq!(auto_piece_length(1), 16 << 10);
    assert_eq!(auto_piece_length(1 << 30), 1 << 20);
    for size in [40u64 << 20, 1 << 30, 3 << 30, 30 << 30] {
        let pieces = size.div_ceil(auto_piece_length(size));
        assert!((1000..=2000).contains(&pieces), "{size}: {pieces}");
        assert!(auto_piece_length(size).is_power_of_two());
    }
    // Past 2000 x 16 MiB the piece length stays at 16 MiB.
    assert_eq!(auto_piece_length(100 << 30), 16 << 20);
    assert_eq!(auto_piece_length(u64::MAX / 2), 16 << 20);
}

#[test]
fn single_file_hashes_match() {
    let dir = tempfile::tempdir().unwrap();
    let data = content(100_000, 1);
    let path = dir.path().join("file.bin");
    fs::write(&path, &data).unwrap();
    let options = CreateOptions {
        piece_length: Some(16384),
        ..CreateOptions::default()
    };
    let created = create(&path, &options).unwrap();
    let info = &created.torrent.info;
    assert_eq!(info.name, "file.bin");
    assert!(!info.multi_file);
    assert_eq!(info.total_size, 100_000);
    let expected = expected_pieces(&data, 16384);
    assert_eq!(info.num_pieces(), expected.len());
    for (i, hash) in expected.iter().enumerate() {
        assert_eq!(info.piece_hash(i).as_ref(), Some(hash), "piece {i}");
    }
}

#[test]
fn directory_is_sorted_relative_and_spans_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("album");
    fs::create_dir_all(root.join("b/deep")).unwrap();
    fs::create_dir_all(root.join("a")).unwrap();
    let files = [
        ("z.txt", content(7000, 1)),
        ("a/one", content(20000, 2)),
        ("b/deep/two", content(0, 3)),
        ("b/three", content(33333, 4)),
    ];
    for (name, data) in &files {
        fs::write(root.join(name), data).unwrap();
    }
    let options = CreateOptions {
        piece_length: Some(16384),
        threads: NonZeroUsize::new(3),
        ..CreateOptions::default()
    };
    let created = create(&root, &options).unwrap();
    let info = &created.torrent.info;
    assert!(info.multi_file);
    let paths: Vec<&str> = info.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "album/a/one",
            "album/b/deep/two",
            "album/b/three",
            "album/z.txt"
        ]
    );
    // Pieces run across file boundaries in that order.
    let mut all = Vec::new();
    for name in ["a/one", "b/deep/two", "b/three", "z.txt"] {
        all.extend(fs::read(root.join(name)).unwrap());
    }
    let expected = expected_pieces(&all, 16384);
    let got: Vec<[u8; 20]> = (0..info.num_pieces())
        .filter_map(|i| info.piece_hash(i))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn same_content_same_bytes_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    fs::write(&path, content(300_000, 9)).unwrap();
    let one = CreateOptions {
        threads: NonZeroUsize::new(1),
        ..CreateOptions::default()
    };
    let many = CreateOptions {
        threads: NonZeroUsize::new(8),
        ..CreateOptions::default()
    };
    assert_eq!(
        create(&path, &one).unwrap().bytes,
        create(&path, &many).unwrap().bytes
    );
}

#[test]
fn options_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    fs::write(&path, content(1000, 0)).unwrap();
    let plain = create(&path, &CreateOptions::default()).unwrap();
    let options = CreateOptions {
        trackers: vec!["http://a/announce".into(), "udp://b:1".into()],
        comment: Some("a comment".into()),
        private: true,
        created_by: Some("shoal test".into()),
        creation_date: Some(1_700_000_000),
        ..CreateOptions::default()
    };
    let t = create(&path, &options).unwrap().torrent;
    assert_eq!(
        t.trackers,
        vec![
            vec!["http://a/announce".to_owned()],
            vec!["udp://b:1".to_owned()]
        ]
    );
    assert_eq!(t.comment.as_deref(), Some("a comment"));
    assert_eq!(t.created_by.as_deref(), Some("shoal test"));
    assert_eq!(t.creation_date, Some(1_700_000_000));
    assert!(t.info.private);
    // The private flag is part of the info dictionary; the rest is not.
    assert_ne!(t.info_hash, plain.torrent.info_hash);
    assert!(plain.torrent.creation_date.is_none());
}

#[test]
fn progress_reaches_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    fs::write(&path, content(10 << 20, 5)).unwrap();
    let mut seen = Vec::new();
    let options = CreateOptions {
        piece_length: Some(1 << 16),
        ..CreateOptions::default()
    };
    create_torrent(&path, &options, &mut |p| seen.push(p)).unwrap();
    assert!(seen.len() > 1);
    assert!(
        seen.windows(2)
            .all(|w| w[0].bytes_hashed < w[1].bytes_hashed)
    );
    assert_eq!(
        seen.last().map(|p| (p.bytes_hashed, p.total_bytes)),
        Some((10 << 20, 10 << 20))
    );
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let empty_file = dir.path().join("empty");
    fs::write(&empty_file, b"").unwrap();
    let e = create(&empty_file, &CreateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds no data (0 bytes)"), "{e}");

    let empty_dir = dir.path().join("nothing");
    fs::create_dir(&empty_dir).unwrap();
    let e = create(&empty_dir, &CreateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("directory holds no files"), "{e}");

    let e = create(&dir.path().join("missing"), &CreateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing") && e.contains("No such file"), "{e}");

    fs::write(dir.path().join("data"), b"x").unwrap();
    for bad in [0, 1000, 8192, 1 << 30] {
        let options = CreateOptions {
            piece_length: Some(bad),
            ..CreateOptions::default()
        };
        let e = create(&dir.path().join("data"), &options).unwrap_err();
        assert!(matches!(e, MetainfoError::InvalidCreatePieceLength { value } if value == bad));
    }
}

#[test]
fn symlink_loops_are_refused_and_file_links_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(dir.path().join("outside.txt"), b"linked content").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("link.txt")).unwrap();
    let t = create(&root, &CreateOptions::default()).unwrap().torrent;
    assert_eq!(t.info.total_size, 14);
    std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
    let e = create(&root, &CreateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("link back to a directory"), "{e}");
}
