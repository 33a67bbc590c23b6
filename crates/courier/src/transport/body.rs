//! Receiving and sending message bodies on an HTTP/2 stream, with flow
//! control.

use std::future::poll_fn;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::status::Status;

/// The receiving half of a stream.
pub(crate) struct RecvBody {
    stream: h2::RecvStream,
    /// A client expects trailers with `grpc-status`; a server does not.
    client: bool,
}

impl RecvBody {
    pub(crate) fn new(stream: h2::RecvStream, client: bool) -> RecvBody {
        RecvBody { stream, client }
    }

    pub(crate) fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Status>>> {
        match self.stream.poll_data(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                // The bytes are ours now: let the peer send more.
                let _ = self.stream.flow_control().release_capacity(chunk.len());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Status::from_h2(&e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    pub(crate) async fn data(&mut self) -> Option<Result<Bytes, Status>> {
        poll_fn(|cx| self.poll_data(cx)).await
    }

    /// The status in the trailers (client), or `None` (server).
    pub(crate) fn poll_trailers(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Status>, Status>> {
        match self.stream.poll_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(Status::from_h2(&e))),
            Poll::Ready(Ok(_)) if !self.client => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(Some(trailers))) => Poll::Ready(
                Status::from_trailers(&trailers)
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

/// Sends `data` once the stream has send capacity, so that a fast producer
/// waits for a slow peer instead of buffering without bound.
pub(crate) async fn send_data(stream: &mut h2::SendStream<Bytes>, data: Bytes, end: bool) -> Result<(), h2::Error> {
    if !data.is_empty() {
        stream.reserve_capacity(data.len());
        while stream.capacity() == 0 {
            match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
    }
    stream.send_data(data, end)
}
