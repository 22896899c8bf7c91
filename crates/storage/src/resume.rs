//! The resume file: which pieces were verified *and synced*, for which data, as of when.
//!
//! Format version 1, little-endian, fixed size for a given torrent:
//!
//! ```text
//! offset  size            field
//! 0       8               magic "SHOALRES"
//! 8       4               version (1)
//! 12      20              info-hash
//! 32      8               piece length
//! 40      8               total size
//! 48      4               piece count (P)
//! 52      4               file count (F): every entry of info.files, pad files included
//! 56      F * 20          per file: size u64, mtime seconds i64, mtime nanoseconds u32
//!                         (all zero for pad and link entries)
//! ..      ceil(P / 8)     verified pieces, BitTorrent bit order, spare bits zero
//! ..      20              SHA-1 of every byte before it
//! ```
//!
//! The expected length follows from the torrent alone, so a file of any other length is
//! refused before anything is allocated for it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};
use shoal_metainfo::{InfoHash, MAX_FILES, MAX_PIECES};

use crate::error::StorageError;
use crate::piece_set::PieceSet;

const MAGIC: &[u8; 8] = b"SHOALRES";
/// Version of the resume format written by this crate.
pub const RESUME_VERSION: u32 = 1;
const HEADER_LEN: u64 = 56;
const FILE_RECORD_LEN: u64 = 20;
const CHECKSUM_LEN: u64 = 20;
/// Largest resume file any valid torrent can have ([`MAX_FILES`] files, [`MAX_PIECES`] pieces).
pub const MAX_RESUME_LEN: u64 =
    HEADER_LEN + MAX_FILES as u64 * FILE_RECORD_LEN + MAX_PIECES.div_ceil(8) + CHECKSUM_LEN;

/// Size and modification time of a file: how a resume record tells whether data changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub len: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
}

impl FileStat {
    pub fn of(meta: &fs::Metadata) -> Self {
        Self {
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
        }
    }
}

/// What a resume file must match: the torrent it was written for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub info_hash: InfoHash,
    pub piece_length: u64,
    pub total_size: u64,
    pub num_pieces: u32,
    pub num_files: usize,
}

impl Expected {
    pub fn len(&self) -> u64 {
        HEADER_LEN
            + self.num_files as u64 * FILE_RECORD_LEN
            + u64::from(self.num_pieces).div_ceil(8)
            + CHECKSUM_LEN
    }
}

/// A decoded resume record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    pub have: PieceSet,
    pub files: Vec<FileStat>,
}

pub(crate) fn encode(expected: &Expected, have: &PieceSet, files: &[FileStat]) -> Vec<u8> {
    let mut out = Vec::with_capacity(expected.len() as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&RESUME_VERSION.to_le_bytes());
    out.extend_from_slice(expected.info_hash.as_bytes());
    out.extend_from_slice(&expected.piece_length.to_le_bytes());
    out.extend_from_slice(&expected.total_size.to_le_bytes());
    out.extend_from_slice(&expected.num_pieces.to_le_bytes());
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    for stat in files {
        out.extend_from_slice(&stat.len.to_le_bytes());
        out.extend_from_slice(&stat.mtime.to_le_bytes());
        out.extend_from_slice(&stat.mtime_nsec.to_le_bytes());
    }
    out.extend_from_slice(have.as_bytes());
    let digest: [u8; 20] = Sha1::digest(&out).into();
    out.extend_from_slice(&digest);
    out
}

/// Reads little-endian fields off the front of a slice whose length was already checked.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        self.take(N)?
            .try_into()
            .map_err(|_| "ends early".to_string())
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }
}

/// Decodes a resume record; the error says why it cannot be trusted.
pub(crate) fn decode(bytes: &[u8], expected: &Expected) -> Result<Resume, String> {
    let want = expected.len();
    if bytes.len() as u64 != want {
        return Err(format!("it is {} bytes, expected {want}", bytes.len()));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN as usize);
    let digest: [u8; 20] = Sha1::digest(body).into();
    let mut f = Fields(body);
    if f.take(MAGIC.len())? != MAGIC {
        return Err("not a shoal resume file".into());
    }
    let version = f.u32()?;
    if version != RESUME_VERSION {
        return Err(format!(
            "format version {version}, expected {RESUME_VERSION}"
        ));
    }
    if digest != checksum {
        return Err("checksum mismatch (torn or altered)".into());
    }
    if f.array::<20>()? != expected.info_hash.0 {
        return Err("written for another torrent".into());
    }
    let (piece_length, total_size) = (f.u64()?, f.u64()?);
    let (num_pieces, num_files) = (f.u32()?, f.u32()?);
    if piece_length != expected.piece_length
        || total_size != expected.total_size
        || num_pieces != expected.num_pieces
        || num_files as usize != expected.num_files
    {
        return Err("piece or file layout differs from the torrent's".into());
    }
    let mut files = Vec::with_capacity(expected.num_files);
    for _ in 0..num_files {
        files.push(FileStat {
            len: f.u64()?,
            mtime: f.i64()?,
            mtime_nsec: f.u32()?,
        });
    }
    let have = PieceSet::from_bytes(f.0, num_pieces).ok_or("bad piece bitfield")?;
    Ok(Resume { have, files })
}

/// Why no resume record was used.
pub(crate) enum LoadError {
    Missing,
    Invalid(String),
}

/// Reads and decodes the resume file at `path`, checking its length before reading it.
pub(crate) fn load(path: &Path, expected: &Expected) -> Result<Resume, LoadError> {
    // O_NONBLOCK: opening a FIFO planted here for reading would wait for a writer forever.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Invalid(format!("cannot open it: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| LoadError::Invalid(format!("cannot inspect it: {e}")))?;
    if !meta.is_file() {
        return Err(LoadError::Invalid("it is not a regular file".into()));
    }
    let len = meta.len();
    let want = expected.len();
    if len != want || len > MAX_RESUME_LEN {
        return Err(LoadError::Invalid(format!(
            "it is {len} bytes, expected {want}"
        )));
    }
    let mut bytes = Vec::with_capacity(want as usize);
    file.take(want + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::Invalid(format!("cannot read it: {e}")))?;
    decode(&bytes, expected).map_err(LoadError::Invalid)
}

/// Files in the state directory that belong to one torrent.
#[derive(Debug, Clone)]
pub(crate) struct StatePaths {
    pub dir: PathBuf,
    pub resume: PathBuf,
    pub temp: PathBuf,
    pub marker: PathBuf,
}

impl StatePaths {
    pub fn new(dir: PathBuf, info_hash: &InfoHash) -> Self {
        let hex = info_hash.to_hex();
        Self {
            resume: dir.join(format!("{hex}.resume")),
            temp: dir.join(format!("{hex}.resume.tmp")),
            marker: dir.join(format!("{hex}.dirty")),
            dir,
        }
    }

    /// Replaces the resume file atomically: write a temporary file, sync it, rename it over
    /// the old one, sync the directory. A crash at any point leaves either the old record or
    /// the new one, never a mix.
    pub fn write_resume(&self, bytes: &[u8]) -> Result<(), StorageError> {
        let mut file = create_state_file(&self.temp)?;
        file.write_all(bytes)
            .map_err(|e| StorageError::io(&self.temp, "write", e))?;
        file.sync_all()
            .map_err(|e| StorageError::io(&self.temp, "sync", e))?;
        drop(file);
        fs::rename(&self.temp, &self.resume)
            .map_err(|e| StorageError::io(&self.resume, "replace (rename)", e))?;
        self.sync_dir()
    }

    /// Writes the unclean-shutdown marker, durably, before any data is written.
    pub fn write_marker(&self) -> Result<(), StorageError> {
        let mut file = create_state_file(&self.marker)?;
        file.write_all(b"shoal-storage: open; removed on clean close\n")
            .map_err(|e| StorageError::io(&self.marker, "write", e))?;
        file.sync_all()
            .map_err(|e| StorageError::io(&self.marker, "sync", e))?;
        self.sync_dir()
    }

    pub fn marker_exists(&self) -> Result<bool, StorageError> {
        match fs::symlink_metadata(&self.marker) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io(&self.marker, "inspect", e)),
        }
    }

    pub fn remove_marker(&self) -> Result<(), StorageError> {
        fs::remove_file(&self.marker).map_err(|e| StorageError::io(&self.marker, "remove", e))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), StorageError> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| StorageError::io(&self.dir, "sync directory", e))
    }
}

/// Creates (or truncates) a state file. A link is refused ([`StorageError::Symlink`]), and so
/// is anything but a regular file: O_NONBLOCK makes a FIFO planted here fail at once (`ENXIO`
/// when nobody reads it) instead of blocking the open until a reader comes.
fn create_state_file(path: &Path) -> Result<File, StorageError> {
    let not_a_file = || StorageError::WrongFileType {
        path: path.to_owned(),
        expected: "regular file",
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => not_a_file(),
            _ => StorageError::io(path, "create", e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| StorageError::io(path, "inspect", e))?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn expected(num_pieces: u32, num_files: usize) -> Expected {
        Expected {
            info_hash: InfoHash([7; 20]),
            piece_length: 32768,
            total_size: u64::from(num_pieces) * 32768 - 5,
            num_pieces,
            num_files,
        }
    }

    fn sample() -> (Expected, PieceSet, Vec<FileStat>) {
        let e = expected(11, 3);
        let mut have = PieceSet::new(11);
        have.insert(0);
        have.insert(10);
        let files = vec![
            FileStat {
                len: 5,
                mtime: -3,
                mtime_nsec: 999_999_999,
            },
            FileStat::default(),
            FileStat {
                len: u64::MAX,
                mtime: i64::MAX,
                mtime_nsec: 1,
            },
        ];
        (e, have, files)
    }

    #[test]
    fn round_trip() {
        let (e, have, files) = sample();
        let bytes = encode(&e, &have, &files);
        assert_eq!(bytes.len() as u64, e.len());
        assert_eq!(decode(&bytes, &e), Ok(Resume { have, files }));
    }

    #[test]
    fn length_one_past_the_edge_is_refused() {
        let (e, have, files) = sample();
        let bytes = encode(&e, &have, &files);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &e).unwrap_err().contains("expected"));
        assert!(decode(&bytes[..bytes.len() - 1], &e).is_err());
        assert!(decode(&[], &e).is_err());
    }

    #[test]
    fn mismatches_are_refused() {
        let (e, have, files) = sample();
        let bytes = encode(&e, &have, &files);
        let other = Expected {
            info_hash: InfoHash([8; 20]),
            ..e
        };
        assert!(
            decode(&bytes, &other)
                .unwrap_err()
                .contains("another torrent")
        );
        let mut flipped = bytes.clone();
        flipped[60] ^= 1;
        assert!(decode(&flipped, &e).unwrap_err().contains("checksum"));
        let mut version = bytes;
        version[8] = 2;
        assert!(decode(&version, &e).unwrap_err().contains("version"));
    }

    #[test]
    fn largest_resume_file_is_bounded() {
        let e = Expected {
            num_pieces: MAX_PIECES as u32,
            num_files: MAX_FILES,
            ..expected(1, 1)
        };
        assert_eq!(e.len(), MAX_RESUME_LEN);
        const { assert!(MAX_RESUME_LEN < 21 << 20) };
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes, &expected(11, 3));
            let _ = decode(&bytes, &expected(1, 0));
        }

        #[test]
        fn any_single_byte_change_is_caught(at in 0usize..138, bit in 0u8..8) {
            let (e, have, files) = sample();
            let mut bytes = encode(&e, &have, &files);
            prop_assume!(at < bytes.len());
            bytes[at] ^= 1 << bit;
            prop_assert!(decode(&bytes, &e).is_err());
        }
    }
}
