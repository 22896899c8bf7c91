//! Tuning of one torrent's engine. Every limit the engine enforces is a field here.

use std::time::Duration;

/// How a [`crate::Torrent`] chooses, paces and polices. `Default` gives the values of the
/// BitTorrent reference client where one exists, except where a field says why not (those were
/// tuned on the swarm-efficiency benchmark, `cargo bench -p shoal-swarm --bench efficiency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmConfig {
    /// Regular unchoke slots (tit-for-tat); one optimistic slot comes on top of these.
    pub upload_slots: usize,
    /// How often the choker re-ranks peers.
    pub rechoke_interval: Duration,
    /// How often the optimistic unchoke moves to another peer.
    pub optimistic_interval: Duration,
    /// Peers connected for less than this are "new" and weigh more in the optimistic draw.
    pub new_peer_period: Duration,
    /// Weight of a new peer in the optimistic draw (an established peer weighs 1).
    pub new_peer_weight: u32,
    /// Smallest number of requests kept in flight per peer: what a peer whose rate is not
    /// measured yet gets. 8 (the reference client starts at 4): on a loaded machine, with
    /// round trips of tens of milliseconds, 4 blocks per round trip starve a fresh peer.
    pub min_queue_depth: usize,
    /// Largest number of requests kept in flight per peer.
    pub max_queue_depth: usize,
    /// How long, at a peer's measured download rate, we keep requested ahead: the
    /// bandwidth-delay product for round trips up to this long (see [`crate::queue_depth`]).
    /// 250 ms, not the reference 3 s: our requests wait in the uploader's queue behind
    /// everyone else's, so this is also about how long a new request waits there. Deep queues
    /// commit blocks to busy uploaders while others have nothing asked of them, and slow every
    /// hop of a new piece through the swarm (3 s: t_last/T_min 1.13 on the benchmark's 50
    /// leechers; 250 ms: 1.06).
    pub request_queue_time: Duration,
    /// A request unanswered this long is offered to other peers too (it stays queued at the
    /// slow peer; whichever copy arrives first wins and the others are cancelled).
    pub request_timeout: Duration,
    /// A peer that delivers nothing for this long while we wait on it is snubbed: its
    /// requests are cancelled and re-issued elsewhere, it keeps one request in flight, and the
    /// choker gives it only the optimistic slot.
    pub snub_timeout: Duration,
    /// End game: how many extra copies of a block may be requested from other peers once
    /// every missing block is requested (so at most `1 + endgame_extra_copies` in flight).
    pub endgame_extra_copies: usize,
    /// While we have fewer verified pieces than this, new pieces are picked at random instead
    /// of rarest first, so a newcomer soon has something to trade.
    pub random_first_pieces: u32,
    /// Blocks a peer may send that we never requested (nor cancelled) before it is dropped.
    pub max_unrequested_blocks: u32,
    /// Requests a peer may send while we choke it, counted from our last Choke, before it is
    /// dropped. Requests crossing our Choke are legitimate, so this is above the largest
    /// pipeline a well-behaved peer keeps.
    pub max_requests_while_choked: u32,
    /// Requests from one peer we queue before rejecting further ones. Those already handed to
    /// the node ([`Self::serve_pipeline`]) do not count: the peer may have received them already
    /// and requested more, and rejecting those stalls it until it forgives the rejections.
    pub max_incoming_requests: usize,
    /// [`crate::Action::ServeRequest`]s handed to the node per peer and not yet reported as
    /// [`crate::Event::Uploaded`]; the rest wait in the engine, so a Choke can still reject them.
    pub serve_pipeline: usize,
    /// A peer whose blocks were in this many pieces that failed verification is banned (a
    /// peer that was the only sender of one failed piece is banned at once).
    pub ban_after_failed_pieces: u32,
    /// Super-seeding (see the crate documentation): a torrent that starts complete hides its
    /// pieces and reveals them a few at a time, each to one peer, so that its upload goes to
    /// pieces the swarm lacks instead of to copies the leechers could get from each other.
    pub super_seed: bool,
    /// Super-seeding: how many peers are served (have revealed pieces they still lack) at once,
    /// to start with; up to four times as many while our upload runs dry with peers waiting.
    /// Few, so that each revealed piece arrives (and can be passed on) soon.
    pub super_seed_peers: usize,
    /// Whether this node uploads at all. Off, it never unchokes anyone (so every request is
    /// rejected): a free-rider, as testnets play one.
    pub upload: bool,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            upload_slots: 4,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            new_peer_period: Duration::from_secs(60),
            new_peer_weight: 3,
            min_queue_depth: 8,
            max_queue_depth: 256,
            request_queue_time: Duration::from_millis(250),
            request_timeout: Duration::from_secs(20),
            snub_timeout: Duration::from_secs(60),
            endgame_extra_copies: 2,
            random_first_pieces: 4,
            max_unrequested_blocks: 8,
            max_requests_while_choked: 300,
            max_incoming_requests: 500,
            serve_pipeline: 64,
            ban_after_failed_pieces: 2,
            super_seed: true,
            super_seed_peers: 2,
            upload: true,
        }
    }
}
