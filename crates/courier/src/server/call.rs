//! One call on the server: checking the request head, running interceptors
//! and the handler, and writing the response, with the deadline and
//! cancellation enforced throughout.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::{FutureExt as _, StreamExt as _};
use http::header::HeaderValue;
use http::uri::PathAndQuery;

use super::ServerConfig;
use crate::codec::{Codec, Decoder, Encoder, FrameReader, FrameWriter};
use crate::compression::{self, Encoding};
use crate::context::Scoped;
use crate::extensions::Extensions;
use crate::interceptor::CallHead;
use crate::metadata::Metadata;
use crate::request::Request;
use crate::response::Response;
use crate::stats::{self, CallInfo, CallTrace, Side};
use crate::status::Status;
use crate::streaming::Streaming;
use crate::transport::body::RecvBody;
use crate::transport::budget::RecvBudget;
use crate::transport::head::{OutFields, OutResponse, RequestHead};
use crate::transport::stream::{Reason, RecvStream, Respond, SendStream};

/// Responses are flushed once this much is batched, even if more messages
/// are ready.
const BATCH_LIMIT: usize = 64 * 1024;

/// One incoming call, handed to a [`Service`](super::Service). Generated code
/// calls one of its methods to run the handler for the call's kind.
pub struct ServerCall {
    head: CallHead,
    body: RecvStream,
    /// The connection's receive budget, which the request body is charged to.
    budget: Arc<RecvBudget>,
    respond: Responder,
    config: Arc<ServerConfig>,
    request_encoding: Option<Encoding>,
    response_encoding: Option<Encoding>,
    /// When the request headers were read, for stats handlers.
    started: Option<Instant>,
}

impl std::fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCall")
            .field("path", &self.head.path())
            .finish_non_exhaustive()
    }
}

/// Checks a new stream's request head. Answers bad requests itself and
/// returns `None` for them.
pub(crate) fn accept(
    req: RequestHead,
    body: RecvStream,
    respond: Respond,
    conn: super::ConnInfo,
    config: Arc<ServerConfig>,
) -> Option<ServerCall> {
    let started = (!config.stats.is_empty()).then(Instant::now);
    let fields = req.fields;
    let mut respond = Responder::new(respond);
    if &req.method[..] != b"POST" {
        respond.reply_http(405, "gRPC requires the POST method");
        return None;
    }
    match fields.content_type {
        Some(ct) if is_grpc_content_type(&ct) => {
            if &ct[..] != b"application/grpc" {
                // Echoed, as grpc-go does; the common one is known already.
                respond.content_type = HeaderValue::from_maybe_shared(ct).ok();
            }
        }
        other => {
            let got = other.as_deref().map(String::from_utf8_lossy);
            respond.reply_http(
                415,
                &format!(
                    "invalid gRPC request content-type {:?}: expected application/grpc",
                    got.as_deref().unwrap_or("none")
                ),
            );
            return None;
        }
    };
    if fields.te.as_deref() != Some(b"trailers") {
        respond.trailers_only(Status::internal(
            "request is missing the 'te: trailers' header gRPC requires",
        ));
        return None;
    }
    let (path, method_start) = match PathAndQuery::from_maybe_shared(req.path) {
        Ok(path) if let Some(at) = method_start(path.path()) => (path, at),
        Ok(path) => {
            respond.trailers_only(Status::unimplemented(format!(
                "malformed method path {:?}: expected /package.Service/Method",
                path.as_str()
            )));
            return None;
        }
        Err(_) => {
            respond.trailers_only(Status::unimplemented(
                "malformed method path: expected /package.Service/Method",
            ));
            return None;
        }
    };
    let deadline = match fields.grpc_timeout.as_deref().map(|v| (v, parse_timeout(v))) {
        None => None,
        Some((_, Ok(timeout))) => Instant::now().checked_add(timeout),
        Some((raw, Err(()))) => {
            respond.trailers_only(Status::internal(format!(
                "malformed grpc-timeout {:?}: expected up to 8 digits and a unit (H, M, S, m, u, n)",
                String::from_utf8_lossy(raw)
            )));
            return None;
        }
    };
    let request_encoding = match fields.grpc_encoding.as_deref() {
        None | Some(b"identity") => None,
        Some(name) => match std::str::from_utf8(name).ok().and_then(Encoding::from_name) {
            Some(enc) => Some(enc),
            None => {
                let name = String::from_utf8_lossy(name).into_owned();
                respond.trailers_only(Status::unimplemented(format!(
                    "message compression {name:?} is not supported; supported: {}",
                    compression::ACCEPT_ENCODING
                )));
                return None;
            }
        },
    };
    respond.accept_encoding = fields
        .grpc_accept_encoding
        .and_then(|v| HeaderValue::from_maybe_shared(v).ok());
    let response_encoding = config
        .send_compression
        .filter(|enc| compression::accepts(respond.accept_encoding.as_ref(), *enc));
    let mut extensions = Extensions::new();
    #[cfg(feature = "tls")]
    if let Some(peer) = conn.peer {
        extensions.insert(peer);
    }
    if let Some(previous) = fields
        .grpc_previous_rpc_attempts
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
    {
        extensions.insert(crate::PreviousRpcAttempts(previous));
    }
    let head = CallHead {
        path,
        // Routing reads the parts from it; a path too long for it (the
        // header list would have to allow one) is searched.
        method_start: u16::try_from(method_start).unwrap_or(0),
        metadata: Metadata::from_received(fields.metadata),
        extensions,
        deadline,
        remote_addr: conn.remote,
    };
    Some(ServerCall {
        head,
        body,
        budget: conn.budget,
        respond,
        config,
        request_encoding,
        response_encoding,
        started,
    })
}

fn is_grpc_content_type(ct: &[u8]) -> bool {
    match ct.strip_prefix(b"application/grpc") {
        Some(rest) => rest.is_empty() || rest[0] == b'+' || rest[0] == b';',
        None => false,
    }
}

/// Where the method starts in `path` (one past the slash after the
/// service), if `path` is `/service/method` with both parts non-empty.
/// Searched as bytes (`/` is ASCII) with memchr, as every call's path is
/// checked.
fn method_start(path: &str) -> Option<usize> {
    let rest = path.as_bytes().strip_prefix(b"/")?;
    let slash = memchr::memchr(b'/', rest)?;
    let method = &rest[slash + 1..];
    (slash > 0 && !method.is_empty() && memchr::memchr(b'/', method).is_none()).then_some(slash + 2)
}

/// Parses a `grpc-timeout` value: 1 to 8 digits and a unit.
pub(crate) fn parse_timeout(raw: &[u8]) -> Result<Duration, ()> {
    let (&unit, digits) = raw.split_last().ok_or(())?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    let n: u64 = std::str::from_utf8(digits).map_err(|_| ())?.parse().map_err(|_| ())?;
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return Err(()),
    })
}

/// The response side of a stream: before headers, or sending.
struct Responder {
    pending: Option<Respond>,
    stream: Option<SendStream>,
    /// The request's content-type when it is not `application/grpc`
    /// itself (`application/grpc+proto`, say): the response echoes it.
    content_type: Option<HeaderValue>,
    /// The client's `grpc-accept-encoding`.
    accept_encoding: Option<HeaderValue>,
    /// Whether the call's status (or an HTTP error) has been sent.
    finished: bool,
    /// The client reset the stream.
    reset: bool,
    /// The call's span and stats, ended with the status.
    trace: CallTrace,
}

impl Drop for Responder {
    /// A call dropped before its status was sent (its handler panicked, or
    /// the server is closing) resets the stream with INTERNAL_ERROR, which the
    /// client reports as INTERNAL. After a reset by the client this does
    /// nothing.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if self.trace.is_followed() {
            let status = if self.reset {
                Status::cancelled("the client cancelled the call")
            } else {
                Status::internal("the call ended without a status")
            };
            self.trace.end(&status, None);
        }
        if let Some(stream) = self.stream.as_mut() {
            stream.reset(Reason::InternalError);
        } else if let Some(pending) = self.pending.as_mut() {
            pending.reset(Reason::InternalError);
        }
    }
}

impl Responder {
    fn new(respond: Respond) -> Responder {
        Responder {
            pending: Some(respond),
            stream: None,
            content_type: None,
            accept_encoding: None,
            finished: false,
            reset: false,
            trace: CallTrace::default(),
        }
    }

    /// Resolves when the client resets the stream (or the connection dies).
    fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let reset = match (&mut self.stream, &mut self.pending) {
            (Some(s), _) => s.poll_reset(cx),
            (None, Some(p)) => p.poll_reset(cx),
            (None, None) => Poll::Ready(()),
        };
        if reset.is_ready() {
            self.reset = true;
        }
        reset
    }

    /// Answers a request that is not gRPC with an HTTP error `status`.
    fn reply_http(&mut self, status: u16, message: &str) {
        self.finished = true;
        let Some(mut respond) = self.pending.take() else { return };
        let fields = OutFields {
            status: Some(Status::internal(message)),
            ..OutFields::default()
        };
        let _ = respond.send_response(OutResponse { status, fields }, true);
    }

    /// The `content-type` of a response.
    fn content_type(&self) -> HeaderValue {
        self.content_type
            .clone()
            .unwrap_or_else(|| HeaderValue::from_static("application/grpc"))
    }

    fn trailers_only(&mut self, status: Status) {
        self.trace.end(&status, None);
        self.finished = true;
        let Some(mut respond) = self.pending.take() else {
            self.trailers(status, Metadata::new());
            return;
        };
        let fields = OutFields {
            content_type: Some(self.content_type()),
            accept_encoding: Some(compression::ACCEPT_ENCODING),
            status: Some(status),
            ..OutFields::default()
        };
        let _ = respond.send_response(OutResponse::ok(fields), true);
    }

    /// Applies the handler's compression choices for its responses. An
    /// encoding the client does not accept is not used.
    fn settle_compression<E: Encoder>(
        &self,
        writer: &mut FrameWriter<E>,
        choice: Option<Option<Encoding>>,
        switch: Option<crate::MessageCompression>,
    ) {
        if let Some(choice) = choice {
            writer.set_compression(choice.filter(|enc| compression::accepts(self.accept_encoding.as_ref(), *enc)));
        }
        writer.set_switch(switch);
    }

    /// Sends the response headers if not sent yet. False if the stream is gone.
    fn start(&mut self, metadata: Metadata, encoding: Option<Encoding>) -> bool {
        let Some(mut respond) = self.pending.take() else {
            return self.stream.is_some();
        };
        self.trace.record_headers(&metadata);
        let fields = OutFields {
            content_type: Some(self.content_type()),
            encoding: encoding.map(Encoding::name),
            accept_encoding: Some(compression::ACCEPT_ENCODING),
            status: None,
            metadata: metadata.into_headers(),
        };
        match respond.send_response(OutResponse::ok(fields), false) {
            Ok(s) => {
                self.stream = s;
                self.stream.is_some()
            }
            Err(_) => false,
        }
    }

    /// Ends the call with `status` and trailing metadata.
    fn trailers(&mut self, status: Status, extra: Metadata) {
        let status = if extra.is_empty() {
            status
        } else {
            let mut md = extra;
            md.extend(status.metadata().clone());
            status.with_metadata(md)
        };
        if self.pending.is_some() {
            self.trailers_only(status);
            return;
        }
        self.trace.end(&status, None);
        self.finished = true;
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.send_trailers(OutFields {
                status: Some(status),
                ..OutFields::default()
            });
        }
    }
}

/// How running the handler ended.
enum Outcome<T> {
    Done(Result<T, Status>),
    /// The client reset the stream; nothing more is sent.
    Cancelled,
}

/// The call's deadline as a timer, allocated only for calls that have one.
struct Expiry(Option<Pin<Box<tokio::time::Sleep>>>);

impl Expiry {
    fn new(deadline: Option<Instant>) -> Expiry {
        Expiry(deadline.map(|d| Box::pin(tokio::time::sleep_until(d.into()))))
    }

    /// Ready once the deadline has passed; never for a call without one.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// Runs `work` until it finishes, the client cancels, or the deadline passes.
/// It borrows everything, so the call's state is stored once, in the caller.
fn guarded<'a, T, W>(
    respond: &'a mut Responder,
    expiry: &'a mut Expiry,
    mut work: Pin<&'a mut W>,
) -> impl Future<Output = Outcome<T>> + 'a
where
    W: Future<Output = Result<T, Status>>,
{
    poll_fn(move |cx| {
        if let Poll::Ready(out) = respond.trace.in_scope(|| work.as_mut().poll(cx)) {
            return Poll::Ready(Outcome::Done(out));
        }
        if respond.poll_reset(cx).is_ready() {
            return Poll::Ready(Outcome::Cancelled);
        }
        if expiry.poll(cx).is_ready() {
            return Poll::Ready(Outcome::Done(Err(Status::deadline_exceeded(
                "deadline exceeded while handling the call",
            ))));
        }
        Poll::Pending
    })
}

/// A call taken apart for running, with its reader and writer set up.
struct Parts<E> {
    head: CallHead,
    body: RecvBody,
    respond: Responder,
    config: Arc<ServerConfig>,
    reader: FrameReader,
    writer: FrameWriter<E>,
    expiry: Expiry,
    trace: CallTrace,
}

impl ServerCall {
    /// The full method path, e.g. `/helloworld.Greeter/SayHello`.
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The service name, e.g. `helloworld.Greeter`.
    #[inline]
    pub fn service(&self) -> &str {
        self.head.service()
    }

    /// The method name, e.g. `SayHello`.
    #[inline]
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The services of the server this call came to, for reflection.
    #[cfg(feature = "reflection")]
    pub(crate) fn registered_services(&self) -> &[super::RegisteredService] {
        &self.config.services
    }

    /// Answers UNIMPLEMENTED: no such service or method.
    pub async fn unimplemented(mut self) {
        let trace = self.trace(false);
        self.respond.trace = trace;
        let msg = format!("unknown method {} for service {}", self.method(), self.service());
        self.respond.trailers_only(Status::unimplemented(msg));
    }

    /// The call's span, and whichever of the server's stats handlers
    /// follow it. `registered`: one of the server's methods, not one it
    /// answers UNIMPLEMENTED.
    #[inline]
    fn trace(&mut self, registered: bool) -> CallTrace {
        let head = &mut self.head;
        let span = stats::server_span(head);
        let (path, peer, started) = (&head.path, head.remote_addr, self.started);
        CallTrace::start(
            span,
            &self.config.stats,
            || CallInfo {
                side: Side::Server,
                path: path.clone(),
                registered,
                target: None,
                peer,
                started: started.unwrap_or_else(Instant::now),
            },
            &mut head.metadata,
            None,
        )
    }

    fn into_parts<E: Encoder>(mut self, encoder: E) -> Parts<E> {
        let trace = self.trace(true);
        let ServerCall {
            head,
            body,
            budget,
            mut respond,
            config,
            request_encoding,
            response_encoding,
            started: _,
        } = self;
        respond.trace = trace.clone();
        let mut reader = FrameReader::new(config.max_recv_message_size, request_encoding);
        reader.set_tally(trace.tally());
        let mut writer = FrameWriter::new(encoder, response_encoding, config.max_send_message_size);
        writer.set_tally(trace.tally());
        Parts {
            reader,
            writer,
            trace,
            expiry: Expiry::new(head.deadline),
            body: RecvBody::with_budget(body, false, budget),
            head,
            respond,
            config,
        }
    }

    // The four runners below are plain functions that take the call apart
    // and return one `async move` block owning the parts. What it awaits
    // borrows them: an `async fn` stores its arguments, then each nested
    // future stores its own copy, and every move of the call's future copies
    // all of that.

    /// Runs a unary handler: one request message, one response message.
    // Always inlined, so that the call's future is built where it will be
    // kept: returned, it would be copied (some 1,500 bytes) once more.
    #[inline(always)]
    pub fn unary<C, F, Fut>(self, mut codec: C, handler: F) -> impl Future<Output = ()>
    where
        C: Codec,
        F: FnOnce(Request<C::Decode>) -> Fut + Send,
        Fut: Future<Output = Result<Response<C::Encode>, Status>> + Send,
    {
        let mut decoder = codec.decoder();
        let Parts {
            head,
            mut body,
            mut respond,
            config,
            mut reader,
            mut writer,
            mut expiry,
            trace,
        } = self.into_parts(codec.encoder());
        // The handler runs in the call's span and its stats handlers'
        // scopes (`guarded`), and so does writing the response; a wrapper
        // would make the future bigger and move it once more.
        Scoped::new(async move {
            let work = std::pin::pin!(async {
                let request = single_request(&config, head, &mut body, &mut reader, &mut decoder).await?;
                handler(request).await
            });
            if let Outcome::Done(result) = guarded(&mut respond, &mut expiry, work).await {
                trace.in_scope(|| respond_single(&mut respond, &mut writer, result));
            }
        })
    }

    /// Runs a client-streaming handler: a stream of requests, one response.
    pub fn client_streaming<C, F, Fut>(self, mut codec: C, handler: F) -> impl Future<Output = ()>
    where
        C: Codec,
        F: FnOnce(Request<Streaming<C::Decode>>) -> Fut + Send,
        Fut: Future<Output = Result<Response<C::Encode>, Status>> + Send,
    {
        let decoder = codec.decoder();
        let Parts {
            head,
            body,
            mut respond,
            config,
            reader,
            mut writer,
            mut expiry,
            trace,
        } = self.into_parts(codec.encoder());
        // Boxed: a streaming call lives long and pays one allocation, so
        // that a service's unary calls need not carry its streaming state.
        Box::pin(trace.traced(Scoped::new(async move {
            let work = std::pin::pin!(async {
                let head = intercept(&config, head).await?;
                let stream = Streaming::new(body, reader, decoder, None, None);
                handler(request_from(head, stream)).await
            });
            if let Outcome::Done(result) = guarded(&mut respond, &mut expiry, work).await {
                respond_single(&mut respond, &mut writer, result);
            }
        })))
    }

    /// Runs a server-streaming handler: one request, a stream of responses.
    pub fn server_streaming<C, F, Fut, S>(self, mut codec: C, handler: F) -> impl Future<Output = ()>
    where
        C: Codec,
        F: FnOnce(Request<C::Decode>) -> Fut + Send,
        Fut: Future<Output = Result<Response<S>, Status>> + Send,
        S: Stream<Item = Result<C::Encode, Status>> + Send + 'static,
    {
        let mut decoder = codec.decoder();
        let Parts {
            head,
            mut body,
            mut respond,
            config,
            mut reader,
            mut writer,
            mut expiry,
            trace,
        } = self.into_parts(codec.encoder());
        // Boxed: a streaming call lives long and pays one allocation, so
        // that a service's unary calls need not carry its streaming state.
        Box::pin(trace.traced(Scoped::new(async move {
            let work = std::pin::pin!(async {
                let request = single_request(&config, head, &mut body, &mut reader, &mut decoder).await?;
                handler(request).await
            });
            match guarded(&mut respond, &mut expiry, work).await {
                Outcome::Cancelled => {}
                Outcome::Done(Err(status)) => respond.trailers_only(status),
                Outcome::Done(Ok(response)) => respond_stream(&mut respond, &mut writer, response, &mut expiry).await,
            }
        })))
    }

    /// Runs a bidirectional handler: streams both ways. The handler may read
    /// requests while its response stream is being sent.
    pub fn streaming<C, F, Fut, S>(self, mut codec: C, handler: F) -> impl Future<Output = ()>
    where
        C: Codec,
        F: FnOnce(Request<Streaming<C::Decode>>) -> Fut + Send,
        Fut: Future<Output = Result<Response<S>, Status>> + Send,
        S: Stream<Item = Result<C::Encode, Status>> + Send + 'static,
    {
        let decoder = codec.decoder();
        let Parts {
            head,
            body,
            mut respond,
            config,
            reader,
            mut writer,
            mut expiry,
            trace,
        } = self.into_parts(codec.encoder());
        // Boxed: a streaming call lives long and pays one allocation, so
        // that a service's unary calls need not carry its streaming state.
        Box::pin(trace.traced(Scoped::new(async move {
            let work = std::pin::pin!(async {
                let head = intercept(&config, head).await?;
                let stream = Streaming::new(body, reader, decoder, None, None);
                handler(request_from(head, stream)).await
            });
            match guarded(&mut respond, &mut expiry, work).await {
                Outcome::Cancelled => {}
                Outcome::Done(Err(status)) => respond.trailers_only(status),
                Outcome::Done(Ok(response)) => respond_stream(&mut respond, &mut writer, response, &mut expiry).await,
            }
        })))
    }
}

/// Runs the server's interceptors, if it has any. Their future is boxed, so
/// a call on a server without interceptors carries none of it.
async fn intercept(config: &ServerConfig, head: CallHead) -> Result<CallHead, Status> {
    if config.interceptors.is_empty() {
        Ok(head)
    } else {
        Box::pin(config.interceptors.run(head)).await
    }
}

/// Intercepts, then reads and decodes the one request message of a unary or
/// server-streaming call.
async fn single_request<D: Decoder>(
    config: &ServerConfig,
    head: CallHead,
    body: &mut RecvBody,
    reader: &mut FrameReader,
    decoder: &mut D,
) -> Result<Request<D::Item>, Status> {
    let head = intercept(config, head).await?;
    let (bytes, compressed) = read_one(body, reader).await?;
    let mut request = request_from(head, decoder.decode(bytes)?);
    if compressed {
        request.extensions.insert(crate::MessageCompressed);
    }
    Ok(request)
}

fn request_from<T>(head: CallHead, message: T) -> Request<T> {
    let timeout = head.deadline.map(|d| d.saturating_duration_since(Instant::now()));
    Request {
        metadata: head.metadata,
        message,
        extensions: head.extensions,
        timeout,
        deadline: head.deadline,
        compression: None,
        message_compression: None,
        cancel: None,
        parent: None,
        remote_addr: head.remote_addr,
        wait_for_ready: None,
    }
}

/// Reads the single request message of a unary or server-streaming call. It
/// does not wait for END_STREAM once the message is whole.
fn read_one<'a>(
    body: &'a mut RecvBody,
    reader: &'a mut FrameReader,
) -> impl Future<Output = Result<(Bytes, bool), Status>> + 'a {
    poll_fn(move |cx| {
        loop {
            if let Some(msg) = reader.next()? {
                body.settle(reader);
                return Poll::Ready(Ok((msg, reader.last_compressed())));
            }
            match std::task::ready!(body.poll_into(reader, cx)) {
                Some(Ok(())) => {}
                Some(Err(status)) => return Poll::Ready(Err(status)),
                None => {
                    return Poll::Ready(Err(Status::internal(
                        "the client sent no request message for a call that needs one",
                    )));
                }
            }
        }
    })
}

/// Sends a single response message with its status, or the error status.
fn respond_single<E: Encoder>(
    respond: &mut Responder,
    writer: &mut FrameWriter<E>,
    result: Result<Response<E::Item>, Status>,
) {
    let response = match result {
        Ok(r) => r,
        Err(status) => return respond.trailers_only(status),
    };
    let Response {
        metadata,
        message,
        trailers,
        compression,
        message_compression,
        ..
    } = response;
    respond.settle_compression(writer, compression, message_compression);
    if let Err(status) = writer.write(message, true) {
        return respond.trailers_only(status);
    }
    let encoding = writer.compression();
    if !respond.start(metadata, encoding) {
        return;
    }
    if let Some(stream) = respond.stream.as_mut()
        && stream.queue_data(writer.take(), false).is_err()
    {
        return;
    }
    respond.trailers(Status::ok(), trailers);
}

/// Sends a stream of response messages, batching those that are ready
/// together, then the status.
async fn respond_stream<E, S>(
    respond: &mut Responder,
    writer: &mut FrameWriter<E>,
    response: Response<S>,
    expiry: &mut Expiry,
) where
    E: Encoder,
    S: Stream<Item = Result<E::Item, Status>> + Send,
{
    let Response {
        metadata,
        message: stream,
        trailers,
        compression,
        message_compression,
        ..
    } = response;
    respond.settle_compression(writer, compression, message_compression);
    let encoding = writer.compression();
    let mut stream = std::pin::pin!(stream);
    let mut headers = Some(metadata);
    let status = loop {
        let first = tokio::select! {
            biased;
            item = stream.next() => item,
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return,
            _ = poll_fn(|cx| expiry.poll(cx)) => break Status::deadline_exceeded("deadline exceeded while sending responses"),
        };
        let mut end = None;
        match first {
            None => break Status::ok(),
            Some(Err(status)) => break status,
            Some(Ok(msg)) => {
                if let Err(status) = writer.write(msg, true) {
                    break status;
                }
            }
        }
        // Take whatever else is ready now, so it leaves in the same write.
        while writer.pending() < BATCH_LIMIT {
            match stream.next().now_or_never() {
                Some(Some(Ok(msg))) => {
                    if let Err(status) = writer.write(msg, true) {
                        end = Some(status);
                        break;
                    }
                }
                Some(Some(Err(status))) => {
                    end = Some(status);
                    break;
                }
                Some(None) => {
                    end = Some(Status::ok());
                    break;
                }
                None => break,
            }
        }
        if let Some(md) = headers.take()
            && !respond.start(md, encoding)
        {
            return;
        }
        let Some(send) = respond.stream.as_mut() else { return };
        let data = writer.take();
        let sent = tokio::select! {
            r = send.send_data(data, false) => r,
            _ = poll_fn(|cx| expiry.poll(cx)) => break Status::deadline_exceeded("deadline exceeded while sending responses"),
        };
        if sent.is_err() {
            return;
        }
        if let Some(status) = end {
            break status;
        }
    };
    // Headers the handler set are sent even when no message was: only a
    // call with no custom headers ends as trailers-only.
    if let Some(md) = headers.take()
        && !md.is_empty()
        && !respond.start(md, encoding)
    {
        return;
    }
    respond.trailers(status, trailers);
}

#[cfg(test)]
mod tests {
    use super::method_start;

    #[test]
    fn a_valid_path_is_one_service_and_one_method_both_named() {
        for (good, method) in [
            ("/a.B/C", "C"),
            ("/grpc.testing.BenchmarkService/UnaryCall", "UnaryCall"),
            ("/s/m", "m"),
        ] {
            let at = method_start(good).unwrap_or_else(|| panic!("{good} is valid"));
            assert_eq!(&good[at..], method, "{good}");
        }
        for bad in ["", "/", "//", "/a", "/a/", "//m", "a/b", "/a/b/c", "/a//b", "/a/b/"] {
            assert_eq!(method_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_head_reads_its_parts_at_the_checked_split_or_searches_for_them() {
        let mut head = super::CallHead::placeholder();
        head.path = http::uri::PathAndQuery::from_static("/pkg.Greeter/SayHello");
        let searched = (head.service().to_owned(), head.method().to_owned());
        head.method_start = method_start(head.path()).unwrap() as u16;
        assert_eq!((head.service(), head.method()), ("pkg.Greeter", "SayHello"));
        assert_eq!((searched.0.as_str(), searched.1.as_str()), ("pkg.Greeter", "SayHello"));
    }
}
