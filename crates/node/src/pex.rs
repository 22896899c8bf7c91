//! Peer exchange on `/shoal/pex/1`: one message per stream (open, one frame, close).
//!
//! What to tell whom and when, and how often a peer may talk to us, is shoal-swarm's
//! [`shoal_swarm::PexState`]; this module moves the messages, fills in the addresses the host
//! learned through identify, and turns received records into dialable peers.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId, StreamProtocol};
use shoal_metainfo::InfoHash;
use shoal_swarm::PexUpdate;
use shoal_wire::{
    PEX_PROTOCOL, PexFrame, PexMessage, PexPeer, WireError, decode_pex_frame, encode_pex,
};
use tracing::debug;

use crate::accept::accept_bounded;
use crate::framed::{FrameReader, FrameWriter};
use crate::host::NodeHandle;
use crate::streams::Router;

pub(crate) const PEX: StreamProtocol = StreamProtocol::new(PEX_PROTOCOL);

/// How long a peer has to deliver its message once it opened the stream.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Our update for one peer as a wire message, each peer with its listen addresses.
pub(crate) fn message(
    node: &NodeHandle,
    info_hash: InfoHash,
    update: &PexUpdate<PeerId>,
) -> PexMessage {
    let added = update
        .added
        .iter()
        .map(|peer| PexPeer {
            peer_id: peer.to_bytes(),
            addrs: node
                .peer_addresses(peer)
                .iter()
                .take(shoal_wire::PEX_MAX_ADDRS_PER_PEER)
                .map(|a| a.to_vec())
                .filter(|a| a.len() <= shoal_wire::PEX_MAX_ADDR_LEN)
                .collect(),
        })
        .collect();
    let dropped = update.dropped.iter().map(|p| p.to_bytes()).collect();
    PexMessage {
        info_hash,
        added,
        dropped,
    }
}

/// Sends one message to `peer` in the background; a failure only costs this update.
pub(crate) fn send(node: &NodeHandle, peer: PeerId, message: PexMessage) {
    let mut control = node.stream_control();
    tokio::spawn(async move {
        let result = async {
            let stream = control
                .open_stream(peer, PEX)
                .await
                .map_err(|e| e.to_string())?;
            let mut writer = FrameWriter::new(stream, None);
            writer
                .push_with(|buf| encode_pex(&message, buf))
                .await
                .map_err(|e| e.to_string())?;
            writer.close().await.map_err(|e| e.to_string())
        }
        .await;
        if let Err(reason) = result {
            debug!(%peer, %reason, "could not send a PEX message");
        }
    });
}

/// A PEX message as its torrent receives it.
#[derive(Debug)]
pub(crate) enum Received {
    /// Within the size limits.
    Message(PexMessage),
    /// Over a size limit (shoal-wire's check): nothing of it is kept but what it broke.
    Oversized(WireError),
}

/// The peers of a received message that we can dial: a record whose peer id does not parse is
/// skipped, and so is an address that does not parse (it may be of a transport this build does
/// not know); neither counts against the sender. A record left with no address is skipped.
pub(crate) fn dialable(from: &PeerId, message: &PexMessage) -> Vec<(PeerId, Vec<Multiaddr>)> {
    let mut peers = Vec::with_capacity(message.added.len());
    let mut skipped = 0usize;
    for record in &message.added {
        let Ok(peer) = PeerId::from_bytes(&record.peer_id) else {
            skipped += 1;
            continue;
        };
        let addrs: Vec<Multiaddr> = record
            .addrs
            .iter()
            .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
            .collect();
        skipped += record.addrs.len() - addrs.len();
        if !addrs.is_empty() {
            peers.push((peer, addrs));
        }
    }
    if skipped > 0 {
        debug!(peer = %from, skipped, "skipped PEX peer ids or addresses that do not parse");
    }
    peers
}

/// PEX streams one peer may have open to us at once (it sends one message a minute).
const MAX_STREAMS_PER_PEER: usize = 2;

/// Accepts PEX streams until the node stops, handing each message to its torrent.
pub(crate) async fn accept_loop(control: libp2p_stream::Control, router: Router) {
    accept_bounded(control, PEX, MAX_STREAMS_PER_PEER, |peer, stream| {
        receive(peer, stream, router.clone())
    })
    .await;
}

/// Reads the one message of a PEX stream and routes it to its torrent. A frame that does not
/// decode names no torrent: it only closes the stream.
async fn receive(peer: PeerId, stream: libp2p::Stream, router: Router) {
    let mut reader = FrameReader::new(stream, None);
    let (info_hash, received) = match reader.next_as_within(decode_pex_frame, READ_TIMEOUT).await {
        Ok(Some(PexFrame::Message(message))) => (message.info_hash, Received::Message(message)),
        Ok(Some(PexFrame::OverLimit { info_hash, error })) => {
            (info_hash, Received::Oversized(error))
        }
        Ok(None) => {
            debug!(%peer, "PEX stream closed without a message");
            return;
        }
        Err(e) => {
            debug!(%peer, error = %e, "bad PEX message");
            return;
        }
    };
    match router.pex_sink(&info_hash) {
        // A torrent busy with PEX loses the message rather than queueing more.
        Some(sink) => {
            let _ = sink.try_send((peer, received));
        }
        None => debug!(%peer, "PEX message for a torrent we do not have"),
    }
}
