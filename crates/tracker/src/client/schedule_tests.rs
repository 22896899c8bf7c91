use std::time::{Duration, Instant};

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn tiers(lists: &[&[&str]]) -> Vec<Vec<String>> {
    lists
        .iter()
        .map(|tier| tier.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

fn reply(interval: u64, min_interval: Option<u64>) -> AnnounceReply {
    AnnounceReply {
        interval: Duration::from_secs(interval),
        min_interval: min_interval.map(Duration::from_secs),
        peers: Vec::new(),
        complete: None,
        incomplete: None,
        warning: None,
        tracker_id: None,
    }
}

/// One tracker per tier, so that the order does not depend on the shuffle.
fn one_per_tier(now: Instant) -> AnnounceSchedule {
    AnnounceSchedule::new(
        tiers(&[&["http://a/announce"], &["http://b/announce"]]),
        7,
        now,
    )
}

#[test]
fn first_poll_is_started_and_then_in_flight() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    assert_eq!(s.next_due(), Some(t0));
    assert_eq!(
        s.poll(t0),
        Some(("http://a/announce".into(), Some(AnnounceEvent::Started)))
    );
    assert_eq!(s.poll(t0), None);
    assert_eq!(s.next_due(), None);
}

#[test]
fn no_trackers_means_nothing_due() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(tiers(&[&[], &[" "]]), 1, t0);
    assert_eq!(s.next_due(), None);
    assert_eq!(s.poll(t0), None);
}

#[test]
fn success_schedules_the_next_regular_announce_at_interval() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    let (url, _) = s.poll(t0).unwrap();
    s.on_success(&url, &reply(1800, None), t0 + SEC);
    let due = t0 + SEC + 1800 * SEC;
    assert_eq!(s.next_due(), Some(due));
    assert_eq!(s.poll(due - SEC), None);
    assert_eq!(s.poll(due), Some((url, None)));
    assert_eq!(s.stats().ok, 1);
}

#[test]
fn min_interval_is_respected() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    let (url, _) = s.poll(t0).unwrap();
    s.on_success(&url, &reply(60, Some(300)), t0);
    assert_eq!(s.next_due(), Some(t0 + 300 * SEC));
}

#[test]
fn failure_tries_the_next_tracker_in_the_tier_then_the_next_tier() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(
        tiers(&[
            &["http://a1/announce", "http://a2/announce"],
            &["http://b/announce"],
        ]),
        3,
        t0,
    );
    let first_tier = s.tiers()[0].clone();
    let (u1, e1) = s.poll(t0).unwrap();
    assert_eq!(u1, first_tier[0]);
    s.on_failure(&u1, t0);
    assert_eq!(s.next_due(), Some(t0));
    let (u2, e2) = s.poll(t0).unwrap();
    assert_eq!(u2, first_tier[1]);
    assert_eq!(e1, e2);
    s.on_failure(&u2, t0);
    let (u3, e3) = s.poll(t0).unwrap();
    assert_eq!(u3, "http://b/announce");
    assert_eq!(e3, Some(AnnounceEvent::Started));
    assert_eq!(s.stats().failed, 2);
    assert_eq!(s.stats().backoff, None);
}

#[test]
fn shuffle_within_tiers_depends_on_the_seed() {
    let urls: Vec<String> = (0..8).map(|i| format!("http://t{i}/announce")).collect();
    let orders: std::collections::HashSet<Vec<String>> = (0..10)
        .map(|seed| {
            AnnounceSchedule::new(vec![urls.clone()], seed, Instant::now()).tiers()[0].clone()
        })
        .collect();
    assert!(orders.len() > 1);
    let again = AnnounceSchedule::new(vec![urls.clone()], 4, Instant::now());
    assert_eq!(
        again.tiers(),
        AnnounceSchedule::new(vec![urls], 4, Instant::now()).tiers()
    );
}

#[test]
fn whole_round_failure_backs_off_exponentially_up_to_the_cap() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..10 {
        for expected in ["http://a/announce", "http://b/announce"] {
            let (url, event) = s.poll(now).unwrap();
            assert_eq!(url, expected);
            assert_eq!(event, Some(AnnounceEvent::Started));
            s.on_failure(&url, now);
        }
        let due = s.next_due().unwrap();
        assert_eq!(s.poll(due - Duration::from_millis(1)), None);
        waits.push((due - now).as_secs());
        assert_eq!(s.stats().backoff, Some(due - now));
        now = due;
    }
    assert_eq!(waits, [15, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
    assert_eq!(s.stats().failed, 20);
}

#[test]
fn success_resets_backoff_and_moves_the_tracker_to_the_front_of_its_tier() {
    let t0 = Instant::now();
    let mut s = AnnounceSchedule::new(
        tiers(&[
            &["http://a1/announce", "http://a2/announce"],
            &["http://b/announce"],
        ]),
        9,
        t0,
    );
    let before = s.tiers()[0].clone();
    // Round 1: everything fails.
    for _ in 0..3 {
        let (url, _) = s.poll(t0).unwrap();
        s.on_failure(&url, t0);
    }
    assert_eq!(s.stats().backoff, Some(15 * SEC));
    let t1 = s.next_due().unwrap();
    // Round 2: the first of tier 0 fails, the second answers.
    let (url, _) = s.poll(t1).unwrap();
    s.on_failure(&url, t1);
    let (good, _) = s.poll(t1).unwrap();
    assert_eq!(good, before[1]);
    s.on_success(&good, &reply(600, None), t1);
    assert_eq!(s.stats().backoff, None);
    assert_eq!(s.tiers()[0], vec![before[1].clone(), before[0].clone()]);
    // The next round starts at the front: the tracker that answered.
    let t2 = s.next_due().unwrap();
    assert_eq!(t2, t1 + 600 * SEC);
    assert_eq!(s.poll(t2), Some((good.clone(), None)));
    // A later whole-round failure starts the back-off from 15 s again.
    s.on_failure(&good, t2);
    for _ in 0..2 {
        let (url, _) = s.poll(t2).unwrap();
        s.on_failure(&url, t2);
    }
    assert_eq!(s.next_due(), Some(t2 + 15 * SEC));
}

#[test]
fn completed_is_kept_until_a_tracker_accepts_it() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    let (url, _) = s.poll(t0).unwrap();
    s.on_success(&url, &reply(1800, None), t0);
    let t1 = t0 + 5 * SEC;
    s.completed(t1);
    assert_eq!(s.next_due(), Some(t1));
    let completed = Some(AnnounceEvent::Completed);
    let (a, event) = s.poll(t1).unwrap();
    assert_eq!(event, completed);
    s.on_failure(&a, t1);
    let (b, event) = s.poll(t1).unwrap();
    assert_eq!(event, completed);
    s.on_failure(&b, t1);
    // After the back-off, still Completed.
    let t2 = s.next_due().unwrap();
    let (a, event) = s.poll(t2).unwrap();
    assert_eq!(event, completed);
    s.on_success(&a, &reply(1800, None), t2);
    let t3 = s.next_due().unwrap();
    assert_eq!(s.poll(t3).unwrap().1, None);
    // Only once per schedule.
    s.completed(t3);
    assert_eq!(s.next_due(), None);
}

#[test]
fn completed_while_started_is_in_flight_follows_it() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    let (url, event) = s.poll(t0).unwrap();
    assert_eq!(event, Some(AnnounceEvent::Started));
    s.completed(t0 + SEC);
    assert_eq!(s.next_due(), None);
    s.on_success(&url, &reply(1800, None), t0 + 2 * SEC);
    assert_eq!(s.next_due(), Some(t0 + 2 * SEC));
    assert_eq!(
        s.poll(t0 + 2 * SEC),
        Some((url, Some(AnnounceEvent::Completed)))
    );
}

#[test]
fn a_completed_not_yet_accepted_is_pending_at_the_stop() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    assert_eq!(s.pending_event(), Some(AnnounceEvent::Started));
    let (url, _) = s.poll(t0).unwrap();
    s.on_success(&url, &reply(1800, None), t0);
    assert_eq!(s.pending_event(), None);
    s.completed(t0 + SEC);
    // Stopping before the Completed announce went out: the node sends it first.
    assert_eq!(s.pending_event(), Some(AnnounceEvent::Completed));
    assert_eq!(s.stopped(), Some(url));
}

#[test]
fn stopped_returns_the_last_tracker_that_answered() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    let (a, _) = s.poll(t0).unwrap();
    s.on_failure(&a, t0);
    let (b, _) = s.poll(t0).unwrap();
    s.on_success(&b, &reply(60, None), t0);
    assert_eq!(b, "http://b/announce");
    assert_eq!(s.stopped(), Some(b));
    assert_eq!(s.next_due(), None);
    assert_eq!(s.poll(t0 + 3600 * SEC), None);
    let mut never = one_per_tier(t0);
    assert_eq!(never.stopped(), None);
}

#[test]
fn reports_for_announces_not_in_flight_are_ignored() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    s.on_failure("http://a/announce", t0);
    s.on_success("http://a/announce", &reply(60, None), t0);
    assert_eq!(s.stats(), AnnounceStats::default());
    let (url, _) = s.poll(t0).unwrap();
    s.on_failure("http://elsewhere/announce", t0);
    assert_eq!(s.next_due(), None);
    let error = ClientError::Http {
        url: "http://a/announce".into(),
        status: 500,
    };
    s.on_error(&url, &error, t0);
    assert_eq!(
        s.stats().last_error.as_deref(),
        Some("tracker http://a/announce answered HTTP status 500")
    );
}

#[test]
fn a_configured_backoff_doubles_up_to_its_cap() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let backoff = AnnounceBackoff {
        first: ms(100),
        max: ms(350),
    };
    let mut s =
        AnnounceSchedule::new(tiers(&[&["http://a/announce"]]), 1, t0).with_backoff(backoff);
    let mut now = t0;
    for expected in [ms(100), ms(200), ms(350), ms(350)] {
        let (url, _) = s.poll(now).unwrap();
        s.on_failure(&url, now);
        assert_eq!(s.stats().backoff, Some(expected));
        assert_eq!(s.next_due(), Some(now + expected));
        now += expected;
    }
    // A zero back-off would be a busy loop: it is raised to the floor.
    let zero = AnnounceBackoff {
        first: Duration::ZERO,
        max: Duration::ZERO,
    };
    assert_eq!(zero.after(1), MIN_BACKOFF);
    assert_eq!(zero.after(40), MIN_BACKOFF);
    assert_eq!(AnnounceBackoff::default().after(1), FIRST_BACKOFF);
    assert_eq!(AnnounceBackoff::default().after(40), MAX_BACKOFF);
}

#[test]
fn an_answer_clears_the_last_error() {
    let t0 = Instant::now();
    let mut s = one_per_tier(t0);
    let (a, _) = s.poll(t0).unwrap();
    let refused = ClientError::Connect {
        url: a.clone(),
        reason: "connection refused".into(),
    };
    s.on_error(&a, &refused, t0);
    let (b, _) = s.poll(t0).unwrap();
    s.on_error(&b, &refused, t0);
    let stats = s.stats();
    assert_eq!((stats.ok, stats.failed), (0, 2));
    assert!(stats.last_error.unwrap().contains("connection refused"));
    let t1 = s.next_due().unwrap();
    let (a, _) = s.poll(t1).unwrap();
    s.on_success(&a, &reply(60, None), t1);
    let stats = s.stats();
    assert_eq!((stats.ok, stats.failed), (1, 2));
    assert_eq!((stats.backoff, stats.last_error), (None, None));
}
