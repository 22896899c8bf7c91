//! Property tests of the `/shoal/pex/1` and `/shoal/metadata/1` codecs: round trips in any
//! chunking, and no panics on any input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shoal_metainfo::InfoHash;
use shoal_wire::{
    MAX_METADATA_LEN, METADATA_PIECE_LEN, MetadataMessage, PEX_MAX_ADDED, PEX_MAX_ADDR_LEN,
    PEX_MAX_ADDRS_PER_PEER, PEX_MAX_DROPPED, PEX_MAX_PEER_ID_LEN, PexMessage, PexPeer,
    decode_metadata, decode_pex, encode_metadata, encode_pex,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..=max)
}

fn pex_message() -> impl Strategy<Value = PexMessage> {
    let peer = (
        bytes(PEX_MAX_PEER_ID_LEN),
        proptest::collection::vec(bytes(PEX_MAX_ADDR_LEN), 0..=PEX_MAX_ADDRS_PER_PEER),
    )
        .prop_map(|(peer_id, addrs)| PexPeer { peer_id, addrs });
    (
        any::<[u8; 20]>(),
        proptest::collection::vec(peer, 0..=PEX_MAX_ADDED),
        proptest::collection::vec(bytes(PEX_MAX_PEER_ID_LEN), 0..=PEX_MAX_DROPPED),
    )
        .prop_map(|(hash, added, dropped)| PexMessage {
            info_hash: InfoHash(hash),
            added,
            dropped,
        })
}

fn metadata_message() -> impl Strategy<Value = MetadataMessage> {
    prop_oneof![
        (any::<[u8; 20]>(), any::<u32>()).prop_map(|(hash, piece)| MetadataMessage::Request {
            info_hash: InfoHash(hash),
            piece
        }),
        (
            any::<u32>(),
            1..=MAX_METADATA_LEN,
            proptest::collection::vec(any::<u8>(), 0..=METADATA_PIECE_LEN as usize)
        )
            .prop_map(|(piece, total_len, data)| MetadataMessage::Data {
                piece,
                total_len,
                data: Bytes::from(data)
            }),
        any::<u32>().prop_map(|piece| MetadataMessage::Reject { piece }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pex_round_trips_in_any_chunks(
        messages in proptest::collection::vec(pex_message(), 1..4),
        chunk in 1usize..64,
    ) {
        let mut all = BytesMut::new();
        for message in &messages {
            encode_pex(message, &mut all).unwrap();
        }
        let mut inbox = BytesMut::new();
        let mut received = Vec::new();
        for part in all.chunks(chunk) {
            inbox.extend_from_slice(part);
            while let Some(message) = decode_pex(&mut inbox).unwrap() {
                received.push(message);
            }
        }
        prop_assert_eq!(received, messages);
        prop_assert!(inbox.is_empty());
    }

    #[test]
    fn metadata_round_trips_in_any_chunks(
        messages in proptest::collection::vec(metadata_message(), 1..4),
        chunk in 1usize..64,
    ) {
        let mut all = BytesMut::new();
        for message in &messages {
            encode_metadata(message, &mut all).unwrap();
        }
        let mut inbox = BytesMut::new();
        let mut received = Vec::new();
        for part in all.chunks(chunk) {
            inbox.extend_from_slice(part);
            while let Some(message) = decode_metadata(&mut inbox).unwrap() {
                received.push(message);
            }
        }
        prop_assert_eq!(received, messages);
    }

    /// Whatever arrives, decoding returns (never panics) and never leaves a frame half-eaten.
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        prefix_len in any::<Option<u16>>(),
    ) {
        let mut input = BytesMut::new();
        if let Some(len) = prefix_len {
            // A plausible length prefix, so the payload decoders see garbage too.
            input.extend_from_slice(&u32::from(len).to_be_bytes());
        }
        input.extend_from_slice(&data);

        let mut buf = input.clone();
        while let Ok(Some(message)) = decode_pex(&mut buf) {
            prop_assert!(message.check().is_ok());
        }
        let mut buf = input;
        while let Ok(Some(_)) = decode_metadata(&mut buf) {}
    }

    /// Every byte string of a valid message, mutated in one byte, decodes or errors cleanly.
    #[test]
    fn mutated_frames_never_panic(
        message in pex_message(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let mut buf = BytesMut::new();
        encode_pex(&message, &mut buf).unwrap();
        let i = at.index(buf.len());
        buf[i] = value;
        while let Ok(Some(message)) = decode_pex(&mut buf) {
            prop_assert!(message.check().is_ok());
        }
    }
}
