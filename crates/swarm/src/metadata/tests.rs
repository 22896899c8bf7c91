use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shoal_metainfo::InfoHash;
use shoal_wire::{
    MAX_METADATA_LEN, METADATA_PIECE_LEN, MetadataMessage, decode_metadata, encode_metadata,
    metadata_reply,
};

use super::*;

const PIECE: usize = METADATA_PIECE_LEN as usize;

/// 40 KiB of "info dictionary": 3 pieces, the last 8 KiB.
fn info() -> Vec<u8> {
    (0..40 * 1024).map(|i| (i % 251) as u8).collect()
}

fn piece(info: &[u8], n: u32) -> &[u8] {
    let start = n as usize * PIECE;
    &info[start..(start + PIECE).min(info.len())]
}

/// A fetch of `info` with every piece requested (piece 0 answered).
fn started(info: &[u8]) -> MetadataFetch {
    let mut fetch = MetadataFetch::new(InfoHash::of_info_bytes(info));
    assert_eq!(fetch.next_request(), Some(0));
    assert_eq!(fetch.next_request(), None);
    fetch.on_data(0, info.len() as u32, piece(info, 0)).unwrap();
    while fetch.next_request().is_some() {}
    fetch
}

#[test]
fn assembles_three_pieces_out_of_order() {
    let info = info();
    let total = info.len() as u32;
    let mut fetch = MetadataFetch::new(InfoHash::of_info_bytes(&info));
    assert_eq!(fetch.progress(), (0, None));

    // Size unknown: only piece 0, once.
    assert_eq!(fetch.next_request(), Some(0));
    assert_eq!(fetch.next_request(), None);
    assert_eq!(fetch.on_data(0, total, piece(&info, 0)), Ok(false));
    assert_eq!(fetch.progress(), (16384, Some(40960)));

    // Now the rest, each once, in order.
    assert_eq!(fetch.next_request(), Some(1));
    assert_eq!(fetch.next_request(), Some(2));
    assert_eq!(fetch.next_request(), None);

    assert_eq!(fetch.on_data(2, total, piece(&info, 2)), Ok(false));
    assert_eq!(fetch.progress(), (16384 + 8192, Some(40960)));
    assert!(!fetch.is_complete());
    assert_eq!(fetch.on_data(1, total, piece(&info, 1)), Ok(true));
    assert!(fetch.is_complete());
    assert_eq!(fetch.progress(), (40960, Some(40960)));
    assert_eq!(fetch.finish(), Ok(info));
}

#[test]
fn a_single_small_piece() {
    let info = b"d4:name4:teste".to_vec();
    let mut fetch = MetadataFetch::new(InfoHash::of_info_bytes(&info));
    assert_eq!(fetch.next_request(), Some(0));
    assert_eq!(fetch.on_data(0, info.len() as u32, &info), Ok(true));
    assert_eq!(fetch.next_request(), None);
    assert_eq!(fetch.finish(), Ok(info));
}

#[test]
fn exact_multiple_of_the_piece_length() {
    let info = vec![7; 2 * PIECE];
    let mut fetch = started(&info);
    assert_eq!(
        fetch.on_data(1, info.len() as u32, piece(&info, 1)),
        Ok(true)
    );
    assert_eq!(fetch.finish(), Ok(info));
}

#[test]
fn wrong_bytes_fail_the_hash() {
    let info = info();
    let mut wrong = info.clone();
    wrong[40_000] ^= 1;
    let mut fetch = started(&info);
    fetch.on_data(1, 40960, piece(&wrong, 1)).unwrap();
    assert_eq!(fetch.on_data(2, 40960, piece(&wrong, 2)), Ok(true));
    assert_eq!(
        fetch.finish(),
        Err(MetadataError::HashMismatch {
            expected: InfoHash::of_info_bytes(&info),
            got: InfoHash::of_info_bytes(&wrong),
        })
    );
}

#[test]
fn total_len_over_16_mib_is_too_large_and_allocates_nothing() {
    let mut fetch = MetadataFetch::new(InfoHash([0; 20]));
    fetch.next_request();
    assert_eq!(
        fetch.on_data(0, MAX_METADATA_LEN + 1, &[0; PIECE]),
        Err(MetadataError::TooLarge {
            len: MAX_METADATA_LEN + 1
        })
    );
    assert_eq!(
        fetch.on_data(0, u32::MAX, &[0; PIECE]),
        Err(MetadataError::TooLarge { len: u32::MAX })
    );
    assert_eq!(fetch.progress(), (0, None));
    // Exactly 16 MiB is fine.
    assert_eq!(fetch.on_data(0, MAX_METADATA_LEN, &[0; PIECE]), Ok(false));
    assert_eq!(fetch.progress(), (16384, Some(u64::from(MAX_METADATA_LEN))));
    assert_eq!(
        std::iter::from_fn(|| fetch.next_request()).count(),
        1023,
        "pieces 1..1024"
    );
}

#[test]
fn zero_length_is_refused() {
    let mut fetch = MetadataFetch::new(InfoHash([0; 20]));
    fetch.next_request();
    assert_eq!(fetch.on_data(0, 0, &[]), Err(MetadataError::Empty));
    assert_eq!(fetch.progress(), (0, None));
}

#[test]
fn a_changed_total_len_is_refused() {
    let info = info();
    let mut fetch = started(&info);
    assert_eq!(
        fetch.on_data(1, 50_000, piece(&info, 1)),
        Err(MetadataError::SizeChanged {
            was: 40960,
            now: 50_000
        })
    );
}

#[test]
fn unrequested_pieces_are_refused() {
    let info = info();
    // Nothing requested yet.
    let mut fetch = MetadataFetch::new(InfoHash::of_info_bytes(&info));
    assert_eq!(
        fetch.on_data(0, 40960, piece(&info, 0)),
        Err(MetadataError::UnexpectedPiece { piece: 0 })
    );
    // Size unknown: only piece 0 is expected.
    assert_eq!(fetch.next_request(), Some(0));
    assert_eq!(
        fetch.on_data(1, 40960, piece(&info, 1)),
        Err(MetadataError::UnexpectedPiece { piece: 1 })
    );
    // Size known but piece 2 not handed out yet; piece 3 does not exist.
    fetch.on_data(0, 40960, piece(&info, 0)).unwrap();
    assert_eq!(fetch.next_request(), Some(1));
    assert_eq!(
        fetch.on_data(2, 40960, piece(&info, 2)),
        Err(MetadataError::UnexpectedPiece { piece: 2 })
    );
    assert_eq!(
        fetch.on_data(3, 40960, &[]),
        Err(MetadataError::UnexpectedPiece { piece: 3 })
    );
    assert_eq!(
        fetch.on_data(u32::MAX, 40960, &[]),
        Err(MetadataError::UnexpectedPiece { piece: u32::MAX })
    );
}

#[test]
fn a_duplicate_piece_is_refused() {
    let info = info();
    let mut fetch = started(&info);
    assert_eq!(
        fetch.on_data(0, 40960, piece(&info, 0)),
        Err(MetadataError::DuplicatePiece { piece: 0 })
    );
    fetch.on_data(1, 40960, piece(&info, 1)).unwrap();
    assert_eq!(
        fetch.on_data(1, 40960, piece(&info, 1)),
        Err(MetadataError::DuplicatePiece { piece: 1 })
    );
}

#[test]
fn wrong_piece_lengths_are_refused() {
    let info = info();
    let mut fetch = MetadataFetch::new(InfoHash::of_info_bytes(&info));
    fetch.next_request();
    // Short first piece, before the size is known: refused, and nothing allocated.
    assert_eq!(
        fetch.on_data(0, 40960, &info[..100]),
        Err(MetadataError::WrongLength {
            piece: 0,
            expected: 16384,
            got: 100
        })
    );
    assert_eq!(fetch.progress(), (0, None));
    fetch.on_data(0, 40960, piece(&info, 0)).unwrap();
    while fetch.next_request().is_some() {}
    // The last piece must be exactly the remainder: not a whole piece, not one byte short.
    assert_eq!(
        fetch.on_data(2, 40960, &info[..PIECE]),
        Err(MetadataError::WrongLength {
            piece: 2,
            expected: 8192,
            got: 16384
        })
    );
    assert_eq!(
        fetch.on_data(2, 40960, &info[..8191]),
        Err(MetadataError::WrongLength {
            piece: 2,
            expected: 8192,
            got: 8191
        })
    );
    // A middle piece one byte too long.
    assert_eq!(
        fetch.on_data(1, 40960, &info[..PIECE + 1]),
        Err(MetadataError::WrongLength {
            piece: 1,
            expected: 16384,
            got: 16385
        })
    );
}

#[test]
fn finishing_early_is_an_error() {
    let info = info();
    assert_eq!(
        MetadataFetch::new(InfoHash::of_info_bytes(&info)).finish(),
        Err(MetadataError::SizeUnknown)
    );
    let fetch = started(&info);
    assert_eq!(
        fetch.finish(),
        Err(MetadataError::Incomplete {
            received: 1,
            num_pieces: 3
        })
    );
}

#[test]
fn reject_is_an_error() {
    let mut fetch = MetadataFetch::new(InfoHash([1; 20]));
    fetch.next_request();
    let err = fetch.on_reject(0);
    assert_eq!(err, MetadataError::Rejected { piece: 0 });
    assert!(
        err.to_string().contains("rejected metadata piece 0"),
        "{err}"
    );
}

#[test]
fn errors_read_as_sentences() {
    let hash = InfoHash([0xab; 20]);
    let err = MetadataError::HashMismatch {
        expected: hash,
        got: InfoHash([0; 20]),
    };
    assert_eq!(
        err.to_string(),
        format!(
            "metadata from peer hashes to {}, not the info-hash {}",
            "0".repeat(40),
            "ab".repeat(20)
        )
    );
    assert_eq!(
        MetadataError::TooLarge { len: 20_000_000 }.to_string(),
        "peer announced metadata of 20000000 bytes, over the 16777216-byte limit"
    );
}

/// Both halves together: a server answering with shoal-wire's `metadata_reply`, through the
/// codec, to a fetcher pipelining its requests.
#[test]
fn fetches_from_a_server_through_the_codec() {
    let info = Bytes::from(info());
    let hash = InfoHash::of_info_bytes(&info);
    let mut fetch = MetadataFetch::new(hash);
    let mut wire = BytesMut::new();
    let mut done = false;
    while !done {
        let mut asked = Vec::new();
        while let Some(piece) = fetch.next_request() {
            asked.push(piece);
        }
        assert!(!asked.is_empty());
        for piece in asked.into_iter().rev() {
            let request = MetadataMessage::Request {
                info_hash: hash,
                piece,
            };
            encode_metadata(&request, &mut wire).unwrap();
            let Some(MetadataMessage::Request { piece, .. }) = decode_metadata(&mut wire).unwrap()
            else {
                panic!("not a request");
            };
            encode_metadata(&metadata_reply(&info, piece), &mut wire).unwrap();
            match decode_metadata(&mut wire).unwrap() {
                Some(MetadataMessage::Data {
                    piece,
                    total_len,
                    data,
                }) => done = fetch.on_data(piece, total_len, &data).unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(fetch.finish().unwrap(), info);
}

proptest! {
    /// Whatever a peer sends, the fetcher answers without panicking, and its progress never
    /// claims more than the size it accepted.
    #[test]
    fn arbitrary_data_never_panics(
        answers in proptest::collection::vec(
            (0u32..8, prop_oneof![Just(40960u32), 1u32..100_000, any::<u32>()], 0usize..20_000),
            1..20,
        ),
    ) {
        let mut fetch = MetadataFetch::new(InfoHash([0; 20]));
        for (piece, total_len, len) in answers {
            while fetch.next_request().is_some() {}
            let _ = fetch.on_data(piece, total_len, &vec![0; len]);
            let (have, total) = fetch.progress();
            if let Some(total) = total {
                prop_assert!(have <= total && total <= u64::from(MAX_METADATA_LEN));
            } else {
                prop_assert_eq!(have, 0);
            }
        }
        let _ = fetch.finish();
    }
}
