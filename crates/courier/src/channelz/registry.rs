//! The process-wide registry of channelz entities: every channel,
//! subchannel, server and socket registers here when it is made, under an id
//! no other entity of the process has had or will have, and leaves when it
//! is dropped.
//!
//! The registry holds each entity weakly, so that it never keeps one alive.
//! Registering and leaving take one lock each, once per channel, subchannel,
//! server or connection, never per call; readers (the channelz service)
//! take the same locks briefly, to copy out the entities they page through.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::channel::{ChannelEntry, SubchannelEntry};
use super::server::ServerEntry;
use super::socket::SocketEntry;

/// The next id: ids start at 1 (channelz ids are positive) and only grow.
static NEXT_ID: AtomicI64 = AtomicI64::new(1);

/// A fresh id.
pub(crate) fn next_id() -> i64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Entities of one kind, by id.
pub(crate) struct Table<T> {
    entries: Mutex<BTreeMap<i64, Weak<T>>>,
}

impl<T> Table<T> {
    const fn new() -> Table<T> {
        Table {
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i64, Weak<T>>> {
        // Nothing panics while holding the lock; recover anyway.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `entry` under `id`.
    pub(crate) fn insert(&self, id: i64, entry: &Arc<T>) {
        self.lock().insert(id, Arc::downgrade(entry));
    }

    /// Takes `id` out, when its entity is dropped.
    pub(crate) fn remove(&self, id: i64) {
        self.lock().remove(&id);
    }

    /// The entity with `id`, if it is alive.
    pub(crate) fn get(&self, id: i64) -> Option<Arc<T>> {
        self.lock().get(&id).and_then(Weak::upgrade)
    }

    /// Up to `max` live entities with ids from `start` on, by ascending id,
    /// and whether there are no more after them.
    pub(crate) fn page(&self, start: i64, max: usize) -> (Vec<Arc<T>>, bool) {
        page(&self.lock(), start, max)
    }
}

/// Up to `max` live entries of `map` with ids from `start` on, and whether
/// none is left after them.
pub(crate) fn page<T>(map: &BTreeMap<i64, Weak<T>>, start: i64, max: usize) -> (Vec<Arc<T>>, bool) {
    let mut found = Vec::new();
    let mut live = map.range(start.max(0)..).filter_map(|(_, weak)| weak.upgrade());
    for entry in live.by_ref() {
        found.push(entry);
        if found.len() == max {
            break;
        }
    }
    let end = live.next().is_none();
    (found, end)
}

/// Every entity of the process, by kind.
pub(crate) struct Registry {
    pub(crate) channels: Table<ChannelEntry>,
    pub(crate) subchannels: Table<SubchannelEntry>,
    pub(crate) servers: Table<ServerEntry>,
    /// Listening sockets and connections alike.
    pub(crate) sockets: Table<SocketEntry>,
}

/// The registry.
pub(crate) static REGISTRY: Registry = Registry {
    channels: Table::new(),
    subchannels: Table::new(),
    servers: Table::new(),
    sockets: Table::new(),
};

/// The time now, in nanoseconds since the Unix epoch, as the entities keep
/// their timestamps (0 stands for never).
pub(crate) fn now_nanos() -> u64 {
    nanos(SystemTime::now())
}

/// `at` in nanoseconds since the Unix epoch; at least 1, so that it is
/// never taken for "never".
pub(crate) fn nanos(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    (since.as_nanos().min(u64::MAX as u128) as u64).max(1)
}

/// A monotonic instant and the wall-clock time it was, taken once: the
/// engine converts the instants it reads anyway into wall-clock timestamps
/// against it, with no clock read of its own.
static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();

/// `at` as [`now_nanos`] would have given it then: the wall clock of the
/// anchor plus the monotonic time since (an instant before the anchor counts
/// as the anchor). Wall-clock changes after the anchor are not followed.
pub(crate) fn instant_nanos(at: Instant) -> u64 {
    let (anchor, wall) = *ANCHOR.get_or_init(|| (Instant::now(), now_nanos()));
    let since = at.saturating_duration_since(anchor);
    wall.saturating_add(since.as_secs().saturating_mul(1_000_000_000) + u64::from(since.subsec_nanos()))
}

/// A timestamp kept as [`now_nanos`] gives it: `None` for 0, never.
pub(crate) fn from_nanos(nanos: u64) -> Option<SystemTime> {
    (nanos != 0).then(|| UNIX_EPOCH + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_only_grow() {
        let a = next_id();
        let b = next_id();
        assert!(a > 0 && b > a);
    }

    #[test]
    fn a_page_skips_dead_entries_and_says_when_it_is_the_last() {
        let live: Vec<Arc<u32>> = (0..5).map(Arc::new).collect();
        let mut map = BTreeMap::new();
        for (i, entry) in live.iter().enumerate() {
            map.insert(i as i64 + 1, Arc::downgrade(entry));
        }
        let dead = Arc::new(99);
        map.insert(10, Arc::downgrade(&dead));
        drop(dead);
        let (first, end) = page(&map, 0, 2);
        assert_eq!(first.iter().map(|e| **e).collect::<Vec<_>>(), [0, 1]);
        assert!(!end);
        let (rest, end) = page(&map, 3, 10);
        assert_eq!(rest.iter().map(|e| **e).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(end);
        // Exactly the last live entries: the dead one after them is no more.
        let (last, end) = page(&map, 4, 2);
        assert_eq!(last.len(), 2);
        assert!(end);
    }

    #[test]
    fn instants_convert_to_the_wall_clock_of_their_time() {
        let before = now_nanos();
        let converted = instant_nanos(Instant::now());
        let after = now_nanos();
        // The anchor was taken at the first conversion, at most this test's
        // length ago; a second apart allows for a wall clock that steps.
        let slack = 1_000_000_000;
        assert!(converted + slack >= before && converted <= after + slack);
        let later = instant_nanos(Instant::now() + Duration::from_secs(10));
        assert!(later >= converted + 9_000_000_000);
    }

    #[test]
    fn timestamps_round_trip_and_zero_is_never() {
        assert_eq!(from_nanos(0), None);
        let at = UNIX_EPOCH + Duration::from_nanos(1_234_567_890);
        assert_eq!(from_nanos(nanos(at)), Some(at));
    }
}
