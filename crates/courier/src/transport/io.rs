//! Socket I/O under the HTTP/2 engine: large reads, and writes gathered until
//! the connection's task has done all it can for now.
//!
//! h2 reads at most 8 KiB at a time and writes each DATA frame it does not
//! copy with a `writev` of its own, so a busy connection pays a system call
//! for every few messages. [`buffered`] splits a socket into the handle h2
//! owns and a [`Flusher`] the connection's task keeps. Once a read fills
//! h2's buffer, the next ones fill a 256 KiB buffer in one call, until the
//! socket runs dry. Writes are copied into a buffer and h2's flushes are
//! no-ops; the task calls [`Flusher::poll_flush`] after each time it polls
//! h2, which sends everything h2 wrote in that poll in one system call.
//!
//! Both buffers are taken when needed and given back as soon as they are
//! empty, so an idle connection holds neither. A write of h2's own buffer
//! with nothing chained to it and nothing gathered yet (a poll that answered
//! only unary calls) goes straight to the socket, as do writes larger than
//! the buffer. A write error is kept and returned to h2 on its next write
//! and read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes asked of the socket in one read.
const READ_CHUNK: usize = 256 * 1024;

/// Bytes gathered before they are written without waiting for the flush.
const WRITE_LIMIT: usize = 256 * 1024;

/// Splits `io` into the handle to give h2 and the flusher its driver keeps.
pub(crate) fn buffered<T>(io: T) -> (BufferedIo<T>, Flusher<T>) {
    let shared = Arc::new(Mutex::new(State {
        io,
        read: BytesMut::new(),
        busy: false,
        write: BytesMut::new(),
        write_error: None,
        greeting: Greeting::Done,
        last_read: std::time::Instant::now(),
    }));
    (BufferedIo { shared: shared.clone() }, Flusher { shared })
}

/// The socket as h2 sees it. Its `poll_flush` does not write: the
/// [`Flusher`] does, once h2 is done.
pub(crate) struct BufferedIo<T> {
    shared: Arc<Mutex<State<T>>>,
}

/// When the peer was last heard from, for keepalive.
pub(crate) struct Activity<T> {
    shared: Arc<Mutex<State<T>>>,
}

impl<T> Activity<T> {
    /// When the last read that brought bytes (or the end) returned.
    pub(crate) fn last_read(&self) -> std::time::Instant {
        lock(&self.shared).last_read
    }
}

/// The connection task's side: writes out what h2 gathered.
pub(crate) struct Flusher<T> {
    shared: Arc<Mutex<State<T>>>,
}

struct State<T> {
    io: T,
    /// Received bytes h2 has not read yet.
    read: BytesMut,
    /// The last read filled what it was given: read ahead, in large reads,
    /// until the socket runs dry.
    busy: bool,
    /// Bytes h2 wrote that have not reached the socket yet.
    write: BytesMut,
    /// The error of a write the flusher made, for h2's next write.
    write_error: Option<io::ErrorKind>,
    /// How far the peer's greeting has arrived, when it is watched.
    greeting: Greeting,
    /// When the peer was last heard from, for keepalive.
    last_read: std::time::Instant,
}

/// The peer's HTTP/2 greeting as the bytes arrive: a client's connection
/// preface, then its first frame, which must be SETTINGS. It is only
/// counted here (h2 checks what it says), so that a server can bound the
/// time a connection takes to greet it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Greeting {
    /// `seen` bytes have arrived, of a preface of `preface` bytes and the
    /// frame header in `header`.
    Arriving {
        preface: usize,
        seen: usize,
        header: [u8; 9],
    },
    /// Arrived, or not watched.
    Done,
}

impl Greeting {
    /// Counts bytes h2 is given to read.
    fn observe(&mut self, bytes: &[u8]) {
        let Greeting::Arriving { preface, seen, header } = self else {
            return;
        };
        for (i, &b) in bytes.iter().enumerate() {
            let at = *seen + i;
            if at >= *preface + 9 {
                break;
            }
            if at >= *preface {
                header[at - *preface] = b;
            }
        }
        *seen += bytes.len();
        if *seen >= *preface + 9 {
            let payload = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            if *seen >= *preface + 9 + payload {
                *self = Greeting::Done;
            }
        }
    }
}

fn lock<T>(shared: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    // Nothing panics while holding the lock, but a poisoned lock still
    // guards consistent buffers.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: AsyncWrite + Unpin> State<T> {
    /// Writes the gathered bytes until none are left or the socket is full.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.write.is_empty() {
            let error = match Pin::new(&mut self.io).poll_write(cx, &self.write) {
                Poll::Ready(Ok(0)) => io::ErrorKind::WriteZero.into(),
                Poll::Ready(Ok(n)) => {
                    self.write.advance(n);
                    continue;
                }
                Poll::Ready(Err(e)) => e,
                Poll::Pending => return Poll::Pending,
            };
            // The connection is broken: what is left can never be sent.
            self.write = BytesMut::new();
            self.write_error = Some(error.kind());
            return Poll::Ready(Err(error));
        }
        // Give the buffer back: an idle connection keeps none.
        self.write = BytesMut::new();
        Poll::Ready(Ok(()))
    }

    fn error(&mut self) -> io::Result<()> {
        match self.write_error {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for BufferedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, dst: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = lock(&self.shared);
        let state = &mut *state;
        if let Some(kind) = state.write_error {
            // The connection is broken: let h2 see it on the read side too.
            return Poll::Ready(Err(kind.into()));
        }
        if state.read.is_empty() {
            if !state.busy || dst.remaining() >= READ_CHUNK {
                // Straight into h2's buffer. A read that fills it means the
                // socket may hold more: the next reads are large ones.
                let room = dst.remaining();
                let before = dst.filled().len();
                if Pin::new(&mut state.io).poll_read(cx, dst)?.is_pending() {
                    state.busy = false;
                    return Poll::Pending;
                }
                state.busy = room > 0 && dst.filled().len() - before == room;
                state.greeting.observe(&dst.filled()[before..]);
                state.last_read = std::time::Instant::now();
                return Poll::Ready(Ok(()));
            }
            // Empty, so this moves no bytes: it only takes back the room
            // that earlier reads used up.
            state.read.reserve(READ_CHUNK);
            if tokio_util::io::poll_read_buf(Pin::new(&mut state.io), cx, &mut state.read)?.is_pending() {
                // Waiting for the peer: hold no buffer meanwhile.
                state.read = BytesMut::new();
                state.busy = false;
                return Poll::Pending;
            }
            // Zero bytes read is the end of the stream, and reads as such.
        }
        let n = dst.remaining().min(state.read.len());
        state.greeting.observe(&state.read[..n]);
        state.last_read = std::time::Instant::now();
        dst.put_slice(&state.read[..n]);
        state.read.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for BufferedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut state = lock(&self.shared);
        state.error()?;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if state.write.len() + len > WRITE_LIMIT {
            std::task::ready!(state.poll_drain(cx))?;
            if len > WRITE_LIMIT {
                return Pin::new(&mut state.io).poll_write_vectored(cx, bufs);
            }
        }
        if state.write.is_empty() && bufs.iter().filter(|b| !b.is_empty()).count() <= 1 {
            // h2 writing out its own buffer with no DATA payload chained to
            // it: the end of a poll that made only small frames, such as a
            // unary call's response. There is nothing to gather it with, so
            // it goes out as it is, without a copy.
            return Pin::new(&mut state.io).poll_write_vectored(cx, bufs);
        }
        if state.write.capacity() == 0 {
            // Room for a whole batch, so that gathering never grows the
            // buffer by copying. Only the pages written to are touched, and
            // the buffer is given back when drained; a connection that only
            // ever writes h2's own buffer (unary calls) never takes one.
            state.write = BytesMut::with_capacity(WRITE_LIMIT);
        }
        for b in bufs {
            state.write.extend_from_slice(b);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Does not write: the driver's [`Flusher`] does, after h2's poll.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(lock(&self.shared).error())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = lock(&self.shared);
        state.error()?;
        std::task::ready!(state.poll_drain(cx))?;
        std::task::ready!(Pin::new(&mut state.io).poll_flush(cx))?;
        Pin::new(&mut state.io).poll_shutdown(cx)
    }
}

/// Runs `fut` (h2's handshake or connection), flushing after each poll.
pub(crate) fn flushed<T, F>(flusher: &Flusher<T>, fut: F) -> Flushed<'_, T, F> {
    Flushed { flusher, fut }
}

pin_project_lite::pin_project! {
    /// The future of [`flushed`]: a struct, so that `fut` is stored once
    /// (an `async fn` would hold it both as its argument and as its local).
    pub(crate) struct Flushed<'a, T, F> {
        flusher: &'a Flusher<T>,
        #[pin]
        fut: F,
    }
}

impl<T, F> Future for Flushed<'_, T, F>
where
    T: AsyncWrite + Unpin,
    F: Future,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = this.fut.poll(cx);
        // Pending here means the socket is full; its readiness wakes the task.
        let _ = this.flusher.poll_flush(cx);
        polled
    }
}

impl<T> Flusher<T> {
    /// Starts counting the peer's greeting: a preface of `preface` bytes (24
    /// from an HTTP/2 client, none from a server), then its first frame.
    pub(crate) fn watch_greeting(&self, preface: usize) {
        lock(&self.shared).greeting = Greeting::Arriving {
            preface,
            seen: 0,
            header: [0; 9],
        };
    }

    /// Whether the watched greeting has arrived whole (true when unwatched).
    pub(crate) fn greeted(&self) -> bool {
        lock(&self.shared).greeting == Greeting::Done
    }

    /// A handle that tells whether the peer has been heard from.
    pub(crate) fn activity(&self) -> Activity<T> {
        Activity {
            shared: self.shared.clone(),
        }
    }
}

impl<T: AsyncWrite + Unpin> Flusher<T> {
    /// Writes out everything h2 has written so far. Call it after every poll
    /// of h2's connection (or handshake). Pending when the socket is full:
    /// the task is woken when it can take more. A write error is kept for
    /// h2, which then ends the connection.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.shared);
        if state.write.is_empty() {
            return Poll::Ready(());
        }
        let result = match state.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut state.io).poll_flush(cx),
            other => other,
        };
        match result {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(()),
            Poll::Ready(Err(e)) => {
                state.write_error = Some(e.kind());
                // Poll h2 again so that it meets the error and ends.
                cx.waker().wake_by_ref();
                Poll::Ready(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (a.unwrap(), b.unwrap().0)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Writes `bytes` the way h2 writes a DATA frame whose payload it did
    /// not copy: a frame header and the payload, as two slices.
    async fn write_frame(h: &mut BufferedIo<TcpStream>, bytes: &[u8]) -> io::Result<()> {
        let (head, payload) = bytes.split_at(9.min(bytes.len()));
        let n = h
            .write_vectored(&[io::IoSlice::new(head), io::IoSlice::new(payload)])
            .await?;
        assert_eq!(n, bytes.len(), "a gathered write was taken in part");
        Ok(())
    }

    #[test]
    fn the_greeting_is_done_after_the_preface_and_the_whole_first_frame() {
        // A 24-byte preface, then a SETTINGS frame with one 6-byte setting.
        let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0, 3, 0, 0, 0, 100]);
        for cut in 0..bytes.len() {
            let mut g = Greeting::Arriving {
                preface: 24,
                seen: 0,
                header: [0; 9],
            };
            g.observe(&bytes[..cut]);
            assert_ne!(g, Greeting::Done, "done after only {cut} bytes");
            g.observe(&bytes[cut..]);
            assert_eq!(g, Greeting::Done, "not done with the cut at {cut}");
        }
    }

    #[tokio::test]
    async fn writes_wait_for_the_flusher_then_leave_together_in_order() {
        let (a, mut b) = pair().await;
        let (mut h, flusher) = buffered(a);
        let data = pattern(40_000);
        for chunk in data.chunks(1_000) {
            write_frame(&mut h, chunk).await.unwrap();
            // h2's own flush: gathers, writes nothing.
            h.flush().await.unwrap();
        }
        // Every byte is still gathered in the write buffer: none was
        // written to the socket.
        assert_eq!(
            lock(&flusher.shared).write.len(),
            data.len(),
            "bytes went to the socket before the flusher ran"
        );
        let mut probe = [0u8; 1];
        let early = b.try_read(&mut probe);
        assert!(
            matches!(&early, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "bytes reached the peer before the flusher ran: {early:?}"
        );
        poll_fn(|cx| flusher.poll_flush(cx)).await;
        let mut got = vec![0u8; data.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, data);
        assert_eq!(
            lock(&flusher.shared).write.capacity(),
            0,
            "an idle connection keeps no write buffer"
        );
    }

    #[tokio::test]
    async fn a_lone_write_with_nothing_to_gather_goes_straight_out() {
        let (a, mut b) = pair().await;
        let (mut h, flusher) = buffered(a);
        // h2 writing its own buffer, no payload chained: a unary response.
        let data = pattern(300);
        h.write_all(&data).await.unwrap();
        let mut got = vec![0u8; data.len()];
        tokio::time::timeout(Duration::from_secs(5), b.read_exact(&mut got))
            .await
            .expect("the write waited for the flusher")
            .unwrap();
        assert_eq!(got, data);
        assert_eq!(lock(&flusher.shared).write.capacity(), 0, "the write was copied");
    }

    #[tokio::test]
    async fn mixed_writes_against_a_slow_reader_lose_and_reorder_nothing() {
        let (a, mut b) = pair().await;
        let (mut h, flusher) = buffered(a);
        // Small writes, writes near the limit, and writes larger than it
        // (which go straight to the socket), far more than the socket holds.
        let sizes = [100, 1_029, 300 * 1024, 9, 70_000, WRITE_LIMIT, WRITE_LIMIT + 1, 5];
        let mut data = Vec::new();
        for round in 0..6 {
            for (i, size) in sizes.iter().enumerate() {
                let byte = (round * sizes.len() + i) as u8;
                data.extend(std::iter::repeat_n(byte, *size));
            }
        }
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            flushed(&flusher, async {
                let mut at = 0;
                for _ in 0..6 {
                    for (i, size) in sizes.into_iter().enumerate() {
                        // Both shapes h2 writes: its own buffer alone, and a
                        // frame with its payload chained.
                        let bytes = &data[at..at + size];
                        if i % 2 == 0 {
                            h.write_all(bytes).await.unwrap();
                        } else if size <= WRITE_LIMIT {
                            write_frame(&mut h, bytes).await.unwrap();
                        } else {
                            h.write_all(bytes).await.unwrap();
                        }
                        at += size;
                    }
                }
                h.shutdown().await.unwrap();
            })
            .await;
        });
        // Far more than the socket holds, read in small pieces: the writer
        // runs into backpressure whatever the scheduling.
        let mut got = Vec::with_capacity(expected.len());
        let mut piece = [0u8; 4096];
        loop {
            let n = b.read(&mut piece).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&piece[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the bytes arrived changed or out of order");
    }

    #[tokio::test]
    async fn reads_through_a_small_buffer_are_exact_and_the_read_buffer_is_released_when_idle() {
        let (a, mut b) = pair().await;
        let (mut h, _flusher) = buffered(a);
        let data = pattern(1024 * 1024 + 17);
        b.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 8 * 1024];
        while got.len() < data.len() {
            let n = h.read(&mut chunk).await.unwrap();
            assert!(n > 0, "early end of stream");
            got.extend_from_slice(&chunk[..n]);
        }
        assert!(got == data, "the bytes read changed or out of order");
        // Nothing more to read: the next read is pending, holding no buffer.
        let polled = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut chunk);
            Poll::Ready(
                Pin::new(&mut h)
                    .poll_read(cx, &mut buf)
                    .map(|r| r.map(|()| buf.filled().len())),
            )
        })
        .await;
        assert!(polled.is_pending(), "a read returned with nothing sent: {polled:?}");
        {
            let state = lock(&h.shared);
            assert_eq!(state.read.capacity(), 0, "an idle connection keeps no read buffer");
            assert!(!state.busy);
        }
        // The end of the stream still reads as such.
        drop(b);
        assert_eq!(h.read(&mut chunk).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_failed_flush_is_reported_to_the_next_write_and_read() {
        let (a, b) = pair().await;
        let (mut h, flusher) = buffered(a);
        drop(b);
        // Small writes: only the flusher writes to the socket.
        let block = vec![7u8; 1024];
        let mut failed = None;
        // Over loopback the peer's reset comes back within the write that
        // provoked it, so the next write sees it; yielding lets the
        // runtime deliver the socket's events.
        for _ in 0..10_000 {
            if let Err(e) = write_frame(&mut h, &block).await {
                failed = Some(e);
                break;
            }
            poll_fn(|cx| flusher.poll_flush(cx)).await;
            tokio::task::yield_now().await;
        }
        let failed = failed.expect("writes to a closed peer kept succeeding");
        assert!(
            matches!(
                failed.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{failed:?}"
        );
        let mut buf = [0u8; 16];
        assert!(
            h.read(&mut buf).await.is_err(),
            "the read side did not see the broken connection"
        );
    }
}
