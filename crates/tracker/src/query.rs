//! Announce and scrape query strings, parsed on raw bytes: values are percent-decoded to bytes
//! (an info-hash is binary, not UTF-8) into fixed buffers, so parsing allocates nothing unless
//! it fails.

use std::net::IpAddr;

use shoal_metainfo::InfoHash;

use crate::config::{MAX_PARAM_LEN, MAX_SCRAPE_HASHES};
use crate::error::TrackerError;

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A regular announce (no event, or `event=empty`).
    None,
    Started,
    Completed,
    Stopped,
}

/// The `ip` parameter as sent; it counts only from a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpParam {
    Absent,
    Valid(IpAddr),
    /// Present but not an IP address (BEP 3 also allows a DNS name, which we do not resolve).
    Invalid,
}

/// A parsed announce (BEP 3, with BEP 23 `compact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    /// BEP 23 compact peer lists; on unless the client sends `compact=0`.
    pub compact: bool,
    pub numwant: Option<u32>,
    pub no_peer_id: bool,
    pub ip: IpParam,
}

impl AnnounceRequest {
    /// Parses a query string (without the `?`). Unknown parameters are ignored, as clients
    /// send extensions (`key`, `trackerid`, `supportcrypto`, ...); `key` and `trackerid` are
    /// only checked for length.
    pub fn parse(query: &[u8]) -> Result<Self, TrackerError> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut uploaded = None;
        let mut downloaded = None;
        let mut left = None;
        let mut event = None;
        let mut compact = true;
        let mut numwant = None;
        let mut no_peer_id = false;
        let mut ip = IpParam::Absent;
        for (key, value) in pairs(query) {
            match key {
                b"info_hash" => set_once(&mut info_hash, "info_hash", || {
                    decode_20(value, "info_hash").map(InfoHash)
                })?,
                b"peer_id" => set_once(&mut peer_id, "peer_id", || decode_20(value, "peer_id"))?,
                b"port" => set_once(&mut port, "port", || parse_port(value))?,
                b"uploaded" => set_once(&mut uploaded, "uploaded", || number(value, "uploaded"))?,
                b"downloaded" => set_once(&mut downloaded, "downloaded", || {
                    number(value, "downloaded")
                })?,
                b"left" => set_once(&mut left, "left", || number(value, "left"))?,
                b"event" => set_once(&mut event, "event", || parse_event(value))?,
                b"compact" => compact = flag(value, "compact")?,
                b"no_peer_id" => no_peer_id = flag(value, "no_peer_id")?,
                b"numwant" => {
                    let n = number(value, "numwant")?;
                    numwant = Some(u32::try_from(n).unwrap_or(u32::MAX));
                }
                b"ip" => ip = parse_ip(value)?,
                b"key" => check_len(value, "key")?,
                b"trackerid" => check_len(value, "trackerid")?,
                _ => {}
            }
        }
        Ok(Self {
            info_hash: info_hash.ok_or(TrackerError::Missing { param: "info_hash" })?,
            peer_id: peer_id.ok_or(TrackerError::Missing { param: "peer_id" })?,
            port: port.ok_or(TrackerError::Missing { param: "port" })?,
            uploaded: uploaded.ok_or(TrackerError::Missing { param: "uploaded" })?,
            downloaded: downloaded.ok_or(TrackerError::Missing {
                param: "downloaded",
            })?,
            left: left.ok_or(TrackerError::Missing { param: "left" })?,
            event: event.unwrap_or(Event::None),
            compact,
            numwant,
            no_peer_id,
            ip,
        })
    }
}

/// The info-hashes of a scrape (BEP 48); empty means a full scrape.
pub fn parse_scrape(query: &[u8]) -> Result<Vec<InfoHash>, TrackerError> {
    let mut hashes = Vec::new();
    for (key, value) in pairs(query) {
        if key == b"info_hash" {
            if hashes.len() == MAX_SCRAPE_HASHES {
                return Err(TrackerError::TooManyHashes {
                    max: MAX_SCRAPE_HASHES,
                });
            }
            hashes.push(InfoHash(decode_20(value, "info_hash")?));
        }
    }
    Ok(hashes)
}

/// The peer's address: the connection's, or `ip` when the connection is a trusted proxy.
pub fn peer_ip(remote: IpAddr, ip: IpParam, trusted: &[IpAddr]) -> Result<IpAddr, TrackerError> {
    let remote = remote.to_canonical();
    if !trusted.contains(&remote) {
        return Ok(remote);
    }
    match ip {
        IpParam::Absent => Ok(remote),
        IpParam::Valid(ip) => Ok(ip.to_canonical()),
        IpParam::Invalid => Err(TrackerError::BadIp {
            ip: "(not an address)".into(),
        }),
    }
}

/// `key=value` pairs split on `&`; keys are compared raw (clients never escape them).
fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| match part.iter().position(|&b| b == b'=') {
            Some(eq) => (&part[..eq], &part[eq + 1..]),
            None => (part, &part[part.len()..]),
        })
}

fn set_once<T>(
    slot: &mut Option<T>,
    param: &'static str,
    parse: impl FnOnce() -> Result<T, TrackerError>,
) -> Result<(), TrackerError> {
    if slot.is_some() {
        return Err(TrackerError::Duplicate { param });
    }
    *slot = Some(parse()?);
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw`, calling `push` with each byte. `+` stays `+`: it is a literal byte
/// of a binary value, not a space.
fn decode(
    raw: &[u8],
    param: &'static str,
    mut push: impl FnMut(u8) -> Result<(), TrackerError>,
) -> Result<(), TrackerError> {
    let mut i = 0;
    while i < raw.len() {
        let byte = if raw[i] == b'%' {
            let (Some(hi), Some(lo)) = (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(TrackerError::BadEscape { param });
            };
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            raw[i - 1]
        };
        push(byte)?;
    }
    Ok(())
}

/// Decodes into `buf`; a value longer than `buf` is [`TrackerError::TooLong`].
fn decode_into<'b>(
    raw: &[u8],
    param: &'static str,
    buf: &'b mut [u8],
) -> Result<&'b [u8], TrackerError> {
    let max = buf.len();
    let mut len = 0;
    decode(raw, param, |b| {
        *buf.get_mut(len)
            .ok_or(TrackerError::TooLong { param, max })? = b;
        len += 1;
        Ok(())
    })?;
    Ok(&buf[..len])
}

fn decode_20(raw: &[u8], param: &'static str) -> Result<[u8; 20], TrackerError> {
    let mut out = [0u8; 20];
    let mut len = 0;
    decode(raw, param, |b| {
        if let Some(slot) = out.get_mut(len) {
            *slot = b;
        }
        len += 1;
        Ok(())
    })?;
    if len != 20 {
        return Err(TrackerError::WrongLength { param, len });
    }
    Ok(out)
}

/// A decimal `u64`: digits only, no sign, no overflow.
fn number(raw: &[u8], param: &'static str) -> Result<u64, TrackerError> {
    let mut buf = [0u8; 24];
    let digits =
        decode_into(raw, param, &mut buf).map_err(|_| TrackerError::NotANumber { param })?;
    if digits.is_empty() {
        return Err(TrackerError::NotANumber { param });
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return Err(TrackerError::NotANumber { param });
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(TrackerError::NotANumber { param })
    })
}

fn parse_port(raw: &[u8]) -> Result<u16, TrackerError> {
    let n = number(raw, "port").map_err(|_| TrackerError::BadPort)?;
    match u16::try_from(n) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(TrackerError::BadPort),
    }
}

fn flag(raw: &[u8], param: &'static str) -> Result<bool, TrackerError> {
    Ok(number(raw, param)? != 0)
}

fn parse_event(raw: &[u8]) -> Result<Event, TrackerError> {
    let mut buf = [0u8; 16];
    let unknown = || TrackerError::UnknownEvent {
        event: String::from_utf8_lossy(&raw[..raw.len().min(32)]).into_owned(),
    };
    match decode_into(raw, "event", &mut buf).map_err(|_| unknown())? {
        b"" | b"empty" => Ok(Event::None),
        b"started" => Ok(Event::Started),
        b"completed" => Ok(Event::Completed),
        b"stopped" => Ok(Event::Stopped),
        _ => Err(unknown()),
    }
}

fn parse_ip(raw: &[u8]) -> Result<IpParam, TrackerError> {
    let mut buf = [0u8; MAX_PARAM_LEN];
    let text = decode_into(raw, "ip", &mut buf)?;
    Ok(std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(IpParam::Invalid, IpParam::Valid))
}

fn check_len(raw: &[u8], param: &'static str) -> Result<(), TrackerError> {
    let mut buf = [0u8; MAX_PARAM_LEN];
    decode_into(raw, param, &mut buf).map(|_| ())
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
