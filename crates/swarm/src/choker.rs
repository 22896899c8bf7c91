//! Whom we upload to: BitTorrent's reference choker. Every rechoke the `slots` interested peers
//! that give us the most (or, while seeding, take from us the fastest) are unchoked; one more,
//! optimistic, slot moves every optimistic interval to a random interested peer, new peers
//! weighted higher. Snubbed peers compete only for the optimistic slot.

use std::collections::BTreeSet;

use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::event::PeerKey;

/// What the choker knows of a peer at a rechoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChokeCandidate {
    pub(crate) peer: PeerKey,
    pub(crate) interested: bool,
    pub(crate) snubbed: bool,
    /// Bytes per second: their upload to us while we download, our upload to them while
    /// we seed.
    pub(crate) rate: u64,
    /// Connected recently: more likely to get the optimistic slot.
    pub(crate) is_new: bool,
}

/// The unchoke decision: regular slots plus one optimistic slot.
#[derive(Debug, Clone)]
pub(crate) struct Choker {
    slots: usize,
    new_peer_weight: u32,
    regular: BTreeSet<PeerKey>,
    optimistic: Option<PeerKey>,
}

impl Choker {
    pub(crate) fn new(slots: usize, new_peer_weight: u32) -> Self {
        Self {
            slots,
            new_peer_weight: new_peer_weight.max(1),
            regular: BTreeSet::new(),
            optimistic: None,
        }
    }

    pub(crate) fn is_unchoked(&self, peer: PeerKey) -> bool {
        self.regular.contains(&peer) || self.optimistic == Some(peer)
    }

    pub(crate) fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    pub(crate) fn remove(&mut self, peer: PeerKey) {
        self.regular.remove(&peer);
        if self.optimistic == Some(peer) {
            self.optimistic = None;
        }
    }

    /// An interested peer we choke asks for data: unchoke it at once if a slot is free
    /// (a regular one unless it is snubbed, else the optimistic one). Returns whether it got one.
    pub(crate) fn offer_free_slot(&mut self, candidate: &ChokeCandidate) -> bool {
        if !candidate.interested || self.is_unchoked(candidate.peer) {
            return false;
        }
        if !candidate.snubbed && self.regular.len() < self.slots {
            self.regular.insert(candidate.peer);
            true
        } else if self.optimistic.is_none() {
            self.optimistic = Some(candidate.peer);
            true
        } else {
            false
        }
    }

    /// Re-rank everyone; `rotate_optimistic` moves the optimistic slot (every optimistic
    /// interval). Returns the peers to unchoke; every other peer is choked.
    pub(crate) fn rechoke(
        &mut self,
        candidates: &[ChokeCandidate],
        rotate_optimistic: bool,
        rng: &mut SmallRng,
    ) -> BTreeSet<PeerKey> {
        let mut eligible: Vec<&ChokeCandidate> = candidates
            .iter()
            .filter(|c| c.interested && !c.snubbed)
            .collect();
        // Shuffle first so that the stable sort breaks rate ties at random.
        eligible.shuffle(rng);
        eligible.sort_by_key(|c| std::cmp::Reverse(c.rate));
        self.regular = eligible.iter().take(self.slots).map(|c| c.peer).collect();

        let keep = !rotate_optimistic
            && self.optimistic.is_some_and(|o| {
                !self.regular.contains(&o) && candidates.iter().any(|c| c.peer == o && c.interested)
            });
        if !keep {
            self.optimistic = self.draw_optimistic(candidates, rng);
        }
        let mut unchoked = self.regular.clone();
        unchoked.extend(self.optimistic);
        unchoked
    }

    fn draw_optimistic(
        &self,
        candidates: &[ChokeCandidate],
        rng: &mut SmallRng,
    ) -> Option<PeerKey> {
        let pool: Vec<(PeerKey, u32)> = candidates
            .iter()
            .filter(|c| c.interested && !self.regular.contains(&c.peer))
            .map(|c| (c.peer, if c.is_new { self.new_peer_weight } else { 1 }))
            .collect();
        let total: u32 = pool.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return None;
        }
        let mut ticket = rng.random_range(0..total);
        for (peer, weight) in pool {
            if ticket < weight {
                return Some(peer);
            }
            ticket -= weight;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeMap;

    fn candidate(peer: u64, rate: u64, is_new: bool) -> ChokeCandidate {
        ChokeCandidate {
            peer: PeerKey(peer),
            interested: true,
            snubbed: false,
            rate,
            is_new,
        }
    }

    #[test]
    fn fastest_get_regular_slots_and_one_optimistic() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut choker = Choker::new(2, 3);
        let cands: Vec<_> = (0..5).map(|i| candidate(i, i * 100, false)).collect();
        let set = choker.rechoke(&cands, true, &mut rng);
        assert!(set.contains(&PeerKey(4)) && set.contains(&PeerKey(3)));
        assert_eq!(set.len(), 3);
        let opt = choker.optimistic().unwrap();
        assert!(opt.0 < 3);
        // Without rotation the optimistic peer stays.
        let again = choker.rechoke(&cands, false, &mut rng);
        assert_eq!(again, set);
    }

    #[test]
    fn snubbed_and_uninterested_peers() {
        let mut rng = SmallRng::seed_from_u64(2);
        let mut choker = Choker::new(4, 3);
        let mut fast_snubbed = candidate(1, 1_000_000, false);
        fast_snubbed.snubbed = true;
        let mut idle = candidate(2, 500, false);
        idle.interested = false;
        let set = choker.rechoke(&[fast_snubbed, idle], true, &mut rng);
        // The snubbed peer only gets the optimistic slot; the uninterested one nothing.
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [PeerKey(1)]);
        assert_eq!(choker.optimistic(), Some(PeerKey(1)));
        assert!(choker.regular.is_empty());
    }

    #[test]
    fn free_slots_are_filled_at_once() {
        let mut choker = Choker::new(1, 3);
        assert!(choker.offer_free_slot(&candidate(1, 0, true)));
        assert!(choker.offer_free_slot(&candidate(2, 0, true)));
        assert_eq!(choker.optimistic(), Some(PeerKey(2)));
        assert!(!choker.offer_free_slot(&candidate(3, 0, true)));
        choker.remove(PeerKey(1));
        assert!(choker.offer_free_slot(&candidate(3, 0, true)));
    }

    #[test]
    fn optimistic_slot_is_fair_and_favours_new_peers() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut choker = Choker::new(4, 3);
        // Four fast peers hold the regular slots; 0..2 are new, 2..6 established.
        let mut cands: Vec<_> = (10..14).map(|i| candidate(i, 1_000_000, false)).collect();
        cands.extend((0..6).map(|i| candidate(i, 10, i < 2)));
        let mut wins: BTreeMap<u64, u32> = BTreeMap::new();
        let rounds = 600;
        for _ in 0..rounds {
            choker.rechoke(&cands, true, &mut rng);
            *wins.entry(choker.optimistic().unwrap().0).or_default() += 1;
        }
        assert!(
            wins.keys().all(|&k| k < 6),
            "fast peers never need the slot"
        );
        assert_eq!(
            wins.len(),
            6,
            "every slow peer got the optimistic slot: {wins:?}"
        );
        let new = f64::from(wins[&0] + wins[&1]) / 2.0;
        let old = f64::from((2..6).map(|k| wins[&k]).sum::<u32>()) / 4.0;
        let ratio = new / old;
        assert!(
            (2.3..3.9).contains(&ratio),
            "new/old = {ratio}, wins {wins:?}"
        );
    }
}
