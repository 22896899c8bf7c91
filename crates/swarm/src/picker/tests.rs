use std::collections::BTreeSet;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shoal_metainfo::{BLOCK_SIZE, PieceGeometry};
use shoal_wire::Bitfield;

use super::*;

const A: PeerKey = PeerKey(1);
const B: PeerKey = PeerKey(2);
const C: PeerKey = PeerKey(3);
const D: PeerKey = PeerKey(4);

fn no_skip(_: u32, _: &BTreeSet<PeerKey>) -> bool {
    false
}

fn bits(len: u32, ones: &[u32]) -> Bitfield {
    let mut b = Bitfield::new(len);
    for &i in ones {
        b.set(i, true);
    }
    b
}

/// 8 pieces of 2 blocks; we have pieces 0..4, so random-first is over.
fn picker_with_four_pieces() -> PiecePicker {
    let g = PieceGeometry::new(2 * u64::from(BLOCK_SIZE), 16 * u64::from(BLOCK_SIZE)).unwrap();
    PiecePicker::new(g, bits(8, &[0, 1, 2, 3]), 4, 3)
}

fn pieces(blocks: &[BlockRef]) -> Vec<u32> {
    let mut p: Vec<u32> = blocks.iter().map(|b| b.piece).collect();
    p.dedup();
    p
}

#[test]
fn rarest_first() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let all = Bitfield::full(8);
    picker.add_peer(&all);
    picker.add_peer(&bits(8, &[5, 6, 7]));
    picker.add_peer(&bits(8, &[6, 7]));
    picker.add_peer(&bits(8, &[7]));
    // availability: 4 -> 1, 5 -> 2, 6 -> 3, 7 -> 4
    let got = picker.pick(A, &all, (8, 8), &no_skip, &mut rng);
    assert_eq!(pieces(&got), [4, 5, 6, 7]);
    assert_eq!(got.len(), 8);
    assert_eq!(got[0].offset, 0);
    assert_eq!(got[1].offset, BLOCK_SIZE);
}

#[test]
fn rarest_ties_are_broken_at_random_by_the_seed() {
    let mut seen = BTreeSet::new();
    for seed in 0..32 {
        let mut picker = picker_with_four_pieces();
        let all = Bitfield::full(8);
        picker.add_peer(&all);
        let mut rng = SmallRng::seed_from_u64(seed);
        let got = picker.pick(A, &all, (1, 1), &no_skip, &mut rng);
        seen.insert(got[0].piece);
    }
    assert_eq!(seen, (4..8).collect::<BTreeSet<_>>());
}

#[test]
fn partial_pieces_are_finished_before_rarer_ones_start() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let all = Bitfield::full(8);
    picker.add_peer(&all);
    picker.add_peer(&all);
    picker.add_peer(&bits(8, &[5]));
    // A starts piece 4 with one block (rarest among what A has: 4, 6, 7 tie at 2; 5 at 3).
    let first = picker.pick(A, &bits(8, &[5]), (1, 1), &no_skip, &mut rng);
    assert_eq!(pieces(&first), [5]);
    // Now piece 4/6/7 are rarer than 5, but 5 is partial: B finishes it first.
    let next = picker.pick(B, &all, (1, 1), &no_skip, &mut rng);
    assert_eq!(next[0].piece, 5);
    assert_eq!(next[0].offset, BLOCK_SIZE);
}

#[test]
fn first_pieces_are_random_not_rarest() {
    let g = PieceGeometry::new(u64::from(BLOCK_SIZE), 64 * u64::from(BLOCK_SIZE)).unwrap();
    let all = Bitfield::full(64);
    let mut firsts = BTreeSet::new();
    for seed in 0..40 {
        let mut picker = PiecePicker::new(g, Bitfield::new(64), 4, 3);
        picker.add_peer(&all);
        picker.add_peer(&bits(64, &(1..64).collect::<Vec<_>>()));
        // Piece 0 is the rarest; rarest-first would always start there.
        let mut rng = SmallRng::seed_from_u64(seed);
        firsts.insert(picker.pick(A, &all, (1, 1), &no_skip, &mut rng)[0].piece);
    }
    assert!(firsts.len() > 10, "random first pieces: {firsts:?}");

    // With 4 pieces verified, rarest first takes over.
    let mut picker = PiecePicker::new(g, bits(64, &[10, 11, 12, 13]), 4, 3);
    picker.add_peer(&all);
    picker.add_peer(&bits(64, &(1..64).collect::<Vec<_>>()));
    let mut rng = SmallRng::seed_from_u64(3);
    assert_eq!(picker.pick(A, &all, (1, 1), &no_skip, &mut rng)[0].piece, 0);
}

#[test]
fn short_last_block() {
    let g = PieceGeometry::new(2 * u64::from(BLOCK_SIZE), u64::from(BLOCK_SIZE) + 100).unwrap();
    let mut picker = PiecePicker::new(g, Bitfield::new(1), 4, 3);
    let all = Bitfield::full(1);
    picker.add_peer(&all);
    let mut rng = SmallRng::seed_from_u64(0);
    let got = picker.pick(A, &all, (10, 10), &no_skip, &mut rng);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].length, 100);
}

#[test]
fn end_game_adds_bounded_copies_and_cancels_the_rest() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let all = Bitfield::full(8);
    for _ in 0..4 {
        picker.add_peer(&all);
    }
    let a = picker.pick(A, &all, (100, 100), &no_skip, &mut rng);
    assert_eq!(a.len(), 8, "every missing block requested from A");
    assert!(picker.in_endgame());
    // B, C may add a copy each (3 in flight per block); D gets nothing more.
    assert_eq!(
        picker.pick(B, &all, (100, 100), &no_skip, &mut rng).len(),
        8
    );
    assert_eq!(
        picker.pick(C, &all, (100, 100), &no_skip, &mut rng).len(),
        8
    );
    assert!(
        picker
            .pick(D, &all, (100, 100), &no_skip, &mut rng)
            .is_empty()
    );
    // Nobody gets the same block twice.
    assert!(
        picker
            .pick(A, &all, (100, 100), &no_skip, &mut rng)
            .is_empty()
    );

    let block = a[0];
    assert_eq!(
        picker.block_received(B, block),
        BlockOutcome::Accepted { cancel: vec![A, C] }
    );
    assert_eq!(picker.block_received(A, block), BlockOutcome::NotNeeded);
}

#[test]
fn end_game_prefers_blocks_with_fewest_copies() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let all = Bitfield::full(8);
    picker.add_peer(&all);
    let a = picker.pick(A, &all, (100, 100), &no_skip, &mut rng);
    let b = picker.pick(B, &all, (2, 2), &no_skip, &mut rng);
    let c = picker.pick(C, &all, (100, 100), &no_skip, &mut rng);
    assert_eq!(c.len(), 8);
    let c_first: BTreeSet<BlockRef> = c[..6].iter().copied().collect();
    assert!(
        b.iter().all(|blk| !c_first.contains(blk)),
        "single-copy blocks first"
    );
    assert_eq!(a.len(), 8);
}

#[test]
fn timed_out_and_released_blocks_are_fresh_again() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let only_4 = bits(8, &[4]);
    picker.add_peer(&only_4);
    let a = picker.pick(A, &only_4, (1, 1), &no_skip, &mut rng);
    picker.mark_timed_out(A, a[0]);
    // Not end game: the timed-out block is fresh for B, and taken first.
    let b = picker.pick(B, &only_4, (1, 1), &no_skip, &mut rng);
    assert_eq!(b, a);
    picker.release(B, b[0]);
    let c = picker.pick(C, &only_4, (1, 1), &no_skip, &mut rng);
    assert_eq!(c, a);
    // A still holds its (late) request: if it arrives first, C is cancelled.
    assert_eq!(
        picker.block_received(A, a[0]),
        BlockOutcome::Accepted { cancel: vec![C] }
    );
}

#[test]
fn written_blocks_lead_to_verification_and_failure_resets() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let only_4 = bits(8, &[4]);
    picker.add_peer(&only_4);
    let blocks = picker.pick(A, &only_4, (2, 2), &no_skip, &mut rng);
    let before_a = picker.block_received(A, blocks[0]);
    assert!(matches!(before_a, BlockOutcome::Accepted { .. }));
    picker.release(A, blocks[1]);
    let again = picker.pick(B, &only_4, (2, 2), &no_skip, &mut rng);
    assert_eq!(again, [blocks[1]]);
    assert!(matches!(
        picker.block_received(B, blocks[1]),
        BlockOutcome::Accepted { .. }
    ));
    assert_eq!(picker.block_written(blocks[0], true), None);
    assert_eq!(picker.block_written(blocks[1], false), None, "failed write");
    let third = picker.pick(C, &only_4, (2, 2), &no_skip, &mut rng);
    assert_eq!(third, [blocks[1]]);
    picker.block_received(C, blocks[1]);
    assert_eq!(picker.block_written(blocks[1], true), Some(4));
    assert!(
        picker
            .pick(D, &only_4, (2, 2), &no_skip, &mut rng)
            .is_empty(),
        "verifying"
    );

    let outcome = picker.piece_verified(4, false);
    assert_eq!(
        outcome,
        VerifyOutcome::Failed {
            senders: [A, B, C].into_iter().collect()
        }
    );
    assert_eq!(picker.piece_verified(4, false), VerifyOutcome::Unexpected);
    // The skip hook sees the suspects of the failed attempt.
    let skip_if = |peer: PeerKey| move |_: u32, s: &BTreeSet<PeerKey>| s.contains(&peer);
    assert!(
        picker
            .pick(A, &only_4, (2, 2), &skip_if(A), &mut rng)
            .is_empty()
    );
    assert_eq!(
        picker.pick(D, &only_4, (2, 2), &skip_if(D), &mut rng).len(),
        2
    );
    for b in blocks {
        picker.block_received(D, b);
        picker.block_written(b, true);
    }
    assert_eq!(picker.piece_verified(4, true), VerifyOutcome::Verified);
    assert!(picker.have().get(4));
    assert_eq!(picker.wanted_from(&Bitfield::full(8)), 3);
}

#[test]
fn end_game_copies_are_capped_per_call() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let all = Bitfield::full(8);
    picker.add_peer(&all);
    assert_eq!(picker.pick(A, &all, (100, 0), &no_skip, &mut rng).len(), 8);
    assert!(
        picker
            .pick(B, &all, (100, 0), &no_skip, &mut rng)
            .is_empty()
    );
    assert_eq!(picker.pick(B, &all, (100, 3), &no_skip, &mut rng).len(), 3);
}

#[test]
fn missing_from_skips_what_we_have() {
    let theirs = bits(19, &[0, 3, 8, 9, 17, 18]);
    let ours = bits(19, &[3, 9, 10]);
    let missing: Vec<u32> = missing_from(&theirs, &ours, None).collect();
    assert_eq!(missing, [0, 8, 17, 18]);
    let started = bits(19, &[8, 18]);
    let unstarted: Vec<u32> = missing_from(&theirs, &ours, Some(&started)).collect();
    assert_eq!(unstarted, [0, 17]);
    let (full, empty) = (Bitfield::full(19), Bitfield::new(19));
    assert_eq!(missing_from(&full, &empty, None).count(), 19);
}

#[test]
fn end_game_waits_for_unstarted_pieces_and_departed_peers_end_the_wait() {
    let mut picker = picker_with_four_pieces();
    let mut rng = SmallRng::seed_from_u64(0);
    let only_4 = bits(8, &[4]);
    let only_5 = bits(8, &[5]);
    picker.add_peer(&only_4);
    picker.add_peer(&only_5);
    assert_eq!(
        picker.pick(A, &only_4, (10, 10), &no_skip, &mut rng).len(),
        2
    );
    // Piece 5 is unstarted and available: no end game for B on piece 4 yet.
    assert!(!picker.in_endgame());
    assert!(
        picker
            .pick(B, &only_4, (10, 10), &no_skip, &mut rng)
            .is_empty()
    );
    // The only peer with piece 5 leaves: everything available is requested.
    picker.remove_peer(&only_5);
    assert!(picker.in_endgame());
    assert_eq!(
        picker.pick(B, &only_4, (10, 10), &no_skip, &mut rng).len(),
        2
    );
}
