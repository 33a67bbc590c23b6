//! Explicit cancellation of a call, of any kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Context;
use std::time::Instant;

use futures_util::task::AtomicWaker;

use super::call::CANCELLED_BY_CLIENT;
use crate::status::Status;

/// The message of the CANCELLED a call made for a server call ends with when
/// that server call ends first (see [`CallContext`](crate::CallContext)).
pub(crate) const CANCELLED_BY_PARENT: &str = "the call was cancelled: the server call it was made for has ended";

/// Not cancelled.
const LIVE: u8 = 0;
/// Cancelled through [`CancelHandle::cancel`].
const BY_HANDLE: u8 = 1;
/// Cancelled because the server call it was made for ended.
const BY_PARENT: u8 = 2;

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
    /// [`LIVE`], [`BY_HANDLE`] or [`BY_PARENT`]; the first cancellation
    /// stays.
    state: AtomicU8,
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
        self.cancel_as(BY_HANDLE);
    }

    /// Cancels the call because the server call it was made for ended.
    pub(crate) fn cancel_by_parent(&self) {
        self.cancel_as(BY_PARENT);
    }

    fn cancel_as(&self, reason: u8) {
        let _ = self
            .0
            .state
            .compare_exchange(LIVE, reason, Ordering::AcqRel, Ordering::Acquire);
        self.0.waker.wake();
    }

    /// Whether the call has been cancelled, by [`CancelHandle::cancel`] or
    /// because the server call it was made for ended.
    pub fn is_cancelled(&self) -> bool {
        self.0.state.load(Ordering::Acquire) != LIVE
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

    /// The status a cancelled call with `deadline` ends with. A server call
    /// ends when its deadline passes, and the calls made for it share that
    /// deadline: those report the deadline, not the cancellation.
    pub(crate) fn status(&self, deadline: Option<Instant>) -> Status {
        match self.0.state.load(Ordering::Acquire) {
            BY_PARENT if deadline.is_some_and(|d| Instant::now() >= d) => {
                Status::deadline_exceeded("deadline exceeded")
            }
            BY_PARENT => Status::cancelled(CANCELLED_BY_PARENT),
            _ => Status::cancelled(CANCELLED_BY_CLIENT),
        }
    }

    /// Whether nothing but the caller holds this handle: the call it was
    /// for is gone.
    pub(crate) fn is_orphan(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }
}
