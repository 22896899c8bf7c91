//! A bounded cache of open file handles, and which files hold data not yet synced.

use std::collections::BTreeSet;
use std::fs::File;
use std::sync::Arc;

use crate::error::StorageError;
use crate::layout::{Layout, open_data_file, open_data_file_read};

/// Default number of files kept open at once: torrents with 100k files must not exhaust the
/// process's descriptors.
pub const DEFAULT_OPEN_FILES: usize = 64;

/// Least-recently-used open handles (a linear scan over at most a few hundred entries is
/// cheaper than any map at this size). Handles are `Arc`s so I/O runs outside the lock.
#[derive(Debug)]
pub(crate) struct OpenFiles {
    capacity: usize,
    read_only: bool,
    slots: Vec<Slot>,
    tick: u64,
    /// Files written (or holding newly verified pieces) since they were last synced.
    unsynced: BTreeSet<usize>,
    /// Files written since the last resume record: their size and mtime must be read again.
    touched: BTreeSet<usize>,
}

#[derive(Debug)]
struct Slot {
    index: usize,
    file: Arc<File>,
    used: u64,
}

impl OpenFiles {
    pub fn new(capacity: usize, read_only: bool) -> Self {
        Self {
            capacity: capacity.max(1),
            read_only,
            slots: Vec::new(),
            tick: 0,
            unsynced: BTreeSet::new(),
            touched: BTreeSet::new(),
        }
    }

    /// The handle of file `index`, opening it (and closing the least recently used one) if
    /// needed. A file closed with unsynced data is synced first, so that no write error is
    /// lost with its descriptor.
    pub fn get(&mut self, layout: &Layout, index: usize) -> Result<Arc<File>, StorageError> {
        self.tick += 1;
        if let Some(slot) = self.slots.iter_mut().find(|s| s.index == index) {
            slot.used = self.tick;
            return Ok(Arc::clone(&slot.file));
        }
        let Some(path) = layout.files.get(index).and_then(|f| f.data_path()) else {
            return Err(StorageError::UnsafePath {
                path: format!("file #{index}"),
                reason: "not a data file",
            });
        };
        if self.slots.len() >= self.capacity {
            self.evict(layout)?;
        }
        let file = Arc::new(if self.read_only {
            open_data_file_read(path)?
        } else {
            open_data_file(path, true)?
        });
        self.slots.push(Slot {
            index,
            file: Arc::clone(&file),
            used: self.tick,
        });
        Ok(file)
    }

    fn evict(&mut self, layout: &Layout) -> Result<(), StorageError> {
        let Some((at, _)) = self.slots.iter().enumerate().min_by_key(|(_, s)| s.used) else {
            return Ok(());
        };
        let index = self.slots[at].index;
        if self.unsynced.contains(&index) {
            if let Some(path) = layout.files[index].data_path() {
                self.slots[at]
                    .file
                    .sync_data()
                    .map_err(|e| StorageError::io(path, "sync", e))?;
            }
            self.unsynced.remove(&index);
        }
        self.slots.swap_remove(at);
        Ok(())
    }

    /// Records that file `index` was written.
    pub fn mark_written(&mut self, index: usize) {
        self.unsynced.insert(index);
        self.touched.insert(index);
    }

    /// Records that file `index` must be synced before a resume record may name its pieces.
    pub fn mark_unsynced(&mut self, index: usize) {
        self.unsynced.insert(index);
    }

    /// Takes the files to sync and the files to stat again (a superset of the first).
    pub fn take_pending(&mut self) -> (BTreeSet<usize>, BTreeSet<usize>) {
        let unsynced = std::mem::take(&mut self.unsynced);
        let mut touched = std::mem::take(&mut self.touched);
        touched.extend(unsynced.iter().copied());
        (unsynced, touched)
    }

    /// Puts back what a failed flush took.
    pub fn restore_pending(&mut self, unsynced: BTreeSet<usize>, touched: BTreeSet<usize>) {
        self.unsynced.extend(unsynced);
        self.touched.extend(touched);
    }

    pub fn open_count(&self) -> usize {
        self.slots.len()
    }
}
