//! shoal-node: the libp2p host that shoal runs on.
//!
//! It owns the transport (TCP + Noise + Yamux), the node's persistent identity, identify and
//! ping, and the stream plumbing for shoal's own protocols. One task owns the libp2p `Swarm`;
//! the CLI, tests and the testnet drive it through the cloneable [`NodeHandle`]. Protocol
//! decisions live in the sans-IO crates (shoal-wire, shoal-swarm); this crate moves bytes.
//!
//! ```no_run
//! # async fn run() -> Result<(), shoal_node::NodeError> {
//! let node = shoal_node::start(shoal_node::NodeConfig::loopback("/tmp/shoal-a".into())).await?;
//! println!("listening on {:?}", node.listen_addrs());
//! node.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accept;
mod announce;
mod dht;
mod disk;
mod error;
pub mod framed;
mod host;
pub mod identity;
mod magnet;
mod metadata;
pub mod metrics;
mod peers;
mod pex;
mod progress;
mod rate;
mod session;
pub mod streams;
mod torrent;
mod transport;

pub use dht::{DhtConfig, DhtStats, KAD_PROTOCOL};
pub use error::NodeError;
pub use host::{NodeConfig, NodeEvent, NodeHandle, start};
pub use libp2p::{Multiaddr, PeerId};
pub use magnet::AddMagnet;
pub use metadata::FetchError;
pub use peers::{PeerInfo, PeerSource, parse_peer_address};
pub use progress::{PeerStatus, TorrentProgress, TorrentStatus};
pub use rate::{Rate, RateParseError, TokenBucket};
pub use shoal_swarm::{PexConfig, PexStats};
pub use shoal_tracker::client::{AnnounceBackoff, AnnounceStats};
pub use torrent::{AddTorrent, TorrentHandle};
