//! Streaming: the receiving side of a stream of messages, on the client (a
//! streamed response) or the server (a streamed request).

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use crate::client::CancelHandle;
use crate::client::call::{CANCELLED_BY_CLIENT, CallHold, PendingHead};
use crate::codec::{Decoder, FrameReader};
use crate::metadata::Metadata;
use crate::stats::CallTrace;
use crate::status::{Code, Status};
use crate::transport::body::RecvBody;

/// A stream of received messages.
///
/// Each item is a message or the status that ended the stream. On the client
/// an error status from the server arrives as the last item; a successful end
/// is the end of the stream, after which [`Streaming::trailers`] holds the
/// trailing metadata.
///
/// Use it as a [`Stream`], or call [`Streaming::message`] in a loop.
pub struct Streaming<T> {
    state: State,
    body: Option<RecvBody>,
    reader: FrameReader,
    decoder: Box<dyn Decoder<Item = T>>,
    headers: Option<Metadata>,
    trailers: Option<Metadata>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Where the task sending a request stream leaves its error, if any.
    send_error: Option<Arc<Mutex<Option<Status>>>>,
    /// Dropped with the stream: stops the task sending the request stream.
    sender: Option<AbortOnDrop>,
    /// Client: cancels the call from elsewhere.
    cancel: Option<CancelHandle>,
    /// Client: the call's place among its connection's streams, and its
    /// count among the channel's calls, given up with the stream.
    hold: Option<CallHold>,
    /// Client: the call's span and stats, ended with the stream.
    trace: CallTrace,
}

enum State {
    /// Client: waiting for the response headers.
    Head(PendingHead),
    Reading,
    Trailers,
    /// Cancelled by [`Streaming::cancel`] or the call's [`CancelHandle`]:
    /// this status (CANCELLED, or DEADLINE_EXCEEDED for a call whose parent
    /// ended at its deadline) is the next item.
    Cancelled(Status),
    Done,
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The parts of a client call's sending side that a stream keeps alive.
pub(crate) struct SendSide {
    pub(crate) error: Arc<Mutex<Option<Status>>>,
    pub(crate) task: AbortOnDrop,
}

impl<T: 'static> Streaming<T> {
    fn with_state(
        state: State,
        body: Option<RecvBody>,
        reader: FrameReader,
        decoder: impl Decoder<Item = T>,
        deadline: Option<tokio::time::Instant>,
        send: Option<SendSide>,
    ) -> Streaming<T> {
        let (send_error, sender) = match send {
            Some(s) => (Some(s.error), Some(s.task)),
            None => (None, None),
        };
        Streaming {
            state,
            body,
            reader,
            decoder: Box::new(decoder),
            headers: None,
            trailers: None,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            send_error,
            sender,
            cancel: None,
            hold: None,
            trace: CallTrace::default(),
        }
    }

    /// Client: the call's span, entered while the stream is polled, and its
    /// stats, ended with it.
    pub(crate) fn with_trace(mut self, trace: CallTrace) -> Streaming<T> {
        self.trace = trace;
        self
    }

    /// Client: the call ended with `status`.
    fn end_trace(&mut self, status: &Status) {
        std::mem::take(&mut self.trace).end(status, None);
    }

    /// Client: the call ended OK, with these trailers.
    fn end_trace_ok(&mut self) {
        if let Some(hold) = &mut self.hold {
            hold.succeeded();
        }
        std::mem::take(&mut self.trace).end_ok(None, self.trailers.as_ref().unwrap_or(&Metadata::new()));
    }

    /// Client: what the call holds while its stream lives.
    pub(crate) fn with_hold(mut self, hold: CallHold) -> Streaming<T> {
        self.hold = Some(hold);
        self
    }

    /// Client: the call's cancel handle, if its request asked for one.
    pub(crate) fn with_cancel(mut self, cancel: Option<CancelHandle>) -> Streaming<T> {
        self.cancel = cancel;
        self
    }

    /// Client: cancels the call if its handle was cancelled; true if so.
    fn poll_cancel(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(handle) = &self.cancel else { return false };
        if matches!(self.state, State::Done) || !handle.poll_cancelled(cx) {
            return false;
        }
        let deadline = self.deadline.as_ref().map(|d| d.deadline().into_std());
        let status = handle.status(deadline);
        self.cancel = None;
        self.cancel_with(status);
        true
    }

    /// A stream reading `body`.
    pub(crate) fn new(
        body: RecvBody,
        reader: FrameReader,
        decoder: impl Decoder<Item = T>,
        deadline: Option<tokio::time::Instant>,
        send: Option<SendSide>,
    ) -> Streaming<T> {
        Self::with_state(State::Reading, Some(body), reader, decoder, deadline, send)
    }

    /// Client: a stream that first waits for the response headers.
    pub(crate) fn pending_head(
        response: PendingHead,
        reader: FrameReader,
        decoder: impl Decoder<Item = T>,
        deadline: Option<tokio::time::Instant>,
        send: Option<SendSide>,
    ) -> Streaming<T> {
        Self::with_state(State::Head(response), None, reader, decoder, deadline, send)
    }

    /// Client: a stream that already ended OK, from a trailers-only response.
    pub(crate) fn finished(trailers: Metadata, reader: FrameReader, decoder: impl Decoder<Item = T>) -> Streaming<T> {
        let mut s = Self::with_state(State::Done, None, reader, decoder, None, None);
        s.trailers = Some(trailers);
        s
    }

    /// The next message; `Ok(None)` at the end of a successful stream.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }

    /// Client: the response headers. On a bidirectional call they are known
    /// once the server has sent them, which may be with its first message;
    /// this waits for them.
    pub async fn headers(&mut self) -> Result<&Metadata, Status> {
        std::future::poll_fn(|cx| {
            self.poll_cancel(cx);
            if let State::Cancelled(status) = &self.state {
                return Poll::Ready(Err(status.clone()));
            }
            self.poll_head(cx)
        })
        .await?;
        Ok(self.headers.get_or_insert_with(Metadata::new))
    }

    /// Client: the trailing metadata, once the stream has ended with OK.
    pub fn trailers(&self) -> Option<&Metadata> {
        self.trailers.as_ref()
    }

    /// Client: cancels the call, as grpc-go's context cancellation does. The
    /// stream is reset with RST_STREAM(CANCEL), a request stream stops being
    /// sent, the server sees the call cancelled, and the next
    /// [`Streaming::message`] returns CANCELLED. A stream that has already
    /// ended is left as it is. Dropping the stream also cancels the call,
    /// without the status. To cancel from another task, or a call of any
    /// kind, take a [`CancelHandle`] from the request before the call.
    pub fn cancel(&mut self) {
        self.cancel_with(Status::cancelled(CANCELLED_BY_CLIENT));
    }

    fn cancel_with(&mut self, status: Status) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.state = State::Cancelled(status);
        self.body = None;
        self.sender = None;
        self.deadline = None;
    }

    /// Whether the last message received was compressed on the wire.
    pub fn last_message_compressed(&self) -> bool {
        self.reader.last_compressed()
    }

    fn fail(&mut self, status: Status) -> Poll<Option<Result<T, Status>>> {
        self.end();
        self.end_trace(&status);
        Poll::Ready(Some(Err(status)))
    }

    /// Ends the call after an error. Dropping the body and the sending task
    /// lets go of the HTTP/2 stream, so one that is still open (a deadline
    /// passed, a message did not decode) is reset with RST_STREAM(CANCEL)
    /// now, not when the application drops this stream.
    fn end(&mut self) {
        self.state = State::Done;
        self.body = None;
        self.sender = None;
        self.deadline = None;
    }

    /// Prefers the sending task's own error, which explains a reset.
    fn sending_error(&self, status: Status) -> Status {
        self.send_error
            .as_ref()
            .and_then(|slot| slot.lock().ok()?.take())
            .unwrap_or(status)
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready())
    }

    /// Drives the head state; Ready(Ok) once reading can begin.
    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        let State::Head(fut) = &mut self.state else {
            return Poll::Ready(Ok(()));
        };
        let response = match Pin::new(fut).poll(cx) {
            Poll::Pending => {
                if self.expired(cx) {
                    self.end();
                    let status = Status::deadline_exceeded("deadline exceeded waiting for response headers");
                    self.end_trace(&status);
                    return Poll::Ready(Err(status));
                }
                return Poll::Pending;
            }
            Poll::Ready(Err(status)) => Err(self.sending_error(status)),
            Poll::Ready(Ok((head, attempt))) => {
                if let (Some(hold), Some(attempt)) = (&mut self.hold, attempt) {
                    hold.permit = Some(attempt);
                }
                Ok(head)
            }
        };
        match response {
            Err(status) => {
                self.end();
                self.end_trace(&status);
                Poll::Ready(Err(status))
            }
            Ok(crate::client::ResponseHead::TrailersOnly(status)) if status.code() == Code::Ok => {
                self.trailers = Some(status.metadata().clone());
                self.state = State::Done;
                self.end_trace_ok();
                Poll::Ready(Ok(()))
            }
            Ok(crate::client::ResponseHead::TrailersOnly(status)) => {
                self.end();
                self.end_trace(&status);
                Poll::Ready(Err(status))
            }
            Ok(crate::client::ResponseHead::Body {
                metadata,
                body,
                encoding,
            }) => {
                self.trace.record_headers(&metadata);
                self.headers = Some(metadata);
                self.reader.set_encoding(encoding);
                self.body = Some(body);
                self.state = State::Reading;
                Poll::Ready(Ok(()))
            }
        }
    }

    fn decode(&mut self, bytes: Bytes) -> Poll<Option<Result<T, Status>>> {
        match self.decoder.decode(bytes) {
            Ok(m) => Poll::Ready(Some(Ok(m))),
            Err(s) => self.fail(s),
        }
    }
}

impl<T: 'static> Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // A stream without a trace (every server's request stream) enters
        // nothing and drops no guard.
        match this.trace.watched_span() {
            None => this.poll_message(cx),
            Some(span) => {
                let _entered = span.clone().entered();
                this.poll_message(cx)
            }
        }
    }
}

impl<T: 'static> Streaming<T> {
    /// [`Stream::poll_next`], in the call's span if it has one.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Status>>> {
        self.poll_cancel(cx);
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Cancelled(ref mut status) => {
                    let status = std::mem::replace(status, Status::ok());
                    return self.fail(status);
                }
                State::Head(_) => match self.poll_head(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(status)) => return self.fail(status),
                    Poll::Ready(Ok(())) => {}
                },
                State::Reading => {
                    match self.reader.next() {
                        Ok(Some(bytes)) => {
                            if let Some(body) = self.body.as_mut() {
                                body.settle(&self.reader);
                            }
                            return self.decode(bytes);
                        }
                        Ok(None) => {}
                        Err(status) => return self.fail(status),
                    }
                    let Some(body) = self.body.as_mut() else {
                        self.state = State::Done;
                        continue;
                    };
                    match body.poll_into(&mut self.reader, cx) {
                        Poll::Ready(Some(Ok(()))) => {}
                        Poll::Ready(Some(Err(status))) => {
                            let status = self.sending_error(status);
                            return self.fail(status);
                        }
                        Poll::Ready(None) => self.state = State::Trailers,
                        Poll::Pending => {
                            if self.expired(cx) {
                                return self
                                    .fail(Status::deadline_exceeded("deadline exceeded while receiving messages"));
                            }
                            return Poll::Pending;
                        }
                    }
                }
                State::Trailers => {
                    let Some(body) = self.body.as_mut() else {
                        self.state = State::Done;
                        continue;
                    };
                    let trailers = match body.poll_trailers(cx) {
                        Poll::Pending => {
                            if self.expired(cx) {
                                return self.fail(Status::deadline_exceeded("deadline exceeded waiting for trailers"));
                            }
                            return Poll::Pending;
                        }
                        Poll::Ready(t) => t,
                    };
                    self.state = State::Done;
                    match trailers {
                        // Server side: the request stream simply ended.
                        Ok(None) => return Poll::Ready(None),
                        Ok(Some(status)) if status.code() == Code::Ok => {
                            self.trailers = Some(status.metadata().clone());
                            self.end_trace_ok();
                            return Poll::Ready(None);
                        }
                        Ok(Some(status)) | Err(status) => {
                            let status = self.sending_error(status);
                            self.end_trace(&status);
                            return Poll::Ready(Some(Err(status)));
                        }
                    }
                }
            }
        }
    }
}

impl<T> fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming").finish_non_exhaustive()
    }
}
