//! The info-dictionary exchange on `/shoal/metadata/1` (BEP 9 semantics): serving the info
//! bytes of the torrents we have, and fetching them from one peer for a magnet link.
//!
//! The fetcher opens a stream, keeps a few 16 KiB requests in flight, and assembles the answer
//! with shoal-swarm's [`MetadataFetch`], which caps the size and checks the SHA-1 against the
//! info-hash. Which peers to ask, and what to do with a liar, is [`crate::magnet`]'s business.

use std::time::Duration;

use futures::{AsyncReadExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use shoal_metainfo::InfoHash;
use shoal_swarm::{MetadataError, MetadataFetch};
use shoal_wire::{
    METADATA_PROTOCOL, MetadataMessage, decode_metadata, encode_metadata, metadata_reply,
};
use tracing::debug;

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
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

impl FetchError {
    /// The peer sent bytes that do not hash to the info-hash: it lies, ban it.
    pub fn is_lie(&self) -> bool {
        matches!(
            self,
            FetchError::Metadata(MetadataError::HashMismatch { .. })
        )
    }
}

/// Fetches the info dictionary of `info_hash` from `peer`; the bytes are verified.
pub(crate) async fn fetch(
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

/// Answers metadata requests until the node stops.
pub(crate) async fn accept_loop(mut control: libp2p_stream::Control, router: Router) {
    let mut incoming = match control.accept(METADATA) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::warn!(error = %e, "cannot accept metadata streams");
            return;
        }
    };
    while let Some((peer, stream)) = incoming.next().await {
        let router = router.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, &router).await {
                debug!(%peer, error = %e, "metadata stream ended");
            }
        });
    }
}

async fn serve(stream: libp2p::Stream, router: &Router) -> Result<(), StreamError> {
    let (read, write) = stream.split();
    let mut reader = FrameReader::new(read, None);
    let mut writer = FrameWriter::new(write, None);
    while let Some(message) = reader
        .next_as_within(decode_metadata, ANSWER_TIMEOUT)
        .await?
    {
        let MetadataMessage::Request { info_hash, piece } = message else {
            break;
        };
        let reply = match router.info_bytes(&info_hash) {
            Some(bytes) => metadata_reply(&bytes, piece),
            None => MetadataMessage::Reject { piece },
        };
        writer.push_with(|buf| encode_metadata(&reply, buf)).await?;
        writer.flush().await?;
    }
    writer.close().await
}
