//! The one error type of this crate, and the bencode error it wraps.

use std::path::PathBuf;

/// What went wrong while decoding bencode, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bencode at byte {offset}: {kind}")]
pub struct BencodeError {
    /// Byte offset into the input where the problem was found.
    pub offset: usize,
    /// What is wrong there.
    pub kind: BencodeErrorKind,
}

/// The ways bencode input can be malformed or exceed a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeErrorKind {
    #[error("input ends in the middle of a value")]
    UnexpectedEnd,
    #[error("unexpected byte 0x{0:02x}")]
    UnexpectedByte(u8),
    #[error("integer has no digits")]
    EmptyInteger,
    #[error("integer has a leading zero")]
    LeadingZero,
    #[error("integer is -0")]
    NegativeZero,
    #[error("integer does not fit in 64 bits")]
    IntegerOverflow,
    #[error("byte string length has a leading zero")]
    LengthLeadingZero,
    #[error("byte string of {len} bytes runs past the end of the input")]
    LengthPastEnd { len: u64 },
    #[error("dictionary key is not a byte string")]
    KeyNotString,
    #[error("dictionary key is out of sorted order")]
    UnsortedKey,
    #[error("duplicate dictionary key")]
    DuplicateKey,
    #[error("dictionary key has no value")]
    MissingValue,
    #[error("{count} unexpected bytes after the end of the value")]
    TrailingBytes { count: usize },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("more than {limit} values")]
    TooManyValues { limit: usize },
    #[error("input of {len} bytes is larger than the limit of {limit} bytes")]
    TooLarge { len: usize, limit: usize },
}

/// Every failure of shoal-metainfo: decoding, validating, creating, magnet links.
#[derive(Debug, thiserror::Error)]
pub enum MetainfoError {
    #[error(transparent)]
    Bencode(#[from] BencodeError),
    #[error("torrent file is not a bencoded dictionary")]
    NotADictionary,
    #[error("missing or invalid 'info' dictionary")]
    MissingInfo,
    #[error("missing or invalid name (info.name must be a non-empty byte string)")]
    InvalidName,
    #[error("info.piece length is missing")]
    MissingPieceLength,
    #[error("info.piece length {value} is invalid: it must be between 1 and {max} bytes")]
    InvalidPieceLength { value: i64, max: u64 },
    #[error("info.pieces is missing or not a byte string")]
    MissingPieces,
    #[error("info.pieces length {len} is not a multiple of 20")]
    PiecesLength { len: usize },
    #[error("info.pieces holds {actual} hashes but the total size needs {expected}")]
    PieceCountMismatch { expected: u64, actual: u64 },
    #[error("torrent has {count} pieces, more than the limit of {limit}")]
    TooManyPieces { count: u64, limit: u64 },
    #[error("{field} is missing, negative or not an integer")]
    InvalidLength { field: String },
    #[error("total size overflows 64 bits")]
    TotalSizeOverflow,
    #[error("torrent holds no data (total size is 0)")]
    EmptyTorrent,
    #[error("info.files is empty")]
    NoFiles,
    #[error("info.files has {count} entries, more than the limit of {limit}")]
    TooManyFiles { count: usize, limit: usize },
    #[error("info.files[{index}]: {reason}")]
    InvalidFile { index: usize, reason: String },
    #[error("info has both 'length' and 'files'")]
    LengthAndFiles,
    #[error(
        "v2-only torrent: shoal supports v1 and hybrid torrents; BEP 52 (v2) alone is not supported"
    )]
    V2Only,
    #[error("hybrid torrent: the v1 and v2 file lists disagree: {reason}")]
    HybridMismatch { reason: String },
    #[error("invalid v2 file tree: {reason}")]
    InvalidFileTree { reason: String },
    #[error("invalid info-hash {input:?}: {reason}")]
    InvalidInfoHash { input: String, reason: &'static str },
    #[error("invalid magnet link: {reason}")]
    InvalidMagnet { reason: String },
    /// The I/O error is part of the message rather than a `source`, so it is printed once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {reason}")]
    InvalidSource { path: PathBuf, reason: String },
    #[error("piece length {value} is invalid: it must be a power of two from 16 KiB to 512 MiB")]
    InvalidCreatePieceLength { value: u64 },
    #[error("{path} changed while it was being hashed: {reason}")]
    SourceChanged { path: PathBuf, reason: String },
}

impl MetainfoError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn file(index: usize, reason: impl Into<String>) -> Self {
        Self::InvalidFile {
            index,
            reason: reason.into(),
        }
    }

    pub(crate) fn magnet(reason: impl Into<String>) -> Self {
        Self::InvalidMagnet {
            reason: reason.into(),
        }
    }
}
