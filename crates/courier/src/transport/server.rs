//! The server side of an HTTP/2 connection: the handshake, accepting
//! streams in batches, starting their calls, and graceful shutdown with
//! GOAWAY.

use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::Http2Settings;

/// One accepted stream: the request head and body, and the responder.
pub(crate) type Accepted = (http::Request<h2::RecvStream>, h2::server::SendResponse<Bytes>);

/// At most this many streams are accepted before their calls are started,
/// so one busy connection cannot hold its task for long.
const MAX_BATCH: usize = 64;

/// Serves one connection until the peer closes it, an error occurs, or
/// shutdown is signalled and every stream has finished.
///
/// `start_call` turns each new stream into its call's future (or `None` when
/// it answered the stream itself). Streams are taken in batches: every stream
/// whose frames arrived in one read is accepted first, then each call is
/// polled once, right here. A call that finishes in that first poll (a unary
/// call with a quick handler) costs no task and no hop between tasks, and the
/// responses of the whole batch leave together, in one write, when the
/// connection is next polled. A call that is not finished is spawned as a
/// task of its own, so slow calls run in parallel as before.
pub(crate) async fn serve_connection<IO, F, Fut>(
    io: IO,
    settings: &Http2Settings,
    mut shutdown: watch::Receiver<bool>,
    mut start_call: F,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Accepted) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(settings.initial_stream_window)
        .initial_connection_window_size(settings.initial_connection_window)
        .max_frame_size(settings.max_frame_size)
        .max_header_list_size(settings.max_header_list_size)
        .max_send_buffer_size(settings.max_send_buffer);
    if let Some(n) = settings.max_concurrent_streams {
        builder.max_concurrent_streams(n);
    }
    let (io, flusher) = super::io::buffered(io);
    let mut conn = match super::io::flushed(&flusher, builder.handshake::<_, Bytes>(io)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("HTTP/2 handshake failed: {e}");
            return;
        }
    };
    let mut draining = *shutdown.borrow();
    if draining {
        conn.graceful_shutdown();
    }
    let mut batch: Vec<Accepted> = Vec::new();
    loop {
        tokio::select! {
            open = poll_fn(|cx| {
                let polled = poll_batch(&mut conn, &mut batch, cx);
                if polled.is_pending() {
                    // What h2 wrote while accepting (the responses of calls
                    // that finished, window updates) leaves in one write.
                    let _ = flusher.poll_flush(cx);
                }
                polled
            }) => {
                if !open {
                    break;
                }
                for stream in batch.drain(..) {
                    if let Some(call) = start_call(stream) {
                        start(call);
                    }
                }
            }
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.graceful_shutdown();
                }
            }
        }
    }
}

/// Accepts every stream that is ready, up to [`MAX_BATCH`]. Ready(true) when
/// there is a batch, Ready(false) when the connection has ended.
fn poll_batch<IO>(
    conn: &mut h2::server::Connection<IO, Bytes>,
    batch: &mut Vec<Accepted>,
    cx: &mut Context<'_>,
) -> Poll<bool>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    while batch.len() < MAX_BATCH {
        match conn.poll_accept(cx) {
            Poll::Ready(Some(Ok(stream))) => batch.push(stream),
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!("HTTP/2 connection ended: {e}");
                return Poll::Ready(false);
            }
            Poll::Ready(None) => return Poll::Ready(false),
            Poll::Pending => break,
        }
    }
    if batch.is_empty() {
        Poll::Pending
    } else {
        Poll::Ready(true)
    }
}

/// Polls a call once on the connection's task and spawns it if it is not
/// finished. The first poll uses a waker that does nothing: the spawned task
/// is polled again at once, which registers its own.
///
/// A handler that panics in that first poll takes only its own call down, as
/// it would in a task of its own: the call is dropped, which resets its
/// stream, and the connection goes on.
fn start<Fut>(call: Fut)
where
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut call = Box::pin(call);
    let mut cx = Context::from_waker(Waker::noop());
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| Pin::as_mut(&mut call).poll(&mut cx)));
    match polled {
        Ok(Poll::Ready(())) => {}
        Ok(Poll::Pending) => {
            tokio::spawn(call);
        }
        Err(_) => tracing::error!("a call's handler panicked; its stream is reset"),
    }
}
