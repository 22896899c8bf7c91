//! Hybrid v1+v2 torrents (BEP 52 §"upgrade path"): shoal uses the v1 part, after checking
//! that the v2 `file tree` describes the same files, so both halves name the same content.

use crate::bencode::Node;
use crate::error::MetainfoError;

use super::files::{MAX_FILES, RawFile};

/// One file of the v2 tree: path components as written, and length.
struct TreeFile<'a> {
    path: Vec<&'a [u8]>,
    length: u64,
}

fn tree_error(reason: impl Into<String>) -> MetainfoError {
    MetainfoError::InvalidFileTree {
        reason: reason.into(),
    }
}

fn mismatch(reason: impl Into<String>) -> MetainfoError {
    MetainfoError::HybridMismatch {
        reason: reason.into(),
    }
}

fn show(path: &[&[u8]]) -> String {
    path.iter()
        .map(|p| String::from_utf8_lossy(p))
        .collect::<Vec<_>>()
        .join("/")
}

/// Walks the v2 file tree in order. Recursion depth is bounded by the decoder's depth limit.
fn walk<'a>(
    node: Node<'_, 'a>,
    prefix: &mut Vec<&'a [u8]>,
    out: &mut Vec<TreeFile<'a>>,
) -> Result<(), MetainfoError> {
    let entries = node
        .as_dict()
        .ok_or_else(|| tree_error(format!("{} is not a dictionary", show(prefix))))?;
    for (key, child) in entries {
        if key.is_empty() {
            // The file's own entry: {"": {length, pieces root, attr}} directly under its name.
            if prefix.is_empty() || node.as_dict().map_or(0, |e| e.count()) != 1 {
                return Err(tree_error(format!(
                    "misplaced file entry at '{}'",
                    show(prefix)
                )));
            }
            let is_link = child
                .get(b"attr")
                .and_then(|a| a.as_bytes())
                .is_some_and(|a| a.contains(&b'l'));
            let length = match child.get(b"length").and_then(|l| l.as_int()) {
                Some(l) => u64::try_from(l)
                    .map_err(|_| tree_error(format!("{} has a negative length", show(prefix))))?,
                None if is_link => 0,
                None => return Err(tree_error(format!("{} has no length", show(prefix)))),
            };
            if out.len() >= MAX_FILES {
                return Err(MetainfoError::TooManyFiles {
                    count: out.len() + 1,
                    limit: MAX_FILES,
                });
            }
            out.push(TreeFile {
                path: prefix.clone(),
                length,
            });
            continue;
        }
        prefix.push(key);
        walk(child, prefix, out)?;
        prefix.pop();
    }
    Ok(())
}

/// Checks a hybrid torrent: same files in the same order with the same lengths, and every
/// non-empty v1 file starting on a piece boundary (as the v2 layout requires).
pub(crate) fn check(
    info: Node<'_, '_>,
    raw_name: &[u8],
    piece_length: u64,
    v1_files: &[RawFile<'_>],
    single_length: Option<u64>,
) -> Result<(), MetainfoError> {
    let tree = info
        .get(b"file tree")
        .ok_or_else(|| tree_error("missing"))?;
    let mut v2 = Vec::new();
    walk(tree, &mut Vec::new(), &mut v2)?;

    let single;
    let v1: Vec<&RawFile<'_>> = match single_length {
        Some(length) => {
            single = RawFile {
                path: vec![raw_name],
                length,
                pad: false,
            };
            vec![&single]
        }
        None => v1_files.iter().collect(),
    };
    let mut offset = 0u64;
    let mut real = Vec::new();
    for file in &v1 {
        if !file.pad {
            if file.length > 0 && offset % piece_length != 0 {
                return Err(mismatch(format!(
                    "v1 file {} does not start on a piece boundary",
                    show(&file.path)
                )));
            }
            real.push(*file);
        }
        offset = offset.saturating_add(file.length);
    }
    if real.len() != v2.len() {
        return Err(mismatch(format!(
            "v1 lists {} files, v2 lists {}",
            real.len(),
            v2.len()
        )));
    }
    for (a, b) in real.iter().zip(&v2) {
        if a.path != b.path {
            return Err(mismatch(format!(
                "v1 has {} where v2 has {}",
                show(&a.path),
                show(&b.path)
            )));
        }
        if a.length != b.length {
            return Err(mismatch(format!(
                "{} is {} bytes in v1 and {} in v2",
                show(&a.path),
                a.length,
                b.length
            )));
        }
    }
    Ok(())
}
