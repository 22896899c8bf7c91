//! Parsing of bencoded announce and scrape replies, bounded in size, depth and count.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use shoal_metainfo::InfoHash;
use shoal_metainfo::bencode::{DecodeLimits, DecodeOptions, Document, Node, decode_with};

use super::{
    AnnounceReply, MAX_INTERVAL, MAX_REPLY_BODY, MAX_REPLY_PEERS, MAX_TEXT_LEN, MIN_INTERVAL,
    ScrapeReply,
};

/// Decoder settings for tracker replies: real trackers write unsorted keys and trailing
/// newlines, so those are accepted; the sizes are far below the `.torrent` limits.
const REPLY_OPTIONS: DecodeOptions = DecodeOptions {
    limits: DecodeLimits {
        max_input: MAX_REPLY_BODY,
        max_depth: 16,
        max_values: 200_000,
    },
    allow_unsorted_keys: true,
    allow_trailing_whitespace: true,
};

/// Why a reply was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyError {
    /// The tracker said no (`failure reason`).
    Failure(String),
    /// The body is not a valid reply.
    Garbage(String),
}

impl ReplyError {
    fn text(self) -> String {
        match self {
            Self::Failure(reason) => format!("failure reason: {reason}"),
            Self::Garbage(reason) => reason,
        }
    }
}

/// Parses a bencoded announce response body (public for tests and fuzzing). The error is a
/// readable description; a tracker's refusal reads `failure reason: ...`.
pub fn parse_announce_reply(body: &[u8]) -> Result<AnnounceReply, String> {
    parse_announce(body).map_err(ReplyError::text)
}

/// Parses a bencoded scrape reply (BEP 48) and returns the counts for `info_hash`; a torrent
/// the tracker does not list has all counts zero.
pub fn parse_scrape_reply(body: &[u8], info_hash: InfoHash) -> Result<ScrapeReply, String> {
    parse_scrape(body, info_hash).map_err(ReplyError::text)
}

/// Decodes `body` as a dictionary and turns a `failure reason` into [`ReplyError::Failure`].
fn decode_dict(body: &[u8]) -> Result<Document<'_>, ReplyError> {
    if body.len() > MAX_REPLY_BODY {
        return Err(ReplyError::Garbage(format!(
            "reply is {} bytes, more than the {MAX_REPLY_BODY}-byte limit",
            body.len()
        )));
    }
    let doc = decode_with(body, REPLY_OPTIONS)
        .map_err(|e| ReplyError::Garbage(format!("not bencode: {e}")))?;
    if !doc.root().is_dict() {
        return Err(ReplyError::Garbage("not a bencoded dictionary".into()));
    }
    if let Some(reason) = doc.root().get(b"failure reason") {
        let reason = reason.as_bytes().map(text).unwrap_or_default();
        return Err(ReplyError::Failure(reason));
    }
    Ok(doc)
}

pub(crate) fn parse_announce(body: &[u8]) -> Result<AnnounceReply, ReplyError> {
    let doc = decode_dict(body)?;
    let root = doc.root();
    let interval = match root.get(b"interval") {
        None => return Err(ReplyError::Garbage("missing interval".into())),
        Some(node) => seconds(node, "interval")?.clamp(MIN_INTERVAL, MAX_INTERVAL),
    };
    let min_interval = root
        .get(b"min interval")
        .map(|n| seconds(n, "min interval"))
        .transpose()?
        .map(|d| d.min(MAX_INTERVAL));
    let mut peers = Vec::new();
    if let Some(node) = root.get(b"peers") {
        if let Some(bytes) = node.as_bytes() {
            compact_peers(bytes, 6, "peers", &mut peers)?;
        } else if let Some(list) = node.as_list() {
            for entry in list {
                if peers.len() >= MAX_REPLY_PEERS {
                    break;
                }
                peers.extend(dict_peer(entry));
            }
        } else {
            return Err(ReplyError::Garbage(
                "peers is neither a string nor a list".into(),
            ));
        }
    }
    if let Some(node) = root.get(b"peers6") {
        let bytes = node
            .as_bytes()
            .ok_or_else(|| ReplyError::Garbage("peers6 is not a string".into()))?;
        compact_peers(bytes, 18, "peers6", &mut peers)?;
    }
    Ok(AnnounceReply {
        interval,
        min_interval,
        peers,
        complete: count(&root, b"complete", "complete")?,
        incomplete: count(&root, b"incomplete", "incomplete")?,
        warning: root
            .get(b"warning message")
            .and_then(|n| n.as_bytes())
            .map(text),
        tracker_id: root
            .get(b"tracker id")
            .and_then(|n| n.as_bytes())
            .filter(|id| !id.is_empty() && id.len() <= MAX_TEXT_LEN)
            .map(<[u8]>::to_vec),
    })
}

pub(crate) fn parse_scrape(body: &[u8], info_hash: InfoHash) -> Result<ScrapeReply, ReplyError> {
    let doc = decode_dict(body)?;
    let files = doc
        .root()
        .get(b"files")
        .filter(Node::is_dict)
        .ok_or_else(|| ReplyError::Garbage("missing files dictionary".into()))?;
    let Some(entry) = files.get(&info_hash.0) else {
        return Ok(ScrapeReply::default());
    };
    Ok(ScrapeReply {
        complete: count(&entry, b"complete", "complete")?.unwrap_or(0),
        downloaded: count(&entry, b"downloaded", "downloaded")?.unwrap_or(0),
        incomplete: count(&entry, b"incomplete", "incomplete")?.unwrap_or(0),
    })
}

/// A non-negative integer field, if present.
fn count(dict: &Node<'_, '_>, key: &[u8], name: &str) -> Result<Option<u64>, ReplyError> {
    let Some(node) = dict.get(key) else {
        return Ok(None);
    };
    node.as_int()
        .and_then(|n| u64::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| ReplyError::Garbage(format!("{name} is not a non-negative integer")))
}

fn seconds(node: Node<'_, '_>, name: &str) -> Result<Duration, ReplyError> {
    node.as_int()
        .and_then(|n| u64::try_from(n).ok())
        .map(Duration::from_secs)
        .ok_or_else(|| ReplyError::Garbage(format!("{name} is not a non-negative integer")))
}

/// Appends compact peers (`size` = 6 for IPv4, 18 for IPv6), up to [`MAX_REPLY_PEERS`] in all.
fn compact_peers(
    bytes: &[u8],
    size: usize,
    name: &str,
    out: &mut Vec<SocketAddr>,
) -> Result<(), ReplyError> {
    if bytes.len() % size != 0 {
        return Err(ReplyError::Garbage(format!(
            "{name} is {} bytes, not a multiple of {size}",
            bytes.len()
        )));
    }
    for chunk in bytes.chunks_exact(size) {
        if out.len() >= MAX_REPLY_PEERS {
            break;
        }
        let (ip, port) = chunk.split_at(size - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        let ip = match <[u8; 4]>::try_from(ip) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => match <[u8; 16]>::try_from(ip) {
                Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                Err(_) => continue,
            },
        };
        if port != 0 {
            out.push(SocketAddr::new(ip, port));
        }
    }
    Ok(())
}

/// One peer of the non-compact form: `ip` (an address as text) and `port`. A host name, a
/// bad port or a missing field skips the entry.
fn dict_peer(entry: Node<'_, '_>) -> Option<SocketAddr> {
    let ip: IpAddr = entry.get(b"ip")?.as_str()?.trim().parse().ok()?;
    let port = u16::try_from(entry.get(b"port")?.as_int()?).ok()?;
    (port != 0).then_some(SocketAddr::new(ip, port))
}

/// Tracker text, lossily decoded and cut to [`MAX_TEXT_LEN`] bytes.
fn text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_TEXT_LEN)];
    String::from_utf8_lossy(cut).into_owned()
}
