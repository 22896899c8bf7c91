//! The file list of a v1 info dictionary: single-file (`length`) or multi-file (`files`).

use std::path::PathBuf;

use crate::bencode::Node;
use crate::error::MetainfoError;
use crate::path::{UniquePaths, sanitize_component, sanitize_components};

/// Most entries accepted in `info.files`. A real entry costs about six bencode values, so this
/// stays within the decoder's value limit (`DecodeLimits::max_values`, 4 million by default): a torrent of this many files
/// is accepted, and one with more is refused by this limit, with its own error.
pub const MAX_FILES: usize = 500_000;

/// BEP 47 file attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttr {
    /// A pad file (`p`): zeros that align the next file to a piece; never written to disk.
    pub pad: bool,
    /// `x`: the file should be executable.
    pub executable: bool,
    /// `h`: the file should be hidden.
    pub hidden: bool,
    /// `l` with `symlink path`: a symbolic link to this path inside the torrent (sanitized,
    /// relative to the torrent's root, `/`-separated). A link has no data: its length counts
    /// as 0.
    pub symlink: Option<String>,
}

/// One file in the torrent's piece space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path below the download directory with `/` separators, starting with the torrent's
    /// name (`name/dir/file.txt`; a single-file torrent's one path is its name). Sanitized and
    /// unique: its components are plain names, safe to join onto a download directory.
    pub path: String,
    pub length: u64,
    /// Where the file starts in the torrent's concatenated piece space.
    pub offset: u64,
    pub attr: FileAttr,
}

impl FileEntry {
    /// The path's components (never empty, `.`, `..`, or containing a separator).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.path.split('/')
    }

    /// The path as a relative `PathBuf`.
    pub fn relative_path(&self) -> PathBuf {
        self.components().collect()
    }

    pub fn is_pad(&self) -> bool {
        self.attr.pad
    }
}

/// A file entry as written in the torrent, before sanitizing: what the hybrid check compares.
#[derive(Debug)]
pub(crate) struct RawFile<'a> {
    pub path: Vec<&'a [u8]>,
    pub length: u64,
    pub pad: bool,
}

/// The parsed file list: entries with sanitized paths, the raw form, and the total size.
pub(crate) struct FileList<'a> {
    pub entries: Vec<FileEntry>,
    pub raw: Vec<RawFile<'a>>,
    pub total_size: u64,
}

fn non_negative(node: Option<Node<'_, '_>>) -> Option<u64> {
    node?.as_int().and_then(|v| u64::try_from(v).ok())
}

/// Reads `length` (single file) or `files` (multi-file) from an info dictionary.
pub(crate) fn parse_files<'a>(
    info: Node<'_, 'a>,
    name: &str,
) -> Result<FileList<'a>, MetainfoError> {
    match (info.get(b"length"), info.get(b"files")) {
        (Some(_), Some(_)) => Err(MetainfoError::LengthAndFiles),
        (Some(length), None) => {
            let length =
                non_negative(Some(length)).ok_or_else(|| MetainfoError::InvalidLength {
                    field: "info.length".into(),
                })?;
            Ok(FileList {
                entries: vec![FileEntry {
                    path: name.to_owned(),
                    length,
                    offset: 0,
                    attr: FileAttr::default(),
                }],
                raw: Vec::new(),
                total_size: length,
            })
        }
        (None, Some(files)) => parse_multi(files, name),
        (None, None) => Err(MetainfoError::InvalidLength {
            field: "info.length (or info.files)".into(),
        }),
    }
}

fn parse_multi<'a>(files: Node<'_, 'a>, name: &str) -> Result<FileList<'a>, MetainfoError> {
    let list = files.as_list().ok_or(MetainfoError::NoFiles)?;
    let count = list.clone().count();
    if count == 0 {
        return Err(MetainfoError::NoFiles);
    }
    if count > MAX_FILES {
        return Err(MetainfoError::TooManyFiles {
            count,
            limit: MAX_FILES,
        });
    }
    let mut unique = UniquePaths::default();
    let mut out = FileList {
        entries: Vec::with_capacity(count),
        raw: Vec::with_capacity(count),
        total_size: 0,
    };
    for (index, file) in list.enumerate() {
        let (entry, raw) = parse_file(index, file, name, &mut unique, out.total_size)?;
        out.total_size = out
            .total_size
            .checked_add(entry.length)
            .ok_or(MetainfoError::TotalSizeOverflow)?;
        out.entries.push(entry);
        out.raw.push(raw);
    }
    Ok(out)
}

fn string_list<'a>(node: Node<'_, 'a>) -> Option<Vec<&'a [u8]>> {
    node.as_list()?.map(|n| n.as_bytes()).collect()
}

/// `path.utf-8` when it is usable, else `path`; `None` when the entry has neither.
fn raw_path<'a>(index: usize, file: Node<'_, 'a>) -> Result<Option<Vec<&'a [u8]>>, MetainfoError> {
    if let Some(path) = file.get(b"path.utf-8").and_then(string_list) {
        return Ok(Some(path));
    }
    file.get(b"path")
        .map(|p| {
            string_list(p)
                .ok_or_else(|| MetainfoError::file(index, "path is not a list of byte strings"))
        })
        .transpose()
}

fn parse_file<'a>(
    index: usize,
    file: Node<'_, 'a>,
    name: &str,
    unique: &mut UniquePaths,
    offset: u64,
) -> Result<(FileEntry, RawFile<'a>), MetainfoError> {
    if !file.is_dict() {
        return Err(MetainfoError::file(index, "not a dictionary"));
    }
    let flags = file
        .get(b"attr")
        .and_then(|a| a.as_bytes())
        .unwrap_or_default();
    let symlink = if flags.contains(&b'l') {
        file.get(b"symlink path")
            .and_then(string_list)
            .map(|target| sanitize_components(target).join("/"))
    } else {
        None
    };
    let raw_path = raw_path(index, file)?;
    // BitComet marked padding by name before BEP 47 had an attribute for it.
    let legacy_pad = raw_path
        .as_ref()
        .and_then(|p| p.last())
        .is_some_and(|last| last.starts_with(b"_____padding_file_"));
    let attr = FileAttr {
        pad: flags.contains(&b'p') || legacy_pad,
        executable: flags.contains(&b'x'),
        hidden: flags.contains(&b'h'),
        symlink,
    };
    // A link has no data of its own, whatever length it claims (or if it claims none).
    let length = match non_negative(file.get(b"length")) {
        _ if attr.symlink.is_some() => 0,
        Some(length) => length,
        None => {
            return Err(MetainfoError::file(
                index,
                "length is missing, negative or not an integer",
            ));
        }
    };
    let path = match (&raw_path, attr.pad) {
        (_, true) => {
            // Pad files are never written: any name will do, and they take none from real files.
            format!("{name}/.pad/{length}")
        }
        (Some(raw), false) => {
            let mut parts = vec![name.to_owned()];
            parts.extend(sanitize_components(raw.iter().copied()));
            unique.place(parts)
        }
        (None, false) => return Err(MetainfoError::file(index, "path is missing")),
    };
    let raw = RawFile {
        path: raw_path.unwrap_or_default(),
        length,
        pad: attr.pad,
    };
    Ok((
        FileEntry {
            path,
            length,
            offset,
            attr,
        },
        raw,
    ))
}

/// The torrent's name, sanitized; `None` when nothing usable is left of it (e.g. `..`).
pub(crate) fn sanitize_name(raw: &[u8]) -> Option<String> {
    sanitize_component(raw)
}
