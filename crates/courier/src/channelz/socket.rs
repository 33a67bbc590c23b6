//! The channelz entries of sockets: listening sockets, and connections with
//! the counters Courier's HTTP/2 engine keeps for them.
//!
//! A connection's driver owns an `Arc<SocketStats>` and counts into it as it
//! works: streams opened by either side and how they ended, DATA frames
//! that carry data sent and received (channelz's "messages": the engine
//! sees frames, not gRPC messages, and a message larger than a frame counts
//! once per frame), and keepalive PINGs sent. Each count is one relaxed
//! atomic add, with no lock and no allocation. The timestamps that go with
//! them (last stream opened by each side, last message sent and received)
//! and the connection's flow-control windows are stored once per turn of
//! the driver, not per frame, from the instant the driver read for its
//! timers that turn: the engine reads no clock for channelz. The instant's
//! conversion to wall-clock time is reused for a millisecond, so the
//! timestamps are to the millisecond.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::registry::{REGISTRY, instant_nanos, next_id};
use super::server::ServerEntry;

/// A socket's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SockAddr {
    /// An IP address and port.
    Tcp(SocketAddr),
    /// A Unix socket, by path (empty for an unnamed one).
    Unix(String),
}

impl std::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SockAddr::Tcp(addr) => write!(f, "{addr}"),
            SockAddr::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

/// What TLS agreed on for a connection.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsInfo {
    /// The cipher suite, by its standard (IANA) name.
    pub(crate) cipher_suite: Option<String>,
    /// This side's certificate (DER), when known.
    pub(crate) local_certificate: Vec<u8>,
    /// The peer's certificate (DER), when it sent one.
    pub(crate) remote_certificate: Vec<u8>,
}

/// Where a connection came from and what secures it, known before its
/// HTTP/2 driver starts.
#[derive(Clone, Debug, Default)]
pub(crate) struct SocketInfo {
    pub(crate) local: Option<SockAddr>,
    pub(crate) remote: Option<SockAddr>,
    pub(crate) tls: Option<TlsInfo>,
    /// The name the connection was made for, when it is not the address.
    pub(crate) remote_name: String,
}

/// The counters of one connection, shared by its driver (which writes
/// them) and the registry (which reads them).
#[derive(Debug, Default)]
pub(crate) struct SocketStats {
    streams_started: AtomicU64,
    streams_succeeded: AtomicU64,
    streams_failed: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    keepalives_sent: AtomicU64,
    last_local_stream: AtomicU64,
    last_remote_stream: AtomicU64,
    last_message_sent: AtomicU64,
    last_message_received: AtomicU64,
    local_window: AtomicI64,
    remote_window: AtomicI64,
}

/// A copy of [`SocketStats`]; timestamps in nanoseconds since the Unix
/// epoch, 0 for never.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SocketTotals {
    pub(crate) streams_started: u64,
    pub(crate) streams_succeeded: u64,
    pub(crate) streams_failed: u64,
    pub(crate) messages_sent: u64,
    pub(crate) messages_received: u64,
    pub(crate) keepalives_sent: u64,
    pub(crate) last_local_stream: u64,
    pub(crate) last_remote_stream: u64,
    pub(crate) last_message_sent: u64,
    pub(crate) last_message_received: u64,
    pub(crate) local_window: i64,
    pub(crate) remote_window: i64,
}

impl SocketStats {
    /// When the peer last opened a stream, as [`SocketTally::publish`]
    /// stored it: a server's calls take it as their start.
    pub(crate) fn last_remote_stream(&self) -> u64 {
        self.last_remote_stream.load(Ordering::Relaxed)
    }

    pub(crate) fn totals(&self) -> SocketTotals {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SocketTotals {
            streams_started: get(&self.streams_started),
            streams_succeeded: get(&self.streams_succeeded),
            streams_failed: get(&self.streams_failed),
            messages_sent: get(&self.messages_sent),
            messages_received: get(&self.messages_received),
            keepalives_sent: get(&self.keepalives_sent),
            last_local_stream: get(&self.last_local_stream),
            last_remote_stream: get(&self.last_remote_stream),
            last_message_sent: get(&self.last_message_sent),
            last_message_received: get(&self.last_message_received),
            local_window: self.local_window.load(Ordering::Relaxed),
            remote_window: self.remote_window.load(Ordering::Relaxed),
        }
    }
}

/// The timestamps a driver's turn owes its [`SocketStats`].
const LOCAL_STREAM: u8 = 1;
const REMOTE_STREAM: u8 = 2;
const SENT: u8 = 4;
const RECEIVED: u8 = 8;

/// How long a converted timestamp is reused: channelz's socket timestamps
/// are to the millisecond, so that most turns of a busy connection convert
/// no instant at all.
const STAMP_GRANULARITY: std::time::Duration = std::time::Duration::from_millis(1);

/// A driver's side of its [`SocketStats`]: the counting, and the
/// timestamps owed since the last [`SocketTally::publish`].
pub(crate) struct SocketTally {
    stats: Arc<SocketStats>,
    owed: u8,
    /// The last instant converted to wall-clock time, as `stamp_nanos`,
    /// reused until `fresh_until` (`None` before the first).
    fresh_until: Option<Instant>,
    stamp_nanos: u64,
}

impl SocketTally {
    pub(crate) fn new(stats: Arc<SocketStats>) -> SocketTally {
        SocketTally {
            stats,
            owed: 0,
            fresh_until: None,
            stamp_nanos: 0,
        }
    }

    /// A stream opened, by this side (`local`) or the peer.
    #[inline]
    pub(crate) fn stream_opened(&mut self, local: bool) {
        self.stats.streams_started.fetch_add(1, Ordering::Relaxed);
        self.owed |= if local { LOCAL_STREAM } else { REMOTE_STREAM };
    }

    /// A stream closed: cleanly (both sides ended it) or not (reset, or
    /// its connection went away).
    #[inline]
    pub(crate) fn stream_closed(&mut self, clean: bool) {
        let counter = if clean {
            &self.stats.streams_succeeded
        } else {
            &self.stats.streams_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` streams failed together, when their connection ended.
    pub(crate) fn streams_failed(&mut self, n: usize) {
        if n > 0 {
            self.stats.streams_failed.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// A DATA frame with data went out.
    #[inline]
    pub(crate) fn message_sent(&mut self) {
        self.stats.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.owed |= SENT;
    }

    /// A DATA frame with data arrived.
    #[inline]
    pub(crate) fn message_received(&mut self) {
        self.stats.messages_received.fetch_add(1, Ordering::Relaxed);
        self.owed |= RECEIVED;
    }

    /// A keepalive PING went out.
    pub(crate) fn keepalive_sent(&mut self) {
        self.stats.keepalives_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Stores the turn's timestamps, as of `now` (to the millisecond), and
    /// the connection's windows: what the peer lets this side send
    /// (`local_window`) and what this side lets the peer send.
    #[inline]
    pub(crate) fn publish(&mut self, now: Instant, local_window: i64, remote_window: i64) {
        self.stats.local_window.store(local_window, Ordering::Relaxed);
        self.stats.remote_window.store(remote_window, Ordering::Relaxed);
        if self.owed != 0 {
            self.stamp(now);
        }
    }

    fn stamp(&mut self, now: Instant) {
        if self.fresh_until.is_none_or(|until| now >= until) {
            self.stamp_nanos = instant_nanos(now);
            self.fresh_until = now.checked_add(STAMP_GRANULARITY);
        }
        let (at, owed, stats) = (self.stamp_nanos, self.owed, &*self.stats);
        if owed & LOCAL_STREAM != 0 {
            stats.last_local_stream.store(at, Ordering::Relaxed);
        }
        if owed & REMOTE_STREAM != 0 {
            stats.last_remote_stream.store(at, Ordering::Relaxed);
        }
        if owed & SENT != 0 {
            stats.last_message_sent.store(at, Ordering::Relaxed);
        }
        if owed & RECEIVED != 0 {
            stats.last_message_received.store(at, Ordering::Relaxed);
        }
        self.owed = 0;
    }
}

/// A socket, as channelz sees it: a listening socket, or a connection with
/// its counters. It leaves the registry (and its server's list) when
/// dropped.
pub(crate) struct SocketEntry {
    pub(crate) id: i64,
    pub(crate) info: SocketInfo,
    /// `None` for a listening socket.
    pub(crate) stats: Option<Arc<SocketStats>>,
    /// The server that accepted the connection, which lists it.
    server: Option<Weak<ServerEntry>>,
}

impl SocketEntry {
    /// Registers a connection described by `info`, counted in `stats`, and
    /// accepted by `server` if it was.
    pub(crate) fn register(
        info: SocketInfo,
        stats: Arc<SocketStats>,
        server: Option<&Arc<ServerEntry>>,
    ) -> Arc<SocketEntry> {
        let entry = Arc::new(SocketEntry {
            id: next_id(),
            info,
            stats: Some(stats),
            server: server.map(Arc::downgrade),
        });
        REGISTRY.sockets.insert(entry.id, &entry);
        if let Some(server) = server {
            server.add_socket(&entry);
        }
        entry
    }

    /// Registers a listening socket bound to `local`.
    pub(crate) fn register_listener(local: Option<SockAddr>) -> Arc<SocketEntry> {
        let entry = Arc::new(SocketEntry {
            id: next_id(),
            info: SocketInfo {
                local,
                ..SocketInfo::default()
            },
            stats: None,
            server: None,
        });
        REGISTRY.sockets.insert(entry.id, &entry);
        entry
    }

    /// A name for people: the local and remote addresses.
    pub(crate) fn name(&self) -> String {
        let show = |a: &Option<SockAddr>| a.as_ref().map(|a| a.to_string()).unwrap_or_else(|| "?".into());
        match self.stats {
            None => format!("listening on {}", show(&self.info.local)),
            Some(_) => format!("{} -> {}", show(&self.info.local), show(&self.info.remote)),
        }
    }
}

impl Drop for SocketEntry {
    fn drop(&mut self) {
        REGISTRY.sockets.remove(self.id);
        if let Some(server) = self.server.as_ref().and_then(Weak::upgrade) {
            server.remove_socket(self.id);
        }
    }
}

/// The standard (IANA) name of a cipher suite rustls names `name`: rustls
/// spells TLS 1.3's suites `TLS13_...` where the registry has `TLS_...`.
#[cfg(feature = "tls")]
pub(crate) fn standard_cipher_name(name: &str) -> String {
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_at_once_and_stamps_at_publish() {
        let stats = Arc::new(SocketStats::default());
        let mut tally = SocketTally::new(stats.clone());
        tally.stream_opened(false);
        tally.message_received();
        tally.message_sent();
        tally.stream_closed(true);
        tally.keepalive_sent();
        let before = stats.totals();
        assert_eq!(
            (
                before.streams_started,
                before.streams_succeeded,
                before.messages_sent,
                before.messages_received
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(before.keepalives_sent, 1);
        assert_eq!(before.last_remote_stream, 0, "timestamps wait for the end of the turn");
        tally.publish(Instant::now(), 100, 200);
        let after = stats.totals();
        assert!(after.last_remote_stream > 0 && after.last_message_sent > 0 && after.last_message_received > 0);
        assert_eq!(stats.last_remote_stream(), after.last_remote_stream);
        assert_eq!(after.last_local_stream, 0, "no stream of this side's");
        assert_eq!((after.local_window, after.remote_window), (100, 200));
    }

    #[test]
    fn timestamps_within_a_millisecond_share_one_conversion() {
        let stats = Arc::new(SocketStats::default());
        let mut tally = SocketTally::new(stats.clone());
        let start = Instant::now();
        tally.message_sent();
        tally.publish(start, 0, 0);
        let first = stats.totals().last_message_sent;
        tally.message_received();
        tally.publish(start + std::time::Duration::from_micros(100), 0, 0);
        assert_eq!(
            stats.totals().last_message_received,
            first,
            "reused within the millisecond"
        );
        tally.message_received();
        tally.publish(start + std::time::Duration::from_millis(5), 0, 0);
        let later = stats.totals().last_message_received;
        assert!(later >= first + 4_000_000, "{first} then {later}");
        assert_eq!(stats.totals().last_message_sent, first, "only what was owed moves");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls13_suites_get_their_standard_names() {
        assert_eq!(
            standard_cipher_name("TLS13_AES_128_GCM_SHA256"),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            standard_cipher_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }
}
