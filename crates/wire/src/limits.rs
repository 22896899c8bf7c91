//! The limits that bound what a peer can make us buffer, allocate or serve.
//!
//! The frame limit is checked on the 4-byte length prefix, before the frame's bytes are read or
//! any buffer is grown for them; the block limits are checked by [`crate::Validator`].

use shoal_metainfo::{BLOCK_SIZE, MAX_PIECES};

/// Bytes of the big-endian `u32` length prefix in front of every frame.
pub const LEN_PREFIX_LEN: usize = 4;

/// Largest block length we serve: a Request, Cancel or Reject we receive, or a Piece's data,
/// may name at most this many bytes (128 KiB, libtorrent's and BEP 3's customary ceiling).
pub const MAX_REQUEST_LEN_ACCEPTED: u32 = 128 * 1024;

/// Largest block length we ask for: the Requests (and Cancels) we send name at most one
/// [`BLOCK_SIZE`] (16 KiB), the size every client serves.
pub const MAX_REQUEST_LEN_SENT: u32 = BLOCK_SIZE;

/// Bytes of the bitfield of the largest torrent shoal accepts
/// ([`shoal_metainfo::MAX_PIECES`] = 2^21 pieces, so 256 KiB).
pub const MAX_BITFIELD_BYTES: usize = MAX_PIECES.div_ceil(8) as usize;

/// Largest frame payload (the bytes after the length prefix) we send or accept: a Handshake
/// carrying [`MAX_BITFIELD_BYTES`] of bitfield, plus room for its fields. A Piece of
/// [`MAX_REQUEST_LEN_ACCEPTED`] bytes fits with room to spare.
pub const MAX_FRAME_LEN: usize = MAX_BITFIELD_BYTES + 64;

/// Worst-case bytes of a Handshake payload besides the bitfield bytes, with bincode's varints:
/// message tag (1) + version u16 (3) + info-hash (20) + have tag (1) + piece count u32 (5) +
/// byte count u64 (9).
pub(crate) const MAX_HANDSHAKE_OVERHEAD: usize = 1 + 3 + 20 + 1 + 5 + 9;

/// Worst-case bytes of a Piece payload besides the data: tag (1) + piece u32 (5) + offset u32 (5).
pub(crate) const MAX_PIECE_OVERHEAD: usize = 1 + 5 + 5;

const _: () = assert!(MAX_FRAME_LEN >= MAX_BITFIELD_BYTES + MAX_HANDSHAKE_OVERHEAD);
const _: () = assert!(MAX_FRAME_LEN >= MAX_REQUEST_LEN_ACCEPTED as usize + MAX_PIECE_OVERHEAD);
const _: () = assert!(MAX_FRAME_LEN <= u32::MAX as usize);
const _: () = assert!(MAX_REQUEST_LEN_SENT <= MAX_REQUEST_LEN_ACCEPTED);
