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

mod error;
mod host;
pub mod identity;
mod rate;

pub use error::NodeError;
pub use host::{NodeConfig, NodeEvent, NodeHandle, start};
pub use rate::{Rate, RateParseError, TokenBucket};
pub use libp2p::{Multiaddr, PeerId};
