//! The engine of one torrent: state, event dispatch, timers and the action queue. Message
//! handling, the request pipeline and the upload side live in sibling modules as further
//! `impl Torrent` blocks.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use shoal_metainfo::PieceGeometry;
use shoal_wire::{Bitfield, HaveState, Message};

use crate::bans::BanTracker;
use crate::choker::Choker;
use crate::config::SwarmConfig;
use crate::error::SwarmError;
use crate::event::{Action, BanReason, DisconnectReason, Event, PeerKey};
use crate::peer::Peer;
use crate::picker::{PiecePicker, VerifyOutcome};
use crate::rate::RateMeter;
use crate::requests::{MAX_REQUEST_HORIZON, queue_depth_over};
use crate::stats::{PeerSnapshot, TorrentStats};
use crate::superseed::SuperSeed;

/// Running totals behind [`TorrentStats`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    pub(crate) duplicate_bytes: u64,
    pub(crate) failed_pieces: u32,
    pub(crate) banned_peers: u32,
    pub(crate) first_byte_at: Option<Instant>,
    pub(crate) completed_at: Option<Instant>,
}

/// The BitTorrent engine of one torrent: feed it events and `now`, drain its actions.
#[derive(Debug)]
pub struct Torrent {
    pub(crate) config: SwarmConfig,
    pub(crate) geometry: PieceGeometry,
    pub(crate) picker: PiecePicker,
    pub(crate) peers: BTreeMap<PeerKey, Peer>,
    pub(crate) choker: Choker,
    pub(crate) bans: BanTracker,
    /// Peers already banned: a peer implicated in more failures later is not banned twice.
    pub(crate) banned: std::collections::BTreeSet<PeerKey>,
    pub(crate) rng: SmallRng,
    pub(crate) actions: VecDeque<Action>,
    pub(crate) counters: Counters,
    /// Torrent-wide rates: they include peers gone since (a finished download still shows
    /// its recent rate after the seeds it came from were disconnected).
    pub(crate) download_meter: RateMeter,
    pub(crate) upload_meter: RateMeter,
    pub(crate) started: Instant,
    /// The latest `now` we were given; stats are computed as of this instant.
    pub(crate) now: Instant,
    pub(crate) next_rechoke: Instant,
    pub(crate) next_optimistic: Instant,
    /// Set while super-seeding (a torrent that started complete, with the option on).
    pub(crate) superseed: Option<SuperSeed>,
}

impl Torrent {
    /// An engine for a torrent of `geometry`, of which we already have the verified pieces
    /// in `have`. `rng_seed` drives every random choice (picker ties, optimistic unchokes).
    pub fn new(
        config: SwarmConfig,
        geometry: PieceGeometry,
        have: Bitfield,
        rng_seed: u64,
        now: Instant,
    ) -> Result<Self, SwarmError> {
        if have.len() != geometry.num_pieces() {
            return Err(SwarmError::HaveLength {
                len: have.len(),
                num_pieces: geometry.num_pieces(),
            });
        }
        let max_copies = config.endgame_extra_copies.saturating_add(1);
        let superseed = (config.super_seed && have.is_full())
            .then(|| SuperSeed::new(geometry.num_pieces(), config.super_seed_peers));
        Ok(Self {
            superseed,
            picker: PiecePicker::new(geometry, have, config.random_first_pieces, max_copies),
            choker: Choker::new(config.upload_slots, config.new_peer_weight),
            bans: BanTracker::new(config.ban_after_failed_pieces),
            banned: std::collections::BTreeSet::new(),
            next_rechoke: after(now, config.rechoke_interval),
            next_optimistic: after(now, config.rechoke_interval),
            config,
            geometry,
            peers: BTreeMap::new(),
            rng: SmallRng::seed_from_u64(rng_seed),
            actions: VecDeque::new(),
            counters: Counters::default(),
            download_meter: RateMeter::new(now),
            upload_meter: RateMeter::new(now),
            started: now,
            now,
        })
    }

    /// The have-state to put in our handshake. The node calls it when it sends the handshake,
    /// right before [`Event::PeerConnected`], with no event in between: pieces verified later
    /// reach the peer as Have messages.
    pub fn handshake_have(&self) -> HaveState {
        let have = self.picker.have();
        if self.superseed.is_some() {
            HaveState::None
        } else if self.picker.is_complete() {
            HaveState::All
        } else if self.picker.have_count() == 0 {
            HaveState::None
        } else {
            HaveState::Bitfield(have.clone())
        }
    }

    /// The pieces to announce with Have messages on a stream whose handshake carried `sent`
    /// (a [`Torrent::handshake_have`] from before [`Event::PeerConnected`]): those verified
    /// since. A super-seed announces nothing: it reveals pieces itself.
    pub fn haves_since(&self, sent: &HaveState) -> Vec<u32> {
        if self.superseed.is_some() {
            return Vec::new();
        }
        let announced = |piece: u32| match sent {
            HaveState::All => true,
            HaveState::None => false,
            HaveState::Bitfield(bits) => bits.get(piece),
        };
        self.picker
            .have()
            .ones()
            .filter(|&p| !announced(p))
            .collect()
    }

    /// Our verified pieces.
    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    pub fn geometry(&self) -> &PieceGeometry {
        &self.geometry
    }

    pub fn handle(&mut self, now: Instant, event: Event) {
        self.now = now;
        match event {
            Event::PeerConnected { peer } => {
                let reconnect = self.forget_peer(peer);
                self.peers.insert(peer, Peer::new(now));
                if reconnect {
                    self.reassign_slots_and_requests();
                }
            }
            Event::PeerDisconnected { peer } => {
                if self.forget_peer(peer) {
                    self.reassign_slots_and_requests();
                }
            }
            Event::Message { peer, message } => self.on_message(now, peer, message),
            Event::BlockWritten { block, ok } => {
                if let Some(piece) = self.picker.block_written(block, ok) {
                    self.actions.push_back(Action::VerifyPiece { piece });
                }
                if !ok {
                    self.fill_all_requests();
                }
            }
            Event::PieceVerified { piece, ok } => self.on_piece_verified(piece, ok),
            Event::PieceUnverifiable { piece } => self.on_piece_unverifiable(piece),
            Event::Uploaded { peer, block } => self.on_uploaded(now, peer, block),
            Event::ServeFailed { peer, block } => self.on_serve_failed(peer, block),
        }
    }

    /// Runs the timers that are due: rechoke and optimistic rotation, request timeouts,
    /// snubbing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if now >= self.next_rechoke {
            let rotate = now >= self.next_optimistic;
            if rotate {
                self.next_optimistic = after(now, self.config.optimistic_interval);
            }
            self.next_rechoke = after(now, self.config.rechoke_interval);
            self.rechoke(now, rotate);
            self.forgive_rejections();
        }
        self.expire_requests(now);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Torrent::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let peers = self.peers.values().filter_map(|p| {
            let expiry = p
                .outstanding
                .iter()
                .find(|r| !r.timed_out)
                .map(|r| after(r.sent_at, self.config.request_timeout));
            let snub = p
                .waiting_since
                .filter(|_| !p.snubbed)
                .map(|w| after(w, self.config.snub_timeout));
            expiry.into_iter().chain(snub).min()
        });
        peers.chain([self.next_rechoke]).min()
    }

    pub fn stats(&self) -> TorrentStats {
        let now = self.now;
        let since_start = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(self.started));
        TorrentStats {
            num_pieces: self.geometry.num_pieces(),
            pieces_have: self.picker.have_count(),
            complete: self.picker.is_complete(),
            in_endgame: self.picker.in_endgame(),
            bytes_downloaded: self.counters.downloaded,
            bytes_uploaded: self.counters.uploaded,
            duplicate_bytes: self.counters.duplicate_bytes,
            download_rate: self.download_meter.rate(now),
            upload_rate: self.upload_meter.rate(now),
            peers: self.peers.len(),
            unchoked_peers: self.peers.values().filter(|p| !p.am_choking).count(),
            interested_peers: self.peers.values().filter(|p| p.peer_interested).count(),
            failed_pieces: self.counters.failed_pieces,
            banned_peers: self.counters.banned_peers,
            time_to_first_byte: since_start(self.counters.first_byte_at),
            time_to_complete: since_start(self.counters.completed_at),
        }
    }

    /// Every connected peer, in key order.
    pub fn peers(&self) -> Vec<PeerSnapshot> {
        self.peers.keys().filter_map(|&k| self.peer(k)).collect()
    }

    pub fn peer(&self, key: PeerKey) -> Option<PeerSnapshot> {
        let p = self.peers.get(&key)?;
        let now = self.now;
        Some(PeerSnapshot {
            peer: key,
            handshaken: p.have.is_some(),
            pieces: p.have.as_ref().map_or(0, Bitfield::count),
            am_choking: p.am_choking,
            am_interested: p.am_interested,
            peer_choking: p.peer_choking,
            peer_interested: p.peer_interested,
            snubbed: p.snubbed,
            optimistic: self.choker.optimistic() == Some(key),
            bytes_downloaded: p.down.total(),
            bytes_uploaded: p.up.total(),
            download_rate: p.down.rate(now),
            upload_rate: p.up.rate(now),
            outstanding_requests: p.outstanding.len(),
            queue_depth: self.queue_depth_of(p),
            queued_requests: p.incoming.len() + p.serving.len(),
            connected_for: now.saturating_duration_since(p.connected_at),
            since_last_block: p.last_block_at.map(|t| now.saturating_duration_since(t)),
        })
    }

    pub(crate) fn queue_depth_of(&self, peer: &Peer) -> usize {
        if peer.snubbed {
            1
        } else {
            let rate = peer
                .down
                .rate(self.now)
                .max(peer.down.recent_rate(self.now));
            queue_depth_over(rate, self.request_horizon(peer), &self.config)
        }
    }

    /// How far ahead to keep a peer busy: `request_queue_time`, or twice the smallest round
    /// trip seen to it if that is longer (a pipeline sized from the rate alone cannot grow
    /// past a round trip longer than `request_queue_time`: the rate it measures is the one its
    /// own depth allows), at most `MAX_REQUEST_HORIZON` (1 s).
    pub(crate) fn request_horizon(&self, peer: &Peer) -> Duration {
        let rtt = peer.rtt.get().unwrap_or_default();
        self.config
            .request_queue_time
            .max(rtt.saturating_mul(2))
            .min(MAX_REQUEST_HORIZON)
    }

    pub(crate) fn send(&mut self, peer: PeerKey, message: Message) {
        self.actions.push_back(Action::Send { peer, message });
    }

    /// Drops the peer's state: its pieces leave the availability counts, its requests go
    /// back to the picker, its slot to the choker. Returns whether it was known.
    pub(crate) fn forget_peer(&mut self, key: PeerKey) -> bool {
        let Some(peer) = self.peers.remove(&key) else {
            return false;
        };
        if let Some(have) = &peer.have {
            self.picker.remove_peer(have);
        }
        for r in &peer.outstanding {
            self.picker.release(key, r.block);
        }
        self.choker.remove(key);
        true
    }

    /// After a peer left (or a piece failed): free upload slots and unrequested blocks go to
    /// the peers still here.
    pub(crate) fn reassign_slots_and_requests(&mut self) {
        self.fill_free_slots();
        self.fill_all_requests();
    }

    /// Drops `key` if it and we have every piece (see [`DisconnectReason::BothComplete`]);
    /// says whether it did.
    pub(crate) fn drop_if_both_complete(&mut self, key: PeerKey) -> bool {
        // Ours first: it is a counter, theirs a scan of their bitfield.
        if self.picker.is_complete()
            && self
                .peers
                .get(&key)
                .and_then(|p| p.have.as_ref())
                .is_some_and(Bitfield::is_full)
        {
            self.disconnect(key, DisconnectReason::BothComplete);
            return true;
        }
        false
    }

    pub(crate) fn disconnect(&mut self, key: PeerKey, reason: DisconnectReason) {
        if self.forget_peer(key) {
            self.actions
                .push_back(Action::Disconnect { peer: key, reason });
            self.reassign_slots_and_requests();
        }
    }

    fn ban(&mut self, key: PeerKey, reason: BanReason) {
        if !self.banned.insert(key) {
            return;
        }
        self.forget_peer(key);
        self.counters.banned_peers += 1;
        self.actions.push_back(Action::Ban { peer: key, reason });
    }

    /// Storage failed to read the piece back: fetch it again, blame nobody.
    fn on_piece_unverifiable(&mut self, piece: u32) {
        if self.picker.piece_unverifiable(piece) {
            self.reassign_slots_and_requests();
        }
    }

    fn on_piece_verified(&mut self, piece: u32, ok: bool) {
        match self.picker.piece_verified(piece, ok) {
            VerifyOutcome::Unexpected => {}
            VerifyOutcome::Verified => {
                let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                for key in keys {
                    if let Some(peer) = self.peers.get_mut(&key) {
                        let has = peer.has(piece);
                        if has {
                            peer.wanted = peer.wanted.saturating_sub(1);
                        }
                        // A peer that has the piece hears of it too unless it has every
                        // piece: a super-seed, which announces only what it revealed, counts
                        // on these Haves to see its pieces spread.
                        if !has || !peer.have.as_ref().is_some_and(Bitfield::is_full) {
                            self.send(key, Message::Have(piece));
                        }
                    }
                    self.update_interest(key);
                }
                if self.picker.is_complete() {
                    self.counters.completed_at = Some(self.now);
                    self.actions.push_back(Action::Completed);
                    let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
                    for key in keys {
                        self.drop_if_both_complete(key);
                    }
                }
            }
            VerifyOutcome::Failed { senders } => {
                self.counters.failed_pieces += 1;
                let sole = senders.len() == 1;
                for sender in senders {
                    if let Some(reason) = self.bans.record_failure(sender, piece, sole) {
                        self.ban(sender, reason);
                    }
                }
                self.reassign_slots_and_requests();
            }
        }
    }
}

/// `t + d` for config-sized durations; an absurd duration (past what `Instant` can hold) means
/// "about 34 years", never a panic.
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(1 << 30)))
        .unwrap_or(t)
}
