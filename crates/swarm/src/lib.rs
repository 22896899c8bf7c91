//! shoal-swarm: the per-torrent BitTorrent engine — piece picker, request pipeline, end game,
//! choker and bans — as a sans-IO state machine.
//!
//! It owns the decisions: what to request from whom, whom to upload to, whom to drop or ban.
//! It does not own sockets, streams, storage, hashing or the handshake's info-hash check: the
//! node (shoal-node) moves messages, writes and verifies pieces, and feeds the results back. No
//! tokio, no channels, no locks; the clock (`now`) and an RNG seed are inputs, so the same
//! inputs always give the same actions.
//!
//! # Contract
//!
//! The node drives a [`Torrent`] in quinn-proto's shape:
//!
//! - [`Torrent::handle`] takes an [`Event`]: a peer connected or left, a message from a peer
//!   (already validated against the torrent's geometry by shoal-wire), a block written, a piece
//!   verified, a served block uploaded.
//! - [`Torrent::handle_timeout`] runs due timers (rechoke every 10 s, optimistic unchoke every
//!   30 s, request timeouts, snubbing); [`Torrent::poll_timeout`] says when to call it next.
//! - [`Torrent::poll_action`] yields [`Action`]s in order, to be carried out in that order: send
//!   a message, write a block, verify a piece, read-and-send a requested block, disconnect or ban
//!   a peer, and `Completed` once every piece is verified (the engine keeps seeding).
//!
//! The handshake: the node sends ours (with the info-hash and [`Torrent::handshake_have`]) and
//! then reports [`Event::PeerConnected`]; the peer's handshake arrives as
//! [`Event::Message`] with [`shoal_wire::Message::Handshake`] (the node has checked its
//! info-hash and version). Until then the engine sends the peer nothing but Have messages for
//! pieces verified since our handshake went out. A node that sent its handshake earlier (while
//! dialing) sends the Haves of [`Torrent::haves_since`] first. A message other than a
//! handshake before the peer's handshake, or a second handshake, drops the peer.
//!
//! After [`Action::Disconnect`] or [`Action::Ban`] the engine has forgotten the peer and
//! ignores events still in flight for it; `PeerDisconnected` for it is harmless.
//!
//! Uploads: a peer's requests wait in the engine and go to the node as
//! [`Action::ServeRequest`], at most [`SwarmConfig::serve_pipeline`] per peer at a time; the node
//! answers each with exactly one [`Event::Uploaded`] (naming the block, so bytes and the
//! pipeline slot are both accounted) or [`Event::ServeFailed`]. Requests still in the engine
//! when we choke the peer are rejected (BEP 6); ones already handed to the node go out. A Cancel
//! from the peer drops a waiting request without a reply.
//!
//! Protocol limits (each a [`SwarmConfig`] field): more than 8 blocks we never requested (blocks
//! crossing our Cancel or Choke are remembered and do not count), more than 300 requests while
//! choked (requests crossing our Choke are legitimate), a Have past the last piece, a
//! bitfield of the wrong length, a second handshake: each drops the peer with a
//! [`DisconnectReason`]. Interested/NotInterested spam is harmless and ignored.
//!
//! # Rules
//!
//! - Picker: partial pieces first (closest to done first), then new pieces rarest first with a
//!   seeded random tie-break; random while we have fewer than 4 pieces.
//! - Pipeline depth per peer: see [`queue_depth`] — 250 ms of the peer's rate (its 20 s
//!   average or its last second or two, whichever is higher), or twice the smallest round trip
//!   seen to it if that is longer (at most 1 s); 8 to 256 blocks. A request unanswered for 20 s is offered
//!   to other peers too; a peer that delivers nothing for 60 s while we wait is snubbed.
//! - End game: when no missing block is unrequested, a peer with free slots also requests
//!   blocks already in flight, at most 2 extra copies per block; the first copy to arrive wins
//!   and the others are cancelled.
//!   End-game copies only fill a peer's pipeline up to the minimum depth (8), so the waste is
//!   a few blocks per peer; [`TorrentStats::duplicate_bytes`] shows it.
//! - Choker: 4 regular slots by rate (download rate from them; upload rate to them while
//!   seeding; a 20 s window) plus one optimistic slot, new peers (connected < 60 s) 3× as
//!   likely in the draw; snubbed peers only compete for the optimistic slot; a free slot is
//!   filled at once when a peer becomes interested; a peer that loses interest is choked and
//!   its slot given away.
//! - Super-seeding ([`SwarmConfig::super_seed`], on by default), for a torrent that starts
//!   complete: the handshake announces no pieces, and pieces are revealed with Have messages,
//!   each to one peer — the least revealed piece, then the rarest — to at most 2 peers at a time
//!   (more while our upload runs dry), round-robin, one piece per turn while others wait,
//!   peers whose earlier pieces nobody else has yet going last. The seed's upload, the scarcest
//!   in a swarm fed by one seed, then carries each piece about once and the leechers spread
//!   it. The choker does not run; a seed that finished a download does not super-seed.
//!   [`Torrent::haves_since`] tells the node which Haves follow an early handshake.
//! - Haves: a verified piece is announced to every peer that lacks it, and to peers that have
//!   it too unless they have every piece (a super-seed sees its pieces spread that way).
//! - Bans: see [`SwarmConfig::ban_after_failed_pieces`] — the sole sender of a corrupt piece,
//!   or a sender in 2 corrupt pieces, is banned. A failed piece is downloaded again, from
//!   peers that did not send blocks of it whenever one has it.
//!
//! # Peer exchange and metadata
//!
//! Two smaller state machines, beside the engine and driven the same way:
//!
//! - [`PexState`] (`/shoal/pex/1`, frames in shoal-wire: `bincode(info-hash, added:
//!   [(peer-id, addrs)], dropped: [peer-id])`, at most 50 + 50) — per torrent, which peers are
//!   connected and what each was last told. [`PexState::poll_send`] at
//!   [`PexState::next_due`] yields a [`PexUpdate`] per due peer: first one 5 s after it
//!   connects listing the connected peers, then every 60 s only what changed (at most 50
//!   added and 50 dropped, the rest next time; a peer is "dropped" only for those told of it).
//!   [`PexState::on_received`] and [`PexState::on_oversized`] police the other direction: a
//!   second message within 45 s or one over a size limit is a violation,
//!   [`PexVerdict::Throttle`] up to three times in ten minutes, then [`PexVerdict::Drop`].
//!   Generic over the peer identity, so it needs no libp2p.
//! - [`MetadataFetch`] (`/shoal/metadata/1`: Request {info-hash, piece} answered by Data
//!   {piece, total_len} + up to 16 KiB, or Reject) — fetches one torrent's info dictionary
//!   from one peer: piece 0 first, which tells the size (1 byte to 16 MiB, allocated only
//!   then), then the other pieces pipelined; every Data is checked against what was asked
//!   and announced, and [`MetadataFetch::finish`] hands out the bytes only if their SHA-1 is
//!   the info-hash.
//!
//! Not here (yet): keep-alives and idle timeouts (the node's transport has them), upload rate
//! limits, piece priorities, dropping seed-to-seed connections.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use shoal_metainfo::PieceGeometry;
//! use shoal_swarm::{Action, Event, PeerKey, SwarmConfig, Torrent};
//! use shoal_wire::{Bitfield, Handshake, HaveState, Message};
//!
//! let geometry = PieceGeometry::new(32 * 1024, 1024 * 1024).unwrap();
//! let now = Instant::now();
//! let mut torrent = Torrent::new(
//!     SwarmConfig::default(),
//!     geometry,
//!     Bitfield::new(geometry.num_pieces()),
//!     42,
//!     now,
//! )
//! .unwrap();
//!
//! let seed = PeerKey(1);
//! torrent.handle(now, Event::PeerConnected { peer: seed });
//! let handshake = Handshake {
//!     version: shoal_wire::PROTOCOL_VERSION,
//!     info_hash: shoal_metainfo::InfoHash([0; 20]),
//!     have: HaveState::All,
//! };
//! torrent.handle(now, Event::Message { peer: seed, message: Message::Handshake(handshake) });
//! torrent.handle(now, Event::Message { peer: seed, message: Message::Unchoke });
//!
//! let mut requests = 0;
//! while let Some(action) = torrent.poll_action() {
//!     match action {
//!         Action::Send { message: Message::Interested, .. } => {}
//!         Action::Send { message: Message::Request(_), .. } => requests += 1,
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!(requests, 8); // the minimum queue depth, before any rate is measured
//! assert!(torrent.poll_timeout().is_some());
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bans;
mod choker;
mod config;
mod error;
mod event;
mod messages;
mod metadata;
mod peer;
mod pex;
mod picker;
mod rate;
mod requests;
mod stats;
mod superseed;
mod torrent;
mod upload;

pub use config::SwarmConfig;
pub use error::SwarmError;
pub use event::{Action, BanReason, DisconnectReason, Event, PeerKey};
pub use metadata::{MetadataError, MetadataFetch};
pub use pex::{PexConfig, PexState, PexStats, PexUpdate, PexVerdict};
pub use requests::queue_depth;
pub use stats::{PeerSnapshot, TorrentStats};
pub use torrent::Torrent;
