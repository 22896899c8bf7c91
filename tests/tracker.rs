//! `shoal tracker` as a process: its URL line, a real announce, and a refused bad request.

mod support;

use shoal_metainfo::bencode;
use support::tracker::TrackerProcess;

#[test]
fn the_tracker_announces_its_url_and_answers() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    // Reads the `tracker http://127.0.0.1:PORT/announce` line.
    let mut tracker = TrackerProcess::start(tmp.path());
    assert_eq!(tracker.url, format!("http://{}/announce", tracker.addr));

    let info_hash = "%01".repeat(20);
    let announce = format!(
        "/announce?info_hash={info_hash}&peer_id=-SH0100-abcdefghijkl&port=6881&uploaded=0\
         &downloaded=0&left=100&event=started&compact=1"
    );
    let body = tracker.get(&announce);
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

    let bad = tracker.get("/announce?info_hash=short&peer_id=x&port=1");
    let doc = bencode::decode(&bad).expect("a bencoded failure");
    let reason = doc
        .root()
        .get(b"failure reason")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    assert!(reason.contains("info_hash"), "{reason}");
}

/// Private mode: SIGTERM (like Ctrl-C) stops the tracker cleanly, writing the users' totals
/// first.
#[test]
fn sigterm_saves_the_private_totals() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let users = tmp.path().join("users");
    let state = tmp.path().join("state.json");
    std::fs::write(&users, "alice alicekey0001\n").unwrap();
    let mut tracker = TrackerProcess::start_with(
        tmp.path(),
        &[
            "--users",
            support::path_str(&users),
            "--state",
            support::path_str(&state),
        ],
    );
    let body = tracker.get(&format!(
        "/announce/alicekey0001?info_hash={}&peer_id=-SH0100-abcdefghijkl&port=6881\
         &uploaded=1000&downloaded=250&left=0&event=started",
        "%02".repeat(20)
    ));
    let doc = bencode::decode(&body).expect("a bencoded answer");
    assert!(
        doc.root().get(b"failure reason").is_none(),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let status = tracker.terminate(std::time::Duration::from_secs(10));
    assert!(status.success(), "{status}; log:\n{}", tracker.log());
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("the state file is written")).unwrap();
    assert_eq!(
        saved["users"]["alice"],
        serde_json::json!({"uploaded": 1000, "downloaded": 250})
    );
}
