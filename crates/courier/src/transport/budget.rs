//! The receive budget: a bound on the bytes that the calls of one connection
//! hold in messages they have received but not yet taken whole.
//!
//! Every stream may receive a message up to the receive limit (4 MiB by
//! default), and the codec must hold a message's bytes until it is complete.
//! Without a bound shared by the connection, a peer that opens many streams
//! and sends each all but the last byte of a large message pins streams ×
//! limit bytes. The budget is that bound:
//!
//! - each stream charges the bytes its codec holds;
//! - a stream gives flow-control capacity back to the peer (a WINDOW_UPDATE,
//!   which lets it send more) only while the connection is within budget, so
//!   a peer past the budget is stopped by HTTP/2 flow control;
//! - one stream at a time may go past the budget (the overdraft) until its
//!   message is whole, so that streams which each hold part of a message
//!   cannot wait on one another forever;
//! - while the connection is past its budget, new streams are refused.
//!
//! The streams that wait for the budget register a waker here and are woken
//! when another stream's message completes or its stream ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Duration;

/// One connection's receive budget.
#[derive(Debug)]
pub(crate) struct RecvBudget {
    /// The bytes the connection's streams may hold in incomplete messages.
    limit: usize,
    /// How long a stream may hold part of a message without receiving more
    /// of it before it is reset; `None` for no bound.
    pub(crate) stall_timeout: Option<Duration>,
    /// The bytes held now.
    used: AtomicUsize,
    /// The stream allowed past the budget, by HTTP/2 stream id; 0 for none.
    overdraft: AtomicU32,
    /// Whether any stream is waiting in `waiters`.
    waiting: AtomicBool,
    waiters: Mutex<Vec<Waker>>,
}

impl RecvBudget {
    pub(crate) fn new(limit: usize, stall_timeout: Option<Duration>) -> RecvBudget {
        RecvBudget {
            limit,
            stall_timeout,
            used: AtomicUsize::new(0),
            overdraft: AtomicU32::new(0),
            waiting: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// The bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether the connection holds all its budget: new streams are refused.
    pub(crate) fn exhausted(&self) -> bool {
        self.used() >= self.limit
    }

    /// Changes a stream's charge from `old` to `new` bytes.
    pub(crate) fn recharge(&self, old: usize, new: usize) {
        if new > old {
            self.used.fetch_add(new - old, Ordering::AcqRel);
        } else if old > new {
            let before = self.used.fetch_sub(old - new, Ordering::AcqRel);
            if before - (old - new) <= self.limit {
                self.wake_waiters();
            }
        }
    }

    /// Whether stream `id` may give the peer more capacity now: the
    /// connection is within budget, or the stream holds (or now takes) the
    /// overdraft.
    pub(crate) fn may_release(&self, id: u32) -> bool {
        if self.used() <= self.limit {
            return true;
        }
        match self
            .overdraft
            .compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(holder) => holder == id,
        }
    }

    /// Gives the overdraft back if stream `id` holds it: its message is whole
    /// or its stream has ended.
    pub(crate) fn end_overdraft(&self, id: u32) {
        if self
            .overdraft
            .compare_exchange(id, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.wake_waiters();
        }
    }

    /// Waits for the budget: `waker` is woken when bytes are given back.
    /// Returns true if, on a second look after registering, the stream may
    /// release after all (so no wake-up was missed).
    pub(crate) fn wait(&self, id: u32, waker: &Waker) -> bool {
        {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            if !waiters.iter().any(|w| w.will_wake(waker)) {
                waiters.push(waker.clone());
            }
            self.waiting.store(true, Ordering::Release);
        }
        self.may_release(id)
    }

    fn wake_waiters(&self) {
        if !self.waiting.load(Ordering::Acquire) {
            return;
        }
        let woken = {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            self.waiting.store(false, Ordering::Release);
            std::mem::take(&mut *waiters)
        };
        for waker in woken {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_budget_everyone_releases_past_it_only_the_overdraft_holder() {
        let budget = RecvBudget::new(100, None);
        budget.recharge(0, 60);
        assert!(budget.may_release(1));
        budget.recharge(0, 60);
        assert!(budget.exhausted());
        // Stream 3 takes the overdraft; stream 5 must wait.
        assert!(budget.may_release(3));
        assert!(!budget.may_release(5));
        assert!(budget.may_release(3));
        budget.end_overdraft(3);
        assert!(budget.may_release(5));
        // Below the limit again: no overdraft is needed.
        budget.recharge(60, 0);
        assert!(!budget.exhausted());
        assert!(budget.may_release(7));
        assert_eq!(budget.used(), 60);
    }

    #[test]
    fn a_waiting_stream_is_woken_when_bytes_are_given_back() {
        use std::sync::Arc;
        use std::task::Wake;
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let budget = RecvBudget::new(10, None);
        budget.recharge(0, 20);
        assert!(budget.may_release(1));
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        assert!(!budget.wait(2, &waker));
        budget.recharge(20, 5);
        assert!(flag.0.load(Ordering::SeqCst), "giving bytes back wakes the waiter");
    }
}
