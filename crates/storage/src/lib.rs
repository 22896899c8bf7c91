//! shoal-storage: a torrent's pieces on disk.
