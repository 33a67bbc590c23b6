//! The channelz entries of channels and subchannels: their target, state,
//! call counters and trace, and the children the service lists under them
//! (a channel's subchannels, a subchannel's connection).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::registry::{REGISTRY, next_id, now_nanos};
use super::socket::SocketEntry;
use super::trace::{Child, Severity, Trace};
use crate::client::ConnectivityState;

/// Calls started, succeeded and failed, and when the last one started: one
/// relaxed atomic add at each end of a call, and one store.
#[derive(Default)]
pub(crate) struct CallCounts {
    started: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    last_started: AtomicU64,
}

/// A copy of [`CallCounts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CallTotals {
    pub(crate) started: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    /// Nanoseconds since the Unix epoch; 0 for never.
    pub(crate) last_started: u64,
}

impl CallCounts {
    /// A call started now.
    pub(crate) fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.last_started.store(now_nanos(), Ordering::Relaxed);
    }

    /// A call started at `at` (nanoseconds since the Unix epoch).
    pub(crate) fn started_at(&self, at: u64) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.last_started.store(at, Ordering::Relaxed);
    }

    /// When the last call started (nanoseconds since the Unix epoch; 0 for
    /// never).
    pub(crate) fn last_started(&self) -> u64 {
        self.last_started.load(Ordering::Relaxed)
    }

    /// A call ended, with OK (`ok`) or another status.
    pub(crate) fn ended(&self, ok: bool) {
        let counter = if ok { &self.succeeded } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn totals(&self) -> CallTotals {
        CallTotals {
            started: self.started.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            last_started: self.last_started.load(Ordering::Relaxed),
        }
    }
}

/// A connectivity state kept in an atomic.
struct AtomicState(AtomicU8);

impl AtomicState {
    fn new(state: ConnectivityState) -> AtomicState {
        AtomicState(AtomicU8::new(state as u8))
    }

    fn store(&self, state: ConnectivityState) -> ConnectivityState {
        from_u8(self.0.swap(state as u8, Ordering::Relaxed))
    }

    fn load(&self) -> ConnectivityState {
        from_u8(self.0.load(Ordering::Relaxed))
    }
}

fn from_u8(value: u8) -> ConnectivityState {
    match value {
        0 => ConnectivityState::Idle,
        1 => ConnectivityState::Connecting,
        2 => ConnectivityState::Ready,
        3 => ConnectivityState::TransientFailure,
        _ => ConnectivityState::Shutdown,
    }
}

/// A channel the application made, as channelz sees it. It lives as long
/// as the channel's shared state, and leaves the registry with it.
pub(crate) struct ChannelEntry {
    pub(crate) id: i64,
    pub(crate) target: String,
    state: AtomicState,
    pub(crate) calls: CallCounts,
    pub(crate) trace: Trace,
    subchannels: Mutex<Vec<Weak<SubchannelEntry>>>,
}

impl ChannelEntry {
    /// Registers a new channel to `target`, IDLE.
    pub(crate) fn register(target: &str) -> Arc<ChannelEntry> {
        let entry = Arc::new(ChannelEntry {
            id: next_id(),
            target: target.to_owned(),
            state: AtomicState::new(ConnectivityState::Idle),
            calls: CallCounts::default(),
            trace: Trace::new(),
            subchannels: Mutex::new(Vec::new()),
        });
        entry.trace.log(Severity::Info, "Channel created", None);
        REGISTRY.channels.insert(entry.id, &entry);
        entry
    }

    /// The channel moved to `state`; traced when it is a change.
    pub(crate) fn set_state(&self, state: ConnectivityState) {
        if self.state.store(state) != state {
            self.trace.log(
                Severity::Info,
                format!("Channel state changed to {}", state_name(state)),
                None,
            );
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> ConnectivityState {
        self.state.load()
    }

    /// The channel's policy made `subchannel`.
    pub(crate) fn add_subchannel(&self, subchannel: &Arc<SubchannelEntry>) {
        {
            let mut children = self.subchannels.lock().unwrap_or_else(|e| e.into_inner());
            children.retain(|weak| weak.strong_count() > 0);
            children.push(Arc::downgrade(subchannel));
        }
        self.trace.log(
            Severity::Info,
            format!("Created subchannel to {}", subchannel.target),
            Some(Child::Subchannel(subchannel.id)),
        );
    }

    /// The channel's live subchannels.
    pub(crate) fn subchannels(&self) -> Vec<Arc<SubchannelEntry>> {
        let children = self.subchannels.lock().unwrap_or_else(|e| e.into_inner());
        children.iter().filter_map(Weak::upgrade).collect()
    }
}

impl Drop for ChannelEntry {
    fn drop(&mut self) {
        REGISTRY.channels.remove(self.id);
    }
}

/// A subchannel, as channelz sees it: one address, and the connection to
/// it while there is one.
pub(crate) struct SubchannelEntry {
    pub(crate) id: i64,
    /// The address.
    pub(crate) target: String,
    state: AtomicState,
    pub(crate) calls: CallCounts,
    pub(crate) trace: Trace,
    socket: Mutex<Weak<SocketEntry>>,
}

impl SubchannelEntry {
    /// Registers a new subchannel to `address`, IDLE.
    pub(crate) fn register(address: String) -> Arc<SubchannelEntry> {
        let entry = Arc::new(SubchannelEntry {
            id: next_id(),
            target: address,
            state: AtomicState::new(ConnectivityState::Idle),
            calls: CallCounts::default(),
            trace: Trace::new(),
            socket: Mutex::new(Weak::new()),
        });
        entry.trace.log(Severity::Info, "Subchannel created", None);
        REGISTRY.subchannels.insert(entry.id, &entry);
        entry
    }

    /// The subchannel moved to `state`, for the reason `why` if it failed.
    pub(crate) fn set_state(&self, state: ConnectivityState, why: Option<&str>) {
        let before = self.state.store(state);
        if before == state && why.is_none() {
            return;
        }
        let (severity, description) = match why {
            Some(why) => (
                Severity::Error,
                format!("Subchannel state changed to {}: {why}", state_name(state)),
            ),
            None => (
                Severity::Info,
                format!("Subchannel state changed to {}", state_name(state)),
            ),
        };
        self.trace.log(severity, description, None);
    }

    /// The current state.
    pub(crate) fn state(&self) -> ConnectivityState {
        self.state.load()
    }

    /// The subchannel's connection is now `socket` (dead: none).
    pub(crate) fn set_socket(&self, socket: Weak<SocketEntry>) {
        *self.socket.lock().unwrap_or_else(|e| e.into_inner()) = socket;
    }

    /// The subchannel's connection, while it has one.
    pub(crate) fn socket(&self) -> Option<Arc<SocketEntry>> {
        self.socket.lock().unwrap_or_else(|e| e.into_inner()).upgrade()
    }
}

impl Drop for SubchannelEntry {
    fn drop(&mut self) {
        REGISTRY.subchannels.remove(self.id);
    }
}

/// A state as gRPC's connectivity semantics spell it.
pub(crate) fn state_name(state: ConnectivityState) -> &'static str {
    match state {
        ConnectivityState::Idle => "IDLE",
        ConnectivityState::Connecting => "CONNECTING",
        ConnectivityState::Ready => "READY",
        ConnectivityState::TransientFailure => "TRANSIENT_FAILURE",
        ConnectivityState::Shutdown => "SHUTDOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_registered_until_dropped_and_traces_state_changes() {
        let channel = ChannelEntry::register("dns:///example.com:443");
        let id = channel.id;
        assert!(REGISTRY.channels.get(id).is_some());
        channel.set_state(ConnectivityState::Connecting);
        channel.set_state(ConnectivityState::Connecting);
        channel.set_state(ConnectivityState::Ready);
        let trace = channel.trace.snapshot();
        // Created, then two changes: the repeated state is no event.
        assert_eq!(trace.logged, 3);
        assert_eq!(trace.events[2].description, "Channel state changed to READY");
        drop(channel);
        assert!(REGISTRY.channels.get(id).is_none());
    }

    #[test]
    fn call_counts_add_up() {
        let counts = CallCounts::default();
        counts.started();
        counts.started();
        counts.ended(true);
        counts.ended(false);
        let totals = counts.totals();
        assert_eq!((totals.started, totals.succeeded, totals.failed), (2, 1, 1));
        assert!(totals.last_started > 0);
    }

    #[test]
    fn a_channel_lists_only_live_subchannels() {
        let channel = ChannelEntry::register("t");
        let a = SubchannelEntry::register("10.0.0.1:1".into());
        let b = SubchannelEntry::register("10.0.0.2:1".into());
        channel.add_subchannel(&a);
        channel.add_subchannel(&b);
        drop(a);
        let ids: Vec<i64> = channel.subchannels().iter().map(|s| s.id).collect();
        assert_eq!(ids, [b.id]);
    }
}
