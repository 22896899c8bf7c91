//! Fetching a torrent's info dictionary (`/shoal/metadata/1`) from one peer, the sans-IO half:
//! which piece to ask for next, checking every Data against what was asked and announced, and
//! the final SHA-1 check against the info-hash.

use shoal_metainfo::InfoHash;
use shoal_wire::{MAX_METADATA_LEN, METADATA_PIECE_LEN};

/// Why a metadata fetch from a peer failed. Every one of them means: give up on this peer
/// for this torrent (and for [`MetadataError::HashMismatch`], ban it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The peer answered a request with Reject: it does not have the metadata.
    #[error("peer rejected metadata piece {piece}: it does not serve this torrent's metadata")]
    Rejected { piece: u32 },

    /// The peer announced an info dictionary over [`MAX_METADATA_LEN`].
    #[error("peer announced metadata of {len} bytes, over the {MAX_METADATA_LEN}-byte limit")]
    TooLarge { len: u32 },

    /// The peer announced an info dictionary of 0 bytes.
    #[error("peer announced metadata of 0 bytes")]
    Empty,

    /// A Data's `total_len` differs from the first one the peer sent.
    #[error("peer changed the metadata size from {was} to {now} bytes")]
    SizeChanged { was: u32, now: u32 },

    /// A Data for a piece we did not ask for (or past the last piece).
    #[error("peer sent metadata piece {piece}, which was not requested")]
    UnexpectedPiece { piece: u32 },

    /// A Data for a piece that had already arrived.
    #[error("peer sent metadata piece {piece} twice")]
    DuplicatePiece { piece: u32 },

    /// A piece of the wrong size: every piece is [`METADATA_PIECE_LEN`] bytes but the last,
    /// which holds the remainder.
    #[error("metadata piece {piece} has {got} bytes, expected {expected}")]
    WrongLength {
        piece: u32,
        expected: u32,
        got: usize,
    },

    /// [`MetadataFetch::finish`] before every piece arrived.
    #[error("metadata incomplete: {received} of {num_pieces} pieces received")]
    Incomplete { received: u32, num_pieces: u32 },

    /// [`MetadataFetch::finish`] before the first piece told the size.
    #[error("metadata incomplete: no piece received yet")]
    SizeUnknown,

    /// The assembled bytes are not the info dictionary of this torrent: the peer sent wrong
    /// data.
    #[error("metadata from peer hashes to {got}, not the info-hash {expected}")]
    HashMismatch { expected: InfoHash, got: InfoHash },
}

/// The size, once the first Data has told it, and the buffer it allows.
#[derive(Debug)]
struct Sized {
    total_len: u32,
    /// `total_len` bytes, allocated once the size is known.
    bytes: Vec<u8>,
    requested: Vec<bool>,
    received: Vec<bool>,
    received_pieces: u32,
    /// Lowest piece that may still be unrequested.
    cursor: u32,
}

/// Assembles the info dictionary fetched from ONE peer (the node runs several in parallel and
/// bans the peer whose bytes fail the hash).
///
/// Ask for [`MetadataFetch::next_request`] in a loop until `None`, send those requests, and
/// feed each answer to [`MetadataFetch::on_data`] or [`MetadataFetch::on_reject`]; after a
/// Data, ask for more requests again (the first Data tells the size and unlocks the rest).
/// When `on_data` returns `Ok(true)`, [`MetadataFetch::finish`] returns the checked bytes.
/// Nothing is allocated before the first Data, and then exactly its `total_len` (at most
/// [`MAX_METADATA_LEN`]) bytes.
#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: InfoHash,
    /// Piece 0 handed out before the size is known.
    first_requested: bool,
    sized: Option<Sized>,
}

/// Pieces of an info dictionary of `total_len` bytes (at most 1024).
fn num_pieces(total_len: u32) -> u32 {
    total_len.div_ceil(METADATA_PIECE_LEN)
}

/// Bytes of piece `piece` (which must be in range) of an info dictionary of `total_len` bytes.
fn piece_len(total_len: u32, piece: u32) -> u32 {
    let start = u64::from(piece) * u64::from(METADATA_PIECE_LEN);
    (u64::from(total_len).saturating_sub(start)).min(u64::from(METADATA_PIECE_LEN)) as u32
}

impl MetadataFetch {
    /// A fetch of the info dictionary whose SHA-1 is `info_hash`; nothing requested yet.
    pub fn new(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            first_requested: false,
            sized: None,
        }
    }

    /// The info-hash the bytes must match.
    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The next piece to request, or `None` when nothing more should be requested now.
    /// Before the size is known only piece 0 is handed out (once); after that, every missing
    /// piece once, in order. Call in a loop until `None` to pipeline.
    pub fn next_request(&mut self) -> Option<u32> {
        let Some(sized) = &mut self.sized else {
            if self.first_requested {
                return None;
            }
            self.first_requested = true;
            return Some(0);
        };
        let n = num_pieces(sized.total_len);
        while sized.cursor < n {
            let piece = sized.cursor;
            sized.cursor += 1;
            let index = piece as usize;
            if !sized.requested[index] && !sized.received[index] {
                sized.requested[index] = true;
                return Some(piece);
            }
        }
        None
    }

    /// A Data message arrived. Checks that `total_len` is 1..=[`MAX_METADATA_LEN`] and equal
    /// to the first one seen, that the piece was requested and has not arrived yet, and that
    /// `data` is exactly [`METADATA_PIECE_LEN`] bytes (the last piece: exactly the
    /// remainder). Returns `Ok(true)` when every piece is in. After an error, give up on this
    /// peer: the fetch's state is unchanged, but the peer is not to be trusted.
    pub fn on_data(
        &mut self,
        piece: u32,
        total_len: u32,
        data: &[u8],
    ) -> Result<bool, MetadataError> {
        if total_len == 0 {
            return Err(MetadataError::Empty);
        }
        if total_len > MAX_METADATA_LEN {
            return Err(MetadataError::TooLarge { len: total_len });
        }
        let unexpected = MetadataError::UnexpectedPiece { piece };
        match &self.sized {
            Some(sized) if sized.total_len != total_len => {
                return Err(MetadataError::SizeChanged {
                    was: sized.total_len,
                    now: total_len,
                });
            }
            Some(sized) => {
                let index = piece as usize;
                if piece >= num_pieces(total_len) || !sized.requested[index] {
                    return Err(unexpected);
                }
                if sized.received[index] {
                    return Err(MetadataError::DuplicatePiece { piece });
                }
            }
            // Before the size is known only piece 0 can have been requested.
            None if piece != 0 || !self.first_requested => return Err(unexpected),
            None => {}
        }
        let expected = piece_len(total_len, piece);
        if data.len() != expected as usize {
            return Err(MetadataError::WrongLength {
                piece,
                expected,
                got: data.len(),
            });
        }

        // Every check passed: only now allocate, and only total_len bytes.
        let sized = self.sized.get_or_insert_with(|| {
            let n = num_pieces(total_len) as usize;
            let mut requested = vec![false; n];
            requested[0] = true;
            Sized {
                total_len,
                bytes: vec![0; total_len as usize],
                requested,
                received: vec![false; n],
                received_pieces: 0,
                cursor: 1,
            }
        });
        let start = piece as usize * METADATA_PIECE_LEN as usize;
        sized.bytes[start..start + data.len()].copy_from_slice(data);
        sized.received[piece as usize] = true;
        sized.received_pieces += 1;
        Ok(sized.received_pieces == num_pieces(total_len))
    }

    /// A Reject arrived for `piece`: the peer will not serve the metadata. Returns the error
    /// to report; give up on this peer.
    pub fn on_reject(&mut self, piece: u32) -> MetadataError {
        MetadataError::Rejected { piece }
    }

    /// Whether every piece has arrived.
    pub fn is_complete(&self) -> bool {
        self.sized
            .as_ref()
            .is_some_and(|s| s.received_pieces == num_pieces(s.total_len))
    }

    /// The whole info dictionary, only if its SHA-1 equals the info-hash
    /// ([`MetadataError::HashMismatch`] otherwise). Call once [`MetadataFetch::on_data`]
    /// returned `Ok(true)`; an error if pieces are missing.
    pub fn finish(self) -> Result<Vec<u8>, MetadataError> {
        let Some(sized) = self.sized else {
            return Err(MetadataError::SizeUnknown);
        };
        let n = num_pieces(sized.total_len);
        if sized.received_pieces != n {
            return Err(MetadataError::Incomplete {
                received: sized.received_pieces,
                num_pieces: n,
            });
        }
        let got = InfoHash::of_info_bytes(&sized.bytes);
        if got != self.info_hash {
            return Err(MetadataError::HashMismatch {
                expected: self.info_hash,
                got,
            });
        }
        Ok(sized.bytes)
    }

    /// Bytes received so far, and the total once known (for progress).
    pub fn progress(&self) -> (u64, Option<u64>) {
        match &self.sized {
            None => (0, None),
            Some(s) => {
                let received = (0..num_pieces(s.total_len))
                    .filter(|&p| s.received[p as usize])
                    .map(|p| u64::from(piece_len(s.total_len, p)))
                    .sum();
                (received, Some(u64::from(s.total_len)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
