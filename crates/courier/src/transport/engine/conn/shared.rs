//! One stream's state shared between the connection's driver and the
//! stream's handles. Each stream has its own lock, taken only by the driver
//! and that stream's handles, so no lock covers every stream of a
//! connection. The driver owns the protocol fields (the stream's id, state
//! and windows); the handles queue what is to be sent and take what was
//! received, and hand the stream to the driver with [`Stream::schedule`]
//! when it has work.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use super::Command;
use crate::transport::engine::flow::{RecvWindow, SendWindow};
use crate::transport::engine::frame::ErrorCode;
use crate::transport::engine::stream_state::StreamState;
use crate::transport::head::{Fields, OutFields, OutRequest, OutResponse, ResponseHead};

/// Why a stream ended before it finished, as its handles learn it.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    /// RST_STREAM, sent by the peer (`remote`) or by this side.
    Reset { code: ErrorCode, remote: bool },
    /// The connection is going away: GOAWAY, received (`remote`) or sent.
    /// `unprocessed` when the stream is above the GOAWAY's last stream, so
    /// the peer never saw it.
    GoAway {
        code: ErrorCode,
        remote: bool,
        unprocessed: bool,
        debug: Bytes,
    },
    /// The connection broke: an I/O error, or the peer closed it.
    Io(Arc<str>),
    /// This side broke the protocol on the connection, or closed it (for a
    /// keepalive timeout, say); the words say why.
    Local(Arc<str>),
}

/// A header block to send, before it is encoded.
#[derive(Debug)]
pub(crate) enum OutHead {
    Request(OutRequest),
    Response(OutResponse),
}

/// The state behind one stream's lock.
pub(crate) struct Inner {
    // What the driver keeps.
    /// 0 until the driver opens the stream (a client stream queued behind
    /// the peer's limit on streams).
    pub(crate) id: u32,
    pub(crate) state: StreamState,
    pub(crate) send_window: SendWindow,
    pub(crate) recv_window: RecvWindow,
    /// In the driver's command queue or its ready list.
    pub(crate) scheduled: bool,
    /// Waiting for the connection's send window.
    pub(crate) conn_blocked: bool,
    /// A stream the peer opened (this side is the server).
    pub(crate) server: bool,
    /// Bytes of a request body still to come, when content-length said.
    pub(crate) content_length: Option<u64>,

    // What the handles queue for sending.
    pub(crate) head: Option<OutHead>,
    /// END_STREAM goes with the queued headers.
    pub(crate) head_ends: bool,
    pub(crate) data: VecDeque<Bytes>,
    /// Bytes in `data`.
    pub(crate) queued: usize,
    /// END_STREAM goes after the queued data (no trailers).
    pub(crate) data_ends: bool,
    pub(crate) trailers: Option<OutFields>,
    pub(crate) reset: Option<ErrorCode>,
    /// Received bytes the application has taken, whose stream window the
    /// driver is to give back.
    pub(crate) release: u32,
    /// `release` at which the stream is handed to the driver: below it no
    /// WINDOW_UPDATE would go out anyway.
    pub(crate) release_at: u32,
    /// Our side has sent or queued END_STREAM.
    pub(crate) send_closed: bool,
    pub(crate) send_waker: Option<Waker>,

    // What the driver delivers.
    /// The response head (client streams), until taken.
    pub(crate) response: Option<ResponseHead>,
    /// The response head has arrived: later HEADERS are trailers.
    pub(crate) head_received: bool,
    pub(crate) recv: VecDeque<Bytes>,
    /// The bytes in `recv`.
    pub(crate) recv_len: usize,
    /// END_STREAM received.
    pub(crate) recv_end: bool,
    pub(crate) recv_trailers: Option<Fields>,
    pub(crate) recv_waker: Option<Waker>,
    pub(crate) reset_waker: Option<Waker>,
    pub(crate) failure: Option<Failure>,
    /// Handles alive; at 0 an unfinished stream is reset.
    pub(crate) handles: u32,
    /// The receiving handle is gone: received data is released at once.
    pub(crate) recv_dropped: bool,
}

/// What a connection's handles share beyond their own streams.
pub(crate) struct ConnShared {
    /// Received bytes the application has taken, whose connection window
    /// the driver is to give back. Added to by the handles, taken by the
    /// driver each time it runs; the driver is woken for it only once
    /// enough has gathered to be worth a WINDOW_UPDATE.
    pub(crate) released: std::sync::atomic::AtomicUsize,
    /// The bytes released at which the driver is woken: what the driver
    /// still lacks for its next WINDOW_UPDATE, kept up to date by it.
    pub(crate) wake_at: std::sync::atomic::AtomicUsize,
}

/// One stream: its lock, and the queue to its connection's driver.
pub(crate) struct Stream {
    inner: Mutex<Inner>,
    commands: UnboundedSender<Command>,
    pub(crate) conn: Arc<ConnShared>,
    /// The count of live streams this one is in, if any.
    pub(crate) live: std::sync::OnceLock<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(live) = self.live.get() {
            live.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

impl Stream {
    /// A new stream with the given windows; `id` 0 for a client stream not
    /// opened yet.
    pub(crate) fn new(
        id: u32,
        send_window: u32,
        recv_window: u32,
        commands: UnboundedSender<Command>,
        conn: Arc<ConnShared>,
    ) -> Arc<Stream> {
        Arc::new(Stream {
            inner: Mutex::new(Inner {
                id,
                state: StreamState::Idle,
                send_window: SendWindow::new(send_window),
                recv_window: RecvWindow::new(recv_window),
                scheduled: false,
                conn_blocked: false,
                server: false,
                content_length: None,
                head: None,
                head_ends: false,
                data: VecDeque::new(),
                queued: 0,
                data_ends: false,
                trailers: None,
                reset: None,
                release: 0,
                release_at: recv_window.div_ceil(2).max(1),
                send_closed: false,
                send_waker: None,
                response: None,
                head_received: false,
                recv: VecDeque::new(),
                recv_len: 0,
                recv_end: false,
                recv_trailers: None,
                recv_waker: None,
                reset_waker: None,
                failure: None,
                handles: 0,
                recv_dropped: false,
            }),
            commands,
            conn,
            live: std::sync::OnceLock::new(),
        })
    }

    /// Takes the stream's lock. A handle that panicked while holding it
    /// left consistent state behind (each update is one assignment), so a
    /// poisoned lock is used as it is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back the window of `bytes` the application has taken: the
    /// connection's through [`ConnShared::released`], the stream's on the
    /// stream. The driver is woken only when a WINDOW_UPDATE is due, so
    /// taking a small message does not cost a wakeup of the connection.
    pub(crate) fn release(self: &Arc<Stream>, inner: &mut Inner, bytes: usize) {
        use std::sync::atomic::Ordering::SeqCst;
        let before = self.conn.released.fetch_add(bytes, SeqCst);
        let wake_at = self.conn.wake_at.load(SeqCst);
        let conn_due = before < wake_at && before + bytes >= wake_at;
        inner.release = inner.release.saturating_add(bytes as u32);
        if inner.release >= inner.release_at && !inner.recv_end {
            self.schedule(inner);
        } else if conn_due {
            let _ = self.commands.send(Command::Release);
        }
    }

    /// Hands the stream to the driver, once, to send what is queued.
    pub(crate) fn schedule(self: &Arc<Stream>, inner: &mut Inner) {
        if !inner.scheduled && inner.failure.is_none() {
            inner.scheduled = true;
            if self.commands.send(Command::Ready(self.clone())).is_err() {
                inner.scheduled = false;
            }
        }
    }
}

impl Inner {
    /// Wakes every handle waiting on the stream.
    pub(crate) fn wake_all(&mut self) {
        for waker in [self.recv_waker.take(), self.send_waker.take(), self.reset_waker.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }

    /// Ends the stream with `failure`, unless it ended already, dropping
    /// what it had queued to send.
    pub(crate) fn fail(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
        self.data.clear();
        self.queued = 0;
        self.head = None;
        self.trailers = None;
        self.wake_all();
    }

    /// Drops what was received and not read, for a stream that was reset:
    /// a body not all read must not end as if it were whole (the reading
    /// side gets the failure instead). Returns the bytes whose connection
    /// window is still to be given back; those the application released
    /// went back already.
    pub(crate) fn discard_unread(&mut self) -> u32 {
        let unread = std::mem::take(&mut self.recv_len);
        self.recv.clear();
        if unread > 0 {
            self.recv_end = false;
        }
        self.release = 0;
        unread as u32
    }

    /// Wakes the receiving handle.
    pub(crate) fn wake_recv(&mut self) {
        if let Some(waker) = self.recv_waker.take() {
            waker.wake();
        }
    }
}
