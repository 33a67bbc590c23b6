//! The transport's streams, as the rest of Courier sees them: open or
//! accept a stream, send headers, data and trailers, receive them, reset
//! it, and learn why it ended. Only this module and its siblings in
//! `transport` know the HTTP/2 engine underneath, so nothing above this
//! seam depends on how it works.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use bytes::Bytes;

use super::body::RecvBody;
use super::engine::conn::{self, Failure};
use super::engine::frame::ErrorCode;
use super::head::{OutFields, OutRequest, OutResponse, ResponseHead};
use super::keepalive::{StreamCounter, StreamToken};
use crate::channelz::server::ServerEntry;
use crate::status::{Code, Status};

/// An HTTP/2 error code (RFC 9113 §7), as a stream is reset with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// `INTERNAL_ERROR`: the sender failed.
    InternalError,
    /// `REFUSED_STREAM`: the stream was not processed; it may be retried.
    RefusedStream,
    /// `CANCEL`: the stream is no longer wanted.
    Cancel,
}

impl Reason {
    fn code(self) -> ErrorCode {
        match self {
            Reason::InternalError => ErrorCode::InternalError,
            Reason::RefusedStream => ErrorCode::RefusedStream,
            Reason::Cancel => ErrorCode::Cancel,
        }
    }
}

/// Why a stream or its connection failed, as the transport saw it.
#[derive(Debug)]
pub(crate) struct StreamError(Failure);

impl From<Failure> for StreamError {
    fn from(e: Failure) -> StreamError {
        StreamError(e)
    }
}

impl StreamError {
    /// Whether the peer said it never processed the stream: it reset it
    /// with REFUSED_STREAM, or its GOAWAY's last stream is below it. Such a
    /// call may be sent again, whatever it was.
    pub(crate) fn is_unprocessed(&self) -> bool {
        match &self.0 {
            Failure::Reset { code, remote } => *remote && *code == ErrorCode::RefusedStream,
            Failure::GoAway { unprocessed, .. } => *unprocessed,
            _ => false,
        }
    }

    /// Whether the connection is closing (GOAWAY), rather than the stream
    /// alone being reset.
    pub(crate) fn is_go_away(&self) -> bool {
        matches!(self.0, Failure::GoAway { .. })
    }

    /// The call's status for this failure, per PROTOCOL-HTTP2.md's mapping
    /// of HTTP/2 error codes.
    pub(crate) fn to_status(&self) -> Status {
        match &self.0 {
            Failure::Reset { code, remote } => {
                let status = match code {
                    ErrorCode::RefusedStream if *remote => {
                        return Status::new(
                            Code::Unavailable,
                            "the server refused the stream (REFUSED_STREAM) before processing the call: it is at \
                             its limit of concurrent streams or of buffered request bytes for this connection; the \
                             call can safely be retried",
                        );
                    }
                    ErrorCode::RefusedStream => Code::Unavailable,
                    ErrorCode::Cancel => Code::Cancelled,
                    ErrorCode::EnhanceYourCalm => Code::ResourceExhausted,
                    ErrorCode::InadequateSecurity => Code::PermissionDenied,
                    _ => Code::Internal,
                };
                let by = if *remote { "by the peer" } else { "locally" };
                Status::new(status, format!("stream reset {by}: {code}"))
            }
            Failure::GoAway {
                code,
                debug,
                unprocessed,
                remote,
            } => {
                let by = if *remote { "the peer's" } else { "this side's" };
                let mut message = format!("connection closed by {by} GOAWAY: {code}");
                if !debug.is_empty() {
                    message.push_str(&format!(" ({})", String::from_utf8_lossy(debug)));
                }
                if *unprocessed {
                    message.push_str("; the call was not processed");
                }
                let status = match code {
                    ErrorCode::EnhanceYourCalm if !*unprocessed => Code::ResourceExhausted,
                    ErrorCode::InadequateSecurity => Code::PermissionDenied,
                    _ => Code::Unavailable,
                };
                Status::new(status, message)
            }
            Failure::Io(why) => Status::unavailable(why.to_string()),
            Failure::Local(why) => Status::unavailable(format!("transport error: {why}")),
        }
    }
}

/// A stream's count among its connection's open streams, shared by its
/// halves: the stream is open until both are gone. `None` on connections
/// that do not count.
pub(crate) type Counted = Option<Arc<StreamToken>>;

/// A server call not yet counted as ended in its server's channelz entry:
/// it ends when its status goes out (succeeded for OK, failed otherwise),
/// or, dropped before that (reset, or its connection gone), failed.
pub(crate) struct CallOutcome(Option<Arc<ServerEntry>>);

impl CallOutcome {
    /// A call of `server` that started at `at` (nanoseconds since the Unix
    /// epoch), and is counted so.
    pub(crate) fn started(server: &Arc<ServerEntry>, at: u64) -> CallOutcome {
        server.call_started(at);
        CallOutcome(Some(server.clone()))
    }

    /// No call to count: a client stream, or a stream refused before it
    /// became a call.
    pub(crate) const NONE: CallOutcome = CallOutcome(None);

    /// The call's status went out in `fields`, if they carry one.
    fn status_sent(&mut self, fields: &OutFields) {
        if let Some(status) = &fields.status
            && let Some(server) = self.0.take()
        {
            server.call_ended(status.code() == Code::Ok);
        }
    }
}

impl Drop for CallOutcome {
    fn drop(&mut self) {
        if let Some(server) = self.0.take() {
            server.call_ended(false);
        }
    }
}

/// The sending half of a stream: request data (client) or response data
/// and trailers (server).
pub(crate) struct SendStream {
    half: conn::SendHalf,
    /// The stream's count among its connection's open streams: never read,
    /// held so that dropping this half gives the count up.
    _counted: Counted,
    /// A server call's count in its server's channelz entry, until its
    /// trailers go out.
    outcome: CallOutcome,
}

impl SendStream {
    /// Sends `data` once the stream's send buffer has room, so that a fast
    /// producer waits for a slow peer instead of buffering without bound.
    /// Safe to drop while it waits: nothing is sent then.
    pub(crate) async fn send_data(&mut self, data: Bytes, end: bool) -> Result<(), StreamError> {
        self.half.send_data(data, end).await.map_err(Into::into)
    }

    /// Queues `data` without waiting for room: for a request's one
    /// message, which is bounded by the message size limit.
    pub(crate) fn queue_data(&mut self, data: Bytes, end: bool) -> Result<(), StreamError> {
        self.half.queue_data(data, end).map_err(Into::into)
    }

    /// Ends the stream with trailers.
    pub(crate) fn send_trailers(&mut self, trailers: OutFields) -> Result<(), StreamError> {
        self.outcome.status_sent(&trailers);
        self.half.send_trailers(trailers).map_err(Into::into)
    }

    /// Resets the stream.
    pub(crate) fn reset(&mut self, reason: Reason) {
        self.half.reset(reason.code());
    }

    /// Ready once the peer has reset the stream (or it failed).
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.half.poll_reset(cx)
    }

    /// Waits until the peer resets the stream.
    pub(crate) async fn reset_received(&mut self) {
        poll_fn(|cx| self.poll_reset(cx)).await
    }
}

/// The receiving half of a stream, before [`RecvBody`] takes it.
pub(crate) struct RecvStream(pub(super) conn::RecvHalf);

/// A client stream's response headers, to come.
pub(crate) struct ResponseFuture(conn::AwaitResponse, Counted);

impl Future for ResponseFuture {
    type Output = Result<(ResponseHead, RecvBody), StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.0).poll(cx).map(|r| {
            let counted = this.1.take();
            r.map(|(head, body)| (head, RecvBody::new(RecvStream(body), true).counted(counted)))
                .map_err(Into::into)
        })
    }
}

/// Opens streams on a client connection.
pub(crate) struct Opener(conn::Opener, Option<Arc<StreamCounter>>);

impl Opener {
    /// Opens streams with `opener`, counting them in `streams` if given.
    pub(crate) fn new(opener: conn::Opener, streams: Option<Arc<StreamCounter>>) -> Opener {
        Opener(opener, streams)
    }

    /// Fails if the connection is closing or closed.
    pub(crate) async fn ready(&mut self) -> Result<(), StreamError> {
        self.0.ready().map_err(Into::into)
    }

    /// Opens a stream: the request's headers go out, and its body, if any,
    /// follows on the returned [`SendStream`]. Call after
    /// [`Opener::ready`].
    pub(crate) fn open(&mut self, request: OutRequest) -> Result<(ResponseFuture, SendStream), StreamError> {
        let (response, stream) = self.0.open(request)?;
        let counted = self.1.as_ref().map(|streams| Arc::new(streams.token()));
        Ok((
            ResponseFuture(response, counted.clone()),
            SendStream {
                half: stream,
                _counted: counted,
                outcome: CallOutcome::NONE,
            },
        ))
    }
}

/// How a server answers one stream: its response headers, or a reset.
pub(crate) struct Respond(conn::Responder, Counted, CallOutcome);

impl Respond {
    /// Answers with `respond`, counting the stream in `streams` if given,
    /// and the call in its server's channelz entry with `outcome`.
    pub(crate) fn new(respond: conn::Responder, streams: Option<&Arc<StreamCounter>>, outcome: CallOutcome) -> Respond {
        Respond(respond, streams.map(|s| Arc::new(s.token())), outcome)
    }

    /// Sends the response headers; with `end`, they end the stream
    /// (a Trailers-Only response) and no send stream is returned.
    pub(crate) fn send_response(
        &mut self,
        response: OutResponse,
        end: bool,
    ) -> Result<Option<SendStream>, StreamError> {
        if end {
            self.2.status_sent(&response.fields);
        }
        let stream = self.0.send_response(response, end)?;
        Ok(stream.map(|half| SendStream {
            half,
            _counted: self.1.take(),
            outcome: std::mem::replace(&mut self.2, CallOutcome::NONE),
        }))
    }

    /// Resets the stream.
    pub(crate) fn reset(&mut self, reason: Reason) {
        self.0.reset(reason.code());
    }

    /// Ready once the peer has reset the stream.
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_reset(cx)
    }
}
