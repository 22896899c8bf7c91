//! A peer's piece-exchange stream as the session sees it: the link it keeps, and the reader and
//! writer tasks that move the stream's messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use shoal_swarm::PeerKey;
use shoal_wire::{Block, BlockRef, Message, Validator};
use tokio::sync::{Notify, mpsc};

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

/// Messages queued for a peer's writer above which its reader stops taking the peer's
/// messages. Most of what we queue answers what the peer sends (a Reject per refused request,
/// Requests after an Unchoke), so a peer that sends without reading what we send would
/// otherwise grow the queue without bound. Have messages do not count: they come from our own
/// progress, one per piece, whatever the peer does, and a slow honest reader should not be
/// paused for them.
const OUTBOX_HIGH: usize = 4096;
/// The reader takes the peer's messages again once its queue is down to this many.
const OUTBOX_LOW: usize = 1024;

/// How many messages wait for a peer's writer task, and a wake-up for its reader.
#[derive(Default)]
struct Backlog {
    queued: AtomicUsize,
    drained: Notify,
}

/// The session's side of a peer's writer queue.
#[derive(Clone)]
pub(super) struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    backlog: Arc<Backlog>,
}

impl Outbox {
    /// Queues `outgoing` for the writer task (dropped if the task has ended: the session hears
    /// of the stream's end separately).
    pub(super) fn send(&self, outgoing: Outgoing) {
        let counted = counts(&outgoing);
        if counted {
            self.backlog.queued.fetch_add(1, Ordering::Relaxed);
        }
        if self.tx.send(outgoing).is_err() && counted {
            self.backlog.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Waits while more than [`OUTBOX_HIGH`] messages are queued, until [`OUTBOX_LOW`] are.
    /// The writer makes progress or ends the stream (see [`write_loop`]), so this ends too.
    async fn wait_for_room(&self) {
        loop {
            // Registered before the check, so a wake-up between the two is not lost.
            let drained = self.backlog.drained.notified();
            if self.backlog.queued.load(Ordering::Relaxed) <= OUTBOX_HIGH {
                return;
            }
            drained.await;
        }
    }
}

/// Whether `outgoing` counts towards [`OUTBOX_HIGH`].
fn counts(outgoing: &Outgoing) -> bool {
    !matches!(outgoing, Outgoing::Message(Message::Have(_)))
}

/// The writer task's side of the queue.
pub(super) struct OutboxQueue {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    backlog: Arc<Backlog>,
}

impl OutboxQueue {
    async fn recv(&mut self) -> Option<Outgoing> {
        let outgoing = self.rx.recv().await;
        self.taken(outgoing.as_ref());
        outgoing
    }

    fn try_recv(&mut self) -> Option<Outgoing> {
        let outgoing = self.rx.try_recv().ok();
        self.taken(outgoing.as_ref());
        outgoing
    }

    fn taken(&self, outgoing: Option<&Outgoing>) {
        if outgoing.is_some_and(counts)
            && self.backlog.queued.fetch_sub(1, Ordering::Relaxed) == OUTBOX_LOW + 1
        {
            self.backlog.drained.notify_waiters();
        }
    }
}

/// A peer's writer queue: unbounded for the session, which never waits, and held in bounds by
/// the peer's reader, which stops taking the peer's messages while the queue is long.
pub(super) fn outbox() -> (Outbox, OutboxQueue) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    let outbox = Outbox {
        tx,
        backlog: backlog.clone(),
    };
    (outbox, OutboxQueue { rx, backlog })
}

/// A connected peer.
pub(super) struct PeerLink {
    pub(super) info: PeerInfo,
    pub(super) serial: u64,
    pub(super) outbound: bool,
    pub(super) outbox: Outbox,
    pub(super) reader: tokio::task::JoinHandle<()>,
}

/// Reads the stream's messages, checks each against the torrent, and queues it for the
/// session; ends with the reason the stream closed. Pauses while the peer's writer queue is
/// long (see [`OUTBOX_HIGH`]).
pub(super) async fn read_loop(
    conn: Conn,
    mut reader: StreamReader,
    outbox: Outbox,
    validator: Arc<Validator>,
    messages: mpsc::Sender<(Conn, Message)>,
    tx: mpsc::UnboundedSender<Input>,
) {
    let reason = loop {
        outbox.wait_for_room().await;
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
/// they are written. A stream that takes nothing for `send_timeout` (a peer that does not
/// read) ends the peer's stream, and this task with it.
pub(super) async fn write_loop(
    conn: Conn,
    mut writer: StreamWriter,
    mut queue: OutboxQueue,
    send_timeout: Duration,
    tx: mpsc::UnboundedSender<Input>,
) {
    writer.set_stall_limit(send_timeout);
    let mut written = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        // Take everything already queued, so one flush carries many messages.
        while let Some(outgoing) = next.take().or_else(|| queue.try_recv()) {
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
