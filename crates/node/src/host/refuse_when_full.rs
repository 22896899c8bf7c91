//! Refusing an incoming connection before its handshake when the node is full.
//!
//! `connection_limits` checks the cap on established connections only once a connection is
//! established, that is after the TCP accept, the Noise handshake (curve25519) and Yamux. A
//! node at its cap that many peers keep dialing (a bootstrap node, a popular record holder)
//! pays that handshake for every connection it then refuses. This behaviour refuses at the
//! pending stage instead, while the established count is at the cap: the socket is closed
//! before a byte of Noise. `connection_limits` still has the last word (the count may change
//! during a handshake), so the cap means what it did; only the wasted work goes.

use std::collections::HashSet;
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Why an incoming connection was refused before its handshake.
#[derive(Debug, thiserror::Error)]
#[error("refused before the handshake: {established} connections up, the cap is {max}")]
pub(crate) struct Full {
    established: usize,
    max: u32,
}

/// Refuses incoming connections at the pending stage while `max` connections (in and out) are
/// established.
pub(crate) struct RefuseWhenFull {
    max: u32,
    established: HashSet<ConnectionId>,
}

impl RefuseWhenFull {
    pub(crate) fn new(max: u32) -> Self {
        Self {
            max,
            established: HashSet::new(),
        }
    }
}

impl NetworkBehaviour for RefuseWhenFull {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let established = self.established.len();
        if established >= self.max as usize {
            return Err(ConnectionDenied::new(Full {
                established,
                max: self.max,
            }));
        }
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.established.insert(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                self.established.remove(&e.connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use libp2p::core::ConnectedPoint;
    use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};

    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    fn pending(gate: &mut RefuseWhenFull) -> Result<(), ConnectionDenied> {
        gate.handle_pending_inbound_connection(ConnectionId::new_unchecked(99), &addr(1), &addr(2))
    }

    fn listener() -> ConnectedPoint {
        ConnectedPoint::Listener {
            local_addr: addr(1),
            send_back_addr: addr(2),
        }
    }

    fn establish(gate: &mut RefuseWhenFull, id: usize, endpoint: &ConnectedPoint) {
        gate.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: PeerId::random(),
            connection_id: ConnectionId::new_unchecked(id),
            endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
    }

    fn close(gate: &mut RefuseWhenFull, id: usize, endpoint: &ConnectedPoint) {
        gate.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
            peer_id: PeerId::random(),
            connection_id: ConnectionId::new_unchecked(id),
            endpoint,
            cause: None,
            remaining_established: 0,
        }));
    }

    #[test]
    fn refuses_at_the_cap_and_accepts_again_below_it() {
        let mut gate = RefuseWhenFull::new(2);
        let inbound = listener();
        let outbound = ConnectedPoint::Dialer {
            address: addr(3),
            role_override: Endpoint::Dialer,
            port_use: PortUse::New,
        };
        assert!(pending(&mut gate).is_ok());
        establish(&mut gate, 1, &inbound);
        assert!(pending(&mut gate).is_ok(), "one below the cap");
        // Outgoing connections count towards the cap too.
        establish(&mut gate, 2, &outbound);
        let refused = pending(&mut gate).unwrap_err();
        let full = refused.downcast_ref::<Full>().unwrap();
        assert_eq!((full.established, full.max), (2, 2));
        close(&mut gate, 2, &outbound);
        assert!(pending(&mut gate).is_ok(), "room again after a close");
    }

    #[test]
    fn a_connection_counts_once() {
        let mut gate = RefuseWhenFull::new(2);
        let inbound = listener();
        establish(&mut gate, 1, &inbound);
        establish(&mut gate, 1, &inbound);
        assert!(pending(&mut gate).is_ok());
        close(&mut gate, 1, &inbound);
        close(&mut gate, 1, &inbound);
        assert_eq!(gate.established.len(), 0);
    }
}
