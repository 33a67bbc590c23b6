//! The server side of an HTTP/2 connection: the handshake, accepting
//! streams in batches, starting their calls, and graceful shutdown with
//! GOAWAY.

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::Http2Settings;
use super::budget::RecvBudget;
use super::inline::{Batch, InlinePolicy};
use super::keepalive::StreamCounter;
use super::stream::{Reason, RecvStream, Respond};
use crate::keepalive::ServerParameters;

/// One accepted stream: the request head and body, and the responder.
pub(crate) type Accepted = (http::Request<RecvStream>, Respond);

/// At most this many streams are accepted before their calls are started,
/// so one busy connection cannot hold its task for long.
const MAX_BATCH: usize = 64;

/// Serves one connection until the peer closes it, an error occurs, or
/// shutdown is signalled and every stream has finished.
///
/// `start_call` turns each new stream into its call's future (or `None` when
/// it answered the stream itself). Streams are taken in batches: every stream
/// whose frames arrived in one read is accepted first, then each call is
/// started. A call to a method known to be quick is polled once right here
/// ([`super::inline`]): if it finishes in that poll (a unary call with a
/// quick handler) it costs no task and no hop between tasks, and the
/// responses of the whole batch leave together, in one write, when the
/// connection is next polled. Other calls get a task of their own.
///
/// While the connection holds all of its receive `budget`, new streams are
/// refused with REFUSED_STREAM. A connection whose peer has not sent the
/// HTTP/2 preface and its first SETTINGS by `handshake_deadline` is closed.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_connection<IO, F, Fut>(
    io: IO,
    settings: &Http2Settings,
    keepalive: &ServerParameters,
    budget: &RecvBudget,
    handshake_deadline: Option<tokio::time::Instant>,
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
    flusher.watch_greeting(PREFACE_LEN);
    let handshake = super::io::flushed(&flusher, builder.handshake::<_, Bytes>(io));
    let handshake = match handshake_deadline {
        Some(deadline) => match tokio::time::timeout_at(deadline, handshake).await {
            Ok(done) => done,
            Err(_) => {
                tracing::debug!("closing a connection that sent no HTTP/2 preface in time");
                return;
            }
        },
        None => handshake.await,
    };
    let mut conn = match handshake {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("HTTP/2 handshake failed: {e}");
            return;
        }
    };
    // Until the peer's SETTINGS have arrived, the handshake deadline stands.
    let mut greeting = handshake_deadline
        .filter(|_| !flusher.greeted())
        .map(|d| Box::pin(tokio::time::sleep_until(d)));
    let mut draining = *shutdown.borrow();
    if draining {
        conn.graceful_shutdown();
    }
    let lifetime = Lifetime::new(keepalive);
    let ping_pong = conn.ping_pong();
    let (time, timeout) = (keepalive.time, keepalive.timeout);
    let activity = flusher.activity();
    let mut watching = std::pin::pin!(async move {
        match ping_pong {
            Some(ping_pong) => super::keepalive::watch(ping_pong, activity, || time, timeout, || true).await,
            None => std::future::pending().await,
        }
    });
    let mut age = lifetime.age.map(|at| Box::pin(tokio::time::sleep_until(at)));
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut idle = keepalive
        .max_connection_idle
        .map(|idle| Box::pin(tokio::time::sleep(idle)));
    let mut policy = InlinePolicy::default();
    let mut batch: Vec<Accepted> = Vec::new();
    loop {
        tokio::select! {
            open = poll_fn(|cx| {
                let polled = poll_batch(&mut conn, &mut batch, lifetime.streams.as_ref(), cx);
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
                let mut first_polls = Batch::new();
                for (request, mut respond) in batch.drain(..) {
                    if budget.exhausted() {
                        tracing::debug!(
                            "refusing a stream: the connection holds {} bytes of unfinished messages, all its budget",
                            budget.used()
                        );
                        respond.reset(Reason::RefusedStream);
                        continue;
                    }
                    let how = policy.choose(request.uri().path());
                    if let Some(call) = start_call((request, respond)) {
                        first_polls.start(how, call);
                    }
                }
            }
            _ = async { greeting.as_mut().expect("guarded").await }, if greeting.is_some() => {
                if flusher.greeted() {
                    greeting = None;
                } else {
                    tracing::debug!("closing a connection that sent no HTTP/2 SETTINGS in time");
                    return;
                }
            }
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.graceful_shutdown();
                }
            }
            unanswered = &mut watching => {
                if let Some(timeout) = unanswered.0 {
                    tracing::debug!("closing a connection whose client left a keepalive PING unanswered for {timeout:?}");
                }
                return;
            }
            _ = async { age.as_mut().expect("guarded").await }, if age.is_some() && !draining => {
                tracing::debug!("closing a connection at its max_connection_age (GOAWAY)");
                draining = true;
                age = None;
                conn.graceful_shutdown();
                grace = keepalive.max_connection_age_grace.map(|g| Box::pin(tokio::time::sleep(g)));
            }
            _ = async { grace.as_mut().expect("guarded").await }, if grace.is_some() => {
                tracing::debug!("closing a connection whose calls outlived its max_connection_age_grace");
                return;
            }
            _ = async { idle.as_mut().expect("guarded").await }, if idle.is_some() && !draining => {
                let max_idle = keepalive.max_connection_idle.expect("set with idle");
                let since = lifetime.streams.as_ref().and_then(|s| s.idle_since());
                match since {
                    Some(since) if since.elapsed() >= max_idle => {
                        tracing::debug!("closing a connection idle for its max_connection_idle (GOAWAY)");
                        draining = true;
                        idle = None;
                        conn.graceful_shutdown();
                    }
                    _ => {
                        let from = since.unwrap_or_else(std::time::Instant::now);
                        if let Some(sleep) = idle.as_mut() {
                            sleep.as_mut().reset(tokio::time::Instant::from_std(from) + max_idle);
                        }
                    }
                }
            }
        }
        if greeting.is_some() && flusher.greeted() {
            greeting = None;
        }
    }
}

/// What bounds a connection's life (gRFC A9): when it reaches its maximum
/// age, and the count of its streams that tells when it went idle.
struct Lifetime {
    age: Option<tokio::time::Instant>,
    streams: Option<Arc<StreamCounter>>,
}

impl Lifetime {
    fn new(keepalive: &ServerParameters) -> Lifetime {
        // ±10%, so that connections made together do not all end together.
        let age = keepalive.max_connection_age.and_then(|age| {
            let jitter = 0.9 + 0.2 * crate::client::backoff::random_unit();
            tokio::time::Instant::now().checked_add(age.mul_f64(jitter))
        });
        Lifetime {
            age,
            streams: keepalive.max_connection_idle.map(|_| StreamCounter::new()),
        }
    }
}

/// The length of the HTTP/2 client connection preface.
const PREFACE_LEN: usize = 24;

/// Accepts every stream that is ready, up to [`MAX_BATCH`]. Ready(true) when
/// there is a batch, Ready(false) when the connection has ended.
fn poll_batch<IO>(
    conn: &mut h2::server::Connection<IO, Bytes>,
    batch: &mut Vec<Accepted>,
    streams: Option<&Arc<StreamCounter>>,
    cx: &mut Context<'_>,
) -> Poll<bool>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    while batch.len() < MAX_BATCH {
        match conn.poll_accept(cx) {
            Poll::Ready(Some(Ok((request, respond)))) => {
                batch.push((request.map(RecvStream), Respond::new(respond, streams)));
            }
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
