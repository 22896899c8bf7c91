//! Making a `.torrent` from a file or a directory.

mod hasher;
mod source;

use std::num::NonZeroUsize;
use std::path::Path;

use crate::bencode::{self, Value};
use crate::error::MetainfoError;
use crate::torrent::Torrent;

pub use hasher::HashProgress;
use source::Source;

/// Smallest and largest piece length chosen automatically.
pub const MIN_AUTO_PIECE_LENGTH: u64 = 16 << 10;
pub const MAX_AUTO_PIECE_LENGTH: u64 = 16 << 20;
/// Largest piece length that may be asked for.
pub const MAX_CREATE_PIECE_LENGTH: u64 = 512 << 20;
/// The automatic piece length keeps the piece count at or below this (and above half of it).
const TARGET_MAX_PIECES: u64 = 2000;

/// What to put in a new torrent besides the content.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// A power of two from 16 KiB to 512 MiB; `None` picks one ([`auto_piece_length`]).
    pub piece_length: Option<u64>,
    /// Tracker URLs, each its own tier (the first is also `announce`).
    pub trackers: Vec<String>,
    pub comment: Option<String>,
    /// BEP 27 private flag (part of the info dictionary, so it changes the info-hash).
    pub private: bool,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch. Left out by default so that the same content and options
    /// always give the same file.
    pub creation_date: Option<i64>,
    /// Hashing threads; `None` uses every core.
    pub threads: Option<NonZeroUsize>,
}

/// A freshly made torrent: the file's bytes and their parsed form.
#[derive(Debug, Clone)]
pub struct CreatedTorrent {
    pub bytes: Vec<u8>,
    pub torrent: Torrent,
}

/// The smallest power of two from 16 KiB to 16 MiB that makes at most 2000 pieces, so a torrent
/// has 1000–2000 pieces unless it is very small or very large.
pub fn auto_piece_length(total_size: u64) -> u64 {
    let mut length = MIN_AUTO_PIECE_LENGTH;
    while length < MAX_AUTO_PIECE_LENGTH && total_size.div_ceil(length) > TARGET_MAX_PIECES {
        length *= 2;
    }
    length
}

/// Hashes `path` (a file or a directory) and builds its `.torrent`. `progress` is called on
/// this thread as pieces are hashed.
pub fn create_torrent(
    path: &Path,
    options: &CreateOptions,
    progress: &mut dyn FnMut(HashProgress),
) -> Result<CreatedTorrent, MetainfoError> {
    if let Some(value) = options.piece_length {
        if !value.is_power_of_two()
            || !(MIN_AUTO_PIECE_LENGTH..=MAX_CREATE_PIECE_LENGTH).contains(&value)
        {
            return Err(MetainfoError::InvalidCreatePieceLength { value });
        }
    }
    let source = Source::scan(path)?;
    let piece_length = options
        .piece_length
        .unwrap_or_else(|| auto_piece_length(source.total_size));
    let threads = options
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let pieces = hasher::hash_pieces(
        &source.files,
        source.total_size,
        piece_length,
        threads,
        progress,
    )?;
    let bytes = encode_torrent(&source, piece_length, pieces, options);
    let torrent = Torrent::from_bytes(&bytes)?;
    Ok(CreatedTorrent { bytes, torrent })
}

fn encode_torrent(
    source: &Source,
    piece_length: u64,
    pieces: Vec<u8>,
    options: &CreateOptions,
) -> Vec<u8> {
    let as_int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let mut info = vec![
        ("name", Value::bytes(source.name.clone())),
        ("piece length", as_int(piece_length)),
        ("pieces", Value::Bytes(pieces)),
    ];
    if source.single {
        info.push(("length", as_int(source.total_size)));
    } else {
        let files = source.files.iter().map(|f| {
            let path = f
                .components
                .iter()
                .map(|c| Value::bytes(c.clone()))
                .collect();
            Value::dict([("length", as_int(f.length)), ("path", Value::List(path))])
        });
        info.push(("files", Value::List(files.collect())));
    }
    if options.private {
        info.push(("private", Value::Int(1)));
    }
    let mut top = vec![("info", Value::dict(info))];
    if let Some(first) = options.trackers.first() {
        top.push(("announce", first.as_str().into()));
    }
    if options.trackers.len() > 1 {
        let tiers = options
            .trackers
            .iter()
            .map(|t| Value::List(vec![t.as_str().into()]));
        top.push(("announce-list", Value::List(tiers.collect())));
    }
    if let Some(comment) = &options.comment {
        top.push(("comment", comment.as_str().into()));
    }
    if let Some(created_by) = &options.created_by {
        top.push(("created by", created_by.as_str().into()));
    }
    if let Some(date) = options.creation_date {
        top.push(("creation date", Value::Int(date)));
    }
    bencode::encode(&Value::dict(top))
}

#[cfg(test)]
mod tests;
