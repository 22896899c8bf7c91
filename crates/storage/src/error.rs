//! The one error type of shoal-storage.

use std::io;
use std::path::PathBuf;

/// What went wrong, with the path and the operation, so a user can act on it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A system call on `path` failed.
    #[error("{path}: could not {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// A symbolic link sits where the torrent's file or directory belongs. It is never followed,
    /// so that a planted link cannot redirect writes outside the download directory.
    #[error(
        "{path}: is a symbolic link; refusing to follow it (remove it, or choose another download directory)"
    )]
    Symlink { path: PathBuf },
    /// Something other than a regular file (or a directory) is in the way.
    #[error("{path}: exists but is not a {expected}; move it out of the way")]
    WrongFileType {
        path: PathBuf,
        expected: &'static str,
    },
    /// A file path from the torrent is not a plain relative path (shoal-metainfo sanitizes
    /// paths, so this means a bug or a hand-built `Info`).
    #[error("unsafe path in torrent: {path:?} ({reason}); refusing to write it")]
    UnsafePath { path: String, reason: &'static str },
    /// A file holds less data than the torrent says it should (changed by another program?).
    #[error(
        "{path}: is shorter than the {needed} bytes the torrent needs (was it truncated by another program?)"
    )]
    FileTooShort { path: PathBuf, needed: u64 },
    #[error("piece {piece} does not exist (the torrent has {num_pieces} pieces)")]
    PieceOutOfRange { piece: u32, num_pieces: u32 },
    #[error("{length} bytes at offset {offset} do not fit in piece {piece} of {piece_size} bytes")]
    BlockOutOfRange {
        piece: u32,
        offset: u32,
        length: usize,
        piece_size: u32,
    },
    /// Writing into a verified piece could only corrupt it (e.g. a late end-game duplicate).
    #[error("piece {piece} is already verified; the block was not written")]
    PieceAlreadyVerified { piece: u32 },
    /// Blocks kept arriving for the piece while it was being hashed, so no verdict was
    /// reached; verify it again once its writes are done.
    #[error("piece {piece} was written to while being verified; verify it again")]
    PieceBusy { piece: u32 },
    /// The storage was opened read-only ([`crate::StorageConfig::read_only`]), to seed data
    /// that must not change.
    #[error("piece {piece}: the torrent's files are open read-only; nothing is written to them")]
    ReadOnly { piece: u32 },
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        let path = path.into();
        if source.raw_os_error() == Some(libc::ELOOP) {
            return StorageError::Symlink { path };
        }
        StorageError::Io {
            path,
            action,
            source,
        }
    }
}
