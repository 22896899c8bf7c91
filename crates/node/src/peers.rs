//! Where peers come from. Every connected peer keeps the source that found it, so stats and
//! testnets can tell which path (manual, incoming, DHT, PEX, tracker) found whom.

use std::collections::{HashMap, HashSet};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// How we learned of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerSource {
    /// Given by the user (`--peer`) or by the API (`TorrentHandle::add_peer`).
    Manual,
    /// It opened a stream to us.
    Incoming,
    /// A provider of the torrent in the DHT.
    Dht,
    /// Another peer of the torrent told us about it (PEX).
    Pex,
    /// A tracker's announce response.
    Tracker,
}

impl PeerSource {
    pub const ALL: [PeerSource; 5] = [
        PeerSource::Manual,
        PeerSource::Incoming,
        PeerSource::Dht,
        PeerSource::Pex,
        PeerSource::Tracker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::Manual => "manual",
            PeerSource::Incoming => "incoming",
            PeerSource::Dht => "dht",
            PeerSource::Pex => "pex",
            PeerSource::Tracker => "tracker",
        }
    }
}

/// A connected peer of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer_id: PeerId,
    pub source: PeerSource,
}

/// Every distinct peer a torrent has connected to, per the source that found it: how many
/// peers each path brought in over the torrent's life, where [`PeerInfo`] only says it for
/// the peers connected now. A peer connected through two sources (say it dropped and PEX
/// brought it back) counts under both.
#[derive(Debug, Clone, Default)]
pub(crate) struct FoundPeers {
    by_source: HashMap<PeerSource, HashSet<PeerId>>,
}

/// Distinct peers remembered per source; past this the count stops growing (a torrent that
/// met this many peers through one source is reported as having met this many).
const MAX_FOUND_PER_SOURCE: usize = 65_536;

impl FoundPeers {
    pub(crate) fn record(&mut self, source: PeerSource, peer: PeerId) {
        let peers = self.by_source.entry(source).or_default();
        if peers.len() < MAX_FOUND_PER_SOURCE {
            peers.insert(peer);
        }
    }

    /// Distinct peers per source (sources that found none are absent).
    pub(crate) fn counts(&self) -> HashMap<PeerSource, usize> {
        self.by_source
            .iter()
            .map(|(source, peers)| (*source, peers.len()))
            .collect()
    }
}

/// A peer address as users and magnet links write it: a multiaddr (`/ip4/1.2.3.4/tcp/6881`,
/// with or without `/p2p/<id>`), `IP:PORT`, or `HOST:PORT`.
pub fn parse_peer_address(text: &str) -> Result<Multiaddr, String> {
    let text = text.trim();
    if text.starts_with('/') {
        return text
            .parse()
            .map_err(|e| format!("{text:?} is not a valid multiaddr: {e}"));
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Ok(Multiaddr::from(socket.ip()).with(Protocol::Tcp(socket.port())));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is neither a multiaddr nor HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{text:?} has an invalid port {port:?}"))?;
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(format!("{text:?} has an invalid host {host:?}"));
    }
    Ok(Multiaddr::empty()
        .with(Protocol::Dns(host.to_owned().into()))
        .with(Protocol::Tcp(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_peers_are_distinct_per_source() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut found = FoundPeers::default();
        found.record(PeerSource::Tracker, a);
        found.record(PeerSource::Tracker, a);
        found.record(PeerSource::Tracker, b);
        found.record(PeerSource::Pex, a);
        let counts = found.counts();
        assert_eq!(counts.get(&PeerSource::Tracker), Some(&2));
        assert_eq!(counts.get(&PeerSource::Pex), Some(&1));
        assert_eq!(counts.get(&PeerSource::Dht), None);
    }

    #[test]
    fn peer_addresses_in_every_written_form() {
        let cases = [
            ("/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/tcp/4001"),
            ("127.0.0.1:4001", "/ip4/127.0.0.1/tcp/4001"),
            ("[::1]:4001", "/ip6/::1/tcp/4001"),
            ("seed.example:6881", "/dns/seed.example/tcp/6881"),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_peer_address(text).unwrap().to_string(),
                want,
                "{text}"
            );
        }
        for bad in [
            "",
            "nohost",
            "host:port",
            ":80",
            "/ip4/999.0.0.1/tcp/1",
            "a b:1",
        ] {
            let err = parse_peer_address(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
