//! [`Storage`]: one torrent's files, block I/O, verification and resume records.

use std::collections::HashMap;
use std::fs;
use std::num::NonZeroUsize;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use shoal_metainfo::{Info, InfoHash, PieceGeometry};

use crate::error::StorageError;
use crate::layout::{FileKind, Layout};
use crate::open_files::{DEFAULT_OPEN_FILES, OpenFiles};
use crate::piece_set::PieceSet;
use crate::prepare::{create_files, piece_len, plan_recheck, stat_existing};
use crate::recheck::{self, read_error};
use crate::resume::{self, Expected, FileStat, LoadError, StatePaths};

/// How a [`Storage`] behaves; [`Default`] suits a desktop node.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Files kept open at once (least recently used are closed first). At least 1.
    pub open_files: usize,
    /// Write a resume record at least this often while pieces are being verified.
    pub flush_interval: Duration,
    /// ... or as soon as this many bytes of newly verified pieces are not yet recorded.
    pub flush_bytes: u64,
    /// Threads for the recheck at open; `None` uses every core.
    pub recheck_threads: Option<NonZeroUsize>,
    /// Open the files read-only and never create, extend or write them: for seeding data
    /// that belongs to the user. Missing or short files simply lack their pieces, and
    /// [`Storage::write_block`] fails with [`StorageError::ReadOnly`].
    pub read_only: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            open_files: DEFAULT_OPEN_FILES,
            flush_interval: Duration::from_secs(10),
            flush_bytes: 64 << 20,
            recheck_threads: None,
            read_only: false,
        }
    }
}

/// What [`Storage::open`] made of the resume file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeStatus {
    /// There was none (a new download, or state deleted): existing data was rechecked.
    Missing,
    /// It could not be used (the reason says why): existing data was rechecked.
    Rejected { reason: String },
    /// It was used; pieces touching `changed_files` files whose size or mtime differ from the
    /// record were rechecked rather than trusted.
    Used { changed_files: usize },
}

/// How [`Storage::open`] arrived at its set of verified pieces: worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub resume: ResumeStatus,
    /// The previous session did not [`Storage::close`] (crash, kill -9, power loss).
    pub unclean_shutdown: bool,
    /// Pieces taken from the resume record without reading them.
    pub trusted: u32,
    /// Pieces read and hashed.
    pub rechecked: u32,
    /// Pieces among `rechecked` whose hash matched.
    pub found: u32,
}

/// An opened torrent: the storage, the pieces already verified, and how they were found.
#[derive(Debug)]
pub struct Opened {
    pub storage: Storage,
    pub have: PieceSet,
    pub report: OpenReport,
}

/// The result of hashing a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceCheck {
    /// The data matches the torrent's hash; the piece is now in the have-set.
    Verified,
    /// It does not: the piece stays missing and must be downloaded again.
    HashMismatch,
}

/// One torrent's data on disk. Every method takes `&self` and the type is `Send + Sync`, so
/// the node may share it (`Arc<Storage>`) between blocking threads: file I/O is positioned
/// (`pread`/`pwrite`) and runs outside the internal locks.
#[derive(Debug)]
pub struct Storage {
    info_hash: InfoHash,
    info: Info,
    geometry: PieceGeometry,
    layout: Layout,
    paths: StatePaths,
    expected: Expected,
    config: StorageConfig,
    // Lock order: `recorded`, then `state`, then `files`; never the other way round.
    files: Mutex<OpenFiles>,
    state: Mutex<State>,
    /// File stats as of the last resume record. Its lock also serializes flushes.
    recorded: Mutex<Vec<FileStat>>,
}

#[derive(Debug)]
struct State {
    have: PieceSet,
    unrecorded_bytes: u64,
    last_flush: Instant,
    /// Writes to pieces not yet verified, so that a verification that raced a write (e.g. a
    /// late duplicate block from another peer) is never taken for a good piece.
    writes: HashMap<u32, PieceWrites>,
}

#[derive(Debug, Default)]
struct PieceWrites {
    count: blocks::WriteCount,
    /// The piece hashed as it is written, while its blocks come in order (see
    /// [`blocks::InOrderHash`]); `None` once they did not, or while a write holds it.
    in_order: Option<blocks::InOrderHash>,
    /// `started` when the piece last failed its hash: the writes of its next download are
    /// the ones after this (the counts only grow, so that a verification reading the piece
    /// back always notices a write that overlapped it).
    failed_at: u64,
}

/// What [`Storage::open`] prepared, for [`Storage::assemble`].
struct Parts {
    info_hash: InfoHash,
    layout: Layout,
    paths: StatePaths,
    expected: Expected,
    stats: Vec<FileStat>,
}

mod blocks;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent, so a panic elsewhere cannot have left
    // it half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Storage {
    /// Opens (creating as needed) the torrent's files under `download_dir` and finds the pieces
    /// already verified, from the resume file in `state_dir` and a parallel recheck of whatever
    /// it does not vouch for. Writes the unclean-shutdown marker before touching any data.
    pub fn open(
        info_hash: InfoHash,
        info: &Info,
        download_dir: &Path,
        state_dir: &Path,
        config: StorageConfig,
    ) -> Result<Opened, StorageError> {
        let root = if config.read_only {
            fs::canonicalize(download_dir)
                .map_err(|e| StorageError::io(download_dir, "resolve", e))?
        } else {
            fs::create_dir_all(download_dir)
                .map_err(|e| StorageError::io(download_dir, "create directory", e))?;
            fs::canonicalize(download_dir)
                .map_err(|e| StorageError::io(download_dir, "resolve", e))?
        };
        fs::create_dir_all(state_dir)
            .map_err(|e| StorageError::io(state_dir, "create directory", e))?;
        let layout = Layout::new(root, info)?;
        let geometry = info.geometry();
        let paths = StatePaths::new(state_dir.to_path_buf(), &info_hash);
        let expected = Expected {
            info_hash,
            piece_length: geometry.piece_length(),
            total_size: geometry.total_size(),
            num_pieces: geometry.num_pieces(),
            num_files: info.files.len(),
        };
        let unclean_shutdown = paths.marker_exists()?;
        let before = stat_existing(&layout)?;
        let (resume, status) = match resume::load(&paths.resume, &expected) {
            Ok(resume) => (Some(resume), None),
            Err(LoadError::Missing) => (None, Some(ResumeStatus::Missing)),
            Err(LoadError::Invalid(reason)) => (None, Some(ResumeStatus::Rejected { reason })),
        };
        let plan = plan_recheck(
            &layout,
            geometry,
            &before,
            resume.as_ref(),
            unclean_shutdown,
        );

        paths.write_marker()?;
        let stats = if config.read_only {
            before.iter().map(|s| s.unwrap_or_default()).collect()
        } else {
            create_files(&layout)?
        };
        let threads = config
            .recheck_threads
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let found = recheck::recheck(&layout, info, &plan.candidates, threads)?;
        let mut have = plan.trusted.clone();
        have.union_with(&found);

        let report = OpenReport {
            resume: status.unwrap_or(ResumeStatus::Used {
                changed_files: plan.changed_files,
            }),
            unclean_shutdown,
            trusted: plan.trusted.count(),
            rechecked: plan.candidates.count(),
            found: found.count(),
        };
        let parts = Parts {
            info_hash,
            layout,
            paths,
            expected,
            stats,
        };
        let storage = Storage::assemble(parts, info, config, &have, &found);
        storage.flush()?;
        Ok(Opened {
            storage,
            have,
            report,
        })
    }

    /// The storage once its files are in place and its pieces known.
    fn assemble(
        parts: Parts,
        info: &Info,
        config: StorageConfig,
        have: &PieceSet,
        found: &PieceSet,
    ) -> Self {
        let geometry = info.geometry();
        let mut open_files = OpenFiles::new(config.open_files, config.read_only);
        // Pieces found by reading may sit in the page cache only (after kill -9): sync their
        // files before a resume record names them.
        for piece in found.iter() {
            let (start, size) = (geometry.piece_offset(piece), piece_len(geometry, piece));
            for index in parts.layout.data_files_in(start, size) {
                open_files.mark_unsynced(index);
            }
        }
        Storage {
            info_hash: parts.info_hash,
            info: info.clone(),
            geometry,
            layout: parts.layout,
            paths: parts.paths,
            expected: parts.expected,
            config,
            files: Mutex::new(open_files),
            state: Mutex::new(State {
                have: have.clone(),
                unrecorded_bytes: 0,
                last_flush: Instant::now(),
                writes: HashMap::new(),
            }),
            recorded: Mutex::new(parts.stats),
        }
    }

    pub fn info_hash(&self) -> InfoHash {
        self.info_hash
    }

    /// The canonical download directory every file lives under.
    pub fn download_dir(&self) -> &Path {
        &self.layout.root
    }

    /// Where file `index` of `Info::files` is stored (`None` for pad files and links).
    pub fn file_path(&self, index: usize) -> Option<PathBuf> {
        self.layout
            .files
            .get(index)?
            .data_path()
            .map(Path::to_owned)
    }

    /// A snapshot of the verified pieces.
    pub fn have(&self) -> PieceSet {
        lock(&self.state).have.clone()
    }

    pub fn has_piece(&self, piece: u32) -> bool {
        lock(&self.state).have.contains(piece)
    }

    /// Number of file handles open right now (at most [`StorageConfig::open_files`]).
    pub fn open_file_count(&self) -> usize {
        lock(&self.files).open_count()
    }

    /// Reads `buf.len()` bytes at `offset` in `piece` (pad ranges read as zeros). It does not
    /// check that the piece is verified: serve peers only pieces [`Storage::has_piece`] holds.
    pub fn read_into(&self, piece: u32, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        let start = self.check_range(piece, offset, buf.len())?;
        self.read_at(start, buf)
    }

    /// Reads `length` bytes at `offset` in `piece`. The range is checked before anything is
    /// allocated for it.
    pub fn read_block(
        &self,
        piece: u32,
        offset: u32,
        length: u32,
    ) -> Result<Vec<u8>, StorageError> {
        let start = self.check_range(piece, offset, length as usize)?;
        let mut buf = vec![0; length as usize];
        self.read_at(start, &mut buf)?;
        Ok(buf)
    }

    /// Reads a whole piece.
    pub fn read_piece(&self, piece: u32) -> Result<Vec<u8>, StorageError> {
        let size = self.piece_size(piece)?;
        self.read_block(piece, 0, size)
    }

    /// Writes a resume record if one is due: [`StorageConfig::flush_bytes`] of verified pieces
    /// are unrecorded, or [`StorageConfig::flush_interval`] has elapsed with some unrecorded.
    /// Call it after verifying pieces, and from a timer so that a quiet torrent still gets
    /// recorded. ([`Storage::verify_piece`] does not write records itself, so that a failure
    /// to write one is never mistaken for a piece that failed its hash.)
    pub fn flush_if_due(&self) -> Result<(), StorageError> {
        let due = {
            let state = lock(&self.state);
            state.unrecorded_bytes >= self.config.flush_bytes
                || (state.unrecorded_bytes > 0
                    && state.last_flush.elapsed() >= self.config.flush_interval)
        };
        if due { self.flush() } else { Ok(()) }
    }

    /// Syncs every file written or holding newly verified pieces, then atomically replaces the
    /// resume record with the current have-set. Only pieces verified before this call began are
    /// named, and their data is on disk before the record is.
    pub fn flush(&self) -> Result<(), StorageError> {
        let mut recorded = lock(&self.recorded);
        // Have-set first, files second: every file holding a snapshotted piece was marked
        // before the piece entered the set, so it is in `unsynced` now or was synced earlier.
        let (have, taken) = {
            let mut state = lock(&self.state);
            let taken = std::mem::take(&mut state.unrecorded_bytes);
            (state.have.clone(), taken)
        };
        // A failed flush leaves its bytes unrecorded, so the next `flush_if_due` tries again.
        let failed = |e: StorageError| {
            lock(&self.state).unrecorded_bytes += taken;
            e
        };
        let (unsynced, touched) = lock(&self.files).take_pending();
        if let Err(e) = self.sync_and_stat(&unsynced, &touched, &mut recorded) {
            lock(&self.files).restore_pending(unsynced, touched);
            return Err(failed(e));
        }
        let bytes = resume::encode(&self.expected, &have, &recorded);
        self.paths.write_resume(&bytes).map_err(failed)?;
        lock(&self.state).last_flush = Instant::now();
        Ok(())
    }

    /// Records everything, closes the files and removes the unclean-shutdown marker, so the
    /// next open trusts the resume record. Dropping a `Storage` without calling this is treated
    /// as a crash: the next open rechecks what the record does not vouch for.
    pub fn close(self) -> Result<(), StorageError> {
        self.flush()?;
        drop(self.files);
        self.paths.remove_marker()
    }

    fn sync_and_stat(
        &self,
        unsynced: &std::collections::BTreeSet<usize>,
        touched: &std::collections::BTreeSet<usize>,
        recorded: &mut [FileStat],
    ) -> Result<(), StorageError> {
        for &index in touched {
            let Some(path) = self.layout.files[index].data_path() else {
                continue;
            };
            let file = lock(&self.files).get(&self.layout, index)?;
            if unsynced.contains(&index) {
                file.sync_data()
                    .map_err(|e| StorageError::io(path, "sync", e))?;
            }
            let meta = file
                .metadata()
                .map_err(|e| StorageError::io(path, "inspect", e))?;
            recorded[index] = FileStat::of(&meta);
        }
        Ok(())
    }

    fn piece_size(&self, piece: u32) -> Result<u32, StorageError> {
        self.geometry
            .piece_size(piece)
            .ok_or(StorageError::PieceOutOfRange {
                piece,
                num_pieces: self.geometry.num_pieces(),
            })
    }

    /// The piece-space offset of `offset..offset + len` in `piece`, if it fits.
    fn check_range(&self, piece: u32, offset: u32, len: usize) -> Result<u64, StorageError> {
        let piece_size = self.piece_size(piece)?;
        let fits = u32::try_from(len).is_ok_and(|l| self.geometry.contains(piece, offset, l));
        if !fits {
            return Err(StorageError::BlockOutOfRange {
                piece,
                offset,
                length: len,
                piece_size,
            });
        }
        Ok(self.geometry.piece_offset(piece) + u64::from(offset))
    }

    fn read_at(&self, start: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        self.layout.for_each_span(start, buf.len(), |span| {
            let out = &mut buf[span.buf_offset..span.buf_offset + span.len];
            let FileKind::Data(path) = &self.layout.files[span.file].kind else {
                out.fill(0);
                return Ok(());
            };
            let file = lock(&self.files).get(&self.layout, span.file)?;
            file.read_exact_at(out, span.file_offset)
                .map_err(|e| read_error(path, span.file_offset + span.len as u64, e))
        })
    }
}
