//! One node of a group during a run: its process, its record and what it last reported.

use std::net::SocketAddr;
use std::time::Duration;

use crate::record::{NodeRecord, Sample};
use crate::scenario::{Group, Leave, Role};

use super::member::Member;
use super::plan::{NodePaths, NodePlan, role_name};
use super::stats::NodeStats;

/// Grace period between SIGINT and SIGKILL for a node that leaves.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Where a node is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Its join time has not come.
    Waiting,
    Running,
    /// SIGSTOPped.
    Paused,
    /// Left, was killed, or exited on its own.
    Gone,
}

/// A node of the run.
#[derive(Debug)]
pub struct Node {
    pub plan: NodePlan,
    pub role: Role,
    pub leave: Leave,
    pub paths: NodePaths,
    pub record: NodeRecord,
    pub phase: Phase,
    pub proc: Option<Member>,
    pub metrics: Option<SocketAddr>,
    pub last: Option<NodeStats>,
    /// When a leaving node is killed if it has not exited by then.
    stop_deadline: Option<Duration>,
}

impl Node {
    /// A node that has not started.
    pub fn new(plan: NodePlan, group: &Group, paths: NodePaths) -> Node {
        let record = NodeRecord {
            name: plan.name.clone(),
            group: group.name.clone(),
            role: role_name(group.role).to_owned(),
            should_complete: group.role.should_complete(),
            join_s: plan.join.as_secs_f64(),
            completed_s: None,
            left_s: None,
            bytes_up: 0,
            bytes_down: 0,
            duplicate_bytes: 0,
            peers_by_source: Default::default(),
            bans: 0,
            content_ok: false,
            upload_limit: group.upload_limit,
            download_limit: group.download_limit,
            samples: Vec::new(),
        };
        Node {
            plan,
            role: group.role,
            leave: group.leave,
            paths,
            record,
            phase: Phase::Waiting,
            proc: None,
            metrics: None,
            last: None,
            stop_deadline: None,
        }
    }

    /// Pieces held now (all of them once complete).
    pub fn pieces(&self, num_pieces: u32) -> u32 {
        if self.record.completed_s.is_some() {
            return num_pieces;
        }
        self.last.as_ref().map_or(0, |s| s.pieces_have)
    }

    /// Whether the run need not wait for this node: it completed, is not expected to, or its
    /// process is gone (a crash: it stays expected to complete, so the run fails).
    pub fn finished(&self) -> bool {
        !self.record.should_complete
            || self.record.completed_s.is_some()
            || self.phase == Phase::Gone
    }

    /// Expected to complete and did not.
    pub fn failed(&self) -> bool {
        self.record.should_complete && self.record.completed_s.is_none()
    }

    /// Takes a `/stats` poll taken at `t`; returns true when this poll shows completion for the
    /// first time.
    pub fn observe(&mut self, stats: NodeStats, t: f64) -> bool {
        let r = &mut self.record;
        r.bytes_up = stats.bytes_uploaded;
        r.bytes_down = stats.bytes_downloaded;
        r.duplicate_bytes = stats.duplicate_bytes;
        r.bans = r.bans.max(stats.banned_peers);
        for (source, &n) in &stats.peers_by_source {
            let seen = r.peers_by_source.entry(source.clone()).or_insert(0);
            *seen = (*seen).max(n);
        }
        r.samples.push(Sample {
            t,
            pieces: stats.pieces_have,
            bytes_up: stats.bytes_uploaded,
            bytes_down: stats.bytes_downloaded,
            peers_by_source: stats.peers_by_source.clone(),
        });
        let newly = stats.complete && r.completed_s.is_none() && self.role != Role::Seeder;
        if newly {
            r.completed_s = Some(t);
        }
        self.last = Some(stats);
        newly
    }

    /// Whether its leave condition holds at `t` (`content_size` for upload ratios).
    pub fn should_leave(&self, t: Duration, content_size: u64) -> bool {
        if self.phase != Phase::Running {
            return false;
        }
        match self.leave {
            Leave::Never | Leave::OnCompletion => false,
            Leave::At(at) => t >= at,
            Leave::AfterUploading(copies) => {
                self.record.bytes_up as f64 >= copies * content_size as f64
            }
        }
    }

    /// Asks the process to stop (SIGINT, then SIGKILL after a grace period): a planned leave.
    pub fn leave_now(&mut self, t: Duration) {
        if let Some(proc) = &mut self.proc {
            proc.signal("INT");
        }
        self.gone(t, true);
        self.stop_deadline = Some(t + STOP_GRACE);
    }

    /// SIGKILL: a fault. A node killed before completing is no longer expected to complete.
    pub fn kill_now(&mut self, t: Duration) {
        if let Some(proc) = &mut self.proc {
            proc.kill();
        }
        self.gone(t, true);
    }

    /// The process is gone at `t`; `planned` (a leave or a fault): a node that had not
    /// completed is no longer expected to.
    fn gone(&mut self, t: Duration, planned: bool) {
        if planned && self.record.completed_s.is_none() {
            self.record.should_complete = false;
        }
        self.record.left_s.get_or_insert(t.as_secs_f64());
        self.phase = Phase::Gone;
    }

    /// Notices a process that exited on its own (`--exit-when-done`, or a crash); kills one that
    /// overstayed its grace period. Returns true when the node completed by exiting.
    pub fn check_exit(&mut self, t: Duration) -> bool {
        let Some(proc) = &mut self.proc else {
            return false;
        };
        if let Some(deadline) = self.stop_deadline {
            if t >= deadline {
                proc.kill();
            }
        }
        if self.phase != Phase::Running {
            return false;
        }
        let Some(success) = proc.exited() else {
            return false;
        };
        let completed = proc.lines().complete && success;
        let newly = completed && self.record.completed_s.is_none();
        if newly {
            self.record.completed_s = Some(t.as_secs_f64());
        }
        if !completed {
            tracing::warn!(node = %self.plan.name, success, "node exited before completing");
        }
        self.gone(t, false);
        newly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::plan::tests::group;
    use std::path::Path;

    fn node(role: Role, leave: Leave) -> Node {
        let mut g = group("g", role, 1);
        g.leave = leave;
        let plan = NodePlan {
            name: "g-00".into(),
            group: 0,
            join: Duration::ZERO,
        };
        let mut n = Node::new(plan, &g, NodePaths::new(Path::new("/x"), "g-00"));
        n.phase = Phase::Running;
        n
    }

    fn stats(pieces: u32, up: u64) -> NodeStats {
        NodeStats {
            pieces_have: pieces,
            num_pieces: 4,
            complete: pieces == 4,
            bytes_uploaded: up,
            ..NodeStats::default()
        }
    }

    #[test]
    fn completion_is_the_first_complete_poll() {
        let mut n = node(Role::Leecher, Leave::Never);
        assert!(!n.observe(stats(2, 0), 1.0));
        assert_eq!(n.pieces(4), 2);
        assert!(n.observe(stats(4, 0), 2.0));
        assert!(!n.observe(stats(4, 0), 3.0));
        assert_eq!(n.record.completed_s, Some(2.0));
        assert_eq!(n.record.samples.len(), 3);
        assert!(n.finished());
    }

    #[test]
    fn leave_conditions() {
        let mut n = node(Role::Leecher, Leave::AfterUploading(2.0));
        n.observe(stats(4, 150), 1.0);
        assert!(!n.should_leave(Duration::from_secs(1), 100));
        n.observe(stats(4, 200), 2.0);
        assert!(n.should_leave(Duration::from_secs(2), 100));
        let n = node(Role::Seeder, Leave::At(Duration::from_secs(5)));
        assert!(!n.should_leave(Duration::from_secs(4), 100));
        assert!(n.should_leave(Duration::from_secs(5), 100));
    }

    #[test]
    fn a_killed_leecher_is_no_longer_expected_to_complete() {
        let mut n = node(Role::Leecher, Leave::Never);
        assert!(!n.finished());
        n.kill_now(Duration::from_secs(3));
        assert!(n.finished());
        assert_eq!(n.record.left_s, Some(3.0));
        assert_eq!(n.phase, Phase::Gone);
        assert!(!n.failed());
    }

    #[test]
    fn a_crashed_leecher_fails_the_run() {
        let logs = tempfile::tempdir().unwrap();
        let mut n = node(Role::Leecher, Leave::Never);
        let proc = crate::runner::process::Proc::spawn(Path::new("false"), &[], logs.path());
        n.proc = Some(Member::Process(proc.unwrap()));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !n.check_exit(Duration::from_secs(1)) && n.phase == Phase::Running {
            assert!(std::time::Instant::now() < deadline, "`false` did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(n.phase, Phase::Gone);
        assert!(n.finished() && n.failed());
        assert_eq!(n.record.left_s, Some(1.0));
    }
}
