//! Bencode decoding, strict and with the `.torrent` options, must never panic; whatever it
//! accepts must survive a re-encode.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_metainfo::bencode::{DecodeOptions, decode, decode_with, encode};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(doc) => {
            let root = doc.root();
            assert_eq!(
                root.span(),
                0..data.len(),
                "strict decode left bytes unread"
            );
            // Strict decoding accepts canonical bencode only, which the encoder reproduces.
            let value = root.to_value();
            assert_eq!(
                encode(&value),
                data,
                "strict decode accepted non-canonical input"
            );
            assert!(
                decode_with(data, DecodeOptions::TORRENT_FILE).is_ok(),
                "strict decode accepted what the lenient options reject"
            );
        }
        Err(e) => assert!(e.offset <= data.len(), "error offset past the end: {e}"),
    }
    match decode_with(data, DecodeOptions::TORRENT_FILE) {
        Ok(doc) => {
            let value = doc.root().to_value();
            let encoded = encode(&value);
            let again = decode(&encoded).expect("a re-encoded value decodes");
            assert_eq!(
                again.root().to_value(),
                value,
                "re-encode changed the value"
            );
        }
        Err(e) => assert!(e.offset <= data.len(), "error offset past the end: {e}"),
    }
});
