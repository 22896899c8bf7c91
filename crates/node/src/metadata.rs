//! The info-dictionary exchange on `/shoal/metadata/1` (BEP 9 semantics): serving the info
//! bytes of the torrents we have, and fetching them from one peer for a magnet link.
//!
//! The fetcher opens a stream, keeps a few 16 KiB requests in flight, and assembles the answer
//! with shoal-swarm's [`MetadataFetch`], which caps the size and checks the SHA-1 against the
//! info-hash. Which peers to ask, and what to do with a liar or a peer that breaks the
//! protocol ([`Blame`]), is [`crate::magnet`]'s business. Serving is bounded per peer: a few
//! streams at once, each with a cap on its requests and its life.

use std::time::{Duration, Instant};

use futures::AsyncReadExt;
use libp2p::{PeerId, StreamProtocol};
use shoal_metainfo::InfoHash;
use shoal_swarm::{MetadataError, MetadataFetch};
use shoal_wire::{
    MAX_METADATA_LEN, METADATA_PIECE_LEN, METADATA_PROTOCOL, MetadataMessage, decode_metadata,
    encode_metadata, metadata_reply,
};
use tracing::debug;

use crate::accept::accept_bounded;
use crate::framed::{FrameReader, FrameWriter, StreamError};
use crate::streams::Router;

pub(crate) const METADATA: StreamProtocol = StreamProtocol::new(METADATA_PROTOCOL);

/// How long a peer has to answer a request (fetching) or send the next one (serving).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests kept in flight while fetching.
const PIPELINE: usize = 8;

/// Why fetching the metadata from one peer failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot open a metadata stream: {0}")]
    Open(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("the peer closed the stream before the metadata was complete")]
    Closed,
    #[error("the peer sent a request where an answer was due")]
    Unexpected,
    #[error("the peer did not send the whole metadata within {0:?}")]
    TooSlow(Duration),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// What a failed fetch says about the peer that served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    /// Its bytes do not hash to the info-hash: it lies. Ban it.
    Lie,
    /// It broke the protocol (a frame that does not decode or is over its limit, a request
    /// where an answer was due, a piece not asked for, twice, of the wrong size, or a size
    /// that changes): do not ask it again.
    Violation,
    /// It does not have the metadata (yet), or the stream failed: it may be asked again.
    Transient,
}

impl FetchError {
    /// The peer sent bytes that do not hash to the info-hash: it lies, ban it.
    pub fn is_lie(&self) -> bool {
        self.blame() == Blame::Lie
    }

    pub(crate) fn blame(&self) -> Blame {
        match self {
            FetchError::Metadata(MetadataError::HashMismatch { .. }) => Blame::Lie,
            FetchError::Stream(StreamError::Protocol(_)) | FetchError::Unexpected => {
                Blame::Violation
            }
            FetchError::Metadata(
                MetadataError::TooLarge { .. }
                | MetadataError::Empty
                | MetadataError::SizeChanged { .. }
                | MetadataError::UnexpectedPiece { .. }
                | MetadataError::DuplicatePiece { .. }
                | MetadataError::WrongLength { .. },
            ) => Blame::Violation,
            FetchError::Metadata(
                MetadataError::Rejected { .. }
                | MetadataError::Incomplete { .. }
                | MetadataError::SizeUnknown,
            )
            | FetchError::Open(_)
            | FetchError::Stream(_)
            | FetchError::Closed
            | FetchError::TooSlow(_) => Blame::Transient,
        }
    }
}

/// Fetches the info dictionary of `info_hash` from `peer`; the bytes are verified. A peer that
/// answers each request just in time but takes longer than `within` for the whole is given up
/// on, so it cannot hold one of the few fetches a magnet link runs at once.
pub(crate) async fn fetch(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    info_hash: InfoHash,
    within: Duration,
) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(within, fetch_from(control, peer, info_hash))
        .await
        .map_err(|_| FetchError::TooSlow(within))?
}

async fn fetch_from(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    info_hash: InfoHash,
) -> Result<Vec<u8>, FetchError> {
    let stream = control
        .open_stream(peer, METADATA)
        .await
        .map_err(|e| FetchError::Open(e.to_string()))?;
    let (read, write) = stream.split();
    let mut reader = FrameReader::new(read, None);
    let mut writer = FrameWriter::new(write, None);
    let mut assembly = MetadataFetch::new(info_hash);
    let mut in_flight = 0;
    loop {
        while in_flight < PIPELINE {
            let Some(piece) = assembly.next_request() else {
                break;
            };
            let request = MetadataMessage::Request { info_hash, piece };
            writer
                .push_with(|buf| encode_metadata(&request, buf))
                .await?;
            in_flight += 1;
        }
        writer.flush().await?;
        let answer = reader
            .next_as_within(decode_metadata, ANSWER_TIMEOUT)
            .await?
            .ok_or(FetchError::Closed)?;
        match answer {
            MetadataMessage::Data {
                piece,
                total_len,
                data,
            } => {
                in_flight -= 1;
                if assembly.on_data(piece, total_len, &data)? {
                    let _ = writer.close().await;
                    return Ok(assembly.finish()?);
                }
            }
            MetadataMessage::Reject { piece } => return Err(assembly.on_reject(piece).into()),
            MetadataMessage::Request { .. } => return Err(FetchError::Unexpected),
        }
    }
}

/// Metadata streams one peer may have open to us at once (a fetcher uses one).
const MAX_STREAMS_PER_PEER: usize = 2;
/// Requests one stream may carry: every piece of the largest info dictionary, once.
const MAX_REQUESTS_PER_STREAM: u32 = MAX_METADATA_LEN / METADATA_PIECE_LEN;
/// How long one stream may last, however busy (16 MiB at about 140 KB/s).
pub(crate) const MAX_STREAM_LIFE: Duration = Duration::from_secs(120);

/// Answers metadata requests until the node stops.
pub(crate) async fn accept_loop(control: libp2p_stream::Control, router: Router) {
    accept_bounded(control, METADATA, MAX_STREAMS_PER_PEER, |peer, stream| {
        let router = router.clone();
        async move {
            if let Err(e) = serve(stream, &router).await {
                debug!(%peer, error = %e, "metadata stream ended");
            }
        }
    })
    .await;
}

/// Answers the requests of one stream, at most [`MAX_REQUESTS_PER_STREAM`] of them and for at
/// most [`MAX_STREAM_LIFE`]; then closes it.
async fn serve(stream: libp2p::Stream, router: &Router) -> Result<(), StreamError> {
    let (read, write) = stream.split();
    let mut reader = FrameReader::new(read, None);
    let mut writer = FrameWriter::new(write, None);
    let deadline = Instant::now() + MAX_STREAM_LIFE;
    let mut served = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || served == MAX_REQUESTS_PER_STREAM {
            debug!(
                served,
                "closing a metadata stream that used up its requests or time"
            );
            break;
        }
        let next = reader
            .next_as_within(decode_metadata, left.min(ANSWER_TIMEOUT))
            .await?;
        let Some(MetadataMessage::Request { info_hash, piece }) = next else {
            break;
        };
        let reply = match router.info_bytes(&info_hash) {
            Some(bytes) => metadata_reply(&bytes, piece),
            None => MetadataMessage::Reject { piece },
        };
        // A fetcher that stops reading cannot keep the stream past its life either.
        writer.set_stall_limit(left);
        writer.push_with(|buf| encode_metadata(&reply, buf)).await?;
        writer.flush().await?;
        served += 1;
    }
    writer.close().await
}
