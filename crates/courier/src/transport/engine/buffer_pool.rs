//! A small pool of large I/O buffers per thread. A connection waiting for
//! its peer gives its empty read buffer back here, and takes one again when
//! bytes arrive; the flat write buffer of a socket without vectored writes
//! does the same once written. So a connection that is not reading or
//! writing holds no such buffer, and one that reads often does not pay for
//! an allocation and a free of 64 KiB on each read.
//!
//! Only a buffer whose whole allocation is free again is kept: one whose
//! bytes are still shared (DATA payloads are handed on as slices of the
//! read buffer) is dropped, and its memory goes when the last slice does.
//! Each thread keeps at most [`POOL_MAX`] buffers.

use std::cell::RefCell;

use bytes::BytesMut;

/// The most buffers a thread keeps.
pub(crate) const POOL_MAX: usize = 4;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `capacity` bytes: a pooled one
/// if the thread has one that large, else a new one.
pub(crate) fn take(capacity: usize) -> BytesMut {
    let pooled = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let at = pool.iter().rposition(|buf| buf.capacity() >= capacity)?;
            Some(pool.swap_remove(at))
        })
        .ok()
        .flatten();
    pooled.unwrap_or_else(|| BytesMut::with_capacity(capacity))
}

/// Gives back a buffer that is done with: kept for [`take`] if it is empty,
/// its allocation is its own again with room for `capacity` bytes, and the
/// thread's pool has room; dropped otherwise.
pub(crate) fn give(mut buf: BytesMut, capacity: usize) {
    if buf.capacity() == 0 || !buf.is_empty() || !buf.try_reclaim(capacity) {
        return;
    }
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    });
}

/// How many buffers this thread's pool holds.
#[cfg(test)]
pub(crate) fn pooled() -> usize {
    POOL.with_borrow(Vec::len)
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    #[test]
    fn a_given_back_buffer_is_taken_again_without_a_new_allocation() {
        let mut buf = take(1024);
        buf.put_slice(b"frame");
        let first = buf.as_ptr();
        let _ = buf.split();
        give(buf, 1024);
        let again = take(1024);
        assert_eq!(again.as_ptr(), first, "the pooled allocation was reused");
        assert!(again.is_empty() && again.capacity() >= 1024);
    }

    #[test]
    fn a_buffer_whose_bytes_are_still_shared_is_not_pooled() {
        let before = pooled();
        let mut buf = take(1024);
        buf.put_slice(b"payload handed on");
        let payload = buf.split().freeze();
        give(buf, 1024);
        assert_eq!(pooled(), before, "a shared allocation was pooled");
        assert_eq!(&payload[..], b"payload handed on");
    }

    #[test]
    fn a_thread_keeps_at_most_pool_max_buffers() {
        // Whatever an earlier test on this thread left, taken out first.
        while pooled() > 0 {
            drop(take(0));
        }
        let buffers: Vec<BytesMut> = (0..POOL_MAX + 3).map(|_| take(64)).collect();
        for buf in buffers {
            give(buf, 64);
        }
        assert_eq!(pooled(), POOL_MAX);
    }
}
