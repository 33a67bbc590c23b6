//! Making calls on a channel: the four call kinds, with deadlines,
//! interceptors, compression and cancellation.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::{Either, select};
use futures_util::{FutureExt as _, StreamExt as _};
use http::header::{HeaderMap, HeaderValue};
use http::uri::PathAndQuery;

use super::balancer::PickInfo;
use super::controller::OwnedActiveCall;
use super::{CancelHandle, Channel};
use crate::codec::{Codec, Decoder, Encoder, FrameReader, FrameWriter};
use crate::compression::{self, Encoding};
use crate::interceptor::CallHead;
use crate::metadata::{Metadata, names};
use crate::request::Request;
use crate::response::Response;
use crate::status::{Code, Status};
use crate::streaming::{AbortOnDrop, SendSide, Streaming};
use crate::transport::body::{self, RecvBody};
use crate::transport::client::{Connection, StreamPermit};

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

/// Checks response headers per PROTOCOL-HTTP2.md, mapping non-gRPC answers
/// to a status.
pub(crate) fn check_response(response: http::Response<h2::RecvStream>) -> Result<ResponseHead, Status> {
    let (parts, body) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        let code = Code::from_http_status(parts.status.as_u16());
        let mut message = format!("unexpected HTTP status {} from server", parts.status);
        if let Some(m) = parts.headers.get(&names::GRPC_MESSAGE) {
            message.push_str(": ");
            message.push_str(&crate::status::decode_message(m.as_bytes()));
        }
        return Err(Status::new(code, message));
    }
    if body.is_end_stream() || parts.headers.contains_key(&names::GRPC_STATUS) {
        return Status::from_trailers(&parts.headers)
            .map(ResponseHead::TrailersOnly)
            .ok_or_else(|| Status::internal("server ended the response without a grpc-status"));
    }
    match parts.headers.get(&names::CONTENT_TYPE) {
        Some(ct) if ct.as_bytes().starts_with(b"application/grpc") => {}
        other => {
            let got = other.and_then(|v| v.to_str().ok()).unwrap_or("none");
            return Err(Status::internal(format!("server sent non-gRPC content-type {got:?}")));
        }
    }
    let encoding = match parts.headers.get(&names::GRPC_ENCODING).map(|v| v.as_bytes()) {
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
        metadata: Metadata::from_headers(parts.headers),
        body: RecvBody::new(body, true),
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
/// tools that learn methods at run time parse a string.
///
/// ```
/// use courier::client::MethodPath;
/// let path = MethodPath::parse("/helloworld.Greeter/SayHello").unwrap();
/// assert_eq!(path.as_str(), "/helloworld.Greeter/SayHello");
/// assert!(MethodPath::parse("helloworld.Greeter").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct MethodPath(PathAndQuery);

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
            .map(MethodPath)
            .map_err(|_| Status::invalid_argument(format!("invalid method path {path:?}")))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<&'static str> for MethodPath {
    fn from(path: &'static str) -> MethodPath {
        MethodPath(PathAndQuery::from_static(path))
    }
}

/// A call's prepared head and options.
struct Prepared {
    head: CallHead,
    compression: Option<Encoding>,
    switch: Option<crate::MessageCompression>,
    wait_for_ready: bool,
}

/// A call's HTTP/2 stream, once opened.
struct Opened {
    response: h2::client::ResponseFuture,
    send: h2::SendStream<Bytes>,
    conn: Arc<Connection>,
    permit: StreamPermit,
}

/// How many times a call is sent again, transparently, after the server
/// refused its stream unprocessed (REFUSED_STREAM, or GOAWAY before the
/// server saw it) or its connection turned out to be closing before the
/// stream went out. Such a call never reached the application, so this is
/// safe for any call; the limit stops a server that refuses everything
/// from keeping a call busy.
const TRANSPARENT_RETRIES: u32 = 4;

/// Whether an error on a stream, before any response, says the server never
/// processed it: it reset the stream with REFUSED_STREAM, or its GOAWAY
/// named a last stream below this one.
fn unprocessed(e: &h2::Error) -> bool {
    e.is_remote() && (e.is_go_away() || (e.is_reset() && e.reason() == Some(h2::Reason::REFUSED_STREAM)))
}

/// What a call holds while its response stream lives: its place among the
/// connection's streams, and its count as a call in progress.
pub(crate) struct CallHold {
    _permit: StreamPermit,
    _active: OwnedActiveCall,
}

impl Channel {
    /// Settles the call's head and options, with the call's `deadline`
    /// (computed once, by the caller, which also enforces it). Interceptors
    /// run separately ([`Channel::intercept`]), so a channel without them
    /// awaits nothing.
    fn prepare<T>(&self, request: Request<T>, path: MethodPath, deadline: Option<Instant>) -> (Prepared, T) {
        // An encoding not enabled in this build is not used: the messages
        // go uncompressed.
        let compression = request
            .compression
            .unwrap_or(self.inner.config.compression)
            .filter(|enc| enc.is_enabled());
        let switch = request.message_compression;
        let wait_for_ready = request.wait_for_ready.unwrap_or(self.inner.config.wait_for_ready);
        let head = CallHead {
            path: path.0,
            metadata: request.metadata,
            extensions: request.extensions,
            deadline,
            remote_addr: None,
        };
        (
            Prepared {
                head,
                compression,
                switch,
                wait_for_ready,
            },
            request.message,
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
        let mut writer = FrameWriter::new(encoder, prepared.compression, self.inner.config.max_send_message_size);
        writer.set_switch(prepared.switch.take());
        writer
    }

    fn reader(&self) -> FrameReader {
        FrameReader::new(self.inner.config.max_recv_message_size, None)
    }

    /// The request's headers. The call's metadata is copied, not taken, so
    /// that a call sent again transparently carries it too; a call without
    /// metadata copies nothing.
    fn http_request(&self, prepared: &Prepared) -> http::Request<()> {
        let head = &prepared.head;
        let compression = prepared.compression;
        let mut headers: HeaderMap = head.metadata.clone().into_headers();
        headers.insert(&names::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(&names::TE, HeaderValue::from_static("trailers"));
        headers.insert(&names::USER_AGENT, self.inner.config.user_agent.clone());
        if let Some(deadline) = head.deadline {
            headers.insert(
                &names::GRPC_TIMEOUT,
                encode_timeout(deadline.saturating_duration_since(Instant::now())),
            );
        }
        if let Some(enc) = compression {
            headers.insert(&names::GRPC_ENCODING, HeaderValue::from_static(enc.name()));
        }
        headers.insert(
            &names::GRPC_ACCEPT_ENCODING,
            HeaderValue::from_static(compression::ACCEPT_ENCODING),
        );
        let uri = http::Uri::builder()
            .scheme(self.inner.scheme.clone())
            .authority(self.inner.authority.clone())
            .path_and_query(head.path.clone())
            .build()
            .expect("scheme, authority and path are valid");
        let mut request = http::Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        request
    }

    /// Opens the call's HTTP/2 stream on a connection the policy picks,
    /// waiting, if the call waits for ready, until there is one. A
    /// connection found closing (GOAWAY) is retired and the call goes to
    /// another: it was not sent, so this is safe. The request is built only
    /// once a connection is ready, so the future holds the call's head
    /// rather than a built request as well.
    async fn open(&self, prepared: &Prepared) -> Result<Opened, Status> {
        let mut unsent = 0;
        loop {
            let info = PickInfo {
                path: prepared.head.path.as_str(),
                metadata: &prepared.head.metadata,
            };
            let conn = self.inner.shared.pick(&info, prepared.wait_for_ready).await?;
            let permit = conn.stream_permit().await;
            let mut send = conn.send.clone();
            let sent = match poll_fn(|cx| send.poll_ready(cx)).await {
                Ok(()) => send.send_request(self.http_request(prepared), false),
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
                        return Err(Status::from_h2(&e));
                    }
                }
            }
        }
    }

    /// Sends a call whose request is one message, `body`, and waits for
    /// the response headers; sends it again, transparently, while the
    /// server refuses it unprocessed.
    async fn send_whole(
        &self,
        prepared: &Prepared,
        body: Bytes,
    ) -> Result<(http::Response<h2::RecvStream>, StreamPermit), Status> {
        let mut refused = 0;
        loop {
            let mut opened = self.open(prepared).await?;
            // An error here shows up in the response.
            let _ = opened.send.send_data(body.clone(), true);
            drop(opened.send);
            match opened.response.await {
                Ok(response) => return Ok((response, opened.permit)),
                Err(e) if unprocessed(&e) && refused < TRANSPARENT_RETRIES => {
                    refused += 1;
                    if e.is_go_away() {
                        opened.conn.retire();
                    }
                    tracing::debug!("call refused unprocessed ({e}); sending it again");
                }
                Err(e) => return Err(Status::from_h2(&e)),
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
        let deadline = request.call_deadline();
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let (mut prepared, message) = self.prepare(request, path.into(), deadline);
        let mut writer = self.writer(codec.encoder(), &mut prepared);
        let mut decoder = codec.decoder();
        let call = async move {
            let _active = self.inner.shared.call_started();
            self.intercept(&mut prepared).await?;
            writer.write(message, true)?;
            let (response, _permit) = self.send_whole(&prepared, writer.take()).await?;
            let mut reader = self.reader();
            read_unary(check_response(response)?, &mut reader, &mut decoder).await
        };
        WithDeadline::new(deadline, cancel, call).await
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
        let deadline = request.call_deadline();
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let call = async {
            let _active = self.inner.shared.call_started();
            let (mut prepared, stream) = self.prepare(request, path.into(), deadline);
            self.intercept(&mut prepared).await?;
            let writer = self.writer(codec.encoder(), &mut prepared);
            let Opened {
                response,
                send,
                permit: _permit,
                ..
            } = self.open(&prepared).await?;
            let sending = std::pin::pin!(send_all(send, stream, writer));
            let receiving = std::pin::pin!(async {
                let response = response.await.map_err(|e| Status::from_h2(&e))?;
                read_unary(check_response(response)?, &mut self.reader(), &mut codec.decoder()).await
            });
            match select(sending, receiving).await {
                Either::Left((Err(status), _)) => Err(status),
                Either::Left((Ok(()), receiving)) => receiving.await,
                Either::Right((result, _)) => result,
            }
        };
        WithDeadline::new(deadline, cancel, call).await
    }

    /// Makes a server-streaming call: sends one message, then returns the
    /// stream of responses once the response headers arrive.
    pub async fn server_streaming<C: Codec>(
        &self,
        request: Request<C::Encode>,
        path: impl Into<MethodPath>,
        mut codec: C,
    ) -> Result<Response<Streaming<C::Decode>>, Status> {
        let deadline = request.call_deadline();
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let stream_cancel = cancel.clone();
        let call = async {
            let active = self.inner.shared.owned_call_started();
            let (mut prepared, message) = self.prepare(request, path.into(), deadline);
            self.intercept(&mut prepared).await?;
            let mut writer = self.writer(codec.encoder(), &mut prepared);
            writer.write(message, true)?;
            let (response, permit) = self.send_whole(&prepared, writer.take()).await?;
            let hold = CallHold {
                _permit: permit,
                _active: active,
            };
            let mut reader = self.reader();
            match check_response(response)? {
                ResponseHead::TrailersOnly(status) if status.code() == Code::Ok => Ok(Response::new(
                    Streaming::finished(status.metadata().clone(), reader, codec.decoder()),
                )),
                ResponseHead::TrailersOnly(status) => Err(status),
                ResponseHead::Body {
                    metadata,
                    body,
                    encoding,
                } => {
                    reader.set_encoding(encoding);
                    let stream = Streaming::new(body, reader, codec.decoder(), deadline.map(Into::into), None)
                        .with_cancel(stream_cancel)
                        .with_hold(hold);
                    let mut response = Response::new(stream);
                    response.metadata = metadata;
                    Ok(response)
                }
            }
        };
        WithDeadline::new(deadline, cancel, call).await
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
        let deadline = request.call_deadline();
        // By value: borrowing `request` would keep it in the future.
        let (request, cancel) = request.take_cancel();
        let stream_cancel = cancel.clone();
        let call = async {
            let active = self.inner.shared.owned_call_started();
            let (mut prepared, stream) = self.prepare(request, path.into(), deadline);
            self.intercept(&mut prepared).await?;
            let writer = self.writer(codec.encoder(), &mut prepared);
            let Opened {
                response, send, permit, ..
            } = self.open(&prepared).await?;
            let hold = CallHold {
                _permit: permit,
                _active: active,
            };
            let error = Arc::new(Mutex::new(None));
            let slot = error.clone();
            let task = tokio::spawn(async move {
                if let Err(status) = send_all(send, stream, writer).await
                    && let Ok(mut slot) = slot.lock()
                {
                    *slot = Some(status);
                }
            });
            let send = SendSide {
                error,
                task: AbortOnDrop(task.abort_handle()),
            };
            let stream = Streaming::pending_head(
                response,
                self.reader(),
                codec.decoder(),
                deadline.map(Into::into),
                Some(send),
            )
            .with_cancel(stream_cancel)
            .with_hold(hold);
            Ok(Response::new(stream))
        };
        WithDeadline::new(deadline, cancel, call).await
    }
}

pin_project_lite::pin_project! {
    /// Fails the call with DEADLINE_EXCEEDED once the deadline passes, and
    /// with CANCELLED once its [`CancelHandle`] is cancelled. Dropping the
    /// call's future resets its stream with CANCEL. A struct rather than an
    /// `async fn`, which would store the call's future twice.
    struct WithDeadline<F> {
        #[pin]
        call: F,
        deadline: Option<Instant>,
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        cancel: Option<CancelHandle>,
    }
}

impl<F> WithDeadline<F> {
    fn new(deadline: Option<Instant>, cancel: Option<CancelHandle>, call: F) -> Self {
        WithDeadline {
            call,
            deadline,
            timer: deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))),
            cancel,
        }
    }
}

impl<T, F: Future<Output = Result<T, Status>>> Future for WithDeadline<F> {
    type Output = Result<T, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(cancel) = this.cancel
            && cancel.poll_cancelled(cx)
        {
            // Returning drops the call's future, which resets its stream.
            return Poll::Ready(Err(cancel.status(*this.deadline)));
        }
        if let Poll::Ready(result) = this.call.poll(cx) {
            // A CANCELLED racing the deadline is reported as the deadline.
            return Poll::Ready(match result {
                Err(s) if s.code() == Code::Cancelled && this.deadline.is_some_and(|d| Instant::now() >= d) => {
                    Err(Status::deadline_exceeded("deadline exceeded"))
                }
                other => other,
            });
        }
        if let Some(timer) = this.timer
            && timer.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(Status::deadline_exceeded("deadline exceeded")));
        }
        Poll::Pending
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

/// Sends every message of `stream`, batching those that are ready together,
/// then ends the request. Stops quietly if the server ends the call.
async fn send_all<E, S>(mut send: h2::SendStream<Bytes>, stream: S, mut writer: FrameWriter<E>) -> Result<(), Status>
where
    E: Encoder,
    S: Stream<Item = E::Item> + Send,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        let first = tokio::select! {
            biased;
            _ = poll_fn(|cx| send.poll_reset(cx)) => return Ok(()),
            item = stream.next() => item,
        };
        let Some(message) = first else {
            let _ = send.send_data(Bytes::new(), true);
            return Ok(());
        };
        let fail = |send: &mut h2::SendStream<Bytes>, status: Status| {
            send.send_reset(h2::Reason::CANCEL);
            Err(status)
        };
        if let Err(status) = writer.write(message, true) {
            return fail(&mut send, status);
        }
        let mut ended = false;
        while writer.pending() < BATCH_LIMIT {
            match stream.next().now_or_never() {
                Some(Some(message)) => {
                    if let Err(status) = writer.write(message, true) {
                        return fail(&mut send, status);
                    }
                }
                Some(None) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        if body::send_data(&mut send, writer.take(), ended).await.is_err() {
            return Ok(());
        }
        if ended {
            return Ok(());
        }
    }
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
