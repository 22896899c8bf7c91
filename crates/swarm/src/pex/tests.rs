use std::time::{Duration, Instant};

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn state() -> PexState<u32> {
    PexState::new(PexConfig::default())
}

fn update(to: u32, added: &[u32], dropped: &[u32]) -> PexUpdate<u32> {
    PexUpdate {
        to,
        added: added.to_vec(),
        dropped: dropped.to_vec(),
    }
}

#[test]
fn defaults() {
    let c = PexConfig::default();
    assert_eq!(c.interval, 60 * SEC);
    assert_eq!(c.first_delay, 5 * SEC);
    assert_eq!(c.min_receive_gap, 45 * SEC);
    assert_eq!(c.max_violations, 3);
    assert_eq!(c.violation_window, 600 * SEC);
}

#[test]
fn first_message_after_first_delay_lists_the_connected_peers_then_only_diffs() {
    let t0 = Instant::now();
    let mut pex = state();
    assert_eq!(pex.next_due(), None);
    for p in [1, 2, 3] {
        pex.peer_connected(p, t0);
    }
    assert_eq!(pex.next_due(), Some(t0 + 5 * SEC));
    assert!(pex.poll_send(t0 + 4 * SEC).is_empty());

    let t1 = t0 + 5 * SEC;
    assert_eq!(
        pex.poll_send(t1),
        [
            update(1, &[2, 3], &[]),
            update(2, &[1, 3], &[]),
            update(3, &[1, 2], &[])
        ]
    );
    assert_eq!(pex.next_due(), Some(t1 + 60 * SEC));
    assert!(pex.poll_send(t1 + 59 * SEC).is_empty());

    // Peer 4 joins; at the next round the others hear only about it, and 4 about everyone.
    pex.peer_connected(4, t1 + 10 * SEC);
    assert_eq!(pex.poll_send(t1 + 15 * SEC), [update(4, &[1, 2, 3], &[])]);
    let t2 = t1 + 60 * SEC;
    assert_eq!(
        pex.poll_send(t2),
        [
            update(1, &[4], &[]),
            update(2, &[4], &[]),
            update(3, &[4], &[])
        ]
    );

    // Nothing changed: nobody gets a message, but the schedule advances.
    assert!(pex.poll_send(t2 + 60 * SEC).is_empty());
    // 4 was due at t1 + 75 s, so it too is next due a minute after this round.
    assert_eq!(pex.next_due(), Some(t2 + 120 * SEC));
}

#[test]
fn dropped_only_for_recipients_that_had_been_told() {
    let t0 = Instant::now();
    let mut pex = state();
    pex.peer_connected(1, t0);
    pex.peer_connected(2, t0);
    assert_eq!(pex.poll_send(t0 + 5 * SEC).len(), 2);

    // 3 comes and goes before anyone hears of it; 2 leaves after 1 was told about it.
    pex.peer_connected(3, t0 + 6 * SEC);
    pex.peer_disconnected(&3);
    pex.peer_disconnected(&2);
    assert_eq!(pex.poll_send(t0 + 65 * SEC), [update(1, &[], &[2])]);
    // Told once: not again.
    assert!(pex.poll_send(t0 + 125 * SEC).is_empty());

    // A peer that joined after 2 left never hears of 2 as dropped.
    let mut pex = state();
    pex.peer_connected(1, t0);
    pex.peer_connected(2, t0);
    pex.peer_connected(4, t0 + SEC); // first due at t0 + 6 s
    assert_eq!(
        pex.poll_send(t0 + 5 * SEC),
        [update(1, &[2, 4], &[]), update(2, &[1, 4], &[])]
    );
    pex.peer_disconnected(&2);
    assert_eq!(pex.poll_send(t0 + 6 * SEC), [update(4, &[1], &[])]);
    assert_eq!(pex.poll_send(t0 + 65 * SEC), [update(1, &[], &[2])]);
}

#[test]
fn a_peer_that_rejoins_before_the_next_round_is_not_announced_again() {
    let t0 = Instant::now();
    let mut pex = state();
    pex.peer_connected(1, t0);
    pex.peer_connected(2, t0);
    pex.poll_send(t0 + 5 * SEC);
    pex.peer_disconnected(&2);
    pex.peer_connected(2, t0 + 10 * SEC);
    // 1 still knows 2; 2 is new and hears of 1 again.
    assert_eq!(pex.poll_send(t0 + 65 * SEC), [update(2, &[1], &[])]);
}

#[test]
fn caps_at_50_and_sends_the_rest_next_time() {
    let t0 = Instant::now();
    let mut pex = state();
    for p in 0..=70 {
        pex.peer_connected(p, t0);
    }
    let first = pex.poll_send(t0 + 5 * SEC);
    assert_eq!(first.len(), 71);
    let to0 = &first[0];
    assert_eq!(to0.to, 0);
    assert_eq!(to0.added, (1..=50).collect::<Vec<_>>());
    for u in &first {
        assert_eq!(u.added.len(), PEX_MAX_ADDED);
        assert!(!u.added.contains(&u.to), "{} told about itself", u.to);
    }

    // The remainder goes in the next round.
    let second = pex.poll_send(t0 + 65 * SEC);
    assert_eq!(second[0], update(0, &(51..=70).collect::<Vec<_>>(), &[]));
    assert_eq!(second[1], update(1, &(51..=70).collect::<Vec<_>>(), &[]));
    assert_eq!(second.len(), 71);

    // 60 of them leave: at most 50 dropped per message, the rest next time.
    for p in 11..=70 {
        pex.peer_disconnected(&p);
    }
    let third = pex.poll_send(t0 + 125 * SEC);
    assert_eq!(third.len(), 11);
    assert_eq!(third[0], update(0, &[], &(11..=60).collect::<Vec<_>>()));
    let fourth = pex.poll_send(t0 + 185 * SEC);
    assert_eq!(fourth[0], update(0, &[], &(61..=70).collect::<Vec<_>>()));
    assert!(pex.poll_send(t0 + 245 * SEC).is_empty());

    // A bigger drop: 120 peers told, 100 leave; 50 now, 50 next round.
    let mut pex = state();
    for p in 0..120 {
        pex.peer_connected(p, t0);
    }
    for round in 0..3 {
        pex.poll_send(t0 + 5 * SEC + round * 60 * SEC);
    }
    for p in 20..120 {
        pex.peer_disconnected(&p);
    }
    let round = |n: u32| t0 + 5 * SEC + n * 60 * SEC;
    let to0 = |updates: Vec<PexUpdate<u32>>| updates.into_iter().find(|u| u.to == 0);
    assert_eq!(to0(pex.poll_send(round(3))).unwrap().dropped.len(), 50);
    assert_eq!(to0(pex.poll_send(round(4))).unwrap().dropped.len(), 50);
    assert_eq!(to0(pex.poll_send(round(5))), None);
}

#[test]
fn the_recipient_is_never_listed() {
    let t0 = Instant::now();
    let mut pex = state();
    pex.peer_connected(7, t0);
    // Alone: nothing to tell.
    assert!(pex.poll_send(t0 + 5 * SEC).is_empty());
    pex.peer_connected(8, t0 + 6 * SEC);
    for u in pex.poll_send(t0 + 100 * SEC) {
        assert!(!u.added.contains(&u.to) && !u.dropped.contains(&u.to));
    }
}

#[test]
fn a_second_message_within_45_s_is_throttled_then_dropped() {
    let t0 = Instant::now();
    let mut pex = state();
    pex.peer_connected(1, t0);
    assert_eq!(pex.on_received(&1, t0 + SEC), PexVerdict::Accept);
    // Too soon, three times: throttled (still measured from the accepted one).
    for i in 2..=4 {
        assert_eq!(pex.on_received(&1, t0 + i * SEC), PexVerdict::Throttle);
    }
    // After the gap: accepted again, but the violations are remembered.
    assert_eq!(pex.on_received(&1, t0 + 46 * SEC), PexVerdict::Accept);
    assert_eq!(pex.on_received(&1, t0 + 47 * SEC), PexVerdict::Drop);
    assert_eq!(
        pex.stats(),
        PexStats {
            received: 6,
            accepted: 2,
            throttled: 3,
            dropped_peers: 1,
            ..PexStats::default()
        }
    );
}

#[test]
fn exactly_the_gap_is_accepted() {
    let t0 = Instant::now();
    let mut pex = state();
    pex.peer_connected(1, t0);
    assert_eq!(pex.on_received(&1, t0), PexVerdict::Accept);
    assert_eq!(pex.on_received(&1, t0 + 45 * SEC), PexVerdict::Accept);
    assert_eq!(
        pex.on_received(&1, t0 + 90 * SEC - Duration::from_millis(1)),
        PexVerdict::Throttle
    );
}

#[test]
fn oversized_messages_are_violations_whenever_they_come() {
    let t0 = Instant::now();
    let mut pex = state();
    pex.peer_connected(1, t0);
    // Far apart, so only the size counts: ignored three times, dropped the fourth.
    for i in 0..3 {
        assert_eq!(
            pex.on_oversized(&1, t0 + i * 100 * SEC),
            PexVerdict::Throttle
        );
    }
    assert_eq!(pex.on_oversized(&1, t0 + 300 * SEC), PexVerdict::Drop);
    assert_eq!(
        pex.stats(),
        PexStats {
            received: 4,
            oversized: 4,
            throttled: 3,
            dropped_peers: 1,
            ..PexStats::default()
        }
    );

    // An oversized message is not the peer's message of the minute: a good one may follow.
    pex.peer_connected(2, t0);
    assert_eq!(pex.on_oversized(&2, t0), PexVerdict::Throttle);
    assert_eq!(pex.on_received(&2, t0 + SEC), PexVerdict::Accept);
    // Both kinds of violation add up.
    assert_eq!(pex.on_received(&2, t0 + 2 * SEC), PexVerdict::Throttle);
    assert_eq!(pex.on_oversized(&2, t0 + 3 * SEC), PexVerdict::Throttle);
    assert_eq!(pex.on_received(&2, t0 + 4 * SEC), PexVerdict::Drop);
}

#[test]
fn violations_older_than_the_window_are_forgiven() {
    let t0 = Instant::now();
    let window = PexConfig::default().violation_window;
    assert_eq!(window, 600 * SEC);
    let mut pex = state();
    pex.peer_connected(1, t0);
    for i in 0..3 {
        assert_eq!(pex.on_oversized(&1, t0 + i * SEC), PexVerdict::Throttle);
    }
    // The first has left the window when the fourth comes: three in the window, throttled.
    assert_eq!(pex.on_oversized(&1, t0 + window), PexVerdict::Throttle);
    // Much later, a fresh slate: three more are only throttled ...
    let later = t0 + 3 * window;
    for i in 0..3 {
        assert_eq!(pex.on_oversized(&1, later + i * SEC), PexVerdict::Throttle);
    }
    // ... and the fourth within one window drops the peer.
    assert_eq!(pex.on_oversized(&1, later + window - SEC), PexVerdict::Drop);
}

#[test]
fn unknown_peers_are_throttled_and_disconnect_forgets() {
    let t0 = Instant::now();
    let mut pex = state();
    assert_eq!(pex.on_received(&9, t0), PexVerdict::Throttle);
    assert_eq!(pex.on_oversized(&9, t0), PexVerdict::Throttle);
    pex.peer_connected(9, t0);
    assert!(pex.is_connected(&9));
    assert_eq!(pex.on_received(&9, t0), PexVerdict::Accept);
    pex.peer_disconnected(&9);
    assert_eq!(pex.next_due(), None);
    assert_eq!(pex.on_received(&9, t0 + SEC), PexVerdict::Throttle);
    // A new connection starts with a clean slate.
    pex.peer_connected(9, t0 + 2 * SEC);
    assert_eq!(pex.on_received(&9, t0 + 3 * SEC), PexVerdict::Accept);
}

#[test]
fn stats_count_what_was_sent() {
    let t0 = Instant::now();
    let mut pex = state();
    for p in [1, 2, 3] {
        pex.peer_connected(p, t0);
    }
    pex.poll_send(t0 + 5 * SEC);
    pex.peer_disconnected(&3);
    pex.poll_send(t0 + 65 * SEC);
    assert_eq!(
        pex.stats(),
        PexStats {
            sent: 5,
            added_sent: 6,
            dropped_sent: 2,
            ..PexStats::default()
        }
    );
}

#[test]
fn connecting_twice_keeps_the_schedule() {
    let t0 = Instant::now();
    let mut pex = state();
    pex.peer_connected(1, t0);
    pex.peer_connected(1, t0 + 4 * SEC);
    assert_eq!(pex.next_due(), Some(t0 + 5 * SEC));
}
