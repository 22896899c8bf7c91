//! Reading `shoal show --json` and libtorrent's JSON side by side.

use serde_json::Value;

/// `(path, size)` of every file in a `shoal show --json` object.
pub fn shoal_files(show: &Value) -> Vec<(String, u64)> {
    show["files"]
        .as_array()
        .expect("show --json has files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("file path").to_owned(),
                f["size"].as_u64().expect("file size"),
            )
        })
        .collect()
}

/// `(path, size)` of libtorrent's files, pad files left out.
pub fn lt_data_files(info: &Value) -> Vec<(String, u64)> {
    info["files"]
        .as_array()
        .expect("lt info has files")
        .iter()
        .filter(|f| !f["pad"].as_bool().expect("pad flag"))
        .map(|f| {
            (
                f["path"].as_str().expect("file path").to_owned(),
                f["size"].as_u64().expect("file size"),
            )
        })
        .collect()
}

pub fn lt_pad_count(info: &Value) -> usize {
    info["files"]
        .as_array()
        .expect("lt info has files")
        .iter()
        .filter(|f| f["pad"].as_bool().expect("pad flag"))
        .count()
}

pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Asserts shoal's reading of a torrent agrees with libtorrent's (v1 hash, sizes, pieces,
/// data files in order).
pub fn assert_shoal_matches_lt(case: &str, show: &Value, lt: &Value) {
    assert_eq!(
        show["info_hash"], lt["info_hash_v1"],
        "{case}: info-hash (shoal vs libtorrent v1)"
    );
    assert_eq!(show["name"], lt["name"], "{case}: name");
    assert_eq!(show["total_size"], lt["total_size"], "{case}: total_size");
    assert_eq!(
        show["piece_length"], lt["piece_length"],
        "{case}: piece_length"
    );
    assert_eq!(show["num_pieces"], lt["num_pieces"], "{case}: num_pieces");
    assert_eq!(show["private"], lt["private"], "{case}: private");
    assert_eq!(show["trackers"], lt["trackers"], "{case}: trackers");
    assert_eq!(
        shoal_files(show),
        lt_data_files(lt),
        "{case}: files (path, size), pad files left out"
    );
}
