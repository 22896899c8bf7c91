//! Property tests: any layout of files, empty files and pad files, written in any block size
//! and order, reads back byte for byte and verifies.

mod support;

use proptest::prelude::*;
use support::{Dirs, Entry, assert_files_match, download, multi_file, scrambled_blocks};

const NAMES: [&[&str]; 8] = [
    &["f0"],
    &["f1"],
    &["d", "f2"],
    &["d", "f3"],
    &["d", "e", "f4"],
    &["f5"],
    &["g", "f6"],
    &["f7"],
];

fn entry() -> impl Strategy<Value = (bool, usize)> {
    prop_oneof![
        3 => (Just(false), 0usize..40_000),
        1 => (Just(false), Just(0usize)),
        1 => (Just(true), 1usize..20_000),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_layout_round_trips(
        raw in proptest::collection::vec(entry(), 1..8),
        piece_length in prop_oneof![Just(16384usize), Just(32768)],
        block in 1000usize..20_000,
    ) {
        let mut entries: Vec<Entry> = raw
            .iter()
            .enumerate()
            .map(|(i, &(pad, len))| if pad { Entry::Pad(len) } else { Entry::File(NAMES[i], len) })
            .collect();
        // At least one byte of real data.
        entries.push(Entry::File(NAMES[7], 1 + raw.len()));
        let built = multi_file("prop", &entries, piece_length, raw.len() as u64);
        let dirs = Dirs::new();
        let storage = dirs.open(&built).storage;
        download(&storage, &built, &scrambled_blocks(&built, block));
        prop_assert!(storage.have().is_full());
        assert_files_match(dirs.download.path(), &built);
        storage.close().unwrap();
        let reopened = dirs.open(&built);
        prop_assert!(reopened.have.is_full());
        prop_assert_eq!(reopened.report.rechecked, 0);
    }
}
