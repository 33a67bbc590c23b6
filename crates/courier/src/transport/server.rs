//! The server side of an HTTP/2 connection: the handshake, accepting
//! streams in batches, starting their calls, and graceful shutdown with
//! GOAWAY.

use std::future::{Future, poll_fn};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::Http2Settings;
use super::budget::RecvBudget;
use super::engine::conn::{self, Config, Event, Keepalive, Role};
use super::head::RequestHead;
use super::inline::{Batch, InlinePolicy};
use super::keepalive::StreamCounter;
use super::stream::{CallOutcome, Reason, RecvStream, Respond};
use crate::keepalive::ServerParameters;

/// One accepted stream: the request head and body, and the responder.
pub(crate) type Accepted = (RequestHead, RecvStream, Respond);

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
    stats: Arc<crate::channelz::socket::SocketStats>,
    server: &Arc<crate::channelz::server::ServerEntry>,
    mut start_call: F,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Accepted) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut config = Config::new(Role::Server, settings.clone());
    let (time, timeout) = (keepalive.time, keepalive.timeout);
    config.keepalive = Some(Keepalive {
        time: Arc::new(move || time),
        timeout,
        // A server PINGs idle connections too: it is their only check.
        permit_without_calls: true,
    });
    config.ping_policy = Some(keepalive.enforcement.policy());
    config.stats = stats.clone();
    // The opener is never used to open streams; it keeps the command queue
    // open for the streams the client opens.
    let (mut conn, _opener) = conn::new(io, config);
    // Until the peer's SETTINGS have arrived, the handshake deadline stands.
    let mut greeting = handshake_deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
    let mut draining = *shutdown.borrow();
    if draining {
        conn.shutdown(b"");
    }
    let lifetime = Lifetime::new(keepalive);
    let mut age = lifetime.age.map(|at| Box::pin(tokio::time::sleep_until(at)));
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut idle = keepalive
        .max_connection_idle
        .map(|idle| Box::pin(tokio::time::sleep(idle)));
    let mut policy = InlinePolicy::default();
    loop {
        tokio::select! {
            event = poll_fn(|cx| conn.poll(cx)) => {
                if let Event::Ended = event {
                    if let Some(why) = conn.ended().error {
                        tracing::debug!("HTTP/2 connection ended: {why}");
                    }
                    break;
                }
                let mut first_polls = Batch::new();
                // The streams of a batch arrived in the driver's last turn,
                // whose time channelz has just stored.
                let arrived = stats.last_remote_stream();
                for (request, body, respond) in conn.accepted() {
                    if budget.exhausted() {
                        let mut respond = Respond::new(respond, lifetime.streams.as_ref(), CallOutcome::NONE);
                        tracing::debug!(
                            "refusing a stream: the connection holds {} bytes of unfinished messages, all its budget",
                            budget.used()
                        );
                        respond.reset(Reason::RefusedStream);
                        continue;
                    }
                    // A stream refused above never became a call; this one is.
                    let respond = Respond::new(respond, lifetime.streams.as_ref(), CallOutcome::started(server, arrived));
                    let how = policy.choose(&request.path);
                    if let Some(call) = start_call((request, RecvStream(body), respond)) {
                        first_polls.start(how, call);
                    }
                }
            }
            _ = async { greeting.as_mut().expect("guarded").await }, if greeting.is_some() => {
                if conn.greeted() {
                    greeting = None;
                } else {
                    tracing::debug!("closing a connection that sent no HTTP/2 preface and SETTINGS in time");
                    return;
                }
            }
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.shutdown(b"");
                }
            }
            _ = async { age.as_mut().expect("guarded").await }, if age.is_some() && !draining => {
                tracing::debug!("closing a connection at its max_connection_age (GOAWAY)");
                draining = true;
                age = None;
                conn.shutdown(b"max_age");
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
                        conn.shutdown(b"max_idle");
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
        if greeting.is_some() && conn.greeted() {
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
