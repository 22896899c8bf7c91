//! Reading values out of the scenario text: sizes, rates, durations and bounded integers, and
//! finding the line, table and key a byte offset belongs to, for error messages.

use std::ops::Range;
use std::time::Duration;

use toml::{Spanned, Value};

use super::ScenarioError;
use super::raw::Sv;

/// Longest duration accepted anywhere (a week): keeps `Duration` arithmetic far from overflow.
const MAX_DURATION_S: f64 = 7.0 * 24.0 * 3600.0;

/// The source text and its name, for error messages.
pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
}

impl Ctx<'_> {
    /// 1-based line of a byte offset.
    pub(super) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(super) fn err(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Value {
            origin: self.origin.to_owned(),
            line: self.line(span.start),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A byte size: an integer, or a string like "32MiB", "500KB".
    pub(super) fn size(&self, v: &Sv, key: &str) -> Result<u64, ScenarioError> {
        let bad = |got: &Value| {
            self.err(
                v.span(),
                key,
                format!("expected a size like \"32MiB\" or a number of bytes, got {got}"),
            )
        };
        match v.get_ref() {
            Value::Integer(n) if *n > 0 => Ok(*n as u64),
            Value::String(s) if !s.trim().ends_with("/s") => s
                .parse::<shoal_node::Rate>()
                .map(|r| r.0)
                .map_err(|_| bad(v.get_ref())),
            other => Err(bad(other)),
        }
    }

    /// A rate in bytes per second: an integer, or a string like "2MiB/s".
    pub(super) fn rate(&self, v: &Sv, key: &str) -> Result<u64, ScenarioError> {
        match v.get_ref() {
            Value::Integer(n) if *n > 0 => Ok(*n as u64),
            Value::String(s) => s
                .parse::<shoal_node::Rate>()
                .map(|r| r.0)
                .map_err(|e| self.err(v.span(), key, e.to_string())),
            other => Err(self.err(
                v.span(),
                key,
                format!("expected a rate like \"2MiB/s\" or a positive number of bytes per second, got {other}"),
            )),
        }
    }

    /// A duration: seconds as a number, or a string like "90s", "5m", "500ms", "1h".
    pub(super) fn duration(&self, v: &Sv, key: &str) -> Result<Duration, ScenarioError> {
        let secs = match v.get_ref() {
            Value::Integer(n) => Some(*n as f64),
            Value::Float(f) => Some(*f),
            Value::String(s) => parse_duration_str(s),
            _ => None,
        };
        match secs {
            Some(s) if s.is_finite() && (0.0..=MAX_DURATION_S).contains(&s) => {
                Ok(Duration::from_secs_f64(s))
            }
            _ => Err(self.err(
                v.span(),
                key,
                format!(
                    "expected a duration like \"90s\", \"5m\" or a number of seconds (0 to one week), got {}",
                    v.get_ref()
                ),
            )),
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn int(
        &self,
        v: &Spanned<i64>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<u32, ScenarioError> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            u32::try_from(n).map_err(|_| self.err(v.span(), key, format!("{n} is out of range")))
        } else if min == 1 && n < 1 {
            Err(self.err(
                v.span(),
                key,
                format!("expected a positive integer, got {n}"),
            ))
        } else {
            Err(self.err(
                v.span(),
                key,
                format!("expected an integer from {min} to {max}, got {n}"),
            ))
        }
    }
}

/// "90s", "5m", "1.5h", "500ms", "30" (seconds) → seconds.
fn parse_duration_str(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(value * scale)
}

/// Which table a byte offset is in, by the nearest `[table]` or `[[array]]` header above it:
/// a description (`"the top level"`, `"[content]"`, `"[[groups]] #2 (groups[1])"`) and a key
/// path prefix (`""`, `"content"`, `"groups[1]"`).
pub(super) fn table_at(text: &str, offset: usize) -> (String, String) {
    // Up to the end of the offset's line: a span may start at its own table's header.
    let offset = offset.min(text.len());
    let end = text
        .get(offset..)
        .and_then(|t| t.find('\n'))
        .map_or(text.len(), |i| offset + i);
    let before = text.get(..end).unwrap_or(text);
    let mut current: Option<(String, bool)> = None;
    let mut arrays: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for line in before.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let name = name.trim().to_owned();
            *arrays.entry(name.clone()).or_default() += 1;
            current = Some((name, true));
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some((name.trim().to_owned(), false));
        }
    }
    match current {
        None => ("the top level".to_owned(), String::new()),
        Some((name, false)) => (format!("[{name}]"), name),
        Some((name, true)) => {
            let n = arrays.get(&name).copied().unwrap_or(1);
            let path = format!("{name}[{}]", n.saturating_sub(1));
            (format!("[[{name}]] #{n} ({path})"), path)
        }
    }
}

/// The key whose value starts at `offset`, read from the text of its line: `role` for
/// `role = "x"`, `discovery.dht` for `discovery = { dht = "x" }`. `None` if the line has no
/// `key =` before the offset.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let mut keys = Vec::new();
    for part in line.split('=').rev().skip(1) {
        let key = part.rsplit(['{', ',']).next().unwrap_or("").trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c))
        {
            break;
        }
        keys.push(key.trim_matches('"').to_owned());
        if !part.contains('{') {
            break;
        }
    }
    keys.reverse();
    (!keys.is_empty()).then(|| keys.join("."))
}
