//! What [`Storage::open`](crate::Storage::open) does before any block moves: look at the files
//! already there, decide which pieces the resume record vouches for and which to hash, and
//! create what is missing.

use std::fs;
use std::io;

use shoal_metainfo::PieceGeometry;

use crate::error::StorageError;
use crate::layout::{Layout, open_data_file};
use crate::piece_set::PieceSet;
use crate::resume::{FileStat, Resume};

pub(crate) fn piece_len(geometry: PieceGeometry, piece: u32) -> usize {
    geometry.piece_size(piece).unwrap_or(0) as usize
}

/// Size and mtime of every data file that exists (`None`: missing). Refuses links and
/// non-files at a file's place before anything reads them.
pub(crate) fn stat_existing(layout: &Layout) -> Result<Vec<Option<FileStat>>, StorageError> {
    layout
        .files
        .iter()
        .map(|file| {
            let Some(path) = file.data_path() else {
                return Ok(None);
            };
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => Err(StorageError::Symlink {
                    path: path.to_owned(),
                }),
                Ok(meta) if !meta.is_file() => Err(StorageError::WrongFileType {
                    path: path.to_owned(),
                    expected: "regular file",
                }),
                Ok(meta) => Ok(Some(FileStat::of(&meta))),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(StorageError::io(path, "inspect", e)),
            }
        })
        .collect()
}

/// Creates directories and (sparse) files, extending short files to their length; longer
/// files are left as they are (never truncated: that could destroy data that is not ours).
/// Returns every entry's stat afterwards (zeros for pad files and links).
pub(crate) fn create_files(layout: &Layout) -> Result<Vec<FileStat>, StorageError> {
    let mut known = std::collections::HashSet::new();
    let mut stats = Vec::with_capacity(layout.files.len());
    for file in &layout.files {
        let Some(path) = file.data_path() else {
            stats.push(FileStat::default());
            continue;
        };
        layout.create_parent(path, &mut known)?;
        let handle = open_data_file(path, true)?;
        let mut meta = handle
            .metadata()
            .map_err(|e| StorageError::io(path, "inspect", e))?;
        if meta.len() < file.length {
            handle
                .set_len(file.length)
                .map_err(|e| StorageError::io(path, "extend (set_len)", e))?;
            meta = handle
                .metadata()
                .map_err(|e| StorageError::io(path, "inspect", e))?;
        }
        stats.push(FileStat::of(&meta));
    }
    Ok(stats)
}

/// Which pieces to trust from the resume record and which to read and hash.
pub(crate) struct RecheckPlan {
    pub trusted: PieceSet,
    pub candidates: PieceSet,
    pub changed_files: usize,
}

pub(crate) fn plan_recheck(
    layout: &Layout,
    geometry: PieceGeometry,
    before: &[Option<FileStat>],
    resume: Option<&Resume>,
    unclean: bool,
) -> RecheckPlan {
    let n = geometry.num_pieces();
    let mut trusted = PieceSet::new(n);
    let mut candidates = PieceSet::new(n);
    let mut changed_files = 0;
    match resume {
        None => candidates = PieceSet::full(n),
        Some(resume) => {
            let mut touches_changed = PieceSet::new(n);
            for (index, file) in layout.files.iter().enumerate() {
                if file.data_path().is_none() || before[index] == Some(resume.files[index]) {
                    continue;
                }
                changed_files += 1;
                if file.length == 0 {
                    continue;
                }
                let first = file.offset / geometry.piece_length();
                let last = (file.offset + file.length - 1) / geometry.piece_length();
                for piece in first..=last {
                    touches_changed.insert(piece as u32);
                }
            }
            for piece in 0..n {
                if touches_changed.contains(piece) || (unclean && !resume.have.contains(piece)) {
                    candidates.insert(piece);
                } else if resume.have.contains(piece) {
                    trusted.insert(piece);
                }
            }
        }
    }
    // A piece can only verify if all of its bytes were on disk before this open.
    for piece in 0..n {
        if !candidates.contains(piece) {
            continue;
        }
        let (start, size) = (geometry.piece_offset(piece), piece_len(geometry, piece));
        let present = layout.for_each_span(start, size, |span| {
            let file = &layout.files[span.file];
            let needed = span.file_offset + span.len as u64;
            match (file.data_path(), before[span.file]) {
                (None, _) => Ok(()),
                (Some(_), Some(stat)) if stat.len >= needed => Ok(()),
                _ => Err(()),
            }
        });
        if present.is_err() {
            candidates.remove(piece);
        }
    }
    RecheckPlan {
        trusted,
        candidates,
        changed_files,
    }
}
