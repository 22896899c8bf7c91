//! Bencoded replies. The announce reply, the hot path, is written straight into a `Vec`; the
//! colder ones go through [`shoal_metainfo::bencode`]. Keys are written in sorted order, so the
//! output is canonical bencode (tests compare it with `bencode::encode`).

use std::io::Write as _;
use std::net::IpAddr;

use shoal_metainfo::InfoHash;
use shoal_metainfo::bencode::{Value, encode};

use crate::swarm::{Peer, ScrapeCounts};

/// Counts and timers at the top of an announce reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplyHeader {
    pub complete: usize,
    pub incomplete: usize,
    pub interval: u64,
    pub min_interval: u64,
}

fn write_uint(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn write_int(out: &mut Vec<u8>, key: &[u8], n: u64) {
    write_key(out, key);
    out.push(b'i');
    write_uint(out, n);
    out.push(b'e');
}

fn write_key(out: &mut Vec<u8>, key: &[u8]) {
    write_uint(out, key.len() as u64);
    out.push(b':');
    out.extend_from_slice(key);
}

fn write_header(out: &mut Vec<u8>, header: ReplyHeader) {
    out.push(b'd');
    write_int(out, b"complete", header.complete as u64);
    write_int(out, b"incomplete", header.incomplete as u64);
    write_int(out, b"interval", header.interval);
    write_int(out, b"min interval", header.min_interval);
}

/// BEP 23: `peers` holds 6-byte IPv4 entries, `peers6` (only when there are any) 18-byte IPv6
/// entries, each address then port, big-endian.
pub(crate) fn write_compact<'p>(
    out: &mut Vec<u8>,
    header: ReplyHeader,
    peers: impl Iterator<Item = &'p Peer> + Clone,
) {
    write_header(out, header);
    let v4 = peers.clone().filter(|p| p.ip.is_ipv4()).count();
    let v6 = peers.clone().count() - v4;
    write_key(out, b"peers");
    write_uint(out, v4 as u64 * 6);
    out.push(b':');
    for peer in peers.clone() {
        if let IpAddr::V4(ip) = peer.ip {
            out.extend_from_slice(&ip.octets());
            out.extend_from_slice(&peer.port.to_be_bytes());
        }
    }
    if v6 > 0 {
        write_key(out, b"peers6");
        write_uint(out, v6 as u64 * 18);
        out.push(b':');
        for peer in peers {
            if let IpAddr::V6(ip) = peer.ip {
                out.extend_from_slice(&ip.octets());
                out.extend_from_slice(&peer.port.to_be_bytes());
            }
        }
    }
    out.push(b'e');
}

/// BEP 3's list of dictionaries: `ip` (text), `peer id` (unless `no_peer_id`), `port`.
pub(crate) fn write_dict_list<'p>(
    out: &mut Vec<u8>,
    header: ReplyHeader,
    peers: impl Iterator<Item = &'p Peer>,
    no_peer_id: bool,
) {
    write_header(out, header);
    write_key(out, b"peers");
    out.push(b'l');
    let mut ip_text = Vec::with_capacity(48);
    for peer in peers {
        out.push(b'd');
        ip_text.clear();
        // Writing to a Vec cannot fail.
        let _ = write!(ip_text, "{}", peer.ip);
        write_key(out, b"ip");
        write_key(out, &ip_text);
        if !no_peer_id {
            write_key(out, b"peer id");
            write_key(out, &peer.id);
        }
        write_int(out, b"port", u64::from(peer.port));
        out.push(b'e');
    }
    out.push(b'e');
    out.push(b'e');
}

/// `d14:failure reason...e`, sent with HTTP 200 as clients expect.
pub fn failure(reason: &str) -> Vec<u8> {
    encode(&Value::dict([("failure reason", Value::from(reason))]))
}

/// BEP 48: `files` maps each info-hash to its `complete`, `downloaded` and `incomplete`.
pub fn scrape_reply(entries: impl IntoIterator<Item = (InfoHash, ScrapeCounts)>) -> Vec<u8> {
    let files = entries
        .into_iter()
        .map(|(hash, c)| {
            let counts = Value::dict([
                ("complete", Value::Int(saturating_i64(c.complete as u64))),
                ("downloaded", Value::Int(saturating_i64(c.downloaded))),
                (
                    "incomplete",
                    Value::Int(saturating_i64(c.incomplete as u64)),
                ),
            ]);
            (hash.0.to_vec(), counts)
        })
        .collect();
    encode(&Value::dict([("files", Value::Dict(files))]))
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_bytes() {
        assert_eq!(
            failure("missing port"),
            b"d14:failure reason12:missing porte"
        );
    }

    #[test]
    fn scrape_bytes() {
        let counts = ScrapeCounts {
            complete: 3,
            incomplete: 1,
            downloaded: 9,
        };
        let mut expected = b"d5:filesd20:".to_vec();
        expected.extend_from_slice(&[5; 20]);
        expected.extend_from_slice(b"d8:completei3e10:downloadedi9e10:incompletei1eeee");
        assert_eq!(scrape_reply([(InfoHash([5; 20]), counts)]), expected);
        assert_eq!(scrape_reply([]), b"d5:filesdee");
    }

    #[test]
    fn integers_are_written_in_full() {
        for n in [0, 7, 10, 1800, u64::MAX] {
            let mut out = Vec::new();
            write_uint(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
