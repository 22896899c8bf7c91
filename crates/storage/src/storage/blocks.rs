//! Blocks in, verified pieces out: [`Storage::write_block`] and [`Storage::verify_piece`].
//!
//! Blocks go to their files as they come (the engine's 16 KiB blocks, still in the CPU's
//! caches from decryption); a finished piece is read back and hashed. Measured on a 1 GiB
//! loopback transfer, this beats gathering a piece in memory, hashing it there and writing it
//! once: by the time a whole piece is in, its first blocks have left the caches, and copying
//! it into the page cache then costs several times more than the read-back saves.

use std::os::unix::fs::FileExt;
use std::sync::MutexGuard;

use sha1::{Digest, Sha1};

use super::{PieceCheck, State, Storage, lock};
use crate::error::StorageError;
use crate::layout::FileKind;
use crate::recheck::{AlignedBuf, CHUNK};

/// Times a verification is retried when writes to the piece keep racing it.
const VERIFY_ATTEMPTS: usize = 4;

impl Storage {
    /// Writes `data` at `offset` in `piece`, across file boundaries; bytes that fall in pad
    /// files are dropped. Refuses pieces that are already verified.
    pub fn write_block(&self, piece: u32, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        if self.config.read_only {
            return Err(StorageError::ReadOnly { piece });
        }
        let start = self.check_range(piece, offset, data.len())?;
        {
            let mut state = lock(&self.state);
            if state.have.contains(piece) {
                return Err(StorageError::PieceAlreadyVerified { piece });
            }
            let writes = state.writes.entry(piece).or_default();
            writes.started += 1;
            writes.in_flight += 1;
        }
        let result = self.write_spans(start, data);
        if let Some(writes) = lock(&self.state).writes.get_mut(&piece) {
            writes.in_flight -= 1;
        }
        result
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
    /// queues it for the resume file (written by [`Storage::flush_if_due`] or
    /// [`Storage::flush`]); a mismatch leaves it missing. A piece already verified is not read again. If blocks of
    /// the piece are written while it is hashed, it is hashed again (a few times, then
    /// [`StorageError::PieceBusy`]): a verdict always covers exactly the bytes on disk.
    pub fn verify_piece(&self, piece: u32) -> Result<PieceCheck, StorageError> {
        let size = self.piece_size(piece)?;
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
            self.mark_verified(state, piece, start, size);
            return Ok(PieceCheck::Verified);
        }
        Err(StorageError::PieceBusy { piece })
    }

    /// Adds a piece whose bytes on disk matched to the have-set, to be recorded. `state` is the
    /// lock under which no write to the piece was found in flight: held until the piece is
    /// marked, so that no write can start in between.
    fn mark_verified(&self, mut state: MutexGuard<'_, State>, piece: u32, start: u64, size: u32) {
        // Before the piece can be recorded, every file holding it must be synced, whoever
        // wrote it (this session, or a previous one whose writes may not be on disk yet); they
        // are marked before the piece joins the set (see `flush`).
        {
            let mut files = lock(&self.files);
            for index in self.layout.data_files_in(start, size as usize) {
                files.mark_unsynced(index);
            }
        }
        state.writes.remove(&piece);
        state.have.insert(piece);
        state.unrecorded_bytes += u64::from(size);
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
