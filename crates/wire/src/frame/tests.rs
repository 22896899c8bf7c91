use bytes::{BufMut, Bytes, BytesMut};
use shoal_metainfo::{InfoHash, MAX_PIECES};

use super::*;
use crate::bitfield::Bitfield;
use crate::limits::MAX_REQUEST_LEN_ACCEPTED;
use crate::message::{BlockRef, Handshake, PROTOCOL_VERSION};

fn block(piece: u32, offset: u32, length: u32) -> BlockRef {
    BlockRef {
        piece,
        offset,
        length,
    }
}

fn handshake(have: HaveState) -> Message {
    Message::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        info_hash: InfoHash([0xab; 20]),
        have,
    })
}

/// One of every message, with small and large field values.
fn every_message() -> Vec<Message> {
    let mut bits = Bitfield::new(13);
    bits.set(0, true);
    bits.set(12, true);
    vec![
        handshake(HaveState::All),
        handshake(HaveState::None),
        handshake(HaveState::Bitfield(bits)),
        handshake(HaveState::Bitfield(Bitfield::new(0))),
        Message::KeepAlive,
        Message::Have(0),
        Message::Have(u32::MAX),
        Message::Interested,
        Message::NotInterested,
        Message::Choke,
        Message::Unchoke,
        Message::Request(block(7, 16384, 16384)),
        Message::Request(block(u32::MAX, u32::MAX, u32::MAX)),
        Message::Piece(Block {
            piece: 2,
            offset: 32768,
            data: Bytes::from(vec![0x5a; 16384]),
        }),
        Message::Piece(Block {
            piece: 0,
            offset: 0,
            data: Bytes::new(),
        }),
        Message::Cancel(block(1, 0, 16384)),
        Message::Reject(block(9, 49152, 1000)),
    ]
}

fn encoded(message: &Message) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(message, &mut buf).unwrap();
    buf
}

/// Decodes every frame in `buf`; fails if anything is left over.
fn decode_all(buf: &mut BytesMut) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(message) = decode_frame(buf).unwrap() {
        out.push(message);
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

/// A frame with the given payload.
fn frame(payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(payload.len() as u32);
    buf.extend_from_slice(payload);
    buf
}

#[test]
fn every_message_round_trips() {
    for message in every_message() {
        let mut buf = encoded(&message);
        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len + LEN_PREFIX_LEN, buf.len(), "{message:?}");
        assert_eq!(decode_frame(&mut buf).unwrap(), Some(message));
        assert!(buf.is_empty());
    }
}

#[test]
fn frame_layout_is_pinned() {
    // Changing any of these breaks compatibility with deployed peers.
    assert_eq!(&encoded(&Message::KeepAlive)[..], [0, 0, 0, 0]);
    assert_eq!(&encoded(&Message::Have(5))[..], [0, 0, 0, 2, 1, 5]);
    assert_eq!(&encoded(&Message::Interested)[..], [0, 0, 0, 1, 2]);
    assert_eq!(&encoded(&Message::Unchoke)[..], [0, 0, 0, 1, 5]);
    assert_eq!(
        &encoded(&Message::Request(block(1, 16384, 16384)))[..],
        [0, 0, 0, 8, 6, 1, 251, 0x00, 0x40, 251, 0x00, 0x40]
    );
    let piece = Message::Piece(Block {
        piece: 1,
        offset: 2,
        data: Bytes::from_static(&[9, 9, 9]),
    });
    assert_eq!(&encoded(&piece)[..], [0, 0, 0, 6, 7, 1, 2, 9, 9, 9]);
    let mut bits = Bitfield::new(10);
    bits.set(0, true);
    let mut expected = vec![0, 0, 0, 27, 0, 1];
    expected.extend([0xab; 20]);
    expected.extend([2, 10, 2, 0x80, 0x00]);
    assert_eq!(
        &encoded(&handshake(HaveState::Bitfield(bits)))[..],
        expected
    );
}

#[test]
fn several_frames_in_one_buffer() {
    let messages = every_message();
    let mut buf = BytesMut::new();
    for message in &messages {
        encode(message, &mut buf).unwrap();
    }
    assert_eq!(decode_all(&mut buf), messages);
}

#[test]
fn byte_by_byte_feeding() {
    let messages = every_message();
    let mut stream = BytesMut::new();
    for message in &messages {
        encode(message, &mut stream).unwrap();
    }
    let mut inbox = BytesMut::new();
    let mut decoded = Vec::new();
    for &byte in stream.iter() {
        inbox.put_u8(byte);
        while let Some(message) = decode_frame(&mut inbox).unwrap() {
            decoded.push(message);
        }
    }
    assert_eq!(decoded, messages);
    assert!(inbox.is_empty());
}

#[test]
fn partial_frame_consumes_nothing() {
    let full = encoded(&Message::Request(block(3, 0, 16384)));
    for cut in 0..full.len() {
        let mut part = BytesMut::from(&full[..cut]);
        assert_eq!(decode_frame(&mut part).unwrap(), None, "cut at {cut}");
        assert_eq!(&part[..], &full[..cut], "cut at {cut}");
    }
}

#[test]
fn piece_data_is_not_copied_on_decode() {
    let data = Bytes::from(vec![0xc3; 16384]);
    let mut buf = encoded(&Message::Piece(Block {
        piece: 4,
        offset: 16384,
        data: data.clone(),
    }));
    encode(&Message::Have(4), &mut buf).unwrap();
    let frame_start = buf.as_ptr() as usize;
    let header = LEN_PREFIX_LEN + 1 + 1 + 3; // prefix, tag, piece 4, offset 16384 (251 + u16)
    let Some(Message::Piece(received)) = decode_frame(&mut buf).unwrap() else {
        panic!("expected a piece");
    };
    assert_eq!(received.data, data);
    assert_eq!(received.data.as_ptr() as usize, frame_start + header);
    // The buffer keeps working for the next frame.
    assert_eq!(decode_frame(&mut buf).unwrap(), Some(Message::Have(4)));
}

#[test]
fn oversized_header_is_refused_before_the_data() {
    for len in [MAX_FRAME_LEN as u32 + 1, u32::MAX] {
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        assert_eq!(
            decode_frame(&mut buf),
            Err(WireError::FrameTooLarge {
                len: len as usize,
                max: MAX_FRAME_LEN
            })
        );
        // Nothing was reserved for the announced frame.
        assert!(buf.capacity() < MAX_FRAME_LEN, "{}", buf.capacity());
    }
    // At the limit: waits for the bytes.
    let mut buf = BytesMut::from(&(MAX_FRAME_LEN as u32).to_be_bytes()[..]);
    assert_eq!(decode_frame(&mut buf), Ok(None));
}

#[test]
fn largest_frames_fit_the_limit() {
    // The bitfield of the largest torrent, with every varint at its widest.
    let biggest = Message::Handshake(Handshake {
        version: u16::MAX,
        info_hash: InfoHash([0xff; 20]),
        have: HaveState::Bitfield(Bitfield::full(MAX_PIECES as u32)),
    });
    let mut buf = encoded(&biggest);
    assert!(buf.len() - LEN_PREFIX_LEN <= MAX_FRAME_LEN);
    assert_eq!(decode_frame(&mut buf).unwrap(), Some(biggest));

    let piece = Message::Piece(Block {
        piece: u32::MAX,
        offset: u32::MAX,
        data: Bytes::from(vec![1; MAX_REQUEST_LEN_ACCEPTED as usize]),
    });
    let mut buf = encoded(&piece);
    assert_eq!(decode_frame(&mut buf).unwrap(), Some(piece));
}

#[test]
fn encode_refuses_frames_over_the_limit_and_leaves_the_buffer() {
    let mut buf = encoded(&Message::Choke);
    let before = buf.clone();
    let huge_piece = Message::Piece(Block {
        piece: 0,
        offset: 0,
        data: Bytes::from(vec![0; MAX_FRAME_LEN - 2]), // + 3-byte header: one past the edge
    });
    assert_eq!(
        encode(&huge_piece, &mut buf),
        Err(WireError::FrameTooLarge {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    assert_eq!(buf, before);
    let just_fits = Message::Piece(Block {
        piece: 0,
        offset: 0,
        data: Bytes::from(vec![0; MAX_FRAME_LEN - 3]),
    });
    encode(&just_fits, &mut buf).unwrap();

    let huge_bitfield = handshake(HaveState::Bitfield(Bitfield::new(
        (MAX_FRAME_LEN as u32 + 1) * 8,
    )));
    let mut buf = BytesMut::new();
    assert!(matches!(
        encode(&huge_bitfield, &mut buf),
        Err(WireError::FrameTooLarge { .. })
    ));
    assert!(buf.is_empty());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let cases: [&[u8]; 6] = [
        &[0xff, 0xff, 0xff],       // tag is not a u32 varint
        &[10],                     // unknown tag
        &[200],                    // unknown tag
        &[1],                      // Have without its piece
        &[6, 1, 2],                // Request without its length
        &[0, 1, 0xab, 0xab, 0xab], // Handshake cut inside the info-hash
    ];
    for payload in cases {
        let mut buf = frame(payload);
        let err = decode_frame(&mut buf).unwrap_err();
        assert!(
            matches!(err, WireError::Malformed { len, first_byte, .. }
                if len == payload.len() && first_byte == payload[0]),
            "{payload:?}: {err}"
        );
        assert!(buf.is_empty(), "the bad frame is consumed");
    }
}

#[test]
fn malformed_frames_say_what_is_wrong() {
    let text = |payload: &[u8]| decode_frame(&mut frame(payload)).unwrap_err().to_string();
    assert_eq!(
        text(&[1]),
        "undecodable 1-byte frame starting with 0x01: the payload ends in the middle of a field"
    );
    assert_eq!(
        text(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0]),
        "undecodable 9-byte frame starting with 0xfd: a varint that should hold a u32 holds a u64"
    );
    assert!(text(&[10]).contains("expected variant index 0 <= i < 10"));
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut buf = frame(&[2, 0]);
    assert_eq!(
        decode_frame(&mut buf),
        Err(WireError::TrailingBytes {
            kind: crate::MessageKind::Interested,
            len: 2,
            extra: 1
        })
    );
}

#[test]
fn bitfield_bytes_must_match_its_piece_count() {
    let payload = |pieces: u8, bytes: &[u8]| {
        let mut p = vec![0, 1];
        p.extend([0xab; 20]);
        p.extend([2, pieces, bytes.len() as u8]);
        p.extend_from_slice(bytes);
        p
    };
    assert!(decode_frame(&mut frame(&payload(16, &[0, 0]))).is_ok());
    for (pieces, bytes) in [
        (16u8, &[0u8][..]),
        (16, &[0, 0, 0]),
        (17, &[0, 0]),
        (0, &[0]),
    ] {
        assert_eq!(
            decode_frame(&mut frame(&payload(pieces, bytes))),
            Err(WireError::BitfieldBytes {
                pieces: pieces.into(),
                expected: u64::from(pieces).div_ceil(8),
                got: bytes.len()
            })
        );
    }
    // A byte count past the end of the frame.
    let mut bad = payload(16, &[0, 0]);
    bad.pop();
    assert!(matches!(
        decode_frame(&mut frame(&bad)),
        Err(WireError::Malformed { .. })
    ));
}

#[test]
fn decode_reserves_room_for_the_announced_frame() {
    let full = encoded(&Message::Piece(Block {
        piece: 0,
        offset: 0,
        data: Bytes::from(vec![7; 16384]),
    }));
    let mut part = BytesMut::from(&full[..10]);
    assert_eq!(decode_frame(&mut part).unwrap(), None);
    assert!(part.capacity() >= full.len());
}
