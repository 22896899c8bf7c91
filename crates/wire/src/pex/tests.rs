use bytes::{BufMut, BytesMut};
use shoal_metainfo::InfoHash;

use super::*;

fn peer(n: u8, addrs: usize) -> PexPeer {
    PexPeer {
        peer_id: vec![n; 38],
        addrs: (0..addrs).map(|i| vec![n, i as u8, 0, 1]).collect(),
    }
}

/// The largest valid message: every list full, every byte string at its longest.
fn biggest() -> PexMessage {
    PexMessage {
        info_hash: InfoHash([0xee; 20]),
        added: (0..PEX_MAX_ADDED)
            .map(|n| PexPeer {
                peer_id: vec![n as u8; PEX_MAX_PEER_ID_LEN],
                addrs: (0..PEX_MAX_ADDRS_PER_PEER)
                    .map(|i| vec![i as u8; PEX_MAX_ADDR_LEN])
                    .collect(),
            })
            .collect(),
        dropped: (0..PEX_MAX_DROPPED)
            .map(|n| vec![n as u8; PEX_MAX_PEER_ID_LEN])
            .collect(),
    }
}

fn messages() -> Vec<PexMessage> {
    vec![
        PexMessage {
            info_hash: InfoHash([1; 20]),
            added: vec![],
            dropped: vec![],
        },
        PexMessage {
            info_hash: InfoHash([2; 20]),
            added: vec![peer(1, 1), peer(2, 0), peer(3, 8)],
            dropped: vec![vec![9; 38], vec![1]],
        },
        biggest(),
    ]
}

fn encoded(message: &PexMessage) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_pex(message, &mut buf).unwrap();
    buf
}

/// A frame with this payload, bypassing the encoder's checks.
fn frame(payload: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(payload.len() as u32);
    buf.extend_from_slice(payload);
    buf
}

/// The payload a sloppy peer would send: plain serde, no checks.
fn unchecked_payload(message: &PexMessage) -> Vec<u8> {
    bincode::serde::encode_to_vec(message, bincode::config::standard()).unwrap()
}

#[test]
fn every_message_round_trips() {
    for message in messages() {
        let mut buf = encoded(&message);
        assert_eq!(decode_pex(&mut buf).unwrap(), Some(message));
        assert!(buf.is_empty());
    }
}

#[test]
fn the_biggest_message_exactly_fills_the_frame_limit() {
    let buf = encoded(&biggest());
    assert_eq!(buf.len() - LEN_PREFIX_LEN, PEX_MAX_FRAME_LEN);
    assert_eq!(PEX_MAX_FRAME_LEN, 58_172);
}

#[test]
fn the_codec_writes_what_plain_bincode_writes() {
    for message in messages() {
        assert_eq!(
            encoded(&message)[LEN_PREFIX_LEN..],
            unchecked_payload(&message)
        );
    }
}

#[test]
fn frame_layout_is_pinned() {
    let message = PexMessage {
        info_hash: InfoHash([0xab; 20]),
        added: vec![PexPeer {
            peer_id: vec![7, 7],
            addrs: vec![vec![4, 127, 0, 0, 1]],
        }],
        dropped: vec![vec![9]],
    };
    let mut expected = vec![0, 0, 0, 34];
    expected.extend([0xab; 20]);
    expected.extend([1, 2, 7, 7, 1, 5, 4, 127, 0, 0, 1, 1, 1, 9]);
    assert_eq!(&encoded(&message)[..], expected);
}

#[test]
fn frames_arriving_in_small_chunks() {
    let mut all = BytesMut::new();
    for message in messages() {
        encode_pex(&message, &mut all).unwrap();
    }
    for chunk_len in 1..=7 {
        let mut inbox = BytesMut::new();
        let mut received = Vec::new();
        for chunk in all.chunks(chunk_len) {
            inbox.extend_from_slice(chunk);
            while let Some(message) = decode_pex(&mut inbox).unwrap() {
                received.push(message);
            }
        }
        assert_eq!(received, messages(), "chunks of {chunk_len}");
        assert!(inbox.is_empty());
    }
}

#[test]
fn partial_frame_consumes_nothing() {
    let full = encoded(&messages()[1]);
    let mut buf = BytesMut::from(&full[..full.len() - 1]);
    assert_eq!(decode_pex(&mut buf).unwrap(), None);
    assert_eq!(buf.len(), full.len() - 1);
}

#[test]
fn check_names_each_limit() {
    let base = messages()[1].clone();
    type Mutation = Box<dyn Fn(&mut PexMessage)>;
    let cases: Vec<(Mutation, WireError)> = vec![
        (
            Box::new(|m| m.added = (0..51).map(|n| peer(n, 1)).collect()),
            WireError::PexTooManyAdded { count: 51, max: 50 },
        ),
        (
            Box::new(|m| m.dropped = vec![vec![1]; 51]),
            WireError::PexTooManyDropped { count: 51, max: 50 },
        ),
        (
            Box::new(|m| m.added[2] = peer(3, 9)),
            WireError::PexTooManyAddrs {
                index: 2,
                count: 9,
                max: 8,
            },
        ),
        (
            Box::new(|m| m.added[0].peer_id = vec![0; 65]),
            WireError::PexPeerIdLen { len: 65, max: 64 },
        ),
        (
            Box::new(|m| m.added[0].peer_id = vec![]),
            WireError::PexPeerIdLen { len: 0, max: 64 },
        ),
        (
            Box::new(|m| m.dropped[0] = vec![0; 65]),
            WireError::PexPeerIdLen { len: 65, max: 64 },
        ),
        (
            Box::new(|m| m.added[0].addrs[0] = vec![0; 129]),
            WireError::PexAddrLen { len: 129, max: 128 },
        ),
        (
            Box::new(|m| m.added[0].addrs[0] = vec![]),
            WireError::PexAddrLen { len: 0, max: 128 },
        ),
    ];
    for (mutate, expected) in cases {
        let mut message = base.clone();
        mutate(&mut message);
        assert_eq!(message.check(), Err(expected.clone()));

        // The encoder refuses it and leaves the buffer alone.
        let mut buf = BytesMut::from(&b"xy"[..]);
        assert_eq!(encode_pex(&message, &mut buf), Err(expected.clone()));
        assert_eq!(&buf[..], b"xy");

        // A peer sending it anyway gets the same error, and the frame is consumed.
        let mut buf = frame(&unchecked_payload(&message));
        assert_eq!(decode_pex(&mut buf), Err(expected));
        assert!(buf.is_empty());
    }
}

#[test]
fn many_items_claimed_over_the_cap_are_counted_not_kept() {
    // 1000 dropped one-byte ids: decoded, counted, refused.
    let message = PexMessage {
        info_hash: InfoHash([0; 20]),
        added: vec![],
        dropped: vec![vec![1]; 1000],
    };
    let mut buf = frame(&unchecked_payload(&message));
    assert_eq!(
        decode_pex(&mut buf),
        Err(WireError::PexTooManyDropped {
            count: 1000,
            max: 50
        })
    );
}

#[test]
fn huge_length_fields_fail_without_allocating() {
    // A dropped list claiming u32::MAX items, and an id claiming 2^32 bytes, in a tiny frame.
    let mut payload = vec![0; 20];
    payload.push(0); // no added peers
    payload.extend([252, 0xff, 0xff, 0xff, 0xff]); // dropped: u32::MAX items
    let err = decode_pex(&mut frame(&payload)).unwrap_err();
    assert!(matches!(err, WireError::Malformed { .. }), "{err}");

    let mut payload = vec![0; 20];
    payload.extend([0, 1]); // no added, one dropped
    payload.extend([252, 0xff, 0xff, 0xff, 0xff]); // of u32::MAX bytes
    payload.extend([1, 2, 3]);
    let err = decode_pex(&mut frame(&payload)).unwrap_err();
    assert!(matches!(err, WireError::Malformed { .. }), "{err}");
}

#[test]
fn oversized_length_prefix_is_refused_before_the_frame() {
    for len in [PEX_MAX_FRAME_LEN as u32 + 1, u32::MAX] {
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        assert_eq!(
            decode_pex(&mut buf),
            Err(WireError::FrameTooLarge {
                len: len as usize,
                max: PEX_MAX_FRAME_LEN
            })
        );
        assert!(buf.capacity() < PEX_MAX_FRAME_LEN, "{}", buf.capacity());
    }
    // At the limit: waits for the bytes.
    let mut buf = BytesMut::from(&(PEX_MAX_FRAME_LEN as u32).to_be_bytes()[..]);
    assert_eq!(decode_pex(&mut buf), Ok(None));
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut payload = unchecked_payload(&messages()[1]);
    payload.extend([0, 0]);
    let mut buf = frame(&payload);
    assert_eq!(
        decode_pex(&mut buf),
        Err(WireError::ProtocolTrailingBytes {
            protocol: PEX_PROTOCOL,
            len: payload.len(),
            extra: 2
        })
    );
    assert!(buf.is_empty());
}

#[test]
fn truncated_and_empty_payloads_are_malformed() {
    let payload = unchecked_payload(&messages()[1]);
    for cut in [0, 1, 20, payload.len() - 1] {
        let err = decode_pex(&mut frame(&payload[..cut])).unwrap_err();
        assert!(matches!(err, WireError::Malformed { .. }), "{cut}: {err}");
        assert!(err.to_string().contains("ends in the middle"), "{err}");
    }
}

#[test]
fn an_over_limit_message_still_names_its_torrent() {
    let base = &messages()[1];
    let too_many = PexMessage {
        dropped: vec![vec![1]; PEX_MAX_DROPPED + 1],
        ..base.clone()
    };
    let mut long_addr = base.clone();
    long_addr.added[0].addrs[0] = vec![0; PEX_MAX_ADDR_LEN + 1];
    for message in [too_many, long_addr] {
        let expected = message.check().unwrap_err();
        let mut buf = frame(&unchecked_payload(&message));
        assert_eq!(
            decode_pex_frame(&mut buf),
            Ok(Some(PexFrame::OverLimit {
                info_hash: message.info_hash,
                error: expected,
            }))
        );
        assert!(buf.is_empty());
    }
    // Within the limits it is the message; garbage has no torrent to name.
    let mut buf = encoded(base);
    assert_eq!(
        decode_pex_frame(&mut buf),
        Ok(Some(PexFrame::Message(base.clone())))
    );
    let err = decode_pex_frame(&mut frame(&[1, 2, 3])).unwrap_err();
    assert!(matches!(err, WireError::Malformed { .. }), "{err}");
}
