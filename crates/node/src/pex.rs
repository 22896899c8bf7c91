//! Peer exchange on `/shoal/pex/1`: one message per stream (open, one frame, close).
//!
//! What to tell whom and when, and how often a peer may talk to us, is shoal-swarm's
//! [`shoal_swarm::PexState`]; this module moves the messages, fills in the addresses the host
//! learned through identify, and turns received records into dialable peers.

use std::time::Duration;

use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use shoal_metainfo::InfoHash;
use shoal_swarm::PexUpdate;
use shoal_wire::{PEX_PROTOCOL, PexMessage, PexPeer, decode_pex, encode_pex};
use tracing::debug;

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

/// A received record as a peer to dial, or what is wrong with it.
pub(crate) fn parse_peer(record: &PexPeer) -> Result<(PeerId, Vec<Multiaddr>), String> {
    let peer = PeerId::from_bytes(&record.peer_id)
        .map_err(|e| format!("a PEX record has an invalid peer id: {e}"))?;
    let addrs = record
        .addrs
        .iter()
        .map(|bytes| {
            Multiaddr::try_from(bytes.clone())
                .map_err(|e| format!("a PEX record for {peer} has an invalid address: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((peer, addrs))
}

/// Accepts PEX streams until the node stops, handing each message to its torrent.
pub(crate) async fn accept_loop(mut control: libp2p_stream::Control, router: Router) {
    let mut incoming = match control.accept(PEX) {
        Ok(incoming) => incoming,
        Err(e) => {
            tracing::warn!(error = %e, "cannot accept PEX streams");
            return;
        }
    };
    while let Some((peer, stream)) = incoming.next().await {
        let router = router.clone();
        tokio::spawn(async move {
            let mut reader = FrameReader::new(stream, None);
            match reader.next_as_within(decode_pex, READ_TIMEOUT).await {
                Ok(Some(message)) => match router.pex_sink(&message.info_hash) {
                    // A torrent busy with PEX loses the message rather than queueing more.
                    Some(sink) => {
                        let _ = sink.try_send((peer, message));
                    }
                    None => debug!(%peer, "PEX message for a torrent we do not have"),
                },
                Ok(None) => debug!(%peer, "PEX stream closed without a message"),
                Err(e) => debug!(%peer, error = %e, "bad PEX message"),
            }
        });
    }
}
