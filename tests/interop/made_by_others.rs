//! Torrents made by libtorrent (v1-only and hybrid), mktorrent and transmission-create, read by
//! `shoal show`.

use serde_json::Value;

use crate::tools::{Tool, lt, lt_info, path_str, run, shoal_show, transmission_show};
use crate::trees::{KINDS, Kind, SEEDS, make_tree};
use crate::views::{assert_shoal_matches_lt, lt_data_files, lt_pad_count, shoal_files, sorted};

#[test]
fn libtorrent_v1_only_torrents_read_by_shoal() {
    for kind in KINDS {
        for &seed in &SEEDS {
            let dir = tempfile::tempdir().expect("temp dir");
            let tree = make_tree(dir.path(), kind, seed, "libtorrent create_torrent v1_only");
            let case = &tree.case;
            let torrent = dir.path().join("made by libtorrent.torrent");
            let piece = tree.piece_length.to_string();
            let lt = lt(
                dir.path(),
                &[
                    "create",
                    tree.source_str(),
                    path_str(&torrent),
                    "--v1-only",
                    "--piece-length",
                    &piece,
                    "--tracker",
                    "udp://tracker.example:1337/announce?key=v%201",
                ],
            );
            assert_eq!(lt["info_hash_v2"], Value::Null, "{case}: v1 only");
            assert_eq!(
                lt_pad_count(&lt),
                0,
                "{case}: v1-only torrents need no pad files"
            );
            assert_eq!(
                sorted(lt_data_files(&lt)),
                sorted(tree.files.clone()),
                "{case}: libtorrent hashed exactly the files written"
            );
            let show = shoal_show(dir.path(), &torrent);
            assert_shoal_matches_lt(case, &show, &lt);
            assert_eq!(show["hybrid"], false, "{case}: not hybrid");
        }
    }
}

#[test]
fn libtorrent_hybrid_torrents_read_by_shoal() {
    for kind in KINDS {
        for &seed in &SEEDS {
            let dir = tempfile::tempdir().expect("temp dir");
            let tree = make_tree(dir.path(), kind, seed, "libtorrent create_torrent hybrid");
            let case = &tree.case;
            let torrent = dir.path().join("hybrid by libtorrent.torrent");
            let piece = tree.piece_length.to_string();
            let lt = lt(
                dir.path(),
                &[
                    "create",
                    tree.source_str(),
                    path_str(&torrent),
                    "--piece-length",
                    &piece,
                    "--tracker",
                    "http://tracker.example/announce?passkey=hy",
                ],
            );
            assert!(
                lt["info_hash_v2"].is_string(),
                "{case}: libtorrent's default is a hybrid torrent: {lt}"
            );
            assert!(
                lt["info_hash_v1"].is_string(),
                "{case}: hybrid has v1: {lt}"
            );
            if kind != Kind::SingleFile {
                assert!(
                    lt_pad_count(&lt) > 0,
                    "{case}: hybrid trees are padded: {lt}"
                );
            }
            assert_eq!(
                sorted(lt_data_files(&lt)),
                sorted(tree.files.clone()),
                "{case}: libtorrent hashed exactly the files written"
            );
            let show = shoal_show(dir.path(), &torrent);
            assert_shoal_matches_lt(case, &show, &lt);
            assert_eq!(show["hybrid"], true, "{case}: shoal sees a hybrid");
        }
    }
}

#[test]
fn mktorrent_torrents_read_by_shoal() {
    for kind in KINDS {
        for &seed in &SEEDS {
            let dir = tempfile::tempdir().expect("temp dir");
            let tree = make_tree(dir.path(), kind, seed, "mktorrent");
            let case = &tree.case;
            let torrent = dir.path().join("made by mktorrent.torrent");
            // mktorrent takes 2^15 bytes at least.
            let piece_length = tree.piece_length.max(1 << 15);
            let log2 = piece_length.trailing_zeros().to_string();
            run(
                Tool::Mktorrent,
                dir.path(),
                &[
                    "-l",
                    &log2,
                    "-a",
                    "http://tracker.example/announce?info=mk&n=2",
                    "-o",
                    path_str(&torrent),
                    tree.source_str(),
                ],
            );
            let show = shoal_show(dir.path(), &torrent);
            let lt = lt_info(dir.path(), &torrent);
            assert_shoal_matches_lt(case, &show, &lt);
            assert_eq!(show["piece_length"], piece_length, "{case}: piece length");
            let tr = transmission_show(dir.path(), &torrent);
            assert_eq!(
                show["info_hash"], tr.info_hash,
                "{case}: vs transmission-show"
            );
            let shoal_paths: Vec<String> = shoal_files(&show).into_iter().map(|(p, _)| p).collect();
            assert_eq!(shoal_paths, tr.paths, "{case}: files vs transmission-show");
            assert_eq!(
                sorted(shoal_files(&show)),
                sorted(tree.files.clone()),
                "{case}: mktorrent's torrent lists the files written"
            );
        }
    }
}

#[test]
fn transmission_create_torrents_read_by_shoal() {
    for kind in KINDS {
        for &seed in &SEEDS {
            let dir = tempfile::tempdir().expect("temp dir");
            let tree = make_tree(dir.path(), kind, seed, "transmission-create");
            let case = &tree.case;
            let torrent = dir.path().join("made by transmission.torrent");
            let kib = (tree.piece_length / 1024).to_string();
            run(
                Tool::TransmissionCreate,
                dir.path(),
                &[
                    "-s",
                    &kib,
                    "-t",
                    "http://tracker.example/announce?from=transmission",
                    "-o",
                    path_str(&torrent),
                    tree.source_str(),
                ],
            );
            let show = shoal_show(dir.path(), &torrent);
            let tr = transmission_show(dir.path(), &torrent);
            assert_eq!(
                show["info_hash"], tr.info_hash,
                "{case}: vs transmission-show"
            );
            assert_eq!(
                show["num_pieces"].as_u64(),
                Some(tr.piece_count),
                "{case}: piece count vs transmission-show"
            );
            let shoal_paths: Vec<String> = shoal_files(&show).into_iter().map(|(p, _)| p).collect();
            assert_eq!(shoal_paths, tr.paths, "{case}: files vs transmission-show");
            // transmission-show rounds sizes: compare exact sizes with libtorrent's view.
            let lt = lt_info(dir.path(), &torrent);
            assert_shoal_matches_lt(case, &show, &lt);
            assert_eq!(
                show["piece_length"], tree.piece_length,
                "{case}: piece length"
            );
            // transmission-create leaves empty files out of the torrent.
            let written: Vec<(String, u64)> =
                tree.files.iter().filter(|(_, s)| *s > 0).cloned().collect();
            assert_eq!(
                sorted(shoal_files(&show)),
                sorted(written),
                "{case}: transmission's torrent lists the non-empty files written"
            );
        }
    }
}
