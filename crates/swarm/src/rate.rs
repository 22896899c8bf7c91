//! Transfer rates over a sliding window, in whole-second buckets (integer arithmetic, so the
//! same inputs always give the same rate).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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

    /// Bytes per second over the last one to two seconds (the current second and the one
    /// before; at least half a second): quick to follow a peer that just sped up, where
    /// [`Self::rate`] lags by up to its whole window.
    pub(crate) fn recent_rate(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        let second = elapsed.as_secs();
        let bytes: u64 = self
            .buckets
            .iter()
            .rev()
            .take_while(|(s, _)| *s + 1 >= second)
            .filter(|(s, _)| *s <= second)
            .map(|(_, b)| b)
            .sum();
        let into_second = u64::from(elapsed.subsec_millis());
        let span_ms = if second == 0 {
            into_second
        } else {
            1000 + into_second
        };
        bytes.saturating_mul(1000) / span_ms.max(500)
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

/// How long min-RTT samples count: the smallest of the current and the previous window.
const RTT_WINDOW: Duration = Duration::from_secs(10);

/// The smallest round trip (request sent to block received) seen lately from one peer: a
/// floor under the time its request pipeline must cover. Queueing at the peer only ever adds
/// to a sample, so the minimum is the closest to the path's own round trip.
#[derive(Debug, Clone)]
pub(crate) struct MinRtt {
    current: Option<Duration>,
    previous: Option<Duration>,
    window_start: Instant,
}

impl MinRtt {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            current: None,
            previous: None,
            window_start: now,
        }
    }

    pub(crate) fn record(&mut self, now: Instant, sample: Duration) {
        if now.saturating_duration_since(self.window_start) >= RTT_WINDOW {
            self.previous = self.current.take();
            self.window_start = now;
        }
        self.current = Some(self.current.map_or(sample, |c| c.min(sample)));
    }

    pub(crate) fn get(&self) -> Option<Duration> {
        match (self.current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn min_rtt_forgets_old_windows() {
        let t0 = Instant::now();
        let mut rtt = MinRtt::new(t0);
        assert_eq!(rtt.get(), None);
        rtt.record(t0, Duration::from_millis(300));
        rtt.record(t0 + Duration::from_secs(1), Duration::from_millis(40));
        rtt.record(t0 + Duration::from_secs(2), Duration::from_millis(90));
        assert_eq!(rtt.get(), Some(Duration::from_millis(40)));
        // A new window keeps the last one's minimum...
        rtt.record(t0 + Duration::from_secs(11), Duration::from_millis(200));
        assert_eq!(rtt.get(), Some(Duration::from_millis(40)));
        // ...and drops it a window later: the path got slower.
        rtt.record(t0 + Duration::from_secs(22), Duration::from_millis(250));
        assert_eq!(rtt.get(), Some(Duration::from_millis(200)));
    }

    #[test]
    fn recent_rate_follows_a_burst_at_once() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        // Idle for 30 s, then 300 kB within 600 ms.
        let burst = t0 + Duration::from_millis(30_000);
        for i in 0..3 {
            m.record(burst + Duration::from_millis(200 * i), 100_000);
        }
        let now = burst + Duration::from_millis(600);
        assert_eq!(m.rate(now), 15_000, "the 20 s average barely moves");
        assert_eq!(m.recent_rate(now), 187_500, "300 kB over the last 1.6 s");
        assert_eq!(m.recent_rate(t0 + Duration::from_millis(100)), 0);
        assert_eq!(
            m.recent_rate(now + Duration::from_secs(2)),
            0,
            "forgotten two seconds later"
        );
    }
}
