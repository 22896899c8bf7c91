//! One node of a group during a run: its process, its record and what it last reported.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

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

impl Phase {
    /// Its process exists: running or paused (a paused one can still be killed or leave).
    pub fn alive(self) -> bool {
        matches!(self, Phase::Running | Phase::Paused)
    }
}

/// When a `/stats` poll was sent and answered, on the run clock (seconds), and when the node
/// added its torrent (the start of its own `time_to_complete_ms`), if known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    pub sent: f64,
    pub answered: f64,
    pub added: Option<f64>,
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
    /// When the last poll that showed it incomplete was sent: its completion came after.
    last_incomplete: Option<f64>,
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
            content_ok: None,
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
            last_incomplete: None,
        }
    }

    /// Its process (or in-process node) was started `at`: that is its join time.
    pub fn launched(&mut self, member: Member, at: Duration) {
        self.proc = Some(member);
        self.phase = Phase::Running;
        self.record.join_s = at.as_secs_f64();
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

    /// Takes the answer to a `/stats` poll; returns true when it shows completion for the
    /// first time. The sample is recorded at the time the poll was sent.
    pub fn observe(&mut self, stats: NodeStats, poll: Poll) -> bool {
        let newly =
            stats.complete && self.record.completed_s.is_none() && self.role != Role::Seeder;
        if newly {
            self.record.completed_s = Some(self.completion_time(&stats, poll));
        } else if !stats.complete {
            self.last_incomplete = Some(poll.sent);
        }
        let r = &mut self.record;
        r.bytes_up = stats.bytes_uploaded;
        r.bytes_down = stats.bytes_downloaded;
        r.duplicate_bytes = stats.duplicate_bytes;
        r.bans = r.bans.max(stats.banned_peers);
        for (source, &n) in &stats.peers_found_by_source {
            let found = r.peers_by_source.entry(source.clone()).or_insert(0);
            *found = (*found).max(n);
        }
        r.samples.push(Sample {
            t: poll.sent,
            pieces: stats.pieces_have,
            bytes_up: stats.bytes_uploaded,
            bytes_down: stats.bytes_downloaded,
            peers_by_source: stats.peers_by_source.clone(),
        });
        self.last = Some(stats);
        newly
    }

    /// When it completed, on the run clock: when it added its torrent plus its own
    /// `time_to_complete_ms`, which is exact to the millisecond where polls are a second
    /// apart. It must lie after the last poll that found it incomplete and before this answer;
    /// without the node's figure, the time this poll was sent.
    fn completion_time(&self, stats: &NodeStats, poll: Poll) -> f64 {
        let earliest = self.last_incomplete.unwrap_or(self.record.join_s);
        let latest = poll.answered.max(earliest);
        let own = poll
            .added
            .zip(stats.time_to_complete_ms)
            .map(|(added, ms)| added + ms as f64 / 1000.0);
        own.unwrap_or(poll.sent).clamp(earliest, latest)
    }

    /// Whether its leave condition holds at `t` (`content_size` for upload ratios).
    pub fn should_leave(&self, t: Duration, content_size: u64) -> bool {
        if !self.phase.alive() {
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
    /// A paused process is resumed first, so it can stop cleanly.
    pub fn leave_now(&mut self, t: Duration) {
        if let Some(proc) = &mut self.proc {
            if self.phase == Phase::Paused {
                proc.resume();
            }
            proc.stop();
        }
        self.gone(t, true);
        self.stop_deadline = Some(t + STOP_GRACE);
    }

    /// SIGKILL (an abort in-process), paused or not: a fault. A node killed before completing
    /// is no longer expected to complete.
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
    /// overstayed its grace period. Returns true when the node completed by exiting, at the
    /// time its `complete` line arrived (`epoch` is the start of the run clock).
    pub fn check_exit(&mut self, t: Duration, epoch: Instant) -> bool {
        let Some(proc) = &mut self.proc else {
            return false;
        };
        if let Some(deadline) = self.stop_deadline {
            if t >= deadline {
                proc.kill();
            }
        }
        if !self.phase.alive() {
            return false;
        }
        let Some(success) = proc.exited() else {
            return false;
        };
        let lines = proc.lines();
        let completed = lines.complete && success;
        let newly = completed && self.record.completed_s.is_none();
        if newly {
            let at = lines
                .complete_at
                .map(|c| c.saturating_duration_since(epoch));
            self.record.completed_s = Some(at.unwrap_or(t).min(t).as_secs_f64());
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

    fn poll(sent: f64, answered: f64, added: Option<f64>) -> Poll {
        Poll {
            sent,
            answered,
            added,
        }
    }

    fn done_in(ms: u64) -> NodeStats {
        NodeStats {
            time_to_complete_ms: Some(ms),
            ..stats(4, 0)
        }
    }

    #[test]
    fn completion_comes_from_the_nodes_own_clock() {
        let mut n = node(Role::Leecher, Leave::Never);
        n.record.join_s = 0.2;
        assert!(!n.observe(stats(2, 0), poll(1.0, 1.05, Some(0.3))));
        assert_eq!(n.pieces(4), 2);
        // Added at 0.3 s, complete 1.45 s later by its own clock: 1.75 s, not the 2.0 s poll.
        assert!(n.observe(done_in(1450), poll(2.0, 2.1, Some(0.3))));
        assert!(!n.observe(done_in(1450), poll(3.0, 3.1, Some(0.3))));
        assert!((n.record.completed_s.unwrap() - 1.75).abs() < 1e-9);
        assert_eq!(n.record.samples.len(), 3);
        assert_eq!(n.record.samples[1].t, 2.0);
        assert!(n.finished());
    }

    #[test]
    fn completion_stays_between_the_polls_that_bracket_it() {
        // Not after the answer that showed it...
        let mut n = node(Role::Leecher, Leave::Never);
        n.observe(stats(2, 0), poll(1.0, 1.1, Some(0.3)));
        n.observe(done_in(9000), poll(2.0, 2.1, Some(0.3)));
        assert_eq!(n.record.completed_s, Some(2.1));
        // ...nor before the poll that found it incomplete.
        let mut n = node(Role::Leecher, Leave::Never);
        n.observe(stats(2, 0), poll(1.0, 1.1, Some(0.3)));
        n.observe(done_in(100), poll(2.0, 2.1, Some(0.3)));
        assert_eq!(n.record.completed_s, Some(1.0));
        // Without the node's figure (or when it added the torrent): when the poll was sent.
        let mut n = node(Role::Leecher, Leave::Never);
        n.observe(stats(4, 0), poll(2.0, 2.1, None));
        assert_eq!(n.record.completed_s, Some(2.0));
    }

    #[test]
    fn peers_found_are_kept_as_the_highest_count() {
        let mut n = node(Role::Leecher, Leave::Never);
        let mut s = stats(1, 0);
        s.peers_found_by_source.insert("tracker".into(), 3);
        s.peers_by_source.insert("tracker".into(), 1);
        n.observe(s.clone(), poll(1.0, 1.0, None));
        s.peers_found_by_source.insert("tracker".into(), 2);
        s.peers_found_by_source.insert("pex".into(), 4);
        n.observe(s, poll(2.0, 2.0, None));
        assert_eq!(n.record.peers_by_source["tracker"], 3);
        assert_eq!(n.record.peers_by_source["pex"], 4);
        assert_eq!(n.record.samples[0].peers_by_source["tracker"], 1);
    }

    #[test]
    fn leave_conditions() {
        let mut n = node(Role::Leecher, Leave::AfterUploading(2.0));
        n.observe(stats(4, 150), poll(1.0, 1.0, None));
        assert!(!n.should_leave(Duration::from_secs(1), 100));
        n.observe(stats(4, 200), poll(2.0, 2.0, None));
        assert!(n.should_leave(Duration::from_secs(2), 100));
        let mut n = node(Role::Seeder, Leave::At(Duration::from_secs(5)));
        assert!(!n.should_leave(Duration::from_secs(4), 100));
        assert!(n.should_leave(Duration::from_secs(5), 100));
        // A paused node leaves too; a gone one does not.
        n.phase = Phase::Paused;
        assert!(n.should_leave(Duration::from_secs(5), 100));
        n.phase = Phase::Gone;
        assert!(!n.should_leave(Duration::from_secs(5), 100));
    }

    #[test]
    fn a_leecher_that_leaves_before_completing_is_no_longer_expected_to() {
        let mut n = node(Role::Leecher, Leave::At(Duration::from_secs(5)));
        n.leave_now(Duration::from_secs(5));
        assert_eq!(n.phase, Phase::Gone);
        assert!(!n.record.should_complete && !n.failed());
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
        let epoch = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !n.check_exit(Duration::from_secs(1), epoch) && n.phase == Phase::Running {
            assert!(Instant::now() < deadline, "`false` did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(n.phase, Phase::Gone);
        assert!(n.finished() && n.failed());
        assert_eq!(n.record.left_s, Some(1.0));
    }

    #[test]
    fn a_node_that_exits_when_done_completes_when_it_said_so() {
        let logs = tempfile::tempdir().unwrap();
        let mut n = node(Role::Leecher, Leave::OnCompletion);
        let epoch = Instant::now();
        let args = ["-c".to_owned(), "echo complete downloaded=4".to_owned()];
        let proc = crate::runner::process::Proc::spawn(Path::new("sh"), &args, logs.path());
        n.proc = Some(Member::Process(proc.unwrap()));
        let deadline = Instant::now() + Duration::from_secs(30);
        let late = Duration::from_secs(3600);
        while !n.check_exit(late, epoch) {
            assert!(Instant::now() < deadline, "no completion seen");
            std::thread::sleep(Duration::from_millis(10));
        }
        let completed = n.record.completed_s.unwrap();
        assert!(completed < late.as_secs_f64(), "{completed}");
        assert!(n.finished() && !n.failed());
    }
}
