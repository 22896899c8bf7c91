//! A peer's piece-exchange stream as the session sees it: the link it keeps, and the reader and
//! writer tasks that move the stream's messages.

use std::sync::Arc;

use bytes::Bytes;
use shoal_swarm::PeerKey;
use shoal_wire::{Block, BlockRef, Message, Validator};
use tokio::sync::mpsc;

use super::Input;
use crate::peers::PeerInfo;
use crate::streams::{StreamReader, StreamWriter};

/// One stream of a peer: the engine's key for the peer, which stays the same when the peer
/// reconnects (so what the engine holds against it, such as its share of corrupt pieces,
/// survives the reconnection), and the stream's own serial number, so that messages still
/// queued from a closed stream never count for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conn {
    pub(crate) key: PeerKey,
    pub(crate) serial: u64,
}

/// What a writer task sends.
pub(super) enum Outgoing {
    Message(Message),
    /// A Piece answering a request; reported as uploaded once written.
    Served(BlockRef, Bytes),
}

/// A connected peer.
pub(super) struct PeerLink {
    pub(super) info: PeerInfo,
    pub(super) serial: u64,
    pub(super) outbound: bool,
    pub(super) outbox: mpsc::UnboundedSender<Outgoing>,
    pub(super) reader: tokio::task::JoinHandle<()>,
}

/// Reads the stream's messages, checks each against the torrent, and queues it for the
/// session; ends with the reason the stream closed.
pub(super) async fn read_loop(
    conn: Conn,
    mut reader: StreamReader,
    validator: Arc<Validator>,
    messages: mpsc::Sender<(Conn, Message)>,
    tx: mpsc::UnboundedSender<Input>,
) {
    let reason = loop {
        match reader.next().await {
            Ok(Some(message)) => {
                if let Err(e) = validator.check_incoming(&message) {
                    break format!("protocol violation: {e}");
                }
                if messages.send((conn, message)).await.is_err() {
                    return;
                }
            }
            Ok(None) => break "peer closed the stream".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = tx.send(Input::Closed(conn, reason));
}

/// Writes what the session queues, many messages per flush, and reports served blocks once
/// they are written.
pub(super) async fn write_loop(
    conn: Conn,
    mut writer: StreamWriter,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    tx: mpsc::UnboundedSender<Input>,
) {
    let mut written = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        // Take everything already queued, so one flush carries many messages.
        while let Some(outgoing) = next.take().or_else(|| queue.try_recv().ok()) {
            let message = match outgoing {
                Outgoing::Message(message) => message,
                Outgoing::Served(block, data) => {
                    written.push(block);
                    Message::Piece(Block {
                        piece: block.piece,
                        offset: block.offset,
                        data,
                    })
                }
            };
            if let Err(e) = writer.push(&message).await {
                let _ = tx.send(Input::Closed(conn, e.to_string()));
                return;
            }
        }
        if let Err(e) = writer.flush().await {
            let _ = tx.send(Input::Closed(conn, e.to_string()));
            return;
        }
        if !written.is_empty() {
            let _ = tx.send(Input::Uploaded(conn, std::mem::take(&mut written)));
        }
    }
    // The session dropped the peer: close our half politely.
    let _ = writer.close().await;
}
