//! `/shoal/pex/1`: peer exchange. Every minute or so each side tells the other which peers of
//! the torrent's swarm joined and left since the last message, so that peers find each other
//! without asking the DHT again.
//!
//! The payload (no tag: the stream carries nothing else) is the bincode of
//! `(info_hash: [u8; 20], added: [(peer_id: bytes, addrs: [bytes])], dropped: [bytes])`, every
//! list and byte string a varint count followed by its items. Decoding borrows the byte strings
//! from the frame, keeps at most the limit's number of items of each list while counting the
//! rest, and copies only a message that passes [`PexMessage::check`], so a peer cannot make us
//! allocate more than its frame, whatever its length fields claim.

use std::fmt;
use std::marker::PhantomData;

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use bytes::{Buf, BytesMut};
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shoal_metainfo::InfoHash;

use crate::codec::{BytesWriter, append_frame, complete_frame_len, malformed};
use crate::error::WireError;
use crate::limits::LEN_PREFIX_LEN;

/// The libp2p protocol name of peer exchange.
pub const PEX_PROTOCOL: &str = "/shoal/pex/1";
/// Most peers one message may announce as added.
pub const PEX_MAX_ADDED: usize = 50;
/// Most peers one message may announce as dropped.
pub const PEX_MAX_DROPPED: usize = 50;
/// Most addresses of one added peer.
pub const PEX_MAX_ADDRS_PER_PEER: usize = 8;
/// Longest peer id, in bytes (a libp2p `PeerId` is a multihash: 38 bytes for Ed25519 keys).
pub const PEX_MAX_PEER_ID_LEN: usize = 64;
/// Longest address, in bytes (one multiaddr in its binary form).
pub const PEX_MAX_ADDR_LEN: usize = 128;

/// Bytes of a bincode varint holding `n` (standard configuration).
const fn varint_len(n: usize) -> usize {
    if n < 251 {
        1
    } else if n <= u16::MAX as usize {
        3
    } else if n <= u32::MAX as usize {
        5
    } else {
        9
    }
}

const MAX_PEER_ID_ENCODED: usize = varint_len(PEX_MAX_PEER_ID_LEN) + PEX_MAX_PEER_ID_LEN;
const MAX_ADDR_ENCODED: usize = varint_len(PEX_MAX_ADDR_LEN) + PEX_MAX_ADDR_LEN;
const MAX_PEER_ENCODED: usize = MAX_PEER_ID_ENCODED
    + varint_len(PEX_MAX_ADDRS_PER_PEER)
    + PEX_MAX_ADDRS_PER_PEER * MAX_ADDR_ENCODED;

/// Largest payload of a valid PEX message: every list full and every byte string at its
/// longest (58 172 bytes). A length prefix over it is refused before the frame is read.
pub const PEX_MAX_FRAME_LEN: usize = 20
    + varint_len(PEX_MAX_ADDED)
    + PEX_MAX_ADDED * MAX_PEER_ENCODED
    + varint_len(PEX_MAX_DROPPED)
    + PEX_MAX_DROPPED * MAX_PEER_ID_ENCODED;

const _: () = assert!(PEX_MAX_FRAME_LEN <= u32::MAX as usize);

/// bincode's limit on what one decode may claim. bincode counts the in-memory size of what it
/// decodes (8 bytes for every length varint, one byte on the wire), so a valid frame can
/// claim up to 8 times its length; the limit is a second guard. The first: decoding borrows
/// every byte string from the frame and caps every list ([`Capped`]), so nothing allocated
/// exceeds the frame whatever a length field claims.
const DECODE_LIMIT: usize = 8 * PEX_MAX_FRAME_LEN;

/// bincode's standard configuration with [`DECODE_LIMIT`].
const CONFIG: Configuration<LittleEndian, Varint, Limit<DECODE_LIMIT>> =
    bincode::config::standard().with_limit::<DECODE_LIMIT>();

/// A peer announced as added: its libp2p peer id and multiaddrs, both in their binary forms
/// (the node converts; shoal-wire knows no libp2p).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PexPeer {
    pub peer_id: Vec<u8>,
    pub addrs: Vec<Vec<u8>>,
}

/// One PEX message: for the torrent `info_hash`, the peers that joined (`added`) and left
/// (`dropped`, by peer id) the sender's swarm since its previous message to us.
///
/// The serde derives are for tests and logs; on the wire use [`encode_pex`] and
/// [`decode_pex`], which give the same bytes as bincode's standard configuration but bound
/// what decoding allocates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PexMessage {
    #[serde(with = "info_hash_bytes")]
    pub info_hash: InfoHash,
    pub added: Vec<PexPeer>,
    pub dropped: Vec<Vec<u8>>,
}

impl PexMessage {
    /// Checks counts and lengths against the `PEX_*` limits: at most [`PEX_MAX_ADDED`] added
    /// and [`PEX_MAX_DROPPED`] dropped peers, at most [`PEX_MAX_ADDRS_PER_PEER`] addresses per
    /// added peer, peer ids of 1 to [`PEX_MAX_PEER_ID_LEN`] bytes and addresses of 1 to
    /// [`PEX_MAX_ADDR_LEN`] bytes. The first violation found is returned.
    pub fn check(&self) -> Result<(), WireError> {
        check_counts(self.added.len(), self.dropped.len())?;
        for (index, peer) in self.added.iter().enumerate() {
            check_peer(index, &peer.peer_id, peer.addrs.len(), peer.addrs.iter())?;
        }
        self.dropped.iter().try_for_each(|id| check_peer_id(id))
    }
}

fn check_counts(added: usize, dropped: usize) -> Result<(), WireError> {
    if added > PEX_MAX_ADDED {
        return Err(WireError::PexTooManyAdded {
            count: added,
            max: PEX_MAX_ADDED,
        });
    }
    if dropped > PEX_MAX_DROPPED {
        return Err(WireError::PexTooManyDropped {
            count: dropped,
            max: PEX_MAX_DROPPED,
        });
    }
    Ok(())
}

fn check_peer<A: AsRef<[u8]>>(
    index: usize,
    peer_id: &[u8],
    addr_count: usize,
    addrs: impl Iterator<Item = A>,
) -> Result<(), WireError> {
    check_peer_id(peer_id)?;
    if addr_count > PEX_MAX_ADDRS_PER_PEER {
        return Err(WireError::PexTooManyAddrs {
            index,
            count: addr_count,
            max: PEX_MAX_ADDRS_PER_PEER,
        });
    }
    for addr in addrs {
        let len = addr.as_ref().len();
        if len == 0 || len > PEX_MAX_ADDR_LEN {
            return Err(WireError::PexAddrLen {
                len,
                max: PEX_MAX_ADDR_LEN,
            });
        }
    }
    Ok(())
}

fn check_peer_id(id: &[u8]) -> Result<(), WireError> {
    if id.is_empty() || id.len() > PEX_MAX_PEER_ID_LEN {
        return Err(WireError::PexPeerIdLen {
            len: id.len(),
            max: PEX_MAX_PEER_ID_LEN,
        });
    }
    Ok(())
}

/// Appends `message` as one frame (`u32` big-endian payload length, then the bincode
/// payload) to `buf`. Refuses, leaving `buf` as it was, a message that fails
/// [`PexMessage::check`].
pub fn encode_pex(message: &PexMessage, buf: &mut BytesMut) -> Result<(), WireError> {
    message.check()?;
    let hint = 32
        + message
            .added
            .iter()
            .map(|p| 8 + p.peer_id.len() + p.addrs.iter().map(|a| 2 + a.len()).sum::<usize>())
            .sum::<usize>()
        + message.dropped.iter().map(|d| 2 + d.len()).sum::<usize>();
    append_frame(buf, PEX_MAX_FRAME_LEN, hint, |buf| {
        bincode::serde::encode_into_writer(PexOut(message), BytesWriter(buf), CONFIG).map_err(
            |err| WireError::ProtocolEncode {
                protocol: PEX_PROTOCOL,
                detail: err.to_string(),
            },
        )
    })
}

/// Takes the first complete frame off the front of `buf` and decodes it.
///
/// - `Ok(None)`: no complete frame yet; nothing is consumed. Read more and call again.
/// - `Ok(Some(message))`: the frame is consumed; the message has passed
///   [`PexMessage::check`].
/// - `Err(FrameTooLarge)`: the length prefix announces more than [`PEX_MAX_FRAME_LEN`];
///   reported on the 4-byte prefix alone, before anything is allocated for the frame.
/// - Any other `Err`: the frame is consumed and was not a valid message (undecodable,
///   trailing bytes, or over a limit). Close the stream.
///
/// A receiver that holds peers to account for over-limit messages uses [`decode_pex_frame`],
/// which also tells which torrent such a message was for.
pub fn decode_pex(buf: &mut BytesMut) -> Result<Option<PexMessage>, WireError> {
    match decode_pex_frame(buf)? {
        None => Ok(None),
        Some(PexFrame::Message(message)) => Ok(Some(message)),
        Some(PexFrame::OverLimit { error, .. }) => Err(error),
    }
}

/// A received PEX frame that decoded: a message within every limit, or one that broke a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PexFrame {
    /// Within every limit ([`PexMessage::check`] passed).
    Message(PexMessage),
    /// Well-formed, but over a limit (more than [`PEX_MAX_ADDED`] added or
    /// [`PEX_MAX_DROPPED`] dropped peers, more than [`PEX_MAX_ADDRS_PER_PEER`] addresses for one
    /// peer, or an id or address of the wrong length). Nothing of it is kept but the torrent it
    /// was for and the limit it broke (`error`, the first found), so the receiver can hold the
    /// sender to account in that torrent.
    OverLimit {
        info_hash: InfoHash,
        error: WireError,
    },
}

/// [`decode_pex`], but a well-formed message over a limit comes back as
/// [`PexFrame::OverLimit`] with its info-hash instead of as an error. `Err` means the frame
/// was too large, undecodable, or had trailing bytes: there is no telling what it was for.
/// Over-limit lists cost no more than their bytes in the frame: at most the limit's number of
/// items is kept while decoding, the rest only counted.
pub fn decode_pex_frame(buf: &mut BytesMut) -> Result<Option<PexFrame>, WireError> {
    let Some(len) = complete_frame_len(buf, PEX_MAX_FRAME_LEN)? else {
        return Ok(None);
    };
    let total = LEN_PREFIX_LEN + len;
    let frame = decode_payload(&buf[LEN_PREFIX_LEN..total]);
    buf.advance(total);
    frame.map(Some)
}

fn decode_payload(payload: &[u8]) -> Result<PexFrame, WireError> {
    let (value, used): (PexIn<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(payload, CONFIG)
            .map_err(|err| malformed(payload, &err, PEX_MAX_FRAME_LEN))?;
    if used != payload.len() {
        return Err(WireError::ProtocolTrailingBytes {
            protocol: PEX_PROTOCOL,
            len: payload.len(),
            extra: payload.len() - used,
        });
    }
    let info_hash = InfoHash(value.info_hash);
    Ok(match value.into_message() {
        Ok(message) => PexFrame::Message(message),
        Err(error) => PexFrame::OverLimit { info_hash, error },
    })
}

/// Serde for [`InfoHash`] (which has none): its 20 bytes as a fixed-size array.
mod info_hash_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use shoal_metainfo::InfoHash;

    pub(super) fn serialize<S: Serializer>(hash: &InfoHash, s: S) -> Result<S::Ok, S::Error> {
        hash.0.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<InfoHash, D::Error> {
        <[u8; 20]>::deserialize(d).map(InfoHash)
    }
}

// ---- Encoding: serialize straight from the borrowed message, no intermediate copies. ----

/// A byte string, written in one call (same bytes as serde's byte-by-byte `Vec<u8>`).
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct RawList<'a>(&'a [Vec<u8>]);

impl Serialize for RawList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|bytes| Raw(bytes)))
    }
}

struct PeerOut<'a>(&'a PexPeer);

impl Serialize for PeerOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut fields = s.serialize_tuple(2)?;
        fields.serialize_element(&Raw(&self.0.peer_id))?;
        fields.serialize_element(&RawList(&self.0.addrs))?;
        fields.end()
    }
}

struct PexOut<'a>(&'a PexMessage);

impl Serialize for PexOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut fields = s.serialize_tuple(3)?;
        fields.serialize_element(&self.0.info_hash.0)?;
        fields.serialize_element(&Peers(&self.0.added))?;
        fields.serialize_element(&RawList(&self.0.dropped))?;
        fields.end()
    }
}

struct Peers<'a>(&'a [PexPeer]);

impl Serialize for Peers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(PeerOut))
    }
}

// ---- Decoding: borrow from the frame, cap every list, copy only once it is checked. ----

#[derive(Deserialize)]
struct PexIn<'a> {
    info_hash: [u8; 20],
    #[serde(borrow)]
    added: Capped<PeerIn<'a>, PEX_MAX_ADDED>,
    #[serde(borrow)]
    dropped: Capped<&'a [u8], PEX_MAX_DROPPED>,
}

#[derive(Deserialize)]
struct PeerIn<'a> {
    peer_id: &'a [u8],
    #[serde(borrow)]
    addrs: Capped<&'a [u8], PEX_MAX_ADDRS_PER_PEER>,
}

impl PexIn<'_> {
    /// Checks everything on the borrowed form, then copies.
    fn into_message(self) -> Result<PexMessage, WireError> {
        check_counts(self.added.count, self.dropped.count)?;
        for (index, peer) in self.added.items.iter().enumerate() {
            check_peer(
                index,
                peer.peer_id,
                peer.addrs.count,
                peer.addrs.items.iter(),
            )?;
        }
        self.dropped
            .items
            .iter()
            .try_for_each(|id| check_peer_id(id))?;
        Ok(PexMessage {
            info_hash: InfoHash(self.info_hash),
            added: self
                .added
                .items
                .iter()
                .map(|peer| PexPeer {
                    peer_id: peer.peer_id.to_vec(),
                    addrs: peer.addrs.items.iter().map(|a| a.to_vec()).collect(),
                })
                .collect(),
            dropped: self.dropped.items.iter().map(|id| id.to_vec()).collect(),
        })
    }
}

/// A sequence of which at most `N` items are kept: the rest are decoded (to find the end of
/// the payload) and discarded, only counted. The count the peer claims only sizes the first
/// allocation up to `N`; more items need more bytes in the frame.
struct Capped<T, const N: usize> {
    items: Vec<T>,
    count: usize,
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Capped<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CappedVisitor<T, const N: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for CappedVisitor<T, N> {
            type Value = Capped<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                let mut count = 0usize;
                while let Some(item) = seq.next_element::<T>()? {
                    if items.len() < N {
                        items.push(item);
                    }
                    count += 1;
                }
                Ok(Capped { items, count })
            }
        }

        d.deserialize_seq(CappedVisitor::<T, N>(PhantomData))
    }
}

#[cfg(test)]
mod tests;
