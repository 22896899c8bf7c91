//! Accepting streams (piece exchange, PEX, metadata) with a bound on the work one peer can make
//! us do.
//!
//! Each accepted stream gets a handler task, but at most `max_per_peer` of them run for one peer
//! at once: a stream over that is dropped unread (the peer sees it reset). Peers are bounded by
//! the connection limit, so the handlers are too. The handlers belong to the accept loop: when
//! the node stops and the loop is aborted, they end with it.

use std::collections::HashMap;
use std::future::Future;

use futures::StreamExt;
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::task::{self, JoinSet};
use tracing::{debug, warn};

/// Accepts `protocol` streams until the node stops, running `handle` for each, at most
/// `max_per_peer` at once per peer.
pub(crate) async fn accept_bounded<F, Fut>(
    mut control: libp2p_stream::Control,
    protocol: StreamProtocol,
    max_per_peer: usize,
    handle: F,
) where
    F: Fn(PeerId, Stream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut incoming = match control.accept(protocol.clone()) {
        Ok(incoming) => incoming,
        Err(e) => {
            warn!(%protocol, error = %e, "cannot accept streams");
            return;
        }
    };
    let mut running = Running::default();
    loop {
        tokio::select! {
            next = incoming.next() => {
                let Some((peer, stream)) = next else { break };
                if running.count(&peer) >= max_per_peer {
                    debug!(%peer, %protocol, max_per_peer, "refused a stream: too many at once");
                    continue;
                }
                running.spawn(peer, handle(peer, stream));
            }
            Some(done) = running.tasks.join_next_with_id() => {
                let id = match &done {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                running.finished(id);
            }
        }
    }
}

/// The handlers running, and for whom.
#[derive(Default)]
struct Running {
    tasks: JoinSet<()>,
    owners: HashMap<task::Id, PeerId>,
    per_peer: HashMap<PeerId, usize>,
}

impl Running {
    fn count(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    fn spawn(&mut self, peer: PeerId, handler: impl Future<Output = ()> + Send + 'static) {
        let id = self.tasks.spawn(handler).id();
        self.owners.insert(id, peer);
        *self.per_peer.entry(peer).or_default() += 1;
    }

    fn finished(&mut self, id: task::Id) {
        let Some(peer) = self.owners.remove(&id) else {
            return;
        };
        if let Some(count) = self.per_peer.get_mut(&peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}
