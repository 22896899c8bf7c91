//! Private mode over real HTTP: passkeys, and per-user totals that survive a restart.

mod support;

use std::path::Path;
use std::time::Duration;

use shoal_tracker::{PrivateConfig, ServerConfig};
use support::{Running, announce_query, failure_reason};

const HASH: [u8; 20] = [0x42; 20];
const ALICE: &str = "alicekey0001";

fn config(dir: &Path) -> ServerConfig {
    ServerConfig {
        private: Some(PrivateConfig {
            users_file: dir.join("users"),
            state_file: dir.join("state.json"),
            // Long: the test checks the flush on shutdown, not the periodic one.
            flush_interval: Duration::from_secs(3600),
        }),
        ..ServerConfig::default()
    }
}

fn totals(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["users"]["alice"].clone()
}

async fn announce(tracker: &Running, passkey: &str, extra: &str) -> Option<String> {
    // announce_query sends uploaded=0&downloaded=0; later values override by position, so
    // build the query by hand for the counters.
    let query = announce_query(HASH, [1; 20], 6881, "").replace("uploaded=0&downloaded=0&", "");
    let (status, body) = tracker
        .get(&format!("/announce/{passkey}?{query}{extra}"))
        .await;
    assert_eq!(status, 200);
    failure_reason(&body)
}

#[tokio::test]
async fn passkeys_and_totals_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users"),
        format!("# users of the test\nalice {ALICE}\nbob bobkey000002\n"),
    )
    .unwrap();
    let tracker = Running::start(config(dir.path())).await;
    let counters = "&uploaded=0&downloaded=0";
    assert_eq!(
        announce(&tracker, "wrongkey0000", counters)
            .await
            .as_deref(),
        Some("unknown passkey")
    );
    let (_, body) = tracker
        .get(&format!(
            "/announce?{}",
            announce_query(HASH, [1; 20], 6881, "")
        ))
        .await;
    assert_eq!(
        failure_reason(&body).as_deref(),
        Some("this is a private tracker: use the announce URL with your passkey")
    );
    let (_, body) = tracker
        .get(&format!("/scrape?info_hash={}", support::escape(&HASH)))
        .await;
    assert!(failure_reason(&body).is_some());
    let (_, body) = tracker
        .get(&format!(
            "/scrape/{ALICE}?info_hash={}",
            support::escape(&HASH)
        ))
        .await;
    assert_eq!(failure_reason(&body), None);

    assert_eq!(
        announce(&tracker, ALICE, "&uploaded=0&downloaded=0&event=started").await,
        None
    );
    assert_eq!(
        announce(&tracker, ALICE, "&uploaded=1000&downloaded=500").await,
        None
    );
    tracker.stop().await;
    assert_eq!(
        totals(dir.path()),
        serde_json::json!({"uploaded": 1000, "downloaded": 500})
    );

    // After a restart the totals keep growing from where they were.
    let tracker = Running::start(config(dir.path())).await;
    assert_eq!(
        announce(&tracker, ALICE, "&uploaded=0&downloaded=0&event=started").await,
        None
    );
    assert_eq!(
        announce(&tracker, ALICE, "&uploaded=24&downloaded=0").await,
        None
    );
    assert_eq!(
        announce(&tracker, ALICE, "&uploaded=48&downloaded=12&event=stopped").await,
        None
    );
    tracker.stop().await;
    assert_eq!(
        totals(dir.path()),
        serde_json::json!({"uploaded": 1048, "downloaded": 512})
    );
}

#[tokio::test]
async fn totals_are_flushed_periodically() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), format!("alice {ALICE}\n")).unwrap();
    let mut config = config(dir.path());
    if let Some(private) = &mut config.private {
        private.flush_interval = Duration::from_millis(50);
    }
    let tracker = Running::start(config).await;
    assert_eq!(
        announce(&tracker, ALICE, "&uploaded=7&downloaded=0&event=started").await,
        None
    );
    let state = dir.path().join("state.json");
    let saved = async {
        loop {
            if state.exists() && totals(dir.path())["uploaded"] == 7 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(support::TIMEOUT, saved).await.unwrap();
    tracker.stop().await;
}

#[tokio::test]
async fn a_bad_users_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users"), "alice\n").unwrap();
    let error = shoal_tracker::TrackerServer::bind(config(dir.path()))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("users line 1: expected `NAME PASSKEY`"),
        "{error}"
    );
}
