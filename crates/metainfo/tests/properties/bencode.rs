//! Bencode: values round-trip through encode and decode, and the decoder never panics on
//! arbitrary or mutated input.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use shoal_metainfo::bencode::{DecodeOptions, Value, decode, decode_with, encode};

use crate::bytes::{arbitrary_bytes, byte_string, mutate, mutations};

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => -20i64..20,
        3 => any::<i64>(),
        1 => prop::sample::select(vec![0, -1, 1, i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1]),
    ]
}

/// Any bencode value, nested up to 4 levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        int().prop_map(Value::Int),
        byte_string(24).prop_map(Value::Bytes)
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::btree_map(byte_string(8), inner, 0..6).prop_map(Value::Dict),
        ]
    })
}

/// Decodes `input` strictly and with the `.torrent` options. Neither may panic; every error
/// must point inside the input (or just past its end); every success must describe the whole
/// input and survive a re-encode.
fn check_decode(input: &[u8]) -> Result<(), TestCaseError> {
    match decode(input) {
        Ok(doc) => {
            let root = doc.root();
            prop_assert_eq!(root.span(), 0..input.len());
            let value = root.to_value();
            // Strict decoding only accepts canonical bencode, which the encoder reproduces.
            prop_assert_eq!(encode(&value), input);
            // Whatever strict decoding accepts, the lenient options accept too.
            let lenient = decode_with(input, DecodeOptions::TORRENT_FILE);
            prop_assert!(
                lenient.is_ok(),
                "strict ok but lenient failed: {:?}",
                lenient.err()
            );
        }
        Err(e) => prop_assert!(e.offset <= input.len(), "{e} in {} bytes", input.len()),
    }
    match decode_with(input, DecodeOptions::TORRENT_FILE) {
        Ok(doc) => {
            let root = doc.root();
            let span = root.span();
            prop_assert_eq!(span.start, 0);
            prop_assert!(input[span.end..].iter().all(u8::is_ascii_whitespace));
            prop_assert_eq!(root.raw(), &input[span]);
            let value = root.to_value();
            let canonical = encode(&value);
            let again = decode(&canonical);
            prop_assert!(
                again.is_ok(),
                "re-encoding does not decode: {:?}",
                again.err()
            );
            if let Ok(again) = again {
                prop_assert_eq!(again.root().to_value(), value);
            }
        }
        Err(e) => prop_assert!(e.offset <= input.len(), "{e} in {} bytes", input.len()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn bencode_round_trips(v in value()) {
        let encoded = encode(&v);
        let doc = decode(&encoded);
        prop_assert!(doc.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&encoded), doc.err());
        if let Ok(doc) = doc {
            prop_assert_eq!(doc.root().span(), 0..encoded.len());
            prop_assert_eq!(doc.root().raw(), encoded.as_slice());
            prop_assert_eq!(doc.root().to_value(), v.clone());
        }
        // The `.torrent` options read canonical input the same way, trailing newline or not.
        let mut with_newline = encoded.clone();
        with_newline.extend_from_slice(b"\r\n");
        let lenient = decode_with(&with_newline, DecodeOptions::TORRENT_FILE);
        prop_assert!(lenient.is_ok(), "{:?}", lenient.err());
        if let Ok(doc) = lenient {
            prop_assert_eq!(doc.root().span(), 0..encoded.len());
            prop_assert_eq!(doc.root().to_value(), v);
        }
        // Strict decoding refuses that newline, and says where it is.
        let strict = decode(&with_newline);
        prop_assert_eq!(strict.map(|_| ()).map_err(|e| e.offset), Err(encoded.len()));
    }

    #[test]
    fn bencode_decode_never_panics_on_arbitrary_bytes(input in arbitrary_bytes()) {
        check_decode(&input)?;
    }

    #[test]
    fn bencode_decode_never_panics_on_mutated_encodings(v in value(), muts in mutations()) {
        let input = mutate(encode(&v), &muts);
        check_decode(&input)?;
    }
}
