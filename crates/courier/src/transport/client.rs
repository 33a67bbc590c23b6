//! The client side of an HTTP/2 connection: dialing TCP or a Unix socket,
//! the handshake, and a task that drives the connection.

use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::ConnectOptions;
use super::engine::conn::{self, Config, Event, Keepalive, Role};
use super::engine::frame::ErrorCode;
use super::engine::ping_policy::TOO_MANY_PINGS;
use super::stream::Opener;
use crate::channelz::socket::{SockAddr, SocketEntry, SocketInfo};
use crate::client::resolver::Address;
use crate::client::resolver::address::Repr;
use crate::status::Status;

/// A ready HTTP/2 connection.
pub(crate) struct Connection {
    send: conn::Opener,
    liveness: Arc<Liveness>,
    /// The channel's own limit on streams open at once, when it sets one.
    streams: Option<Arc<tokio::sync::Semaphore>>,
    /// The connection's channelz entry, which its driver's task holds.
    channelz: std::sync::Weak<SocketEntry>,
}

/// Whether a connection still takes new calls, and a way to wait until it
/// does not.
#[derive(Default)]
struct Liveness {
    dead: AtomicBool,
    ended: tokio::sync::Notify,
}

impl Liveness {
    fn end(&self) {
        self.dead.store(true, Ordering::Release);
        self.ended.notify_waiters();
    }
}

/// A slot among a connection's streams, held by a call until its stream
/// ends, when the channel limits streams per connection.
pub(crate) type StreamPermit = Option<tokio::sync::OwnedSemaphorePermit>;

impl Connection {
    /// A handle that opens streams on this connection.
    pub(crate) fn opener(&self) -> Opener {
        Opener::new(self.send.clone(), None)
    }

    /// False once the connection has closed or failed, or received GOAWAY.
    pub(crate) fn is_alive(&self) -> bool {
        !self.liveness.dead.load(Ordering::Acquire) && !self.send.is_closed()
    }

    /// Marks the connection unusable for new calls; its subchannel then
    /// replaces it. Calls already on it carry on.
    pub(crate) fn retire(&self) {
        self.liveness.end();
    }

    /// Resolves once the connection no longer takes new calls: it closed,
    /// failed, or was retired.
    pub(crate) async fn closed(&self) {
        loop {
            let ended = self.liveness.ended.notified();
            let mut ended = std::pin::pin!(ended);
            ended.as_mut().enable();
            if !self.is_alive() {
                return;
            }
            ended.await;
        }
    }

    /// The connection's channelz entry, while its driver runs.
    pub(crate) fn channelz_socket(&self) -> std::sync::Weak<SocketEntry> {
        self.channelz.clone()
    }

    /// Waits for a free stream slot, when the channel limits them.
    pub(crate) async fn stream_permit(&self) -> StreamPermit {
        let streams = self.streams.as_ref()?;
        streams.clone().acquire_owned().await.ok()
    }
}

/// How far a connection attempt got, to say what a timeout interrupted.
const DIALING: u8 = 0;
const SECURING: u8 = 1;
const AWAITING_SERVER: u8 = 2;

/// Dials `addr` and performs the HTTP/2 handshake, within `timeout`: the
/// attempt succeeds once the server has answered with HTTP/2.
pub(crate) async fn connect(addr: &Address, opts: &ConnectOptions, timeout: Duration) -> Result<Connection, Status> {
    let phase = AtomicU8::new(DIALING);
    let dial = async {
        match &addr.0 {
            Repr::Socket(sock) => {
                let stream = tokio::net::TcpStream::connect(sock)
                    .await
                    .map_err(|e| tcp_failure(&addr.to_string(), e))?;
                let info = tcp_info(&stream, String::new());
                secure_then_handshake(tcp_options(stream, opts), addr, opts, &phase, info).await
            }
            Repr::Host { host, port } => {
                let stream = dial_host(host, *port).await?;
                let info = tcp_info(&stream, addr.to_string());
                secure_then_handshake(tcp_options(stream, opts), addr, opts, &phase, info).await
            }
            Repr::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| unix_failure(addr, e))?;
                let info = SocketInfo {
                    local: Some(SockAddr::Unix(String::new())),
                    remote: Some(SockAddr::Unix(path.display().to_string())),
                    ..SocketInfo::default()
                };
                secure_then_handshake(stream, addr, opts, &phase, info).await
            }
            Repr::UnixAbstract(name) => {
                let stream = connect_abstract(name).await.map_err(|e| unix_failure(addr, e))?;
                let info = SocketInfo {
                    local: Some(SockAddr::Unix(String::new())),
                    remote: Some(SockAddr::Unix(format!("@{}", String::from_utf8_lossy(name)))),
                    ..SocketInfo::default()
                };
                secure_then_handshake(stream, addr, opts, &phase, info).await
            }
        }
    };
    match tokio::time::timeout(timeout, dial).await {
        Ok(r) => r,
        Err(_) => {
            let during = match phase.load(Ordering::Relaxed) {
                DIALING => "",
                SECURING => " (the TLS handshake did not finish)",
                _ => " (the server accepted the connection but did not answer with HTTP/2)",
            };
            Err(Status::unavailable(format!(
                "timed out after {timeout:?} connecting to {addr}{during}"
            )))
        }
    }
}

/// What channelz reports of a TCP connection made for `remote_name`.
fn tcp_info(stream: &tokio::net::TcpStream, remote_name: String) -> SocketInfo {
    SocketInfo {
        local: stream.local_addr().ok().map(SockAddr::Tcp),
        remote: stream.peer_addr().ok().map(SockAddr::Tcp),
        tls: None,
        remote_name,
    }
}

fn tcp_options(stream: tokio::net::TcpStream, opts: &ConnectOptions) -> tokio::net::TcpStream {
    if opts.tcp_nodelay {
        let _ = stream.set_nodelay(true);
    }
    stream
}

/// Says why a TCP connection to `to` failed.
fn tcp_failure(to: &str, e: std::io::Error) -> Status {
    let why = match e.kind() {
        ErrorKind::ConnectionRefused => {
            "connection refused: nothing is listening there; is the server running, on this port?".to_string()
        }
        _ => e.to_string(),
    };
    Status::unavailable(format!("failed to connect to {to}: {why}"))
}

/// Says why a Unix socket connection failed.
fn unix_failure(addr: &Address, e: std::io::Error) -> Status {
    let why = match e.kind() {
        ErrorKind::NotFound => "no socket at that path; is the server running?".to_string(),
        ErrorKind::ConnectionRefused => {
            "connection refused: nothing is listening on that socket; is the server running?".to_string()
        }
        _ => e.to_string(),
    };
    Status::unavailable(format!("failed to connect to {addr}: {why}"))
}

/// Connects to a socket in Linux's abstract namespace: Tokio reads a path
/// that starts with a NUL byte as an abstract name.
#[cfg(any(target_os = "linux", target_os = "android"))]
async fn connect_abstract(name: &[u8]) -> std::io::Result<tokio::net::UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let mut path = Vec::with_capacity(name.len() + 1);
    path.push(0);
    path.extend_from_slice(name);
    tokio::net::UnixStream::connect(std::ffi::OsStr::from_bytes(&path)).await
}

/// Abstract Unix sockets are Linux's alone.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
async fn connect_abstract(_name: &[u8]) -> std::io::Result<tokio::net::UnixStream> {
    Err(std::io::Error::new(
        ErrorKind::Unsupported,
        "abstract Unix sockets exist only on Linux",
    ))
}

/// Resolves `host` with the system's resolver and connects to the first of
/// its addresses that accepts, saying which step failed.
async fn dial_host(host: &str, port: u16) -> Result<tokio::net::TcpStream, Status> {
    let to = format!("{host}:{port}");
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| {
            Status::unavailable(format!(
                "failed to connect to {to}: cannot resolve the host name {host:?} ({e}); check the name"
            ))
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Status::unavailable(format!(
            "failed to connect to {to}: the host name {host:?} resolves to no address"
        )));
    }
    tokio::net::TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| tcp_failure(&to, e))
}

/// Runs the TLS handshake first when the channel uses TLS, and insists on
/// ALPN `h2`.
#[cfg(feature = "tls")]
async fn secure_then_handshake<IO>(
    io: IO,
    addr: &Address,
    opts: &ConnectOptions,
    phase: &AtomicU8,
    mut info: SocketInfo,
) -> Result<Connection, Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(tls) = &opts.tls else {
        phase.store(AWAITING_SERVER, Ordering::Relaxed);
        return handshake(io, addr, opts, info).await;
    };
    phase.store(SECURING, Ordering::Relaxed);
    let (io, raw) = Sniff::new(io);
    let stream = match tls.connector.connect(tls.server_name.clone(), io).await {
        Ok(stream) => stream,
        Err(e) => return Err(tls_failure(addr, &e, &raw.seen())),
    };
    if !crate::credentials::negotiated_h2(stream.get_ref().1.alpn_protocol()) {
        return Err(Status::unavailable(format!(
            "{} did not agree to HTTP/2 over TLS (ALPN h2), which gRPC requires",
            addr
        )));
    }
    info.tls = Some(crate::credentials::tls_info(stream.get_ref().1, &tls.certificate));
    phase.store(AWAITING_SERVER, Ordering::Relaxed);
    handshake(stream, addr, opts, info).await
}

/// Without TLS support, every channel is plaintext.
#[cfg(not(feature = "tls"))]
async fn secure_then_handshake<IO>(
    io: IO,
    addr: &Address,
    opts: &ConnectOptions,
    phase: &AtomicU8,
    info: SocketInfo,
) -> Result<Connection, Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    phase.store(AWAITING_SERVER, Ordering::Relaxed);
    handshake(io, addr, opts, info).await
}

/// Says why a TLS handshake failed: a server that answered with something
/// other than TLS does not speak it.
#[cfg(feature = "tls")]
fn tls_failure(addr: &Address, err: &std::io::Error, seen: &Sniffed) -> Status {
    let answer = seen.bytes();
    let plaintext = "use an http:// target for a plaintext server";
    let why = if answer.is_empty() && seen.ended {
        format!("the server closed the connection without answering; it may not speak TLS ({plaintext})")
    } else if !answer.is_empty() && !looks_like_tls(answer) {
        format!(
            "the server does not speak TLS: it answered with {}; {plaintext}",
            describe(answer)
        )
    } else {
        err.to_string()
    };
    Status::unavailable(format!("TLS handshake with {} failed: {why}", addr))
}

/// A TLS record header: content type 20 to 23, then major version 3.
fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x14..=0x17, 0x03, ..] | [0x14..=0x17])
}

/// What a server's first bytes are, in words.
fn describe(bytes: &[u8]) -> String {
    if bytes.starts_with(b"HTTP/1.") {
        "HTTP/1.x".to_string()
    } else if looks_like_tls(bytes) {
        "TLS".to_string()
    } else if bytes.len() >= 4 && bytes[3] == SETTINGS_FRAME {
        "HTTP/2".to_string()
    } else {
        format!("the bytes {bytes:02x?}")
    }
}

/// The type of HTTP/2's SETTINGS frame, which a server sends first.
const SETTINGS_FRAME: u8 = 0x04;

/// Checks a server's first bytes: an HTTP/2 server begins with a SETTINGS
/// frame. Anything else gets a status saying what answered instead.
fn check_answer(addr: &Address, seen: &Sniffed) -> Result<(), Status> {
    let bytes = seen.bytes();
    if bytes.len() >= 4 && bytes[3] == SETTINGS_FRAME {
        return Ok(());
    }
    let message = if bytes.is_empty() {
        format!(
            "{addr} closed the connection before the HTTP/2 handshake: it may expect TLS \
             (use an https:// target or TLS settings), or not be a gRPC server"
        )
    } else if looks_like_tls(bytes) {
        format!(
            "{addr} answered with TLS: the server uses TLS, so use an https:// target or TLS settings \
             (ChannelBuilder::tls)"
        )
    } else if bytes.starts_with(b"HTTP/1.") {
        format!("{addr} answered with HTTP/1.x, not HTTP/2: is it a gRPC server?")
    } else {
        format!(
            "{addr} did not answer with HTTP/2: its first bytes were {}; is it a gRPC server?",
            describe(bytes)
        )
    };
    Err(Status::unavailable(message))
}

/// The first bytes a peer sent, kept to explain a connection that fails.
#[derive(Clone, Copy, Default)]
struct Sniffed {
    bytes: [u8; 9],
    len: usize,
    /// The peer closed the connection, or reading failed, first.
    ended: bool,
}

impl Sniffed {
    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Where a [`Sniff`] leaves what it saw.
#[derive(Default)]
struct Probe {
    seen: Mutex<Sniffed>,
    done: tokio::sync::Notify,
}

/// The observing side of a [`Sniff`].
struct Sniffer(Arc<Probe>);

impl Sniffer {
    fn seen(&self) -> Sniffed {
        *self.0.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the peer has sent a frame header's worth of bytes, or
    /// closed the connection.
    async fn answer(&self) -> Sniffed {
        self.0.done.notified().await;
        self.seen()
    }
}

/// A socket that keeps copies of the first bytes read from it, then gets
/// out of the way: once they are seen, a read costs one branch more.
struct Sniff<IO> {
    io: IO,
    probe: Option<Arc<Probe>>,
}

impl<IO> Sniff<IO> {
    fn new(io: IO) -> (Sniff<IO>, Sniffer) {
        let probe = Arc::new(Probe::default());
        (
            Sniff {
                io,
                probe: Some(probe.clone()),
            },
            Sniffer(probe),
        )
    }

    fn observe(&mut self, read: Option<&[u8]>) {
        let Some(probe) = &self.probe else { return };
        let mut seen = probe.seen.lock().unwrap_or_else(|e| e.into_inner());
        match read {
            Some(new) if !new.is_empty() => {
                let take = new.len().min(seen.bytes.len() - seen.len);
                let at = seen.len;
                seen.bytes[at..at + take].copy_from_slice(&new[..take]);
                seen.len += take;
            }
            _ => seen.ended = true,
        }
        if seen.ended || seen.len == seen.bytes.len() {
            drop(seen);
            probe.done.notify_one();
            self.probe = None;
        }
    }
}

impl<IO> Drop for Sniff<IO> {
    fn drop(&mut self) {
        // A connection that ends before the peer said anything.
        self.observe(None);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniff<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if self.probe.is_some() {
            match &result {
                // A read into no room says nothing, not even end of stream.
                Poll::Ready(Ok(())) if room == 0 => {}
                Poll::Ready(Ok(())) => {
                    let filled = buf.filled();
                    let new = &filled[before..];
                    self.observe(Some(new));
                }
                Poll::Ready(Err(_)) => self.observe(None),
                Poll::Pending => {}
            }
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Sniff<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The HTTP/2 handshake: sends the preface, then waits for the server to
/// answer with its SETTINGS, so that a connection to something that is not
/// an HTTP/2 server fails here with what answered instead.
async fn handshake<IO>(io: IO, addr: &Address, opts: &ConnectOptions, info: SocketInfo) -> Result<Connection, Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (io, sniffer) = Sniff::new(io);
    let mut config = Config::new(Role::Client, opts.http2.clone());
    // Registered for as long as the driver's task runs.
    let socket = SocketEntry::register(info, config.stats.clone(), None);
    let channelz = Arc::downgrade(&socket);
    if let Some(state) = &opts.keepalive {
        let time = state.clone();
        config.keepalive = Some(Keepalive {
            time: Arc::new(move || time.time()),
            timeout: state.params.timeout,
            permit_without_calls: state.params.permit_without_calls,
        });
    }
    let (mut driver, opener) = conn::new(io, config);
    // The server's SETTINGS must have arrived before the connection takes
    // calls: until then its limit on streams is unknown.
    let (greeted_tx, greeted) = tokio::sync::oneshot::channel::<()>();
    driver.on_greeted(greeted_tx);
    let liveness = Arc::new(Liveness::default());
    let flag = liveness.clone();
    let keepalive_state = opts.keepalive.clone();
    let peer = addr.to_string();
    tokio::spawn(async move {
        let _socket = socket;
        loop {
            match std::future::poll_fn(|cx| driver.poll(cx)).await {
                Event::Ended => break,
                // A client accepts no streams.
                Event::Accepted => driver.accepted().for_each(drop),
            }
        }
        let ended = driver.ended();
        if let Some(why) = &ended.error {
            tracing::info!("client connection to {peer} ended: {why}");
        }
        if let Some((ErrorCode::EnhanceYourCalm, debug)) = &ended.goaway
            && &debug[..] == TOO_MANY_PINGS
            && let Some(state) = &keepalive_state
        {
            tracing::info!("{peer} said this client PINGs too often (GOAWAY too_many_pings): keepalive time doubled");
            state.too_many_pings();
        }
        flag.end();
    });
    check_answer(addr, &sniffer.answer().await)?;
    if greeted.await.is_err() {
        return Err(Status::unavailable(format!(
            "{} closed the connection before its HTTP/2 SETTINGS arrived whole",
            addr
        )));
    }
    let streams = opts
        .max_concurrent_streams
        .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1) as usize)));
    Ok(Connection {
        send: opener,
        liveness,
        streams,
        channelz,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn seen(bytes: &[u8], ended: bool) -> Sniffed {
        let mut s = Sniffed {
            ended,
            ..Sniffed::default()
        };
        s.bytes[..bytes.len()].copy_from_slice(bytes);
        s.len = bytes.len();
        s
    }

    #[test]
    fn first_bytes_name_what_answered() {
        let addr = Address::host("h", 1);
        let settings = [0, 0, 6, 4, 0, 0, 0, 0, 0];
        assert!(check_answer(&addr, &seen(&settings, false)).is_ok());
        let tls = check_answer(&addr, &seen(&[0x15, 0x03, 0x03, 0, 2, 2, 50], true)).unwrap_err();
        assert!(tls.message().contains("answered with TLS"), "{tls}");
        let http1 = check_answer(&addr, &seen(b"HTTP/1.1 ", false)).unwrap_err();
        assert!(http1.message().contains("HTTP/1.x"), "{http1}");
        let closed = check_answer(&addr, &seen(b"", true)).unwrap_err();
        assert!(closed.message().contains("closed the connection before"), "{closed}");
        let other = check_answer(&addr, &seen(b"SSH-2.0-x", false)).unwrap_err();
        assert!(other.message().contains("did not answer with HTTP/2"), "{other}");
    }

    #[tokio::test]
    async fn the_probe_keeps_the_first_bytes_and_a_read_into_no_room_is_not_the_end() {
        let (client, mut server) = tokio::io::duplex(64);
        let (mut sniff, sniffer) = Sniff::new(client);
        let mut empty = [0u8; 0];
        let mut buf = ReadBuf::new(&mut empty);
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut sniff).poll_read(cx, &mut buf))).await;
        assert!(matches!(polled, Poll::Ready(Ok(()))));
        assert!(!sniffer.seen().ended);
        server.write_all(b"HTTP/1.1 400 Bad Request\r\n").await.unwrap();
        let mut got = [0u8; 4];
        sniff.read_exact(&mut got).await.unwrap();
        let mut rest = [0u8; 8];
        sniff.read_exact(&mut rest).await.unwrap();
        let seen = sniffer.answer().await;
        assert_eq!(seen.bytes(), b"HTTP/1.1 ");
        assert!(!seen.ended);
    }
}
