//! Stats handlers: hooks that see how every call and attempt ends, for
//! metrics, tracing and logs of one's own. Where an
//! [interceptor](crate::interceptor) sees a call's head before it runs, and
//! may change or refuse it, a [`StatsHandler`] only watches, from start to
//! finish: when the call starts (with its request metadata), when each
//! attempt of a client call starts and ends (retries and hedges are
//! attempts), and how the call ended: its status, response headers and
//! trailers, how many messages and bytes went each way, and when. This is the
//! role of grpc-go's `stats.Handler` and of gRPC's `CallTracer`
//! (gRFC A66). Courier's OpenTelemetry support is built on it.
//!
//! A handler is installed with [`ChannelBuilder::stats_handler`] or
//! [`Server::stats_handler`]; several may be. For each call a handler
//! returns a [`CallStats`] that follows that call, or `None` to skip it. A
//! channel or server without handlers does none of this work.
//!
//! [`ChannelBuilder::stats_handler`]: crate::client::ChannelBuilder::stats_handler
//! [`Server::stats_handler`]: crate::server::Server::stats_handler
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use courier::stats::{CallEnd, CallInfo, CallStats, StatsHandler};
//! use courier::Metadata;
//!
//! /// Counts the calls that failed.
//! #[derive(Clone, Default)]
//! struct Failures(Arc<AtomicU64>);
//!
//! impl StatsHandler for Failures {
//!     fn call_started(&self, _call: &CallInfo, _metadata: &mut Metadata) -> Option<Box<dyn CallStats>> {
//!         Some(Box::new(self.clone()))
//!     }
//! }
//!
//! impl CallStats for Failures {
//!     fn call_ended(&self, call: &CallInfo, end: &CallEnd<'_>) {
//!         if end.status().code() != courier::Code::Ok {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!         let _took = end.since(call.started());
//!     }
//! }
//!
//! let failures = Failures::default();
//! let server = courier::Server::builder().stats_handler(failures.clone());
//! let channel = courier::Channel::builder("localhost:50051").stats_handler(failures);
//! # drop((server, channel));
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::metadata::Metadata;
use crate::status::{Code, Status};

/// Which end of a call a handler is watching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A call this process makes, on a channel.
    Client,
    /// A call this process serves.
    Server,
}

/// What is known of a call when it starts, and stays true until it ends.
#[derive(Clone, Debug)]
pub struct CallInfo {
    pub(crate) side: Side,
    pub(crate) path: http::uri::PathAndQuery,
    pub(crate) registered: bool,
    pub(crate) target: Option<Arc<str>>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) started: Instant,
}

impl CallInfo {
    /// Client or server.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The full method path, e.g. `/helloworld.Greeter/SayHello`.
    pub fn path(&self) -> &str {
        self.path.path()
    }

    /// The method's full name without the leading slash, e.g.
    /// `helloworld.Greeter/SayHello`: OpenTelemetry's `grpc.method`.
    pub fn full_method(&self) -> &str {
        let path = self.path.path();
        path.strip_prefix('/').unwrap_or(path)
    }

    /// Whether the method is known in advance: on a client, called through
    /// code generated from a `.proto` file (a [`MethodPath`] made from a
    /// `&'static str`), not a path built at run time; on a server, one of its
    /// services' methods. Metrics record other methods as `"other"`
    /// (gRFC A66), so that a peer cannot grow their number of series.
    ///
    /// [`MethodPath`]: crate::client::MethodPath
    pub fn is_registered(&self) -> bool {
        self.registered
    }

    /// Client: the channel's target, e.g. `dns:///example.com:443`.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// Server: the client's address, when known.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// When the call started: on a client, when the application made it; on
    /// a server, when its request headers had been read.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// One attempt of a client call: the first, a retry, a hedge, or a
/// transparent retry of a stream the server refused unprocessed.
#[derive(Clone, Copy, Debug)]
pub struct AttemptInfo {
    pub(crate) previous: u32,
    pub(crate) transparent: bool,
    pub(crate) started: Instant,
}

impl AttemptInfo {
    /// How many attempts of the call came before this one, as sent in
    /// `grpc-previous-rpc-attempts`.
    pub fn previous_attempts(&self) -> u32 {
        self.previous
    }

    /// Whether this attempt resends a stream the server refused before its
    /// application saw it, which does not count against the retry policy.
    pub fn is_transparent_retry(&self) -> bool {
        self.transparent
    }

    /// When the attempt started, before its connection was picked.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// Messages that went one way during a call or an attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageTotals {
    /// How many messages.
    pub messages: u64,
    /// Their bytes as sent on the wire, compressed if they were, without the
    /// five-byte gRPC prefix of each, HTTP/2 framing or TLS.
    pub bytes: u64,
}

/// How a call or an attempt ended.
#[derive(Debug)]
pub struct CallEnd<'a> {
    pub(crate) status: &'a Status,
    pub(crate) headers: Option<&'a Metadata>,
    pub(crate) sent: MessageTotals,
    pub(crate) received: MessageTotals,
    pub(crate) ended: Instant,
}

impl CallEnd<'_> {
    /// The status the call ended with; its metadata is the trailers.
    pub fn status(&self) -> &Status {
        self.status
    }

    /// The response headers, when there were any: received, on a client;
    /// sent, on a server.
    pub fn headers(&self) -> Option<&Metadata> {
        self.headers
    }

    /// The trailing metadata.
    pub fn trailers(&self) -> &Metadata {
        self.status.metadata()
    }

    /// The messages this side sent.
    pub fn sent(&self) -> MessageTotals {
        self.sent
    }

    /// The messages this side received.
    pub fn received(&self) -> MessageTotals {
        self.received
    }

    /// When the call or attempt ended.
    pub fn ended(&self) -> Instant {
        self.ended
    }

    /// How long it took, from `started` (a [`CallInfo`]'s or an
    /// [`AttemptInfo`]'s).
    pub fn since(&self, started: Instant) -> Duration {
        self.ended.saturating_duration_since(started)
    }
}

/// Installed on a channel or a server: picks the calls to follow.
pub trait StatsHandler: Send + Sync + 'static {
    /// A call starts: on a client before its interceptors run and its
    /// request is encoded, on a server once its request headers are read
    /// and it is routed. `metadata` is the request's metadata; a client's
    /// handler may add to it (trace context, say). Returns what follows the
    /// call, or `None` to leave it.
    fn call_started(&self, call: &CallInfo, metadata: &mut Metadata) -> Option<Box<dyn CallStats>>;
}

/// Follows one call. Attempts of a hedged call run at once, so the methods
/// take `&self`.
pub trait CallStats: Send + Sync + 'static {
    /// Client: an attempt starts.
    fn attempt_started(&self, call: &CallInfo, attempt: &AttemptInfo) {
        let _ = (call, attempt);
    }

    /// Client: an attempt ended. The attempt the call went on with ends
    /// with the call, just before [`CallStats::call_ended`].
    fn attempt_ended(&self, call: &CallInfo, attempt: &AttemptInfo, end: &CallEnd<'_>) {
        let _ = (call, attempt, end);
    }

    /// The call ended: its status was received (client) or sent (server),
    /// or it was cancelled.
    fn call_ended(&self, call: &CallInfo, end: &CallEnd<'_>);

    /// Server: runs `poll`, one poll of the call's handler, in whatever
    /// context the handler should see (an OpenTelemetry context, for
    /// example, so that calls it makes continue the caller's trace). The
    /// default just runs it.
    fn in_scope(&self, poll: &mut dyn FnMut()) {
        poll()
    }
}

/// The stats handlers of a channel or a server; empty costs a branch.
#[derive(Clone, Default)]
pub(crate) struct StatsHandlers(Vec<Arc<dyn StatsHandler>>);

impl StatsHandlers {
    pub(crate) fn push(&mut self, handler: impl StatsHandler) {
        self.0.push(Arc::new(handler));
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Messages counted one way as they are encoded or decoded, readable from
/// the task that ends the call.
#[derive(Default, Debug)]
struct Totals {
    messages: AtomicU64,
    bytes: AtomicU64,
}

impl Totals {
    fn add(&self, len: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    fn totals(&self) -> MessageTotals {
        MessageTotals {
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// A call's tracing span and, when handlers follow it, their state: one
/// pointer, null (and free) for a call that no subscriber and no handler
/// wants. Clones share the state; the call ends once, at the first
/// [`CallTrace::end`], or as abandoned when the last clone is dropped.
#[derive(Clone, Default)]
pub(crate) struct CallTrace(Option<Arc<Traces>>);

/// Where the framing layer counts a followed call's messages: the call's
/// own state, so counting allocates nothing. A writer counts what it sends
/// and a reader what it receives, so the tally needs no direction.
#[derive(Clone)]
pub(crate) struct Tally(Arc<Traces>);

impl Tally {
    /// One message of `len` bytes sent on the wire.
    pub(crate) fn sent(&self, len: usize) {
        if let Some(f) = &self.0.followed {
            f.sent.add(len);
        }
    }

    /// One message of `len` bytes received from the wire.
    pub(crate) fn received(&self, len: usize) {
        if let Some(f) = &self.0.followed {
            f.received.add(len);
        }
    }
}

/// The span of a call that has none.
static NO_SPAN: tracing::Span = tracing::Span::none();

struct Traces {
    span: tracing::Span,
    followed: Option<Followed>,
}

impl Drop for Traces {
    /// A call dropped before it ended (its future or stream was dropped)
    /// ends as CANCELLED, or DEADLINE_EXCEEDED past its deadline.
    fn drop(&mut self) {
        if let Some(f) = &self.followed
            && !f.state.lock().is_ok_and(|s| s.ended)
        {
            let status = f.abandoned("call");
            f.end(&status, None);
        }
    }
}

impl CallTrace {
    /// Starts a call's trace: `span`, and whichever of `handlers` follow
    /// the call. A call that nothing watches costs two checks.
    #[inline]
    pub(crate) fn start(
        span: tracing::Span,
        handlers: &StatsHandlers,
        info: impl FnOnce() -> CallInfo,
        metadata: &mut Metadata,
        deadline: Option<Instant>,
    ) -> CallTrace {
        if handlers.is_empty() && span.is_none() {
            return CallTrace(None);
        }
        CallTrace::start_watched(span, handlers, info, metadata, deadline)
    }

    /// [`CallTrace::start`] for a call that a subscriber or a handler may
    /// want, out of line.
    #[inline(never)]
    fn start_watched(
        span: tracing::Span,
        handlers: &StatsHandlers,
        info: impl FnOnce() -> CallInfo,
        metadata: &mut Metadata,
        deadline: Option<Instant>,
    ) -> CallTrace {
        let followed = (!handlers.is_empty())
            .then(|| {
                let info = info();
                let calls: Vec<_> = handlers
                    .0
                    .iter()
                    .filter_map(|h| h.call_started(&info, metadata))
                    .collect();
                (!calls.is_empty()).then(|| Followed {
                    info,
                    calls,
                    sent: Totals::default(),
                    received: Totals::default(),
                    deadline,
                    state: Mutex::default(),
                })
            })
            .flatten();
        if followed.is_none() && span.is_none() {
            return CallTrace(None);
        }
        CallTrace(Some(Arc::new(Traces { span, followed })))
    }

    #[inline]
    fn followed(&self) -> Option<&Followed> {
        self.0.as_ref()?.followed.as_ref()
    }

    pub(crate) fn span(&self) -> &tracing::Span {
        self.0.as_ref().map_or(&NO_SPAN, |t| &t.span)
    }

    /// The call's span, if a subscriber may want it or handlers follow the
    /// call.
    #[inline]
    pub(crate) fn watched_span(&self) -> Option<&tracing::Span> {
        self.0.as_ref().map(|t| &t.span)
    }

    /// Where the framing layer counts the call's messages, if anything
    /// follows the call.
    #[inline]
    pub(crate) fn tally(&self) -> Option<Tally> {
        let trace = self.0.as_ref().filter(|t| t.followed.is_some())?;
        Some(Tally(trace.clone()))
    }

    /// Whether handlers follow the call.
    #[inline]
    pub(crate) fn is_followed(&self) -> bool {
        self.followed().is_some()
    }

    /// The response headers, sent (server) or received (client), for the
    /// end of the call.
    #[inline]
    pub(crate) fn record_headers(&self, headers: &Metadata) {
        if let Some(f) = self.followed() {
            f.record_headers(headers);
        }
    }

    /// Client: an attempt starts; it ends when the returned guard is ended,
    /// committed, or dropped (as CANCELLED). Its span is a child of the
    /// call's; an attempt of a call without span or handlers is free.
    #[inline]
    pub(crate) fn attempt(&self, previous: u32, transparent: bool) -> AttemptTrace<'_> {
        AttemptTrace {
            call: self,
            state: self.0.as_ref().map(|t| Self::attempt_state(t, previous, transparent)),
        }
    }

    /// The state of an attempt of a call that a subscriber or a handler
    /// may want, out of line.
    #[inline(never)]
    fn attempt_state(t: &Traces, previous: u32, transparent: bool) -> Box<AttemptState> {
        let span = if t.span.is_none() {
            tracing::Span::none()
        } else {
            tracing::debug_span!(
                parent: &t.span,
                "grpc.attempt",
                rpc.grpc.previous_rpc_attempts = previous,
                rpc.grpc.transparent_retry = transparent,
                rpc.grpc.status_code = tracing::field::Empty,
            )
        };
        let info = t.followed.as_ref().map(|f| {
            let info = AttemptInfo {
                previous,
                transparent,
                started: Instant::now(),
            };
            for c in f.calls.iter() {
                c.attempt_started(&f.info, &info);
            }
            info
        });
        Box::new(AttemptState { span, info })
    }

    /// Ends the call with `status` (its metadata the trailers) and, on a
    /// client, the response headers received. Later calls do nothing.
    #[inline]
    pub(crate) fn end(&self, status: &Status, headers: Option<&Metadata>) {
        if let Some(t) = &self.0 {
            t.end(status, headers);
        }
    }

    /// Ends the call with OK, its response headers and trailers.
    #[inline]
    pub(crate) fn end_ok(&self, headers: Option<&Metadata>, trailers: &Metadata) {
        if let Some(t) = &self.0 {
            t.end_ok(headers, trailers);
        }
    }

    /// Runs `fut`, the whole of a call, in the call's span and, on a
    /// server, in each handler's scope.
    pub(crate) fn traced<F: Future>(&self, fut: F) -> Traced<F> {
        Traced {
            fut,
            trace: self.clone(),
        }
    }

    /// Runs one poll of a call in the call's span and in each handler's
    /// scope.
    #[inline]
    pub(crate) fn in_scope<T>(&self, poll: impl FnOnce() -> T) -> T {
        match &self.0 {
            None => poll(),
            Some(t) => t.in_scope(poll),
        }
    }
}

impl Traces {
    /// [`CallTrace::end`], out of line.
    #[inline(never)]
    fn end(&self, status: &Status, headers: Option<&Metadata>) {
        record_status(&self.span, status.code());
        if let Some(f) = &self.followed {
            f.end(status, headers);
        }
    }

    /// [`CallTrace::end_ok`], out of line.
    #[inline(never)]
    fn end_ok(&self, headers: Option<&Metadata>, trailers: &Metadata) {
        record_status(&self.span, Code::Ok);
        if let Some(f) = &self.followed {
            f.end(&Status::ok().with_metadata(trailers.clone()), headers);
        }
    }

    /// [`CallTrace::in_scope`] for a call with a span or handlers, out of
    /// line like the trace's other watched paths.
    #[inline(never)]
    fn in_scope<T>(&self, poll: impl FnOnce() -> T) -> T {
        let _entered = self.span.enter();
        let Some(f) = &self.followed else { return poll() };
        let mut poll = Some(poll);
        let mut out = None;
        nest(&f.calls, &mut || {
            if let Some(p) = poll.take() {
                out = Some(p());
            }
        });
        match out {
            Some(out) => out,
            // A handler that did not run the poll: run it outside.
            None => (poll.take().expect("the poll runs once"))(),
        }
    }
}

/// A call that stats handlers follow.
struct Followed {
    info: CallInfo,
    calls: Vec<Box<dyn CallStats>>,
    sent: Totals,
    received: Totals,
    /// Client: the call's deadline, to tell an attempt abandoned for it
    /// from one cancelled.
    deadline: Option<Instant>,
    state: Mutex<FollowState>,
}

impl Followed {
    /// [`CallTrace::record_headers`], out of line.
    #[inline(never)]
    fn record_headers(&self, headers: &Metadata) {
        if let Ok(mut state) = self.state.lock() {
            state.headers = Some(headers.clone());
        }
    }

    fn end(&self, status: &Status, headers: Option<&Metadata>) {
        let (committed, sent_headers) = {
            let Ok(mut state) = self.state.lock() else { return };
            if std::mem::replace(&mut state.ended, true) {
                return;
            }
            (state.committed.take(), state.headers.take())
        };
        let end = self.ending(status, headers.or(sent_headers.as_ref()));
        for c in &self.calls {
            if let Some(attempt) = &committed {
                c.attempt_ended(&self.info, attempt, &end);
            }
            c.call_ended(&self.info, &end);
        }
    }

    /// How a call or attempt ended now with `status`: the messages so far.
    fn ending<'a>(&self, status: &'a Status, headers: Option<&'a Metadata>) -> CallEnd<'a> {
        CallEnd {
            status,
            headers,
            sent: self.sent.totals(),
            received: self.received.totals(),
            ended: Instant::now(),
        }
    }

    /// The status of a call or attempt given up before it ended.
    fn abandoned(&self, what: &str) -> Status {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Status::deadline_exceeded("deadline exceeded")
        } else {
            Status::cancelled(format!("the {what} was abandoned before it ended"))
        }
    }
}

#[derive(Default)]
struct FollowState {
    /// The client attempt the call went on with.
    committed: Option<AttemptInfo>,
    /// The response headers, once known.
    headers: Option<Metadata>,
    ended: bool,
}

/// Runs `poll` inside the scope of each of `calls`, the first outermost.
fn nest(calls: &[Box<dyn CallStats>], poll: &mut dyn FnMut()) {
    match calls.split_first() {
        None => poll(),
        Some((first, rest)) => first.in_scope(&mut || nest(rest, poll)),
    }
}

/// Records the status code on a span, as OpenTelemetry's
/// `rpc.grpc.status_code`.
pub(crate) fn record_status(span: &tracing::Span, code: Code) {
    span.record("rpc.grpc.status_code", code as i64);
}

/// One client attempt, until it ends: a pointer to the call and, for a
/// call with a span or handlers, one to the attempt's own state, so that
/// the futures of attempts that nothing watches stay small.
pub(crate) struct AttemptTrace<'a> {
    call: &'a CallTrace,
    /// `None` once ended, or for a call nothing watches.
    state: Option<Box<AttemptState>>,
}

struct AttemptState {
    span: tracing::Span,
    info: Option<AttemptInfo>,
}

impl AttemptTrace<'_> {
    /// The attempt ended with `status`, and the call goes on without it
    /// (a retry may follow).
    #[inline]
    pub(crate) fn end(mut self, status: &Status) {
        if self.state.is_some() {
            self.finish(status);
        }
    }

    /// Ends an attempt that a subscriber or a handler may want.
    #[inline(never)]
    fn finish(&mut self, status: &Status) {
        let Some(state) = self.state.take() else { return };
        record_status(&state.span, status.code());
        let (Some(f), Some(info)) = (self.call.followed(), &state.info) else {
            return;
        };
        let end = f.ending(status, None);
        for c in f.calls.iter() {
            c.attempt_ended(&f.info, info, &end);
        }
    }

    /// The call goes on with this attempt: it ends with the call.
    #[inline]
    pub(crate) fn commit(mut self) {
        if let Some(state) = self.state.take() {
            self.commit_watched(state.info);
        }
    }

    /// Commits an attempt that a subscriber or a handler may want.
    #[inline(never)]
    fn commit_watched(&self, info: Option<AttemptInfo>) {
        if let (Some(f), Some(info)) = (self.call.followed(), info)
            && let Ok(mut s) = f.state.lock()
        {
            s.committed = Some(info);
        }
    }
}

impl Drop for AttemptTrace<'_> {
    /// An attempt dropped before it ended (a hedge that lost, a call
    /// cancelled or past its deadline) ends as CANCELLED.
    #[inline]
    fn drop(&mut self) {
        if self.state.is_some() {
            let status = match self.call.followed() {
                Some(f) => f.abandoned("attempt"),
                None => Status::cancelled("the attempt was abandoned before it ended"),
            };
            self.finish(&status);
        }
    }
}

pin_project_lite::pin_project! {
    /// A call's future, polled in its span and its handlers' scopes.
    pub(crate) struct Traced<F> {
        #[pin]
        fut: F,
        trace: CallTrace,
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut fut = this.fut;
        this.trace.in_scope(|| fut.as_mut().poll(cx))
    }
}

/// A client call's span, after OpenTelemetry's RPC conventions. Disabled,
/// as it is without a subscriber that wants it, it costs a load and a
/// branch, and none of its fields is computed.
pub(crate) fn client_span(path: &str, host: &str, port: u16) -> tracing::Span {
    tracing::info_span!(
        "grpc.client",
        otel.name = path.strip_prefix('/').unwrap_or(path),
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = crate::interceptor::split_path(path).0,
        rpc.method = crate::interceptor::split_path(path).1,
        server.address = host,
        server.port = port,
        rpc.grpc.status_code = tracing::field::Empty,
    )
}

/// A server call's span, from its head. The head is read only if a
/// subscriber wants the span: the fields are not evaluated otherwise.
#[inline]
pub(crate) fn server_span(head: &crate::interceptor::CallHead) -> tracing::Span {
    let peer = head.remote_addr;
    tracing::info_span!(
        "grpc.server",
        otel.name = head.path().strip_prefix('/').unwrap_or(head.path()),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = head.service(),
        rpc.method = head.method(),
        network.peer.address = peer.map(|p| tracing::field::display(p.ip())),
        network.peer.port = peer.map(|p| p.port()),
        rpc.grpc.status_code = tracing::field::Empty,
    )
}
