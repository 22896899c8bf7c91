//! Finding the files a new torrent covers: one file, or a directory tree in sorted order.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::MetainfoError;

/// Deepest directory nesting followed when scanning.
const MAX_SCAN_DEPTH: usize = 256;

/// One file to hash.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Where to read it.
    pub disk_path: PathBuf,
    /// Path components below the torrent's root, as raw bytes.
    pub components: Vec<Vec<u8>>,
    pub length: u64,
    /// Offset in the torrent's piece space.
    pub offset: u64,
}

/// What a torrent will be made of.
#[derive(Debug)]
pub(crate) struct Source {
    pub name: Vec<u8>,
    /// A single file (`length`), rather than a directory (`files`).
    pub single: bool,
    pub files: Vec<SourceFile>,
    pub total_size: u64,
}

fn invalid(path: &Path, reason: impl Into<String>) -> MetainfoError {
    MetainfoError::InvalidSource {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl Source {
    pub fn scan(path: &Path) -> Result<Source, MetainfoError> {
        let meta = fs::metadata(path).map_err(|e| MetainfoError::io(path, e))?;
        // `shoal create .` names the torrent after the directory, not after ".".
        let absolute = path
            .canonicalize()
            .map_err(|e| MetainfoError::io(path, e))?;
        let name = path
            .file_name()
            .or_else(|| absolute.file_name())
            .map(|n| n.as_bytes().to_vec())
            .ok_or_else(|| invalid(path, "has no file name to use as the torrent's name"))?;
        let mut files = Vec::new();
        let single = meta.is_file();
        if single {
            files.push(SourceFile {
                disk_path: path.to_owned(),
                components: Vec::new(),
                length: meta.len(),
                offset: 0,
            });
        } else if meta.is_dir() {
            let mut ancestors = vec![(meta.dev(), meta.ino())];
            walk(path, &mut Vec::new(), &mut ancestors, &mut files)?;
            files.sort_by(|a, b| a.components.cmp(&b.components));
            if files.is_empty() {
                return Err(invalid(path, "directory holds no files"));
            }
        } else {
            return Err(invalid(path, "is neither a regular file nor a directory"));
        }
        let mut total_size = 0u64;
        for file in &mut files {
            file.offset = total_size;
            total_size = total_size
                .checked_add(file.length)
                .ok_or(MetainfoError::TotalSizeOverflow)?;
        }
        if total_size == 0 {
            return Err(invalid(
                path,
                "holds no data (0 bytes): a torrent needs at least one byte, as in libtorrent",
            ));
        }
        Ok(Source {
            name,
            single,
            files,
            total_size,
        })
    }
}

/// Walks `dir`, following symbolic links (as mktorrent and transmission-create do) but
/// refusing a link back to one of its own ancestors.
fn walk(
    dir: &Path,
    prefix: &mut Vec<Vec<u8>>,
    ancestors: &mut Vec<(u64, u64)>,
    out: &mut Vec<SourceFile>,
) -> Result<(), MetainfoError> {
    if ancestors.len() > MAX_SCAN_DEPTH {
        return Err(invalid(
            dir,
            format!("nested deeper than {MAX_SCAN_DEPTH} directories"),
        ));
    }
    let entries = fs::read_dir(dir).map_err(|e| MetainfoError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| MetainfoError::io(dir, e))?;
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(|e| MetainfoError::io(&path, e))?;
        prefix.push(entry.file_name().as_bytes().to_vec());
        if meta.is_file() {
            if out.len() >= crate::torrent::MAX_FILES {
                return Err(invalid(dir, "holds more files than a torrent may list"));
            }
            out.push(SourceFile {
                disk_path: path,
                components: prefix.clone(),
                length: meta.len(),
                offset: 0,
            });
        } else if meta.is_dir() {
            let id = (meta.dev(), meta.ino());
            if ancestors.contains(&id) {
                return Err(invalid(
                    &path,
                    "is a link back to a directory that contains it",
                ));
            }
            ancestors.push(id);
            walk(&path, prefix, ancestors, out)?;
            ancestors.pop();
        } else {
            return Err(invalid(
                &path,
                "is not a regular file or directory (device, socket or pipe)",
            ));
        }
        prefix.pop();
    }
    Ok(())
}
