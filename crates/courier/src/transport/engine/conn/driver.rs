//! The connection's driver: the one owner of an HTTP/2 connection's state.
//! It reads frames off the socket and applies them, takes the streams its
//! handles have scheduled and turns their queued headers, data and
//! trailers into frames within the flow-control windows, and writes what
//! it made in one gathered write per turn. It keeps the timers that belong
//! to the connection: the SETTINGS acknowledgement, keepalive PINGs, and
//! the PING of a graceful shutdown.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, WeakUnboundedSender};

use super::handle::{Admission, RecvHalf, Responder};
use super::headers::{self, Block};
use super::shared::{ConnShared, Failure, Inner, OutHead, Stream};
use super::{Command, Config, Ended, Role};
use crate::channelz::socket::SocketTally;
use crate::transport::engine::bdp::{BDP_PING, BdpAction, BdpEstimator};
use crate::transport::engine::buffer_pool;
use crate::transport::engine::flow::{RecvWindow, SendWindow};
use crate::transport::engine::frame::{
    Data, ErrorCode, ErrorScope, Frame, FrameReader, GatherBuf, GoAway, HeaderBlockLimits, Headers, Ping, RstStream,
    Settings, StreamId, WindowUpdate,
};
use crate::transport::engine::hpack::{self, Decoder, DecoderConfig, Encoder, EncoderConfig};
use crate::transport::engine::ping_policy::{PingEnforcer, PingVerdict, TOO_MANY_PINGS};
use crate::transport::engine::stream_state::{StreamFrame, StreamState, Verdict};
use crate::transport::head::RequestHead;

/// The time now, by tokio's clock: the one the driver's timer runs on, so
/// deadlines checked against it agree with the timer that fires for them,
/// also under a paused test clock (where std's clock would leave a due
/// timer re-armed at once, again and again, until real time caught up).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The client connection preface (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes asked of the socket in one read.
const READ_CHUNK: usize = 64 * 1024;

/// Above this many bytes waiting to be written, the driver stops taking
/// data from streams until the socket takes some.
const WRITE_HIGH_WATER: usize = 1024 * 1024;

/// Frames sent in answer to the peer's (PING and SETTINGS acknowledgements,
/// resets of its streams) that may wait unwritten before the driver stops
/// reading: a peer that sends but does not read cannot make the connection
/// queue answers without bound. Only answers count, never DATA, so two
/// peers that both have much to send never both stop reading.
const MAX_UNWRITTEN_ANSWERS: usize = 4096;

/// The bytes one stream may send in one turn before others get theirs.
/// Large, so that the connection's window goes to streams in the order
/// they asked for it: a receiver then gets whole messages one after
/// another, rather than parts of many, which it may not be able to hold.
const STREAM_TURN: usize = WRITE_HIGH_WATER;

/// Reads in one poll before the driver writes and yields.
const READS_PER_POLL: usize = 8;

/// The streams reset by this side whose late frames are ignored.
const RECENT_RESETS: usize = 128;

/// The highest stream id this side opens before it stops taking new
/// streams, so that a long-lived client moves to a new connection before
/// ids run out (RFC 9113 §5.1.1).
pub(crate) const LAST_CLIENT_STREAM: u32 = (1 << 31) - 1 - 2 * 1024;

/// The opaque data of this side's PINGs, told apart by their ACKs.
const KEEPALIVE_PING: [u8; 8] = *b"courkeep";
const SHUTDOWN_PING: [u8; 8] = *b"courshut";

/// How long after the first GOAWAY of a graceful shutdown the second goes
/// out if the peer never acknowledges the PING.
const SHUTDOWN_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing connection waits for its last frames to be written
/// and for the peer to close its side.
const LINGER: Duration = Duration::from_secs(1);

/// The frames that carry nothing each received DATA frame with a payload
/// earns back (see `Driver::idle_frame`): a peer's control frames are
/// bounded by this many per frame of data, plus the bucket's refill. Peers
/// send control frames in step with their data (grpc-go and the C core a
/// BDP PING per round trip, the C core also a stream and a connection
/// WINDOW_UPDATE per message), which at tens of thousands of messages a
/// second outruns the refill; a flood carries no data.
const DATA_REFUND: u32 = 4;

/// How long a connection must have no stream and nothing to write before
/// its buffers are given back (see [`Driver::release_buffers`]). Between
/// one and two of these pass, as the timer is moved on at most once a
/// period while calls come and go.
pub(super) const QUIET: Duration = Duration::from_secs(1);

/// When a quiet connection's buffers are given back.
#[derive(Clone, Copy, Debug)]
enum BufferRelease {
    /// Given back already (or never taken): no deadline.
    Done,
    /// Given back at `at` if the connection has stayed quiet since this was
    /// armed; `busy` notes that it has not, and the deadline then moves a
    /// period on instead.
    Due { at: Instant, busy: bool },
}

/// A token bucket: how many frames of a kind a peer may send in a burst,
/// and how many a second after that.
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    fn new(capacity: u32, per_second: u32) -> Bucket {
        Bucket {
            tokens: f64::from(capacity),
            capacity: f64::from(capacity),
            per_second: f64::from(per_second),
            last: now(),
        }
    }

    /// Takes a token; false when the bucket is empty.
    fn take(&mut self) -> bool {
        if self.tokens < 1.0 {
            let now = now();
            let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.capacity);
            self.last = now;
            if self.tokens < 1.0 {
                return false;
            }
        }
        self.tokens -= 1.0;
        true
    }

    /// Gives a token back (frames the peer sends in answer to ours).
    fn refund(&mut self) {
        self.refund_many(1);
    }

    /// Gives `n` tokens back.
    fn refund_many(&mut self, n: u32) {
        self.tokens = (self.tokens + f64::from(n)).min(self.capacity);
    }
}

/// The peer's settings, as far as they bind what this side sends.
struct PeerSettings {
    initial_window: u32,
    max_frame_size: u32,
    max_concurrent_streams: u32,
}

/// Where a graceful shutdown is.
#[derive(Clone, Debug)]
enum Shutdown {
    Running,
    /// The first GOAWAY (last stream 2^31 - 1) and a PING are out; the
    /// real GOAWAY follows the PING's ACK.
    Announced {
        debug: Bytes,
        deadline: Instant,
    },
    /// The real GOAWAY is out: no stream above `last` is taken.
    Draining {
        last: u32,
    },
}

/// Where the connection's end is.
#[derive(Debug)]
enum Closing {
    Open,
    /// Writing the last frames, then closing; `by` bounds the wait.
    Flushing {
        by: Instant,
    },
    /// Written and shut down; reading what the peer still sends until it
    /// closes, so that closing does not reset what the peer has yet to read.
    Lingering {
        by: Instant,
    },
    Done,
}

/// What one poll of the driver produced.
pub(crate) enum Event {
    /// New streams from the peer, in [`Driver::accepted`] (server).
    Accepted,
    /// The connection has ended.
    Ended,
}

/// The keepalive state of a connection.
struct KeepaliveState {
    config: super::Keepalive,
    /// When the outstanding PING went out.
    ping_sent: Option<Instant>,
    /// When the peer was last heard from.
    last_read: Instant,
}

/// The owner of one connection.
pub(crate) struct Driver<IO> {
    io: IO,
    role: Role,
    config: Config,
    read_buf: BytesMut,
    /// Server: bytes of the client preface still to be checked.
    preface_left: usize,
    /// The peer's first SETTINGS has arrived.
    greeted: bool,
    greeted_tx: Option<tokio::sync::oneshot::Sender<()>>,
    reader: FrameReader,
    decoder: Decoder,
    encoder: Encoder,
    scratch: BytesMut,
    out: GatherBuf,
    /// Bytes copied out of `out` for a socket that cannot write vectors.
    flat: BytesMut,
    commands: UnboundedReceiver<Command>,
    /// For the streams the peer opens (server); weak, so that the queue
    /// closes once every handle is gone.
    commands_tx: WeakUnboundedSender<Command>,
    handles_gone: bool,
    streams: HashMap<u32, Arc<Stream>>,
    ready: VecDeque<Arc<Stream>>,
    conn_blocked: Vec<Arc<Stream>>,
    pending_open: VecDeque<Arc<Stream>>,
    conn_send: SendWindow,
    conn_recv: RecvWindow,
    peer: PeerSettings,
    /// When our SETTINGS must be acknowledged by.
    settings_deadline: Option<Instant>,
    next_stream_id: u32,
    last_peer_stream: u32,
    /// Streams opened by this side and open now (client).
    open_local: usize,
    /// Streams the peer opened whose handles or state are still alive
    /// (server): counted against SETTINGS_MAX_CONCURRENT_STREAMS until the
    /// call's handler is done with them, so that resetting streams does
    /// not let a peer run more handlers at once than the limit.
    live_remote: Arc<AtomicUsize>,
    recent_resets: VecDeque<u32>,
    /// Streams that closed lately, and whether the peer reset them: late
    /// frames on them get STREAM_CLOSED (RFC 9113 §5.1, closed).
    recent_closed: VecDeque<(u32, bool)>,
    /// Answers queued since the write queue was last empty.
    answers: usize,
    /// Frames that carry nothing (SETTINGS, PING, WINDOW_UPDATE, PRIORITY,
    /// empty DATA, unknown types).
    idle_frames: Bucket,
    /// Streams reset by the peer (CVE-2023-44487, "rapid reset").
    peer_resets: Bucket,
    pings: Option<PingEnforcer>,
    /// The receive window of a new stream, as this side's SETTINGS last
    /// said.
    stream_window: u32,
    /// Sizes the receive windows by the bandwidth-delay product.
    bdp: Option<BdpEstimator>,
    keepalive: Option<KeepaliveState>,
    shutdown: Shutdown,
    /// When buffers are given back once the connection is quiet.
    buffer_release: BufferRelease,
    closing: Closing,
    peer_goaway: Option<(u32, ErrorCode, Bytes)>,
    error: Option<String>,
    admission: Arc<Admission>,
    accepted: Vec<(RequestHead, RecvHalf, Responder)>,
    conn: Arc<ConnShared>,
    timer: Pin<Box<tokio::time::Sleep>>,
    timer_at: Option<Instant>,
    /// The connection's channelz counters.
    tally: SocketTally,
    /// The time the driver last read for its timers: channelz's timestamps
    /// are taken from it.
    clock: Instant,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    /// A driver for a connection over `io`, whose handles send commands
    /// on `commands_tx`. Queues the preface (client) and this side's
    /// SETTINGS.
    pub(crate) fn new(
        io: IO,
        config: Config,
        commands: UnboundedReceiver<Command>,
        commands_tx: &UnboundedSender<Command>,
        admission: Arc<Admission>,
        conn: Arc<ConnShared>,
    ) -> Driver<IO> {
        let role = config.role;
        let s = &config.settings;
        let limits = HeaderBlockLimits {
            max_size: (s.max_header_list_size as usize).max(HeaderBlockLimits::default().max_size),
            ..HeaderBlockLimits::default()
        };
        let decoder = Decoder::new(DecoderConfig {
            max_header_list_size: s.max_header_list_size as usize,
            ..DecoderConfig::default()
        });
        let max_concurrent = s.max_concurrent_streams.unwrap_or(u32::MAX);
        let pings = config.ping_policy.map(PingEnforcer::new);
        let keepalive = config.keepalive.clone().map(|config| KeepaliveState {
            config,
            ping_sent: None,
            last_read: now(),
        });
        let mut driver = Driver {
            io,
            role,
            read_buf: BytesMut::new(),
            preface_left: if role == Role::Server { PREFACE.len() } else { 0 },
            greeted: false,
            greeted_tx: None,
            reader: FrameReader::new(s.max_frame_size, limits),
            decoder,
            encoder: Encoder::new(EncoderConfig::default()),
            scratch: BytesMut::new(),
            out: GatherBuf::new(),
            flat: BytesMut::new(),
            commands,
            commands_tx: commands_tx.downgrade(),
            handles_gone: false,
            streams: HashMap::new(),
            ready: VecDeque::new(),
            conn_blocked: Vec::new(),
            pending_open: VecDeque::new(),
            conn_send: SendWindow::new(crate::transport::engine::flow::DEFAULT_WINDOW),
            conn_recv: RecvWindow::new(crate::transport::engine::flow::DEFAULT_WINDOW),
            peer: PeerSettings {
                initial_window: crate::transport::engine::flow::DEFAULT_WINDOW,
                max_frame_size: crate::transport::engine::frame::DEFAULT_MAX_FRAME_SIZE,
                // Until the peer's SETTINGS say otherwise (RFC 9113 §6.5.2
                // says unlimited, but a client that waits for them is safe).
                max_concurrent_streams: 100,
            },
            settings_deadline: now().checked_add(config.settings_timeout),
            next_stream_id: 1,
            last_peer_stream: 0,
            open_local: 0,
            live_remote: Arc::new(AtomicUsize::new(0)),
            // Allocated as streams close, up to RECENT_RESETS entries: a
            // connection that made few calls holds little.
            recent_resets: VecDeque::new(),
            recent_closed: VecDeque::new(),
            answers: 0,
            idle_frames: Bucket::new(10_000, 5_000),
            peer_resets: Bucket::new(max_concurrent.clamp(100, 1000).saturating_mul(2), 1_000),
            pings,
            stream_window: s.initial_stream_window,
            bdp: s.adaptive_window.then(|| BdpEstimator::new(s.initial_stream_window)),
            keepalive,
            shutdown: Shutdown::Running,
            buffer_release: BufferRelease::Done,
            closing: Closing::Open,
            peer_goaway: None,
            error: None,
            admission,
            accepted: Vec::new(),
            conn,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
            tally: SocketTally::new(config.stats.clone()),
            clock: now(),
            config,
        };
        driver.greet();
        driver
    }

    /// Sends the preface (client), SETTINGS and the connection window.
    fn greet(&mut self) {
        let s = &self.config.settings;
        let mut settings = Settings {
            initial_window_size: Some(s.initial_stream_window),
            max_frame_size: Some(s.max_frame_size),
            max_header_list_size: Some(s.max_header_list_size),
            ..Settings::default()
        };
        match self.role {
            Role::Client => {
                settings.enable_push = Some(false);
                self.out.push_raw(PREFACE);
            }
            Role::Server => settings.max_concurrent_streams = s.max_concurrent_streams,
        }
        self.out.push(Frame::Settings(settings));
        let target = s.initial_connection_window;
        if let Some(increment) = self.conn_recv.set_target(target) {
            self.out.push(Frame::WindowUpdate(WindowUpdate {
                stream_id: StreamId::ZERO,
                increment,
            }));
        }
    }

    /// Makes the next stream this side opens use `id` (tests of what
    /// happens as ids run out).
    #[cfg(test)]
    pub(crate) fn set_next_stream_id(&mut self, id: u32) {
        self.next_stream_id = id;
    }

    /// Signals `tx` once the peer's first SETTINGS has arrived.
    pub(crate) fn on_greeted(&mut self, tx: tokio::sync::oneshot::Sender<()>) {
        self.greeted_tx = Some(tx);
    }

    /// Whether the peer's first SETTINGS has arrived.
    pub(crate) fn greeted(&self) -> bool {
        self.greeted
    }

    /// The streams accepted by the last poll (server).
    pub(crate) fn accepted(&mut self) -> std::vec::Drain<'_, (RequestHead, RecvHalf, Responder)> {
        self.accepted.drain(..)
    }

    /// How the connection ended, once it has.
    pub(crate) fn ended(&self) -> Ended {
        Ended {
            goaway: self.peer_goaway.as_ref().map(|(_, code, debug)| (*code, debug.clone())),
            error: self.error.clone(),
        }
    }

    /// Starts a graceful shutdown (server): GOAWAY with the last stream
    /// 2^31 - 1 and a PING, then, on the PING's ACK, the GOAWAY naming the
    /// last stream taken. Streams below it finish; then the connection
    /// closes.
    pub(crate) fn shutdown(&mut self, debug: &'static [u8]) {
        if !matches!(self.shutdown, Shutdown::Running) || !matches!(self.closing, Closing::Open) {
            return;
        }
        let debug = Bytes::from_static(debug);
        self.out.push(Frame::GoAway(GoAway {
            last_stream_id: StreamId::MAX,
            error_code: ErrorCode::NoError,
            debug_data: debug.clone(),
        }));
        self.out.push(Frame::Ping(Ping {
            ack: false,
            opaque: SHUTDOWN_PING,
        }));
        let deadline = now() + SHUTDOWN_PING_TIMEOUT;
        self.shutdown = Shutdown::Announced { debug, deadline };
    }

    /// Drives the connection: Ready(Accepted) when new streams wait in
    /// [`Driver::accepted`], Ready(Ended) once the connection is over.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        let polled = self.turn(cx);
        self.tally
            .publish(self.clock, self.conn_send.available() as i64, self.conn_recv.window());
        polled
    }

    /// One [`Driver::poll`], before the channelz counters are brought up
    /// to date.
    fn turn(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        loop {
            if matches!(self.closing, Closing::Done) {
                return Poll::Ready(Event::Ended);
            }
            let mut progress = false;
            // What the handles asked for.
            loop {
                match self.commands.poll_recv(cx) {
                    Poll::Ready(Some(command)) => {
                        progress = true;
                        self.command(command);
                    }
                    Poll::Ready(None) => {
                        self.handles_gone = true;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            self.take_released();
            self.send_ready();
            // What the peer sent.
            if !matches!(self.closing, Closing::Flushing { .. }) && self.answers < MAX_UNWRITTEN_ANSWERS {
                for _ in 0..READS_PER_POLL {
                    match self.poll_read(cx) {
                        Poll::Ready(true) => progress = true,
                        Poll::Ready(false) => {
                            // The end of the socket, or an error: the
                            // connection is done, which the next turn
                            // reports (nothing would wake it again).
                            progress = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                    if !self.accepted.is_empty() || self.answers >= MAX_UNWRITTEN_ANSWERS {
                        break;
                    }
                }
                self.send_ready();
            }
            self.check_timers();
            self.check_end();
            match self.poll_write(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    self.io_failed(&e);
                    continue;
                }
                Poll::Pending => {}
            }
            if !self.accepted.is_empty() {
                return Poll::Ready(Event::Accepted);
            }
            if self.advance_closing(cx) {
                continue;
            }
            if !self.ready.is_empty() && self.backlog() < WRITE_HIGH_WATER {
                // Streams set aside while the write queue was full, and the
                // queue has drained: nothing else would wake the driver
                // for them.
                continue;
            }
            if !progress {
                // The driver's own releases this turn (a closed stream's
                // unread bytes, padding) moved the connection's next
                // WINDOW_UPDATE closer than the threshold the handles were
                // last given: give them the current one, or their releases
                // could fall short of it while the peer waits on the window.
                let backlog = self.backlog();
                self.take_released();
                if self.backlog() != backlog {
                    continue;
                }
                self.note_quiet();
                self.arm_timer(cx);
                return Poll::Pending;
            }
        }
    }

    /// Whether the connection has no stream and nothing to write.
    fn is_quiet(&self) -> bool {
        self.streams.is_empty() && self.backlog() == 0
    }

    /// Called as the driver waits: arms the buffer release when the
    /// connection has just become quiet, or notes that it is busy.
    fn note_quiet(&mut self) {
        let quiet = self.is_quiet();
        match &mut self.buffer_release {
            BufferRelease::Done if quiet => {
                self.buffer_release = BufferRelease::Due {
                    at: now() + QUIET,
                    busy: false,
                };
            }
            BufferRelease::Due { busy, .. } if !quiet => *busy = true,
            _ => {}
        }
    }

    /// At the release deadline: gives the buffers back if the connection
    /// stayed quiet for the whole period, else looks again a period on.
    fn check_buffer_release(&mut self, now: Instant) {
        let BufferRelease::Due { at, busy } = self.buffer_release else {
            return;
        };
        if now < at {
            return;
        }
        if busy || !self.is_quiet() {
            self.buffer_release = BufferRelease::Due {
                at: now + QUIET,
                busy: false,
            };
        } else {
            self.release_buffers();
            self.buffer_release = BufferRelease::Done;
        }
    }

    /// The bytes held by the buffers a quiet connection gives back: those of
    /// [`Driver::release_buffers`], and the read and flat write buffers,
    /// which go back to the pool as soon as they are empty.
    #[cfg(test)]
    pub(crate) fn releasable_bytes(&self) -> usize {
        self.out.capacity()
            + self.read_buf.capacity()
            + self.flat.capacity()
            + self.decoder.buffer_capacity()
            + self.scratch.capacity()
            + self.accepted.capacity() * std::mem::size_of::<(RequestHead, RecvHalf, Responder)>()
            + self.streams.capacity() * std::mem::size_of::<(u32, Arc<Stream>)>()
    }

    /// Gives back the buffers a quiet connection does not need: the write
    /// queue's staging, the HPACK scratch and Huffman buffers, the stream
    /// map and the accepted-stream list, each taken again when the next
    /// call comes. (The read buffer is given back as soon as a read finds
    /// nothing; see `poll_read`.) Done only after [`QUIET`] with no stream,
    /// since taking them again costs a few allocations per call.
    fn release_buffers(&mut self) {
        self.out.release_if_empty();
        self.decoder.release_buffer();
        if self.scratch.capacity() != 0 {
            self.scratch = BytesMut::new();
        }
        if self.accepted.capacity() != 0 {
            self.accepted = Vec::new();
        }
        if self.streams.capacity() != 0 {
            self.streams = HashMap::new();
        }
    }

    /// Bytes waiting to be written.
    fn backlog(&self) -> usize {
        self.out.remaining() + self.flat.len()
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Open(stream) => self.open(stream),
            Command::Ready(stream) => self.ready.push_back(stream),
            Command::Release => {}
        }
    }

    /// A client stream to open.
    fn open(&mut self, stream: Arc<Stream>) {
        if let Some(failure) = self.refusal() {
            stream.lock().fail(failure);
            return;
        }
        if self.open_local >= self.peer.max_concurrent_streams as usize {
            self.pending_open.push_back(stream);
            return;
        }
        self.activate(stream);
    }

    /// Why new streams are refused now, if they are.
    fn refusal(&self) -> Option<Failure> {
        if let Some((_, code, debug)) = &self.peer_goaway {
            return Some(Failure::GoAway {
                code: *code,
                remote: true,
                unprocessed: true,
                debug: debug.clone(),
            });
        }
        if !matches!(self.closing, Closing::Open) {
            return Some(Failure::Local(
                self.error
                    .clone()
                    .unwrap_or_else(|| "the connection is closing".into())
                    .into(),
            ));
        }
        if self.next_stream_id > LAST_CLIENT_STREAM {
            return Some(Failure::GoAway {
                code: ErrorCode::NoError,
                remote: false,
                unprocessed: true,
                debug: Bytes::from_static(b"stream ids used up"),
            });
        }
        None
    }

    /// Gives a client stream its id and windows, and queues its headers.
    fn activate(&mut self, stream: Arc<Stream>) {
        let id = self.next_stream_id;
        self.next_stream_id += 2;
        if self.next_stream_id > LAST_CLIENT_STREAM {
            // New calls go to a new connection; this one finishes its own.
            self.admission.close(self.refusal().expect("ids used up"));
        }
        {
            let mut inner = stream.lock();
            if inner.failure.is_some() {
                return;
            }
            if inner.reset.is_some() && inner.head.is_some() {
                // Cancelled before it was ever sent.
                inner.state = StreamState::Closed(crate::transport::engine::stream_state::CloseCause::ResetByUs);
                inner.fail(Failure::Reset {
                    code: ErrorCode::Cancel,
                    remote: false,
                });
                return;
            }
            inner.id = id;
            inner.send_window = SendWindow::new(self.peer.initial_window);
            inner.recv_window = RecvWindow::new(self.stream_window);
            inner.release_at = self.stream_window.div_ceil(2).max(1);
            inner.scheduled = true;
        }
        self.open_local += 1;
        self.tally.stream_opened(true);
        self.streams.insert(id, stream.clone());
        self.ready.push_back(stream);
    }

    /// Opens client streams waiting for room.
    fn open_pending(&mut self) {
        while self.open_local < self.peer.max_concurrent_streams as usize {
            let Some(stream) = self.pending_open.pop_front() else {
                break;
            };
            if let Some(failure) = self.refusal() {
                stream.lock().fail(failure);
                continue;
            }
            self.activate(stream);
        }
    }

    /// Turns the queued work of every ready stream into frames.
    fn send_ready(&mut self) {
        while self.backlog() < WRITE_HIGH_WATER {
            let Some(stream) = self.ready.pop_front() else { break };
            self.flush_stream(&stream);
        }
    }

    /// Queues a WINDOW_UPDATE.
    fn window_update(&mut self, id: u32, increment: u32) {
        self.out.push(Frame::WindowUpdate(WindowUpdate {
            stream_id: StreamId::new(id),
            increment,
        }));
    }

    /// Takes the connection window the handles released, and tells them
    /// how much more makes the next WINDOW_UPDATE due. Checked again after
    /// the update, so that a release made meanwhile is not left waiting
    /// for a wakeup that was decided against the old figure.
    fn take_released(&mut self) {
        loop {
            let released = self.conn.released.swap(0, Ordering::SeqCst);
            if released > 0 {
                self.release_connection(released.min(u32::MAX as usize) as u32);
            }
            let wake_at = self.conn_recv.until_update() as usize;
            self.conn.wake_at.store(wake_at, Ordering::SeqCst);
            if self.conn.released.load(Ordering::SeqCst) < wake_at {
                break;
            }
        }
    }

    /// Gives the peer back `bytes` of the connection's window.
    fn release_connection(&mut self, bytes: u32) {
        if let Some(increment) = self.conn_recv.consume(bytes) {
            self.window_update(0, increment);
        }
    }

    /// Gives back `bytes` of a stream's window, and the connection's.
    fn release(&mut self, inner: &mut Inner, bytes: u32) {
        self.release_connection(bytes);
        self.release_stream(inner, bytes);
    }

    /// Gives back `bytes` of a stream's window, while the peer may still
    /// send on it.
    fn release_stream(&mut self, inner: &mut Inner, bytes: u32) {
        if inner.state.peer_may_send()
            && !inner.recv_end
            && let Some(increment) = inner.recv_window.consume(bytes)
        {
            self.window_update(inner.id, increment);
        }
    }

    fn remember_reset(&mut self, id: u32) {
        if self.recent_resets.len() == RECENT_RESETS {
            self.recent_resets.pop_front();
        }
        self.recent_resets.push_back(id);
    }

    /// Sends RST_STREAM for a stream this side has no state for.
    fn reset_id(&mut self, id: u32, code: ErrorCode) {
        self.answers += 1;
        self.out.push(Frame::RstStream(RstStream {
            stream_id: StreamId::new(id),
            error_code: code,
        }));
        self.remember_reset(id);
    }

    /// Resets a stream: RST_STREAM out, its handles told.
    fn reset_stream(&mut self, inner: &mut Inner, code: ErrorCode) {
        let id = inner.id;
        if inner.state != StreamState::Idle && !inner.state.is_closed() {
            self.reset_id(id, code);
        }
        let _ = inner.state.sent(StreamFrame::Reset);
        inner.reset = None;
        inner.fail(Failure::Reset { code, remote: false });
        // Window the stream holds goes back to the connection.
        let owed = inner.discard_unread();
        self.release_connection(owed);
    }

    /// A stream has closed: it leaves the map and its slot is free.
    fn stream_closed(&mut self, id: u32) {
        let Some(stream) = self.streams.remove(&id) else { return };
        let state = stream.lock().state;
        let by_peer = matches!(
            state,
            StreamState::Closed(crate::transport::engine::stream_state::CloseCause::ResetByPeer)
        );
        self.tally.stream_closed(matches!(
            state,
            StreamState::Closed(crate::transport::engine::stream_state::CloseCause::Ended)
        ));
        if self.recent_closed.len() == RECENT_RESETS {
            self.recent_closed.pop_front();
        }
        self.recent_closed.push_back((id, by_peer));
        if self.is_local(id) {
            self.open_local -= 1;
            self.open_pending();
        }
    }

    fn is_local(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.role == Role::Client)
    }

    /// Whether `id` names a stream that is still idle: never opened.
    fn is_idle(&self, id: u32) -> bool {
        if self.is_local(id) {
            id >= self.next_stream_id
        } else {
            id > self.last_peer_stream
        }
    }

    /// Sends what one stream has queued, as far as the windows allow.
    fn flush_stream(&mut self, stream: &Arc<Stream>) {
        let mut guard = stream.lock();
        let inner = &mut *guard;
        inner.scheduled = false;
        if inner.id == 0 {
            return;
        }
        let id = inner.id;
        if inner.release > 0 {
            // The connection's part went through `ConnShared::released`.
            let bytes = std::mem::take(&mut inner.release);
            self.release_stream(inner, bytes);
        }
        if inner.failure.is_some() || inner.state.is_closed() {
            return;
        }
        if let Some(code) = inner.reset {
            let finishing = code == ErrorCode::NoError
                && (inner.head.is_some() || !inner.data.is_empty() || inner.trailers.is_some() || inner.data_ends);
            if !finishing {
                self.reset_stream(inner, code);
                drop(guard);
                self.stream_closed(id);
                return;
            }
        }
        // Whether HEADERS or DATA went out: only those start the peer's
        // PING strikes again (gRFC A8), not a look that sent nothing.
        let mut answered = false;
        if let Some(head) = inner.head.take() {
            answered = true;
            let end = inner.head_ends;
            self.send_headers(id, end, |block| match &head {
                OutHead::Request(request) => headers::encode_request(block, request),
                OutHead::Response(response) => headers::encode_response(block, response),
            });
            let _ = inner.state.sent(StreamFrame::Headers { end_stream: end });
        }
        let mut turn = STREAM_TURN;
        let mut requeue = false;
        let sent_before = inner.queued;
        while let Some(front) = inner.data.front_mut() {
            let window = self.conn_send.available().min(inner.send_window.available());
            if window == 0 {
                if self.conn_send.available() == 0 && !inner.conn_blocked {
                    inner.conn_blocked = true;
                    self.conn_blocked.push(stream.clone());
                }
                break;
            }
            if turn == 0 || self.backlog() >= WRITE_HIGH_WATER {
                requeue = true;
                break;
            }
            let n = front.len().min(window).min(self.peer.max_frame_size as usize).min(turn);
            let chunk = if n == front.len() {
                inner.data.pop_front().expect("front exists")
            } else {
                front.split_to(n)
            };
            inner.queued -= n;
            turn -= n;
            self.conn_send.consume(n);
            inner.send_window.consume(n);
            let end = inner.data.is_empty() && inner.data_ends && inner.trailers.is_none();
            if end {
                inner.data_ends = false;
            }
            self.out.push_data(Data {
                stream_id: StreamId::new(id),
                end_stream: end,
                payload: chunk,
                padding: None,
            });
            self.tally.message_sent();
            answered = true;
            self.idle_frames.refund();
            let _ = inner.state.sent(StreamFrame::Data { end_stream: end });
        }
        if inner.queued < sent_before
            && let Some(waker) = inner.send_waker.take()
        {
            waker.wake();
        }
        if inner.data.is_empty() {
            if let Some(trailers) = inner.trailers.take() {
                answered = true;
                inner.data_ends = false;
                self.send_headers(id, true, |block| headers::encode_trailers(block, &trailers));
                let _ = inner.state.sent(StreamFrame::Headers { end_stream: true });
            } else if inner.data_ends {
                answered = true;
                inner.data_ends = false;
                self.out.push_data(Data {
                    stream_id: StreamId::new(id),
                    end_stream: true,
                    payload: Bytes::new(),
                    padding: None,
                });
                let _ = inner.state.sent(StreamFrame::Data { end_stream: true });
            }
            if let Some(code) = inner.reset
                && !inner.state.is_closed()
            {
                self.reset_stream(inner, code);
            }
        }
        if answered && let Some(pings) = self.pings.as_mut() {
            pings.sent_headers_or_data();
        }
        let closed = inner.state.is_closed();
        if requeue && !closed {
            inner.scheduled = true;
        }
        drop(guard);
        if closed {
            self.stream_closed(id);
        } else if requeue {
            self.ready.push_back(stream.clone());
        }
    }

    /// Encodes a header block with `fill` and queues it as HEADERS (and
    /// CONTINUATION) frames.
    fn send_headers(&mut self, id: u32, end: bool, fill: impl FnOnce(&mut hpack::BlockEncoder<'_>)) {
        {
            let mut block = self.encoder.block(&mut self.scratch);
            fill(&mut block);
        }
        let fragment = self.scratch.split().freeze();
        self.out.push_headers(
            &Headers {
                stream_id: StreamId::new(id),
                end_stream: end,
                end_headers: true,
                priority: None,
                padding: None,
                fragment,
            },
            self.peer.max_frame_size,
        );
    }

    /// Reads once and applies the frames read: Ready(true) if anything was
    /// read, Ready(false) at the end of the stream or on an error.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.read_buf.capacity() == 0 {
            self.read_buf = buffer_pool::take(READ_CHUNK);
        } else if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf) {
            Poll::Pending => {
                if self.read_buf.is_empty() {
                    // Waiting for the peer: hold no buffer meanwhile.
                    buffer_pool::give(std::mem::take(&mut self.read_buf), READ_CHUNK);
                }
                Poll::Pending
            }
            Poll::Ready(Ok(0)) => {
                self.peer_closed();
                Poll::Ready(false)
            }
            Poll::Ready(Ok(_)) => {
                if let Some(keepalive) = self.keepalive.as_mut() {
                    keepalive.last_read = now();
                    keepalive.ping_sent = None;
                }
                if matches!(self.closing, Closing::Lingering { .. }) {
                    self.read_buf.clear();
                    return Poll::Ready(true);
                }
                self.read_frames();
                Poll::Ready(true)
            }
            Poll::Ready(Err(e)) => {
                self.io_failed(&e);
                Poll::Ready(false)
            }
        }
    }

    /// The peer closed its side of the socket.
    fn peer_closed(&mut self) {
        if matches!(self.closing, Closing::Lingering { .. }) {
            self.closing = Closing::Done;
            return;
        }
        let why = if self.greeted {
            "the peer closed the connection"
        } else {
            "the peer closed the connection before the HTTP/2 handshake"
        };
        self.end_streams(Failure::Io(why.into()));
        if self.error.is_none() {
            self.error = Some(why.into());
        }
        self.closing = Closing::Done;
    }

    fn io_failed(&mut self, e: &io::Error) {
        let why: Arc<str> = format!("connection error: {e}").into();
        if self.error.is_none() {
            self.error = Some(why.to_string());
        }
        self.end_streams(Failure::Io(why));
        self.closing = Closing::Done;
    }

    /// A connection error: GOAWAY with `code`, then the connection closes.
    fn connection_error(&mut self, code: ErrorCode, why: String, debug: Bytes) {
        if !matches!(self.closing, Closing::Open) {
            return;
        }
        tracing::debug!("HTTP/2 connection error {code}: {why}");
        // Never above the last stream of a GOAWAY already sent (RFC 9113
        // §6.8): the streams the peer opened since were not processed, and
        // it may have retried them elsewhere.
        let last = match self.shutdown {
            Shutdown::Draining { last } => last.min(self.last_peer_stream),
            _ => self.last_peer_stream,
        };
        self.out.push(Frame::GoAway(GoAway {
            last_stream_id: StreamId::new(last),
            error_code: code,
            debug_data: debug,
        }));
        let failure = Failure::Local(format!("HTTP/2 connection error {code}: {why}").into());
        self.error = Some(why);
        self.end_streams(failure);
        self.closing = Closing::Flushing { by: now() + LINGER };
    }

    /// A protocol violation that ends the connection.
    fn protocol_error(&mut self, code: ErrorCode, why: impl Into<String>) {
        let why = why.into();
        let debug = Bytes::copy_from_slice(why.as_bytes());
        self.connection_error(code, why, debug);
    }

    /// Splits frames off the read buffer and applies them.
    fn read_frames(&mut self) {
        if self.preface_left > 0 {
            let at = PREFACE.len() - self.preface_left;
            let n = self.preface_left.min(self.read_buf.len());
            if self.read_buf[..n] != PREFACE[at..at + n] {
                self.read_buf.clear();
                self.protocol_error(
                    ErrorCode::ProtocolError,
                    "the client did not send the HTTP/2 connection preface (RFC 9113 §3.4)",
                );
                return;
            }
            self.read_buf.advance(n);
            self.preface_left -= n;
            if self.preface_left > 0 {
                return;
            }
        }
        while matches!(self.closing, Closing::Open) {
            match self.reader.read(&mut self.read_buf) {
                Ok(Some(frame)) => self.frame(frame),
                Ok(None) => break,
                Err(e) => match e.scope {
                    ErrorScope::Connection => {
                        self.protocol_error(e.code(), e.to_string());
                        break;
                    }
                    ErrorScope::Stream(id) => self.stream_error(id.value(), e.code(), &e.to_string()),
                },
            }
        }
    }

    /// A stream error found by the frame layer.
    fn stream_error(&mut self, id: u32, code: ErrorCode, why: &str) {
        tracing::debug!("HTTP/2 stream error on {id}: {why}");
        match self.streams.get(&id).cloned() {
            Some(stream) => {
                let mut inner = stream.lock();
                self.reset_stream(&mut inner, code);
                drop(inner);
                self.stream_closed(id);
            }
            None => self.reset_id(id, code),
        }
    }

    fn frame(&mut self, frame: Frame) {
        if !self.greeted {
            match frame {
                Frame::Settings(_) => {}
                _ => {
                    self.protocol_error(
                        ErrorCode::ProtocolError,
                        "the first frame was not SETTINGS (RFC 9113 §3.4)",
                    );
                    return;
                }
            }
        }
        match frame {
            Frame::Data(data) => self.on_data(data),
            Frame::Headers(headers) => self.on_headers(headers),
            Frame::Priority(priority) => {
                if priority.spec.depends_on == priority.stream_id {
                    self.stream_error(
                        priority.stream_id.value(),
                        ErrorCode::ProtocolError,
                        "a stream depends on itself (RFC 9113 §5.3.1)",
                    );
                } else {
                    self.idle_frame();
                }
            }
            Frame::RstStream(reset) => self.on_reset(reset),
            Frame::Settings(settings) => self.on_settings(settings),
            Frame::SettingsAck => self.settings_deadline = None,
            Frame::PushPromise(_) => self.protocol_error(
                ErrorCode::ProtocolError,
                "PUSH_PROMISE, though push is disabled (RFC 9113 §6.6)",
            ),
            Frame::Ping(ping) => self.on_ping(ping),
            Frame::GoAway(goaway) => self.on_goaway(goaway),
            Frame::WindowUpdate(update) => self.on_window_update(update),
            Frame::Continuation(_) => {
                self.protocol_error(ErrorCode::ProtocolError, "a CONTINUATION outside a header block")
            }
            Frame::Unknown(_) => self.idle_frame(),
        }
    }

    /// A frame that carries nothing; too many end the connection.
    fn idle_frame(&mut self) {
        if !self.idle_frames.take() {
            self.protocol_error(
                ErrorCode::EnhanceYourCalm,
                "too many frames that carry nothing (a flood of SETTINGS, PING, WINDOW_UPDATE, PRIORITY, \
                 empty DATA or unknown frames)",
            );
        }
    }

    fn on_settings(&mut self, settings: Settings) {
        if self.greeted {
            self.idle_frame();
        }
        if let Some(size) = settings.header_table_size {
            self.encoder.set_peer_max_table_size(size as usize);
        }
        if settings.enable_push == Some(true) && self.role == Role::Client {
            self.protocol_error(ErrorCode::ProtocolError, "a server enabled push (RFC 9113 §6.5.2)");
            return;
        }
        if let Some(max) = settings.max_concurrent_streams {
            self.peer.max_concurrent_streams = max;
        }
        if let Some(size) = settings.max_frame_size {
            self.peer.max_frame_size = size;
        }
        if let Some(window) = settings.initial_window_size {
            let old = self.peer.initial_window;
            self.peer.initial_window = window;
            let streams: Vec<Arc<Stream>> = self.streams.values().cloned().collect();
            for stream in streams {
                let mut inner = stream.lock();
                if inner.send_window.resize(old, window).is_err() {
                    drop(inner);
                    self.protocol_error(
                        ErrorCode::FlowControlError,
                        "SETTINGS_INITIAL_WINDOW_SIZE made a stream's window exceed 2^31 - 1",
                    );
                    return;
                }
                if !inner.data.is_empty() && !inner.scheduled {
                    inner.scheduled = true;
                    drop(inner);
                    self.ready.push_back(stream);
                }
            }
        }
        self.answers += 1;
        self.out.push(Frame::SettingsAck);
        if !self.greeted {
            self.greeted = true;
            if let Some(tx) = self.greeted_tx.take() {
                let _ = tx.send(());
            }
        }
        self.open_pending();
    }

    fn on_ping(&mut self, ping: Ping) {
        if ping.ack {
            match ping.opaque {
                KEEPALIVE_PING => {
                    if let Some(keepalive) = self.keepalive.as_mut() {
                        keepalive.ping_sent = None;
                    }
                }
                SHUTDOWN_PING => self.drain(),
                BDP_PING => {
                    if let Some(BdpAction::Grow(window)) = self.bdp.as_mut().map(|b| b.ack()) {
                        self.grow_windows(window);
                    }
                }
                _ => {}
            }
            return;
        }
        if let Some(pings) = self.pings.as_mut()
            && pings.ping(now(), self.streams.len()) == PingVerdict::TooManyPings
        {
            self.connection_error(
                ErrorCode::EnhanceYourCalm,
                "the client sent PINGs more often than the server's keepalive policy allows".into(),
                Bytes::from_static(TOO_MANY_PINGS),
            );
            return;
        }
        self.idle_frame();
        self.answers += 1;
        self.out.push(Frame::Ping(Ping {
            ack: true,
            opaque: ping.opaque,
        }));
    }

    /// Raises the receive windows to `window`, as the bandwidth-delay
    /// estimate asks: new and open streams through SETTINGS (applied on
    /// this side at once, which is safe for a larger window), and the
    /// connection's through WINDOW_UPDATE.
    fn grow_windows(&mut self, window: u32) {
        let Some(delta) = window.checked_sub(self.stream_window).filter(|&d| d > 0) else {
            return;
        };
        tracing::trace!("bandwidth-delay estimate: receive windows grow to {window} bytes");
        self.stream_window = window;
        for stream in self.streams.values() {
            let mut inner = stream.lock();
            inner.recv_window.raise_initial(delta);
            inner.release_at = window.div_ceil(2).max(1);
        }
        self.out.push(Frame::Settings(Settings {
            initial_window_size: Some(window),
            ..Settings::default()
        }));
        if self.settings_deadline.is_none() {
            self.settings_deadline = now().checked_add(self.config.settings_timeout);
        }
        let connection = self.config.settings.initial_connection_window.max(window);
        if let Some(increment) = self.conn_recv.set_target(connection) {
            self.window_update(0, increment);
        }
        self.conn
            .wake_at
            .store(self.conn_recv.until_update() as usize, Ordering::SeqCst);
    }

    /// The second GOAWAY of a graceful shutdown.
    fn drain(&mut self) {
        if let Shutdown::Announced { debug, .. } = &self.shutdown {
            let debug = debug.clone();
            let last = self.last_peer_stream;
            self.out.push(Frame::GoAway(GoAway {
                last_stream_id: StreamId::new(last),
                error_code: ErrorCode::NoError,
                debug_data: debug,
            }));
            self.shutdown = Shutdown::Draining { last };
        }
    }

    fn on_goaway(&mut self, goaway: GoAway) {
        let last = goaway.last_stream_id.value();
        let code = goaway.error_code;
        tracing::debug!(
            "received GOAWAY {code} (last stream {last}): {}",
            String::from_utf8_lossy(&goaway.debug_data)
        );
        let failure = Failure::GoAway {
            code,
            remote: true,
            unprocessed: true,
            debug: goaway.debug_data.clone(),
        };
        self.admission.close(failure.clone());
        self.peer_goaway = Some((last, code, goaway.debug_data));
        // Streams this side opened above `last` were never seen.
        let unseen: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| self.is_local(id) && id > last)
            .collect();
        for id in unseen {
            if let Some(stream) = self.streams.get(&id).cloned() {
                stream.lock().fail(failure.clone());
                self.stream_closed(id);
            }
        }
        for stream in self.pending_open.drain(..) {
            stream.lock().fail(failure.clone());
        }
        if code != ErrorCode::NoError {
            // The peer is closing for an error: what it has not finished it
            // will not finish.
            let failure = Failure::GoAway {
                code,
                remote: true,
                unprocessed: false,
                debug: self.peer_goaway.as_ref().map(|g| g.2.clone()).unwrap_or_default(),
            };
            self.tally.streams_failed(self.streams.len());
            for (_, stream) in self.streams.drain() {
                stream.lock().fail(failure.clone());
            }
            self.open_local = 0;
        }
    }

    fn on_window_update(&mut self, update: WindowUpdate) {
        let id = update.stream_id.value();
        if id == 0 {
            if self.conn_send.grow(update.increment).is_err() {
                self.protocol_error(ErrorCode::FlowControlError, "the connection's window exceeded 2^31 - 1");
                return;
            }
            if self.conn_blocked.is_empty() {
                self.idle_frame();
            }
            for stream in std::mem::take(&mut self.conn_blocked) {
                let mut inner = stream.lock();
                inner.conn_blocked = false;
                if !inner.scheduled {
                    inner.scheduled = true;
                    drop(inner);
                    self.ready.push_back(stream);
                }
            }
            return;
        }
        let Some(stream) = self.streams.get(&id).cloned() else {
            if self.is_idle(id) {
                self.protocol_error(
                    ErrorCode::ProtocolError,
                    "WINDOW_UPDATE on an idle stream (RFC 9113 §5.1)",
                );
            } else {
                self.idle_frame();
            }
            return;
        };
        let mut inner = stream.lock();
        if inner.send_window.grow(update.increment).is_err() {
            self.reset_stream(&mut inner, ErrorCode::FlowControlError);
            drop(inner);
            self.stream_closed(id);
            return;
        }
        if inner.data.is_empty() {
            drop(inner);
            self.idle_frame();
            return;
        }
        if !inner.scheduled {
            inner.scheduled = true;
            drop(inner);
            self.ready.push_back(stream);
        }
    }

    fn on_reset(&mut self, reset: RstStream) {
        let id = reset.stream_id.value();
        let Some(stream) = self.streams.get(&id).cloned() else {
            if self.is_idle(id) {
                self.protocol_error(ErrorCode::ProtocolError, "RST_STREAM on an idle stream (RFC 9113 §6.4)");
            } else {
                self.idle_frame();
            }
            return;
        };
        if self.role == Role::Server && !self.peer_resets.take() {
            self.protocol_error(
                ErrorCode::EnhanceYourCalm,
                "the client reset streams faster than the server allows (rapid reset)",
            );
            return;
        }
        let mut inner = stream.lock();
        let _ = inner.state.received(StreamFrame::Reset);
        inner.fail(Failure::Reset {
            code: reset.error_code,
            remote: true,
        });
        let owed = inner.discard_unread();
        drop(inner);
        self.release_connection(owed);
        self.stream_closed(id);
    }

    fn on_data(&mut self, data: Data) {
        let id = data.stream_id.value();
        let len = data.flow_controlled_len();
        if self.conn_recv.receive(len).is_err() {
            self.protocol_error(
                ErrorCode::FlowControlError,
                "DATA beyond the connection's flow-control window",
            );
            return;
        }
        let Some(stream) = self.streams.get(&id).cloned() else {
            self.release_connection(len);
            if self.is_idle(id) {
                self.protocol_error(ErrorCode::ProtocolError, "DATA on an idle stream (RFC 9113 §5.1)");
            } else if !self.recent_resets.contains(&id) {
                self.reset_id(id, ErrorCode::StreamClosed);
            }
            return;
        };
        let mut guard = stream.lock();
        let inner = &mut *guard;
        match inner.state.received(StreamFrame::Data {
            end_stream: data.end_stream,
        }) {
            Ok(Verdict::Accept) => {}
            Ok(Verdict::Ignore) => {
                self.release_connection(len);
                return;
            }
            Err(v) if v.connection => {
                drop(guard);
                self.protocol_error(error_code(v.code.wire()), v.rule);
                return;
            }
            Err(v) => {
                self.release_connection(len);
                self.reset_stream(inner, error_code(v.code.wire()));
                drop(guard);
                self.stream_closed(id);
                return;
            }
        }
        if inner.recv_window.receive(len).is_err() {
            self.release_connection(len);
            self.reset_stream(inner, ErrorCode::FlowControlError);
            drop(guard);
            self.stream_closed(id);
            return;
        }
        let payload = data.payload;
        let padding = len - payload.len() as u32;
        if padding > 0 {
            self.release(inner, padding);
        }
        if let Some(left) = inner.content_length.as_mut() {
            let n = payload.len() as u64;
            if n > *left || (data.end_stream && n != *left) {
                self.reset_stream(inner, ErrorCode::ProtocolError);
                drop(guard);
                self.stream_closed(id);
                return;
            }
            *left -= n;
        }
        if payload.is_empty() && !data.end_stream {
            drop(guard);
            self.idle_frame();
            return;
        }
        if !payload.is_empty() {
            self.tally.message_received();
            self.idle_frames.refund_many(DATA_REFUND);
            if let Some(BdpAction::SendPing) = self.bdp.as_mut().map(|b| b.data(payload.len())) {
                self.out.push(Frame::Ping(Ping {
                    ack: false,
                    opaque: BDP_PING,
                }));
            }
        }
        if inner.recv_dropped {
            self.release(inner, payload.len() as u32);
        } else if !payload.is_empty() {
            inner.recv_len += payload.len();
            inner.recv.push_back(payload);
        }
        if data.end_stream {
            inner.recv_end = true;
        }
        inner.wake_recv();
        let closed = inner.state.is_closed();
        drop(guard);
        if closed {
            self.stream_closed(id);
        }
    }

    fn on_headers(&mut self, frame: Headers) {
        let id = frame.stream_id.value();
        let mut fields = Block::default();
        let decoded = self.decoder.decode(&frame.fragment, &mut fields);
        let field_error = match decoded {
            Ok(()) => None,
            Err(e) => match e.scope() {
                hpack::ErrorScope::Connection(code) => {
                    self.protocol_error(error_code(code.wire()), format!("header block: {e:?}"));
                    return;
                }
                hpack::ErrorScope::Stream(code) => Some(error_code(code.wire())),
            },
        };
        if let Some(priority) = frame.priority
            && priority.depends_on == frame.stream_id
        {
            // On a new stream the HEADERS still opened it (its id is used
            // up), and the reset closes it.
            if self.role == Role::Server
                && id % 2 == 1
                && id > self.last_peer_stream
                && !matches!(self.shutdown, Shutdown::Draining { .. })
            {
                self.last_peer_stream = id;
            }
            self.stream_error(
                id,
                ErrorCode::ProtocolError,
                "a stream depends on itself (RFC 9113 §5.3.1)",
            );
            return;
        }
        match self.streams.get(&id).cloned() {
            Some(stream) => self.more_headers(&stream, frame.end_stream, fields, field_error),
            None if self.role == Role::Server => self.new_stream(id, frame.end_stream, fields, field_error),
            None => {
                if self.is_idle(id) || !self.is_local(id) {
                    self.protocol_error(ErrorCode::ProtocolError, "HEADERS on a stream the client never opened");
                } else if !self.recent_resets.contains(&id) {
                    self.reset_id(id, ErrorCode::StreamClosed);
                }
            }
        }
    }

    /// A stream the client opens.
    fn new_stream(&mut self, id: u32, end: bool, fields: Block, field_error: Option<ErrorCode>) {
        if id.is_multiple_of(2) {
            self.protocol_error(ErrorCode::ProtocolError, "a client opened an even-numbered stream");
            return;
        }
        if id <= self.last_peer_stream {
            if self.recent_resets.contains(&id) {
                // Reset by this side: late frames are ignored.
                return;
            }
            match self.recent_closed.iter().find(|(closed, _)| *closed == id) {
                Some((_, true)) => self.reset_id(id, ErrorCode::StreamClosed),
                Some((_, false)) => self.protocol_error(
                    ErrorCode::StreamClosed,
                    "HEADERS on a closed stream (RFC 9113 §5.1, closed)",
                ),
                None => self.protocol_error(
                    ErrorCode::ProtocolError,
                    "HEADERS with a stream id lower than one used before (RFC 9113 §5.1.1)",
                ),
            }
            return;
        }
        self.last_peer_stream = id;
        if self.recent_resets.contains(&id) {
            // Reset by this side while idle (a PRIORITY depending on
            // itself): closed, so its HEADERS are ignored like any late
            // frame of a stream this side reset.
            return;
        }
        match &self.shutdown {
            Shutdown::Draining { last } if id > *last => return,
            _ => {}
        }
        if let Some(code) = field_error {
            self.refuse(id, code);
            return;
        }
        let max = self.config.settings.max_concurrent_streams.unwrap_or(u32::MAX) as usize;
        if self.live_remote.load(Ordering::Acquire) >= max {
            self.refuse(id, ErrorCode::RefusedStream);
            return;
        }
        let request = match headers::request(fields) {
            Ok(parsed) => parsed,
            Err(malformed) => {
                tracing::debug!("refusing a malformed request on stream {id}: {}", malformed.0);
                self.refuse(id, ErrorCode::ProtocolError);
                return;
            }
        };
        let content_length = request.content_length;
        if end && content_length.is_some_and(|n| n > 0) {
            self.refuse(id, ErrorCode::ProtocolError);
            return;
        }
        let Some(tx) = self.commands_tx.upgrade() else {
            self.refuse(id, ErrorCode::RefusedStream);
            return;
        };
        let stream = Stream::new(id, self.peer.initial_window, self.stream_window, tx, self.conn.clone());
        stream.count_in(&self.live_remote);
        {
            let mut inner = stream.lock();
            let _ = inner.state.received(StreamFrame::Headers { end_stream: end });
            inner.server = true;
            inner.recv_end = end;
            inner.content_length = content_length;
        }
        self.streams.insert(id, stream.clone());
        self.tally.stream_opened(false);
        let (recv, respond) = Responder::accepted(&stream, self.config.settings.max_send_buffer);
        if self.accepted.capacity() == 0 {
            // Room for one (a Vec's first growth would make room for four,
            // 2 KiB): a connection that makes one call at a time holds one.
            self.accepted.reserve_exact(1);
        }
        self.accepted.push((request, recv, respond));
    }

    /// Resets a stream the peer opened that never becomes a call. It costs
    /// a header block's decoding and a reset, and nothing else bounds how
    /// often a peer makes the server do it, so it counts as a frame that
    /// carries nothing.
    fn refuse(&mut self, id: u32, code: ErrorCode) {
        self.idle_frame();
        if matches!(self.closing, Closing::Open) {
            self.reset_id(id, code);
        }
    }

    /// HEADERS on an open stream: a client's response head, or trailers.
    fn more_headers(&mut self, stream: &Arc<Stream>, end: bool, fields: Block, field_error: Option<ErrorCode>) {
        let mut guard = stream.lock();
        let inner = &mut *guard;
        let id = inner.id;
        let before = inner.state;
        match inner.state.received(StreamFrame::Headers { end_stream: end }) {
            Ok(Verdict::Accept) => {}
            Ok(Verdict::Ignore) => return,
            Err(v) if v.connection => {
                drop(guard);
                self.protocol_error(error_code(v.code.wire()), v.rule);
                return;
            }
            Err(v) => {
                self.reset_stream(inner, error_code(v.code.wire()));
                drop(guard);
                self.stream_closed(id);
                return;
            }
        }
        let outcome = match field_error {
            Some(code) => Err(code),
            None if self.role == Role::Client && !inner.head_received => match headers::response(fields) {
                Ok(None) if !end => {
                    // A 1xx head: the real one is still to come.
                    inner.state = before;
                    return;
                }
                Ok(None) => Err(ErrorCode::ProtocolError),
                Ok(Some(response)) => {
                    inner.head_received = true;
                    inner.response = Some(response);
                    Ok(())
                }
                Err(_) => Err(ErrorCode::ProtocolError),
            },
            None => match headers::trailers(fields) {
                Ok(trailers) if inner.content_length.is_none_or(|left| left == 0) => {
                    inner.recv_trailers = Some(trailers);
                    Ok(())
                }
                _ => Err(ErrorCode::ProtocolError),
            },
        };
        if let Err(code) = outcome {
            self.reset_stream(inner, code);
            drop(guard);
            self.stream_closed(id);
            return;
        }
        if end {
            inner.recv_end = true;
        }
        inner.wake_recv();
        let closed = inner.state.is_closed();
        drop(guard);
        if closed {
            self.stream_closed(id);
        }
    }

    /// Fires the timers that are due.
    fn check_timers(&mut self) {
        let now = now();
        self.clock = now;
        if self.settings_deadline.is_some_and(|at| now >= at) && matches!(self.closing, Closing::Open) {
            self.settings_deadline = None;
            self.protocol_error(
                ErrorCode::SettingsTimeout,
                "the peer did not acknowledge SETTINGS in time (RFC 9113 §6.5.3)",
            );
            return;
        }
        if let Shutdown::Announced { deadline, .. } = &self.shutdown
            && now >= *deadline
        {
            self.drain();
        }
        self.check_buffer_release(now);
        let open = !self.streams.is_empty();
        if let Some(keepalive) = self.keepalive.as_mut()
            && matches!(self.closing, Closing::Open)
        {
            match keepalive.ping_sent {
                Some(sent) if now.saturating_duration_since(sent) >= keepalive.config.timeout => {
                    let timeout = keepalive.config.timeout;
                    let why = format!("a keepalive PING went unanswered for {timeout:?}");
                    tracing::info!("closing the connection: {why}");
                    self.connection_error(ErrorCode::NoError, why, Bytes::from_static(b"keepalive timeout"));
                }
                Some(_) => {}
                None => {
                    let time = (keepalive.config.time)();
                    if now.saturating_duration_since(keepalive.last_read) >= time
                        && (open || keepalive.config.permit_without_calls)
                    {
                        keepalive.ping_sent = Some(now);
                        self.out.push(Frame::Ping(Ping {
                            ack: false,
                            opaque: KEEPALIVE_PING,
                        }));
                        self.tally.keepalive_sent();
                    }
                }
            }
        }
    }

    /// The earliest time a timer is due.
    fn next_deadline(&self) -> Option<Instant> {
        let mut at = self.settings_deadline;
        let mut earliest = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        if let Shutdown::Announced { deadline, .. } = &self.shutdown {
            earliest(*deadline);
        }
        match &self.closing {
            Closing::Flushing { by } | Closing::Lingering { by } => earliest(*by),
            _ => {}
        }
        if let BufferRelease::Due { at, .. } = self.buffer_release {
            earliest(at);
        }
        if let Some(keepalive) = &self.keepalive {
            match keepalive.ping_sent {
                Some(sent) => earliest(sent + keepalive.config.timeout),
                // With no call and no permission to ping without one,
                // keepalive is dormant until a call opens; then a PING goes
                // out at once if the connection has been quiet for the time
                // (as grpc-go's does on waking).
                None if self.streams.is_empty() && !keepalive.config.permit_without_calls => {}
                None => earliest(keepalive.last_read + (keepalive.config.time)()),
            }
        }
        at
    }

    fn arm_timer(&mut self, cx: &mut Context<'_>) {
        let Some(at) = self.next_deadline() else {
            self.timer_at = None;
            return;
        };
        if self.timer_at != Some(at) {
            self.timer_at = Some(at);
            self.timer.as_mut().reset(tokio::time::Instant::from_std(at));
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            // Due already: poll again at once.
            self.timer_at = None;
            cx.waker().wake_by_ref();
        }
    }

    /// Decides whether the connection is done: drained after GOAWAY, or a
    /// client whose handles are all gone.
    fn check_end(&mut self) {
        if !matches!(self.closing, Closing::Open) {
            return;
        }
        let idle = self.streams.is_empty() && self.pending_open.is_empty();
        let drained = idle
            && (matches!(self.shutdown, Shutdown::Draining { .. })
                || self.peer_goaway.is_some()
                || (self.role == Role::Client && self.handles_gone));
        if drained {
            if self.role == Role::Client && self.peer_goaway.is_none() {
                self.out.push(Frame::GoAway(GoAway {
                    last_stream_id: StreamId::new(self.last_peer_stream),
                    error_code: ErrorCode::NoError,
                    debug_data: Bytes::new(),
                }));
            }
            self.end_streams(Failure::Local("the connection is closed".into()));
            self.closing = Closing::Flushing { by: now() + LINGER };
        }
    }

    /// Moves a closing connection on: once written, its write side shuts
    /// and it lingers; when the peer closes, or time is up, it is done.
    /// True if the state changed.
    fn advance_closing(&mut self, cx: &mut Context<'_>) -> bool {
        match self.closing {
            Closing::Flushing { by } => {
                if self.backlog() == 0 {
                    if Pin::new(&mut self.io).poll_shutdown(cx).is_pending() && now() < by {
                        return false;
                    }
                    self.closing = Closing::Lingering { by };
                    return true;
                }
                if now() >= by {
                    self.closing = Closing::Done;
                    return true;
                }
                false
            }
            Closing::Lingering { by } => {
                if now() >= by {
                    self.closing = Closing::Done;
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// Writes what is queued, in one gathered write where the socket can.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if matches!(self.closing, Closing::Done) {
            return Poll::Ready(Ok(()));
        }
        let vectored = self.io.is_write_vectored();
        loop {
            if !vectored && self.flat.is_empty() {
                if self.flat.capacity() == 0 && self.out.has_remaining() {
                    self.flat = buffer_pool::take(READ_CHUNK);
                }
                while self.flat.len() < READ_CHUNK && self.out.has_remaining() {
                    let chunk = self.out.chunk();
                    let n = chunk.len().min(READ_CHUNK - self.flat.len());
                    self.flat.extend_from_slice(&chunk[..n]);
                    self.out.advance(n);
                }
            }
            let written = if !self.flat.is_empty() {
                match Pin::new(&mut self.io).poll_write(cx, &self.flat) {
                    Poll::Ready(Ok(n)) => {
                        self.flat.advance(n);
                        if self.flat.is_empty() {
                            buffer_pool::give(std::mem::take(&mut self.flat), READ_CHUNK);
                        }
                        n
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            } else if self.out.has_remaining() {
                let mut slices = [IoSlice::new(&[]); 64];
                let count = self.out.chunks_vectored(&mut slices);
                match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]) {
                    Poll::Ready(Ok(n)) => {
                        self.out.advance(n);
                        n
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                self.answers = 0;
                return Pin::new(&mut self.io).poll_flush(cx);
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
        }
    }
}

impl<IO> Driver<IO> {
    /// Fails every stream, open or waiting to open, and takes no more.
    fn end_streams(&mut self, failure: Failure) {
        self.admission.close(failure.clone());
        self.tally.streams_failed(self.streams.len());
        for (_, stream) in self.streams.drain() {
            stream.lock().fail(failure.clone());
        }
        for stream in self.pending_open.drain(..) {
            stream.lock().fail(failure.clone());
        }
        self.ready.clear();
        self.conn_blocked.clear();
        self.open_local = 0;
    }
}

impl<IO> Drop for Driver<IO> {
    fn drop(&mut self) {
        // Streams still open learn that their connection is gone.
        self.end_streams(Failure::Local("the connection was closed".into()));
    }
}

/// A frame-layer error code from its wire value.
fn error_code(wire: u32) -> ErrorCode {
    ErrorCode::from(wire)
}

impl Stream {
    /// Counts the stream in `live` until it is gone.
    pub(crate) fn count_in(&self, live: &Arc<AtomicUsize>) {
        live.fetch_add(1, Ordering::AcqRel);
        let _ = self.live.set(live.clone());
    }
}
