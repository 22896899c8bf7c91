//! One HTTP/1.1 connection to the tracker: request heads in, replies out.
//!
//! A tracker needs little of HTTP — `GET` requests without a body, answered with a small
//! body — but it must answer *every* bad request with a bencoded `failure reason` and HTTP 200,
//! because that is what BitTorrent clients show their users. A general-purpose server answers
//! an oversized or malformed head itself (HTTP 431 or 400, no body), so the tracker frames its
//! requests here: each head is read into a buffer of at most [`MAX_REQUEST_HEAD`] bytes, parsed
//! with `httparse`, and answered with a `Content-Length` reply. Keep-alive and pipelining work
//! as clients expect: HTTP/1.1 keeps the connection unless `Connection: close`, HTTP/1.0 closes
//! it unless `Connection: keep-alive`.
//!
//! A head over the limit, one that does not parse, or a request with a body gets its failure
//! reason and then the connection is closed, since what follows cannot be framed. Closing
//! while the client's bytes are still arriving would make the kernel reset the connection and
//! could destroy the reply before the client reads it, so such a close *lingers*: the tracker
//! sends FIN, then reads and discards at most [`LINGER_BYTES`] for at most [`LINGER_TIME`].

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};

use crate::error::TrackerError;

/// Longest request head (request line and headers) accepted, in bytes.
pub const MAX_REQUEST_HEAD: usize = 16 << 10;
/// Most header lines in a request head.
pub const MAX_HEADERS: usize = 64;
/// A client must send each request head within this time (also the keep-alive idle time).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A client must take each batch of replies within this time.
pub const REPLY_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the client to finish sending after a refusal, before closing.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes read and discarded after a refusal, before closing.
pub const LINGER_BYTES: usize = 64 << 10;

/// Replies are written once this many bytes are waiting (a client pipelining many requests).
const FLUSH_AT: usize = 64 << 10;
/// First size of a connection's read buffer; it grows up to [`MAX_REQUEST_HEAD`] if needed.
const INITIAL_BUFFER: usize = 2048;

/// What the tracker needs from a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head<'a> {
    pub(crate) method: &'a str,
    /// The request target as sent: `/announce?…`, or an absolute `http://host/…`.
    pub(crate) target: &'a str,
    keep_alive: bool,
    /// HTTP/1.0: a kept connection must be confirmed with `Connection: keep-alive`.
    http10: bool,
    has_body: bool,
}

/// A reply body and its type; always sent as `200 OK`.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) body: Vec<u8>,
    pub(crate) content_type: &'static str,
}

#[derive(Debug)]
enum Parsed<'a> {
    Complete(Head<'a>, usize),
    Partial,
    Invalid(TrackerError),
}

/// What the connection does after answering what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The buffer holds no complete head: read more.
    Read,
    /// Replies are waiting to be written; more heads may be buffered.
    Flush,
    /// The client asked to close.
    Close,
    /// A request was refused: close, lingering.
    Refused,
}

/// Serves requests on `stream` until the client closes, a head takes too long, or a request
/// is refused. `respond` answers a head, or turns a refusal into its failure reason.
pub(crate) async fn serve(
    mut stream: TcpStream,
    mut respond: impl FnMut(Result<Head<'_>, TrackerError>) -> Reply,
) {
    let mut buf = BytesMut::with_capacity(INITIAL_BUFFER);
    let mut out = Vec::new();
    let mut head_deadline = Instant::now() + HEADER_READ_TIMEOUT;
    loop {
        let before = buf.len();
        let next = answer_buffered(&mut buf, &mut out, &mut respond);
        if buf.len() < before {
            head_deadline = Instant::now() + HEADER_READ_TIMEOUT;
        }
        if !out.is_empty() {
            if !write_replies(&mut stream, &out).await {
                return;
            }
            out.clear();
        }
        match next {
            Next::Flush => continue,
            Next::Close => {
                let _ = stream.shutdown().await;
                return;
            }
            Next::Refused => return linger(stream).await,
            Next::Read => {}
        }
        let room = MAX_REQUEST_HEAD - buf.len();
        buf.reserve(room.min(INITIAL_BUFFER));
        let mut limited = (&mut stream).take(room as u64);
        match timeout_at(head_deadline, limited.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => {
                tracing::debug!(buffered = buf.len(), "request head timed out; closing");
                return;
            }
        }
    }
}

/// Answers a connection past the server's limit with `reply` without reading its request,
/// then closes it, lingering.
pub(crate) async fn refuse(mut stream: TcpStream, reply: Reply) {
    let mut out = Vec::new();
    write_reply(&mut out, &reply, false, false);
    if write_replies(&mut stream, &out).await {
        linger(stream).await;
    }
}

/// Answers every complete head in `buf`, appending the replies to `out`, until a head is
/// incomplete, the connection must close, or enough replies wait to be written.
fn answer_buffered(
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    respond: &mut impl FnMut(Result<Head<'_>, TrackerError>) -> Reply,
) -> Next {
    loop {
        if buf.is_empty() {
            return Next::Read;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (head, len) = match parse(buf, &mut headers) {
            Parsed::Complete(head, len) => (head, len),
            Parsed::Partial if buf.len() < MAX_REQUEST_HEAD => return Next::Read,
            Parsed::Partial => {
                let too_large = TrackerError::HeadTooLarge {
                    max: MAX_REQUEST_HEAD,
                };
                write_reply(out, &respond(Err(too_large)), false, false);
                return Next::Refused;
            }
            Parsed::Invalid(error) => {
                write_reply(out, &respond(Err(error)), false, false);
                return Next::Refused;
            }
        };
        // A request with a body is answered (its method or path may be what is wrong with
        // it), then the connection closes: the body is never read.
        let (has_body, http10) = (head.has_body, head.http10);
        let keep = head.keep_alive && !has_body;
        let reply = respond(Ok(head));
        write_reply(out, &reply, keep, http10);
        buf.advance(len);
        if has_body {
            return Next::Refused;
        }
        if !keep {
            return Next::Close;
        }
        if out.len() >= FLUSH_AT {
            return Next::Flush;
        }
    }
}

/// Parses the head at the start of `buf`.
fn parse<'b>(buf: &'b [u8], headers: &'b mut [httparse::Header<'b>]) -> Parsed<'b> {
    let mut request = httparse::Request::new(headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Invalid(TrackerError::MalformedRequest {
                reason: format!("more than {MAX_HEADERS} header lines"),
            });
        }
        Err(error) => {
            return Parsed::Invalid(TrackerError::MalformedRequest {
                reason: error.to_string(),
            });
        }
    };
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Parsed::Partial;
    };
    let (mut close, mut keep, mut has_body) = (false, false, false);
    for header in request.headers.iter() {
        let value = header.value;
        if header.name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if header.name.eq_ignore_ascii_case("content-length") {
            has_body |= value.trim_ascii() != b"0";
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        }
    }
    let http10 = version == 0;
    let head = Head {
        method,
        target,
        keep_alive: if http10 { keep } else { !close },
        http10,
        has_body,
    };
    Parsed::Complete(head, len)
}

/// Appends a `200 OK` reply; unless `keep`, it says the connection closes (and an HTTP/1.0
/// client is told explicitly when it stays open).
fn write_reply(out: &mut Vec<u8>, reply: &Reply, keep: bool, http10: bool) {
    let mut head = String::with_capacity(96);
    head.push_str("HTTP/1.1 200 OK\r\nContent-Type: ");
    head.push_str(reply.content_type);
    let _ = write!(head, "\r\nContent-Length: {}\r\n", reply.body.len());
    if !keep {
        head.push_str("Connection: close\r\n");
    } else if http10 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&reply.body);
}

/// Writes `out`; false if the client is gone or does not read.
async fn write_replies(stream: &mut TcpStream, out: &[u8]) -> bool {
    match timeout(REPLY_WRITE_TIMEOUT, stream.write_all(out)).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::debug!(%error, "cannot write the reply");
            false
        }
        Err(_) => {
            tracing::debug!("the client does not read its replies; closing");
            false
        }
    }
}

/// Closes after a refusal without resetting the connection: FIN first, then discard what the
/// client still sends, within [`LINGER_TIME`] and [`LINGER_BYTES`].
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let drain = async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout(LINGER_TIME, drain).await;
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
