//! Which blocks to request from which peer: partial pieces first, then new pieces rarest first
//! (random for the first few), then — once every missing block is requested — the end game.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::rngs::SmallRng;
use shoal_metainfo::PieceGeometry;
use shoal_wire::{Bitfield, BlockRef};

use crate::event::PeerKey;

mod piece;
#[cfg(test)]
mod tests;

use piece::{BlockState, PartialPiece, Requester, block_index, block_ref, missing_from};

/// What became of a received block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockOutcome {
    /// We needed it; cancel the other copies requested from these peers.
    Accepted { cancel: Vec<PeerKey> },
    /// We already had it (or are already writing it).
    NotNeeded,
}

/// What a verification result means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyOutcome {
    Verified,
    /// The piece is reset and will be downloaded again; these peers sent its blocks.
    Failed {
        senders: BTreeSet<PeerKey>,
    },
    /// No verification of that piece was pending.
    Unexpected,
}

/// Piece and block bookkeeping of one torrent: what we have, what every block's state is, how
/// many connected peers have each piece.
#[derive(Debug, Clone)]
pub(crate) struct PiecePicker {
    geometry: PieceGeometry,
    have: Bitfield,
    availability: Vec<u32>,
    partial: BTreeMap<u32, PartialPiece>,
    /// Partial pieces with fresh (unrequested) blocks, and how many: the picker's first stop,
    /// kept apart so that a pick does not walk every partial piece.
    fresh: BTreeMap<u32, usize>,
    /// The keys of `partial`, as a bitfield for byte-wise candidate scans.
    started: Bitfield,
    /// `have.count()`, kept so that completeness is O(1).
    have_count: u32,
    /// Pieces we lack, nobody is downloading, and some connected peer has: while above zero
    /// the end game cannot start.
    unstarted_available: u32,
    random_first_pieces: u32,
    max_copies: usize,
}

/// Decides, per piece, that a peer should not be asked for it (given the piece's suspects).
pub(crate) type SkipPiece<'a> = &'a dyn Fn(u32, &BTreeSet<PeerKey>) -> bool;

impl PiecePicker {
    /// `max_copies`: how many live requests a block may have at once (1 + end-game copies).
    pub(crate) fn new(
        geometry: PieceGeometry,
        have: Bitfield,
        random_first_pieces: u32,
        max_copies: usize,
    ) -> Self {
        Self {
            availability: vec![0; geometry.num_pieces() as usize],
            geometry,
            have_count: have.count(),
            have,
            partial: BTreeMap::new(),
            fresh: BTreeMap::new(),
            started: Bitfield::new(geometry.num_pieces()),
            unstarted_available: 0,
            random_first_pieces,
            max_copies: max_copies.max(1),
        }
    }

    pub(crate) fn have(&self) -> &Bitfield {
        &self.have
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.have_count == self.geometry.num_pieces()
    }

    pub(crate) fn have_count(&self) -> u32 {
        self.have_count
    }

    fn is_unstarted(&self, piece: u32) -> bool {
        !self.have.get(piece) && !self.started.get(piece)
    }

    /// How many connected peers have `piece`.
    pub(crate) fn availability(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    pub(crate) fn add_peer(&mut self, pieces: &Bitfield) {
        for piece in pieces.ones() {
            self.add_piece(piece);
        }
    }

    pub(crate) fn remove_peer(&mut self, pieces: &Bitfield) {
        for piece in pieces.ones() {
            let unstarted = self.is_unstarted(piece);
            if let Some(a) = self.availability.get_mut(piece as usize) {
                *a = a.saturating_sub(1);
                if *a == 0 && unstarted {
                    self.unstarted_available = self.unstarted_available.saturating_sub(1);
                }
            }
        }
    }

    pub(crate) fn add_piece(&mut self, piece: u32) {
        let unstarted = self.is_unstarted(piece);
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a = a.saturating_add(1);
            if *a == 1 && unstarted {
                self.unstarted_available += 1;
            }
        }
    }

    /// How many pieces in `pieces` we lack.
    pub(crate) fn wanted_from(&self, pieces: &Bitfield) -> u32 {
        missing_from(pieces, &self.have, None).count() as u32
    }

    /// Whether the end game is on: something is missing, no missing block is unrequested
    /// (among pieces some peer has), and some block is in flight.
    pub(crate) fn in_endgame(&self) -> bool {
        !self.is_complete()
            && !self.fresh_available()
            && self
                .partial
                .values()
                .any(|p| p.blocks.iter().any(|b| b.live_copies() > 0))
    }

    /// Up to `count` blocks to request from `peer`, recorded as requested from it; of these,
    /// at most `endgame_count` extra copies of blocks already in flight elsewhere.
    pub(crate) fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        (count, endgame_count): (usize, usize),
        skip: SkipPiece<'_>,
        rng: &mut SmallRng,
    ) -> Vec<BlockRef> {
        let mut out = Vec::new();
        if count == 0 {
            return out;
        }
        // Partial pieces, closest to done first: finish what is started.
        let mut partials: Vec<(usize, u32)> = self
            .fresh
            .iter()
            .filter(|(p, _)| {
                peer_has.get(**p)
                    && self
                        .partial
                        .get(p)
                        .is_some_and(|pp| !skip(**p, &pp.suspects))
            })
            .map(|(p, fresh)| (*fresh, *p))
            .collect();
        partials.sort_unstable();
        for (_, piece) in partials {
            self.take_fresh(piece, peer, count, &mut out);
            if out.len() >= count {
                return out;
            }
        }
        while out.len() < count {
            let Some(piece) = self.choose_new_piece(peer_has, skip, rng) else {
                break;
            };
            let blocks = self.geometry.blocks_in_piece(piece).unwrap_or(0);
            self.partial.insert(piece, PartialPiece::new(blocks));
            self.started.set(piece, true);
            // A new piece is always available (the peer has it).
            self.unstarted_available = self.unstarted_available.saturating_sub(1);
            self.take_fresh(piece, peer, count, &mut out);
        }
        if out.len() < count && endgame_count > 0 && !self.fresh_available() {
            let limit = count.min(out.len() + endgame_count);
            self.take_endgame(peer, peer_has, limit, skip, &mut out);
        }
        out
    }

    fn take_fresh(&mut self, piece: u32, peer: PeerKey, count: usize, out: &mut Vec<BlockRef>) {
        let Some(pp) = self.partial.get_mut(&piece) else {
            return;
        };
        for (index, state) in pp.blocks.iter_mut().enumerate() {
            if out.len() >= count {
                break;
            }
            if !state.is_fresh() || state.requested_by(peer) {
                continue;
            }
            if let (BlockState::Open(reqs), Some(block)) =
                (&mut *state, block_ref(&self.geometry, piece, index))
            {
                reqs.push(Requester {
                    peer,
                    timed_out: false,
                });
                out.push(block);
            }
        }
        self.update_fresh(piece);
    }

    /// A piece nobody is downloading yet: random while we have few pieces, else rarest first
    /// with a random choice among the equally rare.
    fn choose_new_piece(
        &self,
        peer_has: &Bitfield,
        skip: SkipPiece<'_>,
        rng: &mut SmallRng,
    ) -> Option<u32> {
        let no_suspects = BTreeSet::new();
        let candidates = missing_from(peer_has, &self.have, Some(&self.started))
            .filter(|&p| !skip(p, &no_suspects));
        let pool: Vec<u32> = if self.have_count < self.random_first_pieces {
            candidates.collect()
        } else {
            let mut rarest = Vec::new();
            let mut min = u32::MAX;
            for p in candidates {
                let a = self.availability.get(p as usize).copied().unwrap_or(0);
                if a < min {
                    min = a;
                    rarest.clear();
                }
                if a == min {
                    rarest.push(p);
                }
            }
            rarest
        };
        if pool.is_empty() {
            return None;
        }
        pool.get(rng.random_range(0..pool.len())).copied()
    }

    /// Extra copies of blocks already in flight elsewhere, fewest copies first.
    fn take_endgame(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        count: usize,
        skip: SkipPiece<'_>,
        out: &mut Vec<BlockRef>,
    ) {
        let mut candidates: Vec<(usize, u32, usize)> = Vec::new();
        for (&piece, pp) in &self.partial {
            if pp.verifying || !peer_has.get(piece) || skip(piece, &pp.suspects) {
                continue;
            }
            for (index, state) in pp.blocks.iter().enumerate() {
                let live = state.live_copies();
                if live > 0 && live < self.max_copies && !state.requested_by(peer) {
                    candidates.push((live, piece, index));
                }
            }
        }
        candidates.sort_unstable();
        for (_, piece, index) in candidates.into_iter().take(count - out.len()) {
            let state = self
                .partial
                .get_mut(&piece)
                .and_then(|pp| pp.blocks.get_mut(index));
            if let (Some(BlockState::Open(reqs)), Some(block)) =
                (state, block_ref(&self.geometry, piece, index))
            {
                reqs.push(Requester {
                    peer,
                    timed_out: false,
                });
                out.push(block);
            }
        }
    }

    /// Whether some missing block that a connected peer has is not requested from anyone.
    fn fresh_available(&self) -> bool {
        self.unstarted_available > 0
            || self
                .fresh
                .keys()
                .any(|&p| self.availability.get(p as usize).is_some_and(|&a| a > 0))
    }

    /// Re-counts the fresh blocks of `piece` after its blocks changed.
    fn update_fresh(&mut self, piece: u32) {
        match self
            .partial
            .get(&piece)
            .map_or(0, PartialPiece::fresh_blocks)
        {
            0 => self.fresh.remove(&piece),
            n => self.fresh.insert(piece, n),
        };
    }

    fn block_state(&mut self, block: BlockRef) -> Option<&mut BlockState> {
        let index = block_index(&self.geometry, block)?;
        let pp = self.partial.get_mut(&block.piece)?;
        if pp.verifying {
            return None;
        }
        pp.blocks.get_mut(index)
    }

    /// `peer` will not answer its request for `block` (rejected, cancelled, disconnected).
    pub(crate) fn release(&mut self, peer: PeerKey, block: BlockRef) {
        if let Some(BlockState::Open(reqs)) = self.block_state(block) {
            reqs.retain(|r| r.peer != peer);
            self.update_fresh(block.piece);
        }
    }

    /// `peer`'s request for `block` is late: others may be asked for the block too.
    pub(crate) fn mark_timed_out(&mut self, peer: PeerKey, block: BlockRef) {
        if let Some(BlockState::Open(reqs)) = self.block_state(block) {
            for r in reqs.iter_mut().filter(|r| r.peer == peer) {
                r.timed_out = true;
            }
            self.update_fresh(block.piece);
        }
    }

    pub(crate) fn block_received(&mut self, peer: PeerKey, block: BlockRef) -> BlockOutcome {
        if self.have.get(block.piece) {
            return BlockOutcome::NotNeeded;
        }
        let Some(state) = self.block_state(block) else {
            return BlockOutcome::NotNeeded;
        };
        let BlockState::Open(reqs) = state else {
            return BlockOutcome::NotNeeded;
        };
        let cancel = reqs.iter().map(|r| r.peer).filter(|&p| p != peer).collect();
        *state = BlockState::Received;
        if let Some(pp) = self.partial.get_mut(&block.piece) {
            pp.senders.insert(peer);
        }
        self.update_fresh(block.piece);
        BlockOutcome::Accepted { cancel }
    }

    /// Storage wrote `block` (or failed to). Returns the piece to verify once all its blocks
    /// are written.
    pub(crate) fn block_written(&mut self, block: BlockRef, ok: bool) -> Option<u32> {
        let state = self.block_state(block)?;
        if *state != BlockState::Received {
            return None;
        }
        *state = if ok {
            BlockState::Written
        } else {
            BlockState::Open(Vec::new())
        };
        self.update_fresh(block.piece);
        let pp = self.partial.get_mut(&block.piece)?;
        if !pp.blocks.iter().all(|b| *b == BlockState::Written) {
            return None;
        }
        pp.verifying = true;
        Some(block.piece)
    }

    /// The piece could not be read back to be hashed (an error of ours): all of it is fetched
    /// again, from anyone, its senders not suspected of anything. Says whether the piece was
    /// being verified.
    pub(crate) fn piece_unverifiable(&mut self, piece: u32) -> bool {
        let Some(pp) = self.partial.get_mut(&piece).filter(|pp| pp.verifying) else {
            return false;
        };
        pp.senders.clear();
        for b in &mut pp.blocks {
            *b = BlockState::Open(Vec::new());
        }
        pp.verifying = false;
        self.update_fresh(piece);
        true
    }

    pub(crate) fn piece_verified(&mut self, piece: u32, ok: bool) -> VerifyOutcome {
        let Some(pp) = self.partial.get_mut(&piece).filter(|pp| pp.verifying) else {
            return VerifyOutcome::Unexpected;
        };
        if ok {
            self.partial.remove(&piece);
            self.fresh.remove(&piece);
            self.started.set(piece, false);
            if self.have.set(piece, true) {
                self.have_count += 1;
            }
            return VerifyOutcome::Verified;
        }
        let senders = std::mem::take(&mut pp.senders);
        pp.suspects.extend(senders.iter().copied());
        for b in &mut pp.blocks {
            *b = BlockState::Open(Vec::new());
        }
        pp.verifying = false;
        self.update_fresh(piece);
        VerifyOutcome::Failed { senders }
    }
}
