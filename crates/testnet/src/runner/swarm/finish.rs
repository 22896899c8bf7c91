//! The end of a run: every process stopped, every node's download compared with the original,
//! the record made.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::warn;

use crate::content::same_content;
use crate::record::RunRecord;

use super::super::node::Phase;
use super::super::{Interrupts, RunEvent};
use super::Swarm;

impl Swarm {
    /// Kills every process (and aborts every in-process node) the run started.
    pub fn stop_all(&mut self) {
        for node in &mut self.nodes {
            if let Some(proc) = &mut node.proc {
                proc.kill();
            }
        }
        for proc in &mut self.bootstrap {
            proc.kill();
        }
        if let Some(tracker) = &mut self.tracker {
            tracker.kill();
        }
    }

    /// Compares every started node's download with the generated original, byte for byte, in
    /// a blocking thread. An interrupt from now on, or a second one in all, cuts it short: the
    /// nodes not compared by then keep `content_ok: None`.
    pub async fn check_content(&mut self, mut interrupts: Interrupts) {
        let copies: Vec<(usize, PathBuf)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.phase != Phase::Waiting)
            .map(|(i, n)| (i, n.paths.download_dir.join(&self.sources.content_name)))
            .collect();
        self.emit(RunEvent::CheckingContent {
            nodes: copies.len(),
        });
        let original = self.content.path.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let mut task = tokio::task::spawn_blocking(move || {
            copies
                .into_iter()
                .map(|(i, copy)| (i, same_content(&original, &copy, &flag)))
                .collect::<Vec<_>>()
        });
        let cut_at = cut_check_at(interrupts.count());
        let checked = tokio::select! {
            checked = &mut task => checked,
            () = interrupts.reached(cut_at) => {
                cancel.store(true, Ordering::Relaxed);
                task.await
            }
        };
        match checked {
            Ok(checked) => {
                for (i, ok) in checked {
                    if let Some(node) = self.nodes.get_mut(i) {
                        node.record.content_ok = ok;
                    }
                }
            }
            Err(e) => warn!(error = %e, "the content check failed; no node's content is known"),
        }
    }

    /// The run's record, ended at `t`.
    pub fn record(&self, t: Duration, timed_out: bool, started_unix: u64) -> RunRecord {
        RunRecord {
            scenario: self.scenario.name.clone(),
            seed: self.scenario.seed,
            started_unix,
            duration_s: t.as_secs_f64(),
            content_size: self.content.size,
            num_pieces: self.content.num_pieces,
            mode: if self.in_process {
                "in-process"
            } else {
                "processes"
            }
            .to_owned(),
            timed_out,
            nodes: self.nodes.iter().map(|n| n.record.clone()).collect(),
            faults: self.faults.clone(),
        }
    }
}

/// The interrupt count that cuts the content check short, given the count when it starts: the
/// next request, or at once if two were made already (the first ended the run, the second
/// meant "do not wait").
fn cut_check_at(before: u32) -> u32 {
    if before >= 2 { before } else { before + 1 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_check_is_cut_by_the_next_or_a_second_interrupt() {
        use super::cut_check_at;
        assert_eq!(
            cut_check_at(0),
            1,
            "a run that ended by itself: the first Ctrl-C"
        );
        assert_eq!(cut_check_at(1), 2, "an interrupted run: the second Ctrl-C");
        assert_eq!(cut_check_at(2), 2, "pressed twice already: at once");
        assert_eq!(cut_check_at(5), 5);
    }
}
