//! shoal-wire: every message on shoal's protocols, how it is framed, and the limits that keep a
//! peer from making us allocate or trust too much. Sans-IO: bytes in, messages out, and back.
//!
//! It owns the `/shoal/pieces/1` messages ([`Message`]), [`Bitfield`], the frame codec
//! ([`encode`], [`decode_frame`]) and the validation of every field against a torrent
//! ([`Validator`]); and the messages and framing of the two side protocols, peer exchange
//! (`/shoal/pex/1`: [`PexMessage`], [`encode_pex`], [`decode_pex`], [`decode_pex_frame`]) and
//! metadata exchange (`/shoal/metadata/1`: [`MetadataMessage`], [`encode_metadata`],
//! [`decode_metadata`], [`metadata_reply`]). It does no I/O and keeps no connection state
//! (which message may come when, e.g. the handshake first and once, is shoal-swarm's concern):
//! shoal-swarm decides what to send, shoal-node moves bytes.
//!
//! # Frame format
//!
//! ```text
//! frame    = len:u32 (big-endian) payload[len]
//! payload  = ""                                  KeepAlive (a zero-length frame, as in BEP 3)
//!          | bincode(tag, fields)                every other message
//!          | bincode(7, piece, offset) data      Piece: the block's data is the rest of the frame
//! ```
//!
//! The payload is bincode 2 with its standard configuration (little-endian varints: values up
//! to 250 take one byte). The tag is the message's position in this list: 0 Handshake
//! {version: u16, info-hash: 20 bytes, have}, 1 Have {piece}, 2 Interested, 3 NotInterested,
//! 4 Choke, 5 Unchoke, 6 Request {piece, offset, length}, 7 Piece {piece, offset} + data,
//! 8 Cancel, 9 Reject (both as Request). `have` is 0 all, 1 none, or 2 {piece count: u32,
//! byte count, bitfield bytes (high bit first, BEP 3)}. A payload must be used whole: trailing
//! bytes are an error. For example `Have(5)` is `00 00 00 02  01 05`.
//!
//! A Piece's data is appended after its header when encoding (one copy into the output buffer)
//! and sliced out of the received buffer when decoding (no copy: [`Block::data`] shares the
//! frame's memory).
//!
//! ## `/shoal/pex/1` and `/shoal/metadata/1`
//!
//! Both use the same `len:u32 (big-endian) payload[len]` frame, with bincode 2's standard
//! configuration, their own frame limit checked on the prefix, and trailing bytes refused:
//!
//! ```text
//! pex      = bincode(info-hash: 20 bytes,
//!                    added: [(peer-id: bytes, addrs: [bytes])],   at most 50, 8 addrs each
//!                    dropped: [peer-id: bytes])                   at most 50
//! metadata = bincode(0, info-hash, piece)                  Request
//!          | bincode(1, piece, total_len) data             Data: the rest of the frame
//!          | bincode(2, piece)                             Reject
//! ```
//!
//! Lists and byte strings are a varint count, then the items. Peer ids (1 to
//! [`PEX_MAX_PEER_ID_LEN`] bytes) and multiaddrs (1 to [`PEX_MAX_ADDR_LEN`] bytes) are libp2p's
//! binary forms; [`PexMessage::check`] applies every limit, on both sides, and decoding
//! borrows from the frame and caps every list, so it allocates no more than the frame holds
//! ([`PEX_MAX_FRAME_LEN`]: 58 172 bytes, exactly the largest valid message). Metadata pieces are
//! [`METADATA_PIECE_LEN`] (16 KiB) of an info dictionary of at most [`MAX_METADATA_LEN`]
//! (16 MiB), the last piece shorter; a Data's data is sliced from the frame, not copied, and
//! its `total_len` must be 1..=16 MiB and its data at most 16 KiB
//! ([`METADATA_MAX_FRAME_LEN`] = 16 KiB + 32). Assembling and hash-checking the pieces is
//! shoal-swarm's `MetadataFetch`.
//!
//! # Limits
//!
//! - [`MAX_FRAME_LEN`] (256 KiB + 64): the largest payload, enough for the handshake bitfield
//!   of a torrent with [`shoal_metainfo::MAX_PIECES`] pieces and for a Piece of
//!   [`MAX_REQUEST_LEN_ACCEPTED`] bytes. A length prefix over it fails at once, before the
//!   frame's bytes are read or any buffer grows for them.
//! - [`MAX_REQUEST_LEN_ACCEPTED`] (128 KiB): the largest block we serve or accept.
//! - [`MAX_REQUEST_LEN_SENT`] (16 KiB, [`shoal_metainfo::BLOCK_SIZE`]): the largest block we
//!   ask for.
//!
//! Decoding only checks the shape of a message; [`Validator::check_incoming`] checks its fields
//! against the torrent (indexes, offsets, lengths, bitfield size, version, info-hash). Every
//! failure is a [`WireError`] carrying the facts; nothing here panics on input.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use shoal_metainfo::{InfoHash, PieceGeometry};
//! use shoal_wire::{BlockRef, Message, Validator, WireError, decode_frame, encode};
//!
//! # fn main() -> Result<(), WireError> {
//! let geometry = PieceGeometry::new(256 * 1024, 1024 * 1024).unwrap(); // 4 pieces
//! let validator = Validator::new(InfoHash([7; 20]), geometry);
//!
//! // Sending side: check, then frame.
//! let request = Message::Request(BlockRef { piece: 3, offset: 16384, length: 16384 });
//! validator.check_outgoing(&request)?;
//! let mut out = BytesMut::new();
//! encode(&request, &mut out)?;
//! encode(&Message::Interested, &mut out)?;
//!
//! // Receiving side: bytes arrive in any chunks; take whole frames off the front.
//! let mut inbox = BytesMut::new();
//! let mut received = Vec::new();
//! for chunk in out.chunks(3) {
//!     inbox.extend_from_slice(chunk);
//!     while let Some(message) = decode_frame(&mut inbox)? {
//!         validator.check_incoming(&message)?;
//!         received.push(message);
//!     }
//! }
//! assert_eq!(received, [request, Message::Interested]);
//!
//! // A peer asking for too much gets an error that says so.
//! let greedy = Message::Request(BlockRef { piece: 0, offset: 0, length: 200_000 });
//! assert_eq!(
//!     validator.check_incoming(&greedy).unwrap_err().to_string(),
//!     "request for piece 0 offset 0 length 200000 exceeds the 131072-byte limit",
//! );
//! # Ok(())
//! # }
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bitfield;
mod codec;
mod error;
mod frame;
mod limits;
mod message;
mod metadata;
mod pex;
mod repr;
mod validate;

pub use bitfield::Bitfield;
pub use error::WireError;
pub use frame::{decode_frame, encode};
pub use limits::{
    LEN_PREFIX_LEN, MAX_BITFIELD_BYTES, MAX_FRAME_LEN, MAX_REQUEST_LEN_ACCEPTED,
    MAX_REQUEST_LEN_SENT,
};
pub use message::{
    Block, BlockRef, Handshake, HaveState, Message, MessageKind, PIECES_PROTOCOL, PROTOCOL_VERSION,
};
pub use metadata::{
    MAX_METADATA_LEN, METADATA_MAX_FRAME_LEN, METADATA_PIECE_LEN, METADATA_PROTOCOL,
    MetadataMessage, decode_metadata, encode_metadata, metadata_reply,
};
pub use pex::{
    PEX_MAX_ADDED, PEX_MAX_ADDR_LEN, PEX_MAX_ADDRS_PER_PEER, PEX_MAX_DROPPED, PEX_MAX_FRAME_LEN,
    PEX_MAX_PEER_ID_LEN, PEX_PROTOCOL, PexFrame, PexMessage, PexPeer, decode_pex, decode_pex_frame,
    encode_pex,
};
pub use validate::Validator;
