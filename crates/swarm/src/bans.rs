//! Who sent us corrupt data. The rule: a peer is banned when it was the only sender of a piece
//! that failed verification, or when it sent blocks of `ban_after_failed_pieces` (default 2)
//! pieces that failed. Counts outlive the connection, so reconnecting does not reset them.

use std::collections::BTreeMap;

use crate::event::{BanReason, PeerKey};

#[derive(Debug, Clone)]
pub(crate) struct BanTracker {
    threshold: u32,
    failures: BTreeMap<PeerKey, u32>,
}

impl BanTracker {
    pub(crate) fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures: BTreeMap::new(),
        }
    }

    /// `peer` sent blocks of `piece`, which failed verification; `sole_sender` if nobody else
    /// did. Returns why to ban it, if it should be.
    pub(crate) fn record_failure(
        &mut self,
        peer: PeerKey,
        piece: u32,
        sole_sender: bool,
    ) -> Option<BanReason> {
        let count = self.failures.entry(peer).or_default();
        *count += 1;
        if sole_sender {
            Some(BanReason::SoleSenderOfCorruptPiece { piece })
        } else if *count >= self.threshold {
            Some(BanReason::CorruptPieces { pieces: *count })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sole_sender_at_once_shared_blame_on_the_second_failure() {
        let mut bans = BanTracker::new(2);
        assert_eq!(
            bans.record_failure(PeerKey(1), 7, true),
            Some(BanReason::SoleSenderOfCorruptPiece { piece: 7 })
        );
        assert_eq!(bans.record_failure(PeerKey(2), 3, false), None);
        assert_eq!(bans.record_failure(PeerKey(3), 3, false), None);
        assert_eq!(
            bans.record_failure(PeerKey(2), 4, false),
            Some(BanReason::CorruptPieces { pieces: 2 })
        );
    }
}
