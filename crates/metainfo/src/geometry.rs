//! The piece space of a torrent: pieces, their sizes, and the 16 KiB blocks they are moved in.

/// Size of the blocks pieces are requested in (BEP 3 convention; the last block of a piece may
/// be shorter).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Where pieces and blocks fall in a torrent's content. Cheap to copy; every index it hands out
/// has been checked against the torrent's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceGeometry {
    piece_length: u64,
    total_size: u64,
    num_pieces: u32,
}

impl PieceGeometry {
    /// `None` if the sizes are zero or give more than `u32::MAX` pieces.
    pub fn new(piece_length: u64, total_size: u64) -> Option<Self> {
        if piece_length == 0 || total_size == 0 || piece_length > u64::from(u32::MAX) {
            return None;
        }
        let num_pieces = u32::try_from(total_size.div_ceil(piece_length)).ok()?;
        Some(Self {
            piece_length,
            total_size,
            num_pieces,
        })
    }

    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// Offset of piece `piece` in the content.
    pub fn piece_offset(&self, piece: u32) -> u64 {
        u64::from(piece) * self.piece_length
    }

    /// Length of piece `piece` (the last one may be shorter), or `None` past the end.
    pub fn piece_size(&self, piece: u32) -> Option<u32> {
        if piece >= self.num_pieces {
            return None;
        }
        let rest = self.total_size - self.piece_offset(piece);
        // Fits: piece_length <= u32::MAX was checked in `new`.
        Some(rest.min(self.piece_length) as u32)
    }

    /// Number of blocks in piece `piece`.
    pub fn blocks_in_piece(&self, piece: u32) -> Option<u32> {
        Some(self.piece_size(piece)?.div_ceil(BLOCK_SIZE))
    }

    /// Length of block `block` of piece `piece`, or `None` if either is out of range.
    pub fn block_size(&self, piece: u32, block: u32) -> Option<u32> {
        let size = self.piece_size(piece)?;
        let start = block.checked_mul(BLOCK_SIZE)?;
        (start < size).then(|| (size - start).min(BLOCK_SIZE))
    }

    /// Whether `offset..offset + length` lies inside piece `piece` (and is not empty).
    pub fn contains(&self, piece: u32, offset: u32, length: u32) -> bool {
        let Some(size) = self.piece_size(piece) else {
            return false;
        };
        length > 0 && offset.checked_add(length).is_some_and(|end| end <= size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_last_piece_and_blocks() {
        let g = PieceGeometry::new(65536, 3 * 65536 + 20000).unwrap();
        assert_eq!(g.num_pieces(), 4);
        assert_eq!(g.piece_size(2), Some(65536));
        assert_eq!(g.piece_size(3), Some(20000));
        assert_eq!(g.piece_size(4), None);
        assert_eq!(g.blocks_in_piece(0), Some(4));
        assert_eq!(g.blocks_in_piece(3), Some(2));
        assert_eq!(g.block_size(3, 1), Some(20000 - 16384));
        assert_eq!(g.block_size(3, 2), None);
        assert_eq!(g.block_size(0, u32::MAX), None);
        assert!(g.contains(3, 16384, 20000 - 16384));
        assert!(!g.contains(3, 16384, 20000 - 16383));
        assert!(!g.contains(0, 0, 0));
        assert!(!g.contains(0, u32::MAX, 2));
        assert!(!g.contains(9, 0, 1));
    }

    #[test]
    fn refuses_degenerate_sizes() {
        assert!(PieceGeometry::new(0, 10).is_none());
        assert!(PieceGeometry::new(10, 0).is_none());
        assert!(PieceGeometry::new(1, u64::MAX).is_none());
        assert!(PieceGeometry::new(1 << 33, 1 << 34).is_none());
    }
}
