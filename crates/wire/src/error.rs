//! The one error type of shoal-wire: a frame that cannot be decoded or encoded, or a message
//! that breaks the protocol's rules for this torrent.

use shoal_metainfo::InfoHash;

use crate::message::MessageKind;

/// Why a frame or a message was refused. Every variant carries the facts a log line or a user
/// needs; any of them received from a peer is a reason to close that stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix announces (or an outgoing message would need) more than the
    /// protocol's frame limit `max` ([`crate::MAX_FRAME_LEN`], [`crate::PEX_MAX_FRAME_LEN`] or
    /// [`crate::METADATA_MAX_FRAME_LEN`]) in payload bytes. Reported on the 4-byte prefix alone, before the
    /// frame arrives. For an outgoing Piece or bitfield too big to even copy, `len` is the size
    /// of that data alone.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },

    /// The payload is not a message of this protocol (unknown tag, truncated field, bad varint).
    #[error("undecodable {len}-byte frame starting with {first_byte:#04x}: {detail}")]
    Malformed {
        len: usize,
        first_byte: u8,
        detail: String,
    },

    /// A message decoded but did not use the whole frame.
    #[error("{kind} frame of {len} bytes has {extra} trailing bytes")]
    TrailingBytes {
        kind: MessageKind,
        len: usize,
        extra: usize,
    },

    /// A bitfield's byte count does not match the piece count it announces.
    #[error("bitfield of {pieces} pieces needs {expected} bytes, but the frame carries {got}")]
    BitfieldBytes {
        pieces: u32,
        expected: u64,
        got: usize,
    },

    /// Serialising an outgoing message failed (not expected with shoal's plain types).
    #[error("could not encode {kind}: {detail}")]
    Encode { kind: MessageKind, detail: String },

    /// The peer's handshake names another protocol version.
    #[error("peer speaks piece protocol version {theirs}, this node speaks version {ours}")]
    UnsupportedVersion { theirs: u16, ours: u16 },

    /// The peer's handshake is for a torrent this stream does not serve.
    #[error("handshake for unknown torrent {theirs}: this stream serves {ours}")]
    UnknownInfoHash { theirs: InfoHash, ours: InfoHash },

    /// A piece index past the last piece.
    #[error("{kind} for piece {piece}, but the torrent has {num_pieces} pieces (0..{num_pieces})")]
    PieceOutOfRange {
        kind: MessageKind,
        piece: u32,
        num_pieces: u32,
    },

    /// A block longer than the limit for its direction ([`crate::MAX_REQUEST_LEN_ACCEPTED`]
    /// for what we receive, [`crate::MAX_REQUEST_LEN_SENT`] for requests we send).
    #[error(
        "{kind} for piece {piece} offset {offset} length {length} exceeds the {limit}-byte limit"
    )]
    LengthOverLimit {
        kind: MessageKind,
        piece: u32,
        offset: u32,
        length: u64,
        limit: u32,
    },

    /// A block of zero bytes.
    #[error("{kind} for piece {piece} offset {offset} has length 0")]
    EmptyBlock {
        kind: MessageKind,
        piece: u32,
        offset: u32,
    },

    /// A block that starts or ends past the end of its piece.
    #[error(
        "{kind} for piece {piece} offset {offset} length {length} ends past the piece's {piece_size} bytes"
    )]
    BlockOutsidePiece {
        kind: MessageKind,
        piece: u32,
        offset: u32,
        length: u64,
        piece_size: u32,
    },

    /// A handshake bitfield over another number of pieces than the torrent has.
    #[error("bitfield covers {len} pieces, but the torrent has {num_pieces}")]
    BitfieldLength { len: u32, num_pieces: u32 },

    /// A handshake bitfield with bits set past the last piece.
    #[error("bitfield of {len} pieces has bits set past the last piece")]
    BitfieldSpareBits { len: u32 },

    /// A `/shoal/pex/1` or `/shoal/metadata/1` message decoded but did not use the whole frame.
    #[error("{protocol} frame of {len} bytes has {extra} trailing bytes")]
    ProtocolTrailingBytes {
        protocol: &'static str,
        len: usize,
        extra: usize,
    },

    /// Serialising an outgoing `/shoal/pex/1` or `/shoal/metadata/1` message failed (not
    /// expected with shoal's plain types).
    #[error("could not encode a {protocol} message: {detail}")]
    ProtocolEncode {
        protocol: &'static str,
        detail: String,
    },

    /// A PEX message announcing more added peers than [`crate::PEX_MAX_ADDED`].
    #[error("PEX message adds {count} peers, more than the limit of {max}")]
    PexTooManyAdded { count: usize, max: usize },

    /// A PEX message announcing more dropped peers than [`crate::PEX_MAX_DROPPED`].
    #[error("PEX message drops {count} peers, more than the limit of {max}")]
    PexTooManyDropped { count: usize, max: usize },

    /// An added peer (at position `index` of the list) with more addresses than
    /// [`crate::PEX_MAX_ADDRS_PER_PEER`].
    #[error("PEX added peer #{index} has {count} addresses, more than the limit of {max}")]
    PexTooManyAddrs {
        index: usize,
        count: usize,
        max: usize,
    },

    /// A peer id (added or dropped) that is empty or longer than [`crate::PEX_MAX_PEER_ID_LEN`].
    #[error("PEX peer id of {len} bytes: must be 1 to {max} bytes")]
    PexPeerIdLen { len: usize, max: usize },

    /// An address that is empty or longer than [`crate::PEX_MAX_ADDR_LEN`].
    #[error("PEX address of {len} bytes: must be 1 to {max} bytes")]
    PexAddrLen { len: usize, max: usize },

    /// A metadata Data message whose `total_len` is 0 or over [`crate::MAX_METADATA_LEN`].
    #[error("metadata total length {total_len} bytes: must be 1 to {max} bytes")]
    MetadataTotalLen { total_len: u32, max: u32 },

    /// A metadata Data message carrying more than [`crate::METADATA_PIECE_LEN`] bytes.
    #[error("metadata piece {piece} carries {len} bytes, more than the {max}-byte piece size")]
    MetadataPieceTooLong { piece: u32, len: usize, max: u32 },
}
