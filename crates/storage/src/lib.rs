//! shoal-storage: a torrent's pieces on disk.
//!
//! It owns the mapping from the piece space onto the torrent's files (single and multi-file,
//! BEP 47 pad files), creating directories and sparse files under a download directory,
//! positioned block writes and reads across file boundaries, SHA-1 verification of completed
//! pieces, the parallel recheck of existing data, and the resume file that lets a restarted
//! node skip that recheck. It is synchronous: the async node calls it from blocking threads.
//! It does not decide what to download, talk to peers or keep per-peer state (shoal-swarm and
//! shoal-node do), and it does not log: [`Storage::open`] returns an [`OpenReport`] to log.
//!
//! # On disk
//!
//! ```text
//! DOWNLOAD_DIR/NAME                    single-file torrent
//! DOWNLOAD_DIR/NAME/dir/file ...       multi-file torrent (paths as sanitized by shoal-metainfo)
//! STATE_DIR/<info-hash hex>.resume     verified pieces + file sizes/mtimes (format: below)
//! STATE_DIR/<info-hash hex>.resume.tmp the next resume record, before its atomic rename
//! STATE_DIR/<info-hash hex>.dirty      unclean-shutdown marker: present while open
//! ```
//!
//! Pad files are never created; their ranges read as zeros (so piece hashes verify) and writes
//! to them are dropped. BEP 47 symbolic links are **not created**: they carry no data, and
//! creating links from untrusted metadata is how a torrent would point outside the download
//! directory; the node may recreate them later, if ever wanted, after checking their targets.
//! Files are extended to their length with `set_len` (sparse) but never truncated.
//!
//! # Safety of paths
//!
//! Every path component is checked again here (plain names only: no `..`, `.`, empty, NUL or
//! separators) and the joined path must stay under the canonical download directory.
//! Directories on the way are created one by one and a symbolic link found there is refused;
//! files are opened with `O_NOFOLLOW` and must be regular files, so a link (or FIFO, or device)
//! planted at a file's place cannot redirect writes ([`StorageError::Symlink`]). A racing
//! attacker who can swap directories for links *while* the node runs is out of scope: they
//! would already have write access to the download directory.
//!
//! # Resume file format (version 1)
//!
//! Little-endian and of a size fixed by the torrent (56 + 20 × files + ⌈pieces / 8⌉ + 20
//! bytes, at most [`MAX_RESUME_LEN`]): magic `SHOALRES`, version, info-hash, piece length,
//! total size, piece count, file count; per `Info::files` entry its size, mtime seconds and
//! nanoseconds; the verified-piece bitfield; a SHA-1 of all of that. A file of the wrong length
//! is refused before it is read; any mismatch (torrent, layout, version, checksum, spare bits)
//! means "no record" and a full recheck, reported in [`ResumeStatus::Rejected`].
//!
//! # Crash safety
//!
//! Claim: after kill -9 or power loss at any instant, no piece named by the resume file has
//! data on disk other than what was verified, and no verified piece is lost except those
//! verified after the last record (which a recheck finds again).
//!
//! 1. *Data before record.* A piece enters the have-set only after its hash matched, and every
//!    file holding it is marked unsynced just before. [`Storage::flush`] (one at a time)
//!    snapshots the have-set, *then* `sync_data`s
//!    every unsynced file, and only then writes a record naming the snapshot. So every named
//!    piece's bytes were durable before the record existed. (Pieces found by the recheck at
//!    open are treated the same way: after kill -9 their bytes may live in the page cache
//!    only.) A handle evicted from the open-file cache is synced before it is closed, so no
//!    write error is lost with its descriptor.
//! 2. *Atomic record.* The record is written to a temporary file, synced, renamed over the old
//!    one, and the directory is synced: a crash leaves the old record or the new one. A torn
//!    or foreign file fails its length or SHA-1 check and is ignored (full recheck).
//! 3. *Named pieces stay intact.* Writes to a verified piece are refused
//!    ([`StorageError::PieceAlreadyVerified`]), so later writes never touch named bytes; a
//!    write that overlaps a verification voids it (hashed again), so a late duplicate block
//!    cannot slip in between hashing and marking.
//!    Changes by other programs are caught by comparing each file's size and mtime with the
//!    record: pieces touching a changed file are rechecked, never trusted.
//! 4. *Unclean shutdown.* The `.dirty` marker is written (and synced) at open before any data
//!    is, and removed by [`Storage::close`] after the final record. Found at open, it means
//!    pieces may have been written or verified after the last record: every piece the record
//!    does not name, and every piece in a file changed since, is rechecked.
//!
//! Only pieces whose bytes were all present before the open are rechecked (files created or
//! extended just now hold nothing yet), so a fresh download does not hash its own holes.
//!
//! Known limits: a program that rewrites a file *and* restores its size and mtime defeats
//! the change check (as in other clients); after an unclean shutdown the unnamed pieces of
//! sparse files are read too (holes cost no disk I/O, only hashing); and nothing stops two
//! processes from opening the same torrent at once (no advisory lock: `flock` needs `unsafe`
//! or Rust 1.89, above the workspace's 1.85).
//!
//! # Concurrency
//!
//! Every method takes `&self`; a [`Storage`] is `Send + Sync` and can be shared through an
//! `Arc` by blocking threads. File I/O uses `pread`/`pwrite` on handles taken from a bounded
//! LRU cache ([`StorageConfig::open_files`], default [`DEFAULT_OPEN_FILES`]) and runs outside
//! the internal locks; only `flush` (and closing an evicted file with unsynced data) syncs.
//!
//! # Example
//!
//! ```
//! use shoal_metainfo::{CreateOptions, create_torrent};
//! use shoal_storage::{PieceCheck, Storage, StorageConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = tempfile::tempdir()?;
//! let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
//! std::fs::write(source.path().join("hello.bin"), &content)?;
//! let created = create_torrent(
//!     &source.path().join("hello.bin"),
//!     &CreateOptions::default(),
//!     &mut |_| {},
//! )?;
//! let torrent = created.torrent;
//!
//! let (downloads, state) = (tempfile::tempdir()?, tempfile::tempdir()?);
//! let opened = Storage::open(
//!     torrent.info_hash,
//!     &torrent.info,
//!     downloads.path(),
//!     state.path(),
//!     StorageConfig::default(),
//! )?;
//! assert_eq!(opened.have.count(), 0);
//! let storage = opened.storage;
//! let piece_length = torrent.info.piece_length as usize;
//! for (piece, data) in content.chunks(piece_length).enumerate() {
//!     storage.write_block(piece as u32, 0, data)?;
//!     assert_eq!(storage.verify_piece(piece as u32)?, PieceCheck::Verified);
//! }
//! assert!(storage.have().is_full());
//! storage.close()?;
//!
//! // A clean restart trusts the resume file and reads nothing.
//! let reopened = Storage::open(
//!     torrent.info_hash,
//!     &torrent.info,
//!     downloads.path(),
//!     state.path(),
//!     StorageConfig::default(),
//! )?;
//! assert!(reopened.have.is_full());
//! assert_eq!(reopened.report.rechecked, 0);
//! # Ok(())
//! # }
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod error;
mod layout;
mod open_files;
mod piece_set;
mod prepare;
mod recheck;
mod resume;
mod storage;

pub use error::StorageError;
pub use open_files::DEFAULT_OPEN_FILES;
pub use piece_set::PieceSet;
pub use resume::{MAX_RESUME_LEN, RESUME_VERSION};
pub use storage::{OpenReport, Opened, PieceCheck, ResumeStatus, Storage, StorageConfig};
