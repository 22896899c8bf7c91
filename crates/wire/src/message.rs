//! The messages of `/shoal/pieces/1`, one piece-exchange stream per peer and torrent.

use std::fmt;

use bytes::Bytes;
use shoal_metainfo::InfoHash;

use crate::bitfield::Bitfield;

/// The libp2p protocol name of the piece exchange.
pub const PIECES_PROTOCOL: &str = "/shoal/pieces/1";
/// The message format version carried in the handshake.
pub const PROTOCOL_VERSION: u16 = 1;

/// What a peer has when the stream opens (BEP 6's have-all / have-none, or a bitfield).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaveState {
    All,
    None,
    Bitfield(Bitfield),
}

/// The first message on a stream, in both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub version: u16,
    pub info_hash: InfoHash,
    pub have: HaveState,
}

/// A block of a piece: what Request, Cancel and Reject name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    pub piece: u32,
    pub offset: u32,
    pub length: u32,
}

/// A block's data, as carried by a Piece message. `data` is a view into the received frame:
/// decoding does not copy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub piece: u32,
    pub offset: u32,
    pub data: Bytes,
}

impl Block {
    /// The reference this block answers.
    pub fn block_ref(&self) -> BlockRef {
        BlockRef {
            piece: self.piece,
            offset: self.offset,
            length: self.data.len() as u32,
        }
    }
}

/// Every message of `/shoal/pieces/1`, with BitTorrent's semantics (BEP 3, and BEP 6's Reject:
/// a request that will not be served, e.g. after a choke, is answered with Reject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Handshake(Handshake),
    /// Liveness only; framed as an empty (zero-length) frame, as in BEP 3.
    KeepAlive,
    Have(u32),
    Interested,
    NotInterested,
    Choke,
    Unchoke,
    Request(BlockRef),
    Piece(Block),
    Cancel(BlockRef),
    Reject(BlockRef),
}

impl Message {
    /// Which message this is, without its fields (for errors, logs and metrics).
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Handshake(_) => MessageKind::Handshake,
            Message::KeepAlive => MessageKind::KeepAlive,
            Message::Have(_) => MessageKind::Have,
            Message::Interested => MessageKind::Interested,
            Message::NotInterested => MessageKind::NotInterested,
            Message::Choke => MessageKind::Choke,
            Message::Unchoke => MessageKind::Unchoke,
            Message::Request(_) => MessageKind::Request,
            Message::Piece(_) => MessageKind::Piece,
            Message::Cancel(_) => MessageKind::Cancel,
            Message::Reject(_) => MessageKind::Reject,
        }
    }
}

/// The kind of a [`Message`]; displays as the lowercase name used in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Handshake,
    KeepAlive,
    Have,
    Interested,
    NotInterested,
    Choke,
    Unchoke,
    Request,
    Piece,
    Cancel,
    Reject,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Handshake => "handshake",
            MessageKind::KeepAlive => "keep-alive",
            MessageKind::Have => "have",
            MessageKind::Interested => "interested",
            MessageKind::NotInterested => "not-interested",
            MessageKind::Choke => "choke",
            MessageKind::Unchoke => "unchoke",
            MessageKind::Request => "request",
            MessageKind::Piece => "piece",
            MessageKind::Cancel => "cancel",
            MessageKind::Reject => "reject",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
