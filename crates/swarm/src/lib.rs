//! shoal-swarm: the per-torrent engine.
