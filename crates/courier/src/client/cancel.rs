//! Explicit cancellation of a call, of any kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;

use futures_util::task::AtomicWaker;

/// Cancels one call from anywhere, as grpc-go's context cancellation does.
///
/// Take a handle from the request before making the call
/// ([`Request::cancel_handle`](crate::Request::cancel_handle)); clones
/// share it. [`CancelHandle::cancel`] resets the call's HTTP/2 stream with
/// RST_STREAM(CANCEL) at once, so the server sees the call cancelled; the
/// call's future (unary, client-streaming) resolves to CANCELLED, and a
/// response [`Streaming`](crate::Streaming) yields CANCELLED as its next
/// item. Cancelling a call that has already ended changes nothing. A call
/// whose request never asked for a handle pays nothing for this.
///
/// ```
/// let mut request = courier::Request::new(futures_util::stream::iter(vec![1u32, 2]));
/// let cancel = request.cancel_handle();
/// // ... make the client-streaming call with `request`, and elsewhere:
/// cancel.cancel();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    cancelled: AtomicBool,
    /// The task driving the call, to wake when it is cancelled.
    waker: AtomicWaker,
}

impl CancelHandle {
    /// A handle not yet cancelled.
    pub(crate) fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// Cancels the call.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    /// Whether [`CancelHandle::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Whether the call is cancelled; if not, the task polling is woken
    /// when it is.
    pub(crate) fn poll_cancelled(&self, cx: &mut Context<'_>) -> bool {
        if self.is_cancelled() {
            return true;
        }
        self.0.waker.register(cx.waker());
        self.is_cancelled()
    }
}
