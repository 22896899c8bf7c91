//! `/stats` (JSON) and `/metrics` (Prometheus text): request counters and swarm totals.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::swarm::TrackerStats;

/// Announces per second are averaged over this many one-second samples.
const RATE_WINDOW: usize = 5;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub announces: AtomicU64,
    pub scrapes: AtomicU64,
    pub failures: AtomicU64,
    /// f64 bits.
    announce_rate: AtomicU64,
}

impl Counters {
    fn announce_rate(&self) -> f64 {
        f64::from_bits(self.announce_rate.load(Ordering::Relaxed))
    }

    pub(crate) fn stats_json(&self, t: TrackerStats) -> Vec<u8> {
        let stats = serde_json::json!({
            "swarms": t.swarms,
            "peers": t.peers,
            "seeders": t.seeders,
            "leechers": t.peers - t.seeders,
            "announces": self.announces.load(Ordering::Relaxed),
            "announces_per_second": self.announce_rate(),
            "scrapes": self.scrapes.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
        });
        let mut body = stats.to_string().into_bytes();
        body.push(b'\n');
        body
    }

    pub(crate) fn metrics_text(&self, t: TrackerStats) -> String {
        let c = self;
        let rows: [(&str, &str, &str, String); 8] = [
            ("swarms", "gauge", "Torrents tracked.", t.swarms.to_string()),
            (
                "peers",
                "gauge",
                "Peers in all torrents.",
                t.peers.to_string(),
            ),
            (
                "seeders",
                "gauge",
                "Peers with nothing left to download.",
                t.seeders.to_string(),
            ),
            (
                "leechers",
                "gauge",
                "Peers still downloading.",
                (t.peers - t.seeders).to_string(),
            ),
            (
                "announces_total",
                "counter",
                "Announces answered.",
                c.announces.load(Ordering::Relaxed).to_string(),
            ),
            (
                "announces_per_second",
                "gauge",
                "Announces per second over the last seconds.",
                self.announce_rate().to_string(),
            ),
            (
                "scrapes_total",
                "counter",
                "Scrapes answered.",
                c.scrapes.load(Ordering::Relaxed).to_string(),
            ),
            (
                "failures_total",
                "counter",
                "Requests answered with a failure reason.",
                c.failures.load(Ordering::Relaxed).to_string(),
            ),
        ];
        let mut text = String::new();
        for (name, kind, help, value) in rows {
            text.push_str(&format!(
                "# HELP shoal_tracker_{name} {help}\n# TYPE shoal_tracker_{name} {kind}\nshoal_tracker_{name} {value}\n"
            ));
        }
        text
    }

    pub(crate) fn sample_rate(&self, samples: &mut VecDeque<(Instant, u64)>) {
        let now = Instant::now();
        samples.push_back((now, self.announces.load(Ordering::Relaxed)));
        if samples.len() > RATE_WINDOW {
            samples.pop_front();
        }
        let rate = match (samples.front(), samples.back()) {
            (Some(&(t0, n0)), Some(&(t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        };
        self.announce_rate.store(rate.to_bits(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rate_is_averaged_over_the_window() {
        let counters = Counters::default();
        let mut samples = VecDeque::new();
        let t0 = Instant::now();
        samples.push_back((t0 - Duration::from_secs(2), 0));
        counters.announces.store(500, Ordering::Relaxed);
        counters.sample_rate(&mut samples);
        let rate = counters.announce_rate();
        assert!(rate > 240.0 && rate <= 250.0, "{rate}");
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let counters = Counters::default();
        counters.announces.store(3, Ordering::Relaxed);
        let totals = TrackerStats {
            swarms: 1,
            peers: 5,
            seeders: 2,
        };
        let text = counters.metrics_text(totals);
        assert!(text.contains(
            "# HELP shoal_tracker_leechers Peers still downloading.\n\
             # TYPE shoal_tracker_leechers gauge\nshoal_tracker_leechers 3\n"
        ));
        assert!(text.contains("\nshoal_tracker_announces_total 3\n"));
        let json: serde_json::Value = serde_json::from_slice(&counters.stats_json(totals)).unwrap();
        assert_eq!(json["leechers"], 3);
        assert_eq!(json["announces"], 3);
    }
}
