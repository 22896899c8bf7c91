//! What goes into the engine ([`Event`]) and what comes out ([`Action`]).

use shoal_wire::{Block, BlockRef, Message};

/// A peer of one torrent, named by the caller (the node maps libp2p `PeerId`s to keys). The
/// engine never interprets it; keys order peers deterministically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u64);

/// An input to [`crate::Torrent::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A piece-exchange stream is open and our handshake is on it (the node sent it, with
    /// [`crate::Torrent::handshake_have`]). The engine sends nothing to the peer until the
    /// peer's own [`Message::Handshake`] arrives as a [`Event::Message`]. A key that is already
    /// connected starts over.
    PeerConnected { peer: PeerKey },
    /// The stream closed. Unknown keys are ignored.
    PeerDisconnected { peer: PeerKey },
    /// A message from the peer, already validated against the torrent's geometry.
    Message { peer: PeerKey, message: Message },
    /// Storage wrote (or failed to write) a block handed over by [`Action::WriteBlock`]. A failed
    /// write is requested again.
    BlockWritten { block: BlockRef, ok: bool },
    /// Storage checked a piece asked for by [`Action::VerifyPiece`].
    PieceVerified { piece: u32, ok: bool },
    /// Storage could not check the piece (it could not read it back: an error of ours, not the
    /// peers'). The piece is fetched again and nobody is blamed for it.
    PieceUnverifiable { piece: u32 },
    /// The Piece message answering an [`Action::ServeRequest`] was written to the stream.
    /// Every ServeRequest is answered by exactly one Uploaded or [`Event::ServeFailed`].
    Uploaded { peer: PeerKey, block: BlockRef },
    /// Storage could not read a block for an [`Action::ServeRequest`]; the engine rejects it.
    ServeFailed { peer: PeerKey, block: BlockRef },
}

/// An output of [`crate::Torrent::poll_action`], in the order the engine decided them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a message on the peer's stream.
    Send { peer: PeerKey, message: Message },
    /// Write a received block to storage, then report [`Event::BlockWritten`].
    WriteBlock { peer: PeerKey, block: Block },
    /// Every block of the piece is written: hash it, then report [`Event::PieceVerified`] (or
    /// [`Event::PieceUnverifiable`]).
    VerifyPiece { piece: u32 },
    /// Read the block from storage and send it as a Piece message, then report
    /// [`Event::Uploaded`] (or [`Event::ServeFailed`]).
    ServeRequest { peer: PeerKey, block: BlockRef },
    /// Close the peer's stream. The engine has already forgotten the peer. A peer dropped with
    /// [`DisconnectReason::BothComplete`] did nothing wrong.
    Disconnect {
        peer: PeerKey,
        reason: DisconnectReason,
    },
    /// Close the peer's stream and refuse its identity from now on. The engine has already
    /// forgotten the peer.
    Ban { peer: PeerKey, reason: BanReason },
    /// Every piece is verified. Emitted once; the engine keeps seeding afterwards.
    Completed,
}

/// Why the engine dropped a peer: a protocol violation, or a connection with nothing left to
/// carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// We and the peer both have every piece: neither will ever want anything from the other,
    /// and the connection holds a slot a downloader could use.
    #[error("both sides have every piece")]
    BothComplete,
    #[error("{kind} message before the peer's handshake")]
    MessageBeforeHandshake { kind: shoal_wire::MessageKind },
    #[error("second handshake")]
    SecondHandshake,
    #[error("bitfield over {len} pieces, torrent has {num_pieces}")]
    BitfieldLength { len: u32, num_pieces: u32 },
    #[error("have for piece {piece}, torrent has {num_pieces} pieces")]
    HaveOutOfRange { piece: u32, num_pieces: u32 },
    #[error("{count} blocks we never requested")]
    UnrequestedBlocks { count: u32 },
    #[error("{count} requests while choked")]
    RequestsWhileChoked { count: u32 },
}

/// Why the engine banned a peer: it sent data that failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanReason {
    #[error("sent blocks of {pieces} pieces that failed verification")]
    CorruptPieces { pieces: u32 },
    #[error("sole sender of piece {piece}, which failed verification")]
    SoleSenderOfCorruptPiece { piece: u32 },
}
