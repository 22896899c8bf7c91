//! The content of a run: generated deterministically from the scenario's seed, hashed into a
//! `.torrent`, linked into every seeder's directory and compared byte for byte with what the
//! nodes downloaded. Generating and comparing stop early when asked to (a `cancel` flag
//! checked every 64 KiB); hashing, once started, runs to its end.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use shoal_metainfo::{CreateOptions, Torrent, create_torrent};

use crate::scenario::Content;

/// Name of the single content file (or of the directory when there are several files).
pub const CONTENT_NAME: &str = "content";
/// Name of the `.torrent` written next to the content.
pub const TORRENT_FILE: &str = "content.torrent";

/// Why the content could not be made, linked or compared.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Hashing the content into a torrent failed (e.g. a piece length that is not a power of
    /// two from 16 KiB up).
    #[error("cannot make the torrent of {path}: {source}")]
    Torrent {
        path: PathBuf,
        #[source]
        source: shoal_metainfo::MetainfoError,
    },
    /// Generating the content was cancelled (the run was interrupted).
    #[error("generating the content was cancelled")]
    Cancelled,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContentError + '_ {
    move |source| ContentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The generated content and its torrent.
#[derive(Debug, Clone)]
pub struct PreparedContent {
    /// The file, or the directory of files, that the torrent describes.
    pub path: PathBuf,
    /// The `.torrent` file.
    pub torrent_path: PathBuf,
    pub torrent: Torrent,
    pub size: u64,
    pub num_pieces: u32,
}

impl PreparedContent {
    /// A bare magnet link (info-hash only): nodes must find peers on their own.
    pub fn bare_magnet(&self) -> String {
        format!("magnet:?xt=urn:btih:{}", self.torrent.info_hash.to_hex())
    }
}

/// The sizes of the `files` files that make up `size` bytes: equal, the last one takes the rest.
pub fn file_sizes(size: u64, files: u32) -> Vec<u64> {
    let files = u64::from(files.max(1));
    let each = size / files;
    let mut sizes = vec![each; files as usize];
    if let Some(last) = sizes.last_mut() {
        *last += size - each * files;
    }
    sizes
}

/// Writes the content into `dir` (as `content` or `content/file-NNN.bin`) and its torrent as
/// `dir/content.torrent`. The same seed always gives the same bytes and the same info-hash.
/// Setting `cancel` stops the writing within 64 KiB ([`ContentError::Cancelled`]).
pub fn prepare(
    dir: &Path,
    content: &Content,
    seed: u64,
    cancel: &AtomicBool,
) -> Result<PreparedContent, ContentError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(CONTENT_NAME);
    if content.files <= 1 {
        write_random(&path, content.size, seed, cancel)?;
    } else {
        std::fs::create_dir_all(&path).map_err(io_err(&path))?;
        for (i, len) in file_sizes(content.size, content.files)
            .into_iter()
            .enumerate()
        {
            let file = path.join(format!("file-{i:03}.bin"));
            write_random(&file, len, seed.wrapping_add(i as u64), cancel)?;
        }
    }
    let options = CreateOptions {
        piece_length: content.piece_length,
        created_by: Some("shoal-testnet".to_owned()),
        ..CreateOptions::default()
    };
    let created =
        create_torrent(&path, &options, &mut |_| {}).map_err(|source| ContentError::Torrent {
            path: path.clone(),
            source,
        })?;
    let torrent_path = dir.join(TORRENT_FILE);
    std::fs::write(&torrent_path, &created.bytes).map_err(io_err(&torrent_path))?;
    let num_pieces = u32::try_from(created.torrent.info.num_pieces()).unwrap_or(u32::MAX);
    Ok(PreparedContent {
        path,
        torrent_path,
        size: created.torrent.info.total_size,
        num_pieces,
        torrent: created.torrent,
    })
}

fn write_random(path: &Path, len: u64, seed: u64, cancel: &AtomicBool) -> Result<(), ContentError> {
    let mut out = std::io::BufWriter::new(File::create(path).map_err(io_err(path))?);
    let mut rng = Xorshift::new(seed);
    let mut left = len;
    let mut chunk = vec![0u8; 1 << 16];
    while left > 0 {
        if cancel.load(Ordering::Relaxed) {
            return Err(ContentError::Cancelled);
        }
        let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        rng.fill(&mut chunk[..n]);
        out.write_all(&chunk[..n]).map_err(io_err(path))?;
        left -= n as u64;
    }
    out.flush().map_err(io_err(path))
}

/// xorshift64*: the same stream as `shoal_testkit::pseudo_random` for the same seed, produced
/// a chunk at a time so large content never sits in memory.
#[derive(Debug)]
struct Xorshift {
    state: u64,
    /// Bytes of the current word not handed out yet.
    word: [u8; 8],
    used: usize,
}

impl Xorshift {
    fn new(seed: u64) -> Self {
        Self {
            state: seed | 1,
            word: [0; 8],
            used: 8,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for byte in buf {
            if self.used == 8 {
                self.state ^= self.state >> 12;
                self.state ^= self.state << 25;
                self.state ^= self.state >> 27;
                self.word = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
                self.used = 0;
            }
            *byte = self.word[self.used];
            self.used += 1;
        }
    }
}

/// Makes `dst` hold the same files as `src`: hard links where the file system allows, copies
/// otherwise.
pub fn link_or_copy(src: &Path, dst: &Path) -> Result<(), ContentError> {
    if src.is_dir() {
        std::fs::create_dir_all(dst).map_err(io_err(dst))?;
        for entry in std::fs::read_dir(src).map_err(io_err(src))? {
            let entry = entry.map_err(io_err(src))?;
            link_or_copy(&entry.path(), &dst.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).map_err(io_err(dst))?;
    }
    Ok(())
}

/// Whether `copy` holds exactly the files of `original`, byte for byte: `Some(false)` when a
/// file differs or cannot be read (a missing file is not an error), `None` when `cancel` was
/// set before the answer was known.
pub fn same_content(original: &Path, copy: &Path, cancel: &AtomicBool) -> Option<bool> {
    if original.is_dir() {
        let Ok(entries) = std::fs::read_dir(original) else {
            return Some(false);
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            match same_content(&original.join(&name), &copy.join(&name), cancel) {
                Some(true) => {}
                other => return other,
            }
        }
        return Some(true);
    }
    same_file(original, copy, cancel).unwrap_or(Some(false))
}

fn same_file(a: &Path, b: &Path, cancel: &AtomicBool) -> std::io::Result<Option<bool>> {
    let (fa, fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(Some(false));
    }
    let (mut ra, mut rb) = (BufReader::new(fa), BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = ra.read(&mut ba)?;
        if n == 0 {
            return Ok(Some(true));
        }
        rb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(Some(false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_matches_testkit() {
        let mut rng = Xorshift::new(42);
        let mut a = vec![0u8; 13];
        let mut b = vec![0u8; 1000];
        rng.fill(&mut a);
        rng.fill(&mut b);
        a.extend_from_slice(&b);
        assert_eq!(a, shoal_testkit::pseudo_random(1013, 42));
    }

    #[test]
    fn sizes_add_up() {
        assert_eq!(file_sizes(10, 3), vec![3, 3, 4]);
        assert_eq!(file_sizes(10, 1), vec![10]);
        assert_eq!(file_sizes(10, 0), vec![10]);
    }

    #[test]
    fn deterministic_and_comparable() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Content {
            size: 100_000,
            piece_length: Some(16384),
            files: 3,
        };
        let go = AtomicBool::new(false);
        let a = prepare(&dir.path().join("a"), &spec, 7, &go).unwrap();
        let b = prepare(&dir.path().join("b"), &spec, 7, &go).unwrap();
        assert_eq!(a.torrent.info_hash, b.torrent.info_hash);
        assert_eq!(a.size, 100_000);
        assert_eq!(a.num_pieces, 7);
        assert_eq!(same_content(&a.path, &b.path, &go), Some(true));
        let linked = dir.path().join("linked");
        link_or_copy(&a.path, &linked).unwrap();
        assert_eq!(same_content(&a.path, &linked, &go), Some(true));
        std::fs::remove_file(linked.join("file-001.bin")).unwrap();
        std::fs::write(linked.join("file-001.bin"), b"x").unwrap();
        assert_eq!(same_content(&a.path, &linked, &go), Some(false));
        let missing = dir.path().join("missing");
        assert_eq!(same_content(&a.path, &missing, &go), Some(false));
        assert!(a.bare_magnet().starts_with("magnet:?xt=urn:btih:"));
    }

    #[test]
    fn generating_and_comparing_stop_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Content {
            size: 1 << 20,
            piece_length: None,
            files: 1,
        };
        let stop = AtomicBool::new(true);
        let error = prepare(&dir.path().join("a"), &spec, 1, &stop).unwrap_err();
        assert!(matches!(error, ContentError::Cancelled), "{error}");
        let go = AtomicBool::new(false);
        let a = prepare(&dir.path().join("b"), &spec, 1, &go).unwrap();
        assert_eq!(same_content(&a.path, &a.path, &stop), None);
        assert_eq!(same_content(&a.path, &a.path, &go), Some(true));
    }
}
