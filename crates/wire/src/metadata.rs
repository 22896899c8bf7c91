//! `/shoal/metadata/1`: fetching a torrent's info dictionary from peers when all we have is
//! its info-hash (a magnet link), in 16 KiB pieces, as BEP 9 does.
//!
//! The payload is the bincode of an enum (the tag a varint): 0 Request {info-hash: 20 bytes,
//! piece}, 1 Data {piece, total_len} followed by the piece's bytes as the rest of the frame,
//! 2 Reject {piece}. Data's bytes are appended once when encoding and sliced, not copied,
//! from the received frame when decoding. Checking the bytes against the info-hash is the
//! fetcher's job (shoal-swarm's `MetadataFetch`).

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use shoal_metainfo::InfoHash;

use crate::codec::{BytesWriter, append_frame, complete_frame_len, malformed};
use crate::error::WireError;
use crate::limits::LEN_PREFIX_LEN;

/// The libp2p protocol name of the metadata exchange.
pub const METADATA_PROTOCOL: &str = "/shoal/metadata/1";
/// Bytes of every metadata piece but the last (16 KiB, as in BEP 9).
pub const METADATA_PIECE_LEN: u32 = 16 * 1024;
/// Largest info dictionary we fetch or serve (16 MiB, so at most 1024 pieces).
pub const MAX_METADATA_LEN: u32 = 16 * 1024 * 1024;

/// Worst-case bytes of a payload besides Data's bytes: tag (1) + two u32 varints (5 + 5), or
/// for a Request tag (1) + info-hash (20) + u32 varint (5).
const MAX_HEADER_LEN: usize = 1 + 20 + 5;

/// Largest payload we send or accept: a Data of [`METADATA_PIECE_LEN`] bytes plus its header,
/// with room to spare. A length prefix over it is refused before the frame is read.
pub const METADATA_MAX_FRAME_LEN: usize = METADATA_PIECE_LEN as usize + 32;

const _: () = assert!(METADATA_MAX_FRAME_LEN >= METADATA_PIECE_LEN as usize + MAX_HEADER_LEN);

/// bincode's standard configuration with the metadata frame limit as a second guard.
const CONFIG: Configuration<LittleEndian, Varint, Limit<METADATA_MAX_FRAME_LEN>> =
    bincode::config::standard().with_limit::<METADATA_MAX_FRAME_LEN>();

/// Every message of `/shoal/metadata/1`. The asker sends Requests; the other side answers
/// each with a Data or a Reject (see [`metadata_reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// Asks for one 16 KiB piece of the info dictionary of `info_hash`.
    Request { info_hash: InfoHash, piece: u32 },
    /// One piece; `total_len` is the whole info dictionary's length in bytes. `data` is a view
    /// into the received frame: decoding does not copy it.
    Data {
        piece: u32,
        total_len: u32,
        data: Bytes,
    },
    /// The peer will not serve that piece (it does not have the metadata, or the piece is out
    /// of range).
    Reject { piece: u32 },
}

/// The serde form of a payload; the variant order is the wire tag: only append.
#[derive(Serialize, Deserialize)]
enum Payload {
    /// Tag 0.
    Request { info_hash: [u8; 20], piece: u32 },
    /// Tag 1; the data is the rest of the frame.
    Data { piece: u32, total_len: u32 },
    /// Tag 2.
    Reject { piece: u32 },
}

/// The shape rules of a Data, in both directions.
fn check_data(piece: u32, total_len: u32, data_len: usize) -> Result<(), WireError> {
    if total_len == 0 || total_len > MAX_METADATA_LEN {
        return Err(WireError::MetadataTotalLen {
            total_len,
            max: MAX_METADATA_LEN,
        });
    }
    if data_len > METADATA_PIECE_LEN as usize {
        return Err(WireError::MetadataPieceTooLong {
            piece,
            len: data_len,
            max: METADATA_PIECE_LEN,
        });
    }
    Ok(())
}

/// Appends `message` as one frame (`u32` big-endian payload length, then the payload) to
/// `buf`. Refuses, leaving `buf` as it was, a Data with `total_len` outside
/// 1..=[`MAX_METADATA_LEN`] or more than [`METADATA_PIECE_LEN`] bytes.
pub fn encode_metadata(message: &MetadataMessage, buf: &mut BytesMut) -> Result<(), WireError> {
    let (payload, data) = match message {
        MetadataMessage::Request { info_hash, piece } => (
            Payload::Request {
                info_hash: info_hash.0,
                piece: *piece,
            },
            &[][..],
        ),
        MetadataMessage::Data {
            piece,
            total_len,
            data,
        } => {
            check_data(*piece, *total_len, data.len())?;
            (
                Payload::Data {
                    piece: *piece,
                    total_len: *total_len,
                },
                &data[..],
            )
        }
        MetadataMessage::Reject { piece } => (Payload::Reject { piece: *piece }, &[][..]),
    };
    append_frame(
        buf,
        METADATA_MAX_FRAME_LEN,
        MAX_HEADER_LEN + data.len(),
        |buf| {
            bincode::serde::encode_into_writer(&payload, BytesWriter(buf), CONFIG).map_err(
                |err| WireError::ProtocolEncode {
                    protocol: METADATA_PROTOCOL,
                    detail: err.to_string(),
                },
            )?;
            buf.extend_from_slice(data);
            Ok(())
        },
    )
}

/// Takes the first complete frame off the front of `buf` and decodes it.
///
/// - `Ok(None)`: no complete frame yet; nothing is consumed. Read more and call again.
/// - `Ok(Some(message))`: the frame is consumed. A Data's `total_len` is in
///   1..=[`MAX_METADATA_LEN`] and its data at most [`METADATA_PIECE_LEN`] bytes; whether the
///   piece has the right length for its index is the fetcher's check.
/// - `Err(FrameTooLarge)`: the length prefix announces more than [`METADATA_MAX_FRAME_LEN`];
///   reported on the 4-byte prefix alone, before anything is allocated for the frame.
/// - Any other `Err`: the frame is consumed and was not a valid message. Close the stream.
pub fn decode_metadata(buf: &mut BytesMut) -> Result<Option<MetadataMessage>, WireError> {
    let Some(len) = complete_frame_len(buf, METADATA_MAX_FRAME_LEN)? else {
        return Ok(None);
    };
    let total = LEN_PREFIX_LEN + len;
    let payload = &buf[LEN_PREFIX_LEN..total];
    let decoded: Result<(Payload, usize), _> = bincode::serde::decode_from_slice(payload, CONFIG);
    let message = match decoded {
        Err(err) => Err(malformed(payload, &err, METADATA_MAX_FRAME_LEN)),
        Ok((Payload::Data { piece, total_len }, used)) => {
            match check_data(piece, total_len, len - used) {
                Ok(()) => {
                    let mut frame = buf.split_to(total).freeze();
                    frame.advance(LEN_PREFIX_LEN + used);
                    return Ok(Some(MetadataMessage::Data {
                        piece,
                        total_len,
                        data: frame,
                    }));
                }
                Err(err) => Err(err),
            }
        }
        Ok((_, used)) if used != len => Err(WireError::ProtocolTrailingBytes {
            protocol: METADATA_PROTOCOL,
            len,
            extra: len - used,
        }),
        Ok((Payload::Request { info_hash, piece }, _)) => Ok(MetadataMessage::Request {
            info_hash: InfoHash(info_hash),
            piece,
        }),
        Ok((Payload::Reject { piece }, _)) => Ok(MetadataMessage::Reject { piece }),
    };
    buf.advance(total);
    message.map(Some)
}

/// Serving side: the answer to a request for `piece` of these info bytes: Data with the
/// piece's bytes (a zero-copy slice of `info_bytes`; [`METADATA_PIECE_LEN`] bytes, the last
/// piece shorter) or Reject if the piece is out of range or the info dictionary is empty or
/// larger than [`MAX_METADATA_LEN`].
pub fn metadata_reply(info_bytes: &Bytes, piece: u32) -> MetadataMessage {
    let reject = MetadataMessage::Reject { piece };
    let Ok(total_len) = u32::try_from(info_bytes.len()) else {
        return reject;
    };
    if total_len == 0 || total_len > MAX_METADATA_LEN {
        return reject;
    }
    let start = u64::from(piece) * u64::from(METADATA_PIECE_LEN);
    if start >= u64::from(total_len) {
        return reject;
    }
    // start < total_len <= 16 MiB: both fit usize.
    let start = start as usize;
    let end = (start + METADATA_PIECE_LEN as usize).min(info_bytes.len());
    MetadataMessage::Data {
        piece,
        total_len,
        data: info_bytes.slice(start..end),
    }
}

#[cfg(test)]
mod tests;
