//! The node's transport: TCP with Noise and Yamux, dialing from a fresh local port.
//!
//! libp2p dials from the listening port by default (port reuse, for hole punching). When two
//! nodes dial each other at the same instant that makes both SYNs carry the same address pair,
//! and TCP's simultaneous open merges them into one connection on which both ends act as the
//! Noise initiator: the handshake fails on both sides and neither dial succeeds. BitTorrent
//! clients dial from ephemeral ports; so does shoal, and every dial gets its own connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{
    Boxed, DialOpts, ListenerId, PortUse, Transport, TransportError, TransportEvent,
};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId, noise, tcp, yamux};

/// Wraps a transport so that every dial allocates a new local port.
struct FreshPortDials<T>(T);

impl<T: Transport + Unpin> Transport for FreshPortDials<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let opts = DialOpts {
            port_use: PortUse::New,
            ..opts
        };
        self.0.dial(addr, opts)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// TCP (no Nagle), authenticated with Noise, multiplexed with Yamux.
pub(crate) fn build(
    key: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    Ok(FreshPortDials(tcp)
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::Endpoint;

    /// A transport that records the options of its last dial.
    #[derive(Default)]
    struct Recorder(Option<DialOpts>);

    impl Transport for Recorder {
        type Output = ();
        type Error = std::io::Error;
        type ListenerUpgrade = std::future::Ready<Result<(), std::io::Error>>;
        type Dial = std::future::Ready<Result<(), std::io::Error>>;

        fn listen_on(
            &mut self,
            _: ListenerId,
            addr: Multiaddr,
        ) -> Result<(), TransportError<Self::Error>> {
            Err(TransportError::MultiaddrNotSupported(addr))
        }

        fn remove_listener(&mut self, _: ListenerId) -> bool {
            false
        }

        fn dial(
            &mut self,
            _: Multiaddr,
            opts: DialOpts,
        ) -> Result<Self::Dial, TransportError<Self::Error>> {
            self.0 = Some(opts);
            Ok(std::future::ready(Ok(())))
        }

        fn poll(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
            Poll::Pending
        }
    }

    #[test]
    fn dials_never_reuse_the_listening_port() {
        let mut transport = FreshPortDials(Recorder::default());
        let opts = DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        };
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert!(transport.dial(addr, opts).is_ok());
        let seen = transport.0.0.unwrap();
        assert_eq!(seen.port_use, PortUse::New);
        assert_eq!(seen.role, Endpoint::Dialer);
    }
}
