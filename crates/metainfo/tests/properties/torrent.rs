//! Torrents: every valid one is read as described, nothing that parses breaks the invariants
//! (safe unique paths, offsets, the info-hash over the exact bytes, lossless re-encoding), and
//! no input makes the parser panic.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use shoal_metainfo::bencode::encode;
use shoal_metainfo::{Info, InfoHash, Magnet, MetainfoError, Torrent};

use crate::bytes::{arbitrary_bytes, mutate, mutations};
use crate::torrent_spec::{PIECE_LENGTH, torrent_spec};

fn check_component(what: &str, c: &str) -> Result<(), TestCaseError> {
    prop_assert!(!c.is_empty(), "{what}: empty component");
    prop_assert!(c != "." && c != "..", "{what}: component {c:?}");
    prop_assert!(
        !c.contains(['/', '\\', '\0']),
        "{what}: component {c:?} holds a separator or NUL"
    );
    Ok(())
}

/// What must hold of every torrent `Torrent::from_bytes` accepts.
fn check_torrent(input: &[u8], t: &Torrent) -> Result<(), TestCaseError> {
    check_component("name", &t.info.name)?;
    prop_assert!(!t.info.files.is_empty());
    let mut real_paths = HashSet::new();
    let mut offset = 0u64;
    for file in &t.info.files {
        prop_assert!(!file.path.is_empty(), "file with an empty path");
        for c in file.components() {
            check_component("file path", c)?;
        }
        if let Some(target) = &file.attr.symlink {
            for c in target.split('/') {
                check_component("symlink target", c)?;
            }
        }
        prop_assert_eq!(file.offset, offset);
        offset += file.length;
        if !file.is_pad() {
            prop_assert!(
                real_paths.insert(file.components().collect::<Vec<_>>()),
                "two files share the path {:?}",
                file.path
            );
        }
    }
    prop_assert_eq!(offset, t.info.total_size);
    prop_assert!(t.info.total_size > 0);
    // No file sits where another file needs a directory.
    for path in &real_paths {
        for len in 1..path.len() {
            prop_assert!(
                !real_paths.contains(&path[..len]),
                "{:?} is a file and a directory of {:?}",
                &path[..len],
                path
            );
        }
    }
    prop_assert_eq!(
        t.info.total_size.div_ceil(t.info.piece_length),
        t.info.num_pieces() as u64
    );

    // The info dictionary is a byte-exact slice of the input, and its hash is the info-hash.
    prop_assert!(
        input
            .windows(t.info_bytes.len())
            .any(|w| w == t.info_bytes.as_slice())
    );
    prop_assert_eq!(t.info_hash, InfoHash::of_info_bytes(&t.info_bytes));
    let standalone = Info::from_bytes(&t.info_bytes);
    prop_assert!(standalone.is_ok(), "info alone: {:?}", standalone.err());
    if let Ok((hash, info)) = standalone {
        prop_assert_eq!(hash, t.info_hash);
        prop_assert_eq!(&info, &t.info);
    }

    // Writing the torrent out and reading it back changes nothing.
    let reread = Torrent::from_bytes(&t.to_bytes());
    prop_assert!(
        reread.is_ok(),
        "to_bytes does not parse: {:?}",
        reread.err()
    );
    if let Ok(reread) = reread {
        prop_assert_eq!(&reread, t);
    }

    // And its magnet link round-trips.
    let magnet = t.magnet();
    let parsed = magnet.to_string().parse::<Magnet>();
    prop_assert!(parsed.is_ok(), "{}: {:?}", magnet, parsed.err());
    if let Ok(parsed) = parsed {
        prop_assert_eq!(parsed, magnet);
    }
    Ok(())
}

fn check_torrent_bytes(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(t) = Torrent::from_bytes(input) {
        check_torrent(input, &t)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn torrent_from_valid_spec(spec in torrent_spec()) {
        let input = spec.encode();
        let parsed = Torrent::from_bytes(&input);
        if spec.total_size() == 0 {
            prop_assert!(
                matches!(parsed, Err(MetainfoError::EmptyTorrent)),
                "empty torrent: {:?}",
                parsed
            );
            return Ok(());
        }
        prop_assert!(parsed.is_ok(), "valid torrent rejected: {:?}", parsed.err());
        if let Ok(t) = parsed {
            let info = encode(&spec.info());
            prop_assert_eq!(&t.info_bytes, &info);
            prop_assert_eq!(t.info_hash, InfoHash::of_info_bytes(&info));
            prop_assert_eq!(t.info.total_size, spec.total_size());
            prop_assert_eq!(t.info.num_pieces() as u64, spec.num_pieces());
            prop_assert_eq!(t.info.piece_length, PIECE_LENGTH as u64);
            prop_assert_eq!(t.info.private, spec.private);
            prop_assert_eq!(t.info.multi_file, spec.files.is_some());
            prop_assert_eq!(t.info.files.len(), spec.files.as_ref().map_or(1, Vec::len));
            check_torrent(&input, &t)?;
        }
    }

    #[test]
    fn torrent_never_panics_on_arbitrary_bytes(input in arbitrary_bytes()) {
        check_torrent_bytes(&input)?;
    }

    #[test]
    fn torrent_never_panics_on_mutated_torrents(spec in torrent_spec(), muts in mutations()) {
        let input = mutate(spec.encode(), &muts);
        check_torrent_bytes(&input)?;
    }
}

/// The mutation generator reaches both outcomes: without this, mutations that always broke the
/// input (or never did) would let the "never panics" properties pass vacuously.
#[test]
fn mutated_inputs_are_not_all_rejected() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (torrent_spec(), mutations());
    let (mut parsed, mut rejected) = (0, 0);
    for _ in 0..200 {
        let (spec, muts) = strategy
            .new_tree(&mut runner)
            .expect("strategy makes values")
            .current();
        match Torrent::from_bytes(&mutate(spec.encode(), &muts)) {
            Ok(_) => parsed += 1,
            Err(_) => rejected += 1,
        }
    }
    assert!(parsed > 0, "no mutated torrent parsed");
    assert!(rejected > 0, "every mutated torrent parsed");
}
