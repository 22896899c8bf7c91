use bytes::{BufMut, Bytes, BytesMut};
use shoal_metainfo::InfoHash;

use super::*;

fn messages() -> Vec<MetadataMessage> {
    vec![
        MetadataMessage::Request {
            info_hash: InfoHash([3; 20]),
            piece: 0,
        },
        MetadataMessage::Request {
            info_hash: InfoHash([4; 20]),
            piece: u32::MAX,
        },
        MetadataMessage::Data {
            piece: 0,
            total_len: 40 * 1024,
            data: Bytes::from(vec![0x5a; METADATA_PIECE_LEN as usize]),
        },
        MetadataMessage::Data {
            piece: 1023,
            total_len: MAX_METADATA_LEN,
            data: Bytes::from(vec![1; METADATA_PIECE_LEN as usize]),
        },
        MetadataMessage::Data {
            piece: 2,
            total_len: 40 * 1024,
            data: Bytes::from(vec![7; 8 * 1024]),
        },
        MetadataMessage::Data {
            piece: 0,
            total_len: 1,
            data: Bytes::from_static(b"d"),
        },
        MetadataMessage::Reject { piece: 0 },
        MetadataMessage::Reject { piece: u32::MAX },
    ]
}

fn encoded(message: &MetadataMessage) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_metadata(message, &mut buf).unwrap();
    buf
}

fn frame(payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(payload.len() as u32);
    buf.extend_from_slice(payload);
    buf
}

#[test]
fn every_message_round_trips() {
    for message in messages() {
        let mut buf = encoded(&message);
        assert!(buf.len() - LEN_PREFIX_LEN <= METADATA_MAX_FRAME_LEN);
        assert_eq!(decode_metadata(&mut buf).unwrap(), Some(message));
        assert!(buf.is_empty());
    }
}

#[test]
fn frame_layout_is_pinned() {
    let request = MetadataMessage::Request {
        info_hash: InfoHash([0xab; 20]),
        piece: 5,
    };
    let mut expected = vec![0, 0, 0, 22, 0];
    expected.extend([0xab; 20]);
    expected.push(5);
    assert_eq!(&encoded(&request)[..], expected);

    let data = MetadataMessage::Data {
        piece: 1,
        total_len: 300,
        data: Bytes::from_static(&[9, 9]),
    };
    assert_eq!(
        &encoded(&data)[..],
        [0, 0, 0, 7, 1, 1, 251, 0x2c, 0x01, 9, 9]
    );
    assert_eq!(
        &encoded(&MetadataMessage::Reject { piece: 3 })[..],
        [0, 0, 0, 2, 2, 3]
    );
}

#[test]
fn frames_arriving_in_small_chunks() {
    let mut all = BytesMut::new();
    for message in messages() {
        encode_metadata(&message, &mut all).unwrap();
    }
    for chunk_len in 1..=7 {
        let mut inbox = BytesMut::new();
        let mut received = Vec::new();
        for chunk in all.chunks(chunk_len) {
            inbox.extend_from_slice(chunk);
            while let Some(message) = decode_metadata(&mut inbox).unwrap() {
                received.push(message);
            }
        }
        assert_eq!(received, messages(), "chunks of {chunk_len}");
        assert!(inbox.is_empty());
    }
}

#[test]
fn data_is_not_copied_on_decode() {
    let mut buf = encoded(&messages()[2]);
    let frame_start = buf.as_ptr() as usize;
    let Some(MetadataMessage::Data { data, .. }) = decode_metadata(&mut buf).unwrap() else {
        panic!("not a Data");
    };
    let offset = data.as_ptr() as usize - frame_start;
    assert!(offset < 16, "data at offset {offset}");
}

#[test]
fn data_over_the_piece_length_is_refused() {
    // Header: tag 1, piece 0, total_len 100 000 (a 5-byte varint); then one byte too many.
    let mut payload = vec![1, 0, 252, 0xa0, 0x86, 0x01, 0x00];
    payload.extend(vec![0; METADATA_PIECE_LEN as usize + 1]);
    let mut buf = frame(&payload);
    assert_eq!(
        decode_metadata(&mut buf),
        Err(WireError::MetadataPieceTooLong {
            piece: 0,
            len: 16385,
            max: 16384
        })
    );
    assert!(buf.is_empty());

    let too_long = MetadataMessage::Data {
        piece: 0,
        total_len: 100_000,
        data: Bytes::from(vec![0; METADATA_PIECE_LEN as usize + 1]),
    };
    let mut buf = BytesMut::new();
    assert!(matches!(
        encode_metadata(&too_long, &mut buf),
        Err(WireError::MetadataPieceTooLong { len: 16385, .. })
    ));
    assert!(buf.is_empty());
}

#[test]
fn data_total_len_must_be_1_to_16_mib() {
    for total_len in [0, MAX_METADATA_LEN + 1, u32::MAX] {
        let message = MetadataMessage::Data {
            piece: 0,
            total_len,
            data: Bytes::from_static(b"x"),
        };
        let expected = WireError::MetadataTotalLen {
            total_len,
            max: MAX_METADATA_LEN,
        };
        assert_eq!(
            encode_metadata(&message, &mut BytesMut::new()),
            Err(expected.clone())
        );
        let mut payload = vec![1, 0];
        let mut header = BytesMut::new();
        bincode::serde::encode_into_writer(
            total_len,
            crate::codec::BytesWriter(&mut header),
            bincode::config::standard(),
        )
        .unwrap();
        payload.extend_from_slice(&header);
        payload.push(b'x');
        assert_eq!(decode_metadata(&mut frame(&payload)), Err(expected));
    }
}

#[test]
fn oversized_length_prefix_is_refused_before_the_frame() {
    for len in [METADATA_MAX_FRAME_LEN as u32 + 1, u32::MAX] {
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        assert_eq!(
            decode_metadata(&mut buf),
            Err(WireError::FrameTooLarge {
                len: len as usize,
                max: METADATA_MAX_FRAME_LEN
            })
        );
        assert!(
            buf.capacity() < METADATA_MAX_FRAME_LEN,
            "{}",
            buf.capacity()
        );
    }
    let mut buf = BytesMut::from(&(METADATA_MAX_FRAME_LEN as u32).to_be_bytes()[..]);
    assert_eq!(decode_metadata(&mut buf), Ok(None));
}

#[test]
fn trailing_bytes_are_an_error() {
    for message in [
        MetadataMessage::Reject { piece: 3 },
        MetadataMessage::Request {
            info_hash: InfoHash([1; 20]),
            piece: 0,
        },
    ] {
        let mut buf = encoded(&message);
        let len = buf.len() - LEN_PREFIX_LEN;
        buf.put_u8(0);
        buf[..LEN_PREFIX_LEN].copy_from_slice(&(len as u32 + 1).to_be_bytes());
        assert_eq!(
            decode_metadata(&mut buf),
            Err(WireError::ProtocolTrailingBytes {
                protocol: METADATA_PROTOCOL,
                len: len + 1,
                extra: 1
            })
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn unknown_tags_and_truncation_are_malformed() {
    for payload in [&[][..], &[3], &[0, 1, 2], &[1, 0], &[2]] {
        let err = decode_metadata(&mut frame(payload)).unwrap_err();
        assert!(
            matches!(err, WireError::Malformed { .. }),
            "{payload:?}: {err}"
        );
    }
}

#[test]
fn reply_slices_the_info_dictionary() {
    let info: Bytes = (0..40 * 1024).map(|i| i as u8).collect::<Vec<u8>>().into();
    let piece = |n: u32| metadata_reply(&info, n);
    assert_eq!(
        piece(0),
        MetadataMessage::Data {
            piece: 0,
            total_len: 40960,
            data: info.slice(..16384)
        }
    );
    assert_eq!(
        piece(1),
        MetadataMessage::Data {
            piece: 1,
            total_len: 40960,
            data: info.slice(16384..32768)
        }
    );
    assert_eq!(
        piece(2),
        MetadataMessage::Data {
            piece: 2,
            total_len: 40960,
            data: info.slice(32768..)
        }
    );
    assert_eq!(piece(3), MetadataMessage::Reject { piece: 3 });
    assert_eq!(piece(u32::MAX), MetadataMessage::Reject { piece: u32::MAX });

    // Exactly one piece: piece 1 is out of range.
    let one = Bytes::from(vec![1; 16384]);
    assert!(
        matches!(metadata_reply(&one, 0), MetadataMessage::Data { ref data, .. } if data.len() == 16384)
    );
    assert_eq!(
        metadata_reply(&one, 1),
        MetadataMessage::Reject { piece: 1 }
    );

    // Nothing to serve, or too much.
    assert_eq!(
        metadata_reply(&Bytes::new(), 0),
        MetadataMessage::Reject { piece: 0 }
    );
    let huge = Bytes::from(vec![0; MAX_METADATA_LEN as usize + 1]);
    assert_eq!(
        metadata_reply(&huge, 0),
        MetadataMessage::Reject { piece: 0 }
    );

    // Every reply encodes.
    for n in 0..4 {
        encode_metadata(&piece(n), &mut BytesMut::new()).unwrap();
    }
}
