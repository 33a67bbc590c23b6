//! Channel traces: the recent events of a channel, subchannel or server
//! (its creation, its state changes, the subchannels it made), kept in a
//! ring of [`TRACE_EVENTS`] so that a long-lived channel holds a bounded
//! number, with a count of every event ever logged.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// The events a trace keeps; older ones are dropped, and still counted.
pub const TRACE_EVENTS: usize = 32;

/// How serious an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Info,
    #[allow(dead_code)] // Nothing Courier traces is a mere warning yet.
    Warning,
    Error,
}

/// The entity an event is about, when it is about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Child {
    #[allow(dead_code)] // Courier's channels have no child channels yet.
    Channel(i64),
    Subchannel(i64),
}

/// One event.
#[derive(Clone, Debug)]
pub(crate) struct TraceEvent {
    pub(crate) description: String,
    pub(crate) severity: Severity,
    pub(crate) at: SystemTime,
    pub(crate) child: Option<Child>,
}

/// The recent events of one entity.
pub(crate) struct Trace {
    created: SystemTime,
    inner: Mutex<Ring>,
}

struct Ring {
    logged: u64,
    events: VecDeque<TraceEvent>,
}

/// A copy of a trace, as the service reports it.
pub(crate) struct TraceSnapshot {
    pub(crate) created: SystemTime,
    pub(crate) logged: u64,
    pub(crate) events: Vec<TraceEvent>,
}

impl Trace {
    /// An empty trace of an entity created now.
    pub(crate) fn new() -> Trace {
        Trace {
            created: SystemTime::now(),
            inner: Mutex::new(Ring {
                logged: 0,
                events: VecDeque::new(),
            }),
        }
    }

    /// Records an event that happened now.
    pub(crate) fn log(&self, severity: Severity, description: impl Into<String>, child: Option<Child>) {
        let event = TraceEvent {
            description: description.into(),
            severity,
            at: SystemTime::now(),
            child,
        };
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        ring.logged += 1;
        if ring.events.len() == TRACE_EVENTS {
            ring.events.pop_front();
        }
        ring.events.push_back(event);
    }

    /// The trace as it is now.
    pub(crate) fn snapshot(&self) -> TraceSnapshot {
        let ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        TraceSnapshot {
            created: self.created,
            logged: ring.logged,
            events: ring.events.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_latest_events_and_counts_them_all() {
        let trace = Trace::new();
        for i in 0..TRACE_EVENTS + 5 {
            trace.log(Severity::Info, format!("event {i}"), None);
        }
        let snapshot = trace.snapshot();
        assert_eq!(snapshot.logged, TRACE_EVENTS as u64 + 5);
        assert_eq!(snapshot.events.len(), TRACE_EVENTS);
        assert_eq!(snapshot.events[0].description, "event 5");
        assert_eq!(
            snapshot.events.last().unwrap().description,
            format!("event {}", TRACE_EVENTS + 4)
        );
    }
}
