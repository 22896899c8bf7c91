//! shoal-wire: every message on shoal's protocols, how it is framed, and the limits that keep a
//! peer from making us allocate or trust too much. Sans-IO: bytes in, messages out, and back.
//!
//! It owns the `/shoal/pieces/1` messages ([`Message`]), [`Bitfield`], the frame codec and the
//! validation of every field against a torrent's [`shoal_metainfo::PieceGeometry`]. It does no
//! I/O and keeps no connection state: shoal-swarm decides what to send, shoal-node moves bytes.

mod bitfield;
mod message;

pub use bitfield::Bitfield;
pub use message::{
    Block, BlockRef, Handshake, HaveState, Message, PIECES_PROTOCOL, PROTOCOL_VERSION,
};
