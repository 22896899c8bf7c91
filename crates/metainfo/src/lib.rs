//! shoal-metainfo: what a torrent *is*, independent of how it travels.
//!
//! It owns bencode ([`bencode`]), `.torrent` files (BEP 3, with BEP 12 tiers, BEP 27 private,
//! BEP 47 pad files, and the v1 half of BEP 52 hybrids: [`Torrent`], [`Info`]), the
//! [`InfoHash`], magnet links ([`Magnet`]), safe file paths ([`path`]) and making new torrents
//! with parallel piece hashing ([`create_torrent`]). It does no networking and keeps no state.
//!
//! Every decoder here is bounded (input size, nesting depth, value count, piece and file counts)
//! and every failure is a [`MetainfoError`] that says what is wrong.
//!
//! ```
//! use shoal_metainfo::{Magnet, Torrent};
//!
//! # fn main() -> Result<(), shoal_metainfo::MetainfoError> {
//! let pieces = [0u8; 20];
//! let mut file = b"d4:infod6:lengthi5e4:name5:hello12:piece lengthi16384e6:pieces20:".to_vec();
//! file.extend_from_slice(&pieces);
//! file.extend_from_slice(b"ee");
//! let torrent = Torrent::from_bytes(&file)?;
//! assert_eq!(torrent.info.name, "hello");
//! let magnet: Magnet = torrent.magnet().to_string().parse()?;
//! assert_eq!(magnet.info_hash, torrent.info_hash);
//! # Ok(())
//! # }
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bencode;
mod buffer;
mod create;
mod error;
mod geometry;
mod info_hash;
mod magnet;
pub mod path;
mod torrent;

pub use buffer::AlignedBuf;
pub use create::{
    CreateOptions, CreatedTorrent, HashProgress, MAX_AUTO_PIECE_LENGTH, MAX_CREATE_PIECE_LENGTH,
    MIN_AUTO_PIECE_LENGTH, auto_piece_length, create_torrent,
};
pub use error::{BencodeError, BencodeErrorKind, MetainfoError};
pub use geometry::{BLOCK_SIZE, PieceGeometry};
pub use info_hash::InfoHash;
pub use magnet::{MAX_MAGNET_LEN, MAX_MAGNET_LIST, Magnet};
pub use torrent::{
    FileAttr, FileEntry, Info, MAX_FILES, MAX_PIECE_LENGTH, MAX_PIECES, MAX_TRACKERS, Torrent,
};
