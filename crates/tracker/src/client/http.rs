//! One HTTP/1.1 GET to a tracker: URL checks, the query string, hyper over a `TcpStream`.

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::header::{CONNECTION, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use shoal_metainfo::InfoHash;
use tokio::net::TcpStream;

use super::response::{ReplyError, parse_announce, parse_scrape};
use super::{Announce, AnnounceReply, ClientError, MAX_REPLY_BODY, ScrapeReply};

/// Path segments at least this long are hidden by [`redact`] (passkeys are usually 32).
const REDACT_SEGMENT_LEN: usize = 16;

/// One HTTP GET announce with `compact=1`, bounded by `timeout` end to end (connect, request,
/// reply). The reply body is capped at [`MAX_REPLY_BODY`] before parsing and `interval` is
/// clamped to [`super::MIN_INTERVAL`]`..=`[`super::MAX_INTERVAL`].
pub async fn announce(
    url: &str,
    request: &Announce,
    timeout: Duration,
) -> Result<AnnounceReply, ClientError> {
    let target = Target::parse(url)?;
    let query = announce_query(request);
    tracing::debug!(tracker = %target.shown, event = ?request.event, "announce");
    let body = target.get(&query, timeout).await?;
    parse_announce(&body).map_err(|e| target.reply_error(e))
}

/// BEP 48 scrape of one torrent at the scrape URL of `announce_url` (see [`scrape_url`]).
pub async fn scrape(
    announce_url: &str,
    info_hash: InfoHash,
    timeout: Duration,
) -> Result<ScrapeReply, ClientError> {
    let url = scrape_url(announce_url)?;
    let target = Target::parse(&url)?;
    let mut query = String::from("info_hash=");
    escape_into(&mut query, &info_hash.0);
    let body = target.get(&query, timeout).await?;
    parse_scrape(&body, info_hash).map_err(|e| target.reply_error(e))
}

/// The scrape URL of an announce URL (BEP 48): the last path segment starting with
/// `announce` has it replaced by `scrape` (`/announce.php` -> `/scrape.php`). For the
/// passkey form of shoal-tracker, `/announce/PASSKEY`, the segment before the last counts too.
pub fn scrape_url(announce_url: &str) -> Result<String, ClientError> {
    let (before_query, query) = match announce_url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (announce_url, None),
    };
    let path_start = before_query
        .find("://")
        .and_then(|scheme_end| {
            let rest = scheme_end + 3;
            before_query[rest..].find('/').map(|slash| rest + slash)
        })
        .unwrap_or(before_query.len());
    let (origin, path) = before_query.split_at(path_start);
    let mut segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let which = if segments[last].starts_with("announce") {
        Some(last)
    } else if last >= 1 && segments[last - 1] == "announce" {
        Some(last - 1)
    } else {
        None
    };
    let Some(at) = which.filter(|&at| at > 0) else {
        return Err(ClientError::UnsupportedUrl {
            url: redact(announce_url),
            reason: "no scrape URL: the last path segment does not start with \"announce\" \
                     (BEP 48)"
                .into(),
        });
    };
    let replaced = format!("scrape{}", &segments[at]["announce".len()..]);
    segments[at] = &replaced;
    let mut url = format!("{origin}{}", segments.join("/"));
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

/// The query string of an announce, without the leading `?`.
pub fn announce_query(request: &Announce) -> String {
    let mut query = String::with_capacity(256);
    query.push_str("info_hash=");
    escape_into(&mut query, &request.info_hash.0);
    query.push_str("&peer_id=");
    escape_into(&mut query, &request.peer_id);
    // Writing into a String cannot fail.
    let _ = write!(
        query,
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}&key={:08X}",
        request.port,
        request.uploaded,
        request.downloaded,
        request.left,
        request.numwant,
        request.key
    );
    if let Some(event) = request.event {
        query.push_str("&event=");
        query.push_str(event.as_str());
    }
    query
}

/// Percent-encodes bytes as BEP 3 clients do: RFC 3986 unreserved characters as they are,
/// every other byte as `%XX`.
fn escape_into(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// A tracker URL fit for logs: scheme, host and port as they are; path segments of
/// 16 characters or more (passkeys) and any query become `***`.
pub fn redact(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, _)) => (head, "?***"),
        None => (url, ""),
    };
    let (scheme, rest) = head.split_once("://").unwrap_or(("", head));
    let mut parts = rest.split('/');
    let authority = parts.next().unwrap_or_default();
    // Drop user:password@ if any.
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let mut shown = if scheme.is_empty() {
        authority.to_owned()
    } else {
        format!("{scheme}://{authority}")
    };
    for segment in parts {
        shown.push('/');
        shown.push_str(if segment.chars().count() >= REDACT_SEGMENT_LEN {
            "***"
        } else {
            segment
        });
    }
    shown.push_str(query);
    shown
}

/// A checked `http://` tracker URL.
struct Target {
    /// The redacted URL, for errors and logs.
    shown: String,
    /// Host name or address, without IPv6 brackets.
    host: String,
    port: u16,
    /// The `Host` header.
    authority: String,
    /// Path and query as given.
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, ClientError> {
        let shown = redact(url);
        let unsupported = |reason: &str| ClientError::UnsupportedUrl {
            url: shown.clone(),
            reason: reason.to_owned(),
        };
        let lower = url.trim().to_ascii_lowercase();
        if lower.starts_with("udp://") {
            return Err(unsupported(
                "UDP trackers (BEP 15) are not supported; use an http:// tracker",
            ));
        }
        if lower.starts_with("https://") {
            return Err(unsupported(
                "HTTPS trackers are not supported (shoal has no TLS); use an http:// tracker",
            ));
        }
        if !lower.starts_with("http://") {
            return Err(unsupported("only http:// tracker URLs are supported"));
        }
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|e| unsupported(&format!("not a valid URL: {e}")))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| unsupported("the URL has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let authority = uri
            .authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        Ok(Self {
            shown,
            host,
            port,
            authority,
            path_and_query,
        })
    }

    fn reply_error(&self, error: ReplyError) -> ClientError {
        let url = self.shown.clone();
        match error {
            ReplyError::Failure(reason) => ClientError::Failure { url, reason },
            ReplyError::Garbage(reason) => ClientError::Garbage { url, reason },
        }
    }

    /// GETs the URL with `query` appended and returns the body of a 200 reply.
    async fn get(&self, query: &str, timeout: Duration) -> Result<Bytes, ClientError> {
        let separator = if self.path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let target = format!("{}{separator}{query}", self.path_and_query);
        match tokio::time::timeout(timeout, self.exchange(&target)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                url: self.shown.clone(),
                after: timeout,
            }),
        }
    }

    async fn exchange(&self, target: &str) -> Result<Bytes, ClientError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::Connect {
                url: self.shown.clone(),
                reason: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        let exchange_error = |reason: String| ClientError::Exchange {
            url: self.shown.clone(),
            reason,
        };
        let request = Request::builder()
            .method(Method::GET)
            .uri(target)
            .header(HOST, self.authority.as_str())
            .header(USER_AGENT, concat!("shoal/", env!("CARGO_PKG_VERSION")))
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| exchange_error(format!("cannot build the request: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| exchange_error(e.to_string()))?;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| exchange_error(e.to_string()))?;
            self.read_body(response).await
        };
        drive(exchange, connection).await
    }

    async fn read_body(
        &self,
        response: hyper::Response<hyper::body::Incoming>,
    ) -> Result<Bytes, ClientError> {
        let too_large = || ClientError::TooLarge {
            url: self.shown.clone(),
            limit: MAX_REPLY_BODY,
        };
        let status = response.status();
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_REPLY_BODY as u64) {
            return Err(too_large());
        }
        let body = Limited::new(response.into_body(), MAX_REPLY_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    too_large()
                } else {
                    ClientError::Exchange {
                        url: self.shown.clone(),
                        reason: format!("reading the reply: {e}"),
                    }
                }
            })?
            .to_bytes();
        if status != StatusCode::OK {
            // Some trackers explain a refusal in a non-200 reply: show it if they did.
            if let Err(ReplyError::Failure(reason)) = parse_announce(&body) {
                return Err(ClientError::Failure {
                    url: self.shown.clone(),
                    reason,
                });
            }
            return Err(ClientError::Http {
                url: self.shown.clone(),
                status: status.as_u16(),
            });
        }
        Ok(body)
    }
}

/// Runs `exchange` while driving hyper's `connection` in the same task (nothing is spawned,
/// so nothing outlives the call). If the connection ends first, the exchange still gets to
/// report the result or the error hyper handed it.
async fn drive<T, C>(exchange: impl Future<Output = T>, connection: C) -> T
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    tokio::pin!(exchange);
    tokio::pin!(connection);
    tokio::select! {
        biased;
        result = &mut exchange => result,
        ended = &mut connection => {
            if let Err(error) = ended {
                tracing::debug!(%error, "tracker connection ended");
            }
            exchange.await
        }
    }
}
