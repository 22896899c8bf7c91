//! Property tests for shoal-metainfo: bencode round-trips, and decoders that never panic on
//! hostile input (arbitrary bytes, and valid encodings with a few bytes flipped, inserted or
//! deleted), torrent paths that are always safe, and magnet links that round-trip.
//!
//! 256 cases per property unless `PROPTEST_CASES` says otherwise.
//!
//! One test binary; the properties live in `properties/`, one module per concern.

// Cargo would take files beside this one for test binaries of their own, so the modules live
// in `properties/` and are named by path.
#[path = "properties/bencode.rs"]
mod bencode;
#[path = "properties/bytes.rs"]
mod bytes;
#[path = "properties/magnet.rs"]
mod magnet;
#[path = "properties/torrent.rs"]
mod torrent;
#[path = "properties/torrent_spec.rs"]
mod torrent_spec;

use proptest::test_runner::Config as ProptestConfig;

/// The proptest settings of every property here.
pub fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; nothing is written into the repo.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
