//! When faults fire, and the churn schedule. Pure: the swarm applies what these return.

use std::time::Duration;

use crate::scenario::{Fault, FaultAction, Trigger};

/// Which faults have fired.
#[derive(Debug, Clone)]
pub struct FaultClock {
    fired: Vec<bool>,
}

impl FaultClock {
    /// None of `count` faults has fired.
    pub fn new(count: usize) -> Self {
        Self {
            fired: vec![false; count],
        }
    }

    /// The indices of the faults due at `t` with the swarm at `progress` that have not fired
    /// yet, in declaration order; they count as fired from now on.
    pub fn due(&mut self, faults: &[Fault], t: Duration, progress: f64) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, fault) in faults.iter().enumerate() {
            if self.fired.get(i).copied().unwrap_or(true) {
                continue;
            }
            let ready = match fault.when {
                Trigger::At(at) => t >= at,
                Trigger::Progress(p) => progress >= p,
            };
            if ready {
                self.fired[i] = true;
                due.push(i);
            }
        }
        due
    }
}

/// A churn in progress: `per_minute` replacements spread evenly from `start` for `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct Churn {
    pub group: String,
    interval: Duration,
    until: Duration,
    next: Duration,
}

impl Churn {
    /// The churn of `action` (a [`FaultAction::Churn`]) fired at `start`; `None` for other
    /// actions or a rate of zero.
    pub fn new(action: &FaultAction, start: Duration) -> Option<Churn> {
        let FaultAction::Churn {
            group,
            per_minute,
            duration,
        } = action
        else {
            return None;
        };
        if !(per_minute.is_finite() && *per_minute > 0.0) {
            return None;
        }
        let interval = Duration::from_secs_f64((60.0 / per_minute).max(0.001));
        Some(Churn {
            group: group.clone(),
            interval,
            until: start + *duration,
            next: start + interval,
        })
    }

    /// How many nodes to replace at `t` (more than one when ticks are coarser than the rate).
    pub fn due(&mut self, t: Duration) -> u32 {
        let mut n = 0;
        while self.next <= t && self.next <= self.until {
            n += 1;
            self.next += self.interval;
        }
        n
    }

    /// Whether no replacement is left.
    pub fn done(&self) -> bool {
        self.next > self.until
    }
}

/// A line for the record and the live view. Saying what was really done: nodes in this
/// process (`in_process`) are aborted, not sent `kill -9` (the tracker is always a process).
pub fn describe(action: &FaultAction, in_process: bool) -> String {
    let count = |c: &Option<u32>| c.map_or("all".to_owned(), |c| c.to_string());
    let kill = if in_process {
        "abort (in-process, like kill -9)"
    } else {
        "kill -9"
    };
    match action {
        FaultAction::KillTracker => "kill the tracker (kill -9)".to_owned(),
        FaultAction::RestartTracker => "restart the tracker on the same port".to_owned(),
        FaultAction::Kill { group, count: c } => format!("{kill} {} nodes of {group}", count(c)),
        FaultAction::Pause { group, count: c } => format!("pause {} nodes of {group}", count(c)),
        FaultAction::Resume { group } => format!("resume the paused nodes of {group}"),
        FaultAction::Churn {
            group,
            per_minute,
            duration,
        } => format!(
            "churn {group}: {per_minute} nodes per minute for {}s",
            duration.as_secs_f64()
        ),
        FaultAction::KillSeedersAfterOneCopy => {
            "kill every seeder once it has uploaded one copy".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn faults_fire_once_at_their_time_or_progress() {
        let faults = vec![
            Fault {
                when: Trigger::At(secs(5.0)),
                action: FaultAction::KillTracker,
            },
            Fault {
                when: Trigger::Progress(0.2),
                action: FaultAction::RestartTracker,
            },
        ];
        let mut clock = FaultClock::new(faults.len());
        assert!(clock.due(&faults, secs(1.0), 0.1).is_empty());
        assert_eq!(clock.due(&faults, secs(2.0), 0.2), vec![1]);
        assert!(clock.due(&faults, secs(3.0), 0.5).is_empty());
        assert_eq!(clock.due(&faults, secs(5.0), 0.5), vec![0]);
        assert!(clock.due(&faults, secs(9.0), 1.0).is_empty());
    }

    #[test]
    fn churn_replaces_at_the_rate_for_the_duration() {
        let action = FaultAction::Churn {
            group: "l".into(),
            per_minute: 30.0,
            duration: secs(10.0),
        };
        let mut churn = Churn::new(&action, secs(100.0)).unwrap();
        assert_eq!(churn.due(secs(101.0)), 0);
        assert_eq!(churn.due(secs(102.0)), 1);
        assert_eq!(churn.due(secs(106.5)), 2);
        assert_eq!(churn.due(secs(200.0)), 2);
        assert!(churn.done());
        assert_eq!(churn.due(secs(300.0)), 0);
        assert!(Churn::new(&FaultAction::KillTracker, secs(0.0)).is_none());
    }

    #[test]
    fn descriptions_name_the_group_and_how_nodes_are_killed() {
        let kill = FaultAction::Kill {
            group: "leechers".into(),
            count: Some(2),
        };
        assert_eq!(describe(&kill, false), "kill -9 2 nodes of leechers");
        assert_eq!(
            describe(&kill, true),
            "abort (in-process, like kill -9) 2 nodes of leechers"
        );
    }
}
