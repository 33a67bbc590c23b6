//! Keepalive on a connection (gRFC A8): PINGs after a silence, and the
//! count of streams open that decides whether a client may PING at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::keepalive::ClientParameters;

/// The streams open on one connection, and since when none has been.
#[derive(Debug)]
pub(crate) struct StreamCounter {
    open: AtomicUsize,
    /// When the last stream ended, in nanoseconds after `epoch`.
    idle_since: AtomicU64,
    epoch: Instant,
}

impl StreamCounter {
    pub(crate) fn new() -> Arc<StreamCounter> {
        Arc::new(StreamCounter {
            open: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Counts a stream as open until the token is dropped.
    pub(crate) fn token(self: &Arc<StreamCounter>) -> StreamToken {
        self.open.fetch_add(1, Ordering::AcqRel);
        StreamToken(self.clone())
    }

    /// Streams open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// When the connection last had no stream open: now, if it has none
    /// and never had; `None` while streams are open.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        if self.open() > 0 {
            return None;
        }
        Some(self.epoch + Duration::from_nanos(self.idle_since.load(Ordering::Acquire)))
    }
}

/// One stream's place in its connection's [`StreamCounter`].
#[derive(Debug)]
pub(crate) struct StreamToken(Arc<StreamCounter>);

impl Drop for StreamToken {
    fn drop(&mut self) {
        let counter = &self.0;
        if counter.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let nanos = counter.epoch.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            counter.idle_since.store(nanos, Ordering::Release);
        }
    }
}

/// A channel's keepalive: its parameters, and the time between PINGs now,
/// which doubles each time a server says `too_many_pings` (A8).
#[derive(Debug)]
pub(crate) struct ClientKeepalive {
    pub(crate) params: ClientParameters,
    time_ms: AtomicU64,
}

impl ClientKeepalive {
    pub(crate) fn new(params: ClientParameters) -> Arc<ClientKeepalive> {
        Arc::new(ClientKeepalive {
            params,
            time_ms: AtomicU64::new(params.time.as_millis().min(u64::MAX as u128) as u64),
        })
    }

    /// The time between PINGs now.
    pub(crate) fn time(&self) -> Duration {
        Duration::from_millis(self.time_ms.load(Ordering::Acquire))
    }

    /// A server answered with GOAWAY ENHANCE_YOUR_CALM: PING half as often
    /// from now on.
    pub(crate) fn too_many_pings(&self) {
        let before = self
            .time_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_mul(2)))
            .unwrap_or_default();
        tracing::warn!(
            "the server said too_many_pings: keepalive time doubled to {:?}",
            Duration::from_millis(before.saturating_mul(2))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_pings_doubles_the_keepalive_time_each_time() {
        let keepalive = ClientKeepalive::new(ClientParameters::new(Duration::from_secs(10)));
        assert_eq!(keepalive.time(), Duration::from_secs(10));
        keepalive.too_many_pings();
        keepalive.too_many_pings();
        assert_eq!(keepalive.time(), Duration::from_secs(40));
    }

    #[test]
    fn client_keepalive_time_is_raised_to_the_minimum() {
        let params = ClientParameters::new(Duration::from_millis(1));
        assert_eq!(ClientKeepalive::new(params).time(), crate::keepalive::MIN_CLIENT_TIME);
    }

    #[test]
    fn a_connection_is_idle_only_once_every_stream_token_is_gone() {
        let counter = StreamCounter::new();
        assert!(counter.idle_since().is_some(), "idle from the start");
        let a = Arc::new(counter.token());
        let shared = a.clone();
        let b = counter.token();
        drop(a);
        assert!(counter.idle_since().is_none(), "a half still holds the first stream");
        drop(shared);
        assert!(counter.idle_since().is_none(), "the second stream is open");
        let before = Instant::now();
        drop(b);
        assert!(counter.idle_since().expect("idle") + Duration::from_millis(1) >= before);
    }
}
