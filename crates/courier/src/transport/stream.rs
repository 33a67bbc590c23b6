//! The transport's streams, as the rest of Courier sees them: open or
//! accept a stream, send headers, data and trailers, receive them, reset
//! it, and learn why it ended. Only this module and its siblings in
//! `transport` know the HTTP/2 implementation underneath (h2 today), so
//! replacing it changes nothing above this seam.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;

use super::body::RecvBody;
use super::keepalive::{StreamCounter, StreamToken};
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
    fn to_h2(self) -> h2::Reason {
        match self {
            Reason::InternalError => h2::Reason::INTERNAL_ERROR,
            Reason::RefusedStream => h2::Reason::REFUSED_STREAM,
            Reason::Cancel => h2::Reason::CANCEL,
        }
    }
}

/// Why a stream or its connection failed, as the transport saw it.
#[derive(Debug)]
pub(crate) struct StreamError(h2::Error);

impl From<h2::Error> for StreamError {
    fn from(e: h2::Error) -> StreamError {
        StreamError(e)
    }
}

impl StreamError {
    /// Whether the peer said it never processed the stream: it reset it
    /// with REFUSED_STREAM, or its GOAWAY's last stream is below it. Such a
    /// call may be sent again, whatever it was.
    pub(crate) fn is_unprocessed(&self) -> bool {
        let e = &self.0;
        e.is_remote() && (e.is_go_away() || (e.is_reset() && e.reason() == Some(h2::Reason::REFUSED_STREAM)))
    }

    /// Whether the connection is closing (GOAWAY), rather than the stream
    /// alone being reset.
    pub(crate) fn is_go_away(&self) -> bool {
        self.0.is_go_away()
    }

    /// The call's status for this failure, per PROTOCOL-HTTP2.md's mapping
    /// of HTTP/2 error codes.
    pub(crate) fn to_status(&self) -> Status {
        let err = &self.0;
        if let Some(reason) = err.reason() {
            let code = match reason {
                h2::Reason::REFUSED_STREAM => Code::Unavailable,
                h2::Reason::CANCEL => Code::Cancelled,
                h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
                h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
                _ if err.is_go_away() => Code::Unavailable,
                _ => Code::Internal,
            };
            let what = if err.is_go_away() {
                "connection closed by GOAWAY"
            } else {
                "stream reset"
            };
            if reason == h2::Reason::REFUSED_STREAM && !err.is_go_away() {
                return Status::new(
                    code,
                    "the server refused the stream (REFUSED_STREAM) before processing the call: it is at its \
                     limit of concurrent streams or of buffered request bytes for this connection; the call \
                     can safely be retried",
                );
            }
            return Status::new(code, format!("{what}: {reason:?}"));
        }
        if err.is_io() {
            return Status::unavailable(format!("connection error: {err}"));
        }
        Status::unavailable(format!("transport error: {err}"))
    }
}

/// A stream's count among its connection's open streams, shared by its
/// halves: the stream is open until both are gone. `None` on connections
/// that do not count.
pub(crate) type Counted = Option<Arc<StreamToken>>;

/// The sending half of a stream: request data (client) or response data
/// and trailers (server).
pub(crate) struct SendStream(h2::SendStream<Bytes>, #[allow(dead_code)] Counted);

impl SendStream {
    /// Sends `data` once the stream has send capacity, so that a fast
    /// producer waits for a slow peer instead of buffering without bound.
    /// Safe to drop while it waits: nothing is sent then.
    pub(crate) async fn send_data(&mut self, data: Bytes, end: bool) -> Result<(), StreamError> {
        let stream = &mut self.0;
        if !data.is_empty() {
            stream.reserve_capacity(data.len());
            while stream.capacity() == 0 {
                match poll_fn(|cx| stream.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => break,
                }
            }
        }
        stream.send_data(data, end).map_err(Into::into)
    }

    /// Queues `data` without waiting for capacity: for a request's one
    /// message, which is bounded by the message size limit.
    pub(crate) fn queue_data(&mut self, data: Bytes, end: bool) -> Result<(), StreamError> {
        self.0.send_data(data, end).map_err(Into::into)
    }

    /// Ends the stream with trailers.
    pub(crate) fn send_trailers(&mut self, trailers: HeaderMap) -> Result<(), StreamError> {
        self.0.send_trailers(trailers).map_err(Into::into)
    }

    /// Resets the stream.
    pub(crate) fn reset(&mut self, reason: Reason) {
        self.0.send_reset(reason.to_h2());
    }

    /// Ready once the peer has reset the stream (or it failed).
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_reset(cx).map(|_| ())
    }

    /// Waits until the peer resets the stream.
    pub(crate) async fn reset_received(&mut self) {
        poll_fn(|cx| self.poll_reset(cx)).await
    }
}

/// The receiving half of a stream, before [`RecvBody`] takes it.
pub(crate) struct RecvStream(pub(super) h2::RecvStream);

/// A client stream's response headers, to come.
pub(crate) struct ResponseFuture(h2::client::ResponseFuture, Counted);

impl Future for ResponseFuture {
    type Output = Result<http::Response<RecvBody>, StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.0).poll(cx).map(|r| {
            let counted = this.1.take();
            r.map(|response| response.map(|body| RecvBody::new(RecvStream(body), true).counted(counted)))
                .map_err(Into::into)
        })
    }
}

/// Opens streams on a client connection.
pub(crate) struct Opener(h2::client::SendRequest<Bytes>, Option<Arc<StreamCounter>>);

impl Opener {
    /// Opens streams with `send`, counting them in `streams` if given.
    pub(crate) fn new(send: h2::client::SendRequest<Bytes>, streams: Option<Arc<StreamCounter>>) -> Opener {
        Opener(send, streams)
    }

    /// Waits until the connection can take another stream; fails if it is
    /// closing or closed.
    pub(crate) async fn ready(&mut self) -> Result<(), StreamError> {
        poll_fn(|cx| self.0.poll_ready(cx)).await.map_err(Into::into)
    }

    /// Opens a stream: the request's headers go out, and its body, if any,
    /// follows on the returned [`SendStream`]. Call after
    /// [`Opener::ready`].
    pub(crate) fn open(&mut self, request: http::Request<()>) -> Result<(ResponseFuture, SendStream), StreamError> {
        let (response, stream) = self.0.send_request(request, false)?;
        let counted = self.1.as_ref().map(|streams| Arc::new(streams.token()));
        Ok((ResponseFuture(response, counted.clone()), SendStream(stream, counted)))
    }
}

/// How a server answers one stream: its response headers, or a reset.
pub(crate) struct Respond(h2::server::SendResponse<Bytes>, Counted);

impl Respond {
    /// Answers with `respond`, counting the stream in `streams` if given.
    pub(crate) fn new(respond: h2::server::SendResponse<Bytes>, streams: Option<&Arc<StreamCounter>>) -> Respond {
        Respond(respond, streams.map(|s| Arc::new(s.token())))
    }

    /// Sends the response headers; with `end`, they end the stream
    /// (a Trailers-Only response) and no send stream is returned.
    pub(crate) fn send_response(
        &mut self,
        response: http::Response<()>,
        end: bool,
    ) -> Result<Option<SendStream>, StreamError> {
        let stream = self.0.send_response(response, end)?;
        Ok((!end).then(|| SendStream(stream, self.1.take())))
    }

    /// Resets the stream.
    pub(crate) fn reset(&mut self, reason: Reason) {
        self.0.send_reset(reason.to_h2());
    }

    /// Ready once the peer has reset the stream.
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_reset(cx).map(|_| ())
    }
}
