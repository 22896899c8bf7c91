//! Checking every field of a message against the torrent a stream serves.

use shoal_metainfo::{InfoHash, PieceGeometry};

use crate::error::WireError;
use crate::limits::{MAX_REQUEST_LEN_ACCEPTED, MAX_REQUEST_LEN_SENT};
use crate::message::{Handshake, HaveState, Message, MessageKind, PROTOCOL_VERSION};

/// The rules of one piece-exchange stream: the torrent it serves (info-hash) and that torrent's
/// piece geometry. A decoded frame is well-formed; a message that passed
/// [`check_incoming`](Self::check_incoming) is also safe to act on: every index is in range and
/// every block lies inside its piece and within the size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validator {
    info_hash: InfoHash,
    geometry: PieceGeometry,
}

impl Validator {
    pub fn new(info_hash: InfoHash, geometry: PieceGeometry) -> Self {
        Self {
            info_hash,
            geometry,
        }
    }

    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    pub fn geometry(&self) -> PieceGeometry {
        self.geometry
    }

    /// Checks a message received from a peer. Blocks it names (Request, Cancel, Reject, Piece)
    /// may be up to [`MAX_REQUEST_LEN_ACCEPTED`] bytes. A handshake for another torrent is
    /// [`WireError::UnknownInfoHash`], so the node can close that stream with that reason.
    pub fn check_incoming(&self, message: &Message) -> Result<(), WireError> {
        self.check(message, MAX_REQUEST_LEN_ACCEPTED)
    }

    /// Checks a message before sending it: the same rules, except that the Requests and
    /// Cancels we send name at most [`MAX_REQUEST_LEN_SENT`] bytes (one 16 KiB block).
    pub fn check_outgoing(&self, message: &Message) -> Result<(), WireError> {
        self.check(message, MAX_REQUEST_LEN_SENT)
    }

    fn check(&self, message: &Message, request_limit: u32) -> Result<(), WireError> {
        let kind = message.kind();
        match message {
            Message::Handshake(handshake) => self.check_handshake(handshake),
            Message::Have(piece) => self.check_piece(kind, *piece).map(drop),
            Message::Request(r) | Message::Cancel(r) => {
                self.check_block(kind, r.piece, r.offset, u64::from(r.length), request_limit)
            }
            Message::Reject(r) => self.check_block(
                kind,
                r.piece,
                r.offset,
                u64::from(r.length),
                MAX_REQUEST_LEN_ACCEPTED,
            ),
            Message::Piece(b) => self.check_block(
                kind,
                b.piece,
                b.offset,
                b.data.len() as u64,
                MAX_REQUEST_LEN_ACCEPTED,
            ),
            Message::KeepAlive
            | Message::Interested
            | Message::NotInterested
            | Message::Choke
            | Message::Unchoke => Ok(()),
        }
    }

    /// Checks a peer's handshake: our protocol version, this torrent, and a have-state that fits
    /// it (a bitfield of the right length with zero spare bits).
    pub fn check_handshake(&self, handshake: &Handshake) -> Result<(), WireError> {
        // Version first: under another version the other fields may mean something else.
        if handshake.version != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion {
                theirs: handshake.version,
                ours: PROTOCOL_VERSION,
            });
        }
        if handshake.info_hash != self.info_hash {
            return Err(WireError::UnknownInfoHash {
                theirs: handshake.info_hash,
                ours: self.info_hash,
            });
        }
        match &handshake.have {
            HaveState::All | HaveState::None => Ok(()),
            HaveState::Bitfield(bits) => {
                let num_pieces = self.geometry.num_pieces();
                if bits.len() != num_pieces {
                    Err(WireError::BitfieldLength {
                        len: bits.len(),
                        num_pieces,
                    })
                } else if bits.has_spare_bits() {
                    Err(WireError::BitfieldSpareBits { len: bits.len() })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The size of `piece`, or why it does not exist.
    fn check_piece(&self, kind: MessageKind, piece: u32) -> Result<u32, WireError> {
        self.geometry
            .piece_size(piece)
            .ok_or(WireError::PieceOutOfRange {
                kind,
                piece,
                num_pieces: self.geometry.num_pieces(),
            })
    }

    fn check_block(
        &self,
        kind: MessageKind,
        piece: u32,
        offset: u32,
        length: u64,
        limit: u32,
    ) -> Result<(), WireError> {
        if length > u64::from(limit) {
            return Err(WireError::LengthOverLimit {
                kind,
                piece,
                offset,
                length,
                limit,
            });
        }
        if length == 0 {
            return Err(WireError::EmptyBlock {
                kind,
                piece,
                offset,
            });
        }
        let piece_size = self.check_piece(kind, piece)?;
        if u64::from(offset) + length > u64::from(piece_size) {
            return Err(WireError::BlockOutsidePiece {
                kind,
                piece,
                offset,
                length,
                piece_size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
