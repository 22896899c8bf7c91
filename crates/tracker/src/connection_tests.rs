use super::*;

/// A parsed head's (target, keep_alive, has_body, length), or "partial", or the error text.
fn parsed(bytes: &[u8]) -> Result<(String, bool, bool, usize), String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match parse(bytes, &mut headers) {
        Parsed::Complete(head, len) => {
            Ok((head.target.to_owned(), head.keep_alive, head.has_body, len))
        }
        Parsed::Partial => Err("partial".into()),
        Parsed::Invalid(error) => Err(error.to_string()),
    }
}

/// Answers everything in `input` with "ok <target>" (or the error text); returns the bytes
/// written and what the connection would do next.
fn answer(input: &[u8]) -> (String, Next, usize) {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    let next = answer_buffered(&mut buf, &mut out, &mut |request: Result<Head<'_>, _>| {
        let text = match request {
            Ok(head) => format!("ok {}", head.target),
            Err(error) => error.to_string(),
        };
        Reply {
            body: text.into_bytes(),
            content_type: "text/plain",
        }
    });
    (String::from_utf8(out).unwrap(), next, buf.len())
}

#[test]
fn heads_say_whether_the_connection_stays() {
    // (request, keep-alive, has a body, bytes after the head)
    let cases: [(&[u8], bool, bool, usize); 8] = [
        (b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n", true, false, 0),
        (
            b"GET /a HTTP/1.1\r\nConnection: Close\r\n\r\n",
            false,
            false,
            0,
        ),
        (
            b"GET /a HTTP/1.1\r\nConnection: te, close\r\n\r\n",
            false,
            false,
            0,
        ),
        (b"GET /a HTTP/1.0\r\n\r\n", false, false, 0),
        (
            b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            true,
            false,
            0,
        ),
        (
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            true,
            true,
            5,
        ),
        (
            b"GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
            true,
            0,
        ),
        (
            b"GET /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            true,
            false,
            0,
        ),
    ];
    for (bytes, keep_alive, has_body, after) in cases {
        let shown = String::from_utf8_lossy(bytes);
        assert_eq!(
            parsed(bytes),
            Ok(("/a".to_owned(), keep_alive, has_body, bytes.len() - after)),
            "{shown}"
        );
    }
}

#[test]
fn partial_malformed_and_crowded_heads() {
    assert_eq!(parsed(b"GET /announce?info_hash=").unwrap_err(), "partial");
    assert_eq!(
        parsed(b"GET /a HTTP/1.1\r\nHost: t\r\n").unwrap_err(),
        "partial"
    );
    assert_eq!(
        parsed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").unwrap_err(),
        "malformed HTTP request: invalid token"
    );
    assert_eq!(
        parsed(b"GET /a HTTP/9.9\r\n\r\n").unwrap_err(),
        "malformed HTTP request: invalid HTTP version"
    );
    let crowded = format!(
        "GET /a HTTP/1.1\r\n{}\r\n",
        "X: y\r\n".repeat(MAX_HEADERS + 1)
    );
    assert_eq!(
        parsed(crowded.as_bytes()).unwrap_err(),
        "malformed HTTP request: more than 64 header lines"
    );
    let full = format!("GET /a HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS));
    assert!(parsed(full.as_bytes()).is_ok());
}

#[test]
fn pipelined_requests_get_replies_in_order() {
    let (out, next, left) =
        answer(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\nGET /thr");
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nok /one\
         HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nok /two"
    );
    // The third head is incomplete: it waits in the buffer for more bytes.
    assert_eq!((next, left), (Next::Read, 8));
}

#[test]
fn close_and_http10_keep_alive_are_answered_in_kind() {
    let (out, next, _) =
        answer(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\n\r\n");
    assert!(out.ends_with("Connection: close\r\n\r\nok /x"), "{out}");
    assert_eq!(
        next,
        Next::Close,
        "nothing after a `close` request is answered"
    );
    let (out, next, _) = answer(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(
        out.ends_with("Connection: keep-alive\r\n\r\nok /x"),
        "{out}"
    );
    assert_eq!(next, Next::Read);
}

#[test]
fn a_request_with_a_body_is_answered_then_the_connection_closes() {
    let (out, next, _) =
        answer(b"POST /announce HTTP/1.1\r\nContent-Length: 4\r\n\r\nbodyGET /x HTTP/1.1\r\n\r\n");
    assert!(
        out.ends_with("Connection: close\r\n\r\nok /announce"),
        "{out}"
    );
    assert_eq!(next, Next::Refused);
}

#[test]
fn head_size_limit_one_past_the_edge() {
    let head = |len: usize| {
        let start = "GET /";
        let end = " HTTP/1.1\r\n\r\n";
        format!("{start}{}{end}", "a".repeat(len - start.len() - end.len()))
    };
    let (out, next, left) = answer(head(MAX_REQUEST_HEAD).as_bytes());
    assert!(
        out.contains("\r\n\r\nok /aaa"),
        "a head of exactly the limit is served"
    );
    assert_eq!((next, left), (Next::Read, 0));
    // One byte more cannot be complete within the buffer's limit.
    let over = head(MAX_REQUEST_HEAD + 1);
    let (out, next, _) = answer(&over.as_bytes()[..MAX_REQUEST_HEAD]);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 59\r\n\
         Connection: close\r\n\r\nrequest is too large: its head is over the 16384-byte limit"
    );
    assert_eq!(next, Next::Refused);
    // A partial head under the limit just waits.
    let (out, next, _) = answer(&over.as_bytes()[..MAX_REQUEST_HEAD - 1]);
    assert_eq!((out.as_str(), next), ("", Next::Read));
}

#[test]
fn garbage_is_answered_with_its_reason() {
    let (out, next, _) = answer(b"\x00\x01garbage\r\n\r\n");
    assert!(
        out.ends_with("Connection: close\r\n\r\nmalformed HTTP request: invalid token"),
        "{out}"
    );
    assert_eq!(next, Next::Refused);
}
