//! What is done to the nodes during a run: leaving, and faults as they fire.

use std::time::Duration;

use rand::seq::SliceRandom;
use tracing::warn;

use crate::record::FaultRecord;
use crate::scenario::{FaultAction, Role};

use super::super::RunError;
use super::super::RunEvent;
use super::super::faults::{Churn, describe};
use super::super::node::{Node, Phase};
use super::super::plan::{self, NodePaths, NodePlan};
use super::super::stats::swarm_progress;
use super::Swarm;

impl Swarm {
    /// Stops nodes whose leave condition holds (paused ones too: they are resumed to stop),
    /// and kills seeders past one uploaded copy once that fault fired.
    pub fn leave(&mut self, t: Duration) {
        let size = self.content.size;
        for i in 0..self.nodes.len() {
            let node = &self.nodes[i];
            let one_copy = self.seeders_one_copy
                && node.role == Role::Seeder
                && node.phase.alive()
                && node.record.bytes_up >= size;
            if node.should_leave(t, size) {
                self.nodes[i].leave_now(t);
            } else if one_copy {
                self.nodes[i].kill_now(t);
                let what = format!(
                    "{} killed ({}) after uploading one copy",
                    self.nodes[i].plan.name,
                    self.kill_word()
                );
                self.record_fault(t, what);
            }
        }
    }

    /// How a kill is done: `kill -9`, or an abort for nodes in this process.
    fn kill_word(&self) -> &'static str {
        if self.in_process {
            "aborted"
        } else {
            "kill -9"
        }
    }

    /// Swarm progress over the nodes that should complete.
    pub fn progress(&self) -> f64 {
        let n = self.content.num_pieces;
        let held: Vec<u32> = self
            .nodes
            .iter()
            .filter(|node| node.record.should_complete)
            .map(|node| node.pieces(n))
            .collect();
        swarm_progress(&held, n)
    }

    pub(super) fn record_fault(&mut self, t: Duration, what: String) {
        let t = t.as_secs_f64();
        tracing::info!(t, %what, "fault");
        self.emit(RunEvent::FaultFired {
            t,
            what: what.clone(),
        });
        self.faults.push(FaultRecord { t, what });
    }

    /// Fires the faults that are due and carries on churns.
    pub async fn faults(&mut self, t: Duration) -> Result<(), RunError> {
        let progress = self.progress();
        let due = self.clock.due(&self.scenario.faults, t, progress);
        for i in due {
            let Some(fault) = self.scenario.faults.get(i) else {
                continue;
            };
            let action = fault.action.clone();
            self.record_fault(t, describe(&action, self.in_process));
            self.apply(&action, t).await?;
        }
        let mut churns = std::mem::take(&mut self.churns);
        for churn in &mut churns {
            for _ in 0..churn.due(t) {
                self.replace_one(&churn.group, t)?;
            }
        }
        churns.retain(|c| !c.done());
        self.churns = churns;
        Ok(())
    }

    async fn apply(&mut self, action: &FaultAction, t: Duration) -> Result<(), RunError> {
        match action {
            FaultAction::KillTracker => {
                if let Some(tracker) = &mut self.tracker {
                    tracker.kill();
                }
            }
            FaultAction::RestartTracker => {
                if let Some(tracker) = &mut self.tracker {
                    tracker.kill();
                }
                if let Err(e) = self.start_tracker().await {
                    warn!(error = %e, "tracker restart failed");
                    self.record_fault(t, format!("tracker restart failed: {e}"));
                }
            }
            FaultAction::Kill { group, count } => {
                for i in self.pick(group, *count, Phase::alive) {
                    self.nodes[i].kill_now(t);
                }
            }
            FaultAction::Pause { group, count } => {
                for i in self.pick(group, *count, |p| p == Phase::Running) {
                    let node = &mut self.nodes[i];
                    if node.proc.as_mut().is_some_and(|p| p.pause()) {
                        node.phase = Phase::Paused;
                    }
                }
            }
            FaultAction::Resume { group } => {
                for i in self.pick(group, None, |p| p == Phase::Paused) {
                    if let Some(proc) = &mut self.nodes[i].proc {
                        proc.resume();
                    }
                    self.nodes[i].phase = Phase::Running;
                }
            }
            FaultAction::Churn { .. } => self.churns.extend(Churn::new(action, t)),
            FaultAction::KillSeedersAfterOneCopy => self.seeders_one_copy = true,
        }
        Ok(())
    }

    /// `count` (all if `None`) random nodes of `group` whose phase passes `phase`.
    fn pick(&mut self, group: &str, count: Option<u32>, phase: fn(Phase) -> bool) -> Vec<usize> {
        let mut found: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].record.group == group && phase(self.nodes[i].phase))
            .collect();
        found.shuffle(&mut self.rng);
        if let Some(count) = count {
            found.truncate(count as usize);
        }
        found.sort_unstable();
        found
    }

    /// Churn: kills one random node of `group` (running or paused) and starts a fresh one in
    /// its place.
    fn replace_one(&mut self, group: &str, t: Duration) -> Result<(), RunError> {
        let Some(victim) = self.pick(group, Some(1), Phase::alive).first().copied() else {
            return Ok(());
        };
        self.nodes[victim].kill_now(t);
        let g = self.nodes[victim].plan.group;
        let Some(spec) = self.scenario.groups.get(g) else {
            return Ok(());
        };
        let index = self.next_index.get(g).copied().unwrap_or(0);
        if let Some(next) = self.next_index.get_mut(g) {
            *next += 1;
        }
        let name = plan::node_name(group, index);
        let paths = NodePaths::new(&self.run_dir.join("nodes"), &name);
        let plan = NodePlan {
            name: name.clone(),
            group: g,
            join: t,
        };
        self.nodes.push(Node::new(plan, spec, paths));
        let what = format!(
            "churn: {} killed ({}) and replaced by {name}",
            self.nodes[victim].plan.name,
            self.kill_word()
        );
        self.record_fault(t, what);
        self.start_node(self.nodes.len() - 1)
    }
}
