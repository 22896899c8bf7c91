//! Blocks in, verified pieces out: [`Storage::write_block`] and [`Storage::verify_piece`].
//!
//! Blocks go to their files as they come (the engine's 16 KiB blocks, still in the CPU's
//! caches from decryption). While a piece's blocks arrive in order, each is also fed to the
//! piece's SHA-1 right after it is written, so verifying the piece only finishes the hash;
//! a piece whose blocks came out of order (several peers, a lost block, a duplicate) is read
//! back and hashed. Measured on a 1 GiB loopback transfer, gathering a piece in memory and
//! writing it once lost to both: by the time a whole piece is in, its first blocks have left
//! the caches, and copying it into the page cache then costs more than the read-back saves.

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
        let mut in_order = {
            let mut state = lock(&self.state);
            if state.have.contains(piece) {
                return Err(StorageError::PieceAlreadyVerified { piece });
            }
            let writes = state.writes.entry(piece).or_default();
            writes.count.started += 1;
            writes.count.in_flight += 1;
            match writes.in_order.take() {
                Some(hash) if hash.next == offset => Some(hash),
                // Only the first write of the piece's download may start the hash: later ones
                // would leave earlier writes out of it.
                None if offset == 0 && writes.count.started == writes.failed_at + 1 => {
                    Some(InOrderHash::default())
                }
                _ => None,
            }
        };
        let result = self.write_spans(start, data);
        if let (Ok(()), Some(hash)) = (&result, &mut in_order) {
            hash.add(data);
        }
        if let Some(writes) = lock(&self.state).writes.get_mut(&piece) {
            writes.count.in_flight -= 1;
            if result.is_ok() {
                writes.in_order = in_order;
            }
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
    /// [`Storage::flush`]); a mismatch leaves it missing. A piece already verified is not read
    /// again. A piece whose every write went to its hash in order is not read back; any other
    /// is, and if blocks of it are written while it is hashed, it is hashed again (a few
    /// times, then [`StorageError::PieceBusy`]): a verdict always covers exactly the bytes on
    /// disk.
    pub fn verify_piece(&self, piece: u32) -> Result<PieceCheck, StorageError> {
        let size = self.piece_size(piece)?;
        let start = self.geometry.piece_offset(piece);
        {
            let mut state = lock(&self.state);
            if state.have.contains(piece) {
                return Ok(PieceCheck::Verified);
            }
            if let Some(digest) = Self::take_in_order_digest(&mut state, piece, size) {
                return Ok(self.verdict(state, piece, start, size, digest));
            }
        }
        let mut buf = AlignedBuf::new((size as usize).min(CHUNK));
        for _ in 0..VERIFY_ATTEMPTS {
            let writes_before = {
                let state = lock(&self.state);
                if state.have.contains(piece) {
                    return Ok(PieceCheck::Verified);
                }
                WriteCount::of(&state, piece)
            };
            let digest = self.hash_on_disk(start, size, &mut buf)?;
            let state = lock(&self.state);
            if writes_before.in_flight > 0 || WriteCount::of(&state, piece) != writes_before {
                continue; // a write overlapped the hashing: what was hashed proves nothing
            }
            return Ok(self.verdict(state, piece, start, size, digest));
        }
        Err(StorageError::PieceBusy { piece })
    }

    /// The digest of a piece hashed as it was written, if that hash covers every write made
    /// to it (in order, none in flight) and the whole piece: then it is the digest of the
    /// bytes on disk.
    fn take_in_order_digest(state: &mut State, piece: u32, size: u32) -> Option<[u8; 20]> {
        let writes = state.writes.get_mut(&piece)?;
        let count = writes.count;
        let complete = count.in_flight == 0
            && writes
                .in_order
                .as_ref()
                .is_some_and(|h| h.next == size && h.writes == count.started - writes.failed_at);
        complete
            .then(|| writes.in_order.take())
            .flatten()
            .map(InOrderHash::finish)
    }

    /// Settles `piece` on `digest`, the hash of its bytes on disk while `state` was held and
    /// no write to it was in flight. A mismatch marks where the piece's next download starts,
    /// so that it gets a fresh in-order hash.
    fn verdict(
        &self,
        mut state: MutexGuard<'_, State>,
        piece: u32,
        start: u64,
        size: u32,
        digest: [u8; 20],
    ) -> PieceCheck {
        if self.info.piece_hash(piece as usize) == Some(digest) {
            self.mark_verified(state, piece, start, size);
            PieceCheck::Verified
        } else {
            if let Some(writes) = state.writes.get_mut(&piece) {
                writes.in_order = None;
                writes.failed_at = writes.count.started;
            }
            PieceCheck::HashMismatch
        }
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

    fn hash_on_disk(
        &self,
        start: u64,
        size: u32,
        buf: &mut AlignedBuf,
    ) -> Result<[u8; 20], StorageError> {
        let mut hasher = Sha1::new();
        let mut done = 0usize;
        while done < size as usize {
            let chunk = &mut buf.as_mut()[..(size as usize - done).min(CHUNK)];
            self.read_at(start + done as u64, chunk)?;
            hasher.update(&*chunk);
            done += chunk.len();
        }
        Ok(hasher.finalize().into())
    }
}

/// How many writes a piece has had, and how many are unfinished.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct WriteCount {
    /// Writes begun so far.
    started: u64,
    /// Writes begun and not yet finished.
    in_flight: u32,
}

impl WriteCount {
    fn of(state: &State, piece: u32) -> Self {
        state
            .writes
            .get(&piece)
            .map_or_else(Self::default, |w| w.count)
    }
}

/// A piece's SHA-1 over its first `next` bytes, fed by `writes` contiguous writes in order.
/// Bytes that fall in pad files are hashed as the peer sent them (they are not written): a
/// peer that sends anything but zeros there fails the piece, as it should.
#[derive(Debug, Clone, Default)]
pub(super) struct InOrderHash {
    hasher: Sha1,
    next: u32,
    writes: u64,
}

impl InOrderHash {
    fn add(&mut self, data: &[u8]) {
        self.hasher.update(data);
        // Blocks were checked against the piece's size, so this stays within u32.
        self.next += data.len() as u32;
        self.writes += 1;
    }

    fn finish(self) -> [u8; 20] {
        self.hasher.finalize().into()
    }
}
