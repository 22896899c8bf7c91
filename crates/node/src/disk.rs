//! A torrent's disk work, off the async threads: one thread writes blocks, one verifies pieces,
//! one reads blocks for uploads.
//!
//! One writer per torrent rather than a task per block: concurrent writes to one file contend
//! on the kernel's inode lock and cost a thread wake-up each (measured: 1 GiB at 156 MB/s with a
//! blocking task per block). Verification has its own thread so hashing never holds up writes,
//! and uploads their own so serving peers never waits behind our download.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use shoal_storage::{PieceCheck, Storage, StorageError};
use tracing::warn;

/// Where a finished job's result goes.
pub(crate) type Reply = Box<dyn FnOnce(Done) + Send>;

/// A job for one of the disk threads.
pub(crate) enum Job {
    /// Blocks to write, in order: all that one turn of the session produced, so a burst of
    /// blocks costs one wake-up of the write thread and one reply rather than one per block.
    Write(Vec<shoal_wire::Block>, Reply),
    Verify(u32, Reply),
    /// Blocks for one peer, in the order it asked for them.
    Read(Vec<shoal_wire::BlockRef>, Reply),
    Flush,
    /// A resume record if one is due (a quiet torrent's last verified pieces get recorded).
    FlushIfDue,
}

/// What a finished job reports.
pub(crate) enum Done {
    /// Each block of a [`Job::Write`], and what the disk said if it could not be written.
    Written {
        blocks: Vec<(shoal_wire::BlockRef, Result<(), String>)>,
    },
    /// `Ok(matched)`: the piece was hashed; `Err`: it could not be read back to be hashed.
    Verified {
        piece: u32,
        result: Result<bool, String>,
    },
    /// Each block of a [`Job::Read`], with its bytes or why they could not be read.
    Read {
        blocks: Vec<(shoal_wire::BlockRef, Result<bytes::Bytes, String>)>,
    },
}

/// The three queues and their threads. Dropping it lets the threads finish what is queued and
/// exit; [`Disk::finish`] also waits for them.
pub(crate) struct Disk {
    writes: std_mpsc::Sender<Job>,
    verifies: std_mpsc::Sender<Job>,
    reads: std_mpsc::Sender<Job>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Disk {
    pub(crate) fn start(storage: Arc<Storage>, name: &str) -> std::io::Result<Self> {
        let mut threads = Vec::with_capacity(3);
        let mut spawn = |role: &str| -> std::io::Result<std_mpsc::Sender<Job>> {
            let (tx, rx) = std_mpsc::channel::<Job>();
            let storage = storage.clone();
            let thread = std::thread::Builder::new()
                .name(format!("shoal-{role}-{name}"))
                .spawn(move || {
                    for job in rx {
                        run(&storage, job);
                    }
                })?;
            threads.push(thread);
            Ok(tx)
        };
        let (writes, verifies, reads) = (spawn("write")?, spawn("verify")?, spawn("read")?);
        Ok(Self {
            writes,
            verifies,
            reads,
            threads,
        })
    }

    /// Lets the threads finish what is queued, and waits until they have exited (and dropped
    /// their share of the storage). Blocking: call it off the async threads.
    pub(crate) fn finish(self) {
        let Self {
            writes,
            verifies,
            reads,
            threads,
        } = self;
        drop((writes, verifies, reads));
        for thread in threads {
            if thread.join().is_err() {
                warn!("a disk thread panicked");
            }
        }
    }

    pub(crate) fn submit(&self, job: Job) {
        let queue = match &job {
            Job::Write(..) | Job::Flush | Job::FlushIfDue => &self.writes,
            Job::Verify(..) => &self.verifies,
            Job::Read(..) => &self.reads,
        };
        if queue.send(job).is_err() {
            warn!("a disk thread has stopped; dropping its work");
        }
    }
}

/// Reads `blocks` one by one: a 16 KiB buffer per block is still in the CPU's caches when the
/// block is encrypted and sent, where one large read for a run of blocks measured slower.
fn read_blocks(
    storage: &Storage,
    blocks: &[shoal_wire::BlockRef],
) -> Vec<(shoal_wire::BlockRef, Result<bytes::Bytes, String>)> {
    blocks
        .iter()
        .map(|block| {
            let data = storage
                .read_block(block.piece, block.offset, block.length)
                .map(bytes::Bytes::from)
                .map_err(|e| e.to_string());
            (*block, data)
        })
        .collect()
}

fn write_block(
    storage: &Storage,
    block: &shoal_wire::Block,
) -> (shoal_wire::BlockRef, Result<(), String>) {
    let result = match storage.write_block(block.piece, block.offset, &block.data) {
        Ok(()) => Ok(()),
        // A late end-game copy of a block whose piece is already verified: nothing to write,
        // nothing to fetch again.
        Err(StorageError::PieceAlreadyVerified { .. }) => Ok(()),
        Err(e) => {
            warn!(piece = block.piece, error = %e, "block write failed");
            Err(e.to_string())
        }
    };
    (block.block_ref(), result)
}

fn run(storage: &Storage, job: Job) {
    match job {
        Job::Write(blocks, reply) => reply(Done::Written {
            blocks: blocks
                .iter()
                .map(|block| write_block(storage, block))
                .collect(),
        }),
        Job::Verify(piece, reply) => {
            let result = match storage.verify_piece(piece) {
                Ok(PieceCheck::Verified) => Ok(true),
                Ok(PieceCheck::HashMismatch) => {
                    warn!(piece, "piece failed verification");
                    Ok(false)
                }
                Err(e) => {
                    warn!(piece, error = %e, "piece could not be verified; fetching it again");
                    Err(e.to_string())
                }
            };
            log_flush(storage.flush_if_due());
            reply(Done::Verified { piece, result });
        }
        Job::Read(blocks, reply) => reply(Done::Read {
            blocks: read_blocks(storage, &blocks),
        }),
        Job::Flush => log_flush(storage.flush()),
        Job::FlushIfDue => log_flush(storage.flush_if_due()),
    }
}

/// A failed resume record is only logged: the pieces stay unrecorded and the next flush
/// tries again.
fn log_flush(result: Result<(), StorageError>) {
    if let Err(e) = result {
        warn!(error = %e, "saving resume state failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_metainfo::{CreateOptions, create_torrent};
    use shoal_storage::StorageConfig;
    use shoal_wire::BlockRef;

    #[test]
    fn each_block_of_a_batch_gets_its_bytes_or_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("f"), &content).unwrap();
        let options = CreateOptions {
            piece_length: Some(65536),
            ..CreateOptions::default()
        };
        let torrent = create_torrent(&dir.path().join("f"), &options, &mut |_| {})
            .unwrap()
            .torrent;
        let config = StorageConfig {
            read_only: true,
            ..StorageConfig::default()
        };
        let state = dir.path().join("state");
        let opened =
            Storage::open(torrent.info_hash, &torrent.info, dir.path(), &state, config).unwrap();
        let block = |piece: u32, offset: u32, length: u32| BlockRef {
            piece,
            offset,
            length,
        };
        // Three in piece 0, piece 3 (the short last one, 3392 bytes), one out of range.
        let asked = [
            block(0, 0, 16384),
            block(0, 16384, 16384),
            block(0, 32768, 16384),
            block(3, 0, 200_000 - 3 * 65536),
            block(7, 0, 16384),
        ];
        let got = read_blocks(&opened.storage, &asked);
        assert_eq!(got.len(), asked.len());
        for (i, (b, data)) in got.iter().enumerate().take(4) {
            assert_eq!(*b, asked[i]);
            let start = (b.piece * 65536 + b.offset) as usize;
            let data = data.as_ref().unwrap();
            assert_eq!(
                &data[..],
                &content[start..start + b.length as usize],
                "block {i}"
            );
        }
        assert!(got[4].1.is_err(), "piece 7 does not exist");
    }
}
