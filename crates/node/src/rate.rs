//! Bandwidth: a rate with human units (`2MiB/s`), and the token bucket that enforces one.
//!
//! The bucket is plain arithmetic over `Instant`s (no timers of its own): the stream tasks ask
//! it how long to wait before moving `n` bytes, and sleep that long.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(pub u64);

/// Why a rate string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate {input:?}: {reason} (examples: 500KiB/s, 2MiB/s, 10MB/s, 1048576)")]
pub struct RateParseError {
    input: String,
    reason: &'static str,
}

impl FromStr for Rate {
    type Err = RateParseError;

    /// Accepts a number of bytes per second with an optional unit: B, KB/MB/GB (powers of 1000),
    /// KiB/MiB/GiB (powers of 1024), each optionally followed by `/s`. Decimals are allowed.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| RateParseError {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let text = text.strip_suffix("/s").unwrap_or(text).trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 = number.parse().map_err(|_| err("not a number"))?;
        let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(err("unknown unit")),
        };
        let bytes = value * scale;
        if !bytes.is_finite() || !(1.0..=1e15).contains(&bytes) {
            return Err(err("must be between 1 B/s and 1 PB/s"));
        }
        Ok(Rate(bytes as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, f64); 3] = [
            ("GiB/s", 1024.0 * 1024.0 * 1024.0),
            ("MiB/s", 1024.0 * 1024.0),
            ("KiB/s", 1024.0),
        ];
        let value = self.0 as f64;
        for (unit, scale) in UNITS {
            if value >= scale {
                return write!(f, "{:.2} {unit}", value / scale);
            }
        }
        write!(f, "{} B/s", self.0)
    }
}

/// A token bucket: `rate` bytes per second on average, bursts up to `burst` bytes.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket that starts full. `burst` is at least one 16 KiB block plus framing, so a
    /// single message can always pass.
    pub fn new(rate: Rate, burst: u64, now: Instant) -> Self {
        let burst = burst.max(32 * 1024) as f64;
        Self {
            rate: rate.0 as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `bytes` tokens, going into debt if needed, and returns how long the caller must
    /// wait before moving those bytes (zero if they were there).
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_units() {
        let cases = [
            ("2MiB/s", 2 * 1024 * 1024),
            ("500KiB/s", 500 * 1024),
            ("10MB/s", 10_000_000),
            ("1.5 KiB", 1536),
            ("1048576", 1_048_576),
            ("3gb/s", 3_000_000_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(text.parse::<Rate>(), Ok(Rate(bytes)), "{text}");
        }
        for bad in ["", "fast", "2XB/s", "0", "-5MiB/s", "0.1", "1e30"] {
            let err = bad.parse::<Rate>().unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid rate {bad:?}")), "{err}");
        }
        assert_eq!(Rate(2 * 1024 * 1024).to_string(), "2.00 MiB/s");
        assert_eq!(Rate(512).to_string(), "512 B/s");
    }

    #[test]
    fn bucket_enforces_the_rate_after_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Rate(100_000), 50_000, start);
        assert_eq!(bucket.take(50_000, start), Duration::ZERO);
        // The next 100 kB must wait one second: nothing has refilled yet.
        assert_eq!(bucket.take(100_000, start), Duration::from_secs(1));
        // After that second the debt is paid and the bucket is empty again.
        let later = start + Duration::from_secs(1);
        assert_eq!(bucket.take(0, later), Duration::ZERO);
        // Over a long run the average equals the rate: 10 s move ~1 MB + the burst.
        let mut now = later;
        let mut moved = 0u64;
        while now < later + Duration::from_secs(10) {
            now += bucket.take(16_384, now);
            moved += 16_384;
        }
        let expected = 100_000.0 * 10.0;
        assert!((moved as f64 - expected).abs() < 20_000.0, "moved {moved}");
    }
}
