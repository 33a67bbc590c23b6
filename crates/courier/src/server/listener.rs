//! Listeners the server accepts connections from.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::channelz::socket::SockAddr;

/// A connection accepted: the socket, the peer's address, and the local
/// one, where they are known.
pub(crate) type Accepted<Io> = (Io, Option<SocketAddr>, Option<SockAddr>);

/// A source of connections.
pub(crate) trait Listener: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Accepted<Self::Io>>> + Send;
    /// The address it listens on, for channelz.
    fn local(&self) -> Option<SockAddr> {
        None
    }
}

pub(crate) struct Tcp {
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) nodelay: bool,
}

impl Listener for Tcp {
    type Io = tokio::net::TcpStream;
    async fn accept(&mut self) -> std::io::Result<Accepted<Self::Io>> {
        let (stream, addr) = self.listener.accept().await?;
        if self.nodelay {
            let _ = stream.set_nodelay(true);
        }
        let local = stream.local_addr().ok().map(SockAddr::Tcp);
        Ok((stream, Some(addr), local))
    }

    fn local(&self) -> Option<SockAddr> {
        self.listener.local_addr().ok().map(SockAddr::Tcp)
    }
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&mut self) -> std::io::Result<Accepted<Self::Io>> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        let local = Listener::local(self);
        Ok((stream, None, local))
    }

    fn local(&self) -> Option<SockAddr> {
        let addr = self.local_addr().ok()?;
        Some(SockAddr::Unix(
            addr.as_pathname().map(|p| p.display().to_string()).unwrap_or_default(),
        ))
    }
}
