//! Helpers shared by the integration tests: torrents built in memory, content, and opening.

#![allow(dead_code)]

use std::path::Path;

use sha1::{Digest, Sha1};
use shoal_metainfo::Torrent;
use shoal_metainfo::bencode::{Value, encode};
use shoal_storage::{Opened, PieceCheck, Storage, StorageConfig};

pub use shoal_testkit::pseudo_random;

/// One entry of a multi-file torrent.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A data file: path below the torrent's name, and length.
    File(&'static [&'static str], usize),
    /// BEP 47 padding.
    Pad(usize),
    /// BEP 47 symbolic link (no data).
    Link(&'static [&'static str], &'static [&'static str]),
}

/// A torrent built in memory, with its piece-space content (pad ranges are zeros).
pub struct Built {
    pub torrent: Torrent,
    pub content: Vec<u8>,
}

fn strs(parts: &[&str]) -> Value {
    Value::List(parts.iter().map(|p| Value::from(*p)).collect())
}

fn hashes(content: &[u8], piece_length: usize) -> Vec<u8> {
    content
        .chunks(piece_length)
        .flat_map(|piece| <[u8; 20]>::from(Sha1::digest(piece)))
        .collect()
}

/// A multi-file torrent named `name` whose data files hold pseudo-random bytes.
pub fn multi_file(name: &str, entries: &[Entry], piece_length: usize, seed: u64) -> Built {
    let mut content = Vec::new();
    let mut files = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry {
            Entry::File(path, len) => {
                content.extend(pseudo_random(*len, seed + i as u64));
                files.push(Value::dict(vec![
                    ("length", Value::Int(*len as i64)),
                    ("path", strs(path)),
                ]));
            }
            Entry::Pad(len) => {
                content.extend(std::iter::repeat_n(0, *len));
                files.push(Value::dict(vec![
                    ("attr", "p".into()),
                    ("length", Value::Int(*len as i64)),
                    ("path", strs(&[".pad", &len.to_string()])),
                ]));
            }
            Entry::Link(path, target) => files.push(Value::dict(vec![
                ("attr", "l".into()),
                ("length", Value::Int(0)),
                ("path", strs(path)),
                ("symlink path", strs(target)),
            ])),
        }
    }
    let info = Value::dict(vec![
        ("name", name.into()),
        ("piece length", Value::Int(piece_length as i64)),
        ("pieces", Value::Bytes(hashes(&content, piece_length))),
        ("files", Value::List(files)),
    ]);
    let bytes = encode(&Value::dict(vec![("info", info)]));
    let torrent = Torrent::from_bytes(&bytes).expect("test torrent parses");
    Built { torrent, content }
}

/// A single-file torrent of `len` pseudo-random bytes.
pub fn single_file(name: &str, len: usize, piece_length: usize, seed: u64) -> Built {
    let content = pseudo_random(len, seed);
    let info = Value::dict(vec![
        ("length", Value::Int(len as i64)),
        ("name", name.into()),
        ("piece length", Value::Int(piece_length as i64)),
        ("pieces", Value::Bytes(hashes(&content, piece_length))),
    ]);
    let bytes = encode(&Value::dict(vec![("info", info)]));
    let torrent = Torrent::from_bytes(&bytes).expect("test torrent parses");
    Built { torrent, content }
}

/// A download directory and a state directory.
pub struct Dirs {
    pub download: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        Self {
            download: tempfile::tempdir().expect("temp dir"),
            state: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn open(&self, built: &Built) -> Opened {
        self.open_with(built, StorageConfig::default())
            .expect("storage opens")
    }

    pub fn open_with(
        &self,
        built: &Built,
        config: StorageConfig,
    ) -> Result<Opened, shoal_storage::StorageError> {
        Storage::open(
            built.torrent.info_hash,
            &built.torrent.info,
            self.download.path(),
            self.state.path(),
            config,
        )
    }

    pub fn resume_file(&self, built: &Built) -> std::path::PathBuf {
        self.state
            .path()
            .join(format!("{}.resume", built.torrent.info_hash.to_hex()))
    }

    pub fn marker_file(&self, built: &Built) -> std::path::PathBuf {
        self.state
            .path()
            .join(format!("{}.dirty", built.torrent.info_hash.to_hex()))
    }
}

/// Blocks of every piece as (piece, offset, length), in a scrambled but fixed order.
pub fn scrambled_blocks(built: &Built, block: usize) -> Vec<(u32, u32, usize)> {
    let g = built.torrent.info.geometry();
    let mut blocks = Vec::new();
    for piece in 0..g.num_pieces() {
        let size = g.piece_size(piece).expect("piece in range") as usize;
        for offset in (0..size).step_by(block) {
            blocks.push((piece, offset as u32, block.min(size - offset)));
        }
    }
    // A fixed permutation: stride through the list with a step coprime to its length.
    let n = blocks.len();
    let step = (1..n)
        .rev()
        .find(|s| gcd(*s, n) == 1 && *s > n / 3)
        .unwrap_or(1);
    (0..n).map(|i| blocks[(i * step) % n]).collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Writes `blocks` of `built`'s content and verifies each piece once its blocks are written,
/// writing a resume record whenever one is due.
/// Pieces verified already (e.g. found at open: a piece that is all padding) are skipped.
pub fn download(storage: &Storage, built: &Built, blocks: &[(u32, u32, usize)]) {
    let g = built.torrent.info.geometry();
    let mut remaining: Vec<u64> = (0..g.num_pieces())
        .map(|p| u64::from(g.piece_size(p).expect("piece")))
        .collect();
    let have = storage.have();
    for &(piece, offset, len) in blocks.iter().filter(|b| !have.contains(b.0)) {
        let start = (g.piece_offset(piece) + u64::from(offset)) as usize;
        storage
            .write_block(piece, offset, &built.content[start..start + len])
            .expect("block written");
        remaining[piece as usize] -= len as u64;
        if remaining[piece as usize] == 0 {
            assert_eq!(
                storage.verify_piece(piece).expect("piece read"),
                PieceCheck::Verified,
                "piece {piece}"
            );
            // As the node's disk thread does after each verification.
            storage.flush_if_due().expect("resume record written");
        }
    }
}

/// Checks that every data file under `root` holds exactly its slice of the content.
pub fn assert_files_match(root: &Path, built: &Built) {
    for file in built.torrent.info.data_files() {
        if file.attr.symlink.is_some() {
            continue;
        }
        let on_disk = std::fs::read(root.join(file.relative_path())).expect("file readable");
        let start = file.offset as usize;
        assert!(
            on_disk == built.content[start..start + file.length as usize],
            "{} differs",
            file.path
        );
    }
}
