//! Framing: a big-endian `u32` payload length, then the payload (see the crate docs for the
//! layout). Encoding appends to a `BytesMut`; decoding takes whole frames off the front of one.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use bytes::{Buf, BytesMut};

use crate::codec::{BytesWriter, append_frame, complete_frame_len, malformed};
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

    append_frame(buf, MAX_FRAME_LEN, MAX_HANDSHAKE_OVERHEAD + bulk, |buf| {
        encode_payload(message, buf)
    })
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
    let Some(len) = complete_frame_len(buf, MAX_FRAME_LEN)? else {
        return Ok(None);
    };
    let total = LEN_PREFIX_LEN + len;
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
        bincode::serde::borrow_decode_from_slice(payload, CONFIG)
            .map_err(|err| malformed(payload, &err, MAX_FRAME_LEN))?;
    Ok((value.decode()?, used))
}

#[cfg(test)]
mod tests;
