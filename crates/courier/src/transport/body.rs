//! Receiving and sending message bodies on an HTTP/2 stream, with flow
//! control.

use std::future::{Future as _, poll_fn};
use std::task::{Context, Poll};

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::budget::RecvBudget;
use super::stream::{Counted, RecvStream, StreamError};
use crate::codec::FrameReader;
use crate::status::Status;

/// The receiving half of a stream.
///
/// Flow-control capacity goes back to the peer once the bytes are in the
/// codec. On a connection with a [`RecvBudget`] (the server's), the bytes
/// the codec holds are charged to it, capacity goes back only within it,
/// and a stream whose unfinished message receives nothing for the budget's
/// stall timeout fails.
pub(crate) struct RecvBody {
    stream: super::engine::conn::RecvHalf,
    /// A client expects trailers with `grpc-status`; a server does not.
    client: bool,
    budget: Option<Arc<RecvBudget>>,
    /// The bytes charged to the budget: what the codec held when last
    /// settled.
    charged: usize,
    /// Received bytes whose capacity has not been given back yet.
    owed: usize,
    /// Armed once the stream first waits with part of a message.
    stall: Option<Stall>,
    /// The stream's count among its connection's open streams.
    _counted: Counted,
}

/// The timer of a stream that waits with part of a message.
struct Stall {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// When the message last made progress.
    progress: Instant,
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.recharge(self.charged, 0);
            budget.end_overdraft(self.id());
        }
        // Capacity the peer was never given back would be lost to the
        // connection for good.
        if self.owed > 0 {
            self.stream.release_capacity(self.owed);
        }
    }
}

impl RecvBody {
    pub(crate) fn new(stream: RecvStream, client: bool) -> RecvBody {
        RecvBody {
            stream: stream.0,
            client,
            budget: None,
            charged: 0,
            owed: 0,
            stall: None,
            _counted: None,
        }
    }

    /// Counts the stream as open while this body lives.
    pub(crate) fn counted(mut self, counted: Counted) -> RecvBody {
        self._counted = counted;
        self
    }

    /// A stream on a connection with a receive budget.
    pub(crate) fn with_budget(stream: RecvStream, client: bool, budget: Arc<RecvBudget>) -> RecvBody {
        let mut body = RecvBody::new(stream, client);
        body.budget = Some(budget);
        body
    }

    /// Whether the peer has ended the stream already (as with a
    /// Trailers-Only response).
    pub(crate) fn is_end_stream(&self) -> bool {
        self.stream.is_end_stream()
    }

    fn id(&self) -> u32 {
        self.stream.stream_id()
    }

    /// Chunks as they arrive, their capacity given back at once. For
    /// streams without a budget only (the client's).
    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Status>>> {
        match self.stream.poll_data(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // The bytes are ours now: let the peer send more.
                self.stream.release_capacity(chunk.len());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(StreamError::from(e).to_status()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Receives the next chunk into `reader`: Ready(Some(Ok)) once one was
    /// added, Ready(None) at the end of the stream (after checking that it
    /// did not end inside a message). Call [`RecvBody::settle`] after taking
    /// messages from the reader.
    pub(crate) fn poll_into(
        &mut self,
        reader: &mut FrameReader,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(), Status>>> {
        let released = self.settle_with(reader, Some(cx));
        match self.stream.poll_data(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.owed += chunk.len();
                if let Some(stall) = self.stall.as_mut() {
                    stall.progress = Instant::now();
                }
                reader.push(chunk);
                if self.budget.is_none() {
                    self.settle(reader);
                }
                Poll::Ready(Some(Ok(())))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(StreamError::from(e).to_status()))),
            Poll::Ready(None) => Poll::Ready(reader.finish().err().map(Err)),
            Poll::Pending => {
                // Waiting for the peer with part of a message, and not
                // because flow control holds it back: a stall, once long.
                if released && reader.held() > 0 && self.stalled(cx) {
                    let timeout = self.budget.as_ref().and_then(|b| b.stall_timeout).unwrap_or_default();
                    return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                        "no more of the request message arrived for {timeout:?}; the stream is reset, \
                         so that an unfinished message does not hold the server's memory"
                    )))));
                }
                Poll::Pending
            }
        }
    }

    /// Brings the budget up to date with what `reader` holds now, and gives
    /// the peer back the capacity of bytes received, if the budget allows.
    pub(crate) fn settle(&mut self, reader: &FrameReader) {
        self.settle_with(reader, None);
    }

    /// [`RecvBody::settle`]; with a context, a stream the budget holds back
    /// waits to be woken. True when no capacity is owed any more.
    fn settle_with(&mut self, reader: &FrameReader, cx: Option<&mut Context<'_>>) -> bool {
        let held = reader.held();
        let id = self.id();
        if let Some(budget) = &self.budget {
            if held != self.charged {
                budget.recharge(self.charged, held);
                self.charged = held;
            }
            if held == 0 {
                budget.end_overdraft(id);
            }
        }
        if self.owed == 0 {
            return true;
        }
        let allowed = match (&self.budget, cx) {
            (None, _) => true,
            (Some(budget), _) if budget.may_release(id) => true,
            (Some(budget), Some(cx)) => budget.wait(id, cx.waker()),
            (Some(_), None) => false,
        };
        if !allowed {
            return false;
        }
        self.stream.release_capacity(self.owed);
        self.owed = 0;
        if let Some(stall) = self.stall.as_mut() {
            // Held back by the budget until now, not by the peer.
            stall.progress = Instant::now();
        }
        true
    }

    /// Whether the stall timer has run out; arms it on first use.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.budget.as_ref().and_then(|b| b.stall_timeout) else {
            return false;
        };
        let stall = self.stall.get_or_insert_with(|| {
            let now = Instant::now();
            Stall {
                sleep: Box::pin(tokio::time::sleep(timeout)),
                progress: now,
            }
        });
        loop {
            let Some(due) = stall.progress.checked_add(timeout) else {
                return false;
            };
            if Instant::now() >= due {
                return true;
            }
            let due = tokio::time::Instant::from_std(due);
            if stall.sleep.deadline() != due {
                stall.sleep.as_mut().reset(due);
            }
            if stall.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
        }
    }

    pub(crate) async fn data(&mut self) -> Option<Result<Bytes, Status>> {
        poll_fn(|cx| self.poll_data(cx)).await
    }

    /// The status in the trailers (client), or `None` (server).
    pub(crate) fn poll_trailers(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Status>, Status>> {
        match self.stream.poll_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(StreamError::from(e).to_status())),
            Poll::Ready(Ok(_)) if !self.client => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(Some(trailers))) => Poll::Ready(
                Status::from_fields(trailers)
                    .map(Some)
                    .ok_or_else(|| Status::internal("server sent trailers without grpc-status")),
            ),
            Poll::Ready(Ok(None)) => Poll::Ready(Err(Status::internal(
                "server closed the stream without sending trailers",
            ))),
        }
    }

    pub(crate) async fn trailers(&mut self) -> Result<Option<Status>, Status> {
        poll_fn(|cx| self.poll_trailers(cx)).await
    }
}
