//! Making calls on a channel: the four call kinds, with deadlines,
//! interceptors, compression and cancellation.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::{Either, select};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use http::header::HeaderValue;
use http::uri::PathAndQuery;
use tracing::Instrument as _;

use super::balancer::PickInfo;
use super::controller::{OwnedActiveCall, SubchannelCall};
use super::retry::{BufferHold, Retrier, RetryBuffer, Throttle, Verdict};
use super::service_config::{AttemptPolicy, HedgingPolicy, MethodConfig, RetryPolicy};
use super::{CancelHandle, Channel};
use crate::codec::{Codec, Decoder, Encoder, FrameReader, FrameWriter};
use crate::compression::{self, Encoding};
use crate::interceptor::CallHead;
use crate::metadata::Metadata;
use crate::request::Request;
use crate::response::Response;
use crate::stats::{self, CallInfo, CallTrace, Side};
use crate::status::{Code, RetryPushback, Status};
use crate::streaming::{AbortOnDrop, SendSide, Streaming};
use crate::transport::body::RecvBody;
use crate::transport::client::{Connection, StreamPermit};
use crate::transport::head::{OutRequest, ResponseHead as ReceivedHead};
use crate::transport::stream::{Reason, ResponseFuture, SendStream};

/// The message of the CANCELLED a client's own cancellation ends a call with.
pub(crate) const CANCELLED_BY_CLIENT: &str = "the call was cancelled by the client";

/// Request messages are flushed once this much is batched.
const BATCH_LIMIT: usize = 64 * 1024;

/// What the response headers said.
pub(crate) enum ResponseHead {
    /// The server answered with only a status.
    TrailersOnly(Status),
    /// Messages follow.
    Body {
        metadata: Metadata,
        body: RecvBody,
        encoding: Option<Encoding>,
    },
}

/// Where a client call's response headers come from, checked: a
/// [`Streaming`] waits on it before reading.
pub(crate) enum PendingHead {
    /// The call's one HTTP/2 stream.
    Stream(ResponseFuture),
    /// The task making a retried call's attempts: the head of the attempt
    /// it committed to, with what that attempt holds, or the call's failure.
    Retried(tokio::sync::oneshot::Receiver<Result<(ResponseHead, AttemptHold), Status>>),
}

impl Future for PendingHead {
    /// The head, and the attempt's hold when the stream is to take it.
    type Output = Result<(ResponseHead, Option<AttemptHold>), Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            PendingHead::Stream(fut) => Pin::new(fut).poll(cx).map(|r| match r {
                Err(e) => Err(e.to_status()),
                Ok(response) => check_response(response).map(|head| (head, None)),
            }),
            PendingHead::Retried(rx) => Pin::new(rx).poll(cx).map(|r| match r {
                Ok(Ok((head, hold))) => Ok((head, Some(hold))),
                Ok(Err(status)) => Err(status),
                Err(_) => Err(Status::cancelled("the call's attempts ended without an answer")),
            }),
        }
    }
}

/// Checks response headers per PROTOCOL-HTTP2.md, mapping non-gRPC answers
/// to a status.
pub(crate) fn check_response((head, body): (ReceivedHead, RecvBody)) -> Result<ResponseHead, Status> {
    let fields = head.fields;
    if head.status != 200 {
        let code = Code::from_http_status(head.status);
        let reason = http::StatusCode::from_u16(head.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        let mut message = format!("unexpected HTTP status {}{reason} from server", head.status);
        if let Some(m) = &fields.grpc_message {
            message.push_str(": ");
            message.push_str(&crate::status::decode_message(m));
        }
        return Err(Status::new(code, message));
    }
    if body.is_end_stream() || fields.grpc_status.is_some() {
        return Status::from_fields(fields)
            .map(ResponseHead::TrailersOnly)
            .ok_or_else(|| Status::internal("server ended the response without a grpc-status"));
    }
    match fields.content_type.as_deref() {
        Some(ct) if ct.starts_with(b"application/grpc") => {}
        other => {
            let got = other.map(String::from_utf8_lossy);
            return Err(Status::internal(format!(
                "server sent non-gRPC content-type {:?}",
                got.as_deref().unwrap_or("none")
            )));
        }
    }
    let encoding = match fields.grpc_encoding.as_deref() {
        None | Some(b"identity") => None,
        Some(name) => Some(
            std::str::from_utf8(name)
                .ok()
                .and_then(Encoding::from_name)
                .ok_or_else(|| {
                    Status::internal(format!(
                        "server compressed the response with unsupported encoding {:?}",
                        String::from_utf8_lossy(name)
                    ))
                })?,
        ),
    };
    Ok(ResponseHead::Body {
        metadata: Metadata::from_received(fields.metadata),
        body,
        encoding,
    })
}

/// The longest timeout `grpc-timeout` can carry: 99,999,999 hours.
const MAX_TIMEOUT: Duration = Duration::from_secs(99_999_999 * 3600);

/// The deadline of a call with `timeout`, from now. A timeout longer than
/// `grpc-timeout` can carry (about 11,400 years), or past what an `Instant`
/// can represent, means no deadline: `Duration::MAX` is "wait forever".
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    if timeout > MAX_TIMEOUT {
        return None;
    }
    Instant::now().checked_add(timeout)
}

/// Formats a `grpc-timeout` value: at most 8 digits, rounded up.
pub(crate) fn encode_timeout(timeout: Duration) -> HeaderValue {
    let nanos = timeout.as_nanos().max(1);
    const UNITS: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (per, unit) in UNITS {
        let value = nanos.div_ceil(per);
        if value < 100_000_000 {
            return HeaderValue::from_str(&format!("{value}{unit}")).expect("ASCII");
        }
    }
    HeaderValue::from_static("99999999H")
}

/// The path of a method, `/package.Service/Method`, as calls take it.
///
/// Generated clients pass a `&'static str`, which converts without a copy;
/// tools that learn methods at run time parse a string. Metrics name a
/// parsed method `"other"` (gRFC A66, [`CallInfo::is_registered`]), so that
/// paths made at run time cannot grow their number of series.
///
/// [`CallInfo::is_registered`]: crate::stats::CallInfo::is_registered
///
/// ```
/// use courier::client::MethodPath;
/// let path = MethodPath::parse("/helloworld.Greeter/SayHello").unwrap();
/// assert_eq!(path.as_str(), "/helloworld.Greeter/SayHello");
/// assert!(MethodPath::parse("helloworld.Greeter").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct MethodPath {
    path: PathAndQuery,
    /// Made from a `&'static str`: a method known when the program was built.
    registered: bool,
}

impl MethodPath {
    /// Checks and takes a path of the form `/package.Service/Method`.
    pub fn parse(path: impl Into<String>) -> Result<MethodPath, Status> {
        let path = path.into();
        let well_formed = path
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(service, method)| !service.is_empty() && !method.is_empty() && !method.contains('/'));
        if !well_formed {
            return Err(Status::invalid_argument(format!(
                "invalid method path {path:?}: expected /package.Service/Method"
            )));
        }
        PathAndQuery::try_from(path.as_str())
            .map(|path| MethodPath {
                path,
                registered: false,
            })
            .map_err(|_| Status::invalid_argument(format!("invalid method path {path:?}")))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        self.path.as_str()
    }
}

impl From<&'static str> for MethodPath {
    fn from(path: &'static str) -> MethodPath {
        MethodPath {
            path: PathAndQuery::from_static(path),
            registered: true,
        }
    }
}

/// A call's prepared head and options.
struct Prepared {
    head: CallHead,
    compression: Option<Encoding>,
    switch: Option<crate::MessageCompression>,
    wait_for_ready: bool,
    max_send_message_size: usize,
    max_recv_message_size: usize,
    /// The method's retry or hedging policy, unless the channel has
    /// retries off.
    attempts: Option<AttemptPolicy>,
    /// The call's span, and the stats handlers following it.
    trace: CallTrace,
}

/// What the service config says for one call: found once, before the call
/// is prepared.
struct MethodPlan {
    config: Option<Arc<MethodConfig>>,
    deadline: Option<Instant>,
}

/// A one-message call's attempt that the call goes on with: its response
/// head, its stream's place on the connection, and the retry state, to
/// count its success.
struct Committed {
    head: ResponseHead,
    permit: AttemptHold,
    retrier: Option<Retrier>,
}

/// A call's HTTP/2 stream, once opened.
struct Opened {
    response: ResponseFuture,
    send: SendStream,
    conn: Arc<Connection>,
    permit: AttemptHold,
}

/// How many times a call is sent again, transparently, after the server
/// refused its stream unprocessed (REFUSED_STREAM, or GOAWAY before the
/// server saw it) or its connection turned out to be closing before the
/// stream went out. Such a call never reached the application, so this is
/// safe for any call; the limit stops a server that refuses everything
/// from keeping a call busy.
const TRANSPARENT_RETRIES: u32 = 4;

/// What an attempt holds while its stream lives: its place among its
/// connection's streams, and its count on the subchannel it was picked for.
pub(crate) struct AttemptHold {
    _permit: StreamPermit,
    subchannel: SubchannelCall,
}

impl AttemptHold {
    /// The call went on with this attempt, and ended OK.
    pub(crate) fn succeeded(&mut self) {
        self.subchannel.succeeded();
    }
}

impl CallHold {
    /// The call ended OK.
    pub(crate) fn succeeded(&mut self) {
        self.active.succeeded();
        if let Some(permit) = &mut self.permit {
            permit.succeeded();
        }
    }
}

/// What a call holds while its response stream lives: its place among the
/// connection's streams, and its count as a call in progress.
pub(crate) struct CallHold {
    /// `None` until a retried call's task hands it over.
    pub(crate) permit: Option<AttemptHold>,
    /// The call's count among the channel's calls; told when it ends OK.
    pub(crate) active: OwnedActiveCall,
}

impl Channel {
    /// Finds the service config's settings for a call to `path`, and the
    /// call's deadline: its own, or the method's timeout from now, whichever
    /// is sooner. The caller enforces the deadline.
    fn plan<T>(&self, request: &Request<T>, path: &MethodPath) -> MethodPlan {
        let own = request.call_deadline();
        let config = self
            .inner
            .shared
            .service_config()
            .method_config_arc(path.as_str())
            .cloned();
        let configured = config.as_ref().and_then(|c| c.timeout).and_then(deadline_after);
        let deadline = match (own, configured) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        MethodPlan { config, deadline }
    }

    /// Settles the call's head and options, from the request, the method's
    /// config and the channel's defaults, in that order. Interceptors run
    /// separately ([`Channel::intercept`]), so a channel without them
    /// awaits nothing.
    fn prepare<T>(&self, request: Request<T>, path: MethodPath, plan: MethodPlan) -> (Prepared, T) {
        let channel = &self.inner.config;
        let method = plan.config.as_deref();
        // An encoding not enabled in this build is not used: the messages
        // go uncompressed.
        let compression = request
            .compression
            .unwrap_or(channel.compression)
            .filter(|enc| enc.is_enabled());
        let switch = request.message_compression;
        let wait_for_ready = request
            .wait_for_ready
            .or(method.and_then(|m| m.wait_for_ready))
            .unwrap_or(channel.wait_for_ready);
        // A limit the application set wins when smaller; a default gives
        // way to the service config's.
        let limit = |channel: usize, set: bool, configured: Option<usize>| match configured {
            Some(c) if set => c.min(channel),
            Some(c) => c,
            None => channel,
        };
        let attempts = method
            .and_then(|m| m.attempts.clone())
            .filter(|_| self.inner.shared.retry_settings().enabled);
        let mut metadata = request.metadata;
        let trace = self.trace(&path, &mut metadata, plan.deadline);
        let head = CallHead {
            path: path.path,
            method_start: 0,
            metadata,
            extensions: request.extensions,
            deadline: plan.deadline,
            remote_addr: None,
        };
        (
            Prepared {
                head,
                compression,
                switch,
                wait_for_ready,
                max_send_message_size: limit(
                    channel.max_send_message_size,
                    channel.limits_set.1,
                    method.and_then(|m| m.max_request_message_bytes),
                ),
                max_recv_message_size: limit(
                    channel.max_recv_message_size,
                    channel.limits_set.0,
                    method.and_then(|m| m.max_response_message_bytes),
                ),
                attempts,
                trace,
            },
            request.message,
        )
    }

    /// The call's span, and whichever of the channel's stats handlers
    /// follow it.
    fn trace(&self, path: &MethodPath, metadata: &mut Metadata, deadline: Option<Instant>) -> CallTrace {
        let inner = &self.inner;
        let span = stats::client_span(path.as_str(), &inner.server_host, inner.server_port);
        CallTrace::start(
            span,
            &inner.stats,
            || CallInfo {
                side: Side::Client,
                path: path.path.clone(),
                registered: path.registered,
                target: Some(inner.canonical_target.clone()),
                peer: None,
                started: Instant::now(),
            },
            metadata,
            deadline,
        )
    }

    /// Runs the channel's interceptors on the call's head, if it has any.
    /// Their future is boxed, so calls on a channel without interceptors do
    /// not carry it.
    async fn intercept(&self, prepared: &mut Prepared) -> Result<(), Status> {
        if !self.inner.interceptors.is_empty() {
            let head = std::mem::replace(&mut prepared.head, CallHead::placeholder());
            prepared.head = Box::pin(self.inner.interceptors.run(head)).await?;
        }
        Ok(())
    }

    fn writer<E: Encoder>(&self, encoder: E, prepared: &mut Prepared) -> FrameWriter<E> {
        let mut writer = FrameWriter::new(encoder, prepared.compression, prepared.max_send_message_size);
        writer.set_switch(prepared.switch.take());
        writer.set_tally(prepared.trace.tally());
        writer
    }

    fn reader(&self, prepared: &Prepared) -> FrameReader {
        let mut reader = FrameReader::new(prepared.max_recv_message_size, None);
        reader.set_tally(prepared.trace.tally());
        reader
    }

    /// The request's headers, for an attempt that follows `previous` others.
    /// The call's metadata is copied, not taken, so that a call sent again
    /// carries it too; a call without metadata copies nothing.
    fn request_head(&self, prepared: &Prepared, previous: u32) -> OutRequest {
        let head = &prepared.head;
        OutRequest {
            https: self.inner.scheme == http::uri::Scheme::HTTPS,
            authority: self.inner.authority.clone(),
            path: head.path.clone(),
            user_agent: self.inner.config.user_agent.clone(),
            timeout: head
                .deadline
                .map(|deadline| encode_timeout(deadline.saturating_duration_since(Instant::now()))),
            encoding: prepared.compression.map(Encoding::name),
            accept_encoding: Some(compression::ACCEPT_ENCODING),
            previous_attempts: previous,
            metadata: head.metadata.headers().clone(),
        }
    }

    /// Opens the call's HTTP/2 stream on a connection the policy picks,
    /// waiting, if the call waits for ready, until there is one. A
    /// connection found closing (GOAWAY) is retired and the call goes to
    /// another: it was not sent, so this is safe. The request is built only
    /// once a connection is ready, so the future holds the call's head
    /// rather than a built request as well.
    async fn open(&self, prepared: &Prepared, previous: u32) -> Result<Opened, Status> {
        let mut unsent = 0;
        loop {
            let info = PickInfo {
                path: prepared.head.path.as_str(),
                metadata: &prepared.head.metadata,
            };
            let (conn, subchannel) = self.inner.shared.pick(&info, prepared.wait_for_ready, previous).await?;
            let permit = AttemptHold {
                _permit: conn.stream_permit().await,
                subchannel,
            };
            let mut opener = conn.opener();
            let sent = match opener.ready().await {
                Ok(()) => opener.open(self.request_head(prepared, previous)),
                Err(e) => Err(e),
            };
            match sent {
                Ok((response, send)) => {
                    return Ok(Opened {
                        response,
                        send,
                        conn,
                        permit,
                    });
                }
                Err(e) => {
                    conn.retire();
                    unsent += 1;
                    if unsent > TRANSPARENT_RETRIES {
                        return Err(e.to_status());
                    }
                }
            }
        }
    }

    /// One attempt of a call whose request is one message, `body`: sent,
    /// and its response headers read. It is sent again, transparently, while
    /// the server refuses it unprocessed; each sending is an attempt for
    /// stats handlers. An attempt that ends with its headers is the one the
    /// call goes on with; one answered with only a status has ended.
    async fn attempt_whole(
        &self,
        prepared: &Prepared,
        body: Bytes,
        previous: u32,
    ) -> Result<(ResponseHead, AttemptHold), Status> {
        let mut refused = 0;
        loop {
            let attempt = prepared.trace.attempt(previous, refused > 0);
            let sent = match self.open(prepared, previous).await {
                Err(status) => Err(Attempt::Failed(status)),
                Ok(mut opened) => {
                    // An error here shows up in the response.
                    let _ = opened.send.queue_data(body.clone(), true);
                    drop(opened.send);
                    match opened.response.await {
                        Ok(response) => Ok((response, opened.permit)),
                        Err(e) if e.is_unprocessed() => {
                            if e.is_go_away() {
                                opened.conn.retire();
                            }
                            Err(Attempt::Refused(e.to_status()))
                        }
                        Err(e) => Err(Attempt::Failed(e.to_status())),
                    }
                }
            };
            let failure = match sent {
                Ok((response, permit)) => match check_response(response) {
                    Ok(head @ ResponseHead::Body { .. }) => {
                        attempt.commit();
                        return Ok((head, permit));
                    }
                    Ok(ResponseHead::TrailersOnly(status)) => {
                        attempt.end(&status);
                        return Ok((ResponseHead::TrailersOnly(status), permit));
                    }
                    Err(status) => status,
                },
                Err(Attempt::Refused(status)) if refused < TRANSPARENT_RETRIES => {
                    attempt.end(&status);
                    refused += 1;
                    tracing::debug!("call refused unprocessed ({status}); sending it again");
                    continue;
                }
                Err(Attempt::Refused(status) | Attempt::Failed(status) | Attempt::Fatal(status)) => status,
            };
            attempt.end(&failure);
            return Err(failure);
        }
    }

    /// Sends a call whose request is one message, `body`, under the
    /// method's retry or hedging policy, until an attempt commits (its
    /// response headers arrive) or the call fails. Without a policy, or when
    /// the request does not fit the retry buffer, there is one attempt.
    async fn send_committed(&self, prepared: &Prepared, body: Bytes) -> Result<Committed, Status> {
        let shared = &self.inner.shared;
        let hold = match &prepared.attempts {
            Some(_) => shared.retry_buffer().reserve(body.len()),
            None => None,
        };
        let (Some(policy), Some(_hold)) = (&prepared.attempts, hold) else {
            let (head, permit) = self.attempt_whole(prepared, body, 0).await?;
            return Ok(Committed {
                head,
                permit,
                retrier: None,
            });
        };
        match policy {
            AttemptPolicy::Retry(policy) => {
                let mut retrier = Retrier::new(policy.clone(), shared.throttle());
                loop {
                    let previous = retrier.previous_attempts();
                    let failure = match self.attempt_whole(prepared, body.clone(), previous).await {
                        Ok((ResponseHead::TrailersOnly(status), _)) if status.code() != Code::Ok => status,
                        Ok((head, permit)) => {
                            return Ok(Committed {
                                head,
                                permit,
                                retrier: Some(retrier),
                            });
                        }
                        Err(status) => status,
                    };
                    match retrier.after_failure(&failure) {
                        Verdict::Retry(delay) => {
                            tracing::debug!(
                                path = prepared.head.path.as_str(),
                                "retrying after {failure} in {delay:?}"
                            );
                            tokio::time::sleep(delay).await;
                        }
                        Verdict::Stop => return Err(failure),
                    }
                }
            }
            AttemptPolicy::Hedging(policy) => {
                let (head, permit) = hedge(policy, shared.throttle(), |previous| {
                    self.attempt_whole(prepared, body.clone(), previous)
                })
                .await?;
                Ok(Committed {
                    head,
                    permit,
                    retrier: None,
                })
            }
        }
    }

    /// Makes a unary call.
    pub async fn unary<C: Codec>(
        &self,
        request: Request<C::Encode>,
        path: impl Into<MethodPath>,
        mut codec: C,
    ) -> Result<Response<C::Decode>, Status> {
        let path = path.into();
        let plan = self.plan(&request, &path);
        let deadline = plan.deadline;
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let (mut prepared, message) = self.prepare(request, path, plan);
        let mut writer = self.writer(codec.encoder(), &mut prepared);
        let mut decoder = codec.decoder();
        let trace = prepared.trace.clone();
        let call = async move {
            let mut active = self.inner.shared.call_started();
            self.intercept(&mut prepared).await?;
            writer.write(message, true)?;
            let committed = self.send_committed(&prepared, writer.take()).await?;
            let mut permit = committed.permit;
            let mut reader = self.reader(&prepared);
            let response = read_unary(committed.head, &mut reader, &mut decoder).await;
            if response.is_ok() {
                // Every successful unary call refills the retry throttle,
                // whatever its method (gRFC A6).
                self.inner.shared.call_succeeded();
                active.succeeded();
                permit.succeeded();
            }
            response
        };
        WithDeadline::new(deadline, cancel, &trace, Ends::Call, call).await
    }

    /// Makes a client-streaming call: sends every message of the request
    /// stream, then receives one response.
    pub async fn client_streaming<C, S>(
        &self,
        request: Request<S>,
        path: impl Into<MethodPath>,
        mut codec: C,
    ) -> Result<Response<C::Decode>, Status>
    where
        C: Codec,
        S: Stream<Item = C::Encode> + Send + 'static,
    {
        let path = path.into();
        let plan = self.plan(&request, &path);
        let deadline = plan.deadline;
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let (mut prepared, stream) = self.prepare(request, path, plan);
        let trace = prepared.trace.clone();
        let call = async move {
            let mut active = self.inner.shared.call_started();
            self.intercept(&mut prepared).await?;
            let writer = self.writer(codec.encoder(), &mut prepared);
            if let Some(AttemptPolicy::Retry(policy)) = &prepared.attempts {
                let policy = policy.clone();
                let result = self
                    .client_streaming_retried(&prepared, policy, stream, writer, &mut codec)
                    .await;
                if result.is_ok() {
                    active.succeeded();
                }
                return result;
            }
            let Opened {
                response,
                send,
                mut permit,
                ..
            } = self.open_single(&prepared).await?;
            let sending = std::pin::pin!(send_all(send, stream, writer));
            let receiving = std::pin::pin!(async {
                let response = response.await.map_err(|e| e.to_status())?;
                read_unary(
                    check_response(response)?,
                    &mut self.reader(&prepared),
                    &mut codec.decoder(),
                )
                .await
            });
            let result = match select(sending, receiving).await {
                Either::Left((Err(status), _)) => Err(status),
                Either::Left((Ok(()), receiving)) => receiving.await,
                Either::Right((result, _)) => result,
            };
            if result.is_ok() {
                active.succeeded();
                permit.succeeded();
            }
            result
        };
        WithDeadline::new(deadline, cancel, &trace, Ends::Call, call).await
    }

    /// Opens the stream of a call that makes one attempt: the attempt the
    /// call goes on with, or that failed.
    async fn open_single(&self, prepared: &Prepared) -> Result<Opened, Status> {
        let attempt = prepared.trace.attempt(0, false);
        match self.open(prepared, 0).await {
            Ok(opened) => {
                attempt.commit();
                Ok(opened)
            }
            Err(status) => {
                attempt.end(&status);
                Err(status)
            }
        }
    }

    /// A client-streaming call under a retry policy: attempts until one
    /// commits, then the rest of the request goes out as the response is
    /// read.
    async fn client_streaming_retried<C, S>(
        &self,
        prepared: &Prepared,
        policy: RetryPolicy,
        stream: S,
        writer: FrameWriter<C::Encoder>,
        codec: &mut C,
    ) -> Result<Response<C::Decode>, Status>
    where
        C: Codec,
        S: Stream<Item = C::Encode> + Send + 'static,
    {
        let stream = std::pin::pin!(stream);
        let mut outbound = Outbound::new(stream, writer, self.inner.shared.retry_buffer());
        let StreamCommitted {
            head,
            mut send,
            mut permit,
            retrier,
        } = self.stream_attempts(prepared, policy, &mut outbound).await?;
        let (mut reader, mut decoder) = (self.reader(prepared), codec.decoder());
        let receiving = std::pin::pin!(read_unary(head, &mut reader, &mut decoder));
        let sending = std::pin::pin!(outbound.send(&mut send));
        let result = match select(sending, receiving).await {
            Either::Left((Err(status), _)) => Err(status),
            Either::Left((Ok(()), receiving)) => receiving.await,
            Either::Right((result, _)) => result,
        };
        if result.is_ok() {
            retrier.success();
            permit.succeeded();
        }
        result
    }

    /// Makes attempts of a call with a streamed request under `policy`
    /// until one commits (its response headers arrive, or its request
    /// outgrows the retry buffer and it then ends), replaying on each new
    /// attempt what the earlier ones sent. Returns the committed attempt,
    /// whose request may not all be sent yet: `outbound.send` goes on with
    /// it. A stream the server refused unprocessed is sent again at once,
    /// without counting as an attempt.
    async fn stream_attempts<E, S>(
        &self,
        prepared: &Prepared,
        policy: RetryPolicy,
        outbound: &mut Outbound<'_, E, S>,
    ) -> Result<StreamCommitted, Status>
    where
        E: Encoder,
        S: Stream<Item = E::Item> + Send,
    {
        let mut retrier = Retrier::new(policy, self.inner.shared.throttle());
        let mut refused = 0;
        loop {
            let previous = retrier.previous_attempts();
            outbound.restart();
            let trace = prepared.trace.attempt(previous, refused > 0);
            let attempt = async {
                let Opened {
                    response,
                    mut send,
                    permit,
                    ..
                } = self.open(prepared, previous).await.map_err(Attempt::Failed)?;
                let head = {
                    let sending = std::pin::pin!(outbound.send(&mut send));
                    match select(sending, response).await {
                        Either::Left((Err(status), _)) => return Err(Attempt::Fatal(status)),
                        Either::Left((Ok(()), response)) => response.await,
                        // Dropping the sending future loses nothing: what
                        // it was sending stays queued.
                        Either::Right((head, _)) => head,
                    }
                };
                match head {
                    Err(e) if e.is_unprocessed() => Err(Attempt::Refused(e.to_status())),
                    Err(e) => Err(Attempt::Failed(e.to_status())),
                    Ok(response) => match check_response(response) {
                        Ok(ResponseHead::TrailersOnly(status)) if status.code() != Code::Ok => {
                            Err(Attempt::Failed(status))
                        }
                        Err(status) => Err(Attempt::Failed(status)),
                        Ok(head) => Ok((head, send, permit)),
                    },
                }
            };
            let failure = match attempt.await {
                Ok((head, send, permit)) => {
                    trace.commit();
                    outbound.commit();
                    return Ok(StreamCommitted {
                        head,
                        send,
                        permit,
                        retrier,
                    });
                }
                Err(Attempt::Fatal(status)) => {
                    trace.end(&status);
                    return Err(status);
                }
                Err(Attempt::Refused(status)) => {
                    trace.end(&status);
                    if outbound.can_replay() && refused < TRANSPARENT_RETRIES {
                        refused += 1;
                        tracing::debug!("stream refused unprocessed ({status}); sending it again");
                        continue;
                    }
                    status
                }
                Err(Attempt::Failed(status)) => {
                    trace.end(&status);
                    status
                }
            };
            if !outbound.can_replay() {
                return Err(failure);
            }
            match retrier.after_failure(&failure) {
                Verdict::Retry(delay) => tokio::time::sleep(delay).await,
                Verdict::Stop => return Err(failure),
            }
        }
    }

    /// The task of a bidirectional call under a retry policy: makes its
    /// attempts, hands the response stream the head of the one it commits
    /// to, and sends the rest of the request on it. It then keeps the
    /// stream's place on its connection until the response stream, which
    /// owns the task, is dropped.
    async fn bidi_attempts<E, S>(
        &self,
        prepared: &Prepared,
        policy: RetryPolicy,
        stream: S,
        writer: FrameWriter<E>,
        head: tokio::sync::oneshot::Sender<Result<(ResponseHead, AttemptHold), Status>>,
    ) -> Result<(), Status>
    where
        E: Encoder,
        S: Stream<Item = E::Item> + Send,
    {
        let stream = std::pin::pin!(stream);
        let mut outbound = Outbound::new(stream, writer, self.inner.shared.retry_buffer());
        let committed = match self.stream_attempts(prepared, policy, &mut outbound).await {
            Ok(committed) => committed,
            Err(status) => {
                let _ = head.send(Err(status));
                return Ok(());
            }
        };
        let StreamCommitted {
            head: committed_head,
            mut send,
            permit,
            retrier,
        } = committed;
        retrier.success();
        // The response stream holds the attempt's place from here on.
        let _ = head.send(Ok((committed_head, permit)));
        outbound.send(&mut send).await?;
        std::future::pending::<()>().await;
        Ok(())
    }

    /// Makes a server-streaming call: sends one message, then returns the
    /// stream of responses once the response headers arrive.
    pub async fn server_streaming<C: Codec>(
        &self,
        request: Request<C::Encode>,
        path: impl Into<MethodPath>,
        mut codec: C,
    ) -> Result<Response<Streaming<C::Decode>>, Status> {
        let path = path.into();
        let plan = self.plan(&request, &path);
        let deadline = plan.deadline;
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let stream_cancel = cancel.clone();
        let (mut prepared, message) = self.prepare(request, path, plan);
        let trace = prepared.trace.clone();
        let call = async move {
            let active = self.inner.shared.owned_call_started();
            self.intercept(&mut prepared).await?;
            let mut writer = self.writer(codec.encoder(), &mut prepared);
            writer.write(message, true)?;
            let committed = self.send_committed(&prepared, writer.take()).await?;
            // A stream that reached its headers counts as a success for the
            // retry throttle.
            if let Some(retrier) = &committed.retrier {
                retrier.success();
            }
            let mut hold = CallHold {
                permit: Some(committed.permit),
                active,
            };
            let mut reader = self.reader(&prepared);
            match committed.head {
                ResponseHead::TrailersOnly(status) if status.code() == Code::Ok => {
                    prepared.trace.end(&status, None);
                    hold.succeeded();
                    Ok(Response::new(Streaming::finished(
                        status.metadata().clone(),
                        reader,
                        codec.decoder(),
                    )))
                }
                ResponseHead::TrailersOnly(status) => Err(status),
                ResponseHead::Body {
                    metadata,
                    body,
                    encoding,
                } => {
                    reader.set_encoding(encoding);
                    prepared.trace.record_headers(&metadata);
                    let stream = Streaming::new(body, reader, codec.decoder(), deadline.map(Into::into), None)
                        .with_cancel(stream_cancel)
                        .with_hold(hold)
                        .with_trace(prepared.trace.clone());
                    let mut response = Response::new(stream);
                    response.metadata = metadata;
                    Ok(response)
                }
            }
        };
        WithDeadline::new(deadline, cancel, &trace, Ends::OnError, call).await
    }

    /// Makes a bidirectional call. It returns as soon as the call is sent:
    /// the request stream is sent by a task of its own while the responses
    /// are read, and response headers are read from the returned stream
    /// ([`Streaming::headers`]), since a server may send them only with its
    /// first message.
    pub async fn streaming<C, S>(
        &self,
        request: Request<S>,
        path: impl Into<MethodPath>,
        mut codec: C,
    ) -> Result<Response<Streaming<C::Decode>>, Status>
    where
        C: Codec,
        S: Stream<Item = C::Encode> + Send + 'static,
    {
        let path = path.into();
        let plan = self.plan(&request, &path);
        let deadline = plan.deadline;
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let stream_cancel = cancel.clone();
        let (mut prepared, stream) = self.prepare(request, path, plan);
        let trace = prepared.trace.clone();
        let call_trace = trace.clone();
        let call = async move {
            let trace = call_trace;
            let active = self.inner.shared.owned_call_started();
            self.intercept(&mut prepared).await?;
            let writer = self.writer(codec.encoder(), &mut prepared);
            let reader = self.reader(&prepared);
            let error = Arc::new(Mutex::new(None));
            let slot = error.clone();
            let (head, task, permit) = match prepared.attempts.clone() {
                Some(AttemptPolicy::Retry(policy)) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let channel = self.clone();
                    let span = trace.span().clone();
                    let task = tokio::spawn(
                        async move {
                            let outcome = channel.bidi_attempts(&prepared, policy, stream, writer, tx).await;
                            if let Err(status) = outcome
                                && let Ok(mut slot) = slot.lock()
                            {
                                *slot = Some(status);
                            }
                        }
                        .instrument(span),
                    );
                    (PendingHead::Retried(rx), task, None)
                }
                _ => {
                    let Opened {
                        response, send, permit, ..
                    } = self.open_single(&prepared).await?;
                    let task = tokio::spawn(
                        async move {
                            if let Err(status) = send_all(send, stream, writer).await
                                && let Ok(mut slot) = slot.lock()
                            {
                                *slot = Some(status);
                            }
                        }
                        .instrument(trace.span().clone()),
                    );
                    (PendingHead::Stream(response), task, Some(permit))
                }
            };
            let hold = CallHold { permit, active };
            let send = SendSide {
                error,
                task: AbortOnDrop(task.abort_handle()),
            };
            let stream = Streaming::pending_head(head, reader, codec.decoder(), deadline.map(Into::into), Some(send))
                .with_cancel(stream_cancel)
                .with_hold(hold)
                .with_trace(trace);
            Ok(Response::new(stream))
        };
        WithDeadline::new(deadline, cancel, &trace, Ends::OnError, call).await
    }
}

/// How one attempt of a call failed.
enum Attempt {
    /// In a way no retry helps: encoding its request failed.
    Fatal(Status),
    /// The server refused the stream unprocessed (REFUSED_STREAM, or a
    /// GOAWAY before it).
    Refused(Status),
    /// Before committing.
    Failed(Status),
}

/// The attempt a call with a streamed request committed to.
struct StreamCommitted {
    head: ResponseHead,
    send: SendStream,
    permit: AttemptHold,
    retrier: Retrier,
}

/// Sends up to the policy's attempts of a call, `hedging_delay` apart
/// (gRFC A6), until one commits: its response headers arrive, or it ends
/// OK or with a fatal status. A non-fatal failure sends the next attempt at
/// once; pushback sets when the next one goes, or stops them. Returning
/// drops the other attempts, which resets their streams with CANCEL.
async fn hedge<F, Fut>(
    policy: &HedgingPolicy,
    throttle: Option<Arc<Throttle>>,
    attempt: F,
) -> Result<(ResponseHead, AttemptHold), Status>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Result<(ResponseHead, AttemptHold), Status>>,
{
    let mut running = FuturesUnordered::new();
    let mut sent = 0;
    let mut next = Some(tokio::time::Instant::now());
    let mut last_failure = None;
    loop {
        if let Some(at) = next
            && at <= tokio::time::Instant::now()
        {
            let throttled = sent > 0 && throttle.as_ref().is_some_and(|t| !t.allows());
            if sent < policy.max_attempts && !throttled {
                running.push(attempt(sent));
                sent += 1;
                next = (sent < policy.max_attempts).then(|| tokio::time::Instant::now() + policy.hedging_delay);
            } else {
                next = None;
            }
        }
        if running.is_empty() && next.is_none() {
            return Err(last_failure.unwrap_or_else(|| Status::unavailable("no hedged attempt could be sent")));
        }
        let result = tokio::select! {
            Some(result) = running.next() => result,
            _ = async { tokio::time::sleep_until(next.expect("checked")).await }, if next.is_some() => continue,
        };
        let failure = match result {
            Ok((ResponseHead::TrailersOnly(status), _)) if status.code() != Code::Ok => status,
            Ok(committed) => {
                if let Some(throttle) = &throttle {
                    throttle.success();
                }
                return Ok(committed);
            }
            Err(status) => status,
        };
        let pushback = failure.retry_pushback();
        let non_fatal = policy.non_fatal.contains(failure.code());
        if let Some(throttle) = &throttle {
            throttle.attempt_failed(non_fatal, pushback);
        }
        if !non_fatal {
            return Err(failure);
        }
        if sent < policy.max_attempts {
            next = match pushback {
                Some(RetryPushback::Stop) => None,
                Some(RetryPushback::After(delay)) => Some(tokio::time::Instant::now() + delay),
                None => Some(tokio::time::Instant::now()),
            };
        }
        last_failure = Some(failure);
    }
}

/// A retried stream's request: the application's stream, what has been
/// sent of it (kept for replay until the call commits), and what the
/// current attempt has still to send.
struct Outbound<'s, E: Encoder, S> {
    stream: Pin<&'s mut S>,
    writer: FrameWriter<E>,
    /// Every chunk taken from the stream, and the retry buffer's share
    /// they hold; `None` once the call committed, or could not buffer.
    replay: Option<Replay>,
    /// The chunks the current attempt has still to send, before it reads
    /// more of the stream. A chunk leaves only once sent, so an attempt's
    /// sending may stop at any await and go on later.
    queue: VecDeque<Bytes>,
    /// The application's stream has ended.
    ended: bool,
    /// The current attempt's request has ended.
    done: bool,
}

/// Encoded request data, in the chunks it was sent in.
struct Replay {
    chunks: Vec<Bytes>,
    hold: BufferHold,
}

impl<'s, E, S> Outbound<'s, E, S>
where
    E: Encoder,
    S: Stream<Item = E::Item> + Send,
{
    /// A request kept for replay within `buffer`'s limits.
    fn new(stream: Pin<&'s mut S>, writer: FrameWriter<E>, buffer: &Arc<RetryBuffer>) -> Self {
        let mut outbound = Outbound::unbuffered(stream, writer);
        outbound.replay = buffer.reserve(0).map(|hold| Replay {
            chunks: Vec::new(),
            hold,
        });
        outbound
    }

    /// A request sent once: nothing is kept.
    fn unbuffered(stream: Pin<&'s mut S>, writer: FrameWriter<E>) -> Self {
        Outbound {
            stream,
            writer,
            replay: None,
            queue: VecDeque::new(),
            ended: false,
            done: false,
        }
    }

    /// Whether a new attempt could send the whole request again.
    fn can_replay(&self) -> bool {
        self.replay.is_some()
    }

    /// Starts a new attempt: everything sent so far goes again first.
    fn restart(&mut self) {
        if let Some(replay) = &self.replay {
            self.queue = replay.chunks.iter().cloned().collect();
            self.done = false;
        }
    }

    /// The call committed: the buffer is given up, and only what the
    /// attempt has yet to send is kept.
    fn commit(&mut self) {
        self.replay = None;
    }

    /// Sends the current attempt's request: its queue, then the rest of
    /// the stream, batching messages that are ready together. Stops
    /// quietly if the server ends the stream.
    async fn send(&mut self, send: &mut SendStream) -> Result<(), Status> {
        loop {
            if self.done {
                return Ok(());
            }
            if let Some(chunk) = self.queue.front() {
                let end = self.ended && self.queue.len() == 1;
                if send.send_data(chunk.clone(), end).await.is_err() {
                    return Ok(());
                }
                self.queue.pop_front();
                self.done = end;
                continue;
            }
            if self.ended {
                let _ = send.queue_data(Bytes::new(), true);
                self.done = true;
                continue;
            }
            let first = tokio::select! {
                biased;
                _ = send.reset_received() => return Ok(()),
                item = self.stream.next() => item,
            };
            let Some(message) = first else {
                self.ended = true;
                continue;
            };
            let mut write = |writer: &mut FrameWriter<E>, message| {
                writer.write(message, true).inspect_err(|_| send.reset(Reason::Cancel))
            };
            write(&mut self.writer, message)?;
            while self.writer.pending() < BATCH_LIMIT {
                match self.stream.next().now_or_never() {
                    Some(Some(message)) => write(&mut self.writer, message)?,
                    Some(None) => {
                        self.ended = true;
                        break;
                    }
                    None => break,
                }
            }
            let chunk = self.writer.take();
            if let Some(replay) = &mut self.replay {
                if replay.hold.grow(chunk.len()) {
                    replay.chunks.push(chunk.clone());
                } else {
                    // Past the buffer: this attempt is the call's last.
                    self.replay = None;
                }
            }
            self.queue.push_back(chunk);
        }
    }
}

pin_project_lite::pin_project! {
    /// Fails the call with DEADLINE_EXCEEDED once the deadline passes, and
    /// with CANCELLED once its [`CancelHandle`] is cancelled, and ends the
    /// call's trace with its result. Dropping the call's future resets its
    /// stream with CANCEL. A struct rather than an `async fn`, which would
    /// store the call's future twice.
    struct WithDeadline<'a, F> {
        #[pin]
        call: F,
        deadline: Option<Instant>,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        cancel: Option<CancelHandle>,
        // The call's span, entered while the call is polled.
        trace: &'a CallTrace,
        ends: Ends,
    }
}

/// What a call's response is to its trace.
#[derive(Clone, Copy)]
enum Ends {
    /// The call ends with it: the response holds the one message and the
    /// trailers.
    Call,
    /// The call goes on in the response's stream, which ends the trace; an
    /// error ends it here.
    OnError,
}

impl<'a, F> WithDeadline<'a, F> {
    #[inline(always)]
    fn new(deadline: Option<Instant>, cancel: Option<CancelHandle>, trace: &'a CallTrace, ends: Ends, call: F) -> Self {
        WithDeadline {
            call,
            deadline,
            timer: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            cancel,
            trace,
            ends,
        }
    }
}

impl<T, F: Future<Output = Result<Response<T>, Status>>> Future for WithDeadline<'_, F> {
    type Output = Result<Response<T>, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = 'ready: {
            if let Some(cancel) = this.cancel
                && cancel.poll_cancelled(cx)
            {
                // Returning drops the call's future, which resets its stream.
                break 'ready Err(cancel.status(*this.deadline));
            }
            let call = this.call;
            if let Poll::Ready(result) = this.trace.in_scope(|| call.poll(cx)) {
                // A CANCELLED racing the deadline is reported as the deadline.
                break 'ready match result {
                    Err(s) if s.code() == Code::Cancelled && this.deadline.is_some_and(|d| Instant::now() >= d) => {
                        Err(Status::deadline_exceeded("deadline exceeded"))
                    }
                    other => other,
                };
            }
            if let Some(timer) = this.timer
                && timer.as_mut().poll(cx).is_ready()
            {
                break 'ready Err(Status::deadline_exceeded("deadline exceeded"));
            }
            return Poll::Pending;
        };
        match (&result, *this.ends) {
            (Err(status), _) => this.trace.end(status, None),
            (Ok(r), Ends::Call) => this.trace.end_ok(Some(&r.metadata), &r.trailers),
            (Ok(_), Ends::OnError) => {}
        }
        Poll::Ready(result)
    }
}

/// Reads exactly one response message and the status after it.
async fn read_unary<D: Decoder>(
    head: ResponseHead,
    reader: &mut FrameReader,
    decoder: &mut D,
) -> Result<Response<D::Item>, Status> {
    let (metadata, mut body) = match head {
        ResponseHead::TrailersOnly(status) if status.code() == Code::Ok => {
            return Err(Status::internal("server sent OK without a response message"));
        }
        ResponseHead::TrailersOnly(status) => return Err(status),
        ResponseHead::Body {
            metadata,
            body,
            encoding,
        } => {
            reader.set_encoding(encoding);
            (metadata, body)
        }
    };
    let mut message = None;
    loop {
        while let Some(bytes) = reader.next()? {
            if message.is_some() {
                return Err(Status::internal(
                    "server sent more than one response message for a unary call",
                ));
            }
            message = Some((bytes, reader.last_compressed()));
        }
        match body.data().await {
            Some(Ok(chunk)) => reader.push(chunk),
            Some(Err(status)) => return Err(status),
            None => break,
        }
    }
    reader.finish()?;
    let status = body.trailers().await?.unwrap_or_else(Status::ok);
    if status.code() != Code::Ok {
        return Err(status);
    }
    let (bytes, compressed) = message.ok_or_else(|| Status::internal("server sent OK without a response message"))?;
    let mut response = Response::new(decoder.decode(bytes)?);
    response.metadata = metadata;
    response.trailers = status.metadata().clone();
    if compressed {
        response.extensions.insert(crate::MessageCompressed);
    }
    Ok(response)
}

/// Sends every message of `stream` on a call with one attempt, then ends
/// the request: [`Outbound`] with nothing kept for replay.
async fn send_all<E, S>(mut send: SendStream, stream: S, writer: FrameWriter<E>) -> Result<(), Status>
where
    E: Encoder,
    S: Stream<Item = E::Item> + Send,
{
    let stream = std::pin::pin!(stream);
    Outbound::unbuffered(stream, writer).send(&mut send).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_too_long_for_grpc_timeout_mean_no_deadline() {
        assert!(deadline_after(Duration::MAX).is_none());
        assert!(deadline_after(MAX_TIMEOUT + Duration::from_nanos(1)).is_none());
        assert!(deadline_after(MAX_TIMEOUT).is_some());
        assert!(deadline_after(Duration::from_secs(1)).is_some());
    }

    #[test]
    fn timeout_encoding() {
        assert_eq!(encode_timeout(Duration::from_nanos(5)), "5n");
        assert_eq!(encode_timeout(Duration::from_millis(1500)), "1500000u");
        assert_eq!(encode_timeout(Duration::from_secs(1000)), "1000000m");
        assert_eq!(encode_timeout(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(encode_timeout(MAX_TIMEOUT), "99999999H");
        let parsed = crate::server::parse_timeout_for_tests(encode_timeout(Duration::from_secs(3)).as_bytes());
        assert_eq!(parsed, Some(Duration::from_secs(3)));
    }
}
