//! Magnet URIs (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=..&tr=..&xl=..&x.pe=..`.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::MetainfoError;
use crate::info_hash::InfoHash;

/// Longest magnet link accepted, in bytes.
pub const MAX_MAGNET_LEN: usize = 64 * 1024;
/// Most `tr` or `x.pe` parameters accepted in one link.
pub const MAX_MAGNET_LIST: usize = 256;

/// Characters left as they are when encoding a parameter (RFC 3986 unreserved, plus the few
/// that URLs and multiaddrs are full of and that are safe inside a query value).
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':');

/// A parsed magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs.
    pub trackers: Vec<String>,
    /// `x.pe`: peers, as `host:port` or libp2p multiaddr strings (the node parses them).
    pub peers: Vec<String>,
    /// `xl`: total size in bytes.
    pub exact_length: Option<u64>,
}

impl Magnet {
    pub fn new(info_hash: InfoHash) -> Self {
        Self {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            exact_length: None,
        }
    }
}

fn decode_value(key: &str, raw: &str) -> Result<String, MetainfoError> {
    // '+' stands for a space in query strings, as libtorrent and browsers read them.
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            MetainfoError::magnet(format!("{key} is not valid UTF-8 once percent-decoded"))
        })
}

fn parse_xt(value: &str) -> Result<Option<InfoHash>, MetainfoError> {
    let lower = value.to_ascii_lowercase();
    if let Some(hash) = lower.strip_prefix("urn:btih:") {
        let hash = &value[value.len() - hash.len()..];
        return hash
            .parse()
            .map(Some)
            .map_err(|e| MetainfoError::magnet(format!("xt: {e}")));
    }
    if lower.starts_with("urn:btmh:") {
        return Ok(None);
    }
    Err(MetainfoError::magnet(format!(
        "xt {value:?} is not urn:btih:<40 hex or 32 base32 characters>"
    )))
}

impl FromStr for Magnet {
    type Err = MetainfoError;

    fn from_str(uri: &str) -> Result<Self, Self::Err> {
        if uri.len() > MAX_MAGNET_LEN {
            return Err(MetainfoError::magnet(format!(
                "{} bytes long, more than the limit of {MAX_MAGNET_LEN}",
                uri.len()
            )));
        }
        let query = uri
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("magnet:?"))
            .map(|_| &uri[8..])
            .ok_or_else(|| MetainfoError::magnet("does not start with 'magnet:?'"))?;
        let mut info_hash = None;
        let mut saw_v2 = false;
        let mut magnet = Magnet::new(InfoHash([0; 20]));
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode_value(key, raw)?;
            match key {
                "xt" => match parse_xt(&value)? {
                    Some(hash) if info_hash.is_some_and(|h| h != hash) => {
                        return Err(MetainfoError::magnet("two different urn:btih info-hashes"));
                    }
                    Some(hash) => info_hash = Some(hash),
                    None => saw_v2 = true,
                },
                "dn" => magnet.display_name = Some(value).filter(|v| !v.is_empty()),
                "xl" => {
                    let length = value.parse().map_err(|_| {
                        MetainfoError::magnet(format!("xl {value:?} is not a byte count"))
                    })?;
                    magnet.exact_length = Some(length);
                }
                "tr" => push_limited(&mut magnet.trackers, "tr", value)?,
                "x.pe" => push_limited(&mut magnet.peers, "x.pe", value)?,
                _ => {}
            }
        }
        magnet.info_hash = match (info_hash, saw_v2) {
            (Some(hash), _) => hash,
            (None, true) => {
                return Err(MetainfoError::magnet(
                    "only a v2 (urn:btmh) info-hash: BEP 52 v2-only torrents are not supported",
                ));
            }
            (None, false) => return Err(MetainfoError::magnet("missing xt=urn:btih:<info-hash>")),
        };
        Ok(magnet)
    }
}

fn push_limited(list: &mut Vec<String>, key: &str, value: String) -> Result<(), MetainfoError> {
    if list.len() >= MAX_MAGNET_LIST {
        return Err(MetainfoError::magnet(format!(
            "more than {MAX_MAGNET_LIST} {key} parameters"
        )));
    }
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
    }
    Ok(())
}

impl Magnet {
    /// Drops trackers from the end of the list until the link is at most `max_len` bytes.
    pub(crate) fn trim_trackers(&mut self, max_len: usize) {
        let mut len = self.to_string().len();
        while len > max_len {
            let Some(tracker) = self.trackers.pop() else {
                break;
            };
            len -= "&tr=".len() + utf8_percent_encode(&tracker, VALUE).to_string().len();
        }
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(name) = &self.display_name {
            write!(f, "&dn={}", utf8_percent_encode(name, VALUE))?;
        }
        if let Some(length) = self.exact_length {
            write!(f, "&xl={length}")?;
        }
        for tracker in &self.trackers {
            write!(f, "&tr={}", utf8_percent_encode(tracker, VALUE))?;
        }
        for peer in &self.peers {
            write!(f, "&x.pe={}", utf8_percent_encode(peer, VALUE))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c0fda1edafdbdbb96443424e0b3899af7159d10e";

    #[test]
    fn parses_every_field() {
        let uri = format!(
            "magnet:?xt=urn:btih:{}&dn=my+file%20%C3%A9&xl=425&tr=http%3A%2F%2Ft.example%2Fannounce%3Fa%3D1%26b%3D2\
             &tr=udp://u.example:80&x.pe=127.0.0.1:6881\
             &x.pe=%2Fip4%2F127.0.0.1%2Ftcp%2F4001%2Fp2p%2F12D3KooWAbc&ws=ignored",
            HEX.to_uppercase()
        );
        let m: Magnet = uri.parse().unwrap();
        assert_eq!(m.info_hash.to_hex(), HEX);
        assert_eq!(m.display_name.as_deref(), Some("my file é"));
        assert_eq!(m.exact_length, Some(425));
        assert_eq!(
            m.trackers,
            ["http://t.example/announce?a=1&b=2", "udp://u.example:80"]
        );
        assert_eq!(
            m.peers,
            ["127.0.0.1:6881", "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWAbc"]
        );
    }

    #[test]
    fn base32_hash() {
        let hash: InfoHash = HEX.parse().unwrap();
        let m: Magnet = format!("magnet:?xt=urn:btih:{}", hash.to_base32())
            .parse()
            .unwrap();
        assert_eq!(m.info_hash, hash);
    }

    #[test]
    fn display_round_trips() {
        let mut m = Magnet::new(HEX.parse().unwrap());
        m.display_name = Some("a b&c=d/é+".into());
        m.trackers = vec!["http://t.example/ann?x=1&y=2".into()];
        m.peers = vec!["/ip4/127.0.0.1/tcp/1/p2p/12D3Koo".into()];
        m.exact_length = Some(7);
        let text = m.to_string();
        assert!(text.starts_with(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=a%20b%26c%3Dd/%C3%A9%2B"
        )));
        assert_eq!(text.parse::<Magnet>().unwrap(), m);
    }

    #[test]
    fn clear_errors() {
        let cases = [
            ("http://x", "does not start with 'magnet:?'"),
            ("magnet:?dn=x", "missing xt"),
            ("magnet:?xt=urn:btih:1234", "xt: invalid info-hash"),
            ("magnet:?xt=urn:sha1:abc", "is not urn:btih"),
            ("magnet:?xt=urn:btmh:1220abcd", "v2 (urn:btmh)"),
            (&format!("magnet:?xt=urn:btih:{HEX}&xl=big"), "xl \"big\""),
            (
                &format!("magnet:?xt=urn:btih:{HEX}&dn=%FF"),
                "dn is not valid UTF-8",
            ),
        ];
        for (uri, expected) in cases {
            let err = uri.parse::<Magnet>().unwrap_err().to_string();
            assert!(err.contains(expected), "{uri}: {err}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let many: String = (0..=MAX_MAGNET_LIST)
            .map(|i| format!("&tr=http://t{i}"))
            .collect();
        let err = format!("magnet:?xt=urn:btih:{HEX}{many}")
            .parse::<Magnet>()
            .unwrap_err();
        assert!(err.to_string().contains("more than 256 tr"), "{err}");
        let ok: String = (0..MAX_MAGNET_LIST)
            .map(|i| format!("&tr=http://t{i}"))
            .collect();
        assert!(
            format!("magnet:?xt=urn:btih:{HEX}{ok}")
                .parse::<Magnet>()
                .is_ok()
        );
        let huge = format!(
            "magnet:?xt=urn:btih:{HEX}&dn={}",
            "a".repeat(MAX_MAGNET_LEN)
        );
        assert!(
            huge.parse::<Magnet>()
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
    }
}
