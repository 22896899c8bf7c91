//! Faults as the swarm applies them, on real child processes: a stand-in `shoal` script says
//! what the runner waits for and then sleeps, so kills, SIGSTOP and SIGCONT can be checked in
//! /proc without running a swarm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use super::{Swarm, tracker_port};
use crate::runner::node::Phase;
use crate::runner::plan::tests::group;
use crate::runner::{RunEvent, RunOptions};
use crate::scenario::{
    Content, DhtSpec, Fault, FaultAction, Leave, Role, Scenario, TrackerSpec, Trigger,
};

#[test]
fn tracker_port_from_url() {
    assert_eq!(tracker_port("http://127.0.0.1:6969/announce"), Some(6969));
    assert_eq!(tracker_port("udp://x"), None);
}

/// Writes the stand-in `shoal`. A child process writes it, so no thread of this test binary
/// holds it open for writing while another forks and runs it ("text file busy").
fn fake_shoal(dir: &Path) -> PathBuf {
    let path = dir.join("fake-shoal");
    let script = "#!/bin/sh\n\
        case \"$1\" in\n\
        tracker) echo \"tracker http://$3/announce\" ;;\n\
        *) echo \"listen /ip4/127.0.0.1/tcp/9/p2p/fake\" ;;\n\
        esac\n\
        exec sleep 600\n";
    let status = Command::new("sh")
        .args(["-c", "printf '%s' \"$1\" > \"$0\" && chmod +x \"$0\""])
        .arg(&path)
        .arg(script)
        .status()
        .unwrap();
    assert!(status.success());
    path
}

fn at(secs: u64) -> Trigger {
    Trigger::At(Duration::from_secs(secs))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One seeder group of `seeders` and three leechers, a tracker, no bootstrap node.
fn scenario(seeders: u32, faults: Vec<(Trigger, FaultAction)>) -> Scenario {
    let mut leechers = group("leechers", Role::Leecher, 3);
    leechers.leave = Leave::At(secs(2));
    Scenario {
        name: "faults".into(),
        seed: 9,
        timeout: secs(60),
        content: Content {
            size: 1000,
            piece_length: None,
            files: 1,
        },
        tracker: TrackerSpec { enabled: true },
        dht: DhtSpec { bootstrap_nodes: 0 },
        groups: vec![group("seeders", Role::Seeder, seeders), leechers],
        faults: faults
            .into_iter()
            .map(|(when, action)| Fault { when, action })
            .collect(),
    }
}

/// A swarm of stand-ins with every node started at run time 0.
struct Rig {
    swarm: Swarm,
    _events: UnboundedReceiver<RunEvent>,
    _dir: tempfile::TempDir,
}

async fn rig(scenario: Scenario) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let shoal = fake_shoal(dir.path());
    let go = AtomicBool::new(false);
    let content =
        crate::content::prepare(&dir.path().join("content"), &scenario.content, 1, &go).unwrap();
    let options = RunOptions::new(shoal, dir.path().join("runs"));
    let (events, received) = tokio::sync::mpsc::unbounded_channel();
    let run_dir = dir.path().join("run");
    let mut swarm = Swarm::new(scenario, &options, run_dir, content, events);
    swarm.start_infrastructure().await.unwrap();
    swarm.start_clock();
    swarm.start_due(Duration::ZERO).unwrap();
    Rig {
        swarm,
        _events: received,
        _dir: dir,
    }
}

/// The state letter in /proc/PID/stat (`S` sleeping, `T` stopped, `Z` zombie…); `None` once
/// the process is gone and reaped.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.trim_start().chars().next()
}

/// Waits (at most 30 s, generous for a loaded machine) until the process state passes `ok`.
fn wait_state(pid: u32, ok: impl Fn(Option<char>) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok(state(pid)) {
        assert!(
            Instant::now() < deadline,
            "{pid} never {what}: {:?}",
            state(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stopped(s: Option<char>) -> bool {
    s == Some('T')
}

/// Alive and not stopped: sleeping, running, or briefly in the kernel while it starts.
fn running(s: Option<char>) -> bool {
    matches!(s, Some(c) if !matches!(c, 'T' | 't' | 'Z' | 'X'))
}

fn gone(s: Option<char>) -> bool {
    s.is_none()
}

impl Rig {
    /// Index and pid of every node of `group` that has a process.
    fn pids(&self, group: &str) -> Vec<(usize, u32)> {
        let nodes = self.swarm.nodes.iter().enumerate();
        nodes
            .filter(|(_, n)| n.record.group == group)
            .filter_map(|(i, n)| Some((i, n.proc.as_ref()?.pid()?)))
            .collect()
    }

    fn phase(&self, i: usize) -> Phase {
        self.swarm.nodes[i].phase
    }

    fn faults(&self) -> Vec<String> {
        self.swarm.faults.iter().map(|f| f.what.clone()).collect()
    }
}

#[tokio::test]
async fn pause_stops_the_processes_and_resume_continues_them() {
    let pause = FaultAction::Pause {
        group: "leechers".into(),
        count: Some(2),
    };
    let resume = FaultAction::Resume {
        group: "leechers".into(),
    };
    let mut rig = rig(scenario(1, vec![(at(0), pause), (at(1), resume)])).await;
    let leechers = rig.pids("leechers");
    assert_eq!(leechers.len(), 3);
    rig.swarm.faults(secs(0)).await.unwrap();
    let paused: Vec<_> = leechers
        .iter()
        .filter(|(i, _)| rig.phase(*i) == Phase::Paused)
        .collect();
    assert_eq!(paused.len(), 2, "{leechers:?}");
    for &(i, pid) in &leechers {
        if rig.phase(i) == Phase::Paused {
            wait_state(pid, stopped, "stopped");
        } else {
            assert!(running(state(pid)), "{pid}: {:?}", state(pid));
        }
    }
    rig.swarm.faults(secs(1)).await.unwrap();
    for &(i, pid) in &leechers {
        assert_eq!(rig.phase(i), Phase::Running);
        wait_state(pid, running, "continued");
    }
    assert_eq!(
        rig.faults(),
        [
            "pause 2 nodes of leechers",
            "resume the paused nodes of leechers"
        ]
    );
}

#[tokio::test]
async fn kill_ends_running_and_paused_nodes_alike() {
    let pause = FaultAction::Pause {
        group: "leechers".into(),
        count: Some(1),
    };
    let kill = FaultAction::Kill {
        group: "leechers".into(),
        count: None,
    };
    let mut rig = rig(scenario(1, vec![(at(0), pause), (at(1), kill)])).await;
    rig.swarm.faults(secs(0)).await.unwrap();
    let leechers = rig.pids("leechers");
    let (_, paused) = *leechers
        .iter()
        .find(|(i, _)| rig.phase(*i) == Phase::Paused)
        .unwrap();
    wait_state(paused, stopped, "stopped");
    rig.swarm.faults(secs(1)).await.unwrap();
    for &(i, pid) in &leechers {
        assert!(gone(state(pid)), "{pid} survived: {:?}", state(pid));
        let node = &rig.swarm.nodes[i];
        assert_eq!(node.phase, Phase::Gone);
        assert_eq!(node.record.left_s, Some(1.0));
        assert!(!node.record.should_complete, "killed before completing");
    }
    let (_, seeder) = rig.pids("seeders")[0];
    assert!(running(state(seeder)), "the seeder was not in the group");
    assert_eq!(rig.faults()[1], "kill -9 all nodes of leechers");
}

#[tokio::test]
async fn churn_kills_and_replaces_at_its_rate() {
    let churn = FaultAction::Churn {
        group: "leechers".into(),
        per_minute: 60.0,
        duration: secs(2),
    };
    let mut rig = rig(scenario(1, vec![(at(0), churn)])).await;
    let before = rig.pids("leechers");
    rig.swarm.faults(secs(0)).await.unwrap();
    assert_eq!(rig.pids("leechers").len(), 3, "nothing replaced yet");
    rig.swarm.faults(secs(1)).await.unwrap();
    rig.swarm.faults(secs(2)).await.unwrap();
    rig.swarm.faults(secs(3)).await.unwrap();
    let killed: Vec<u32> = before
        .iter()
        .filter(|(i, _)| rig.phase(*i) == Phase::Gone)
        .map(|&(_, pid)| pid)
        .collect();
    assert_eq!(killed.len(), 2, "one a second for two seconds");
    for pid in killed {
        assert!(gone(state(pid)), "{pid}");
    }
    let names: Vec<&str> = rig
        .swarm
        .nodes
        .iter()
        .map(|n| n.plan.name.as_str())
        .collect();
    assert_eq!(names[4..], ["leechers-03", "leechers-04"]);
    for (i, pid) in rig.pids("leechers").into_iter().skip(3) {
        assert_eq!(rig.phase(i), Phase::Running);
        assert!(running(state(pid)), "replacement {pid}: {:?}", state(pid));
    }
    let replaced = rig
        .faults()
        .into_iter()
        .filter(|f| f.contains("replaced by"));
    assert_eq!(replaced.count(), 2);
    assert!(rig.swarm.churns.is_empty(), "the churn is over");
}

#[tokio::test]
async fn the_tracker_is_killed_and_restarted_on_its_port() {
    let faults = vec![
        (at(0), FaultAction::KillTracker),
        (at(1), FaultAction::RestartTracker),
    ];
    let mut rig = rig(scenario(1, faults)).await;
    let tracker_pid = |rig: &Rig| rig.swarm.tracker.as_ref().and_then(|t| t.pid()).unwrap();
    let first = tracker_pid(&rig);
    let url = rig.swarm.endpoints.tracker.clone();
    assert!(running(state(first)));
    rig.swarm.faults(secs(0)).await.unwrap();
    assert!(gone(state(first)), "the tracker survived its kill");
    rig.swarm.faults(secs(1)).await.unwrap();
    let second = tracker_pid(&rig);
    assert_ne!(first, second);
    assert!(
        running(state(second)),
        "the restarted tracker is not running"
    );
    assert_eq!(rig.swarm.endpoints.tracker, url, "nodes keep the same URL");
}

#[tokio::test]
async fn seeders_are_killed_once_they_uploaded_a_copy_even_paused() {
    let pause = FaultAction::Pause {
        group: "seeders".into(),
        count: Some(1),
    };
    let faults = vec![
        (at(0), FaultAction::KillSeedersAfterOneCopy),
        (at(0), pause),
    ];
    let mut rig = rig(scenario(2, faults)).await;
    rig.swarm.faults(secs(0)).await.unwrap();
    rig.swarm.leave(secs(0));
    let seeders = rig.pids("seeders");
    let (paused, running_one) = if rig.phase(seeders[0].0) == Phase::Paused {
        (seeders[0], seeders[1])
    } else {
        (seeders[1], seeders[0])
    };
    assert_eq!(
        rig.phase(running_one.0),
        Phase::Running,
        "nothing uploaded yet"
    );
    let size = rig.swarm.content.size;
    rig.swarm.nodes[running_one.0].record.bytes_up = size;
    rig.swarm.leave(secs(1));
    assert!(gone(state(running_one.1)));
    assert_eq!(rig.phase(paused.0), Phase::Paused, "not a copy yet");
    wait_state(paused.1, stopped, "stopped");
    rig.swarm.nodes[paused.0].record.bytes_up = size;
    rig.swarm.leave(secs(2));
    assert!(gone(state(paused.1)), "a paused seeder is killed too");
    let name = &rig.swarm.nodes[running_one.0].plan.name;
    let said = format!("{name} killed (kill -9) after uploading one copy");
    assert!(rig.faults().contains(&said), "{:?}", rig.faults());
}

#[tokio::test]
async fn a_paused_node_leaves_when_its_time_comes() {
    let pause = FaultAction::Pause {
        group: "leechers".into(),
        count: None,
    };
    let mut rig = rig(scenario(1, vec![(at(0), pause)])).await;
    rig.swarm.faults(secs(0)).await.unwrap();
    let leechers = rig.pids("leechers");
    for &(_, pid) in &leechers {
        wait_state(pid, stopped, "stopped");
    }
    // `leave = { at = "2s" }`: resumed, then SIGINT, which ends the stand-in.
    rig.swarm.leave(secs(2));
    let deadline = Instant::now() + Duration::from_secs(30);
    for &(i, pid) in &leechers {
        assert_eq!(rig.phase(i), Phase::Gone);
        let proc = rig.swarm.nodes[i].proc.as_mut().unwrap();
        while proc.exited().is_none() {
            assert!(Instant::now() < deadline, "{pid} did not leave");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gone(state(pid)));
    }
}
