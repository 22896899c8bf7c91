//! Peers a complete torrent does not dial again for a while: seeds, with which it has nothing
//! to trade. Entries expire, so a seed that later lost data and came back as a leecher is
//! dialed again; a peer the user names explicitly is always dialed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long a seed is left alone.
const HOLD: Duration = Duration::from_secs(30 * 60);

#[derive(Debug)]
pub(super) struct NoRedial {
    until: HashMap<PeerId, Instant>,
    max: usize,
}

impl NoRedial {
    pub(super) fn new(max: usize) -> Self {
        Self {
            until: HashMap::new(),
            max,
        }
    }

    /// Leaves `peer` alone until `now + HOLD`.
    pub(super) fn hold(&mut self, peer: PeerId, now: Instant) {
        if self.until.len() >= self.max && !self.until.contains_key(&peer) {
            self.until.retain(|_, until| now < *until);
            if self.until.len() >= self.max {
                // Bounded: forgetting early only costs a dial that ends in another close.
                self.until.clear();
            }
        }
        self.until.insert(peer, now + HOLD);
    }

    pub(super) fn holds(&self, peer: &PeerId, now: Instant) -> bool {
        self.until.get(peer).is_some_and(|until| now < *until)
    }

    pub(super) fn release(&mut self, peer: &PeerId) {
        self.until.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_peer_is_released_by_time_or_by_name() {
        let mut held = NoRedial::new(10);
        let (a, b) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        held.hold(a, now);
        held.hold(b, now);
        assert!(held.holds(&a, now + HOLD - Duration::from_secs(1)));
        assert!(!held.holds(&a, now + HOLD), "expired");
        held.release(&b);
        assert!(!held.holds(&b, now));
    }

    #[test]
    fn it_stays_within_its_bound() {
        let mut held = NoRedial::new(3);
        let now = Instant::now();
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        for p in &peers {
            held.hold(*p, now);
        }
        // Full of live entries: a new one starts afresh rather than growing.
        let newcomer = PeerId::random();
        held.hold(newcomer, now);
        assert!(held.until.len() <= 3);
        assert!(held.holds(&newcomer, now));
        // Expired entries make room first.
        let later = now + HOLD;
        let (x, y) = (PeerId::random(), PeerId::random());
        held.hold(x, later);
        held.hold(y, later);
        assert!(held.holds(&x, later) && held.holds(&y, later));
        assert!(held.until.len() <= 3);
    }
}
