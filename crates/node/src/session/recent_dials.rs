//! Targets a torrent dialed lately, so that a source naming them again (a tracker's next
//! reply, the next PEX message of any peer) does not make it dial them again: without this a
//! peer could name the same addresses in every PEX message and have every node it talks to
//! dial them each time.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct RecentDials<K> {
    at: HashMap<K, Instant>,
    hold: Duration,
    max: usize,
}

impl<K: Hash + Eq> RecentDials<K> {
    /// Remembers up to `max` targets for `hold` each.
    pub(super) fn new(hold: Duration, max: usize) -> Self {
        Self {
            at: HashMap::new(),
            hold,
            max,
        }
    }

    /// Whether `target` may be dialed at `now`; if so it counts as dialed from then on. Refused
    /// while it was dialed less than `hold` ago, and while `max` targets dialed within `hold`
    /// are remembered (a flood of new names waits until the old ones expire).
    pub(super) fn try_dial(&mut self, target: K, now: Instant) -> bool {
        let hold = self.hold;
        let fresh = |at: &Instant| now.saturating_duration_since(*at) < hold;
        if self.at.get(&target).is_some_and(fresh) {
            return false;
        }
        if self.at.len() >= self.max && !self.at.contains_key(&target) {
            self.at.retain(|_, at| fresh(at));
            if self.at.len() >= self.max {
                return false;
            }
        }
        self.at.insert(target, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_dialed_again_only_after_the_hold() {
        let start = Instant::now();
        let mut dials = RecentDials::new(Duration::from_secs(60), 10);
        assert!(dials.try_dial("a", start));
        assert!(!dials.try_dial("a", start + Duration::from_secs(59)));
        assert!(dials.try_dial("b", start + Duration::from_secs(59)));
        assert!(dials.try_dial("a", start + Duration::from_secs(60)));
    }

    #[test]
    fn a_full_memory_refuses_new_targets_until_old_ones_expire() {
        let start = Instant::now();
        let mut dials = RecentDials::new(Duration::from_secs(60), 2);
        assert!(dials.try_dial(1, start));
        assert!(dials.try_dial(2, start + Duration::from_secs(30)));
        assert!(!dials.try_dial(3, start + Duration::from_secs(59)));
        // 1 expired: room for one more, and 2 is still held.
        assert!(dials.try_dial(3, start + Duration::from_secs(60)));
        assert!(!dials.try_dial(2, start + Duration::from_secs(61)));
        assert_eq!(dials.at.len(), 2);
    }
}
