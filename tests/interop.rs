//! Interoperability with real BitTorrent software: torrents and magnet links made by `shoal`
//! must read the same in libtorrent and Transmission, and theirs (and mktorrent's) in `shoal`.
//!
//! The tools come from Debian packages, which CI installs: `python3-libtorrent` (used through
//! `tests/interop/lt_tool.py` with `/usr/bin/python3`), `transmission-cli` (`transmission-show`,
//! `transmission-create`) and `mktorrent`. A missing tool fails the test, naming the package.
//!
//! File trees are pseudo-random but derived from the fixed seeds in [`SEEDS`], and every
//! assertion names the case (kind and seed), so a failure can be reproduced exactly.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{path_str, shoal_bin, write_tree};

/// Seeds of the pseudo-random file trees; each kind of tree is tested with every seed.
const SEEDS: [u64; 3] = [0x5eed_0001, 0x0bad_cafe, 0x2024_1127];

/// Longest any one command may run: the data is tiny, so this only stops a hang.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The libtorrent helper script, run with the system Python.
fn lt_tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_tool.py")
}

// ---------------------------------------------------------------------------------------------
// Running the tools
// ---------------------------------------------------------------------------------------------

/// An external program and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
enum Tool {
    Python,
    TransmissionShow,
    TransmissionCreate,
    Mktorrent,
    Shoal,
}

impl Tool {
    fn program(self) -> PathBuf {
        match self {
            Tool::Python => PathBuf::from("/usr/bin/python3"),
            Tool::TransmissionShow => PathBuf::from("transmission-show"),
            Tool::TransmissionCreate => PathBuf::from("transmission-create"),
            Tool::Mktorrent => PathBuf::from("mktorrent"),
            Tool::Shoal => shoal_bin(),
        }
    }

    fn package(self) -> &'static str {
        match self {
            Tool::Python => "python3-libtorrent",
            Tool::TransmissionShow | Tool::TransmissionCreate => "transmission-cli",
            Tool::Mktorrent => "mktorrent",
            Tool::Shoal => "(built by cargo)",
        }
    }
}

/// Runs `tool ARGS` in `dir` with a time limit; returns stdout. Fails the test if the program
/// is missing (naming its Debian package), times out, or exits unsuccessfully.
fn run(tool: Tool, dir: &Path, args: &[&str]) -> String {
    let program = tool.program();
    let shown = format!("{} {args:?}", program.display());
    let mut child = match Command::new(&program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{} not found: install the Debian package {} (the interop tests need it and do \
             not skip without it)",
            program.display(),
            tool.package()
        ),
        Err(e) => panic!("cannot start {shown}: {e}"),
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {COMMAND_TIMEOUT:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().expect("stderr reader")).into_owned();
    assert!(
        status.success(),
        "{shown} failed ({status}); if a tool is missing, install the Debian package {}\n\
         stdout:\n{stdout}\nstderr:\n{stderr}",
        tool.package()
    );
    stdout
}

fn parse_json(text: &str, what: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what} did not print JSON ({e}):\n{text}"))
}

/// `lt_tool.py ARGS` as JSON.
fn lt(dir: &Path, args: &[&str]) -> Value {
    let script = lt_tool();
    let mut full = vec![path_str(&script)];
    full.extend_from_slice(args);
    let out = run(Tool::Python, dir, &full);
    parse_json(&out, &format!("lt_tool.py {args:?}"))
}

/// libtorrent's `torrent_info` of a .torrent file.
fn lt_info(dir: &Path, torrent: &Path) -> Value {
    lt(dir, &["info", path_str(torrent)])
}

/// `shoal show --json FILE`.
fn shoal_show(dir: &Path, torrent: &Path) -> Value {
    let out = run(Tool::Shoal, dir, &["show", "--json", path_str(torrent)]);
    parse_json(&out, "shoal show --json")
}

/// The value of the `label` line in `shoal create`'s text output.
fn create_field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

/// What `transmission-show -u` says about a torrent (it prints sizes only rounded).
#[derive(Debug)]
struct TransmissionView {
    info_hash: String,
    piece_count: u64,
    /// File paths in the torrent's order.
    paths: Vec<String>,
}

fn transmission_show(dir: &Path, torrent: &Path) -> TransmissionView {
    let out = run(Tool::TransmissionShow, dir, &["-u", path_str(torrent)]);
    let general = |label: &str| {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label:?} in transmission-show output:\n{out}"))
    };
    let info_hash = general("Hash:");
    let piece_count = general("Piece Count:")
        .parse()
        .unwrap_or_else(|e| panic!("bad Piece Count ({e}) in:\n{out}"));
    let files = out
        .split_once("\nFILES\n")
        .unwrap_or_else(|| panic!("no FILES section in transmission-show output:\n{out}"))
        .1;
    let paths = files
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.strip_prefix("  ").unwrap_or(l);
            let (path, _size) = l
                .rsplit_once(" (")
                .unwrap_or_else(|| panic!("unexpected file line {l:?} in:\n{out}"));
            path.to_owned()
        })
        .collect();
    TransmissionView {
        info_hash,
        piece_count,
        paths,
    }
}

// ---------------------------------------------------------------------------------------------
// JSON views
// ---------------------------------------------------------------------------------------------

/// `(path, size)` of every file in a `shoal show --json` object.
fn shoal_files(show: &Value) -> Vec<(String, u64)> {
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
fn lt_data_files(info: &Value) -> Vec<(String, u64)> {
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

fn lt_pad_count(info: &Value) -> usize {
    info["files"]
        .as_array()
        .expect("lt info has files")
        .iter()
        .filter(|f| f["pad"].as_bool().expect("pad flag"))
        .count()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Asserts shoal's reading of a torrent agrees with libtorrent's (v1 hash, sizes, pieces,
/// data files in order).
fn assert_shoal_matches_lt(case: &str, show: &Value, lt: &Value) {
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

// ---------------------------------------------------------------------------------------------
// Pseudo-random file trees
// ---------------------------------------------------------------------------------------------

/// splitmix64: a tiny seeded generator for tree shapes and sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Top-level names: spaces and non-ASCII included on purpose.
const ROOT_NAMES: [&str; 5] = [
    "shoal tree",
    "Größe ñandú",
    "日本語 データ",
    "plain",
    "mixed-Ünï code",
];
const DIR_NAMES: [&str; 6] = ["sub", "deep dir", "ä", "数据", "x y z", "Ωmega"];
const FILE_WORDS: [&str; 5] = ["file", "tëst", "räksmörgås", "ファイル", "a b"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One file (a single-file torrent), its size not a multiple of the piece length.
    SingleFile,
    /// Files spread over directories several levels deep.
    Nested,
    /// A tree with empty files, at the top and deep down.
    WithEmptyFiles,
    /// Every size a little more or less than a multiple of the piece length.
    Unaligned,
}

const KINDS: [Kind; 4] = [
    Kind::SingleFile,
    Kind::Nested,
    Kind::WithEmptyFiles,
    Kind::Unaligned,
];

/// A file tree written under `parent`: `source` is the file or directory to share.
#[derive(Debug)]
struct Tree {
    source: PathBuf,
    /// The torrent name (file or directory name).
    name: String,
    /// `(path, size)` starting with `name`, as torrents list them.
    files: Vec<(String, u64)>,
    piece_length: u64,
    /// Describes the case in assertion messages.
    case: String,
}

impl Tree {
    fn source_str(&self) -> &str {
        path_str(&self.source)
    }
}

/// A size not a multiple of `piece`: `k * piece ± r` with `0 < r < piece`.
fn unaligned_size(rng: &mut Rng, piece: u64) -> u64 {
    let k = rng.range(1, 4);
    let r = rng.range(1, piece - 1);
    if rng.next() % 2 == 0 {
        k * piece + r
    } else {
        k * piece - r
    }
}

/// Writes a tree of `kind` from `seed` under `parent`.
fn make_tree(parent: &Path, kind: Kind, seed: u64, tool: &str) -> Tree {
    let mut rng = Rng(seed ^ (kind as u64).wrapping_mul(0x1000_0000_0001));
    let piece_length = 1 << rng.range(14, 16); // 16, 32 or 64 KiB
    let name = format!("{} {seed:x}", rng.pick(&ROOT_NAMES));
    let mut files: Vec<(String, u64)> = Vec::new();
    match kind {
        Kind::SingleFile => {
            let name = format!("{name}.bin");
            files.push((name, unaligned_size(&mut rng, piece_length)));
        }
        Kind::Nested | Kind::WithEmptyFiles | Kind::Unaligned => {
            let count = rng.range(4, 9);
            for i in 0..count {
                let depth = match kind {
                    Kind::Nested => rng.range(0, 4),
                    _ => rng.range(0, 2),
                };
                let mut path = name.clone();
                for _ in 0..depth {
                    path.push('/');
                    path.push_str(rng.pick(&DIR_NAMES));
                }
                // The index keeps paths unique; the extension keeps files and dirs apart.
                path.push_str(&format!("/{i:02} {}.bin", rng.pick(&FILE_WORDS)));
                let size = match kind {
                    Kind::Unaligned => unaligned_size(&mut rng, piece_length),
                    Kind::WithEmptyFiles if i % 3 == 0 => 0,
                    _ => rng.range(1, 3 * piece_length),
                };
                files.push((path, size));
            }
            if kind == Kind::WithEmptyFiles {
                files.push((format!("{name}/empty at top.bin"), 0));
                files.push((
                    format!("{name}/{}/{}/empty deep.bin", DIR_NAMES[1], DIR_NAMES[3]),
                    0,
                ));
                files.push((format!("{name}/only/empty.bin"), 0));
            }
        }
    }
    assert!(files.iter().any(|(_, s)| *s > 0), "trees are never empty");
    if kind == Kind::Unaligned || kind == Kind::SingleFile {
        assert!(files.iter().all(|(_, s)| s % piece_length != 0));
    }
    let refs: Vec<(&str, usize)> = files
        .iter()
        .map(|(p, s)| (p.as_str(), usize::try_from(*s).expect("small sizes")))
        .collect();
    write_tree(parent, &refs, seed);
    let root = files[0].0.split('/').next().expect("a path").to_owned();
    Tree {
        source: parent.join(&root),
        name: root,
        files,
        piece_length,
        case: format!("{tool}, {kind:?} tree, seed {seed:#x}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Torrents made by shoal, read by libtorrent and Transmission
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Torrents made by other tools, read by shoal
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Magnet links
// ---------------------------------------------------------------------------------------------

/// A name with spaces and non-ASCII characters, as the issue asks.
const MAGNET_NAME: &str = "Ünïcödé & spaces — 日本 #1+2";
/// Trackers, one with a query string.
const MAGNET_TRACKERS: [&str; 2] = [
    "http://tracker.example:6969/announce?passkey=a1b2&uid=7",
    "udp://tracker.example:1337/announce",
];

/// A small tree named [`MAGNET_NAME`] (a directory, or a single file), in `dir`.
fn magnet_source(dir: &Path, single: bool, seed: u64) -> PathBuf {
    if single {
        write_tree(dir, &[(MAGNET_NAME, 40_000)], seed);
    } else {
        let a = format!("{MAGNET_NAME}/a file.bin");
        let b = format!("{MAGNET_NAME}/sub dir/b ü.bin");
        write_tree(dir, &[(a.as_str(), 33_333), (b.as_str(), 1_234)], seed);
    }
    dir.join(MAGNET_NAME)
}

#[test]
fn shoal_magnets_parse_in_libtorrent() {
    for (single, &seed) in [true, false].into_iter().zip(&SEEDS) {
        let case = format!("shoal magnet, single file {single}, seed {seed:#x}");
        let dir = tempfile::tempdir().expect("temp dir");
        let source = magnet_source(dir.path(), single, seed);
        let torrent = dir.path().join("magnet test.torrent");
        let mut args = vec![
            "create",
            path_str(&source),
            "-o",
            path_str(&torrent),
            "--piece-length",
            "16384",
        ];
        for t in MAGNET_TRACKERS {
            args.extend(["--tracker", t]);
        }
        let out = run(Tool::Shoal, dir.path(), &args);
        let info_hash = create_field(&out, "info-hash").to_owned();
        let created_magnet = create_field(&out, "magnet").to_owned();
        let magnet = run(Tool::Shoal, dir.path(), &["magnet", path_str(&torrent)])
            .trim()
            .to_owned();
        assert_eq!(magnet, created_magnet, "{case}: create and magnet agree");

        let parsed = lt(dir.path(), &["magnet-parse", &magnet]);
        assert_eq!(parsed["info_hash_v1"], info_hash, "{case}: {magnet}");
        assert_eq!(parsed["name"], MAGNET_NAME, "{case}: {magnet}");
        assert_eq!(
            parsed["trackers"],
            serde_json::json!(MAGNET_TRACKERS),
            "{case}: {magnet}"
        );
        // And libtorrent's own magnet for the torrent names the same content.
        let lt_magnet = lt(dir.path(), &["make-magnet", path_str(&torrent)]);
        let lt_parsed = lt(
            dir.path(),
            &[
                "magnet-parse",
                lt_magnet["magnet"].as_str().expect("magnet"),
            ],
        );
        assert_eq!(lt_parsed["info_hash_v1"], info_hash, "{case}: {lt_magnet}");
        assert_eq!(lt_parsed["name"], parsed["name"], "{case}: {lt_magnet}");
        assert_eq!(
            lt_parsed["trackers"], parsed["trackers"],
            "{case}: {lt_magnet}"
        );
    }
}

#[test]
fn libtorrent_magnets_parse_in_shoal() {
    let cases = [(true, true), (false, true), (true, false), (false, false)];
    for ((single, v1_only), &seed) in cases.into_iter().zip(SEEDS.iter().cycle()) {
        let case =
            format!("libtorrent magnet, single file {single}, v1 only {v1_only}, seed {seed:#x}");
        let dir = tempfile::tempdir().expect("temp dir");
        let source = magnet_source(dir.path(), single, seed);
        let torrent = dir.path().join("magnet test.torrent");
        let mut args = vec![
            "create",
            path_str(&source),
            path_str(&torrent),
            "--piece-length",
            "16384",
        ];
        if v1_only {
            args.push("--v1-only");
        }
        for t in MAGNET_TRACKERS {
            args.extend(["--tracker", t]);
        }
        let info = lt(dir.path(), &args);
        let v1 = info["info_hash_v1"]
            .as_str()
            .expect("a v1 info-hash")
            .to_owned();
        assert_eq!(
            info["trackers"],
            serde_json::json!(MAGNET_TRACKERS),
            "{case}"
        );

        let magnet = lt(dir.path(), &["make-magnet", path_str(&torrent)])["magnet"]
            .as_str()
            .expect("magnet")
            .to_owned();
        let out = run(
            Tool::Shoal,
            dir.path(),
            &["magnet", "--parse", &magnet, "--json"],
        );
        let parsed = parse_json(&out, "shoal magnet --parse --json");
        assert_eq!(parsed["info_hash"], v1, "{case}: {magnet}");
        assert_eq!(parsed["name"], MAGNET_NAME, "{case}: {magnet}");
        assert_eq!(parsed["name"], info["name"], "{case}: {magnet}");
        assert_eq!(
            parsed["trackers"],
            serde_json::json!(MAGNET_TRACKERS),
            "{case}: {magnet}"
        );
        // libtorrent reads its own link the same way.
        let lt_parsed = lt(dir.path(), &["magnet-parse", &magnet]);
        assert_eq!(lt_parsed["info_hash_v1"], v1, "{case}: {magnet}");
        assert_eq!(lt_parsed["name"], parsed["name"], "{case}: {magnet}");
        assert_eq!(
            lt_parsed["trackers"], parsed["trackers"],
            "{case}: {magnet}"
        );

        // And shoal's reading of the .torrent gives the same link data.
        let show = shoal_show(dir.path(), &torrent);
        assert_eq!(show["info_hash"], v1, "{case}");
    }
}
