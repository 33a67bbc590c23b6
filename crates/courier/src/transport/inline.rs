//! Which calls a connection's task may poll itself.
//!
//! Polling a new call once on the connection's own task, before spawning
//! it, saves a task and a hop between tasks for every call that finishes in
//! that poll (a unary call with a quick handler), and lets a batch's
//! responses leave in one write. But a handler that works for long before
//! its first `.await` would stall everything else on the connection: window
//! updates, PING acks, other calls. So the fast path is earned and bounded:
//!
//! - a method is polled on the connection's task only after its first polls,
//!   made on tasks of their own, were quick [`PROBATION`] times in a row;
//! - a method whose first poll on the connection's task was not quick goes
//!   back to its own tasks, and must earn the fast path again;
//! - once a batch's first polls have used [`BATCH_BUDGET`], the rest of the
//!   batch is spawned.
//!
//! What is learned is per connection, for at most [`MAX_METHODS`] methods;
//! calls to others are always spawned.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A first poll that takes longer than this is not quick.
#[cfg(not(courier_untimed_inline))]
const QUICK: Duration = Duration::from_micros(200);

/// Built with `--cfg courier_untimed_inline`, no first poll is too slow and
/// no batch's budget runs out: a method earns the fast path after
/// [`PROBATION`] probes and keeps it. `scripts/bench.sh --callgrind` builds
/// its Courier server so, because callgrind slows a poll some fiftyfold and
/// the clock would then decide, from run to run, which calls are spawned;
/// natively, the quick calls it sends are all polled inline.
#[cfg(courier_untimed_inline)]
const QUICK: Duration = Duration::MAX;

/// The quick first polls in a row, on tasks of their own, that earn a
/// method the fast path.
const PROBATION: u32 = 8;

/// The time one batch's first polls may take on the connection's task.
#[cfg(not(courier_untimed_inline))]
const BATCH_BUDGET: Duration = Duration::from_millis(1);
#[cfg(courier_untimed_inline)]
const BATCH_BUDGET: Duration = Duration::MAX;

/// The methods a connection learns about.
const MAX_METHODS: usize = 32;

/// What one connection has learned of its methods.
#[derive(Default)]
pub(crate) struct InlinePolicy {
    methods: Vec<(Box<[u8]>, Arc<AtomicU32>)>,
}

/// How a new call is to be started.
pub(crate) enum Start {
    /// Polled on the connection's task, then spawned if not finished.
    Inline(Arc<AtomicU32>),
    /// Spawned, its first poll timed to teach the method's record.
    Probe(Arc<AtomicU32>),
    /// Spawned.
    Spawn,
}

impl InlinePolicy {
    /// How to start a call to `path`.
    pub(crate) fn choose(&mut self, path: &[u8]) -> Start {
        let record = match self.methods.iter().find(|(p, _)| &**p == path) {
            Some((_, record)) => record.clone(),
            None if self.methods.len() < MAX_METHODS => {
                let record = Arc::new(AtomicU32::new(0));
                self.methods.push((path.into(), record.clone()));
                record
            }
            None => return Start::Spawn,
        };
        if record.load(Ordering::Relaxed) >= PROBATION {
            Start::Inline(record)
        } else {
            Start::Probe(record)
        }
    }
}

/// The first polls of one batch, and the time they have taken.
pub(crate) struct Batch {
    used: Duration,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch { used: Duration::ZERO }
    }

    /// Starts `call` as `how` says, on the connection's task only while the
    /// batch's budget lasts.
    ///
    /// A handler that panics in a first poll here takes only its own call
    /// down, as it would in a task of its own: the call is dropped, which
    /// resets its stream, and the connection goes on.
    pub(crate) fn start<Fut>(&mut self, how: Start, call: Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let record = match how {
            Start::Inline(record) if self.used < BATCH_BUDGET => record,
            Start::Inline(_) | Start::Spawn => {
                tokio::spawn(call);
                return;
            }
            Start::Probe(record) => {
                tokio::spawn(Probed {
                    call,
                    record: Some(record),
                });
                return;
            }
        };
        let mut call = Box::pin(call);
        // A waker that does nothing: the spawned task is polled again at
        // once, which registers its own.
        let mut cx = Context::from_waker(Waker::noop());
        let began = Instant::now();
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(&mut cx)));
        let took = began.elapsed();
        self.used += took;
        if took > QUICK {
            record.store(0, Ordering::Relaxed);
        }
        match polled {
            Ok(Poll::Ready(())) => {}
            Ok(Poll::Pending) => {
                tokio::spawn(call);
            }
            Err(_) => tracing::error!("a call's handler panicked; its stream is reset"),
        }
    }
}

pin_project_lite::pin_project! {
    /// A spawned call whose first poll is timed.
    struct Probed<F> {
        #[pin]
        call: F,
        record: Option<Arc<AtomicU32>>,
    }
}

impl<F: Future<Output = ()>> Future for Probed<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let Some(record) = this.record.take() else {
            return this.call.poll(cx);
        };
        let began = Instant::now();
        let polled = this.call.poll(cx);
        if began.elapsed() > QUICK {
            record.store(0, Ordering::Relaxed);
        } else {
            // Saturates well below overflow: only reaching PROBATION counts.
            let _ = record.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(1).min(PROBATION))
            });
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_earns_the_fast_path_after_quick_probes_and_loses_it_when_slow() {
        let mut policy = InlinePolicy::default();
        let Start::Probe(record) = policy.choose(b"/a.B/C") else {
            panic!("an unknown method is probed first");
        };
        record.store(PROBATION - 1, Ordering::Relaxed);
        assert!(matches!(policy.choose(b"/a.B/C"), Start::Probe(_)));
        record.store(PROBATION, Ordering::Relaxed);
        assert!(matches!(policy.choose(b"/a.B/C"), Start::Inline(_)));
        assert!(
            matches!(policy.choose(b"/a.B/D"), Start::Probe(_)),
            "methods are learned apart"
        );
        record.store(0, Ordering::Relaxed);
        assert!(matches!(policy.choose(b"/a.B/C"), Start::Probe(_)));
    }

    #[test]
    fn methods_past_the_table_are_spawned() {
        let mut policy = InlinePolicy::default();
        for i in 0..MAX_METHODS {
            assert!(matches!(
                policy.choose(format!("/s.S/M{i}").as_bytes()),
                Start::Probe(_)
            ));
        }
        assert!(matches!(policy.choose(b"/s.S/Other"), Start::Spawn));
        assert!(matches!(policy.choose(b"/s.S/M0"), Start::Probe(_)));
    }
}
