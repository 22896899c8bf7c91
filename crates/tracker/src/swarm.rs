//! The sans-IO tracker: swarms, the announce rules and reply encoding. No sockets, no clock,
//! no locks: `now` and the RNG come in as arguments, so tests drive it directly.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rand::Rng;
use shoal_metainfo::InfoHash;

use crate::config::TrackerConfig;
use crate::encode::{ReplyHeader, write_compact, write_dict_list};
use crate::error::TrackerError;
use crate::query::{AnnounceRequest, Event};

/// A peer as the tracker knows it. Peers are told apart by peer id *and* address, so nobody
/// can stop or overwrite another peer's entry by sending its (public) peer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: [u8; 20],
    pub ip: IpAddr,
    pub port: u16,
    pub left: u64,
    uploaded: u64,
    downloaded: u64,
    last_seen: Instant,
    /// Its `completed` event has been counted.
    completed: bool,
}

type PeerKey = ([u8; 20], IpAddr);

/// One torrent's peers, in a `Vec` for fast random picks, indexed by key.
#[derive(Debug, Default)]
struct Swarm {
    peers: Vec<Peer>,
    index: HashMap<PeerKey, usize>,
    seeders: usize,
    /// `completed` events counted (BEP 48 `downloaded`).
    downloaded: u64,
}

impl Swarm {
    fn remove_at(&mut self, at: usize) -> Peer {
        let peer = self.peers.swap_remove(at);
        self.index.remove(&(peer.id, peer.ip));
        if let Some(moved) = self.peers.get(at) {
            self.index.insert((moved.id, moved.ip), at);
        }
        if peer.left == 0 {
            self.seeders -= 1;
        }
        peer
    }

    /// Adds or refreshes the requester's entry; returns its index and the bytes to credit.
    fn upsert(
        &mut self,
        now: Instant,
        req: &AnnounceRequest,
        ip: IpAddr,
        config: &TrackerConfig,
        occupancy: &Occupancy,
    ) -> Result<(usize, Transfer), TrackerError> {
        match self.index.entry((req.peer_id, ip)) {
            Entry::Occupied(slot) => {
                let at = *slot.get();
                let peer = &mut self.peers[at];
                let credit = Transfer {
                    uploaded: req.uploaded.saturating_sub(peer.uploaded),
                    downloaded: req.downloaded.saturating_sub(peer.downloaded),
                };
                let was_seeder = peer.left == 0;
                peer.port = req.port;
                peer.left = req.left;
                peer.uploaded = req.uploaded;
                peer.downloaded = req.downloaded;
                peer.last_seen = now;
                match (was_seeder, req.left == 0) {
                    (false, true) => self.seeders += 1,
                    (true, false) => self.seeders -= 1,
                    _ => {}
                }
                if req.event == Event::Completed && !peer.completed {
                    peer.completed = true;
                    self.downloaded += 1;
                }
                Ok((at, credit))
            }
            Entry::Vacant(slot) => {
                if self.peers.len() >= config.max_peers_per_swarm {
                    return Err(TrackerError::SwarmFull {
                        max: config.max_peers_per_swarm,
                    });
                }
                if !Occupancy::reserve(&occupancy.peers, config.max_peers) {
                    return Err(TrackerError::TooManyPeers {
                        max: config.max_peers,
                    });
                }
                let at = self.peers.len();
                slot.insert(at);
                let completed = req.event == Event::Completed;
                self.peers.push(Peer {
                    id: req.peer_id,
                    ip,
                    port: req.port,
                    left: req.left,
                    uploaded: req.uploaded,
                    downloaded: req.downloaded,
                    last_seen: now,
                    completed,
                });
                self.downloaded += u64::from(completed);
                self.seeders += usize::from(req.left == 0);
                let credit = if req.event == Event::Started {
                    Transfer {
                        uploaded: req.uploaded,
                        downloaded: req.downloaded,
                    }
                } else {
                    Transfer::default()
                };
                Ok((at, credit))
            }
        }
    }

    /// Writes the reply for the peer at `at`: up to `want` others, at random when there are
    /// more, never the requester nor another entry at its address (the same client under an
    /// old peer id).
    fn reply(
        &self,
        rng: &mut impl Rng,
        at: usize,
        want: usize,
        header: ReplyHeader,
        req: &AnnounceRequest,
        out: &mut Vec<u8>,
    ) {
        let (my_ip, my_port) = (self.peers[at].ip, self.peers[at].port);
        let other = move |i: usize, p: &Peer| i != at && !(p.ip == my_ip && p.port == my_port);
        if self.peers.len() <= want + 1 {
            // Everyone fits: no sampling, no index list.
            let peers = self
                .peers
                .iter()
                .enumerate()
                .filter(move |(i, p)| other(*i, p))
                .map(|(_, p)| p);
            write_reply(out, header, peers, req);
        } else {
            let picked: Vec<usize> = rand::seq::index::sample(rng, self.peers.len(), want + 1)
                .into_iter()
                .filter(|&i| other(i, &self.peers[i]))
                .take(want)
                .collect();
            write_reply(out, header, picked.iter().map(|&i| &self.peers[i]), req);
        }
    }

    fn counts(&self) -> ScrapeCounts {
        ScrapeCounts {
            complete: self.seeders,
            incomplete: self.peers.len() - self.seeders,
            downloaded: self.downloaded,
        }
    }
}

/// One torrent's numbers as scrape reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    pub complete: usize,
    pub incomplete: usize,
    pub downloaded: u64,
}

/// Bytes a peer reported since its previous announce, credited to its user in private mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    pub uploaded: u64,
    pub downloaded: u64,
}

/// Totals over all torrents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub swarms: usize,
    pub peers: usize,
    pub seeders: usize,
}

/// Torrents and peers held by every [`Tracker`] that shares it, counted so that
/// [`TrackerConfig::max_swarms`] and [`TrackerConfig::max_peers`] hold for all of them
/// together. A server that splits its state into shards (each a `Tracker` behind its own
/// lock) gives them one `Occupancy`: a slot is taken atomically before a torrent or peer is
/// inserted, whatever shard it lands in, and given back when it goes.
#[derive(Debug, Default)]
pub struct Occupancy {
    swarms: AtomicUsize,
    peers: AtomicUsize,
}

impl Occupancy {
    /// Torrents held.
    pub fn swarms(&self) -> usize {
        self.swarms.load(Ordering::Relaxed)
    }

    /// Peers held.
    pub fn peers(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Takes one slot of `counter` if fewer than `max` are taken.
    fn reserve(counter: &AtomicUsize, max: usize) -> bool {
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(counter: &AtomicUsize, n: usize) {
        if n > 0 {
            counter.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// Swarm state and the announce logic.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    swarms: HashMap<InfoHash, Swarm>,
    peers: usize,
    seeders: usize,
    occupancy: Arc<Occupancy>,
}

impl Tracker {
    /// A tracker whose limits count only its own torrents and peers.
    pub fn new(config: TrackerConfig) -> Self {
        Self::sharing(config, Arc::default())
    }

    /// A tracker whose `max_swarms` and `max_peers` count the torrents and peers of every
    /// tracker sharing `occupancy` (the shards of one server).
    pub fn sharing(config: TrackerConfig, occupancy: Arc<Occupancy>) -> Self {
        Self {
            config,
            swarms: HashMap::new(),
            peers: 0,
            seeders: 0,
            occupancy,
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Applies an announce from `ip` and appends the bencoded reply to `out`. Returns the
    /// bytes to credit to the announcing user: the growth of `uploaded` / `downloaded` since
    /// this peer's previous announce (or since `started`; a peer first seen without `started`
    /// only sets the baseline, so nothing is ever credited twice).
    pub fn announce(
        &mut self,
        now: Instant,
        rng: &mut impl Rng,
        req: &AnnounceRequest,
        ip: IpAddr,
        out: &mut Vec<u8>,
    ) -> Result<Transfer, TrackerError> {
        if req.event == Event::Stopped {
            return Ok(self.stop(req, ip, out));
        }
        if !self.swarms.contains_key(&req.info_hash)
            && !Occupancy::reserve(&self.occupancy.swarms, self.config.max_swarms)
        {
            return Err(TrackerError::TooManySwarms {
                max: self.config.max_swarms,
            });
        }
        let swarm = self.swarms.entry(req.info_hash).or_default();
        let (peers_before, seeders_before) = (swarm.peers.len(), swarm.seeders);
        let (at, credit) = match swarm.upsert(now, req, ip, &self.config, &self.occupancy) {
            Ok(done) => done,
            Err(error) => {
                // Only a torrent created for this announce is empty: give its slot back.
                if swarm.peers.is_empty() {
                    self.swarms.remove(&req.info_hash);
                    Occupancy::release(&self.occupancy.swarms, 1);
                }
                return Err(error);
            }
        };
        self.peers = self.peers - peers_before + swarm.peers.len();
        self.seeders = self.seeders - seeders_before + swarm.seeders;
        let want = req
            .numwant
            .unwrap_or(self.config.default_numwant)
            .min(self.config.max_numwant) as usize;
        let header = header(&self.config, swarm.counts());
        swarm.reply(rng, at, want, header, req, out);
        Ok(credit)
    }

    /// `stopped`: forget the peer and reply with counts and no peers.
    fn stop(&mut self, req: &AnnounceRequest, ip: IpAddr, out: &mut Vec<u8>) -> Transfer {
        let mut credit = Transfer::default();
        let mut counts = ScrapeCounts::default();
        if let Some(swarm) = self.swarms.get_mut(&req.info_hash) {
            if let Some(&at) = swarm.index.get(&(req.peer_id, ip)) {
                let peer = swarm.remove_at(at);
                credit = Transfer {
                    uploaded: req.uploaded.saturating_sub(peer.uploaded),
                    downloaded: req.downloaded.saturating_sub(peer.downloaded),
                };
                self.peers -= 1;
                self.seeders -= usize::from(peer.left == 0);
                Occupancy::release(&self.occupancy.peers, 1);
            }
            counts = swarm.counts();
            if swarm.peers.is_empty() {
                self.swarms.remove(&req.info_hash);
                Occupancy::release(&self.occupancy.swarms, 1);
            }
        }
        write_reply(out, header(&self.config, counts), std::iter::empty(), req);
        credit
    }

    /// Drops peers not heard from for `peer_timeout`, and torrents left without peers (their
    /// `downloaded` count goes with them). Returns the number of peers dropped.
    pub fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.config.peer_timeout;
        let mut dropped = 0;
        let mut seeders_dropped = 0;
        let swarms_before = self.swarms.len();
        self.swarms.retain(|_, swarm| {
            let before = swarm.peers.len();
            let before_seeders = swarm.seeders;
            swarm
                .peers
                .retain(|p| now.saturating_duration_since(p.last_seen) < timeout);
            if swarm.peers.len() != before {
                swarm.seeders = swarm.peers.iter().filter(|p| p.left == 0).count();
                swarm.index.clear();
                for (at, p) in swarm.peers.iter().enumerate() {
                    swarm.index.insert((p.id, p.ip), at);
                }
                dropped += before - swarm.peers.len();
                seeders_dropped += before_seeders - swarm.seeders;
            }
            !swarm.peers.is_empty()
        });
        self.peers -= dropped;
        self.seeders -= seeders_dropped;
        Occupancy::release(&self.occupancy.peers, dropped);
        Occupancy::release(&self.occupancy.swarms, swarms_before - self.swarms.len());
        dropped
    }

    /// Scrape numbers for one torrent (zeros when unknown).
    pub fn scrape(&self, info_hash: &InfoHash) -> ScrapeCounts {
        self.swarms
            .get(info_hash)
            .map(Swarm::counts)
            .unwrap_or_default()
    }

    /// Every torrent with its numbers, for a full scrape.
    pub fn scrape_all(&self) -> impl Iterator<Item = (InfoHash, ScrapeCounts)> + '_ {
        self.swarms
            .iter()
            .map(|(hash, swarm)| (*hash, swarm.counts()))
    }

    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            swarms: self.swarms.len(),
            peers: self.peers,
            seeders: self.seeders,
        }
    }
}

impl Drop for Tracker {
    /// Gives back the slots of everything this tracker holds, so trackers sharing its
    /// [`Occupancy`] can use them.
    fn drop(&mut self) {
        Occupancy::release(&self.occupancy.peers, self.peers);
        Occupancy::release(&self.occupancy.swarms, self.swarms.len());
    }
}

fn header(config: &TrackerConfig, counts: ScrapeCounts) -> ReplyHeader {
    ReplyHeader {
        complete: counts.complete,
        incomplete: counts.incomplete,
        interval: config.interval.as_secs(),
        min_interval: config.min_interval.as_secs(),
    }
}

fn write_reply<'p>(
    out: &mut Vec<u8>,
    header: ReplyHeader,
    peers: impl Iterator<Item = &'p Peer> + Clone,
    req: &AnnounceRequest,
) {
    if req.compact {
        write_compact(out, header, peers);
    } else {
        write_dict_list(out, header, peers, req.no_peer_id);
    }
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
