//! The serde form of a frame's payload, kept apart from the public [`Message`] so that the public
//! types stay plain and the encoding can change here alone.
//!
//! The variant order is the wire tag (a bincode varint): never reorder or remove a variant, only
//! append, and bump [`crate::PROTOCOL_VERSION`] when the meaning of a tag changes.

use serde::{Deserialize, Serialize, Serializer};
use shoal_metainfo::InfoHash;

use crate::bitfield::Bitfield;
use crate::error::WireError;
use crate::message::{BlockRef, Handshake, HaveState, Message};

/// One frame's payload. Borrows the bitfield bytes from the frame being decoded or the message
/// being encoded, so neither direction copies them more than once.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Payload<'a> {
    /// Tag 0.
    Handshake {
        version: u16,
        info_hash: [u8; 20],
        #[serde(borrow)]
        have: WireHave<'a>,
    },
    /// Tag 1.
    Have { piece: u32 },
    /// Tag 2.
    Interested,
    /// Tag 3.
    NotInterested,
    /// Tag 4.
    Choke,
    /// Tag 5.
    Unchoke,
    /// Tag 6.
    Request {
        piece: u32,
        offset: u32,
        length: u32,
    },
    /// Tag 7. The block's data is not part of the bincode value: it is the rest of the frame,
    /// so that it is appended once when encoding and sliced, not copied, when decoding.
    Piece { piece: u32, offset: u32 },
    /// Tag 8.
    Cancel {
        piece: u32,
        offset: u32,
        length: u32,
    },
    /// Tag 9.
    Reject {
        piece: u32,
        offset: u32,
        length: u32,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireHave<'a> {
    /// Tag 0.
    All,
    /// Tag 1.
    None,
    /// Tag 2: the piece count, then the bitfield bytes (varint byte count + raw bytes).
    Bitfield {
        pieces: u32,
        #[serde(borrow, serialize_with = "raw_bytes")]
        bits: &'a [u8],
    },
}

/// Serde's `[u8]` impl goes byte by byte; `serialize_bytes` lets bincode write the slice in one
/// call. Both give the same bytes on the wire (length varint, then the raw bytes).
fn raw_bytes<S: Serializer>(bits: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bits)
}

impl<'a> Payload<'a> {
    /// The payload of every message but KeepAlive (an empty frame) and Piece's data (appended
    /// raw after this header).
    pub(crate) fn of(message: &'a Message) -> Option<Self> {
        let block = |r: &BlockRef| (r.piece, r.offset, r.length);
        Some(match message {
            Message::KeepAlive => return None,
            Message::Handshake(h) => Payload::Handshake {
                version: h.version,
                info_hash: h.info_hash.0,
                have: match &h.have {
                    HaveState::All => WireHave::All,
                    HaveState::None => WireHave::None,
                    HaveState::Bitfield(b) => WireHave::Bitfield {
                        pieces: b.len(),
                        bits: b.as_bytes(),
                    },
                },
            },
            Message::Have(piece) => Payload::Have { piece: *piece },
            Message::Interested => Payload::Interested,
            Message::NotInterested => Payload::NotInterested,
            Message::Choke => Payload::Choke,
            Message::Unchoke => Payload::Unchoke,
            Message::Request(r) => {
                let (piece, offset, length) = block(r);
                Payload::Request {
                    piece,
                    offset,
                    length,
                }
            }
            Message::Piece(b) => Payload::Piece {
                piece: b.piece,
                offset: b.offset,
            },
            Message::Cancel(r) => {
                let (piece, offset, length) = block(r);
                Payload::Cancel {
                    piece,
                    offset,
                    length,
                }
            }
            Message::Reject(r) => {
                let (piece, offset, length) = block(r);
                Payload::Reject {
                    piece,
                    offset,
                    length,
                }
            }
        })
    }

    /// The message this payload stands for; for a Piece only its header, as the caller slices
    /// the data from the frame. Copies the bitfield bytes, bounded by the frame limit.
    pub(crate) fn decode(self) -> Result<Decoded, WireError> {
        let block = |piece, offset, length| BlockRef {
            piece,
            offset,
            length,
        };
        Ok(Decoded::Message(match self {
            Payload::Handshake {
                version,
                info_hash,
                have,
            } => Message::Handshake(Handshake {
                version,
                info_hash: InfoHash(info_hash),
                have: match have {
                    WireHave::All => HaveState::All,
                    WireHave::None => HaveState::None,
                    WireHave::Bitfield { pieces, bits } => {
                        HaveState::Bitfield(bitfield(pieces, bits)?)
                    }
                },
            }),
            Payload::Have { piece } => Message::Have(piece),
            Payload::Interested => Message::Interested,
            Payload::NotInterested => Message::NotInterested,
            Payload::Choke => Message::Choke,
            Payload::Unchoke => Message::Unchoke,
            Payload::Request {
                piece,
                offset,
                length,
            } => Message::Request(block(piece, offset, length)),
            Payload::Cancel {
                piece,
                offset,
                length,
            } => Message::Cancel(block(piece, offset, length)),
            Payload::Reject {
                piece,
                offset,
                length,
            } => Message::Reject(block(piece, offset, length)),
            Payload::Piece { piece, offset } => return Ok(Decoded::Piece { piece, offset }),
        }))
    }
}

/// A decoded payload: a whole message, or the header of a Piece whose data follows it.
pub(crate) enum Decoded {
    Message(Message),
    Piece { piece: u32, offset: u32 },
}

/// Checks the byte count against the announced piece count before copying anything.
fn bitfield(pieces: u32, bits: &[u8]) -> Result<Bitfield, WireError> {
    let expected = u64::from(pieces).div_ceil(8);
    let mismatch = WireError::BitfieldBytes {
        pieces,
        expected,
        got: bits.len(),
    };
    if expected != bits.len() as u64 {
        return Err(mismatch);
    }
    Bitfield::from_bytes(bits.to_vec(), pieces).ok_or(mismatch)
}
