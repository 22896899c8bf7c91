//! What the frame codecs of every protocol share: the `u32` big-endian length prefix checked
//! against the protocol's limit before anything is allocated, appending a frame to a
//! `BytesMut`, and turning bincode's errors into words.

use bincode::enc::write::Writer;
use bincode::error::{DecodeError, EncodeError};
use bytes::{BufMut, BytesMut};

use crate::error::WireError;
use crate::limits::LEN_PREFIX_LEN;

/// Appends one frame to `buf`: a length prefix, then what `write_payload` appends.
///
/// `reserve` is a hint of the payload's size. If `write_payload` fails, or the payload comes
/// out longer than `max`, `buf` is left as it was and the error returned.
pub(crate) fn append_frame(
    buf: &mut BytesMut,
    max: usize,
    reserve: usize,
    write_payload: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let start = buf.len();
    buf.reserve(LEN_PREFIX_LEN + reserve.min(max));
    buf.put_u32(0); // patched below, once the payload length is known
    if let Err(err) = write_payload(buf) {
        buf.truncate(start);
        return Err(err);
    }
    let len = buf.len() - start - LEN_PREFIX_LEN;
    match u32::try_from(len) {
        Ok(prefix) if len <= max => {
            buf[start..start + LEN_PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
            Ok(())
        }
        _ => {
            buf.truncate(start);
            Err(WireError::FrameTooLarge { len, max })
        }
    }
}

/// The payload length of the frame at the front of `buf`, if the whole frame is there.
///
/// - `Ok(None)`: not all of it has arrived; nothing is consumed, and `buf` has been reserved
///   room for the rest of the announced frame (at most `max` bytes, as that was checked first).
/// - `Ok(Some(len))`: `buf[LEN_PREFIX_LEN..LEN_PREFIX_LEN + len]` is the payload.
/// - `Err(FrameTooLarge)`: the prefix alone announces more than `max`.
pub(crate) fn complete_frame_len(
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<usize>, WireError> {
    let Some(&[a, b, c, d]) = buf.get(..LEN_PREFIX_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if len > max {
        return Err(WireError::FrameTooLarge { len, max });
    }
    let total = LEN_PREFIX_LEN + len;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(len))
}

/// Lets bincode append to a `BytesMut` without an intermediate `Vec`.
pub(crate) struct BytesWriter<'a>(pub(crate) &'a mut BytesMut);

impl Writer for BytesWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// The error for a payload bincode could not decode; `limit` is the protocol's frame limit.
pub(crate) fn malformed(payload: &[u8], err: &DecodeError, limit: usize) -> WireError {
    WireError::Malformed {
        len: payload.len(),
        first_byte: payload.first().copied().unwrap_or_default(),
        detail: describe(err, limit),
    }
}

/// bincode's own `Display` prints its enum's debug form; say the common cases in words.
fn describe(err: &DecodeError, limit: usize) -> String {
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
            format!("a length field claims more than the {limit}-byte frame limit")
        }
        DecodeError::OtherString(text) => text.clone(),
        other => other.to_string(),
    }
}
