//! Messages over a byte stream: framed reads that never buffer more than one frame limit, and
//! batched writes (many messages, one `write_all`), with optional rate limits on both sides.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use shoal_wire::{Message, WireError, decode_frame, encode};

use crate::rate::TokenBucket;

/// Most bytes asked of the stream per read.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes asked per read at first; doubled (up to [`READ_CHUNK`]) whenever a read fills it,
/// so a stream that carries requests keeps a small buffer and one that carries pieces soon
/// reads in large chunks.
const FIRST_READ_CHUNK: usize = 4 * 1024;
/// A batch is written once it holds this many bytes.
pub(crate) const WRITE_BATCH: usize = 256 * 1024;

/// Why a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("stream i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer broke the protocol: {0}")]
    Protocol(#[from] WireError),
    #[error("peer closed the stream in the middle of a frame")]
    Truncated,
    #[error("peer sent nothing for {0:?}")]
    Timeout(Duration),
    #[error("peer did not take what we sent within {0:?}")]
    Stalled(Duration),
}

/// A token bucket shared by all streams of a node in one direction.
pub type SharedBucket = Arc<Mutex<TokenBucket>>;

async fn throttle(bucket: Option<&SharedBucket>, bytes: usize) {
    let Some(bucket) = bucket else { return };
    let wait = match bucket.lock() {
        Ok(mut b) => b.take(bytes as u64, Instant::now()),
        // A poisoned lock only means another stream panicked mid-update; the bucket's numbers
        // are still usable.
        Err(poisoned) => poisoned.into_inner().take(bytes as u64, Instant::now()),
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// Reads messages from one stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    /// Where reads land before they are appended to `buf`: zeroed once (and when it grows), so
    /// that a read costs a copy of what arrived rather than zeroing a whole chunk of `buf`
    /// first (most reads of requests are a few hundred bytes).
    scratch: Vec<u8>,
    limit: Option<SharedBucket>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, limit: Option<SharedBucket>) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            scratch: vec![0; FIRST_READ_CHUNK],
            limit,
        }
    }

    /// The next message; `Ok(None)` when the peer closed the stream between frames.
    pub async fn next(&mut self) -> Result<Option<Message>, StreamError> {
        self.next_as(decode_frame).await
    }

    /// The next message of another protocol, taken off the buffer by `decode` (one of
    /// shoal-wire's frame decoders, which bound the frame before it is buffered).
    pub async fn next_as<T>(
        &mut self,
        decode: impl Fn(&mut BytesMut) -> Result<Option<T>, WireError>,
    ) -> Result<Option<T>, StreamError> {
        loop {
            if let Some(message) = decode(&mut self.buf)? {
                return Ok(Some(message));
            }
            let n = self.inner.read(&mut self.scratch).await?;
            self.buf.extend_from_slice(&self.scratch[..n]);
            if n == self.scratch.len() && n < READ_CHUNK {
                self.scratch.resize(2 * n, 0);
            }
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(StreamError::Truncated)
                };
            }
            throttle(self.limit.as_ref(), n).await;
        }
    }

    /// The next message, or an error if none arrives within `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Result<Option<Message>, StreamError> {
        self.next_as_within(decode_frame, timeout).await
    }

    /// [`Self::next_as`], or an error if nothing arrives within `timeout`.
    pub async fn next_as_within<T>(
        &mut self,
        decode: impl Fn(&mut BytesMut) -> Result<Option<T>, WireError>,
        timeout: Duration,
    ) -> Result<Option<T>, StreamError> {
        tokio::time::timeout(timeout, self.next_as(decode))
            .await
            .map_err(|_| StreamError::Timeout(timeout))?
    }
}

/// Writes messages to one stream, many per system call.
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    buf: BytesMut,
    limit: Option<SharedBucket>,
    /// How long the stream may take to accept one batch (after the upload limit's own wait).
    stall_limit: Option<Duration>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W, limit: Option<SharedBucket>) -> Self {
        Self {
            inner,
            buf: BytesMut::with_capacity(WRITE_BATCH),
            limit,
            stall_limit: None,
        }
    }

    /// Fails a write with [`StreamError::Stalled`] once the stream has taken nothing of a
    /// batch for `limit` (a peer that does not read): the upload limit's own wait does not
    /// count.
    pub fn set_stall_limit(&mut self, limit: Duration) {
        self.stall_limit = Some(limit);
    }

    /// Queues a message; writes the batch out once it is large.
    pub async fn push(&mut self, message: &Message) -> Result<(), StreamError> {
        self.push_with(|buf| encode(message, buf)).await
    }

    /// Queues a frame of another protocol, appended by `encode` (a shoal-wire encoder).
    pub async fn push_with(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
    ) -> Result<(), StreamError> {
        encode(&mut self.buf)?;
        if self.buf.len() >= WRITE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), StreamError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        throttle(self.limit.as_ref(), self.buf.len()).await;
        let write = async {
            self.inner.write_all(&self.buf).await?;
            self.inner.flush().await
        };
        match self.stall_limit {
            Some(limit) => tokio::time::timeout(limit, write)
                .await
                .map_err(|_| StreamError::Stalled(limit))??,
            None => write.await?,
        }
        self.buf.clear();
        Ok(())
    }

    /// Flushes and closes the writing half.
    pub async fn close(mut self) -> Result<(), StreamError> {
        self.flush().await?;
        self.inner.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use futures::io::Cursor;
    use shoal_wire::{Block, BlockRef};

    use super::*;

    fn sample() -> Vec<Message> {
        vec![
            Message::Interested,
            Message::Have(7),
            Message::Request(BlockRef {
                piece: 1,
                offset: 16384,
                length: 16384,
            }),
            Message::Piece(Block {
                piece: 1,
                offset: 0,
                data: Bytes::from(vec![9u8; 16384]),
            }),
            Message::KeepAlive,
        ]
    }

    async fn written(messages: &[Message]) -> Vec<u8> {
        let mut writer = FrameWriter::new(Vec::new(), None);
        for m in messages {
            writer.push(m).await.unwrap();
        }
        writer.flush().await.unwrap();
        writer.inner
    }

    #[tokio::test]
    async fn messages_round_trip_through_bytes() {
        let bytes = written(&sample()).await;
        let mut reader = FrameReader::new(Cursor::new(bytes), None);
        let mut got = Vec::new();
        while let Some(m) = reader.next().await.unwrap() {
            got.push(m);
        }
        assert_eq!(got, sample());
    }

    #[tokio::test]
    async fn a_stream_cut_mid_frame_is_an_error() {
        let mut bytes = written(&sample()).await;
        bytes.truncate(bytes.len() - 3000);
        let mut reader = FrameReader::new(Cursor::new(bytes), None);
        let mut result = Ok(Some(Message::KeepAlive));
        while let Ok(Some(_)) = result {
            result = reader.next().await;
        }
        assert!(matches!(result, Err(StreamError::Truncated)), "{result:?}");
    }

    #[tokio::test]
    async fn an_oversized_frame_header_is_refused_at_once() {
        let bytes = vec![0xff, 0xff, 0xff, 0xff, 0, 0];
        let mut reader = FrameReader::new(Cursor::new(bytes), None);
        let err = reader.next().await.unwrap_err();
        assert!(
            matches!(err, StreamError::Protocol(WireError::FrameTooLarge { .. })),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_times_out() {
        let mut reader = FrameReader::new(PendingReader, None);
        let err = reader
            .next_within(Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, StreamError::Timeout(_)), "{err}");
    }

    /// A reader that never returns data (a silent peer).
    struct PendingReader;

    impl AsyncRead for PendingReader {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::task::Poll::Pending
        }
    }
}
