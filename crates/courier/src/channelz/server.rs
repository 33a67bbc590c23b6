//! The channelz entries of servers: call counters, listening sockets, and
//! the connections they accepted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::channel::CallCounts;
use super::registry::{REGISTRY, next_id, page};
use super::socket::SocketEntry;
use super::trace::{Severity, Trace};

/// A server, as channelz sees it. Its calls are counted at the transport's
/// seam (`transport::stream::CallOutcome`): started when a stream becomes a
/// call, ended when the call's status goes out (OK: succeeded) or the call
/// goes without one (failed).
pub(crate) struct ServerEntry {
    /// 0 for an entry that was never registered (a server not serving).
    pub(crate) id: i64,
    pub(crate) calls: CallCounts,
    pub(crate) trace: Trace,
    listeners: Mutex<Vec<Weak<SocketEntry>>>,
    sockets: Mutex<BTreeMap<i64, Weak<SocketEntry>>>,
}

impl ServerEntry {
    /// An entry for a server that is not serving: counted in, but not
    /// registered.
    pub(crate) fn unregistered() -> Arc<ServerEntry> {
        Arc::new(ServerEntry::with_id(0))
    }

    fn with_id(id: i64) -> ServerEntry {
        ServerEntry {
            id,
            calls: CallCounts::default(),
            trace: Trace::new(),
            listeners: Mutex::new(Vec::new()),
            sockets: Mutex::new(BTreeMap::new()),
        }
    }

    /// Registers a server that starts serving.
    pub(crate) fn register() -> Arc<ServerEntry> {
        let entry = Arc::new(ServerEntry::with_id(next_id()));
        entry.trace.log(Severity::Info, "Server started", None);
        REGISTRY.servers.insert(entry.id, &entry);
        entry
    }

    /// A call arrived, at `at` (nanoseconds since the Unix epoch).
    pub(crate) fn call_started(&self, at: u64) {
        self.calls.started_at(at);
    }

    /// A call ended: with OK (`ok`) or another status.
    pub(crate) fn call_ended(&self, ok: bool) {
        self.calls.ended(ok);
    }

    /// The server listens on `socket`.
    pub(crate) fn add_listener(&self, socket: &Arc<SocketEntry>) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.retain(|weak| weak.strong_count() > 0);
        listeners.push(Arc::downgrade(socket));
    }

    /// The sockets the server listens on.
    pub(crate) fn listeners(&self) -> Vec<Arc<SocketEntry>> {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.iter().filter_map(Weak::upgrade).collect()
    }

    fn sockets(&self) -> MutexGuard<'_, BTreeMap<i64, Weak<SocketEntry>>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add_socket(&self, socket: &Arc<SocketEntry>) {
        self.sockets().insert(socket.id, Arc::downgrade(socket));
    }

    pub(crate) fn remove_socket(&self, id: i64) {
        self.sockets().remove(&id);
    }

    /// Up to `max` of the server's connections from id `start` on, and
    /// whether there are no more.
    pub(crate) fn socket_page(&self, start: i64, max: usize) -> (Vec<Arc<SocketEntry>>, bool) {
        page(&self.sockets(), start, max)
    }
}

impl Drop for ServerEntry {
    fn drop(&mut self) {
        if self.id != 0 {
            REGISTRY.servers.remove(self.id);
        }
    }
}
