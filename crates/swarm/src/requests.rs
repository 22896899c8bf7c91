//! The request pipeline: how many requests each peer gets, which blocks, and what happens to
//! requests that go unanswered.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use shoal_metainfo::BLOCK_SIZE;
use shoal_wire::Message;

use crate::config::SwarmConfig;
use crate::event::PeerKey;
use crate::peer::OutstandingRequest;
use crate::torrent::Torrent;

/// Requests to keep in flight to a peer that delivers `rate` bytes per second:
///
/// ```text
/// depth = clamp(ceil(rate × request_queue_time / BLOCK_SIZE), min_queue_depth, max_queue_depth)
/// ```
///
/// i.e. the bandwidth-delay product for round trips up to `request_queue_time` (default 250 ms,
/// 8..=256 blocks). A peer that answers faster raises its measured rate and so its depth, until
/// the link, not the pipeline, is the limit. The engine passes the larger of the peer's 20 s
/// average and its rate over the last one to two seconds, so a peer that just sped up (one
/// that unchoked us, say) gets a deep enough pipeline within a round trip or two.
pub fn queue_depth(rate: u64, config: &SwarmConfig) -> usize {
    queue_depth_over(rate, config.request_queue_time, config)
}

/// The longest a pipeline is sized to cover, whatever the round trips measured: a round trip
/// measured at a busy uploader includes its queue, which deeper pipelines would lengthen in
/// turn, so the floor they set is kept well below the reference client's 3 s.
pub(crate) const MAX_REQUEST_HORIZON: Duration = Duration::from_secs(1);

/// [`queue_depth`] for a pipeline that must cover `horizon` instead of `request_queue_time`.
pub(crate) fn queue_depth_over(rate: u64, horizon: Duration, config: &SwarmConfig) -> usize {
    let in_flight = u128::from(rate) * horizon.as_millis() / 1000;
    let blocks = in_flight.div_ceil(u128::from(BLOCK_SIZE));
    let blocks = usize::try_from(blocks).unwrap_or(usize::MAX);
    blocks
        .min(config.max_queue_depth)
        .max(config.min_queue_depth.min(config.max_queue_depth))
}

impl Torrent {
    /// Tops up the requests in flight to `key` up to its queue depth.
    pub(crate) fn fill_requests(&mut self, key: PeerKey) {
        let now = self.now;
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let Some(have) = &peer.have else {
            return;
        };
        if peer.peer_choking || !peer.am_interested {
            return;
        }
        let depth = self.queue_depth_of(peer);
        let Some(want) = depth.checked_sub(peer.outstanding.len()).filter(|&w| w > 0) else {
            return;
        };
        let peers = &self.peers;
        let rejected = &peer.rejected_pieces;
        // Skip pieces this peer rejected, and pieces whose earlier copy failed with blocks from
        // this peer while someone not implicated has the piece.
        let skip = |piece: u32, suspects: &BTreeSet<PeerKey>| {
            rejected.contains(&piece)
                || (suspects.contains(&key)
                    && peers
                        .iter()
                        .any(|(k, p)| !suspects.contains(k) && p.has(piece)))
        };
        // End-game copies only top the pipeline up to the minimum depth: the tail is short,
        // and every copy beyond the first is bandwidth spent twice.
        let endgame = self
            .config
            .min_queue_depth
            .saturating_sub(peer.outstanding.len());
        let blocks = self
            .picker
            .pick(key, have, (want, endgame), &skip, &mut self.rng);
        if blocks.is_empty() {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        for block in &blocks {
            peer.outstanding.push(OutstandingRequest {
                block: *block,
                sent_at: now,
                timed_out: false,
            });
        }
        peer.refresh_waiting(now);
        for block in blocks {
            self.send(key, Message::Request(block));
        }
    }

    /// A peer that rejected a request (its queue was full, say) is asked again for those
    /// pieces at the next rechoke: were it the only source, the download would stall.
    pub(crate) fn forgive_rejections(&mut self) {
        let mut any = false;
        for peer in self.peers.values_mut() {
            any |= !peer.rejected_pieces.is_empty();
            peer.rejected_pieces.clear();
        }
        if any {
            self.fill_all_requests();
        }
    }

    pub(crate) fn fill_all_requests(&mut self) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill_requests(key);
        }
    }

    /// Late requests are offered to other peers; peers that deliver nothing for the snub
    /// timeout are snubbed and their requests re-issued elsewhere.
    pub(crate) fn expire_requests(&mut self, now: Instant) {
        let timeout = self.config.request_timeout;
        let snub_timeout = self.config.snub_timeout;
        let mut changed = false;
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            for r in peer.outstanding.iter_mut().filter(|r| !r.timed_out) {
                if now.saturating_duration_since(r.sent_at) >= timeout {
                    r.timed_out = true;
                    self.picker.mark_timed_out(key, r.block);
                    changed = true;
                }
            }
            let starved = peer
                .waiting_since
                .is_some_and(|w| now.saturating_duration_since(w) >= snub_timeout);
            if starved && !peer.snubbed {
                peer.snubbed = true;
                let dropped = std::mem::take(&mut peer.outstanding);
                peer.waiting_since = None;
                for r in dropped {
                    peer.remember_cancelled(r.block);
                    self.picker.release(key, r.block);
                    self.actions.push_back(crate::Action::Send {
                        peer: key,
                        message: Message::Cancel(r.block),
                    });
                }
                changed = true;
            }
        }
        if changed {
            self.fill_all_requests();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_the_bandwidth_delay_product() {
        let c = SwarmConfig::default();
        assert_eq!(queue_depth(0, &c), 8);
        // 4 MiB/s for 250 ms = 64 blocks of 16 KiB.
        assert_eq!(queue_depth(4 << 20, &c), 64);
        assert_eq!(queue_depth(100 << 20, &c), 256);
        let one_second = SwarmConfig {
            request_queue_time: Duration::from_secs(1),
            ..SwarmConfig::default()
        };
        assert_eq!(queue_depth(160 * 1024, &one_second), 10);
        let odd = SwarmConfig {
            min_queue_depth: 10,
            max_queue_depth: 2,
            ..SwarmConfig::default()
        };
        assert_eq!(queue_depth(0, &odd), 2, "a min above the max never panics");
    }
}
