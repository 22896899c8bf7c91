//! Blocks in, verified pieces out: [`Storage::write_block`] and [`Storage::verify_piece`].
//!
//! A piece is assembled in memory when there is room (see `crate::assembly`): verification
//! then hashes the buffer and writes the piece once. Otherwise its blocks go to disk as they
//! come and verification reads them back.

use std::os::unix::fs::FileExt;

use sha1::{Digest, Sha1};

use std::sync::MutexGuard;

use super::{PieceCheck, PieceWrites, State, Storage, lock};
use crate::assembly::{Route, Taken};
use crate::error::StorageError;
use crate::layout::FileKind;
use crate::recheck::{AlignedBuf, CHUNK};

/// Times a verification is retried when writes to the piece keep racing it.
const VERIFY_ATTEMPTS: usize = 4;

impl Storage {
    /// Takes `data` at `offset` in `piece`: into the piece's buffer if it is being assembled in
    /// memory, otherwise onto disk across file boundaries (bytes in pad files are dropped).
    /// Refuses pieces that are already verified.
    pub fn write_block(&self, piece: u32, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        if self.config.read_only {
            return Err(StorageError::ReadOnly { piece });
        }
        let start = self.check_range(piece, offset, data.len())?;
        let piece_size = self.piece_size(piece)?;
        let spilled = {
            let mut state = lock(&self.state);
            if state.have.contains(piece) {
                return Err(StorageError::PieceAlreadyVerified { piece });
            }
            if state.assembly.write(piece, piece_size, offset, data) == Route::Buffered {
                return Ok(());
            }
            let spilled = state.assembly.spill(piece);
            let writes = state.writes.entry(piece).or_default();
            writes.started += 1;
            writes.in_flight += 1;
            spilled
        };
        let piece_start = self.geometry.piece_offset(piece);
        let result = spilled
            .iter()
            .try_for_each(|(at, bytes)| self.write_spans(piece_start + u64::from(*at), bytes))
            .and_then(|()| self.write_spans(start, data));
        if let Some(writes) = lock(&self.state).writes.get_mut(&piece) {
            writes.in_flight -= 1;
        }
        result
    }

    /// Takes `data` into its piece's buffer if that needs no I/O, and says whether it did: a
    /// caller on an async thread can then skip handing the block to a disk thread. `false`
    /// leaves everything as it was; write the block with [`Storage::write_block`].
    pub fn buffer_block(&self, piece: u32, offset: u32, data: &[u8]) -> Result<bool, StorageError> {
        if self.config.read_only {
            return Err(StorageError::ReadOnly { piece });
        }
        self.check_range(piece, offset, data.len())?;
        let piece_size = self.piece_size(piece)?;
        let mut state = lock(&self.state);
        if state.have.contains(piece) {
            return Err(StorageError::PieceAlreadyVerified { piece });
        }
        if !state
            .assembly
            .would_buffer(piece, piece_size, offset, data.len())
        {
            return Ok(false);
        }
        Ok(state.assembly.write(piece, piece_size, offset, data) == Route::Buffered)
    }

    fn write_spans(&self, start: u64, data: &[u8]) -> Result<(), StorageError> {
        self.layout.for_each_span(start, data.len(), |span| {
            let FileKind::Data(path) = &self.layout.files[span.file].kind else {
                return Ok(());
            };
            let file = lock(&self.files).get(&self.layout, span.file)?;
            file.write_all_at(
                &data[span.buf_offset..span.buf_offset + span.len],
                span.file_offset,
            )
            .map_err(|e| StorageError::io(path, "write", e))?;
            lock(&self.files).mark_written(span.file);
            Ok(())
        })
    }

    /// Hashes `piece` and compares it with the torrent. A match adds it to the have-set and
    /// queues it for the resume file (written when due: see [`crate::StorageConfig`]); a
    /// mismatch leaves it missing. A piece already verified is not read again.
    ///
    /// A piece assembled in memory is hashed there and, if it matches, written to disk before
    /// it counts as verified; one that does not match is never written. A piece on disk is
    /// read back; if blocks of it are written while it is hashed, it is hashed again (a few
    /// times, then [`StorageError::PieceBusy`]): a verdict always covers exactly the bytes on
    /// disk.
    pub fn verify_piece(&self, piece: u32) -> Result<PieceCheck, StorageError> {
        let size = self.piece_size(piece)?;
        let (taken, writes_before) = {
            let mut state = lock(&self.state);
            if state.have.contains(piece) {
                return Ok(PieceCheck::Verified);
            }
            let writes = state.writes.get(&piece).copied().unwrap_or_default();
            (state.assembly.take(piece), writes)
        };
        let verdict = match taken {
            Taken::Complete(data) => {
                let verdict = self.settle_assembled(piece, &data, writes_before);
                lock(&self.state).assembly.recycle(data);
                verdict
            }
            Taken::Incomplete => Ok(PieceCheck::HashMismatch),
            Taken::OnDisk => self.verify_on_disk(piece, size),
        };
        if !matches!(verdict, Ok(PieceCheck::Verified)) {
            // Fetched again from scratch: it may be assembled in memory next time.
            lock(&self.state).assembly.forget(piece);
        }
        verdict
    }

    /// Hashes a piece assembled in memory; if it matches, writes it and marks it verified.
    fn settle_assembled(
        &self,
        piece: u32,
        data: &[u8],
        writes_before: PieceWrites,
    ) -> Result<PieceCheck, StorageError> {
        let digest: [u8; 20] = Sha1::digest(data).into();
        if self.info.piece_hash(piece as usize) != Some(digest) {
            return Ok(PieceCheck::HashMismatch);
        }
        let start = self.geometry.piece_offset(piece);
        self.write_spans(start, data)?;
        let state = lock(&self.state);
        let writes_after = state.writes.get(&piece).copied().unwrap_or_default();
        if writes_after == writes_before && writes_after.in_flight == 0 {
            self.mark_verified(state, piece, start, data.len() as u32)?;
            return Ok(PieceCheck::Verified);
        }
        drop(state);
        // A block of this piece went to disk while it was being settled (it cannot happen with
        // the engine's own blocks, but nothing on disk is trusted unseen): read it all back.
        self.verify_on_disk(piece, data.len() as u32)
    }

    /// Hashes a piece on disk, again while writes to it race the hashing.
    fn verify_on_disk(&self, piece: u32, size: u32) -> Result<PieceCheck, StorageError> {
        let start = self.geometry.piece_offset(piece);
        let mut buf = AlignedBuf::new((size as usize).min(CHUNK));
        for _ in 0..VERIFY_ATTEMPTS {
            let writes_before = {
                let state = lock(&self.state);
                if state.have.contains(piece) {
                    return Ok(PieceCheck::Verified);
                }
                state.writes.get(&piece).copied().unwrap_or_default()
            };
            let matches = self.hash_matches(piece, start, size, &mut buf)?;
            let state = lock(&self.state);
            let writes_after = state.writes.get(&piece).copied().unwrap_or_default();
            if writes_before.in_flight > 0 || writes_after != writes_before {
                continue; // a write overlapped the hashing: what was hashed proves nothing
            }
            if !matches {
                return Ok(PieceCheck::HashMismatch);
            }
            self.mark_verified(state, piece, start, size)?;
            return Ok(PieceCheck::Verified);
        }
        Err(StorageError::PieceBusy { piece })
    }

    /// Adds a piece whose bytes on disk matched to the have-set, and records it when due.
    /// `state` is the lock under which no write to the piece was found in flight: held until
    /// the piece is marked, so that no write can start in between.
    fn mark_verified(
        &self,
        mut state: MutexGuard<'_, State>,
        piece: u32,
        start: u64,
        size: u32,
    ) -> Result<(), StorageError> {
        // Before the
        // piece can be recorded, every file holding it must be synced, whoever wrote it (this
        // session, or a previous one whose writes may not be on disk yet); they are marked
        // before the piece joins the set (see `flush`).
        {
            let mut files = lock(&self.files);
            for index in self.layout.data_files_in(start, size as usize) {
                files.mark_unsynced(index);
            }
        }
        state.writes.remove(&piece);
        // A late duplicate block may have started a new buffer meanwhile.
        state.assembly.forget(piece);
        state.have.insert(piece);
        state.unrecorded_bytes += u64::from(size);
        let due = state.unrecorded_bytes >= self.config.flush_bytes
            || state.last_flush.elapsed() >= self.config.flush_interval;
        drop(state);
        if due { self.flush() } else { Ok(()) }
    }

    fn hash_matches(
        &self,
        piece: u32,
        start: u64,
        size: u32,
        buf: &mut AlignedBuf,
    ) -> Result<bool, StorageError> {
        let mut hasher = Sha1::new();
        let mut done = 0usize;
        while done < size as usize {
            let chunk = &mut buf.as_mut()[..(size as usize - done).min(CHUNK)];
            self.read_at(start + done as u64, chunk)?;
            hasher.update(&*chunk);
            done += chunk.len();
        }
        let digest: [u8; 20] = hasher.finalize().into();
        Ok(self.info.piece_hash(piece as usize) == Some(digest))
    }
}
