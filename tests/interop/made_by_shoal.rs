//! Torrents made by `shoal create`, read by libtorrent and Transmission.

use serde_json::Value;

use crate::tools::{Tool, create_field, lt_info, path_str, run, shoal_show, transmission_show};
use crate::trees::{Kind, SEEDS, make_tree};
use crate::views::{assert_shoal_matches_lt, lt_data_files, lt_pad_count, shoal_files, sorted};

fn check_shoal_torrent_in_other_clients(kind: Kind) {
    for (i, &seed) in SEEDS.iter().enumerate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tree = make_tree(dir.path(), kind, seed, "shoal create");
        let case = &tree.case;
        let torrent = dir.path().join("made by shoal.torrent");
        let piece = tree.piece_length.to_string();
        let mut args = vec!["create", tree.source_str(), "-o", path_str(&torrent)];
        // The first seed of the nested and empty-file kinds uses shoal's default piece length
        // (the other kinds' sizes are chosen against `tree.piece_length`).
        let explicit_piece = i > 0 || kind == Kind::SingleFile || kind == Kind::Unaligned;
        if explicit_piece {
            args.extend(["--piece-length", &piece]);
        }
        args.extend([
            "--tracker",
            "http://tracker.example:6969/announce?passkey=ab12&x=1",
        ]);
        let out = run(Tool::Shoal, dir.path(), &args);
        let info_hash = create_field(&out, "info-hash").to_owned();
        assert_eq!(info_hash.len(), 40, "{case}: info-hash line {info_hash:?}");

        let show = shoal_show(dir.path(), &torrent);
        assert_eq!(show["info_hash"], info_hash, "{case}: show vs create");

        // libtorrent
        let lt = lt_info(dir.path(), &torrent);
        assert_eq!(
            lt["info_hash_v1"], info_hash,
            "{case}: libtorrent's info-hash"
        );
        assert_eq!(
            lt["info_hash_v2"],
            Value::Null,
            "{case}: shoal makes v1 torrents"
        );
        assert_eq!(lt["name"], tree.name, "{case}: libtorrent's name");
        assert_eq!(lt_pad_count(&lt), 0, "{case}: shoal writes no pad files");
        assert_eq!(
            lt["num_files"],
            show["files"].as_array().expect("files").len(),
            "{case}: num_files"
        );
        if explicit_piece {
            assert_eq!(
                lt["piece_length"], tree.piece_length,
                "{case}: piece length"
            );
        }
        assert_shoal_matches_lt(case, &show, &lt);
        assert_eq!(
            sorted(lt_data_files(&lt)),
            sorted(tree.files.clone()),
            "{case}: libtorrent sees exactly the files written"
        );
        let total: u64 = tree.files.iter().map(|(_, s)| s).sum();
        assert_eq!(lt["total_size"], total, "{case}: total size");

        // Transmission
        let tr = transmission_show(dir.path(), &torrent);
        assert_eq!(
            tr.info_hash, info_hash,
            "{case}: transmission-show's info-hash"
        );
        assert_eq!(
            Some(tr.piece_count),
            show["num_pieces"].as_u64(),
            "{case}: transmission-show's piece count"
        );
        let shoal_paths: Vec<String> = shoal_files(&show).into_iter().map(|(p, _)| p).collect();
        assert_eq!(tr.paths, shoal_paths, "{case}: transmission-show's files");
    }
}

#[test]
fn shoal_single_file_torrent_loads_in_libtorrent_and_transmission() {
    check_shoal_torrent_in_other_clients(Kind::SingleFile);
}

#[test]
fn shoal_nested_tree_torrent_loads_in_libtorrent_and_transmission() {
    check_shoal_torrent_in_other_clients(Kind::Nested);
}

#[test]
fn shoal_torrent_with_empty_files_loads_in_libtorrent_and_transmission() {
    check_shoal_torrent_in_other_clients(Kind::WithEmptyFiles);
}

#[test]
fn shoal_torrent_with_unaligned_sizes_loads_in_libtorrent_and_transmission() {
    check_shoal_torrent_in_other_clients(Kind::Unaligned);
}
