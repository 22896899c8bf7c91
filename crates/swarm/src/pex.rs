//! Peer exchange (`/shoal/pex/1`), the sans-IO half: whom to tell what, when, and how often a
//! peer may tell us. The node encodes the [`PexUpdate`]s with shoal-wire and feeds each
//! received message to [`PexState::on_received`] (or, when shoal-wire found it over a size
//! limit, to [`PexState::on_oversized`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use shoal_wire::{PEX_MAX_ADDED, PEX_MAX_DROPPED};

use crate::torrent::after;

/// Pacing and policing of peer exchange. `Default` gives one message a minute, as BEP 11, and
/// drops a peer whose fourth message in ten minutes breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PexConfig {
    /// Between two messages to one peer (default 60 s).
    pub interval: Duration,
    /// From a peer's connection to the first message we send it (default 5 s).
    pub first_delay: Duration,
    /// The shortest gap accepted between two messages from one peer (default 45 s: one a
    /// minute, with slack for timers).
    pub min_receive_gap: Duration,
    /// Messages that break the rules (too soon, or over a size limit) we ignore (throttle)
    /// within one [`PexConfig::violation_window`] before dropping the peer (default 3).
    pub max_violations: u32,
    /// How long a violation counts against a peer (default 10 min): an occasional early
    /// message from a peer with a jittery timer is forgiven; a flood is not.
    pub violation_window: Duration,
}

impl Default for PexConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            first_delay: Duration::from_secs(5),
            min_receive_gap: Duration::from_secs(45),
            max_violations: 3,
            violation_window: Duration::from_secs(10 * 60),
        }
    }
}

/// One message to send: to `to`, the peers added and dropped since we last told it (each list
/// at most [`PEX_MAX_ADDED`] / [`PEX_MAX_DROPPED`], in `P`'s order; the recipient itself never
/// appears).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PexUpdate<P> {
    pub to: P,
    pub added: Vec<P>,
    pub dropped: Vec<P>,
}

/// What to do with a received PEX message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PexVerdict {
    /// Use it: connect to (some of) the added peers.
    Accept,
    /// Ignore this message; the peer stays.
    Throttle,
    /// Ignore it and disconnect the peer: it broke the rules more than
    /// [`PexConfig::max_violations`] times within [`PexConfig::violation_window`].
    Drop,
}

/// Counters of one torrent's peer exchange, since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PexStats {
    /// Messages handed out by [`PexState::poll_send`].
    pub sent: u64,
    /// Peers announced as added, summed over those messages.
    pub added_sent: u64,
    /// Peers announced as dropped, summed over those messages.
    pub dropped_sent: u64,
    /// Messages passed to [`PexState::on_received`] or [`PexState::on_oversized`].
    pub received: u64,
    /// Of those, over a size limit ([`PexState::on_oversized`]); each is also throttled or
    /// dropped.
    pub oversized: u64,
    /// Of those, answered [`PexVerdict::Accept`].
    pub accepted: u64,
    /// Of those, answered [`PexVerdict::Throttle`].
    pub throttled: u64,
    /// Of those, answered [`PexVerdict::Drop`].
    pub dropped_peers: u64,
}

/// What we know of one connected peer.
#[derive(Debug)]
struct PeerPex<P> {
    /// When it gets its next message.
    next_due: Instant,
    /// The peers we have announced to it as added and not since as dropped.
    told: BTreeSet<P>,
    /// When its last accepted message arrived.
    last_accepted: Option<Instant>,
    /// When its messages that broke a rule arrived, oldest first; only those within the
    /// violation window are kept.
    violations: VecDeque<Instant>,
}

/// Per torrent: which peers we are connected to, what we last told each one, when each is
/// next due, and the receive-side rate limit. Generic over the peer identity so it needs no
/// libp2p (the node uses `PeerId`, tests small integers).
///
/// Drive it like the engine: report connections with [`PexState::peer_connected`] and
/// [`PexState::peer_disconnected`], call [`PexState::poll_send`] at [`PexState::next_due`] and
/// send what it returns, and ask [`PexState::on_received`] (or [`PexState::on_oversized`])
/// about each message that arrives.
#[derive(Debug)]
pub struct PexState<P> {
    config: PexConfig,
    peers: BTreeMap<P, PeerPex<P>>,
    stats: PexStats,
}

impl<P: Clone + Eq + std::hash::Hash + Ord> PexState<P> {
    /// No peers yet.
    pub fn new(config: PexConfig) -> Self {
        Self {
            config,
            peers: BTreeMap::new(),
            stats: PexStats::default(),
        }
    }

    /// A peer joined the torrent's swarm: it is "added" for the others; it gets its first
    /// message at `now + first_delay`. A peer already connected is left as it is.
    pub fn peer_connected(&mut self, peer: P, now: Instant) {
        let next_due = after(now, self.config.first_delay);
        self.peers.entry(peer).or_insert_with(|| PeerPex {
            next_due,
            told: BTreeSet::new(),
            last_accepted: None,
            violations: VecDeque::new(),
        });
    }

    /// It left: "dropped" for those we had told about it; forget its schedule and rate limit.
    pub fn peer_disconnected(&mut self, peer: &P) {
        self.peers.remove(peer);
    }

    /// Whether `peer` is connected (as far as this state knows).
    pub fn is_connected(&self, peer: &P) -> bool {
        self.peers.contains_key(peer)
    }

    /// Messages due at `now`: for each due peer, the diff between the current connected set
    /// (minus itself) and what we last told it, capped at [`PEX_MAX_ADDED`] /
    /// [`PEX_MAX_DROPPED`] (the rest goes next time). What is returned is recorded as told, and
    /// the peer is next due at `now + interval`. A due peer with an empty diff gets no message
    /// (its next-due still advances). The first message to a peer lists every connected peer
    /// (up to 50).
    pub fn poll_send(&mut self, now: Instant) -> Vec<PexUpdate<P>> {
        if !self.peers.values().any(|p| p.next_due <= now) {
            return Vec::new();
        }
        let connected: BTreeSet<P> = self.peers.keys().cloned().collect();
        let next_due = after(now, self.config.interval);
        let mut updates = Vec::new();
        for (peer, state) in self.peers.iter_mut().filter(|(_, s)| s.next_due <= now) {
            state.next_due = next_due;
            let added: Vec<P> = connected
                .difference(&state.told)
                .filter(|p| *p != peer)
                .take(PEX_MAX_ADDED)
                .cloned()
                .collect();
            let dropped: Vec<P> = state
                .told
                .difference(&connected)
                .take(PEX_MAX_DROPPED)
                .cloned()
                .collect();
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            for gone in &dropped {
                state.told.remove(gone);
            }
            state.told.extend(added.iter().cloned());
            self.stats.sent += 1;
            self.stats.added_sent += added.len() as u64;
            self.stats.dropped_sent += dropped.len() as u64;
            updates.push(PexUpdate {
                to: peer.clone(),
                added,
                dropped,
            });
        }
        updates
    }

    /// When [`PexState::poll_send`] next has something to do (the earliest next-due), if any
    /// peer is connected.
    pub fn next_due(&self) -> Option<Instant> {
        self.peers.values().map(|p| p.next_due).min()
    }

    /// A message within the size limits arrived from `from`. Arriving sooner than
    /// `min_receive_gap` after the previous accepted one is a violation; otherwise it is
    /// accepted. A violation is [`PexVerdict::Throttle`] until more than `max_violations` fall
    /// within `violation_window`, then [`PexVerdict::Drop`]. A peer not connected: Throttle.
    pub fn on_received(&mut self, from: &P, now: Instant) -> PexVerdict {
        self.stats.received += 1;
        let gap = self.config.min_receive_gap;
        let Some(state) = self.peers.get_mut(from) else {
            self.stats.throttled += 1;
            return PexVerdict::Throttle;
        };
        let too_soon = state
            .last_accepted
            .is_some_and(|t| now.saturating_duration_since(t) < gap);
        if too_soon {
            return self.violation(from, now);
        }
        state.last_accepted = Some(now);
        self.stats.accepted += 1;
        PexVerdict::Accept
    }

    /// A message from `from` broke a size limit (more than [`PEX_MAX_ADDED`] added or
    /// [`PEX_MAX_DROPPED`] dropped peers, or any other limit shoal-wire checks): always a
    /// violation, counted as in [`PexState::on_received`]. It does not count as the peer's
    /// message for the rate limit.
    pub fn on_oversized(&mut self, from: &P, now: Instant) -> PexVerdict {
        self.stats.received += 1;
        self.stats.oversized += 1;
        self.violation(from, now)
    }

    fn violation(&mut self, from: &P, now: Instant) -> PexVerdict {
        let window = self.config.violation_window;
        let Some(state) = self.peers.get_mut(from) else {
            self.stats.throttled += 1;
            return PexVerdict::Throttle;
        };
        while state
            .violations
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= window)
        {
            state.violations.pop_front();
        }
        state.violations.push_back(now);
        if state.violations.len() > self.config.max_violations as usize {
            self.stats.dropped_peers += 1;
            PexVerdict::Drop
        } else {
            self.stats.throttled += 1;
            PexVerdict::Throttle
        }
    }

    /// Counters for stats.
    pub fn stats(&self) -> PexStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
