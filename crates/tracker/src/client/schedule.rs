//! Sans-IO announce timing for one torrent: BEP 12 tiers, intervals, events and back-off.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use super::{AnnounceEvent, AnnounceReply, ClientError, MAX_INTERVAL, MIN_INTERVAL};

/// Wait after the first round in which every tracker failed.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(15);
/// Longest wait between failed rounds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// Most trackers kept from a torrent's announce list; the rest are ignored.
pub const MAX_TRACKERS: usize = 64;
/// Shortest back-off honoured, so that a misconfigured one cannot make a busy loop.
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// How long a torrent waits after a round in which every tracker failed: `first` after the
/// first such round, doubling with each further one in a row, at most `max` (both at least
/// [`MIN_BACKOFF`]). The default is [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceBackoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for AnnounceBackoff {
    fn default() -> Self {
        Self {
            first: FIRST_BACKOFF,
            max: MAX_BACKOFF,
        }
    }
}

impl AnnounceBackoff {
    /// The wait after `failed_rounds` (at least 1) failed rounds in a row.
    pub fn after(&self, failed_rounds: u32) -> Duration {
        let doublings = failed_rounds.saturating_sub(1).min(16);
        self.first
            .max(MIN_BACKOFF)
            .saturating_mul(1 << doublings)
            .min(self.max.max(MIN_BACKOFF))
    }
}

/// Figures for stats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceStats {
    /// Announces a tracker answered.
    pub ok: u64,
    /// Announces that failed (one per tracker tried).
    pub failed: u64,
    /// The wait before the next round, while every tracker is failing.
    pub backoff: Option<Duration>,
    /// The last error given to [`AnnounceSchedule::on_error`] (or a generic text for
    /// [`AnnounceSchedule::on_failure`]) since a tracker last answered; `None` once one does.
    pub last_error: Option<String>,
}

/// When and where a torrent announces.
///
/// Trackers come as BEP 12 tiers, shuffled within each tier with the seed given. Each
/// announce walks the tiers in order from the first tracker of the first tier, moving to the
/// next tracker as soon as one fails; a tracker that answers moves to the front of its tier.
/// Drive it like this: call [`poll`](Self::poll) (at [`next_due`](Self::next_due)), send the
/// announce it names, then report with [`on_success`](Self::on_success) or
/// [`on_failure`](Self::on_failure) / [`on_error`](Self::on_error).
#[derive(Debug, Clone)]
pub struct AnnounceSchedule {
    tiers: Vec<Vec<String>>,
    /// Position (tier, index) of the tracker to try next in this round.
    cursor: (usize, usize),
    /// When the next announce is due.
    next_at: Instant,
    /// The announce handed out by `poll` and not yet reported.
    in_flight: Option<(String, Option<AnnounceEvent>)>,
    /// `Started` or `Completed` until a tracker accepts it.
    pending_event: Option<AnnounceEvent>,
    completed_called: bool,
    stopped: bool,
    /// Rounds in a row in which every tracker failed.
    failed_rounds: u32,
    backoff: AnnounceBackoff,
    last_good: Option<String>,
    stats: AnnounceStats,
}

impl AnnounceSchedule {
    /// A schedule whose first announce (event `Started`) is due at `now`. Empty URLs, empty
    /// tiers and repeated URLs are dropped, and at most [`MAX_TRACKERS`] are kept.
    pub fn new(tiers: Vec<Vec<String>>, rng_seed: u64, now: Instant) -> Self {
        let mut rng = SmallRng::seed_from_u64(rng_seed);
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::new();
        for tier in tiers {
            let mut tier: Vec<String> = tier
                .into_iter()
                .map(|url| url.trim().to_owned())
                .filter(|url| {
                    !url.is_empty() && seen.len() < MAX_TRACKERS && seen.insert(url.clone())
                })
                .collect();
            if !tier.is_empty() {
                tier.shuffle(&mut rng);
                kept.push(tier);
            }
        }
        Self {
            tiers: kept,
            cursor: (0, 0),
            next_at: now,
            in_flight: None,
            pending_event: Some(AnnounceEvent::Started),
            completed_called: false,
            stopped: false,
            failed_rounds: 0,
            backoff: AnnounceBackoff::default(),
            last_good: None,
            stats: AnnounceStats::default(),
        }
    }

    /// The same schedule with another back-off after failed rounds.
    pub fn with_backoff(mut self, backoff: AnnounceBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The trackers in their current order of preference.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// The next announce if one is due at `now`: (url, event). It stays in flight, and
    /// `poll` returns `None`, until [`on_success`](Self::on_success) or
    /// [`on_failure`](Self::on_failure) is called for it.
    pub fn poll(&mut self, now: Instant) -> Option<(String, Option<AnnounceEvent>)> {
        if self.stopped || self.in_flight.is_some() || now < self.next_at {
            return None;
        }
        let url = self.tiers.get(self.cursor.0)?.get(self.cursor.1)?.clone();
        let announce = (url, self.pending_event);
        self.in_flight = Some(announce.clone());
        Some(announce)
    }

    /// When [`poll`](Self::poll) will next return something: `None` while an announce is in
    /// flight, after [`stopped`](Self::stopped), or without trackers. May be in the past.
    pub fn next_due(&self) -> Option<Instant> {
        if self.stopped || self.in_flight.is_some() || self.tiers.is_empty() {
            return None;
        }
        Some(self.next_at)
    }

    /// The tracker answered: the next regular announce is due at
    /// `now + max(interval, min_interval)` (at once if a `Completed` is still to be sent),
    /// the back-off and the last error are cleared and the tracker moves to the front of its
    /// tier. A report for an announce that is not in flight is ignored.
    pub fn on_success(&mut self, url: &str, reply: &AnnounceReply, now: Instant) {
        let Some(event) = self.take_in_flight(url) else {
            return;
        };
        if event.is_some() && event == self.pending_event {
            self.pending_event = None;
        }
        let (tier, index) = self.cursor;
        if let Some(list) = self.tiers.get_mut(tier) {
            if index < list.len() {
                let tracker = list.remove(index);
                list.insert(0, tracker);
            }
        }
        self.cursor = (0, 0);
        self.failed_rounds = 0;
        self.stats.ok += 1;
        self.stats.backoff = None;
        self.stats.last_error = None;
        self.last_good = Some(url.to_owned());
        let wait = reply
            .interval
            .max(reply.min_interval.unwrap_or_default())
            .clamp(MIN_INTERVAL, MAX_INTERVAL);
        self.next_at = if self.pending_event.is_some() {
            now
        } else {
            now + wait
        };
    }

    /// The announce failed: the next tracker in tier order is due at once with the same
    /// event; once every tracker failed in this round, the next round starts from the first
    /// tier after the back-off (by default 15 s, doubling each failed round up to 30 min;
    /// see [`AnnounceBackoff`]). A report for an announce that is not in flight is ignored.
    pub fn on_failure(&mut self, url: &str, now: Instant) {
        if self.take_in_flight(url).is_none() {
            return;
        }
        self.stats.failed += 1;
        self.stats.last_error = Some(format!("announce to {} failed", super::redact(url)));
        let (mut tier, mut index) = self.cursor;
        index += 1;
        if self.tiers.get(tier).is_some_and(|list| index >= list.len()) {
            tier += 1;
            index = 0;
        }
        if tier < self.tiers.len() {
            self.cursor = (tier, index);
            self.next_at = now;
            return;
        }
        self.cursor = (0, 0);
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        let backoff = self.backoff.after(self.failed_rounds);
        tracing::debug!(
            ?backoff,
            rounds = self.failed_rounds,
            "every tracker failed"
        );
        self.stats.backoff = Some(backoff);
        self.next_at = now + backoff;
    }

    /// [`on_failure`](Self::on_failure), keeping the error's text for [`AnnounceStats`].
    pub fn on_error(&mut self, url: &str, error: &ClientError, now: Instant) {
        let reported = self.in_flight.as_ref().is_some_and(|(u, _)| u == url);
        self.on_failure(url, now);
        if reported {
            self.stats.last_error = Some(error.to_string());
        }
    }

    /// The download finished: a `Completed` announce is due now (once per schedule). If an
    /// announce is in flight, it follows as soon as that one is reported.
    pub fn completed(&mut self, now: Instant) {
        if self.completed_called || self.stopped {
            return;
        }
        self.completed_called = true;
        self.pending_event = Some(AnnounceEvent::Completed);
        if self.in_flight.is_none() {
            self.cursor = (0, 0);
            self.next_at = now;
        }
    }

    /// The event still to be accepted by a tracker (`Started` or `Completed`), if any. A
    /// torrent that stops with `Completed` pending should send it before `Stopped`, so that
    /// the tracker counts the download.
    pub fn pending_event(&self) -> Option<AnnounceEvent> {
        self.pending_event
    }

    /// The torrent stops: the URL to send a final `Stopped` to (the last tracker that
    /// answered), if any. The schedule hands out nothing more after this.
    pub fn stopped(&mut self) -> Option<String> {
        self.stopped = true;
        self.in_flight = None;
        self.last_good.clone()
    }

    /// Figures for stats: announces ok, failures, current back-off, last error text.
    pub fn stats(&self) -> AnnounceStats {
        self.stats.clone()
    }

    /// Ends the in-flight announce if it is for `url`; returns its event.
    fn take_in_flight(&mut self, url: &str) -> Option<Option<AnnounceEvent>> {
        match &self.in_flight {
            Some((in_flight, _)) if in_flight == url => self.in_flight.take().map(|(_, e)| e),
            _ => {
                tracing::debug!(tracker = %super::redact(url), "report for an announce not in flight");
                None
            }
        }
    }
}
