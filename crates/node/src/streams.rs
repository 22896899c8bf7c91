//! Opening and accepting `/shoal/pieces/1` streams, and routing each to its torrent by the
//! info-hash in the peer's handshake.
//!
//! The opener writes its handshake first; the acceptor reads it, finds the torrent, and hands
//! the stream over; the torrent answers with its own handshake (it knows its have-state). A
//! stream for an info-hash nobody here serves is closed with a logged reason.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::AsyncReadExt;
use futures::io::{ReadHalf, WriteHalf};
use libp2p::{PeerId, Stream, StreamProtocol};
use shoal_metainfo::InfoHash;
use shoal_wire::{Handshake, Message, PIECES_PROTOCOL};
use tokio::sync::mpsc;
use tracing::debug;

use crate::accept::accept_bounded;
use crate::framed::{FrameReader, FrameWriter, SharedBucket, StreamError};

/// How long a peer has to send its handshake once a stream is open.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const PIECES: StreamProtocol = StreamProtocol::new(PIECES_PROTOCOL);

pub type StreamReader = FrameReader<ReadHalf<Stream>>;
pub type StreamWriter = FrameWriter<WriteHalf<Stream>>;

/// A piece-exchange stream whose handshake has been read, ready for its torrent.
pub struct PeerStream {
    pub peer: PeerId,
    /// The peer's handshake (its have-state).
    pub handshake: Handshake,
    /// Whether we opened the stream (used to settle simultaneous opens).
    pub outbound: bool,
    pub reader: StreamReader,
    pub writer: StreamWriter,
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerStream")
            .field("peer", &self.peer)
            .field("handshake", &self.handshake)
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}

/// Node-wide rate limits, shared by every stream.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub upload: Option<SharedBucket>,
    pub download: Option<SharedBucket>,
}

/// Where a torrent's PEX messages go: the sender and the message.
pub(crate) type PexSink = mpsc::Sender<(PeerId, crate::pex::Received)>;

/// Which torrent gets the streams (and PEX messages) for which info-hash.
#[derive(Debug, Clone, Default)]
pub struct Router {
    torrents: Arc<RwLock<HashMap<InfoHash, mpsc::Sender<PeerStream>>>>,
    pex: Arc<RwLock<HashMap<InfoHash, PexSink>>>,
    /// Info dictionaries served to magnet-link peers.
    metadata: Arc<RwLock<HashMap<InfoHash, bytes::Bytes>>>,
}

impl Router {
    /// Routes streams for `info_hash` to `sink` from now on.
    pub fn register(&self, info_hash: InfoHash, sink: mpsc::Sender<PeerStream>) {
        if let Ok(mut map) = self.torrents.write() {
            map.insert(info_hash, sink);
        }
    }

    pub fn unregister(&self, info_hash: &InfoHash) {
        if let Ok(mut map) = self.torrents.write() {
            map.remove(info_hash);
        }
        if let Ok(mut map) = self.pex.write() {
            map.remove(info_hash);
        }
        if let Ok(mut map) = self.metadata.write() {
            map.remove(info_hash);
        }
    }

    /// Serves `info_bytes` to peers asking for the metadata of `info_hash`. Torrents do this
    /// themselves with their exact info bytes; tests use it to make a peer that lies.
    pub fn register_metadata(&self, info_hash: InfoHash, info_bytes: bytes::Bytes) {
        if let Ok(mut map) = self.metadata.write() {
            map.insert(info_hash, info_bytes);
        }
    }

    pub(crate) fn info_bytes(&self, info_hash: &InfoHash) -> Option<bytes::Bytes> {
        self.metadata.read().ok()?.get(info_hash).cloned()
    }

    /// Routes PEX messages for `info_hash` to `sink` from now on.
    pub(crate) fn register_pex(&self, info_hash: InfoHash, sink: PexSink) {
        if let Ok(mut map) = self.pex.write() {
            map.insert(info_hash, sink);
        }
    }

    pub(crate) fn pex_sink(&self, info_hash: &InfoHash) -> Option<PexSink> {
        self.pex.read().ok()?.get(info_hash).cloned()
    }

    fn sink(&self, info_hash: &InfoHash) -> Option<mpsc::Sender<PeerStream>> {
        self.torrents.read().ok()?.get(info_hash).cloned()
    }
}

fn split(stream: Stream, limits: &Limits) -> (StreamReader, StreamWriter) {
    let (read, write) = stream.split();
    (
        FrameReader::new(read, limits.download.clone()),
        FrameWriter::new(write, limits.upload.clone()),
    )
}

/// Why a stream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("cannot open a stream: {0}")]
    Open(String),
    #[error("the first message was {0}, not a handshake")]
    NotAHandshake(&'static str),
    #[error("the peer closed the stream before its handshake")]
    Closed,
    #[error("the peer answered for info-hash {got}, not {expected}")]
    WrongTorrent { expected: InfoHash, got: InfoHash },
}

async fn read_handshake(reader: &mut StreamReader) -> Result<Handshake, HandshakeError> {
    match reader.next_within(HANDSHAKE_TIMEOUT).await? {
        Some(Message::Handshake(h)) => Ok(h),
        Some(other) => Err(HandshakeError::NotAHandshake(other.kind().as_str())),
        None => Err(HandshakeError::Closed),
    }
}

/// Opens a piece-exchange stream to `peer` (connecting if needed), sends `ours`, and reads the
/// peer's handshake, which must name the same torrent.
pub async fn open(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    ours: Handshake,
    limits: &Limits,
) -> Result<PeerStream, HandshakeError> {
    let stream = control
        .open_stream(peer, PIECES)
        .await
        .map_err(|e| HandshakeError::Open(e.to_string()))?;
    let (mut reader, mut writer) = split(stream, limits);
    let expected = ours.info_hash;
    writer.push(&Message::Handshake(ours)).await?;
    writer.flush().await?;
    let handshake = read_handshake(&mut reader).await?;
    if handshake.info_hash != expected {
        return Err(HandshakeError::WrongTorrent {
            expected,
            got: handshake.info_hash,
        });
    }
    Ok(PeerStream {
        peer,
        handshake,
        outbound: true,
        reader,
        writer,
    })
}

/// Piece-exchange streams one peer may have waiting for their handshake at once, across all
/// torrents (a node restarting with many torrents in common opens one each at once); more are
/// refused. A handshake may be 256 KiB (the bitfield of 2^21 pieces), so without this bound a
/// peer opening hundreds of streams and trickling their first frames could hold that much per
/// stream for [`HANDSHAKE_TIMEOUT`]. A stream leaves the count once routed to its torrent.
const MAX_HANDSHAKES_PER_PEER: usize = 32;

/// Accepts piece-exchange streams until the node stops, routing each by its handshake.
pub async fn accept_loop(control: libp2p_stream::Control, router: Router, limits: Limits) {
    accept_bounded(control, PIECES, MAX_HANDSHAKES_PER_PEER, |peer, stream| {
        let (router, limits) = (router.clone(), limits.clone());
        async move {
            if let Err(reason) = route(peer, stream, &router, &limits).await {
                debug!(%peer, %reason, "closed an incoming piece-exchange stream");
            }
        }
    })
    .await;
}

async fn route(
    peer: PeerId,
    stream: Stream,
    router: &Router,
    limits: &Limits,
) -> Result<(), String> {
    let (mut reader, writer) = split(stream, limits);
    let handshake = read_handshake(&mut reader)
        .await
        .map_err(|e| e.to_string())?;
    let Some(sink) = router.sink(&handshake.info_hash) else {
        let _ = writer.close().await;
        return Err(format!(
            "handshake for unknown info-hash {}",
            handshake.info_hash
        ));
    };
    let stream = PeerStream {
        peer,
        handshake,
        outbound: false,
        reader,
        writer,
    };
    sink.send(stream)
        .await
        .map_err(|_| "the torrent stopped".to_owned())
}
