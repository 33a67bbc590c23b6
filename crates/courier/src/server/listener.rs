//! Listeners the server accepts connections from.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// A source of connections.
pub(crate) trait Listener: Send {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(Self::Io, Option<SocketAddr>)>> + Send;
}

pub(crate) struct Tcp {
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) nodelay: bool,
}

impl Listener for Tcp {
    type Io = tokio::net::TcpStream;
    async fn accept(&mut self) -> std::io::Result<(Self::Io, Option<SocketAddr>)> {
        let (stream, addr) = self.listener.accept().await?;
        if self.nodelay {
            let _ = stream.set_nodelay(true);
        }
        Ok((stream, Some(addr)))
    }
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&mut self) -> std::io::Result<(Self::Io, Option<SocketAddr>)> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        Ok((stream, None))
    }
}
