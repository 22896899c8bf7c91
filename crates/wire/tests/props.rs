//! Property tests of the codec: round trips, arbitrary chunking, and no panics on any input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shoal_metainfo::{InfoHash, PieceGeometry};
use shoal_wire::{
    Bitfield, Block, BlockRef, Handshake, HaveState, MAX_FRAME_LEN, Message, Validator, WireError,
    decode_frame, encode,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn block_ref() -> impl Strategy<Value = BlockRef> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(piece, offset, length)| BlockRef {
        piece,
        offset,
        length,
    })
}

fn have_state() -> impl Strategy<Value = HaveState> {
    prop_oneof![
        Just(HaveState::All),
        Just(HaveState::None),
        // Arbitrary bytes, spare bits included: decoding keeps them, validation judges them.
        (0u32..4000).prop_flat_map(|len| {
            proptest::collection::vec(any::<u8>(), (len as usize).div_ceil(8)).prop_map(
                move |bytes| HaveState::Bitfield(Bitfield::from_bytes(bytes, len).unwrap()),
            )
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u16>(), any::<[u8; 20]>(), have_state()).prop_map(|(version, hash, have)| {
            Message::Handshake(Handshake {
                version,
                info_hash: InfoHash(hash),
                have,
            })
        }),
        Just(Message::KeepAlive),
        any::<u32>().prop_map(Message::Have),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::Choke),
        Just(Message::Unchoke),
        block_ref().prop_map(Message::Request),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..20_000)
        )
            .prop_map(|(piece, offset, data)| Message::Piece(Block {
                piece,
                offset,
                data: Bytes::from(data),
            })),
        block_ref().prop_map(Message::Cancel),
        block_ref().prop_map(Message::Reject),
    ]
}

fn decode_stream(chunks: impl IntoIterator<Item = Vec<u8>>) -> Result<Vec<Message>, WireError> {
    let mut inbox = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        inbox.extend_from_slice(&chunk);
        while let Some(message) = decode_frame(&mut inbox)? {
            out.push(message);
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_message_round_trips(message in message()) {
        let mut buf = BytesMut::new();
        encode(&message, &mut buf).unwrap();
        prop_assert_eq!(decode_frame(&mut buf).unwrap(), Some(message));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_chunking_decodes_the_same_messages(
        messages in proptest::collection::vec(message(), 0..12),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let mut stream = BytesMut::new();
        for message in &messages {
            encode(message, &mut stream).unwrap();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort_unstable();
        let chunks = cuts.windows(2).map(|w| stream[w[0]..w[1]].to_vec());
        prop_assert_eq!(decode_stream(chunks).unwrap(), messages);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
    ) {
        let _ = decode_stream(chunks);
    }

    #[test]
    fn decoder_never_panics_on_framed_garbage(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8),
    ) {
        // Well-formed length prefixes, so the payload decoder itself sees the garbage.
        let mut stream = Vec::new();
        for payload in &payloads {
            stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            stream.extend_from_slice(payload);
        }
        let mut inbox = BytesMut::from(&stream[..]);
        let geometry = PieceGeometry::new(1 << 18, 1 << 22).unwrap();
        let validator = Validator::new(InfoHash([0; 20]), geometry);
        for _ in &payloads {
            match decode_frame(&mut inbox) {
                Ok(Some(message)) => { let _ = validator.check_incoming(&message); }
                Ok(None) => prop_assert!(false, "a whole frame was not decoded"),
                Err(err) => {
                    let too_large = matches!(err, WireError::FrameTooLarge { .. });
                    prop_assert!(!too_large, "payload under the limit refused: {}", err);
                }
            }
        }
        prop_assert!(inbox.is_empty());
    }

    #[test]
    fn frame_header_over_the_limit_is_refused_at_once(len in (MAX_FRAME_LEN as u32 + 1)..=u32::MAX) {
        let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
        let refused = matches!(decode_frame(&mut buf), Err(WireError::FrameTooLarge { .. }));
        prop_assert!(refused);
    }
}
