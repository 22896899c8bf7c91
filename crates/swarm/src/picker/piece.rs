//! The state of one piece being downloaded, block by block, and the index arithmetic of
//! blocks and bitfields.

use std::collections::BTreeSet;

use shoal_metainfo::{BLOCK_SIZE, PieceGeometry};
use shoal_wire::{Bitfield, BlockRef};

use crate::event::PeerKey;

/// A peer we asked for a block. A timed-out request stays queued at the peer but no longer
/// counts as a live copy, so the block can be asked of someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Requester {
    pub(super) peer: PeerKey,
    pub(super) timed_out: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BlockState {
    /// Not received yet; requested from these peers (none: fresh).
    Open(Vec<Requester>),
    /// Handed to storage, not yet written.
    Received,
    Written,
}

impl BlockState {
    pub(super) fn live_copies(&self) -> usize {
        match self {
            BlockState::Open(reqs) => reqs.iter().filter(|r| !r.timed_out).count(),
            _ => 0,
        }
    }

    pub(super) fn is_fresh(&self) -> bool {
        matches!(self, BlockState::Open(_)) && self.live_copies() == 0
    }

    pub(super) fn requested_by(&self, peer: PeerKey) -> bool {
        matches!(self, BlockState::Open(reqs) if reqs.iter().any(|r| r.peer == peer))
    }
}

/// A piece we started downloading and have not verified.
#[derive(Debug, Clone)]
pub(super) struct PartialPiece {
    pub(super) blocks: Vec<BlockState>,
    /// Peers whose blocks went into the current attempt.
    pub(super) senders: BTreeSet<PeerKey>,
    /// Peers that sent blocks of an earlier attempt that failed verification.
    pub(super) suspects: BTreeSet<PeerKey>,
    pub(super) verifying: bool,
}

impl PartialPiece {
    pub(super) fn new(blocks: u32) -> Self {
        Self {
            blocks: (0..blocks).map(|_| BlockState::Open(Vec::new())).collect(),
            senders: BTreeSet::new(),
            suspects: BTreeSet::new(),
            verifying: false,
        }
    }

    pub(super) fn fresh_blocks(&self) -> usize {
        if self.verifying {
            return 0;
        }
        self.blocks.iter().filter(|b| b.is_fresh()).count()
    }
}

/// The block at `index` of `piece`, in 16 KiB steps (the last one may be shorter).
pub(super) fn block_ref(geometry: &PieceGeometry, piece: u32, index: usize) -> Option<BlockRef> {
    let index = u32::try_from(index).ok()?;
    Some(BlockRef {
        piece,
        offset: index.checked_mul(BLOCK_SIZE)?,
        length: geometry.block_size(piece, index)?,
    })
}

/// Index of `block` in its piece, if it is exactly one of the piece's blocks.
pub(super) fn block_index(geometry: &PieceGeometry, block: BlockRef) -> Option<usize> {
    if block.offset % BLOCK_SIZE != 0 {
        return None;
    }
    let index = block.offset / BLOCK_SIZE;
    (geometry.block_size(block.piece, index)? == block.length).then_some(index as usize)
}

/// The pieces in `theirs` that are in neither `ours` nor `also_not`, in increasing order;
/// skips whole bytes, so a late download costs an eighth of a bit-by-bit scan.
pub(super) fn missing_from<'a>(
    theirs: &'a Bitfield,
    ours: &'a Bitfield,
    also_not: Option<&'a Bitfield>,
) -> impl Iterator<Item = u32> + 'a {
    let len = theirs.len().min(ours.len());
    let excluded = move |i: usize| {
        ours.as_bytes().get(i).copied().unwrap_or(0xff)
            | also_not
                .and_then(|b| b.as_bytes().get(i))
                .copied()
                .unwrap_or(0)
    };
    theirs
        .as_bytes()
        .iter()
        .enumerate()
        .map(move |(i, t)| (i, t & !excluded(i)))
        .filter(|&(_, wanted)| wanted != 0)
        .flat_map(|(i, wanted)| {
            (0..8u32)
                .filter(move |bit| wanted & (0x80 >> bit) != 0)
                .map(move |bit| i as u32 * 8 + bit)
        })
        .filter(move |&p| p < len)
}
