//! Where the piece space lands on disk: checked paths, and the files a byte range covers.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use shoal_metainfo::Info;

use crate::error::StorageError;

/// What an entry of `Info::files` is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A regular file at this absolute path (below the download directory).
    Data(PathBuf),
    /// BEP 47 padding: zeros that are never stored.
    Pad,
    /// A BEP 47 symbolic link: no data, and never created (see the crate docs).
    Link,
}

#[derive(Debug, Clone)]
pub(crate) struct LayoutFile {
    /// Start in the piece space.
    pub offset: u64,
    pub length: u64,
    pub kind: FileKind,
}

impl LayoutFile {
    pub fn data_path(&self) -> Option<&Path> {
        match &self.kind {
            FileKind::Data(path) => Some(path),
            FileKind::Pad | FileKind::Link => None,
        }
    }
}

/// A contiguous run of a byte range that lies in one file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// Index into `Layout::files`.
    pub file: usize,
    /// Offset inside that file.
    pub file_offset: u64,
    /// Offset inside the caller's buffer.
    pub buf_offset: usize,
    pub len: usize,
}

/// The torrent's files, in piece-space order, with their checked locations.
#[derive(Debug)]
pub(crate) struct Layout {
    pub root: PathBuf,
    pub files: Vec<LayoutFile>,
}

impl Layout {
    /// Checks every path of `info` and places it under `root` (an absolute, canonical path).
    pub fn new(root: PathBuf, info: &Info) -> Result<Self, StorageError> {
        let mut files = Vec::with_capacity(info.files.len());
        for entry in &info.files {
            let kind = if entry.is_pad() {
                FileKind::Pad
            } else if entry.attr.symlink.is_some() {
                FileKind::Link
            } else {
                let relative = checked_relative(&entry.path)?;
                let path = root.join(relative);
                // Holds by construction (plain components only); asserted as defence in depth.
                if !path.starts_with(&root) || path == root {
                    return Err(StorageError::UnsafePath {
                        path: entry.path.clone(),
                        reason: "leaves the download directory",
                    });
                }
                FileKind::Data(path)
            };
            files.push(LayoutFile {
                offset: entry.offset,
                length: entry.length,
                kind,
            });
        }
        Ok(Self { root, files })
    }

    /// Calls `f` for each piece of `offset..offset + len` in file order. Zero-length files are
    /// skipped; pad and link entries are passed on (the caller decides what zeros mean).
    pub fn for_each_span<E>(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(Span) -> Result<(), E>,
    ) -> Result<(), E> {
        let end = offset + len as u64;
        let first = self
            .files
            .partition_point(|file| file.offset + file.length <= offset);
        for (index, file) in self.files.iter().enumerate().skip(first) {
            if file.offset >= end {
                break;
            }
            if file.length == 0 {
                continue;
            }
            let start = offset.max(file.offset);
            let stop = end.min(file.offset + file.length);
            f(Span {
                file: index,
                file_offset: start - file.offset,
                buf_offset: (start - offset) as usize,
                len: (stop - start) as usize,
            })?;
        }
        Ok(())
    }

    /// Indices of the data files that hold bytes of `offset..offset + len`.
    pub fn data_files_in(&self, offset: u64, len: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let _ = self.for_each_span(offset, len, |span| {
            if self.files[span.file].data_path().is_some() {
                out.push(span.file);
            }
            Ok::<(), ()>(())
        });
        out
    }

    /// Creates the directory holding `path` (below `root`), refusing symbolic links on the
    /// way. `known` remembers directories already checked.
    pub fn create_parent(
        &self,
        path: &Path,
        known: &mut HashSet<PathBuf>,
    ) -> Result<(), StorageError> {
        let Some(parent) = path.parent() else {
            return Ok(());
        };
        let Ok(relative) = parent.strip_prefix(&self.root) else {
            return Err(StorageError::UnsafePath {
                path: path.display().to_string(),
                reason: "leaves the download directory",
            });
        };
        let mut current = self.root.clone();
        for component in relative.components() {
            current.push(component);
            if known.contains(&current) {
                continue;
            }
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(StorageError::Symlink { path: current });
                }
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(StorageError::WrongFileType {
                        path: current,
                        expected: "directory",
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&current) {
                    Ok(()) => {}
                    // Another process made it meanwhile: check it again next time round.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let meta = fs::symlink_metadata(&current)
                            .map_err(|e| StorageError::io(&current, "inspect", e))?;
                        if !meta.is_dir() {
                            return Err(StorageError::WrongFileType {
                                path: current,
                                expected: "directory",
                            });
                        }
                    }
                    Err(e) => return Err(StorageError::io(&current, "create directory", e)),
                },
                Err(e) => return Err(StorageError::io(&current, "inspect", e)),
            }
            known.insert(current.clone());
        }
        Ok(())
    }
}

/// The relative path of a torrent file, after checking that every component is a plain name.
fn checked_relative(path: &str) -> Result<PathBuf, StorageError> {
    let unsafe_path = |reason| StorageError::UnsafePath {
        path: path.to_owned(),
        reason,
    };
    let mut out = PathBuf::new();
    for component in path.split('/') {
        if component.is_empty() {
            return Err(unsafe_path("empty component"));
        }
        if component == "." || component == ".." {
            return Err(unsafe_path("`.` or `..` component"));
        }
        if component.contains('\0') {
            return Err(unsafe_path("NUL byte"));
        }
        out.push(component);
    }
    if !out.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(unsafe_path("not a plain relative path"));
    }
    Ok(out)
}

/// Opens a torrent file for reading and writing without following a symbolic link at `path`
/// (`O_NOFOLLOW`: a link there fails with `ELOOP`, reported as [`StorageError::Symlink`]), and
/// refuses anything but a regular file (a FIFO or a device node planted there).
pub(crate) fn open_data_file(path: &Path, create: bool) -> Result<File, StorageError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| StorageError::io(path, "open", e))?;
    check_regular(path, &file)?;
    Ok(file)
}

/// Opens a torrent file read-only, with the same checks as [`open_data_file`].
pub(crate) fn open_data_file_read(path: &Path) -> Result<File, StorageError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| StorageError::io(path, "open", e))?;
    check_regular(path, &file)?;
    Ok(file)
}

fn check_regular(path: &Path, file: &File) -> Result<(), StorageError> {
    let meta = file
        .metadata()
        .map_err(|e| StorageError::io(path, "inspect", e))?;
    if !meta.is_file() {
        return Err(StorageError::WrongFileType {
            path: path.to_owned(),
            expected: "regular file",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unsafe_components() {
        for bad in ["", "a//b", "a/../b", "./a", "..", "a/\0", "a/"] {
            assert!(checked_relative(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            checked_relative("t/a b/c.txt").unwrap(),
            PathBuf::from("t/a b/c.txt")
        );
    }
}
