//! Whether a torrent's disk still works: a disk that keeps failing stops the torrent rather
//! than have it fetch the same blocks forever.

use std::collections::HashMap;

use shoal_swarm::Event;

/// Disk writes and read-backs that may fail in a row (or for one piece) before the torrent
/// stops with the disk's error.
const MAX_DISK_FAILURES_IN_A_ROW: u32 = 8;

/// Disk failures: in a row (a full disk fails every write), and per piece (a broken file fails
/// every write to its pieces while the other files' succeed). Either way, past a limit the
/// torrent stops: fetching the same blocks again and again would only waste the peers' upload.
#[derive(Debug, Default)]
pub(super) struct DiskHealth {
    in_a_row: u32,
    /// Failed writes and read-backs per piece since it last verified; bounded by the piece
    /// count (and emptied as pieces verify).
    per_piece: HashMap<u32, u32>,
    last_error: Option<String>,
    failed: bool,
}

impl DiskHealth {
    pub(super) fn record(&mut self, event: &Event, failure: Option<String>) {
        // Only writes and read-backs count: a block read to serve a peer says nothing either
        // way (its failure is the peer's Reject, and it must not pass for a success).
        let piece = match event {
            Event::BlockWritten { block, .. } => block.piece,
            Event::PieceVerified { piece, .. } | Event::PieceUnverifiable { piece } => *piece,
            _ => return,
        };
        match failure {
            Some(error) => {
                self.in_a_row += 1;
                let of_piece = self.per_piece.entry(piece).or_insert(0);
                *of_piece += 1;
                let of_piece = *of_piece;
                self.last_error = Some(error);
                self.failed |= self.in_a_row >= MAX_DISK_FAILURES_IN_A_ROW
                    || of_piece >= MAX_DISK_FAILURES_IN_A_ROW;
            }
            None => {
                self.in_a_row = 0;
                if matches!(event, Event::PieceVerified { .. }) {
                    self.per_piece.remove(&piece);
                }
            }
        }
    }

    /// The last error, once the disk has failed too often.
    pub(super) fn failed(&self) -> Option<&str> {
        self.last_error.as_deref().filter(|_| self.failed)
    }
}

#[cfg(test)]
mod tests {
    use shoal_wire::BlockRef;

    use super::*;

    fn written(piece: u32) -> Event {
        Event::BlockWritten {
            block: BlockRef {
                piece,
                offset: 0,
                length: 16384,
            },
            ok: true,
        }
    }

    #[test]
    fn failures_in_a_row_stop_a_torrent_and_one_success_resets_them() {
        let mut health = DiskHealth::default();
        let full = || Some("No space left on device".to_owned());
        for piece in 0..MAX_DISK_FAILURES_IN_A_ROW - 1 {
            health.record(&written(piece), full());
        }
        assert_eq!(health.failed(), None);
        health.record(&written(100), None);
        for piece in 0..MAX_DISK_FAILURES_IN_A_ROW - 1 {
            health.record(&written(piece + 200), full());
        }
        assert_eq!(health.failed(), None);
        health.record(&written(300), Some("Read-only file system".into()));
        assert_eq!(health.failed(), Some("Read-only file system"));
    }

    #[test]
    fn a_failed_read_for_a_peer_is_not_a_success() {
        let mut health = DiskHealth::default();
        let full = || Some("No space left on device".to_owned());
        let serve_failed = Event::ServeFailed {
            peer: shoal_swarm::PeerKey(1),
            block: BlockRef {
                piece: 0,
                offset: 0,
                length: 16384,
            },
        };
        for piece in 0..MAX_DISK_FAILURES_IN_A_ROW {
            health.record(&written(piece), full());
            health.record(&serve_failed, None);
        }
        assert_eq!(health.failed(), Some("No space left on device"));
    }

    #[test]
    fn a_piece_that_keeps_failing_stops_a_torrent_among_successes() {
        let mut health = DiskHealth::default();
        let broken = || Some("Is a directory".to_owned());
        for _ in 0..MAX_DISK_FAILURES_IN_A_ROW - 1 {
            health.record(&written(7), broken());
            health.record(&written(1), None);
        }
        assert_eq!(health.failed(), None);
        // A piece that verifies in the end is forgiven.
        health.record(&Event::PieceVerified { piece: 7, ok: true }, None);
        health.record(&written(7), broken());
        assert_eq!(health.failed(), None);
        for _ in 0..MAX_DISK_FAILURES_IN_A_ROW {
            health.record(&Event::PieceUnverifiable { piece: 9 }, broken());
            health.record(&written(1), None);
        }
        assert_eq!(health.failed(), Some("Is a directory"));
    }
}
