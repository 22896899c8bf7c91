//! `.torrent` parsing and magnet-link parsing must never panic on any input, and what they
//! accept must be safe to use and round-trip.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_metainfo::{InfoHash, Magnet, Torrent};

fn check_component(c: &str) {
    assert!(!c.is_empty(), "empty path component");
    assert!(c != "." && c != "..", "path component {c:?}");
    assert!(!c.contains(['/', '\\', '\0']), "path component {c:?}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(torrent) = Torrent::from_bytes(data) {
        check_component(&torrent.info.name);
        for file in &torrent.info.files {
            assert!(!file.path.is_empty(), "file with an empty path");
            file.components().for_each(check_component);
            if let Some(target) = &file.attr.symlink {
                target.split('/').for_each(check_component);
            }
        }
        assert_eq!(
            torrent.info_hash,
            InfoHash::of_info_bytes(&torrent.info_bytes)
        );
        let reread = Torrent::from_bytes(&torrent.to_bytes()).expect("to_bytes output parses");
        assert_eq!(reread, torrent, "to_bytes round trip changed the torrent");
        let magnet = torrent.magnet();
        let parsed: Magnet = magnet.to_string().parse().expect("own magnet link parses");
        assert_eq!(parsed, magnet, "magnet round trip changed the link");
    }

    let text = String::from_utf8_lossy(data);
    if let Ok(magnet) = text.parse::<Magnet>() {
        let again: Magnet = magnet
            .to_string()
            .parse()
            .expect("printed magnet link parses");
        assert_eq!(again, magnet, "magnet round trip changed the link");
    }
});
