//! A server call's deadline and cancellation, passed on to the calls its
//! handler makes, as grpc-go's `context.Context` is.
//!
//! A server call costs nothing for this until its handler asks for its
//! context: the call's future is wrapped in [`Scoped`], which holds an empty
//! slot and, while it is polled, lends that slot to the thread it runs on
//! (a thread-local `Cell`, swapped in and out: no allocation, no atomic
//! operation). [`Request::context`](crate::Request::context) finds the slot
//! there and fills it the first time, with the one allocation of the
//! feature. When the call's future finishes or is dropped (the client reset
//! the stream, the deadline passed, the handler returned, the server shut
//! down), the filled slot cancels the cancel handles of every call made with
//! [`Request::with_parent`](crate::Request::with_parent).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::client::CancelHandle;

/// The deadline and cancellation of an incoming call, to pass on to the
/// calls its handler makes.
///
/// Take it from the incoming request with
/// [`Request::context`](crate::Request::context) while the handler runs, and
/// give it to each outgoing request with
/// [`Request::with_parent`](crate::Request::with_parent). An outgoing call
/// made with it has at most the incoming call's deadline (its own timeout or
/// deadline applies if earlier) and is cancelled, with RST_STREAM(CANCEL)
/// to its server, when the incoming call ends: its client cancelled it, its
/// deadline passed, its handler and response stream finished, or the server
/// dropped it. The caller of the outgoing call then sees CANCELLED, or
/// DEADLINE_EXCEEDED once the deadline has passed. Clones share the
/// cancellation and can be moved into spawned tasks; work that must outlive
/// the incoming call should not use its context.
///
/// Taken anywhere but inside the handler's call (in a task the request was
/// moved to, say), a context carries the deadline only: take it in the
/// handler and move the context, not the request, into tasks.
///
/// ```
/// use courier::codec::ProstCodec;
/// use courier::{Channel, Request, Response, Status};
///
/// // A handler that asks a downstream service, in the handler and from a
/// // task of its own, on behalf of its caller.
/// async fn lookup(request: Request<String>, downstream: Channel) -> Result<Response<String>, Status> {
///     let ctx = request.context();
///     let background = {
///         let (ctx, downstream) = (ctx.clone(), downstream.clone());
///         tokio::spawn(async move {
///             let audit = Request::new("audit".to_string()).with_parent(&ctx);
///             downstream.unary(audit, "/demo.Audit/Record", ProstCodec::<String, String>::new()).await
///         })
///     };
///     let out = Request::new(request.into_inner()).with_parent(&ctx);
///     let reply = downstream.unary(out, "/demo.Store/Get", ProstCodec::<String, String>::new()).await?;
///     let _ = background.await;
///     Ok(Response::new(reply.into_inner()))
/// }
/// ```
#[derive(Clone, Debug)]
pub struct CallContext {
    deadline: Option<Instant>,
    /// The incoming call's cancellation; `None` for a context taken outside
    /// a server call.
    scope: Option<Arc<Scope>>,
}

impl CallContext {
    /// The context of the server call being polled on this thread, with
    /// `deadline`.
    pub(crate) fn current(deadline: Option<Instant>) -> CallContext {
        CallContext {
            deadline,
            scope: current_scope(),
        }
    }

    /// The incoming call's deadline, if its client sent one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the incoming call has ended (cancelled, finished, or past its
    /// deadline): calls made with this context are cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.scope.as_ref().is_some_and(|s| s.is_ended()) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Resolves once [`CallContext::is_cancelled`] holds, for work of the
    /// handler's own that should stop with the incoming call.
    pub async fn cancelled(&self) {
        let ended = async {
            match &self.scope {
                Some(scope) => scope.ended().await,
                None => std::future::pending().await,
            }
        };
        match self.deadline {
            Some(deadline) => {
                tokio::select! {
                    _ = ended => {}
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
            None => ended.await,
        }
    }

    /// Has the cancel handle of a call made with this context, made now if
    /// the call has none, cancelled when the incoming call ends.
    pub(crate) fn adopt(&self, cancel: &mut Option<CancelHandle>) {
        if let Some(scope) = &self.scope {
            scope.adopt(cancel.get_or_insert_with(CancelHandle::new));
        }
    }
}

/// The cancellation shared by a server call and the calls made for it.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    ended: AtomicBool,
    /// Wakes [`CallContext::cancelled`].
    notify: tokio::sync::Notify,
    /// The cancel handles of calls made with the context.
    children: Mutex<Vec<CancelHandle>>,
}

impl Scope {
    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    async fn ended(&self) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so the end is not missed.
            notified.as_mut().enable();
            if self.is_ended() {
                return;
            }
            notified.await;
        }
    }

    fn adopt(&self, child: &CancelHandle) {
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_ended() {
            drop(children);
            child.cancel_by_parent();
            return;
        }
        // Calls that have finished are let go before the list grows, so a
        // long call making many calls holds only those still running.
        if children.len() == children.capacity() {
            children.retain(|c| !c.is_orphan());
        }
        children.push(child.clone());
    }

    /// Ends the server call: cancels every call made for it.
    fn end(&self) {
        let children = {
            let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
            self.ended.store(true, Ordering::Release);
            std::mem::take(&mut *children)
        };
        for child in children {
            child.cancel_by_parent();
        }
        self.notify.notify_waiters();
    }
}

/// What this thread is polling.
enum Frame {
    /// No server call.
    Outside,
    /// A server call, with its scope once a context was taken.
    Call(Option<Arc<Scope>>),
}

thread_local! {
    static CURRENT: Cell<Frame> = const { Cell::new(Frame::Outside) };
}

/// The scope of the server call being polled on this thread, made on first
/// use; `None` outside a server call.
fn current_scope() -> Option<Arc<Scope>> {
    CURRENT
        .try_with(|current| match current.replace(Frame::Outside) {
            Frame::Outside => None,
            Frame::Call(scope) => {
                let scope = scope.unwrap_or_default();
                current.set(Frame::Call(Some(scope.clone())));
                Some(scope)
            }
        })
        .ok()
        .flatten()
}

pin_project_lite::pin_project! {
    /// A server call's future, with the slot of its scope: while it is
    /// polled, contexts taken on this thread belong to this call, and when
    /// it finishes or is dropped, the calls made with them are cancelled.
    pub(crate) struct Scoped<F> {
        #[pin]
        call: F,
        scope: Option<Arc<Scope>>,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(scope) = this.project().scope.take() {
                scope.end();
            }
        }
    }
}

impl<F> Scoped<F> {
    pub(crate) fn new(call: F) -> Scoped<F> {
        Scoped { call, scope: None }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = {
            let _entered = Entered::new(this.scope);
            this.call.poll(cx)
        };
        if polled.is_ready()
            && let Some(scope) = this.scope.take()
        {
            scope.end();
        }
        polled
    }
}

/// Lends a call's scope slot to the thread for one poll, and takes it back
/// afterwards, also if the poll panics.
struct Entered<'a> {
    slot: &'a mut Option<Arc<Scope>>,
    /// What the thread was polling before; `None` if the thread-local was
    /// unavailable (the thread is exiting).
    outer: Option<Frame>,
}

impl<'a> Entered<'a> {
    fn new(slot: &'a mut Option<Arc<Scope>>) -> Entered<'a> {
        let lent = Frame::Call(slot.take());
        let outer = CURRENT.try_with(|current| current.replace(lent)).ok();
        Entered { slot, outer }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let Some(outer) = self.outer.take() else { return };
        if let Ok(Frame::Call(scope)) = CURRENT.try_with(|current| current.replace(outer)) {
            *self.slot = scope;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_taken_outside_a_server_call_has_no_cancellation() {
        let ctx = CallContext::current(None);
        assert!(ctx.scope.is_none());
        assert!(!ctx.is_cancelled());
        let mut cancel = None;
        ctx.adopt(&mut cancel);
        assert!(cancel.is_none(), "nothing to cancel it, so no handle is made");
    }

    #[tokio::test]
    async fn a_scope_is_made_only_when_a_context_is_taken_and_ends_with_the_call() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut call = Box::pin(Scoped::new(async move {
            let ctx = CallContext::current(None);
            let again = CallContext::current(None);
            assert!(Arc::ptr_eq(ctx.scope.as_ref().unwrap(), again.scope.as_ref().unwrap()));
            let _ = rx.await;
            ctx
        }));
        let untouched = Scoped::new(async {});
        assert!(untouched.scope.is_none());
        assert!(futures_util::FutureExt::now_or_never(call.as_mut()).is_none());
        assert!(call.scope.is_some(), "the scope went back to the call after the poll");
        assert!(
            CallContext::current(None).scope.is_none(),
            "outside the poll, no call is current"
        );
        let mut child = None;
        CallContext {
            deadline: None,
            scope: call.scope.clone(),
        }
        .adopt(&mut child);
        let child = child.expect("a handle made for the call");
        assert!(!child.is_cancelled());
        tx.send(()).unwrap();
        let ctx = call.await;
        assert!(ctx.is_cancelled(), "the call finished");
        assert!(child.is_cancelled(), "a call made for it was cancelled");
        ctx.cancelled().await;
    }

    #[test]
    fn dropping_the_call_cancels_calls_made_for_it_and_later_ones_at_once() {
        let mut call = Box::pin(Scoped::new(std::future::pending::<()>()));
        *call.as_mut().project().scope = Some(Arc::default());
        let ctx = CallContext {
            deadline: None,
            scope: call.scope.clone(),
        };
        let early = CancelHandle::new();
        ctx.adopt(&mut Some(early.clone()));
        drop(call);
        assert!(early.is_cancelled());
        let mut late = None;
        ctx.adopt(&mut late);
        assert!(late.unwrap().is_cancelled());
    }

    #[test]
    fn finished_calls_are_let_go_as_the_list_grows() {
        let scope = Scope::default();
        for _ in 0..100 {
            scope.adopt(&CancelHandle::new());
        }
        let live = CancelHandle::new();
        scope.adopt(&live);
        let held = scope.children.lock().unwrap().len();
        assert!(held < 100, "{held} handles held for 1 live call");
    }
}
