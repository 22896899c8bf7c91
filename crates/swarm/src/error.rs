//! Errors of building an engine. Everything a peer does wrong is an action, not an error.

/// Why a [`crate::Torrent`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwarmError {
    #[error("have-bitfield over {len} pieces, torrent has {num_pieces}")]
    HaveLength { len: u32, num_pieces: u32 },
}
