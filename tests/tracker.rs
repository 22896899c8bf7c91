//! `shoal tracker` as a process: its URL line, a real announce, and a refused bad request.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use shoal_metainfo::bencode;
use support::shoal_bin;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, target: &str) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).expect("tracker accepts connections");
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    assert!(
        response.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    response[split + 4..].to_vec()
}

#[test]
fn the_tracker_announces_its_url_and_answers() {
    let mut tracker = Running(
        Command::new(shoal_bin())
            .args(["tracker", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("shoal tracker starts"),
    );
    let mut line = String::new();
    BufReader::new(tracker.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("tracker http://")
        .expect("a `tracker URL` line");
    let addr = url.strip_suffix("/announce").expect("an announce URL");

    let info_hash = "%01".repeat(20);
    let announce = format!(
        "/announce?info_hash={info_hash}&peer_id=-SH0100-abcdefghijkl&port=6881&uploaded=0\
         &downloaded=0&left=100&event=started&compact=1"
    );
    let body = get(addr, &announce);
    let doc = bencode::decode(&body).expect("a bencoded answer");
    let root = doc.root();
    assert!(
        root.get(b"failure reason").is_none(),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(root.get(b"interval").and_then(|v| v.as_int()), Some(1800));
    assert_eq!(root.get(b"incomplete").and_then(|v| v.as_int()), Some(1));
    assert_eq!(
        root.get(b"peers").and_then(|v| v.as_bytes()),
        Some(&b""[..]),
        "never itself"
    );

    let bad = get(addr, "/announce?info_hash=short&peer_id=x&port=1");
    let doc = bencode::decode(&bad).expect("a bencoded failure");
    let reason = doc
        .root()
        .get(b"failure reason")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    assert!(reason.contains("info_hash"), "{reason}");
}
