//! Pseudo-random file trees, derived from fixed seeds so that a failure can be reproduced.

use std::path::{Path, PathBuf};

use crate::support::write_tree;
use crate::tools::path_str;

/// Seeds of the pseudo-random file trees; each kind of tree is tested with every seed.
pub const SEEDS: [u64; 3] = [0x5eed_0001, 0x0bad_cafe, 0x2024_1127];

/// splitmix64: a tiny seeded generator for tree shapes and sizes.
pub struct Rng(u64);

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
pub const ROOT_NAMES: [&str; 5] = [
    "shoal tree",
    "Größe ñandú",
    "日本語 データ",
    "plain",
    "mixed-Ünï code",
];
pub const DIR_NAMES: [&str; 6] = ["sub", "deep dir", "ä", "数据", "x y z", "Ωmega"];
pub const FILE_WORDS: [&str; 5] = ["file", "tëst", "räksmörgås", "ファイル", "a b"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One file (a single-file torrent), its size not a multiple of the piece length.
    SingleFile,
    /// Files spread over directories several levels deep.
    Nested,
    /// A tree with empty files, at the top and deep down.
    WithEmptyFiles,
    /// Every size a little more or less than a multiple of the piece length.
    Unaligned,
}

pub const KINDS: [Kind; 4] = [
    Kind::SingleFile,
    Kind::Nested,
    Kind::WithEmptyFiles,
    Kind::Unaligned,
];

/// A file tree written under `parent`: `source` is the file or directory to share.
#[derive(Debug)]
pub struct Tree {
    pub source: PathBuf,
    /// The torrent name (file or directory name).
    pub name: String,
    /// `(path, size)` starting with `name`, as torrents list them.
    pub files: Vec<(String, u64)>,
    pub piece_length: u64,
    /// Describes the case in assertion messages.
    pub case: String,
}

impl Tree {
    pub fn source_str(&self) -> &str {
        path_str(&self.source)
    }
}

/// A size not a multiple of `piece`: `k * piece ± r` with `0 < r < piece`.
pub fn unaligned_size(rng: &mut Rng, piece: u64) -> u64 {
    let k = rng.range(1, 4);
    let r = rng.range(1, piece - 1);
    if rng.next() % 2 == 0 {
        k * piece + r
    } else {
        k * piece - r
    }
}

/// Writes a tree of `kind` from `seed` under `parent`.
pub fn make_tree(parent: &Path, kind: Kind, seed: u64, tool: &str) -> Tree {
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
