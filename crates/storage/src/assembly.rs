//! Pieces assembled in memory before they touch the disk.
//!
//! A download's blocks arrive 16 KiB at a time. Writing each one to its file and reading the
//! whole piece back to hash it costs a system call per block and a second copy of every byte
//! through the page cache. Instead, a piece's blocks are copied into one buffer; when the
//! engine asks for the piece to be verified, the buffer is hashed where it is and, if it
//! matches, written with one positioned write per file it spans. A piece that fails its hash
//! never reaches the disk at all.
//!
//! Buffers are reused: a piece's buffer, once settled, goes back to a free list for the next
//! piece of the same size (its stale bytes are all overwritten before the piece can count as
//! complete, since every block is tracked), which spares zeroing a fresh piece-sized buffer
//! and the page faults of touching it.
//!
//! Memory is bounded ([`crate::StorageConfig::assembly_bytes`], spare buffers included): a piece whose first block
//! arrives while the buffers are full is written through to disk block by block, as before,
//! and verified by reading it back. A piece stays in the mode its first block chose until it
//! is verified or fails, so a piece never has some blocks in memory and others on disk.

use std::collections::{HashMap, HashSet};

use shoal_metainfo::BLOCK_SIZE;

/// Where a block of a piece goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Into the piece's buffer (done).
    Buffered,
    /// To disk, as the piece's other blocks.
    Through,
}

/// Whether a block is one of the engine's: 16 KiB at a multiple of 16 KiB, or the piece's
/// shorter last block.
fn aligned(piece_size: u32, offset: u32, len: usize) -> bool {
    let block = BLOCK_SIZE as usize;
    offset % BLOCK_SIZE == 0
        && (len == block
            || (len < block && u64::from(offset) + len as u64 == u64::from(piece_size)))
}

/// One piece's buffer and which of its blocks it holds.
#[derive(Debug)]
struct PieceBuffer {
    data: Vec<u8>,
    /// One flag per 16 KiB block of the piece.
    blocks: Vec<bool>,
    missing: usize,
}

/// A piece taken out for verification.
#[derive(Debug)]
pub(crate) enum Taken {
    /// Every block is in memory: hash these bytes.
    Complete(Vec<u8>),
    /// Some blocks never arrived: it cannot match.
    Incomplete,
    /// The piece went through to disk: hash what is there.
    OnDisk,
}

/// The buffers of one torrent's pieces in progress.
#[derive(Debug)]
pub(crate) struct Assembly {
    capacity: usize,
    /// Bytes in `pieces`, in buffers out for verification, and in `spare`.
    used: usize,
    pieces: HashMap<u32, PieceBuffer>,
    /// Buffers of settled pieces, for reuse.
    spare: Vec<Vec<u8>>,
    /// Pieces that started while the buffers were full: their blocks go straight to disk.
    through: HashSet<u32>,
}

impl Assembly {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            used: 0,
            pieces: HashMap::new(),
            spare: Vec::new(),
            through: HashSet::new(),
        }
    }

    /// Whether [`Assembly::write`] would take this block into memory (and so do no I/O).
    pub(crate) fn would_buffer(
        &self,
        piece: u32,
        piece_size: u32,
        offset: u32,
        len: usize,
    ) -> bool {
        if self.through.contains(&piece) || !aligned(piece_size, offset, len) {
            return false;
        }
        if self.pieces.contains_key(&piece) {
            return true;
        }
        let size = piece_size as usize;
        let spare: usize = self.spare.iter().map(Vec::len).sum();
        self.spare.iter().any(|b| b.len() == size) || self.used - spare + size <= self.capacity
    }

    /// Copies `data` at `offset` into `piece`'s buffer (of `piece_size` bytes) if the piece is
    /// assembled in memory, or says to write it to disk. Blocks must be the engine's 16 KiB
    /// blocks (the last one of a piece may be shorter); anything else goes to disk, and so does
    /// the rest of that piece.
    pub(crate) fn write(&mut self, piece: u32, piece_size: u32, offset: u32, data: &[u8]) -> Route {
        if self.through.contains(&piece) {
            return Route::Through;
        }
        if !aligned(piece_size, offset, data.len()) {
            // From now on this piece goes to disk; the caller writes what was buffered of it
            // (`spill`) along with this block.
            self.through.insert(piece);
            return Route::Through;
        }
        if !self.pieces.contains_key(&piece) {
            let Some(data) = self.buffer(piece_size as usize) else {
                self.through.insert(piece);
                return Route::Through;
            };
            let blocks = piece_size.div_ceil(BLOCK_SIZE) as usize;
            self.pieces.insert(
                piece,
                PieceBuffer {
                    data,
                    blocks: vec![false; blocks],
                    missing: blocks,
                },
            );
        }
        let Some(buffer) = self.pieces.get_mut(&piece) else {
            return Route::Through;
        };
        let start = offset as usize;
        buffer.data[start..start + data.len()].copy_from_slice(data);
        let block = start / BLOCK_SIZE as usize;
        if !buffer.blocks[block] {
            buffer.blocks[block] = true;
            buffer.missing -= 1;
        }
        Route::Buffered
    }

    /// A buffer of `size` bytes (contents unspecified): a spare one of that size, or a new one
    /// if there is room (spares of other sizes are given up to make it). `None` when full.
    fn buffer(&mut self, size: usize) -> Option<Vec<u8>> {
        if let Some(at) = self.spare.iter().position(|b| b.len() == size) {
            return Some(self.spare.swap_remove(at));
        }
        while self.used + size > self.capacity {
            let spare = self.spare.pop()?;
            self.used -= spare.len();
        }
        self.used += size;
        Some(vec![0; size])
    }

    /// Gives back the buffer of a piece taken with [`Assembly::take`], for reuse.
    pub(crate) fn recycle(&mut self, buffer: Vec<u8>) {
        self.spare.push(buffer);
    }

    /// Blocks of `piece` held in memory, with their offsets, to be written to disk because the
    /// piece switched to going through (see [`Assembly::write`]).
    pub(crate) fn spill(&mut self, piece: u32) -> Vec<(u32, Vec<u8>)> {
        let Some(buffer) = self.pieces.remove(&piece) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (index, _) in buffer.blocks.iter().enumerate().filter(|(_, held)| **held) {
            let start = index * BLOCK_SIZE as usize;
            let end = (start + BLOCK_SIZE as usize).min(buffer.data.len());
            out.push((start as u32, buffer.data[start..end].to_vec()));
        }
        self.spare.push(buffer.data);
        out
    }

    /// Takes `piece` out for verification. Blocks of it written afterwards start a new buffer.
    /// A complete piece's buffer still counts against the capacity until it is recycled.
    pub(crate) fn take(&mut self, piece: u32) -> Taken {
        if self.through.contains(&piece) {
            return Taken::OnDisk;
        }
        match self.pieces.remove(&piece) {
            Some(buffer) if buffer.missing == 0 => Taken::Complete(buffer.data),
            Some(buffer) => {
                self.spare.push(buffer.data);
                Taken::Incomplete
            }
            None => Taken::OnDisk,
        }
    }

    /// The piece is settled (verified, or failed and to be fetched again): forget it.
    pub(crate) fn forget(&mut self, piece: u32) {
        self.through.remove(&piece);
        if let Some(buffer) = self.pieces.remove(&piece) {
            self.spare.push(buffer.data);
        }
    }

    /// Bytes held in buffers now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: usize = BLOCK_SIZE as usize;

    #[test]
    fn blocks_in_any_order_complete_a_piece() {
        let mut a = Assembly::new(1 << 20);
        let size = (2 * B + 100) as u32;
        let blocks = [
            (2 * B, vec![3u8; 100]),
            (0, vec![1u8; B]),
            (B, vec![2u8; B]),
        ];
        for (offset, data) in &blocks {
            assert_eq!(a.write(7, size, *offset as u32, data), Route::Buffered);
        }
        // A duplicate (end game) changes nothing.
        assert_eq!(a.write(7, size, 0, &vec![1u8; B]), Route::Buffered);
        assert_eq!(a.used(), size as usize);
        let Taken::Complete(data) = a.take(7) else {
            panic!("complete")
        };
        assert_eq!(&data[..B], &vec![1u8; B][..]);
        assert_eq!(&data[2 * B..], &vec![3u8; 100][..]);
        // Recycled, the buffer serves the next piece of that size: no new memory.
        a.recycle(data);
        assert_eq!(a.write(8, size, 0, &vec![5u8; B]), Route::Buffered);
        assert_eq!(a.used(), size as usize);
    }

    #[test]
    fn spares_of_another_size_make_room() {
        let mut a = Assembly::new(3 * B);
        a.write(1, (2 * B) as u32, 0, &vec![0; B]);
        a.forget(1);
        // The 2-block spare is given up for a 3-block piece.
        assert_eq!(a.write(2, (3 * B) as u32, 0, &vec![0; B]), Route::Buffered);
        assert_eq!(a.used(), 3 * B);
    }

    #[test]
    fn would_buffer_agrees_with_write() {
        let mut a = Assembly::new(2 * B);
        let size = (2 * B) as u32;
        assert!(a.would_buffer(1, size, 0, B));
        assert!(!a.would_buffer(1, size, 1, B), "unaligned");
        assert_eq!(a.write(1, size, 0, &vec![0; B]), Route::Buffered);
        assert!(a.would_buffer(1, size, B as u32, B), "its buffer exists");
        assert!(!a.would_buffer(2, size, 0, B), "no room for another");
        a.forget(1);
        assert!(a.would_buffer(2, size, 0, B), "the spare fits");
    }

    #[test]
    fn a_block_spanning_several_blocks_goes_to_disk() {
        let mut a = Assembly::new(1 << 20);
        let size = (2 * B + 5) as u32;
        assert_eq!(a.write(3, size, 0, &vec![0; size as usize]), Route::Through);
    }

    #[test]
    fn a_piece_with_a_missing_block_is_incomplete() {
        let mut a = Assembly::new(1 << 20);
        a.write(1, (2 * B) as u32, 0, &vec![0; B]);
        assert!(matches!(a.take(1), Taken::Incomplete));
    }

    #[test]
    fn past_the_capacity_pieces_go_to_disk_and_stay_there() {
        let mut a = Assembly::new(2 * B);
        let size = (2 * B) as u32;
        assert_eq!(a.write(1, size, 0, &vec![0; B]), Route::Buffered);
        assert_eq!(a.write(2, size, 0, &vec![0; B]), Route::Through);
        // Room frees up, but piece 2 already has a block on disk.
        a.forget(1);
        assert_eq!(a.write(2, size, B as u32, &vec![0; B]), Route::Through);
        assert!(matches!(a.take(2), Taken::OnDisk));
        a.forget(2);
        assert_eq!(a.write(2, size, 0, &vec![0; B]), Route::Buffered);
    }

    #[test]
    fn an_unaligned_block_sends_the_piece_to_disk_with_its_buffered_blocks() {
        let mut a = Assembly::new(1 << 20);
        let size = (2 * B) as u32;
        a.write(4, size, 0, &vec![9; B]);
        assert_eq!(a.write(4, size, 100, &[1; 10]), Route::Through);
        let spilled = a.spill(4);
        assert_eq!(spilled, vec![(0, vec![9; B])]);
        assert!(matches!(a.take(4), Taken::OnDisk));
    }
}
