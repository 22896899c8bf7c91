use bytes::Bytes;
use shoal_metainfo::{InfoHash, PieceGeometry};

use super::*;
use crate::bitfield::Bitfield;
use crate::message::{Block, BlockRef, MessageKind::Have};

const OURS: InfoHash = InfoHash([1; 20]);
const PIECE_LEN: u32 = 256 * 1024;
const LAST_PIECE_LEN: u32 = 100_000;

/// 4 pieces: three of 256 KiB and a last one of 100,000 bytes.
fn validator() -> Validator {
    let total = 3 * u64::from(PIECE_LEN) + u64::from(LAST_PIECE_LEN);
    Validator::new(OURS, PieceGeometry::new(PIECE_LEN.into(), total).unwrap())
}

fn r(piece: u32, offset: u32, length: u32) -> BlockRef {
    BlockRef {
        piece,
        offset,
        length,
    }
}

fn piece(piece: u32, offset: u32, length: usize) -> Message {
    Message::Piece(Block {
        piece,
        offset,
        data: Bytes::from(vec![0; length]),
    })
}

fn handshake(version: u16, info_hash: InfoHash, have: HaveState) -> Message {
    Message::Handshake(Handshake {
        version,
        info_hash,
        have,
    })
}

/// The four block-naming messages, built from (piece, offset, length).
fn block_messages(p: u32, o: u32, l: u32) -> [Message; 4] {
    [
        Message::Request(r(p, o, l)),
        Message::Cancel(r(p, o, l)),
        Message::Reject(r(p, o, l)),
        piece(p, o, l as usize),
    ]
}

#[test]
fn control_messages_always_pass() {
    let v = validator();
    for m in [
        Message::KeepAlive,
        Message::Interested,
        Message::NotInterested,
        Message::Choke,
        Message::Unchoke,
    ] {
        assert_eq!(v.check_incoming(&m), Ok(()));
        assert_eq!(v.check_outgoing(&m), Ok(()));
    }
}

#[test]
fn have_piece_index_in_range() {
    let v = validator();
    assert_eq!(v.check_incoming(&Message::Have(3)), Ok(()));
    for p in [4, u32::MAX] {
        assert_eq!(
            v.check_incoming(&Message::Have(p)),
            Err(WireError::PieceOutOfRange {
                kind: Have,
                piece: p,
                num_pieces: 4
            })
        );
    }
}

#[test]
fn block_piece_index_in_range() {
    let v = validator();
    for m in block_messages(3, 0, 16384) {
        assert_eq!(v.check_incoming(&m), Ok(()), "{m:?}");
    }
    for m in block_messages(4, 0, 16384) {
        assert_eq!(
            v.check_incoming(&m),
            Err(WireError::PieceOutOfRange {
                kind: m.kind(),
                piece: 4,
                num_pieces: 4
            })
        );
    }
}

#[test]
fn block_length_limit_accepted() {
    let v = validator();
    for m in block_messages(0, 0, MAX_REQUEST_LEN_ACCEPTED) {
        assert_eq!(v.check_incoming(&m), Ok(()), "{m:?}");
    }
    for m in block_messages(0, 0, MAX_REQUEST_LEN_ACCEPTED + 1) {
        assert_eq!(
            v.check_incoming(&m),
            Err(WireError::LengthOverLimit {
                kind: m.kind(),
                piece: 0,
                offset: 0,
                length: u64::from(MAX_REQUEST_LEN_ACCEPTED) + 1,
                limit: MAX_REQUEST_LEN_ACCEPTED
            })
        );
    }
}

#[test]
fn requests_we_send_are_one_block_at_most() {
    let v = validator();
    for m in [
        Message::Request(r(0, 0, MAX_REQUEST_LEN_SENT)),
        Message::Cancel(r(0, 0, MAX_REQUEST_LEN_SENT)),
        // Rejects and Pieces answer the peer's requests, which may be larger.
        Message::Reject(r(0, 0, MAX_REQUEST_LEN_ACCEPTED)),
        piece(0, 0, MAX_REQUEST_LEN_ACCEPTED as usize),
    ] {
        assert_eq!(v.check_outgoing(&m), Ok(()), "{m:?}");
    }
    for m in [
        Message::Request(r(0, 0, MAX_REQUEST_LEN_SENT + 1)),
        Message::Cancel(r(0, 0, MAX_REQUEST_LEN_SENT + 1)),
    ] {
        assert_eq!(
            v.check_outgoing(&m),
            Err(WireError::LengthOverLimit {
                kind: m.kind(),
                piece: 0,
                offset: 0,
                length: u64::from(MAX_REQUEST_LEN_SENT) + 1,
                limit: MAX_REQUEST_LEN_SENT
            })
        );
    }
    assert!(
        v.check_outgoing(&Message::Reject(r(0, 0, MAX_REQUEST_LEN_ACCEPTED + 1)))
            .is_err()
    );
}

#[test]
fn block_length_zero_is_refused() {
    let v = validator();
    for m in block_messages(1, 16384, 0) {
        assert_eq!(
            v.check_incoming(&m),
            Err(WireError::EmptyBlock {
                kind: m.kind(),
                piece: 1,
                offset: 16384
            })
        );
    }
    for m in block_messages(1, 16384, 1) {
        assert_eq!(v.check_incoming(&m), Ok(()));
    }
}

#[test]
fn block_must_end_inside_its_piece() {
    let v = validator();
    // The last block of a full piece, and of the short last piece.
    let edges = [
        (0, PIECE_LEN - 16384, 16384),
        (3, LAST_PIECE_LEN - 16384, 16384),
        (3, LAST_PIECE_LEN - 1, 1),
    ];
    for (p, o, l) in edges {
        for m in block_messages(p, o, l) {
            assert_eq!(v.check_incoming(&m), Ok(()), "{m:?}");
        }
        // One byte longer, and one byte later.
        for (o, l) in [(o, l + 1), (o + 1, l)] {
            for m in block_messages(p, o, l) {
                let piece_size = if p == 3 { LAST_PIECE_LEN } else { PIECE_LEN };
                assert_eq!(
                    v.check_incoming(&m),
                    Err(WireError::BlockOutsidePiece {
                        kind: m.kind(),
                        piece: p,
                        offset: o,
                        length: l.into(),
                        piece_size
                    })
                );
            }
        }
    }
    // Offsets near u32::MAX do not overflow.
    for m in block_messages(0, u32::MAX, 1) {
        assert!(matches!(
            v.check_incoming(&m),
            Err(WireError::BlockOutsidePiece { .. })
        ));
    }
}

#[test]
fn small_pieces_bound_blocks_before_the_limit() {
    let v = Validator::new(OURS, PieceGeometry::new(32768, 65536).unwrap());
    assert_eq!(v.check_incoming(&Message::Request(r(1, 0, 32768))), Ok(()));
    assert!(matches!(
        v.check_incoming(&Message::Request(r(1, 0, 32769))),
        Err(WireError::BlockOutsidePiece {
            piece_size: 32768,
            ..
        })
    ));
}

#[test]
fn handshake_version_and_info_hash() {
    let v = validator();
    assert_eq!(
        v.check_incoming(&handshake(PROTOCOL_VERSION, OURS, HaveState::None)),
        Ok(())
    );
    for version in [0, PROTOCOL_VERSION + 1] {
        assert_eq!(
            v.check_incoming(&handshake(version, OURS, HaveState::All)),
            Err(WireError::UnsupportedVersion {
                theirs: version,
                ours: PROTOCOL_VERSION
            })
        );
    }
    let mut other = OURS;
    other.0[19] ^= 1;
    let err = v
        .check_incoming(&handshake(PROTOCOL_VERSION, other, HaveState::All))
        .unwrap_err();
    assert_eq!(
        err,
        WireError::UnknownInfoHash {
            theirs: other,
            ours: OURS
        }
    );
    assert_eq!(
        err.to_string(),
        format!("handshake for unknown torrent {other}: this stream serves {OURS}")
    );
}

#[test]
fn handshake_bitfield_has_exactly_the_torrents_pieces() {
    let v = validator();
    let with = |bits| handshake(PROTOCOL_VERSION, OURS, HaveState::Bitfield(bits));
    assert_eq!(v.check_incoming(&with(Bitfield::full(4))), Ok(()));
    assert_eq!(v.check_incoming(&with(Bitfield::new(4))), Ok(()));
    for len in [3, 5, 0, 8] {
        assert_eq!(
            v.check_incoming(&with(Bitfield::new(len))),
            Err(WireError::BitfieldLength { len, num_pieces: 4 })
        );
    }
    // The first spare bit (index 4 of 0..8) set.
    let spare = Bitfield::from_bytes(vec![0b0000_1000], 4).unwrap();
    assert_eq!(
        v.check_incoming(&with(spare)),
        Err(WireError::BitfieldSpareBits { len: 4 })
    );
    assert_eq!(
        v.check_incoming(&with(Bitfield::from_bytes(vec![0b1111_0000], 4).unwrap())),
        Ok(())
    );
}

#[test]
fn errors_read_as_sentences() {
    let v = Validator::new(OURS, PieceGeometry::new(1 << 20, 8 << 20).unwrap());
    let cases = [
        (
            Message::Request(r(7, 0, 200_000)),
            "request for piece 7 offset 0 length 200000 exceeds the 131072-byte limit",
        ),
        (
            Message::Have(8),
            "have for piece 8, but the torrent has 8 pieces (0..8)",
        ),
        (
            Message::Cancel(r(2, 1_048_000, 16384)),
            "cancel for piece 2 offset 1048000 length 16384 ends past the piece's 1048576 bytes",
        ),
        (
            Message::Reject(r(1, 0, 0)),
            "reject for piece 1 offset 0 has length 0",
        ),
        (
            handshake(
                PROTOCOL_VERSION,
                OURS,
                HaveState::Bitfield(Bitfield::new(9)),
            ),
            "bitfield covers 9 pieces, but the torrent has 8",
        ),
        (
            handshake(9, OURS, HaveState::None),
            "peer speaks piece protocol version 9, this node speaks version 1",
        ),
    ];
    for (message, text) in cases {
        assert_eq!(v.check_incoming(&message).unwrap_err().to_string(), text);
    }
}
