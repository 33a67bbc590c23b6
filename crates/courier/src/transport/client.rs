//! The client side of an HTTP/2 connection: dialing TCP or a Unix socket,
//! the handshake, and a task that drives the connection.

use std::future::Future as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Address, ConnectOptions};
use crate::status::Status;

/// A ready HTTP/2 connection.
pub(crate) struct Connection {
    pub(crate) send: h2::client::SendRequest<Bytes>,
    alive: Arc<AtomicBool>,
}

impl Connection {
    /// False once the connection has closed or failed, or received GOAWAY.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Marks the connection unusable for new calls.
    pub(crate) fn retire(&self) {
        self.alive.store(false, Ordering::Release);
    }
}

/// Dials `addr` and performs the HTTP/2 handshake, within the connect timeout.
pub(crate) async fn connect(addr: &Address, opts: &ConnectOptions) -> Result<Connection, Status> {
    let dial = async {
        match addr {
            Address::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| Status::unavailable(format!("failed to connect to {host}:{port}: {e}")))?;
                if opts.tcp_nodelay {
                    let _ = stream.set_nodelay(true);
                }
                secure_then_handshake(stream, addr, opts).await
            }
            Address::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| Status::unavailable(format!("failed to connect to unix:{}: {e}", path.display())))?;
                secure_then_handshake(stream, addr, opts).await
            }
        }
    };
    match tokio::time::timeout(opts.connect_timeout, dial).await {
        Ok(r) => r,
        Err(_) => Err(Status::unavailable(format!(
            "timed out after {:?} connecting to {}",
            opts.connect_timeout,
            addr.display()
        ))),
    }
}

/// Runs the TLS handshake first when the channel uses TLS, and insists on
/// ALPN `h2`.
#[cfg(feature = "tls")]
async fn secure_then_handshake<IO>(io: IO, addr: &Address, opts: &ConnectOptions) -> Result<Connection, Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(tls) = &opts.tls else {
        return handshake(io, opts).await;
    };
    let stream = tls
        .connector
        .connect(tls.server_name.clone(), io)
        .await
        .map_err(|e| Status::unavailable(format!("TLS handshake with {} failed: {e}", addr.display())))?;
    if !crate::credentials::negotiated_h2(stream.get_ref().1.alpn_protocol()) {
        return Err(Status::unavailable(format!(
            "{} did not agree to HTTP/2 over TLS (ALPN h2), which gRPC requires",
            addr.display()
        )));
    }
    handshake(stream, opts).await
}

/// Without TLS support, every channel is plaintext.
#[cfg(not(feature = "tls"))]
async fn secure_then_handshake<IO>(io: IO, _addr: &Address, opts: &ConnectOptions) -> Result<Connection, Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    handshake(io, opts).await
}

/// The payload size under which h2 0.4 charges a received DATA frame
/// against its small-frame budget, `SMALL_DATA_FRAME - len` bytes a frame
/// (h2's `DEFAULT_DATA_FRAME_OVERHEAD_THRESHOLD`, which it does not export).
const SMALL_DATA_FRAME: usize = 256;

/// How many calls on one connection may each have a small response message
/// received and not yet read, within the small-frame budget.
const BUDGETED_CALLS: usize = 1 << 16;

/// The client's budget for received small DATA frames: 16 MiB, or half the
/// connection window if that is more.
///
/// h2 charges each small DATA frame that is not the last of its stream
/// against a connection-wide budget until the application reads it, and
/// closes the connection with GOAWAY `ENHANCE_YOUR_CALM` when the budget
/// runs out. This guards against a peer flooding tiny frames: flow control
/// counts only payload bytes, so 1-byte frames filling our 4 MiB connection
/// window would cost about 1 GiB of per-frame bookkeeping. But h2's default,
/// half the connection window (2 MiB), is only about 8,000 small frames, and
/// a client with 10,000 unary calls in flight legitimately holds that many
/// small responses (one DATA frame each, then trailers) received before the
/// calls' tasks get to read them: it would tear its own connection down.
///
/// A client receives DATA only on streams it opened, so the small frames
/// waiting legitimately grow with the calls the application makes, not with
/// anything the server chooses. The budget covers one small frame for each
/// of [`BUDGETED_CALLS`]: 256 bytes a call, little next to what each call
/// already holds (its h2 stream, its future, its response headers), while a
/// server flooding tiny frames is still cut off, at 16 MiB of bookkeeping.
fn data_frame_budget(connection_window: u32) -> usize {
    (SMALL_DATA_FRAME * BUDGETED_CALLS).max(connection_window as usize / 2)
}

async fn handshake<IO>(io: IO, opts: &ConnectOptions) -> Result<Connection, Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let s = &opts.http2;
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(s.initial_stream_window)
        .initial_connection_window_size(s.initial_connection_window)
        .data_frame_budget(data_frame_budget(s.initial_connection_window))
        .max_frame_size(s.max_frame_size)
        .max_header_list_size(s.max_header_list_size)
        .max_send_buffer_size(s.max_send_buffer)
        .enable_push(false);
    let (io, flusher) = super::io::buffered(io);
    // The server's first frame, its SETTINGS, is awaited before the
    // connection takes calls: until then h2 knows no limit on streams, and
    // calls past the server's limit would be refused.
    flusher.watch_greeting(0);
    let (send, conn) = super::io::flushed(&flusher, builder.handshake::<_, Bytes>(io))
        .await
        .map_err(|e| Status::unavailable(format!("HTTP/2 handshake failed: {e}")))?;
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    let (greeted_tx, greeted) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut conn = std::pin::pin!(super::io::flushed(&flusher, conn));
        let mut greeted_tx = Some(greeted_tx);
        let ended = std::future::poll_fn(|cx| {
            let polled = conn.as_mut().poll(cx);
            if greeted_tx.is_some() && flusher.greeted() {
                let _ = greeted_tx.take().map(|tx| tx.send(()));
            }
            polled
        })
        .await;
        if let Err(e) = ended {
            tracing::debug!("client connection ended: {e}");
        }
        flag.store(false, Ordering::Release);
    });
    if greeted.await.is_err() {
        return Err(Status::unavailable(
            "the server closed the connection before sending its HTTP/2 SETTINGS",
        ));
    }
    Ok(Connection { send, alive })
}

impl Address {
    pub(crate) fn display(&self) -> String {
        match self {
            Address::Tcp { host, port } => format!("{host}:{port}"),
            Address::Unix(p) => format!("unix:{}", p.display()),
        }
    }
}
