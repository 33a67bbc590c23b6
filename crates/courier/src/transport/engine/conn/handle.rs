//! The handles a stream's users hold: the sending half, the receiving
//! half, a client's response to come and a server's responder. Each queues
//! work on the stream and hands it to the driver; none touches the
//! connection. When the last handle of an unfinished stream goes, the
//! stream is reset.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::Command;
use super::shared::{Failure, Inner, OutHead, Stream};
use crate::transport::engine::frame::ErrorCode;
use crate::transport::head::{Fields, OutFields, OutRequest, OutResponse, ResponseHead};

/// A counted reference to a stream.
struct Handle(Arc<Stream>);

impl Handle {
    fn new(stream: &Arc<Stream>, inner: &mut Inner) -> Handle {
        inner.handles += 1;
        Handle(stream.clone())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let stream = &self.0;
        let mut inner = stream.lock();
        inner.handles -= 1;
        if inner.handles > 0 || inner.failure.is_some() || inner.state.is_closed() || inner.reset.is_some() {
            return;
        }
        // Nobody will finish the stream: tell the peer. A server whose
        // response is complete (its last frames may still be queued) closes
        // with NO_ERROR once they are sent (RFC 9113 §8.1); anything else is
        // cancelled.
        inner.reset = Some(if inner.server && inner.send_closed {
            ErrorCode::NoError
        } else {
            ErrorCode::Cancel
        });
        stream.schedule(&mut inner);
    }
}

/// The sending half of a stream.
pub(crate) struct SendHalf {
    handle: Handle,
    /// Bytes queued beyond which [`SendHalf::send_data`] waits.
    limit: usize,
}

impl SendHalf {
    fn new(stream: &Arc<Stream>, inner: &mut Inner, limit: usize) -> SendHalf {
        SendHalf {
            handle: Handle::new(stream, inner),
            limit,
        }
    }

    fn check_open(inner: &Inner) -> Result<(), Failure> {
        if let Some(failure) = &inner.failure {
            return Err(failure.clone());
        }
        if inner.send_closed {
            return Err(Failure::Local("the stream's sending side has ended already".into()));
        }
        Ok(())
    }

    /// Queues `data`, once less than the send buffer's limit is queued, so
    /// that a fast producer waits for a slow peer. Nothing is queued if the
    /// future is dropped while it waits.
    pub(crate) async fn send_data(&mut self, data: Bytes, end: bool) -> Result<(), Failure> {
        poll_fn(|cx| {
            let stream = &self.handle.0;
            let mut inner = stream.lock();
            Self::check_open(&inner)?;
            if inner.queued >= self.limit && !data.is_empty() {
                inner.send_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        })
        .await?;
        self.queue_data(data, end)
    }

    /// Queues `data` without waiting.
    pub(crate) fn queue_data(&mut self, data: Bytes, end: bool) -> Result<(), Failure> {
        let stream = &self.handle.0;
        let mut inner = stream.lock();
        Self::check_open(&inner)?;
        if !data.is_empty() {
            inner.queued += data.len();
            inner.data.push_back(data);
        }
        if end {
            inner.data_ends = true;
            inner.send_closed = true;
        }
        stream.schedule(&mut inner);
        Ok(())
    }

    /// Ends the stream with trailers.
    pub(crate) fn send_trailers(&mut self, trailers: OutFields) -> Result<(), Failure> {
        let stream = &self.handle.0;
        let mut inner = stream.lock();
        Self::check_open(&inner)?;
        inner.trailers = Some(trailers);
        inner.send_closed = true;
        stream.schedule(&mut inner);
        Ok(())
    }

    /// Resets the stream.
    pub(crate) fn reset(&mut self, code: ErrorCode) {
        reset(&self.handle.0, code);
    }

    /// Ready once the stream has been reset or failed.
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        poll_reset(&self.handle.0, cx)
    }
}

fn reset(stream: &Arc<Stream>, code: ErrorCode) {
    let mut inner = stream.lock();
    if inner.failure.is_none() && !inner.state.is_closed() {
        inner.reset = Some(code);
        inner.send_closed = true;
        // What was queued goes, END_STREAM with it: the stream must not end
        // as if its body were whole.
        inner.data.clear();
        inner.queued = 0;
        inner.data_ends = false;
        inner.trailers = None;
        stream.schedule(&mut inner);
    }
}

fn poll_reset(stream: &Arc<Stream>, cx: &mut Context<'_>) -> Poll<()> {
    let mut inner = stream.lock();
    if inner.failure.is_some() {
        return Poll::Ready(());
    }
    inner.reset_waker = Some(cx.waker().clone());
    Poll::Pending
}

/// The receiving half of a stream.
pub(crate) struct RecvHalf {
    handle: Handle,
}

impl Drop for RecvHalf {
    fn drop(&mut self) {
        let stream = &self.handle.0;
        let mut inner = stream.lock();
        inner.recv_dropped = true;
        // What was received and never read still holds window.
        let unread = std::mem::take(&mut inner.recv_len);
        inner.recv.clear();
        if unread > 0 {
            stream.release(&mut inner, unread);
        }
    }
}

impl RecvHalf {
    fn new(stream: &Arc<Stream>, inner: &mut Inner) -> RecvHalf {
        RecvHalf {
            handle: Handle::new(stream, inner),
        }
    }

    /// The next chunk of data; `None` once the peer ended the stream.
    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Failure>>> {
        let mut inner = self.handle.0.lock();
        if let Some(chunk) = inner.recv.pop_front() {
            inner.recv_len -= chunk.len();
            return Poll::Ready(Some(Ok(chunk)));
        }
        if inner.recv_end {
            return Poll::Ready(None);
        }
        if let Some(failure) = &inner.failure {
            return Poll::Ready(Some(Err(failure.clone())));
        }
        inner.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Gives the peer back the window of `bytes` taken.
    pub(crate) fn release_capacity(&mut self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let stream = &self.handle.0;
        let mut inner = stream.lock();
        stream.release(&mut inner, bytes);
    }

    /// The trailers, once the stream has ended: `None` if it ended
    /// without.
    pub(crate) fn poll_trailers(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Fields>, Failure>> {
        let mut inner = self.handle.0.lock();
        if let Some(trailers) = inner.recv_trailers.take() {
            return Poll::Ready(Ok(Some(trailers)));
        }
        if inner.recv_end {
            return Poll::Ready(Ok(None));
        }
        if let Some(failure) = &inner.failure {
            return Poll::Ready(Err(failure.clone()));
        }
        inner.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Whether the peer has ended the stream and everything was read.
    pub(crate) fn is_end_stream(&self) -> bool {
        let inner = self.handle.0.lock();
        inner.recv_end && inner.recv.is_empty() && inner.recv_trailers.is_none()
    }

    /// The stream's id.
    pub(crate) fn stream_id(&self) -> u32 {
        self.handle.0.lock().id
    }
}

/// A client stream's response head, to come.
pub(crate) struct AwaitResponse {
    handle: Option<Handle>,
}

impl Future for AwaitResponse {
    type Output = Result<(ResponseHead, RecvHalf), Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(handle) = self.handle.as_ref() else {
            return Poll::Ready(Err(Failure::Local("the response was taken already".into())));
        };
        let stream = handle.0.clone();
        let mut inner = stream.lock();
        if let Some(response) = inner.response.take() {
            let body = RecvHalf::new(&stream, &mut inner);
            drop(inner);
            self.handle = None;
            return Poll::Ready(Ok((response, body)));
        }
        if let Some(failure) = &inner.failure {
            return Poll::Ready(Err(failure.clone()));
        }
        inner.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Whether a connection takes new streams, and why not.
#[derive(Default)]
pub(crate) struct Admission {
    closed: AtomicBool,
    why: std::sync::Mutex<Option<Failure>>,
}

impl Admission {
    /// No more streams: `why` says why.
    pub(crate) fn close(&self, why: Failure) {
        let mut slot = self.why.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(why);
        }
        self.closed.store(true, Ordering::Release);
    }

    /// Whether new streams are refused.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn why(&self) -> Failure {
        self.why
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| Failure::Local("the connection is closed".into()))
    }
}

/// Opens streams on a client connection.
#[derive(Clone)]
pub(crate) struct Opener {
    pub(super) commands: UnboundedSender<Command>,
    pub(super) conn: Arc<super::shared::ConnShared>,
    pub(super) admission: Arc<Admission>,
    pub(super) send_buffer: usize,
}

impl Opener {
    /// Whether the connection takes no more streams.
    pub(crate) fn is_closed(&self) -> bool {
        self.admission.is_closed()
    }

    /// Fails if the connection takes no more streams.
    pub(crate) fn ready(&self) -> Result<(), Failure> {
        if self.admission.is_closed() {
            return Err(self.admission.why());
        }
        Ok(())
    }

    /// Opens a stream: its headers go out (once the peer's limit on streams
    /// allows), and its body follows on the returned half.
    pub(crate) fn open(&self, request: OutRequest) -> Result<(AwaitResponse, SendHalf), Failure> {
        self.ready()?;
        let stream = Stream::new(0, 0, 0, self.commands.clone(), self.conn.clone());
        let (head, send) = {
            let mut inner = stream.lock();
            inner.head = Some(OutHead::Request(request));
            inner.scheduled = true;
            let head = AwaitResponse {
                handle: Some(Handle::new(&stream, &mut inner)),
            };
            (head, SendHalf::new(&stream, &mut inner, self.send_buffer))
        };
        if self.commands.send(Command::Open(stream)).is_err() {
            return Err(self.admission.why());
        }
        Ok((head, send))
    }
}

/// How a server answers a stream.
pub(crate) struct Responder {
    handle: Handle,
    send_buffer: usize,
    /// The response headers were queued: the driver takes them off the
    /// stream once encoded, so the stream alone cannot tell.
    responded: bool,
}

impl Responder {
    /// The responder and receiving half of a stream the peer opened.
    pub(crate) fn accepted(stream: &Arc<Stream>, send_buffer: usize) -> (RecvHalf, Responder) {
        let mut inner = stream.lock();
        let recv = RecvHalf::new(stream, &mut inner);
        let respond = Responder {
            handle: Handle::new(stream, &mut inner),
            send_buffer,
            responded: false,
        };
        (recv, respond)
    }

    /// Sends the response headers; with `end` they end the stream (a
    /// Trailers-Only response) and no sending half is returned.
    pub(crate) fn send_response(&mut self, response: OutResponse, end: bool) -> Result<Option<SendHalf>, Failure> {
        let stream = &self.handle.0;
        let mut inner = stream.lock();
        SendHalf::check_open(&inner)?;
        if self.responded || inner.head.is_some() {
            return Err(Failure::Local("the response headers were sent already".into()));
        }
        self.responded = true;
        inner.head = Some(OutHead::Response(response));
        inner.head_ends = end;
        inner.send_closed = end;
        stream.schedule(&mut inner);
        Ok((!end).then(|| SendHalf::new(stream, &mut inner, self.send_buffer)))
    }

    /// Resets the stream.
    pub(crate) fn reset(&mut self, code: ErrorCode) {
        reset(&self.handle.0, code);
    }

    /// Ready once the stream has been reset or failed.
    pub(crate) fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        poll_reset(&self.handle.0, cx)
    }
}
