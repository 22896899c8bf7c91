//! The ceiling of the node's transport on this machine: one libp2p stream over TCP + Noise +
//! Yamux with the node's settings (no Nagle, default Noise and Yamux configs, one network
//! thread), carrying bytes that nobody frames, hashes or stores. `scripts/bench-pipe.sh` runs
//! it between two processes, like `scripts/bench-transfer.sh` runs two `shoal` processes, so
//! the two figures side by side show what the stream stack costs and what shoal adds.
//!
//! ```text
//! pipe_ceiling serve               prints `listen <multiaddr>/p2p/<peer id>`, then serves
//! pipe_ceiling fetch ADDR BYTES    fetches BYTES from ADDR, prints `fetched BYTES in SECS`
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::upgrade::Version;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, Swarm, Transport, noise, tcp, yamux};

type BoxError = Box<dyn Error + Send + Sync>;

const PROTOCOL: StreamProtocol = StreamProtocol::new("/shoal/pipe-ceiling/1");
/// Size of each write on the serving side and of the read buffer on the fetching side.
const CHUNK: usize = 256 * 1024;
/// A fetch asks for at most this much, so a stray connection cannot make the server loop for
/// ever.
const MAX_FETCH: u64 = 64 << 30;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve"] => runtime.block_on(serve()),
        ["fetch", addr, bytes] => runtime.block_on(fetch(addr.parse()?, bytes.parse()?)),
        _ => Err("usage: pipe_ceiling serve | pipe_ceiling fetch MULTIADDR BYTES".into()),
    }
}

fn swarm() -> Result<Swarm<libp2p_stream::Behaviour>, BoxError> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| {
            Ok::<_, BoxError>(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .upgrade(Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
                    .boxed(),
            )
        })?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

async fn serve() -> Result<(), BoxError> {
    let mut swarm = swarm()?;
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let mut incoming = swarm.behaviour().new_control().accept(PROTOCOL)?;
    tokio::spawn(async move {
        while let Some((peer, stream)) = incoming.next().await {
            tokio::spawn(async move {
                if let Err(e) = send(stream).await {
                    eprintln!("pipe_ceiling: fetch by {peer} failed: {e}");
                }
            });
        }
    });
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            println!("listen {address}/p2p/{}", swarm.local_peer_id());
        }
    }
}

/// Reads how many bytes the peer wants, then writes them in `CHUNK`-sized writes.
async fn send(mut stream: libp2p::Stream) -> Result<(), BoxError> {
    let mut wanted = [0; 8];
    stream.read_exact(&mut wanted).await?;
    let mut left = u64::from_be_bytes(wanted);
    if left > MAX_FETCH {
        return Err(format!("asked for {left} bytes, more than {MAX_FETCH}").into());
    }
    let chunk = vec![0x5a; CHUNK];
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    stream.close().await?;
    Ok(())
}

async fn fetch(addr: Multiaddr, bytes: u64) -> Result<(), BoxError> {
    let Some(Protocol::P2p(peer)) = addr.iter().last() else {
        return Err(format!("{addr} does not end in /p2p/<peer id>").into());
    };
    let mut swarm = swarm()?;
    let mut control = swarm.behaviour().new_control();
    swarm.dial(addr)?;
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    let mut stream =
        tokio::time::timeout(Duration::from_secs(10), control.open_stream(peer, PROTOCOL))
            .await
            .map_err(|_| "no stream to the server within 10 s")??;
    stream.write_all(&bytes.to_be_bytes()).await?;
    stream.flush().await?;
    let start = Instant::now();
    let mut buf = vec![0; CHUNK];
    let mut got = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    if got != bytes {
        return Err(format!("the stream ended after {got} of {bytes} bytes").into());
    }
    println!("fetched {got} in {secs:.3}");
    Ok(())
}
