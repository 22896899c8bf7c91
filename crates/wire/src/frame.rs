//! Framing: a big-endian `u32` payload length, then the payload (see the crate docs for the
//! layout). Encoding appends to a `BytesMut`; decoding takes whole frames off the front of one.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};
use bytes::{Buf, BufMut, BytesMut};

use crate::error::WireError;
use crate::limits::{LEN_PREFIX_LEN, MAX_FRAME_LEN, MAX_HANDSHAKE_OVERHEAD};
use crate::message::{Block, HaveState, Message};
use crate::repr::{Decoded, Payload};

/// bincode's standard configuration (little-endian varints), with the frame limit as a second
/// guard on how much a value may claim.
const CONFIG: Configuration<LittleEndian, Varint, Limit<MAX_FRAME_LEN>> =
    bincode::config::standard().with_limit::<MAX_FRAME_LEN>();

/// Appends `message` as one frame to `buf`.
///
/// A Piece's data is copied once, straight into `buf`, after its small header. Fails, leaving
/// `buf` as it was, if the frame would exceed [`MAX_FRAME_LEN`]. Encoding does not check the
/// message against a torrent: run [`crate::Validator::check_outgoing`] for that.
pub fn encode(message: &Message, buf: &mut BytesMut) -> Result<(), WireError> {
    // Refuse the big parts before copying them.
    let bulk = match message {
        Message::Piece(block) => block.data.len(),
        Message::Handshake(h) => match &h.have {
            HaveState::Bitfield(bits) => bits.as_bytes().len(),
            HaveState::All | HaveState::None => 0,
        },
        _ => 0,
    };
    if bulk > MAX_FRAME_LEN {
        return Err(WireError::FrameTooLarge {
            len: bulk,
            max: MAX_FRAME_LEN,
        });
    }

    let start = buf.len();
    buf.reserve(LEN_PREFIX_LEN + MAX_HANDSHAKE_OVERHEAD + bulk);
    buf.put_u32(0); // patched below, once the payload length is known
    if let Err(err) = encode_payload(message, buf) {
        buf.truncate(start);
        return Err(err);
    }
    let len = buf.len() - start - LEN_PREFIX_LEN;
    match u32::try_from(len) {
        Ok(prefix) if len <= MAX_FRAME_LEN => {
            buf[start..start + LEN_PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
            Ok(())
        }
        _ => {
            buf.truncate(start);
            Err(WireError::FrameTooLarge {
                len,
                max: MAX_FRAME_LEN,
            })
        }
    }
}

fn encode_payload(message: &Message, buf: &mut BytesMut) -> Result<(), WireError> {
    let Some(payload) = Payload::of(message) else {
        return Ok(()); // KeepAlive: the empty frame
    };
    bincode::serde::encode_into_writer(&payload, BytesWriter(buf), CONFIG).map_err(|err| {
        WireError::Encode {
            kind: message.kind(),
            detail: err.to_string(),
        }
    })?;
    if let Message::Piece(block) = message {
        buf.extend_from_slice(&block.data);
    }
    Ok(())
}

/// Lets bincode append to a `BytesMut` without an intermediate `Vec`.
struct BytesWriter<'a>(&'a mut BytesMut);

impl Writer for BytesWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Takes the first complete frame off the front of `buf` and decodes it.
///
/// - `Ok(None)`: `buf` holds no complete frame yet (it may hold part of one); nothing is
///   consumed, and `buf` has been reserved room for the rest of the announced frame. Read more
///   bytes into `buf` and call again.
/// - `Ok(Some(message))`: the frame is consumed; call again, `buf` may hold more frames.
/// - `Err(FrameTooLarge)`: the length prefix alone announces more than [`MAX_FRAME_LEN`]; it is
///   reported at once, without waiting for (or allocating for) the frame.
/// - Any other `Err`: the frame is consumed and was not a valid message.
///
/// After an error the peer is not speaking this protocol: close the stream.
///
/// A Piece's data is not copied: [`Block::data`] is a view into `buf`'s memory. Decoding does
/// not check the message against a torrent: run [`crate::Validator::check_incoming`] for that.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
    let Some(&[a, b, c, d]) = buf.get(..LEN_PREFIX_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if len > MAX_FRAME_LEN {
        return Err(WireError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let total = LEN_PREFIX_LEN + len;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if len == 0 {
        buf.advance(LEN_PREFIX_LEN);
        return Ok(Some(Message::KeepAlive));
    }

    let decoded = decode_payload(&buf[LEN_PREFIX_LEN..total]);
    let message = match decoded {
        Ok((Decoded::Piece { piece, offset }, header_len)) => {
            let mut frame = buf.split_to(total).freeze();
            frame.advance(LEN_PREFIX_LEN + header_len);
            return Ok(Some(Message::Piece(Block {
                piece,
                offset,
                data: frame,
            })));
        }
        Ok((Decoded::Message(message), used)) if used == len => Ok(message),
        Ok((Decoded::Message(message), used)) => Err(WireError::TrailingBytes {
            kind: message.kind(),
            len,
            extra: len - used,
        }),
        Err(err) => Err(err),
    };
    buf.advance(total);
    message.map(Some)
}

/// Decodes one payload; returns it with the number of payload bytes its bincode value used.
fn decode_payload(payload: &[u8]) -> Result<(Decoded, usize), WireError> {
    let (value, used): (Payload<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(payload, CONFIG).map_err(|err| {
            WireError::Malformed {
                len: payload.len(),
                first_byte: payload.first().copied().unwrap_or_default(),
                detail: describe(&err),
            }
        })?;
    Ok((value.decode()?, used))
}

/// bincode's own `Display` prints its enum's debug form; say the common cases in words.
fn describe(err: &DecodeError) -> String {
    let name = |t: &bincode::error::IntegerType| match t {
        bincode::error::IntegerType::Reserved => "reserved marker byte".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    match err {
        DecodeError::UnexpectedEnd { .. } => "the payload ends in the middle of a field".into(),
        DecodeError::InvalidIntegerType { expected, found } => format!(
            "a varint that should hold a {} holds a {}",
            name(expected),
            name(found)
        ),
        DecodeError::LimitExceeded => {
            format!("a length field claims more than the {MAX_FRAME_LEN}-byte frame limit")
        }
        DecodeError::OtherString(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
