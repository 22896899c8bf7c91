//! Transfer rates over a sliding window, in whole-second buckets (integer arithmetic, so the
//! same inputs always give the same rate).

use std::collections::VecDeque;
use std::time::Instant;

/// Length of the window rates are averaged over (the reference choker uses 20 s).
pub(crate) const RATE_WINDOW_SECS: u64 = 20;

/// Bytes per second over the last [`RATE_WINDOW_SECS`], or since the meter started if that is
/// more recent (at least one second, so a fresh meter does not report a burst as a huge rate).
#[derive(Debug, Clone)]
pub(crate) struct RateMeter {
    start: Instant,
    total: u64,
    /// (second since `start`, bytes in that second), oldest first.
    buckets: VecDeque<(u64, u64)>,
}

impl RateMeter {
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            start,
            total: 0,
            buckets: VecDeque::new(),
        }
    }

    pub(crate) fn record(&mut self, now: Instant, bytes: u64) {
        let second = self.second(now);
        self.total = self.total.saturating_add(bytes);
        match self.buckets.back_mut() {
            Some((s, b)) if *s == second => *b = b.saturating_add(bytes),
            _ => self.buckets.push_back((second, bytes)),
        }
        self.prune(second);
    }

    /// All bytes ever recorded.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn rate(&self, now: Instant) -> u64 {
        let second = self.second(now);
        let oldest = second.saturating_sub(RATE_WINDOW_SECS - 1);
        let bytes: u64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s >= oldest && *s <= second)
            .map(|(_, b)| b)
            .sum();
        let elapsed = now.saturating_duration_since(self.start).as_secs();
        let span = elapsed.clamp(1, RATE_WINDOW_SECS);
        bytes / span
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs()
    }

    fn prune(&mut self, second: u64) {
        let oldest = second.saturating_sub(RATE_WINDOW_SECS - 1);
        while self.buckets.front().is_some_and(|(s, _)| *s < oldest) {
            self.buckets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn averages_over_elapsed_then_window() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        m.record(t0, 1000);
        assert_eq!(
            m.rate(t0),
            1000,
            "a fresh meter divides by one second, not zero"
        );
        for s in 1..40 {
            m.record(t0 + Duration::from_secs(s), 1000);
        }
        let now = t0 + Duration::from_secs(39);
        assert_eq!(m.rate(now), 1000);
        assert_eq!(m.total(), 40_000);
        assert_eq!(m.rate(now + Duration::from_secs(10)), 500);
        assert_eq!(m.rate(now + Duration::from_secs(100)), 0);
        assert!(m.buckets.len() <= RATE_WINDOW_SECS as usize);
    }
}
