//! A raw HTTP/2 client for conformance tests (RFC 9113): it writes the
//! connection preface and frames byte by byte over a real TCP socket, so a
//! test can send what no well-behaved client would, and reads the server's
//! frames back one at a time, decoding header blocks ([`hpack`]) well
//! enough to read a response's fields.
//!
//! Written from the RFCs for these tests, apart from the HTTP/2 code under
//! test, so that the two cannot share a misreading.
//!
//! Waiting is bounded: each expectation fails the test if what it waits
//! for has not come within [`RawConn::limit`], listing every frame the
//! server sent, so a failure says what the server did instead. With the
//! environment variable `RAW_H2_TRACE` set, each connection prints that
//! list when it is dropped, whether the test passed or not.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub mod hpack;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The frame size every endpoint must accept, and the initial
/// SETTINGS_MAX_FRAME_SIZE.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16_384;

/// The largest flow-control window, 2^31 - 1.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// How long an expectation waits by default before it fails the test: a
/// bound on failure, generous for loaded machines; a test that passes
/// never waits this long.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Frame types (RFC 9113 §6).
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY.
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE.
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
    /// A type HTTP/2 does not define, for frames a receiver must ignore.
    pub const UNKNOWN: u8 = 0x16;
}

/// Frame flags.
pub mod flag {
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS, PUSH_PROMISE, CONTINUATION).
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED (DATA, HEADERS, PUSH_PROMISE).
    pub const PADDED: u8 = 0x8;
    /// PRIORITY (HEADERS).
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes (RFC 9113 §7).
pub mod code {
    /// NO_ERROR.
    pub const NO_ERROR: u32 = 0x0;
    /// PROTOCOL_ERROR.
    pub const PROTOCOL_ERROR: u32 = 0x1;
    /// INTERNAL_ERROR.
    pub const INTERNAL_ERROR: u32 = 0x2;
    /// FLOW_CONTROL_ERROR.
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    /// SETTINGS_TIMEOUT.
    pub const SETTINGS_TIMEOUT: u32 = 0x4;
    /// STREAM_CLOSED.
    pub const STREAM_CLOSED: u32 = 0x5;
    /// FRAME_SIZE_ERROR.
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    /// REFUSED_STREAM.
    pub const REFUSED_STREAM: u32 = 0x7;
    /// CANCEL.
    pub const CANCEL: u32 = 0x8;
    /// COMPRESSION_ERROR.
    pub const COMPRESSION_ERROR: u32 = 0x9;
    /// CONNECT_ERROR.
    pub const CONNECT_ERROR: u32 = 0xa;
    /// ENHANCE_YOUR_CALM.
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
    /// INADEQUATE_SECURITY.
    pub const INADEQUATE_SECURITY: u32 = 0xc;
    /// HTTP_1_1_REQUIRED.
    pub const HTTP_1_1_REQUIRED: u32 = 0xd;
}

/// SETTINGS parameters (RFC 9113 §6.5.2).
pub mod setting {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// An error code's name.
pub fn code_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    match NAMES.get(code as usize) {
        Some(name) => name.to_string(),
        None => format!("error code {code:#x}"),
    }
}

fn kind_name(kind: u8) -> String {
    const NAMES: [&str; 10] = [
        "DATA",
        "HEADERS",
        "PRIORITY",
        "RST_STREAM",
        "SETTINGS",
        "PUSH_PROMISE",
        "PING",
        "GOAWAY",
        "WINDOW_UPDATE",
        "CONTINUATION",
    ];
    match NAMES.get(kind as usize) {
        Some(name) => name.to_string(),
        None => format!("frame type {kind:#x}"),
    }
}

// Frame encoding.

/// One frame: the 9-octet header and the payload. `stream` is written as
/// given, so a test can set the reserved bit.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(
        len < 1 << 24,
        "a frame payload of {len} octets does not fit the length field"
    );
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS frame with these parameters, in this order.
pub fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(6 * params.len());
    for &(id, value) in params {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &payload)
}

/// A SETTINGS frame acknowledging the peer's.
pub fn settings_ack() -> Vec<u8> {
    frame(kind::SETTINGS, flag::ACK, 0, &[])
}

/// A PING frame.
pub fn ping(data: [u8; 8]) -> Vec<u8> {
    frame(kind::PING, 0, 0, &data)
}

/// A PING frame with ACK.
pub fn ping_ack(data: [u8; 8]) -> Vec<u8> {
    frame(kind::PING, flag::ACK, 0, &data)
}

/// A DATA frame.
pub fn data(stream: u32, end_stream: bool, payload: &[u8]) -> Vec<u8> {
    frame(
        kind::DATA,
        if end_stream { flag::END_STREAM } else { 0 },
        stream,
        payload,
    )
}

/// A DATA frame with `pad` octets of padding.
pub fn data_padded(stream: u32, end_stream: bool, payload: &[u8], pad: u8) -> Vec<u8> {
    let mut body = vec![pad];
    body.extend_from_slice(payload);
    body.resize(body.len() + pad as usize, 0);
    let flags = flag::PADDED | if end_stream { flag::END_STREAM } else { 0 };
    frame(kind::DATA, flags, stream, &body)
}

/// A HEADERS frame carrying `block` with these flags.
pub fn headers(stream: u32, flags: u8, block: &[u8]) -> Vec<u8> {
    frame(kind::HEADERS, flags, stream, block)
}

/// A HEADERS frame with `pad` octets of padding (PADDED is added).
pub fn headers_padded(stream: u32, flags: u8, block: &[u8], pad: u8) -> Vec<u8> {
    let mut body = vec![pad];
    body.extend_from_slice(block);
    body.resize(body.len() + pad as usize, 0);
    frame(kind::HEADERS, flags | flag::PADDED, stream, &body)
}

/// A HEADERS frame with priority fields (PRIORITY is added).
pub fn headers_prioritized(stream: u32, flags: u8, priority: Priority, block: &[u8]) -> Vec<u8> {
    let mut body = priority.bytes().to_vec();
    body.extend_from_slice(block);
    frame(kind::HEADERS, flags | flag::PRIORITY, stream, &body)
}

/// A CONTINUATION frame.
pub fn continuation(stream: u32, end_headers: bool, block: &[u8]) -> Vec<u8> {
    frame(
        kind::CONTINUATION,
        if end_headers { flag::END_HEADERS } else { 0 },
        stream,
        block,
    )
}

/// The priority fields of HEADERS and PRIORITY frames (RFC 9113 §5.3.2,
/// deprecated but still parsed).
#[derive(Clone, Copy, Debug)]
pub struct Priority {
    /// The stream depended on.
    pub dependency: u32,
    /// The exclusive bit.
    pub exclusive: bool,
    /// The weight field as sent: the weight minus one.
    pub weight: u8,
}

impl Priority {
    /// No dependency, weight field `weight`.
    pub fn weight(weight: u8) -> Priority {
        Priority {
            dependency: 0,
            exclusive: false,
            weight,
        }
    }

    /// The five octets.
    pub fn bytes(self) -> [u8; 5] {
        let dep = self.dependency | if self.exclusive { 1 << 31 } else { 0 };
        let d = dep.to_be_bytes();
        [d[0], d[1], d[2], d[3], self.weight]
    }
}

/// A PRIORITY frame.
pub fn priority(stream: u32, priority: Priority) -> Vec<u8> {
    frame(kind::PRIORITY, 0, stream, &priority.bytes())
}

/// An RST_STREAM frame.
pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// A GOAWAY frame.
pub fn goaway(last_stream: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let mut payload = last_stream.to_be_bytes().to_vec();
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(debug);
    frame(kind::GOAWAY, 0, 0, &payload)
}

/// A WINDOW_UPDATE frame.
pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// A PUSH_PROMISE frame with END_HEADERS.
pub fn push_promise(stream: u32, promised: u32, block: &[u8]) -> Vec<u8> {
    let mut payload = promised.to_be_bytes().to_vec();
    payload.extend_from_slice(block);
    frame(kind::PUSH_PROMISE, flag::END_HEADERS, stream, &payload)
}

// Reading.

/// A header block the server sent, whole.
#[derive(Clone, Debug)]
pub struct HeaderBlock {
    /// The frame that began it: HEADERS or PUSH_PROMISE.
    pub started_by: u8,
    /// Its stream.
    pub stream: u32,
    /// The decoded fields.
    pub fields: Vec<hpack::Field>,
}

impl HeaderBlock {
    /// The value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A frame the server sent.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The type.
    pub kind: u8,
    /// The flags.
    pub flags: u8,
    /// The stream identifier, reserved bit cleared.
    pub stream: u32,
    /// The payload.
    pub payload: Vec<u8>,
    /// The header block this frame completed, if it did.
    pub block: Option<HeaderBlock>,
}

impl Frame {
    /// Whether `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The error code of an RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            kind::RST_STREAM => 0,
            kind::GOAWAY => 4,
            _ => return None,
        };
        let octets = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes(octets.try_into().unwrap()))
    }

    /// Whether this is a GOAWAY frame.
    pub fn is_goaway(&self) -> bool {
        self.kind == kind::GOAWAY
    }

    /// The debug data of a GOAWAY frame.
    pub fn goaway_debug(&self) -> Option<&[u8]> {
        (self.kind == kind::GOAWAY).then(|| self.payload.get(8..).unwrap_or_default())
    }

    /// Whether this is an RST_STREAM frame on `stream`.
    pub fn is_rst_on(&self, stream: u32) -> bool {
        self.kind == kind::RST_STREAM && self.stream == stream
    }

    /// Whether this frame ends `stream` from the server's side.
    pub fn ends_stream(&self, stream: u32) -> bool {
        self.stream == stream && matches!(self.kind, kind::DATA | kind::HEADERS) && self.has(flag::END_STREAM)
    }

    /// A short description for failure messages.
    pub fn describe(&self) -> String {
        let mut s = kind_name(self.kind);
        let mut parts: Vec<String> = Vec::new();
        if self.stream != 0 || !matches!(self.kind, kind::SETTINGS | kind::PING | kind::GOAWAY) {
            parts.push(format!("stream {}", self.stream));
        }
        let mut flags = Vec::new();
        let named: &[(u8, &str)] = match self.kind {
            kind::DATA => &[(flag::END_STREAM, "END_STREAM"), (flag::PADDED, "PADDED")],
            kind::HEADERS => &[
                (flag::END_STREAM, "END_STREAM"),
                (flag::END_HEADERS, "END_HEADERS"),
                (flag::PADDED, "PADDED"),
                (flag::PRIORITY, "PRIORITY"),
            ],
            kind::SETTINGS | kind::PING => &[(flag::ACK, "ACK")],
            kind::CONTINUATION | kind::PUSH_PROMISE => &[(flag::END_HEADERS, "END_HEADERS")],
            _ => &[],
        };
        for &(f, name) in named {
            if self.has(f) {
                flags.push(name);
            }
        }
        if !flags.is_empty() {
            parts.push(flags.join("|"));
        }
        match self.kind {
            kind::DATA => parts.push(format!("{} octets", self.payload.len())),
            kind::RST_STREAM => parts.push(self.error_code().map(code_name).unwrap_or_else(|| "short".into())),
            kind::GOAWAY => {
                let last = self
                    .payload
                    .get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().unwrap()) & MAX_WINDOW);
                parts.push(format!("last stream {}", last.unwrap_or(0)));
                parts.push(self.error_code().map(code_name).unwrap_or_else(|| "short".into()));
                if self.payload.len() > 8 {
                    parts.push(format!("{:?}", String::from_utf8_lossy(&self.payload[8..])));
                }
            }
            kind::WINDOW_UPDATE if self.payload.len() == 4 => {
                let inc = u32::from_be_bytes(self.payload[..4].try_into().unwrap());
                parts.push(format!("+{inc}"));
            }
            kind::SETTINGS => {
                for p in self.payload.chunks(6).filter(|c| c.len() == 6) {
                    let id = u16::from_be_bytes([p[0], p[1]]);
                    let value = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                    parts.push(format!("{id:#x}={value}"));
                }
            }
            kind::PING => parts.push(format!("{:?}", self.payload)),
            _ => {}
        }
        if let Some(block) = &self.block {
            for (n, v) in &block.fields {
                parts.push(format!("{n}: {v}"));
            }
        }
        if !parts.is_empty() {
            let _ = write!(s, "({})", parts.join(", "));
        }
        s
    }
}

/// What reading the connection gave.
#[derive(Clone, Debug)]
pub enum Event {
    /// A frame.
    Frame(Frame),
    /// The server closed the connection (or reset it); the reason.
    Closed(String),
}

/// What an expectation makes of an event.
pub enum Verdict<T> {
    /// What was expected came.
    Pass(T),
    /// Something came that the expectation rules out; why.
    Fail(String),
    /// Neither: keep reading.
    Continue,
}

/// How [`RawConn::send_within`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// All of it was written.
    Written,
    /// A write failed (the server closed or reset the connection); why.
    Failed(String),
    /// Not all of it was written within the bound.
    Stalled,
}

/// How a [`RawConn::flood`] went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flood {
    /// The chunks written whole.
    pub written: usize,
    /// The octets written.
    pub octets: usize,
    /// Why it stopped.
    pub end: FloodEnd,
}

/// Why a [`RawConn::flood`] stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FloodEnd {
    /// Every chunk was written.
    AllWritten,
    /// A whole GOAWAY arrived from the server.
    GoAway,
    /// The server closed the connection (or it failed) before any GOAWAY
    /// arrived; why.
    Closed(String),
    /// A write failed; why.
    WriteFailed(String),
    /// Nothing could be read or written within [`RawConn::limit`].
    Stalled,
}

/// A raw HTTP/2 client connection.
pub struct RawConn {
    tcp: TcpStream,
    /// What was read and not parsed yet: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    decoder: hpack::Decoder,
    /// A header block being received: its first frame's type, its stream,
    /// and the fragments so far.
    pending: Option<(u8, u32, Vec<u8>)>,
    server_settings: HashMap<u16, u32>,
    server_settings_seen: bool,
    acks_seen: usize,
    seen: Vec<String>,
    closed: Option<String>,
    /// How long an expectation waits before failing the test.
    pub limit: Duration,
    /// Answer the server's PINGs and SETTINGS as a client must. On by
    /// default.
    pub auto_reply: bool,
}

impl RawConn {
    /// Opens a TCP connection to `addr`; nothing is sent yet.
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let tcp = TcpStream::connect(addr).await.expect("TCP connect to the test server");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        RawConn {
            tcp,
            buf: Vec::new(),
            start: 0,
            decoder: hpack::Decoder::default(),
            pending: None,
            server_settings: HashMap::new(),
            server_settings_seen: false,
            acks_seen: 0,
            seen: Vec::new(),
            closed: None,
            limit: LIMIT,
            auto_reply: true,
        }
    }

    /// Connects and completes the HTTP/2 handshake with an empty SETTINGS.
    pub async fn open(addr: SocketAddr) -> RawConn {
        let mut conn = RawConn::connect(addr).await;
        conn.handshake(&[]).await;
        conn
    }

    /// Sends the preface and a SETTINGS frame with `params`, then waits for
    /// the server's SETTINGS and its acknowledgement of ours (and answers
    /// the server's).
    pub async fn handshake(&mut self, params: &[(u16, u32)]) {
        let mut greeting = PREFACE.to_vec();
        greeting.extend_from_slice(&settings(params));
        self.send(&greeting).await;
        let acks_before = self.acks_seen;
        self.wait_for(
            "the server's SETTINGS and a SETTINGS ACK (the handshake)",
            |conn, event| match event {
                Event::Closed(_) => Verdict::Fail("the connection closed during the handshake".into()),
                Event::Frame(f) if f.is_goaway() => Verdict::Fail("GOAWAY during the handshake".into()),
                _ if conn.server_settings_seen && conn.acks_seen > acks_before => Verdict::Pass(()),
                _ => Verdict::Continue,
            },
        )
        .await;
    }

    /// A SETTINGS parameter the server sent, if it sent it.
    pub fn server_setting(&self, id: u16) -> Option<u32> {
        self.server_settings.get(&id).copied()
    }

    /// Writes `bytes` as they are. A write that fails (the server has
    /// closed) is noted, not fatal: reading then tells how it closed.
    pub async fn send(&mut self, bytes: &[u8]) {
        if self.closed.is_some() {
            return;
        }
        if let Err(e) = self.tcp.write_all(bytes).await {
            self.seen.push(format!("(a write failed: {e})"));
        }
    }

    /// Writes `bytes` unless that takes longer than `bound`, without
    /// reading: for a client that never reads. A write that does not finish
    /// within `bound` is abandoned part way (so nothing more should be
    /// sent on this connection): the server has stopped reading, or is
    /// slower than that.
    pub async fn send_within(&mut self, bytes: &[u8], bound: Duration) -> Sent {
        if let Some(why) = &self.closed {
            return Sent::Failed(why.clone());
        }
        match tokio::time::timeout(bound, self.tcp.write_all(bytes)).await {
            Ok(Ok(())) => Sent::Written,
            Ok(Err(e)) => {
                self.seen.push(format!("(a write failed: {e})"));
                Sent::Failed(e.to_string())
            }
            Err(_) => {
                self.seen.push(format!("(a write took longer than {bound:?})"));
                Sent::Stalled
            }
        }
    }

    /// Writes up to `times` chunks, chunk `i` made by `make(i)`, as fast as
    /// the socket takes them, while reading what the server sends (kept for
    /// the expectations that follow), so that neither side waits on a full
    /// socket. Stops once a whole GOAWAY has arrived, the server closes the
    /// connection, a write fails, or neither reading nor writing makes
    /// progress within [`RawConn::limit`].
    pub async fn flood(&mut self, times: usize, mut make: impl FnMut(usize) -> Vec<u8>) -> Flood {
        let mut written = 0;
        let mut at = 0;
        let mut chunk = Vec::new();
        let mut octets = 0usize;
        let mut scan = self.start;
        let mut read_buf = vec![0u8; 64 * 1024];
        let (mut rd, mut wr) = self.tcp.split();
        let end = loop {
            // Look for a whole GOAWAY among the frames read so far.
            let mut goaway = false;
            while self.buf.len() - scan >= 9 {
                let b = &self.buf[scan..];
                let len = u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
                if b.len() < 9 + len {
                    break;
                }
                goaway |= b[3] == kind::GOAWAY;
                scan += 9 + len;
            }
            if goaway {
                break FloodEnd::GoAway;
            }
            if written == times {
                break FloodEnd::AllWritten;
            }
            if at == 0 {
                chunk = make(written);
            }
            let step = tokio::time::timeout(self.limit, async {
                // Both are cancel safe: a write that loses the race wrote
                // nothing, a read that loses it read nothing.
                tokio::select! {
                    read = rd.read(&mut read_buf) => Err(read),
                    wrote = wr.write(&chunk[at..]) => Ok(wrote),
                }
            })
            .await;
            match step {
                Err(_) => break FloodEnd::Stalled,
                Ok(Err(Ok(0))) => break FloodEnd::Closed("the server closed the connection".into()),
                Ok(Err(Ok(n))) => self.buf.extend_from_slice(&read_buf[..n]),
                Ok(Err(Err(e))) => break FloodEnd::Closed(format!("the connection failed: {e}")),
                Ok(Ok(Ok(0))) => break FloodEnd::WriteFailed("a write took nothing".into()),
                Ok(Ok(Ok(n))) => {
                    at += n;
                    octets += n;
                    if at == chunk.len() {
                        at = 0;
                        written += 1;
                    }
                }
                Ok(Ok(Err(e))) => break FloodEnd::WriteFailed(e.to_string()),
            }
        };
        self.seen
            .push(format!("(flooded {written} chunks, {octets} octets, until {end:?})"));
        Flood { written, octets, end }
    }

    /// Every frame the server sent so far, described, for messages.
    /// After a flood that may be many thousands of frames: then the first
    /// and last hundred are listed, and how many came between.
    pub fn transcript(&self) -> String {
        const ENDS: usize = 100;
        if self.seen.is_empty() {
            "nothing".to_string()
        } else if self.seen.len() <= 3 * ENDS {
            self.seen.join(", ")
        } else {
            let between = self.seen.len() - 2 * ENDS;
            format!(
                "{}, ... {between} more ..., {}",
                self.seen[..ENDS].join(", "),
                self.seen[self.seen.len() - ENDS..].join(", ")
            )
        }
    }

    /// The bytes read and not parsed yet.
    fn unparsed(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn parse(&mut self) -> Option<Frame> {
        let buf = self.unparsed();
        if buf.len() < 9 {
            return None;
        }
        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
        if buf.len() < 9 + len {
            return None;
        }
        let kind = buf[3];
        let flags = buf[4];
        let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & MAX_WINDOW;
        let payload = buf[9..9 + len].to_vec();
        // Parsed bytes are dropped in bulk, not frame by frame, so that
        // reading many small frames (after a flood) stays linear.
        self.start += 9 + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= 64 * 1024 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Some(Frame {
            kind,
            flags,
            stream,
            payload,
            block: None,
        })
    }

    /// Takes in a frame: assembles and decodes header blocks and keeps the
    /// server's settings. Returns the replies a client owes: SETTINGS ACK
    /// for SETTINGS, PING ACK for PING.
    fn take_in(&mut self, frame: &mut Frame) -> Vec<Vec<u8>> {
        let mut replies = Vec::new();
        match frame.kind {
            kind::SETTINGS if frame.has(flag::ACK) => self.acks_seen += 1,
            kind::SETTINGS => {
                for p in frame.payload.chunks(6).filter(|c| c.len() == 6) {
                    let id = u16::from_be_bytes([p[0], p[1]]);
                    self.server_settings
                        .insert(id, u32::from_be_bytes([p[2], p[3], p[4], p[5]]));
                }
                self.server_settings_seen = true;
                if self.auto_reply {
                    replies.push(settings_ack());
                }
            }
            kind::PING if !frame.has(flag::ACK) && self.auto_reply => {
                if let Ok(data) = <[u8; 8]>::try_from(frame.payload.as_slice()) {
                    replies.push(ping_ack(data));
                }
            }
            kind::HEADERS | kind::PUSH_PROMISE => {
                let mut body = frame.payload.as_slice();
                if frame.has(flag::PADDED) && !body.is_empty() {
                    let pad = body[0] as usize;
                    body = body.get(1..body.len().saturating_sub(pad)).unwrap_or_default();
                }
                if frame.kind == kind::HEADERS && frame.has(flag::PRIORITY) {
                    body = body.get(5..).unwrap_or_default();
                }
                if frame.kind == kind::PUSH_PROMISE {
                    body = body.get(4..).unwrap_or_default();
                }
                self.pending = Some((frame.kind, frame.stream, body.to_vec()));
            }
            kind::CONTINUATION => {
                if let Some((_, _, fragments)) = self.pending.as_mut() {
                    fragments.extend_from_slice(&frame.payload);
                }
            }
            _ => {}
        }
        let ends_block = matches!(frame.kind, kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION)
            && frame.has(flag::END_HEADERS);
        if ends_block && let Some((started_by, stream, fragments)) = self.pending.take() {
            let fields = match self.decoder.decode(&fragments) {
                Ok(fields) => fields,
                Err(e) => panic!(
                    "the server sent a header block this client cannot decode ({e}); before it: {}",
                    self.transcript()
                ),
            };
            frame.block = Some(HeaderBlock {
                started_by,
                stream,
                fields,
            });
        }
        replies
    }

    /// The next event, or `None` if none comes by `deadline`. Once the
    /// connection has closed, every call returns that.
    pub async fn next_event_by(&mut self, deadline: Instant) -> Option<Event> {
        loop {
            if let Some(why) = &self.closed {
                return Some(Event::Closed(why.clone()));
            }
            if let Some(mut frame) = self.parse() {
                let replies = self.take_in(&mut frame);
                self.seen.push(frame.describe());
                for reply in replies {
                    self.send(&reply).await;
                }
                return Some(Event::Frame(frame));
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = match tokio::time::timeout_at(deadline, self.tcp.read(&mut chunk)).await {
                Ok(read) => read,
                Err(_) => return None,
            };
            let why = match read {
                Ok(0) => "the server closed the connection".to_string(),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
                Err(e) => format!("the connection failed: {e}"),
            };
            if !self.unparsed().is_empty() {
                self.seen
                    .push(format!("({} octets of a partial frame)", self.unparsed().len()));
            }
            self.seen.push(format!("({why})"));
            self.closed = Some(why);
        }
    }

    /// The next event; fails the test if none comes within the limit.
    pub async fn next_event(&mut self) -> Event {
        let deadline = Instant::now() + self.limit;
        match self.next_event_by(deadline).await {
            Some(event) => event,
            None => panic!(
                "nothing from the server within {:?}; so far: {}",
                self.limit,
                self.transcript()
            ),
        }
    }

    /// Reads events until `check` passes or fails one, failing the test on
    /// a failed check, or when nothing passes within the limit, or when
    /// the connection closes without a verdict.
    pub async fn wait_for<T>(&mut self, expected: &str, mut check: impl FnMut(&RawConn, &Event) -> Verdict<T>) -> T {
        let deadline = Instant::now() + self.limit;
        loop {
            let Some(event) = self.next_event_by(deadline).await else {
                panic!(
                    "expected {expected}, but it did not come within {:?}; the server sent: {}",
                    self.limit,
                    self.transcript()
                );
            };
            match check(self, &event) {
                Verdict::Pass(out) => return out,
                Verdict::Fail(why) => panic!("expected {expected}, but {why}; the server sent: {}", self.transcript()),
                Verdict::Continue => {
                    if let Event::Closed(why) = event {
                        panic!("expected {expected}, but {why}; the server sent: {}", self.transcript());
                    }
                }
            }
        }
    }

    /// A connection error: GOAWAY with one of `codes` and then the
    /// connection closing, or the connection simply closing. A GOAWAY with
    /// another code fails.
    pub async fn expect_connection_error(&mut self, codes: &[u32]) {
        let expected = format!("a connection error ({})", names(codes));
        let goaway = self
            .wait_for(&expected, |_, event| match event {
                Event::Closed(_) => Verdict::Pass(false),
                Event::Frame(f) if f.is_goaway() => match f.error_code() {
                    Some(code) if codes.contains(&code) => Verdict::Pass(true),
                    _ => Verdict::Fail(format!("it sent {}", f.describe())),
                },
                _ => Verdict::Continue,
            })
            .await;
        if goaway {
            self.expect_close().await;
        }
    }

    /// A stream error on `stream`: RST_STREAM with one of `codes`, or (as
    /// h2spec accepts) a connection error with one of them, or the
    /// connection closing. A reset or GOAWAY with another code fails.
    pub async fn expect_stream_error(&mut self, stream: u32, codes: &[u32]) {
        let expected = format!("a stream error on stream {stream} ({})", names(codes));
        self.wait_for(&expected, |_, event| match event {
            Event::Closed(_) => Verdict::Pass(()),
            Event::Frame(f) if f.is_goaway() || f.is_rst_on(stream) => match f.error_code() {
                Some(code) if codes.contains(&code) => Verdict::Pass(()),
                _ => Verdict::Fail(format!("it sent {}", f.describe())),
            },
            _ => Verdict::Continue,
        })
        .await
    }

    /// Strictly a GOAWAY with one of `codes` (then the close); returns
    /// the GOAWAY.
    pub async fn expect_goaway(&mut self, codes: &[u32]) -> Frame {
        let expected = format!("GOAWAY ({})", names(codes));
        let goaway = self
            .wait_for(&expected, |_, event| match event {
                Event::Frame(f) if f.is_goaway() => match f.error_code() {
                    Some(code) if codes.contains(&code) => Verdict::Pass(f.clone()),
                    _ => Verdict::Fail(format!("it sent {}", f.describe())),
                },
                _ => Verdict::Continue,
            })
            .await;
        self.expect_close().await;
        goaway
    }

    /// Strictly an RST_STREAM with `code` on `stream`.
    pub async fn expect_rst_stream(&mut self, stream: u32, code: u32) {
        let expected = format!("RST_STREAM ({}) on stream {stream}", code_name(code));
        self.wait_for(&expected, |_, event| match event {
            Event::Frame(f) if f.is_rst_on(stream) && f.error_code() == Some(code) => Verdict::Pass(()),
            Event::Frame(f) if f.is_rst_on(stream) || f.is_goaway() => {
                Verdict::Fail(format!("it sent {}", f.describe()))
            }
            _ => Verdict::Continue,
        })
        .await
    }

    /// The connection closing, whatever comes before.
    pub async fn expect_close(&mut self) {
        self.wait_for("the connection to close", |_, event| match event {
            Event::Closed(_) => Verdict::Pass(()),
            _ => Verdict::Continue,
        })
        .await
    }

    /// A response header block (HEADERS, with any CONTINUATION) on
    /// `stream`; a reset of the stream, GOAWAY or the close fails.
    pub async fn expect_headers(&mut self, stream: u32) -> HeaderBlock {
        let expected = format!("a HEADERS frame on stream {stream}");
        self.wait_for(&expected, |_, event| match event {
            Event::Frame(f) if f.is_goaway() || f.is_rst_on(stream) => {
                Verdict::Fail(format!("it sent {}", f.describe()))
            }
            Event::Frame(Frame { block: Some(b), .. }) if b.stream == stream && b.started_by == kind::HEADERS => {
                Verdict::Pass(b.clone())
            }
            _ => Verdict::Continue,
        })
        .await
    }

    /// The first DATA frame on `stream`.
    pub async fn expect_data(&mut self, stream: u32) -> Frame {
        let expected = format!("a DATA frame on stream {stream}");
        self.wait_for(&expected, |_, event| match event {
            Event::Frame(f) if f.is_goaway() || f.is_rst_on(stream) => {
                Verdict::Fail(format!("it sent {}", f.describe()))
            }
            Event::Frame(f) if f.kind == kind::DATA && f.stream == stream => Verdict::Pass(f.clone()),
            _ => Verdict::Continue,
        })
        .await
    }

    /// The server ending `stream`: END_STREAM on DATA or HEADERS, or
    /// RST_STREAM with NO_ERROR.
    pub async fn expect_stream_end(&mut self, stream: u32) {
        let expected = format!("the end of stream {stream}");
        self.wait_for(&expected, |_, event| match event {
            Event::Frame(f) if f.ends_stream(stream) => Verdict::Pass(()),
            Event::Frame(f) if f.is_rst_on(stream) && f.error_code() == Some(code::NO_ERROR) => Verdict::Pass(()),
            Event::Frame(f) if f.is_goaway() || f.is_rst_on(stream) => {
                Verdict::Fail(format!("it sent {}", f.describe()))
            }
            _ => Verdict::Continue,
        })
        .await
    }

    /// A PING with ACK carrying `data`; the first PING ACK must be it.
    pub async fn expect_ping_ack(&mut self, data: [u8; 8]) {
        let expected = format!("a PING ACK with {data:?}");
        self.wait_for(&expected, |_, event| match event {
            Event::Frame(f) if f.kind == kind::PING && f.has(flag::ACK) => {
                if f.payload == data {
                    Verdict::Pass(())
                } else {
                    Verdict::Fail(format!("the first PING ACK was {}", f.describe()))
                }
            }
            Event::Frame(f) if f.is_goaway() => Verdict::Fail(format!("it sent {}", f.describe())),
            _ => Verdict::Continue,
        })
        .await
    }

    /// A PING ACK carrying `data`, or the connection closing (after a
    /// GOAWAY of any kind, or none).
    pub async fn expect_ping_ack_or_close(&mut self, data: [u8; 8]) {
        let expected = format!("a PING ACK with {data:?}, or the connection closing");
        self.wait_for(&expected, |_, event| match event {
            Event::Closed(_) => Verdict::Pass(()),
            Event::Frame(f) if f.kind == kind::PING && f.has(flag::ACK) => {
                if f.payload == data {
                    Verdict::Pass(())
                } else {
                    Verdict::Fail(format!("the first PING ACK was {}", f.describe()))
                }
            }
            _ => Verdict::Continue,
        })
        .await
    }

    /// A SETTINGS frame with ACK.
    pub async fn expect_settings_ack(&mut self) {
        self.wait_for("a SETTINGS ACK", |_, event| match event {
            Event::Frame(f) if f.kind == kind::SETTINGS && f.has(flag::ACK) => Verdict::Pass(()),
            Event::Frame(f) if f.is_goaway() => Verdict::Fail(format!("it sent {}", f.describe())),
            _ => Verdict::Continue,
        })
        .await
    }
}

/// With `RAW_H2_TRACE` set, every connection prints what the server sent
/// when it is dropped, for a passing test too.
impl Drop for RawConn {
    fn drop(&mut self) {
        if std::env::var_os("RAW_H2_TRACE").is_some() {
            eprintln!("raw_h2: the server sent: {}", self.transcript());
        }
    }
}

fn names(codes: &[u32]) -> String {
    codes.iter().map(|&c| code_name(c)).collect::<Vec<_>>().join(" or ")
}
