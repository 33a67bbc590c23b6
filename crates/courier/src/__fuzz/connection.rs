//! The `connection` fuzz target's harness: a server connection of Courier's
//! own HTTP/2 engine ([`Driver`]) over an in-memory socket, fed frame
//! sequences made from the input by a client that checks every frame the
//! server writes, with ops in between that act as the application on the
//! streams the server accepts.
//!
//! Everything runs on the calling thread, inside a current-thread runtime
//! that is entered but never run: the driver, the socket and the stream
//! handles are polled by hand with a waker that does nothing, so a run is
//! a bounded number of steps and always ends.
//!
//! # Input
//!
//! Four octets of configuration, then ops until the input ends:
//!
//! - c0: bits 0-1 the socket's buffer (1 KiB, 4 KiB, 64 KiB, 1 MiB);
//!   bits 2-3 keepalive (off; every poll with a timeout of an hour; every
//!   poll with a timeout of 0; hourly); bit 4 the PING policy (A8's
//!   defaults: two strikes); bit 5 no client SETTINGS after the preface;
//!   bit 6 end by dropping the client's socket (else by closing its write
//!   side); bit 7 the server's SETTINGS_MAX_FRAME_SIZE at 1 MiB.
//! - c1: the server's stream window (bits 0-1), connection window (2-3),
//!   stream limit (4-5) and header list limit (6-7).
//! - c2: the client's first SETTINGS: initial window (bits 0-1), maximum
//!   frame size (2-3), header table size (4-5); bits 6-7: 2 writes the
//!   preface in two parts, 3 corrupts it.
//! - c3: bit 0 no automatic SETTINGS ACK; bit 1 no automatic ACK of the
//!   server's PINGs; bit 2 the driver is dropped before the handles; bit 3
//!   the opener is dropped (the server then refuses streams).
//!
//! Each op is one octet, `vv p ooooo`: `ooooo` the op, `p` set to skip the
//! pump after it (so frames queue up and arrive in one read), `vv` a
//! variant; then the op's own octets. Ops 0-15 send frames (SETTINGS,
//! HEADERS with CONTINUATION, DATA, WINDOW_UPDATE, RST_STREAM, PING, GOAWAY,
//! PRIORITY, PUSH_PROMISE, unknown and raw frames, raw bytes); ops 16-31
//! pump or act as the application (read a request body, release window,
//! respond with headers, data and trailers, reset, drop handles, shut the
//! connection down). Stream ids come from a small set weighted towards the
//! next new stream and the last one opened.
//!
//! # Checks
//!
//! The client reads what it sends with the engine's own frame reader, as
//! the server will (its "mirror"), so it knows exactly which SETTINGS,
//! WINDOW_UPDATEs, PINGs and DATA the server got. What the server writes is
//! read with the frame reader and HPACK decoder at the limits the client
//! advertised and the server acknowledged, and must hold to:
//!
//! - every frame well-formed, within the acknowledged maximum frame size;
//!   its header blocks valid HPACK; the first frame SETTINGS, once;
//! - DATA never beyond the windows the client granted (connection and
//!   stream, initial window as acknowledged); WINDOW_UPDATEs never taking
//!   the client's windows beyond 2^31 - 1;
//! - HEADERS and DATA only on streams the application accepted, the head
//!   first (a valid response with the status the application chose), at
//!   most one trailers block and it ends the stream; DATA the bytes the
//!   application queued, in order; END_STREAM only after all of them and
//!   only if the application ended the stream; nothing on a stream after
//!   END_STREAM (but RST_STREAM) or after RST_STREAM;
//! - SETTINGS ACKs and PING ACKs only for what the client sent; PINGs only
//!   with keepalive on or after a shutdown; no PUSH_PROMISE, PRIORITY or
//!   unknown frames;
//! - GOAWAY's last stream never increasing and never below a stream
//!   accepted; no stream accepted above it afterwards; no HEADERS or DATA
//!   after a GOAWAY with an error, nor on streams above the last one;
//! - streams accepted are ones the client opened, each once, never more at
//!   once than the server's limit; a request body reads back exactly as
//!   sent, and ends only after all of it;
//! - after the client closes its side, the connection ends within a
//!   bounded number of polls.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use crate::transport::Http2Settings;
use crate::transport::engine::conn::headers::{self, Block};
use crate::transport::engine::conn::{
    self, Config, Driver, Event, Keepalive, Opener, RecvHalf, Responder, Role, SendHalf,
};
use crate::transport::engine::frame::{
    DEFAULT_MAX_FRAME_SIZE, ErrorCode, Frame, FrameReader, HeaderBlockLimits, MAX_WINDOW_SIZE, Settings,
};
use crate::transport::engine::hpack::{Decoder, DecoderConfig, Encoder, EncoderConfig, Indexing};
use crate::transport::engine::ping_policy::PingPolicy;
use crate::transport::head::{OutFields, OutResponse, RequestHead};
use crate::{Code, Status};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DEFAULT_WINDOW: i64 = 65_535;
const MAX_WINDOW: i64 = MAX_WINDOW_SIZE as i64;

/// Rounds of (write, poll, read) in one pump, at most.
const PUMP_ROUNDS: usize = 64;
/// Rounds after the client closed within which the connection must end.
const END_ROUNDS: usize = 1 << 16;
/// Bytes of DATA the client and the application may send in one run: more
/// only slows the fuzzer down.
const DATA_BUDGET: usize = 1 << 20;

const SOCKET_BUFFERS: [usize; 4] = [1024, 4096, 65_536, 1 << 20];
const STREAM_WINDOWS: [u32; 4] = [1 << 20, 65_535, 1000, 0];
const CONN_WINDOWS: [u32; 4] = [4 << 20, 65_535, 100_000, MAX_WINDOW_SIZE];
const STREAM_LIMITS: [Option<u32>; 4] = [Some(100), Some(1), Some(3), None];
const HEADER_LIST_LIMITS: [u32; 4] = [16 * 1024, 100, 1024, 64 * 1024];
const CLIENT_WINDOWS: [Option<u32>; 4] = [None, Some(0), Some(10), Some(MAX_WINDOW_SIZE)];
const CLIENT_FRAME_SIZES: [Option<u32>; 4] = [None, Some(16_384), Some(16_385), Some((1 << 24) - 1)];
const CLIENT_TABLE_SIZES: [Option<u32>; 4] = [None, Some(0), Some(100), Some(65_536)];

/// Values for SETTINGS parameters, WINDOW_UPDATE increments and lengths.
const INTERESTING: [u32; 16] = [
    0,
    1,
    10,
    100,
    4096,
    16_383,
    16_384,
    16_385,
    65_535,
    65_536,
    1 << 20,
    (1 << 24) - 1,
    1 << 24,
    MAX_WINDOW_SIZE,
    1 << 31,
    u32::MAX,
];

/// The runtime whose timers the driver registers with. Entered, never run.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Whether to print each op and each frame the server writes to stderr
/// (`COURIER_FUZZ_TRACE=1`), to follow a crashing input.
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("COURIER_FUZZ_TRACE").is_some())
}

/// Drives one server connection with the frames and application ops read
/// from `input` (see the module's documentation), panicking when the
/// server breaks one of the checked rules.
pub fn drive_server_connection(input: &[u8]) {
    let _runtime = runtime().enter();
    let mut input = Input { data: input, pos: 0 };
    let setup = Setup::read(&mut input);
    let mut harness = Harness::new(setup);
    harness.start();
    while !input.done() {
        harness.op(&mut input);
    }
    harness.finish();
}

/// The input, read octet by octet; zeros past its end.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos += n;
        self.data[start..end].to_vec()
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A value from [`INTERESTING`], or four raw octets.
    fn value(&mut self) -> u32 {
        let b = self.byte();
        if b >= 0xf0 {
            self.u32()
        } else {
            INTERESTING[usize::from(b % 16)]
        }
    }
}

/// The configuration octets.
struct Setup {
    socket_buffer: usize,
    keepalive: Option<(Duration, Duration)>,
    ping_policy: bool,
    client_settings: bool,
    drop_socket: bool,
    settings: Http2Settings,
    first_settings: Settings,
    preface: u8,
    auto_settings_ack: bool,
    auto_ping_ack: bool,
    drop_driver_first: bool,
    drop_opener: bool,
}

impl Setup {
    fn read(input: &mut Input<'_>) -> Setup {
        let [c0, c1, c2, c3] = [input.byte(), input.byte(), input.byte(), input.byte()];
        let hour = Duration::from_secs(3600);
        let keepalive = match (c0 >> 2) & 3 {
            0 => None,
            1 => Some((Duration::ZERO, hour)),
            2 => Some((Duration::ZERO, Duration::ZERO)),
            _ => Some((hour, hour)),
        };
        let mut settings = Http2Settings {
            initial_stream_window: STREAM_WINDOWS[usize::from(c1 & 3)],
            initial_connection_window: CONN_WINDOWS[usize::from((c1 >> 2) & 3)],
            max_concurrent_streams: STREAM_LIMITS[usize::from((c1 >> 4) & 3)],
            max_header_list_size: HEADER_LIST_LIMITS[usize::from(c1 >> 6)],
            // Windows chosen by the application are static, as
            // `http2_windows` makes them; the checks below hold the windows
            // to these sizes (the BDP-grown windows are not modelled).
            adaptive_window: false,
            ..Http2Settings::default()
        };
        if c0 & 0x80 != 0 {
            settings.set_max_frame_size(1 << 20);
        }
        let first_settings = Settings {
            initial_window_size: CLIENT_WINDOWS[usize::from(c2 & 3)],
            max_frame_size: CLIENT_FRAME_SIZES[usize::from((c2 >> 2) & 3)],
            header_table_size: CLIENT_TABLE_SIZES[usize::from((c2 >> 4) & 3)],
            enable_push: Some(false),
            ..Settings::default()
        };
        Setup {
            socket_buffer: SOCKET_BUFFERS[usize::from(c0 & 3)],
            keepalive,
            ping_policy: c0 & 0x10 != 0,
            client_settings: c0 & 0x20 == 0,
            drop_socket: c0 & 0x40 != 0,
            settings,
            first_settings,
            preface: c2 >> 6,
            auto_settings_ack: c3 & 1 == 0,
            auto_ping_ack: c3 & 2 == 0,
            drop_driver_first: c3 & 4 != 0,
            drop_opener: c3 & 8 != 0,
        }
    }
}

/// Writes one frame.
fn put_frame(dst: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    dst.put_slice(&len.to_be_bytes()[1..]);
    dst.put_u8(kind);
    dst.put_u8(flags);
    dst.put_u32(stream);
    dst.put_slice(payload);
}

fn settings_payload(settings: &Settings) -> BytesMut {
    let mut payload = BytesMut::new();
    settings.encode_payload(&mut payload);
    payload
}

/// The byte at `offset` of what the application sends on `stream`.
fn pattern(stream: u32, offset: u64) -> u8 {
    (offset.wrapping_mul(0x9e37_79b1) >> 11) as u8 ^ stream as u8
}

fn pattern_bytes(stream: u32, offset: u64, len: usize) -> Bytes {
    (0..len as u64).map(|i| pattern(stream, offset + i)).collect()
}

/// What the client sent on one stream, as the server reads it.
#[derive(Default)]
struct SentStream {
    /// DATA payloads up to the first END_STREAM.
    data: Vec<u8>,
    /// END_STREAM sent (on DATA or HEADERS).
    ended: bool,
    /// Flow-controlled bytes sent, padding included.
    flow: i64,
    /// WINDOW_UPDATE increments sent.
    granted: i64,
}

/// The client's bytes read back as the server reads them.
struct Mirror {
    reader: FrameReader,
    buf: BytesMut,
    preface_left: usize,
    /// The server will read no further (a connection error, or a bad
    /// preface).
    dead: bool,
    /// SETTINGS sent and not yet acknowledged, in order.
    settings: VecDeque<Settings>,
    /// PINGs sent and not yet acknowledged.
    pings: Vec<[u8; 8]>,
    streams: HashMap<u32, SentStream>,
    opened: HashSet<u32>,
    /// The highest odd stream the client sent HEADERS on.
    last_opened: u32,
    conn_flow: i64,
    conn_granted: i64,
}

impl Mirror {
    fn new(settings: &Http2Settings) -> Mirror {
        // As the driver sets up its reader.
        let limits = HeaderBlockLimits {
            max_size: (settings.max_header_list_size as usize).max(HeaderBlockLimits::default().max_size),
            ..HeaderBlockLimits::default()
        };
        Mirror {
            reader: FrameReader::new(settings.max_frame_size, limits),
            buf: BytesMut::new(),
            preface_left: PREFACE.len(),
            dead: false,
            settings: VecDeque::new(),
            pings: Vec::new(),
            streams: HashMap::new(),
            opened: HashSet::new(),
            last_opened: 0,
            conn_flow: 0,
            conn_granted: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.dead {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if self.preface_left > 0 {
            let n = self.preface_left.min(self.buf.len());
            let at = PREFACE.len() - self.preface_left;
            if self.buf[..n] != PREFACE[at..at + n] {
                self.dead = true;
                return;
            }
            let _ = self.buf.split_to(n);
            self.preface_left -= n;
        }
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(Some(frame)) => self.frame(frame),
                Ok(None) => return,
                Err(e) if e.is_connection_error() => {
                    self.dead = true;
                    return;
                }
                Err(_) => {}
            }
        }
    }

    fn frame(&mut self, frame: Frame) {
        match frame {
            Frame::Settings(settings) => self.settings.push_back(settings),
            Frame::Ping(ping) if !ping.ack => self.pings.push(ping.opaque),
            Frame::Headers(h) => {
                let id = h.stream_id.value();
                self.opened.insert(id);
                if id % 2 == 1 {
                    self.last_opened = self.last_opened.max(id);
                }
                if h.end_stream {
                    self.streams.entry(id).or_default().ended = true;
                }
            }
            Frame::Data(d) => {
                let len = i64::from(d.flow_controlled_len());
                self.conn_flow += len;
                let stream = self.streams.entry(d.stream_id.value()).or_default();
                stream.flow += len;
                if !stream.ended {
                    stream.data.extend_from_slice(&d.payload);
                    stream.ended = d.end_stream;
                }
            }
            Frame::WindowUpdate(w) => match w.stream_id.value() {
                0 => self.conn_granted += i64::from(w.increment),
                id => self.streams.entry(id).or_default().granted += i64::from(w.increment),
            },
            _ => {}
        }
    }

    /// The next stream id a client would open.
    fn next_stream(&self) -> u32 {
        if self.last_opened == 0 {
            1
        } else {
            self.last_opened.saturating_add(2).min(0x7fff_ffff)
        }
    }
}

/// What the server sent on one stream, as the client reads it.
#[derive(Default)]
struct SeenStream {
    /// DATA bytes, flow-controlled.
    data: u64,
    head: bool,
    trailers: bool,
    /// END_STREAM received.
    ended: bool,
    /// RST_STREAM received.
    reset: bool,
    /// WINDOW_UPDATE increments received.
    granted: i64,
}

/// What the application did on one stream.
#[derive(Default)]
struct AppSent {
    status: Option<u16>,
    /// Bytes queued successfully.
    queued: u64,
    /// The application ended its side (END_STREAM is to go out).
    ended: bool,
    /// The trailers' `grpc-status`.
    trailers: Option<String>,
}

/// One accepted stream's handles.
struct AppStream {
    id: u32,
    recv: Option<RecvHalf>,
    respond: Option<Responder>,
    send: Option<SendHalf>,
    /// Bytes of the request body read.
    read: usize,
    /// Read and not yet released.
    unreleased: usize,
}

impl AppStream {
    fn live(&self) -> bool {
        self.recv.is_some() || self.respond.is_some() || self.send.is_some()
    }
}

struct Harness {
    setup: Setup,
    driver: Option<Driver<DuplexStream>>,
    opener: Option<Opener>,
    io: Option<DuplexStream>,
    /// Client bytes not yet taken by the socket.
    out: BytesMut,
    ended: bool,
    encoder: Encoder,
    mirror: Mirror,
    data_budget: usize,

    // The server's output as the client reads it.
    reader: FrameReader,
    in_buf: BytesMut,
    decoder: Decoder,
    /// The last SETTINGS the server acknowledged, applied.
    acked_window: i64,
    greeted: bool,
    seen: HashMap<u32, SeenStream>,
    conn_data: i64,
    conn_granted: i64,
    /// The lowest last stream of the server's GOAWAYs.
    goaway_last: Option<u32>,
    error_goaway: bool,
    server_ping: Option<[u8; 8]>,

    // The application.
    app: Vec<AppStream>,
    app_sent: HashMap<u32, AppSent>,
    accepted: HashSet<u32>,
    max_accepted: u32,
    shutdown: bool,
}

impl Harness {
    fn new(setup: Setup) -> Harness {
        let (server, client) = tokio::io::duplex(setup.socket_buffer);
        let mut config = Config::new(Role::Server, setup.settings.clone());
        if let Some((time, timeout)) = setup.keepalive {
            config.keepalive = Some(Keepalive {
                time: Arc::new(move || time),
                timeout,
                permit_without_calls: true,
            });
        }
        if setup.ping_policy {
            config.ping_policy = Some(PingPolicy::default());
        }
        let (driver, opener) = conn::new(server, config);
        let mirror = Mirror::new(&setup.settings);
        Harness {
            driver: Some(driver),
            opener: (!setup.drop_opener).then_some(opener),
            io: Some(client),
            out: BytesMut::new(),
            ended: false,
            encoder: Encoder::new(EncoderConfig::default()),
            mirror,
            data_budget: DATA_BUDGET,
            reader: FrameReader::new(
                DEFAULT_MAX_FRAME_SIZE,
                HeaderBlockLimits {
                    max_size: 1 << 20,
                    max_frames: 1 << 16,
                },
            ),
            in_buf: BytesMut::new(),
            decoder: Decoder::new(DecoderConfig {
                max_table_size: 4096,
                max_header_list_size: 1 << 30,
            }),
            acked_window: DEFAULT_WINDOW,
            greeted: false,
            seen: HashMap::new(),
            conn_data: 0,
            conn_granted: 0,
            goaway_last: None,
            error_goaway: false,
            server_ping: None,
            app: Vec::new(),
            app_sent: HashMap::new(),
            accepted: HashSet::new(),
            max_accepted: 0,
            shutdown: false,
            setup,
        }
    }

    /// Queues client bytes, read back by the mirror.
    fn send(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.mirror.feed(bytes);
    }

    fn send_frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let mut frame = BytesMut::new();
        put_frame(&mut frame, kind, flags, stream, payload);
        self.send(&frame);
    }

    fn start(&mut self) {
        match self.setup.preface {
            2 => {
                self.send(&PREFACE[..10]);
                self.pump();
                self.send(&PREFACE[10..]);
            }
            3 => {
                let mut bad = *PREFACE;
                bad[5] = b'X';
                self.send(&bad);
            }
            _ => self.send(PREFACE),
        }
        if self.setup.client_settings {
            let payload = settings_payload(&self.setup.first_settings);
            self.send_frame(0x4, 0, 0, &payload);
        }
        self.pump();
    }

    /// A stream id from a small set, weighted towards the next new stream
    /// and the last opened.
    fn stream_id(&mut self, input: &mut Input<'_>) -> u32 {
        let b = input.byte();
        let last = self.mirror.last_opened.max(1);
        match b % 16 {
            0 => 0,
            n @ 1..=6 => 2 * u32::from(n) - 1,
            7 => 2,
            8 => 0x7fff_ffff,
            9..=12 => self.mirror.next_stream(),
            _ => last,
        }
    }

    /// One op (see the module's documentation).
    fn op(&mut self, input: &mut Input<'_>) {
        let b = input.byte();
        let (op, pump, variant) = (b & 31, b & 32 == 0, b >> 6);
        if tracing() {
            eprintln!("op {op} variant {variant} pump {pump} (at {})", input.pos - 1);
        }
        match op {
            0 => self.op_settings(input, variant),
            1 => self.send_frame(0x4, 0x1, 0, &[]),
            2 | 3 => self.op_headers(input, variant),
            4 => self.op_continuation(input),
            5 | 6 => self.op_data(input, variant),
            7 => self.op_window_update(input),
            8 => {
                let id = self.stream_id(input);
                let code = u32::from(input.byte() % 16);
                self.send_frame(0x3, 0, id, &code.to_be_bytes());
            }
            9 => self.op_ping(input, variant),
            10 => self.op_goaway(input),
            11 => self.op_priority(input, variant),
            12 => {
                let kind = 0x0a + input.byte() % 0xf6;
                let flags = input.byte();
                let id = self.stream_id(input);
                let len = usize::from(input.byte() % 32);
                let payload = input.bytes(len);
                self.send_frame(kind, flags, id, &payload);
            }
            13 => {
                let kind = input.byte() % 12;
                let flags = input.byte();
                let id = input.u32();
                let len = usize::from(input.byte());
                let payload = input.bytes(len);
                self.send_frame(kind, flags, id, &payload);
            }
            14 => {
                let len = usize::from(input.byte() % 32);
                let bytes = input.bytes(len);
                self.send(&bytes);
            }
            15 => {
                let id = self.stream_id(input);
                let promised = self.stream_id(input);
                let mut payload = promised.to_be_bytes().to_vec();
                payload.extend_from_slice(&self.request_block(0));
                self.send_frame(0x5, 0x4, id, &payload);
            }
            16 => {
                for _ in 0..=variant {
                    self.pump();
                }
            }
            17 | 18 => self.app_read(input, variant),
            19 => self.app_release(input),
            20 => self.app_poll(input),
            21 | 22 => self.app_respond(input, variant),
            23 | 24 => self.app_send_data(input, variant),
            25 => self.app_trailers(input, variant),
            26 => self.app_reset(input),
            27 => self.app_drop(input, variant),
            28 => self.app_poll_reset(input),
            29 => {
                if let Some(driver) = self.driver.as_mut() {
                    driver.shutdown(b"fuzz");
                    self.shutdown = true;
                }
            }
            30 => {
                // Acknowledge the server's last PING, or its SETTINGS.
                match self.server_ping {
                    Some(opaque) if variant & 1 == 0 => self.send_frame(0x6, 0x1, 0, &opaque),
                    _ => self.send_frame(0x4, 0x1, 0, &[]),
                }
            }
            _ => {
                // Window for the last stream opened and the connection.
                let id = self.mirror.last_opened.max(1);
                let increment = [100u32, 16_384, 65_535, 1 << 20][usize::from(variant)];
                self.send_frame(0x8, 0, id, &increment.to_be_bytes());
                self.send_frame(0x8, 0, 0, &increment.to_be_bytes());
            }
        }
        if pump {
            self.pump();
        }
    }

    fn op_settings(&mut self, input: &mut Input<'_>, variant: u8) {
        let count = input.byte() % 4;
        let mut payload = Vec::new();
        for _ in 0..count {
            let id = match input.byte() % 8 {
                7 => 0x99,
                n => u16::from(n),
            };
            let value = input.value();
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&value.to_be_bytes());
        }
        match variant {
            // An ACK with parameters, or a truncated parameter.
            1 => self.send_frame(0x4, 0x1, 0, &payload),
            2 => {
                payload.push(0);
                self.send_frame(0x4, 0, 0, &payload);
            }
            _ => self.send_frame(0x4, 0, 0, &payload),
        }
    }

    /// A header block: a request (valid or not), trailers, or raw octets.
    fn request_block(&mut self, choice: u8) -> Bytes {
        let grpc: &[(&[u8], &[u8])] = &[
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/pkg.Service/Method"),
            (b":authority", b"localhost"),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ];
        let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
        let mut indexing = Indexing::DoNotIndex;
        let length;
        match choice % 15 {
            0 => fields.extend_from_slice(grpc),
            1 => {
                fields.extend_from_slice(grpc);
                indexing = Indexing::Index;
            }
            2 => {
                fields.extend_from_slice(grpc);
                length = format!("{}", choice / 16);
                fields.push((b"content-length", length.as_bytes()));
            }
            3 => fields.extend_from_slice(&[(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")]),
            4 => {
                fields.extend_from_slice(grpc);
                fields.extend_from_slice(&[
                    (b"grpc-timeout", b"10S"),
                    (b"x-meta", b"value"),
                    (b"x-meta-bin", b"AAEC"),
                    (b"cookie", b"a=b"),
                ]);
            }
            5 => fields.extend_from_slice(&[(b"grpc-status", b"0"), (b"x-trailer", b"t")]),
            6 => fields.extend_from_slice(&[(b":path", b"/late"), (b"grpc-status", b"0")]),
            7 => fields.extend_from_slice(&grpc[..2]),
            8 => {
                fields.extend_from_slice(grpc);
                fields.push((b"X-Upper", b"v"));
            }
            9 => {
                fields.extend_from_slice(grpc);
                fields.push((b"connection", b"keep-alive"));
            }
            10 => {
                fields.extend_from_slice(&grpc[3..]);
                fields.extend_from_slice(&grpc[..3]);
            }
            11 => {
                fields.push((b":status", b"200"));
                fields.extend_from_slice(grpc);
            }
            12 => {
                fields.extend_from_slice(grpc);
                fields.push((b"x-big", &[b'a'; 20_000]));
            }
            13 => {}
            _ => {
                fields.extend_from_slice(grpc);
                fields.push((b":method", b"PUT"));
            }
        }
        let mut dst = BytesMut::new();
        let mut block = self.encoder.block(&mut dst);
        for (name, value) in fields {
            block.field(name, value, indexing);
        }
        dst.freeze()
    }

    /// A block from the input: a template, or raw octets.
    fn block(&mut self, input: &mut Input<'_>) -> Bytes {
        let choice = input.byte();
        if choice >= 0xf0 {
            let len = usize::from(input.byte() % 64);
            return input.bytes(len).into();
        }
        self.request_block(choice)
    }

    fn op_headers(&mut self, input: &mut Input<'_>, variant: u8) {
        let id = self.stream_id(input);
        let block = self.block(input);
        let flags = input.byte();
        let end_stream = flags & 0x1 != 0;
        let split = flags & 0x2 != 0 || block.len() > 16_000;
        let padded = flags & 0x4 != 0;
        let priority = flags & 0x8 != 0;
        let leave_open = flags & 0x10 != 0 && variant == 3;
        let wrong_stream = flags & 0x20 != 0 && variant == 2;
        let pieces = if split { 1 + usize::from(flags >> 6) } else { 1 };
        let size = block.len().div_ceil(pieces).clamp(1, 16_000);
        let mut parts: Vec<&[u8]> = block.chunks(size).collect();
        if parts.is_empty() {
            parts.push(&[]);
        }
        let mut payload = Vec::new();
        let pad = if padded { input.byte() } else { 0 };
        if padded {
            payload.push(pad);
        }
        if priority {
            let dep = self.stream_id(input);
            let exclusive = if input.byte() & 1 == 1 { 0x8000_0000 } else { 0 };
            payload.extend_from_slice(&(dep | exclusive).to_be_bytes());
            payload.push(input.byte());
        }
        payload.extend_from_slice(parts[0]);
        payload.extend(std::iter::repeat_n(0, usize::from(pad)));
        let mut first_flags = u8::from(end_stream) | if padded { 0x8 } else { 0 } | if priority { 0x20 } else { 0 };
        if parts.len() == 1 {
            first_flags |= 0x4;
        }
        self.send_frame(0x1, first_flags, id, &payload);
        let count = parts.len();
        for (i, part) in parts.iter().enumerate().skip(1) {
            let last = i + 1 == count;
            if last && leave_open {
                break;
            }
            let on = if wrong_stream && last {
                id.wrapping_add(2) & 0x7fff_ffff
            } else {
                id
            };
            self.send_frame(0x9, if last { 0x4 } else { 0 }, on, part);
        }
    }

    fn op_continuation(&mut self, input: &mut Input<'_>) {
        let id = self.stream_id(input);
        let flags = input.byte() & 0x4;
        let block = self.block(input);
        let block = &block[..block.len().min(16_000)];
        self.send_frame(0x9, flags, id, block);
    }

    /// The window the server has granted the client on `id` (and the
    /// connection), as far as the client has read.
    fn client_window(&self, id: u32) -> i64 {
        let stream = self.mirror.streams.get(&id);
        let stream_window = i64::from(self.setup.settings.initial_stream_window)
            + self.seen.get(&id).map_or(0, |s| s.granted)
            - stream.map_or(0, |s| s.flow);
        let conn_window = DEFAULT_WINDOW + self.conn_granted - self.mirror.conn_flow;
        stream_window.min(conn_window)
    }

    fn op_data(&mut self, input: &mut Input<'_>, variant: u8) {
        let id = self.stream_id(input);
        let flags = input.byte();
        let end_stream = flags & 0x1 != 0;
        let padded = flags & 0x2 != 0;
        let pad = if padded { input.byte() % 64 } else { 0 };
        let mut len = match input.byte() % 8 {
            0 => 0,
            1 => 1,
            2 => 7,
            3 => 100,
            4 => 1000,
            5 => 4096,
            6 => 16_384 - 1 - usize::from(pad),
            _ => 16_385,
        };
        // Mostly within the server's windows.
        if variant != 3 {
            let room = self.client_window(id) - if padded { 1 + i64::from(pad) } else { 0 };
            len = len.min(room.max(0) as usize);
        }
        len = len.min(self.data_budget);
        self.data_budget -= len;
        let offset = self.mirror.streams.get(&id).map_or(0, |s| s.data.len() as u64);
        let mut payload = Vec::with_capacity(len + 1 + usize::from(pad));
        if padded {
            payload.push(pad);
        }
        payload.extend((0..len as u64).map(|i| (offset + i) as u8 ^ 0x5a));
        payload.extend(std::iter::repeat_n(0, usize::from(pad)));
        let flags = u8::from(end_stream) | if padded { 0x8 } else { 0 };
        self.send_frame(0x0, flags, id, &payload);
    }

    fn op_window_update(&mut self, input: &mut Input<'_>) {
        let id = self.stream_id(input);
        let increment = input.value();
        self.send_frame(0x8, 0, id, &increment.to_be_bytes());
    }

    fn op_ping(&mut self, input: &mut Input<'_>, variant: u8) {
        let opaque = input.bytes(8);
        let mut payload = [0; 8];
        payload[..opaque.len()].copy_from_slice(&opaque);
        match variant {
            0 | 1 => self.send_frame(0x6, 0, 0, &payload),
            2 => self.send_frame(0x6, 0x1, 0, &self.server_ping.unwrap_or(payload)),
            _ => self.send_frame(0x6, 0, u32::from(input.byte() % 2), &payload[..opaque.len().min(7)]),
        }
    }

    fn op_goaway(&mut self, input: &mut Input<'_>) {
        let last = self.stream_id(input);
        let code = u32::from(input.byte() % 16);
        let debug_len = usize::from(input.byte() % 8);
        let mut payload = last.to_be_bytes().to_vec();
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend(input.bytes(debug_len));
        self.send_frame(0x7, 0, 0, &payload);
    }

    fn op_priority(&mut self, input: &mut Input<'_>, variant: u8) {
        let id = self.stream_id(input);
        let dep = self.stream_id(input);
        let weight = input.byte();
        let mut payload = dep.to_be_bytes().to_vec();
        payload.push(weight);
        if variant == 3 {
            payload.pop();
        }
        self.send_frame(0x2, 0, id, &payload);
    }

    /// The application's stream chosen by the next octet.
    fn pick(&mut self, input: &mut Input<'_>) -> Option<usize> {
        let b = input.byte();
        (!self.app.is_empty()).then(|| usize::from(b) % self.app.len())
    }

    fn app_read(&mut self, input: &mut Input<'_>, variant: u8) {
        let Some(k) = self.pick(input) else { return };
        let mut cx = Context::from_waker(Waker::noop());
        let stream = &mut self.app[k];
        let Some(recv) = stream.recv.as_mut() else { return };
        for _ in 0..4 {
            match recv.poll_data(&mut cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let sent = self.mirror.streams.get(&stream.id).map_or(&[][..], |s| &s.data[..]);
                    let end = stream.read + chunk.len();
                    assert!(
                        end <= sent.len() && sent[stream.read..end] == chunk[..],
                        "stream {}: the application read {} bytes at {} that the client did not send there",
                        stream.id,
                        chunk.len(),
                        stream.read
                    );
                    stream.read = end;
                    if variant & 1 == 0 {
                        recv.release_capacity(chunk.len());
                    } else {
                        stream.unreleased += chunk.len();
                    }
                }
                Poll::Ready(None) => {
                    let sent = self.mirror.streams.get(&stream.id);
                    assert!(
                        sent.is_some_and(|s| s.ended && s.data.len() == stream.read),
                        "stream {}: the request body ended after {} bytes, but the client sent {:?} bytes (ended: {:?})",
                        stream.id,
                        stream.read,
                        sent.map(|s| s.data.len()),
                        sent.map(|s| s.ended)
                    );
                    break;
                }
                Poll::Ready(Some(Err(_))) | Poll::Pending => break,
            }
        }
    }

    fn app_release(&mut self, input: &mut Input<'_>) {
        let Some(k) = self.pick(input) else { return };
        let amount = usize::from(input.byte()) * 64;
        let stream = &mut self.app[k];
        let n = amount.min(stream.unreleased);
        if let Some(recv) = stream.recv.as_mut() {
            stream.unreleased -= n;
            recv.release_capacity(n);
        }
    }

    fn app_poll(&mut self, input: &mut Input<'_>) {
        let Some(k) = self.pick(input) else { return };
        let mut cx = Context::from_waker(Waker::noop());
        let stream = &mut self.app[k];
        if let Some(recv) = stream.recv.as_mut() {
            assert_eq!(recv.stream_id(), stream.id);
            let _ = recv.is_end_stream();
            let _ = recv.poll_trailers(&mut cx);
        }
    }

    fn app_respond(&mut self, input: &mut Input<'_>, variant: u8) {
        let Some(k) = self.pick(input) else { return };
        let choice = input.byte();
        let status = [200u16, 200, 404, 503][usize::from(choice & 3)];
        let end = variant == 1;
        let mut metadata = HeaderMap::new();
        if choice & 4 != 0 {
            metadata.insert("x-meta", HeaderValue::from_static("value"));
        }
        if choice & 8 != 0 {
            // Connection-specific: the encoder leaves it out.
            metadata.insert("connection", HeaderValue::from_static("close"));
        }
        if choice & 16 != 0 {
            let mut secret = HeaderValue::from_static("secret");
            secret.set_sensitive(true);
            metadata.insert("authorization", secret);
        }
        let fields = OutFields {
            content_type: Some(HeaderValue::from_static("application/grpc")),
            status: end.then(|| Status::new(Code::Ok, "")),
            metadata,
            ..OutFields::default()
        };
        let response = OutResponse { status, fields };
        let stream = &mut self.app[k];
        let Some(respond) = stream.respond.as_mut() else { return };
        if let Ok(send) = respond.send_response(response, end) {
            let sent = self.app_sent.entry(stream.id).or_default();
            sent.status = Some(status);
            sent.ended = end;
            if send.is_some() {
                stream.send = send;
            }
        }
    }

    fn app_send_data(&mut self, input: &mut Input<'_>, variant: u8) {
        let Some(k) = self.pick(input) else { return };
        let len = [0usize, 1, 5, 100, 1000, 16_384, 16_385, 70_000][usize::from(input.byte() % 8)];
        let len = len.min(self.data_budget);
        let end = variant == 1;
        let stream = &mut self.app[k];
        let Some(send) = stream.send.as_mut() else { return };
        let sent = self.app_sent.entry(stream.id).or_default();
        let data = pattern_bytes(stream.id, sent.queued, len);
        if send.queue_data(data, end).is_ok() {
            self.data_budget -= len;
            sent.queued += len as u64;
            sent.ended |= end;
        }
    }

    fn app_trailers(&mut self, input: &mut Input<'_>, variant: u8) {
        let Some(k) = self.pick(input) else { return };
        let code = input.byte() % 17;
        let message = if variant & 1 == 1 { "a message" } else { "" };
        let status = Status::new(Code::from_i32(i32::from(code)), message);
        let stream = &mut self.app[k];
        let Some(send) = stream.send.as_mut() else { return };
        let trailers = OutFields {
            status: Some(status),
            ..OutFields::default()
        };
        if send.send_trailers(trailers).is_ok() {
            let sent = self.app_sent.entry(stream.id).or_default();
            sent.ended = true;
            sent.trailers = Some(code.to_string());
        }
    }

    fn app_reset(&mut self, input: &mut Input<'_>) {
        let Some(k) = self.pick(input) else { return };
        let b = input.byte();
        let code = ErrorCode::from(u32::from(b % 16));
        let stream = &mut self.app[k];
        match (b & 16 != 0, stream.send.as_mut(), stream.respond.as_mut()) {
            (true, Some(send), _) => send.reset(code),
            (_, _, Some(respond)) => respond.reset(code),
            (_, Some(send), None) => send.reset(code),
            _ => {}
        }
    }

    fn app_drop(&mut self, input: &mut Input<'_>, variant: u8) {
        let Some(k) = self.pick(input) else { return };
        let stream = &mut self.app[k];
        match variant {
            0 => drop(stream.recv.take()),
            1 => drop(stream.respond.take()),
            2 => drop(stream.send.take()),
            _ => {
                drop(stream.recv.take());
                drop(stream.respond.take());
                drop(stream.send.take());
            }
        }
        if !stream.live() {
            self.app.swap_remove(k);
        }
    }

    fn app_poll_reset(&mut self, input: &mut Input<'_>) {
        let Some(k) = self.pick(input) else { return };
        let mut cx = Context::from_waker(Waker::noop());
        let stream = &mut self.app[k];
        if let Some(send) = stream.send.as_mut() {
            let _ = send.poll_reset(&mut cx);
        }
        if let Some(respond) = stream.respond.as_mut() {
            let _ = respond.poll_reset(&mut cx);
        }
    }

    /// Writes the client's bytes, polls the driver and reads what it
    /// wrote, until nothing moves (or [`PUMP_ROUNDS`]).
    fn pump(&mut self) {
        for _ in 0..PUMP_ROUNDS {
            let mut progress = self.write_client();
            progress |= self.poll_driver();
            progress |= self.read_server();
            if !progress {
                break;
            }
        }
    }

    fn write_client(&mut self) -> bool {
        let Some(io) = self.io.as_mut() else { return false };
        let mut cx = Context::from_waker(Waker::noop());
        let mut progress = false;
        while !self.out.is_empty() {
            match Pin::new(&mut *io).poll_write(&mut cx, &self.out) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    let _ = self.out.split_to(n);
                    progress = true;
                }
                Poll::Ready(Ok(_)) | Poll::Pending => break,
                Poll::Ready(Err(_)) => {
                    self.out.clear();
                    break;
                }
            }
        }
        progress
    }

    fn poll_driver(&mut self) -> bool {
        let Some(driver) = self.driver.as_mut() else {
            return false;
        };
        if self.ended {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match driver.poll(&mut cx) {
            Poll::Ready(Event::Accepted) => {
                let accepted: Vec<_> = driver.accepted().collect();
                for (request, recv, respond) in accepted {
                    self.accept(request, recv, respond);
                }
                true
            }
            Poll::Ready(Event::Ended) => {
                self.ended = true;
                let ended = driver.ended();
                if tracing() {
                    eprintln!("  ended: {ended:?}");
                }
                true
            }
            Poll::Pending => false,
        }
    }

    fn accept(&mut self, request: RequestHead, recv: RecvHalf, respond: Responder) {
        let id = recv.stream_id();
        if tracing() {
            let method = String::from_utf8_lossy(&request.method);
            eprintln!(
                "  accepted stream {id}: {method} {}",
                String::from_utf8_lossy(&request.path)
            );
        }
        assert!(!request.path.is_empty(), "stream {id}: accepted with an empty :path");
        assert!(
            id % 2 == 1 && self.mirror.opened.contains(&id),
            "the server accepted stream {id}, which the client never opened"
        );
        assert!(self.accepted.insert(id), "the server accepted stream {id} twice");
        if let Some(last) = self.goaway_last {
            assert!(
                id <= last,
                "the server accepted stream {id} after its GOAWAY named {last} the last"
            );
        }
        self.max_accepted = self.max_accepted.max(id);
        self.app.push(AppStream {
            id,
            recv: Some(recv),
            respond: Some(respond),
            send: None,
            read: 0,
            unreleased: 0,
        });
        if let Some(limit) = self.setup.settings.max_concurrent_streams {
            let live = self.app.iter().filter(|s| s.live()).count();
            assert!(
                live <= limit as usize,
                "the server accepted {live} streams at once, over its limit of {limit}"
            );
        }
    }

    /// Reads and checks what the server wrote; true if anything came.
    fn read_server(&mut self) -> bool {
        let Some(io) = self.io.as_mut() else { return false };
        let mut cx = Context::from_waker(Waker::noop());
        let mut progress = false;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut *io).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.in_buf.extend_from_slice(buf.filled());
                    progress = true;
                }
                _ => break,
            }
        }
        if progress {
            self.server_frames();
        }
        progress
    }

    fn server_frames(&mut self) {
        loop {
            match self.reader.read(&mut self.in_buf) {
                Ok(Some(frame)) => self.server_frame(frame),
                Ok(None) => return,
                Err(e) => panic!("the server sent a malformed frame: {e}"),
            }
        }
    }

    fn server_frame(&mut self, frame: Frame) {
        if tracing() {
            eprintln!("  server: {frame:?}");
        }
        if !self.greeted {
            assert!(
                matches!(frame, Frame::Settings(_)),
                "the server's first frame was not SETTINGS: {frame:?}"
            );
        }
        let id = frame.stream_id().value();
        if matches!(frame, Frame::Headers(_) | Frame::Data(_)) {
            assert!(
                !self.error_goaway,
                "the server sent {frame:?} after a GOAWAY with an error"
            );
            assert!(
                self.accepted.contains(&id),
                "the server sent HEADERS or DATA on stream {id}, which it never accepted"
            );
            if let Some(last) = self.goaway_last {
                assert!(
                    id <= last,
                    "the server sent on stream {id} after its GOAWAY named {last} the last"
                );
            }
            let seen = self.seen.entry(id).or_default();
            assert!(
                !seen.reset,
                "the server sent {frame:?} on stream {id} after resetting it"
            );
            assert!(!seen.ended, "the server sent {frame:?} on stream {id} after ending it");
        }
        match frame {
            Frame::Settings(settings) => {
                assert!(!self.greeted, "the server sent SETTINGS twice");
                self.greeted = true;
                let s = &self.setup.settings;
                assert_eq!(settings.initial_window_size, Some(s.initial_stream_window));
                assert_eq!(settings.max_concurrent_streams, s.max_concurrent_streams);
                if self.setup.auto_settings_ack {
                    self.send_frame(0x4, 0x1, 0, &[]);
                }
            }
            Frame::SettingsAck => {
                let settings = self
                    .mirror
                    .settings
                    .pop_front()
                    .expect("the server acknowledged SETTINGS the client never sent");
                if let Some(window) = settings.initial_window_size {
                    self.acked_window = i64::from(window);
                }
                if let Some(size) = settings.max_frame_size {
                    self.reader.decoder_mut().set_max_frame_size(size);
                }
                if let Some(size) = settings.header_table_size {
                    self.decoder.set_max_table_size(size as usize);
                }
            }
            Frame::Headers(h) => {
                let mut fields = Block::default();
                if let Err(e) = self.decoder.decode(&h.fragment, &mut fields) {
                    panic!("the server's header block on stream {id} does not decode: {e:?}");
                }
                let app = self.app_sent.get(&id);
                let seen = self.seen.entry(id).or_default();
                if !seen.head {
                    seen.head = true;
                    match headers::response(fields) {
                        Ok(Some(response)) => {
                            let status = app.and_then(|a| a.status);
                            assert_eq!(
                                Some(response.status),
                                status,
                                "stream {id}: the server sent a status the application did not choose"
                            );
                            assert!(response.fields.metadata.get("connection").is_none());
                        }
                        Ok(None) => panic!("stream {id}: an informational head"),
                        Err(e) => panic!("stream {id}: the server sent an invalid response head: {e:?}"),
                    }
                } else {
                    assert!(!seen.trailers, "stream {id}: the server sent a third header block");
                    assert!(
                        h.end_stream,
                        "stream {id}: the server's trailers did not end the stream"
                    );
                    seen.trailers = true;
                    let trailers = headers::trailers(fields)
                        .unwrap_or_else(|e| panic!("stream {id}: the server sent invalid trailers: {e:?}"));
                    let expected = app.and_then(|a| a.trailers.as_ref());
                    assert_eq!(
                        trailers.grpc_status.as_deref(),
                        expected.map(|t| t.as_bytes()),
                        "stream {id}: the trailers are not the application's"
                    );
                }
                if h.end_stream {
                    seen.ended = true;
                    let (queued, ended) = app.map_or((0, false), |a| (a.queued, a.ended));
                    assert!(
                        ended,
                        "stream {id}: the server ended a stream the application did not end"
                    );
                    assert_eq!(
                        seen.data, queued,
                        "stream {id}: the server ended the stream after {} of {queued} bytes",
                        seen.data
                    );
                }
            }
            Frame::Data(d) => {
                assert!(d.padding.is_none());
                let seen = self.seen.entry(id).or_default();
                assert!(seen.head, "stream {id}: DATA before the response head");
                let len = d.payload.len() as u64;
                for (i, &b) in d.payload.iter().enumerate() {
                    assert_eq!(
                        b,
                        pattern(id, seen.data + i as u64),
                        "stream {id}: byte {} of the response body is not the application's",
                        seen.data + i as u64
                    );
                }
                seen.data += len;
                if len > 0 {
                    let granted = self.mirror.streams.get(&id).map_or(0, |s| s.granted);
                    assert!(
                        seen.data as i64 <= self.acked_window + granted,
                        "stream {id}: the server sent {} bytes, beyond the window of {} + {granted} granted",
                        seen.data,
                        self.acked_window
                    );
                    self.conn_data += len as i64;
                    assert!(
                        self.conn_data <= DEFAULT_WINDOW + self.mirror.conn_granted,
                        "the server sent {} bytes, beyond the connection window of {} granted",
                        self.conn_data,
                        DEFAULT_WINDOW + self.mirror.conn_granted
                    );
                }
                if d.end_stream {
                    seen.ended = true;
                    let app = self.app_sent.get(&id);
                    let (queued, ended) = app.map_or((0, false), |a| (a.queued, a.ended && a.trailers.is_none()));
                    assert!(ended, "stream {id}: DATA ended a stream the application did not end so");
                    assert_eq!(
                        seen.data, queued,
                        "stream {id}: ended after {} of {queued} bytes",
                        seen.data
                    );
                }
            }
            Frame::WindowUpdate(w) => {
                if id == 0 {
                    self.conn_granted += i64::from(w.increment);
                    let window = DEFAULT_WINDOW + self.conn_granted - self.mirror.conn_flow;
                    assert!(
                        window <= MAX_WINDOW,
                        "the server's WINDOW_UPDATE took the connection window to {window}"
                    );
                } else {
                    assert!(
                        self.accepted.contains(&id),
                        "WINDOW_UPDATE on stream {id}, never accepted"
                    );
                    let seen = self.seen.entry(id).or_default();
                    assert!(!seen.reset, "WINDOW_UPDATE on stream {id} after the server reset it");
                    seen.granted += i64::from(w.increment);
                    let flow = self.mirror.streams.get(&id).map_or(0, |s| s.flow);
                    let window = i64::from(self.setup.settings.initial_stream_window) + seen.granted - flow;
                    assert!(
                        window <= MAX_WINDOW,
                        "the server's WINDOW_UPDATE took stream {id}'s window to {window}"
                    );
                }
            }
            Frame::RstStream(_) => {
                self.seen.entry(id).or_default().reset = true;
            }
            Frame::Ping(ping) => {
                if ping.ack {
                    let at = self.mirror.pings.iter().position(|p| *p == ping.opaque);
                    let at = at.unwrap_or_else(|| panic!("the server acknowledged a PING never sent: {ping:?}"));
                    self.mirror.pings.swap_remove(at);
                } else {
                    assert!(
                        self.setup.keepalive.is_some() || self.shutdown,
                        "the server sent a PING with neither keepalive nor shutdown"
                    );
                    self.server_ping = Some(ping.opaque);
                    if self.setup.auto_ping_ack {
                        self.send_frame(0x6, 0x1, 0, &ping.opaque);
                    }
                }
            }
            Frame::GoAway(goaway) => {
                let last = goaway.last_stream_id.value();
                assert!(
                    last >= self.max_accepted,
                    "the server's GOAWAY names {last} the last stream, below stream {} it accepted",
                    self.max_accepted
                );
                if let Some(before) = self.goaway_last {
                    assert!(
                        last <= before,
                        "the server's GOAWAY raised the last stream from {before} to {last}"
                    );
                }
                self.goaway_last = Some(last);
                if goaway.error_code != ErrorCode::NoError {
                    self.error_goaway = true;
                }
            }
            other => panic!("the server sent a frame a server never sends: {other:?}"),
        }
    }

    /// Closes the client's side and polls until the connection ends, then
    /// uses what is left of the handles.
    fn finish(&mut self) {
        self.pump();
        if self.setup.drop_socket {
            self.io = None;
        } else if let Some(io) = self.io.as_mut() {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = Pin::new(io).poll_shutdown(&mut cx);
        }
        for _ in 0..END_ROUNDS {
            if self.ended || self.driver.is_none() {
                break;
            }
            self.poll_driver();
            self.read_server();
        }
        assert!(
            self.ended,
            "the connection did not end after the client closed its side"
        );
        if self.setup.drop_driver_first {
            self.driver = None;
        }
        let mut cx = Context::from_waker(Waker::noop());
        for stream in &mut self.app {
            if let Some(recv) = stream.recv.as_mut() {
                let _ = recv.poll_data(&mut cx);
                let _ = recv.poll_trailers(&mut cx);
                recv.release_capacity(stream.unreleased);
            }
            if let Some(send) = stream.send.as_mut() {
                let _ = send.queue_data(Bytes::from_static(b"late"), true);
                let _ = send.poll_reset(&mut cx);
            }
            if let Some(respond) = stream.respond.as_mut() {
                let _ = respond.send_response(OutResponse::ok(OutFields::default()), true);
            }
        }
        self.app.clear();
        self.opener = None;
        self.driver = None;
    }
}
