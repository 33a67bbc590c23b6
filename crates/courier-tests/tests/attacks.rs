//! Known attacks on HTTP/2 servers, each sent by a raw client
//! (`courier_tests::raw_h2`) over a real loopback socket to a Courier
//! server running in this process: rapid reset (CVE-2023-44487),
//! CONTINUATION floods (the 2024 family), HPACK bombs, floods of frames
//! that carry nothing, clients that never read or never open their window,
//! and PINGs past the keepalive policy (gRFC A8). Each test checks what the
//! server answers and that it still serves a normal call afterwards, on a
//! new connection and, where the connection should survive, on the same
//! one.
//!
//! The limits these tests meet are the engine's
//! (`crates/courier/src/transport/engine/conn/driver.rs`): the `idle_frames`
//! and `peer_resets` token buckets, `live_remote` against
//! SETTINGS_MAX_CONCURRENT_STREAMS, `MAX_UNWRITTEN_ANSWERS`, the header
//! block caps of `engine/frame/assemble.rs`, the header list cap of the
//! HPACK decoder, the send buffer of `SendHalf::send_data`, and the PING
//! enforcement of `engine/ping_policy.rs`.
//!
//! Memory is measured as this process's resident set (`/proc/self/statm`),
//! where the server runs, so the tests of this file run one at a time
//! ([`serial`]): another test's allocations would blur the figure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use courier::keepalive::{EnforcementPolicy, ServerParameters};
use courier::{Channel, Request, Response, Status};
use courier_tests::raw_h2::code::*;
use courier_tests::raw_h2::flag::*;
use courier_tests::raw_h2::hpack::{Block, Indexing};
use courier_tests::raw_h2::*;
use courier_tests::{
    Echo, EchoClient, EchoRequest, EchoResponse, EchoServer, Gate, Gated, ResponseStream, guard, start_server,
    start_with, start_with_counters, text,
};
use futures_util::StreamExt;
use prost::Message as _;

/// The unary method of the Echo service.
const UNARY: &str = "/courier.test.Echo/Unary";
/// The client-streaming method.
const CLIENT_STREAM: &str = "/courier.test.Echo/ClientStream";

/// The server-streaming method of the Echo service.
const SERVER_STREAM: &str = "/courier.test.Echo/ServerStream";

/// The most this process's resident memory may grow during an attack.
/// Generous: what the attack would cost without the limit is far more.
const MEMORY_BOUND: usize = 64 * 1024 * 1024;

/// The flood size of the tests that send "endless" frames: about 100 MB.
const FLOOD_OCTETS: usize = 100 * 1024 * 1024;

/// The debug data of the GOAWAY that ends a connection for its PINGs.
const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// The tests of this file run one at a time: memory is measured for the
/// whole process, and the floods are heavy for a loaded machine anyway.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

// Memory.

/// This process's resident memory in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("the resident pages in /proc/self/statm");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page as usize
}

/// The resident memory at the start of an attack and the most seen since.
struct Memory {
    base: usize,
    peak: usize,
}

impl Memory {
    fn watch() -> Memory {
        let base = rss();
        Memory { base, peak: base }
    }

    fn sample(&mut self) {
        self.peak = self.peak.max(rss());
    }

    /// Fails the test if the memory grew by more than [`MEMORY_BOUND`].
    fn assert_bounded(&mut self, what: &str) {
        self.sample();
        let grown = self.peak.saturating_sub(self.base);
        assert!(
            grown <= MEMORY_BOUND,
            "{what}: the process's resident memory grew by {} MiB (from {} MiB), over the bound of {} MiB",
            grown >> 20,
            self.base >> 20,
            MEMORY_BOUND >> 20
        );
        eprintln!("{what}: resident memory grew by {} KiB", grown >> 10);
    }
}

// Requests.

/// The fields of a gRPC request for `path` at `addr`.
fn request_fields(addr: SocketAddr, path: &str) -> Vec<(String, String)> {
    [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", &addr.to_string()),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

/// A gRPC request's header block: literals without indexing.
fn request_block(addr: SocketAddr, path: &str) -> Vec<u8> {
    Block::of(&request_fields(addr, path)).bytes()
}

/// A gRPC length-prefixed message.
fn message(req: &EchoRequest) -> Vec<u8> {
    let body = req.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A whole call on `stream`: HEADERS, then the message with END_STREAM.
fn call(stream: u32, block: &[u8], req: &EchoRequest) -> Vec<u8> {
    let mut bytes = headers(stream, END_HEADERS, block);
    bytes.extend(data(stream, true, &message(req)));
    bytes
}

/// What the server answered on a stream: its head, body and trailers, or
/// that it refused the stream.
enum Answer {
    Refused,
    Done {
        status: String,
        body: Vec<u8>,
        grpc_status: String,
    },
}

/// Reads the server's answer on `stream`.
async fn answer(conn: &mut RawConn, stream: u32) -> Answer {
    let mut status = None;
    let mut body = Vec::new();
    conn.wait_for(&format!("the answer on stream {stream}"), |_, event| match event {
        Event::Frame(f) if f.is_goaway() => Verdict::Fail(format!("it sent {}", f.describe())),
        Event::Frame(f) if f.is_rst_on(stream) && f.error_code() == Some(REFUSED_STREAM) => {
            Verdict::Pass(Answer::Refused)
        }
        Event::Frame(f) if f.is_rst_on(stream) => Verdict::Fail(format!("it sent {}", f.describe())),
        Event::Frame(f) if f.kind == kind::DATA && f.stream == stream => {
            body.extend_from_slice(&f.payload);
            Verdict::Continue
        }
        Event::Frame(f @ Frame { block: Some(b), .. }) if b.stream == stream && b.started_by == kind::HEADERS => {
            if status.is_none() {
                status = b.get(":status").map(str::to_string);
            }
            if !f.has(END_STREAM) {
                return Verdict::Continue;
            }
            Verdict::Pass(Answer::Done {
                status: status.clone().unwrap_or_default(),
                body: std::mem::take(&mut body),
                grpc_status: b.get("grpc-status").unwrap_or_default().to_string(),
            })
        }
        _ => Verdict::Continue,
    })
    .await
}

/// A unary call of `text` on `conn`, on the stream `*next` (and the ones
/// after it if the server refuses it, as a gRPC client would retry): the
/// connection still serves.
async fn unary_on(conn: &mut RawConn, next: &mut u32, addr: SocketAddr, text_: &str) {
    let block = request_block(addr, UNARY);
    for _ in 0..100 {
        let id = *next;
        *next += 2;
        let mut bytes = call(id, &block, &text(text_));
        // Room for the answer, should the test have shut the windows.
        bytes.extend(window_update(id, 1 << 20));
        conn.send(&bytes).await;
        match answer(conn, id).await {
            Answer::Refused => continue,
            Answer::Done {
                status,
                body,
                grpc_status,
            } => {
                assert_eq!(status, "200", "the answer's :status");
                assert_eq!(grpc_status, "0", "the call's grpc-status");
                assert!(body.len() >= 5, "a response message: {body:?}");
                let reply = EchoResponse::decode(&body[5..]).expect("an EchoResponse");
                assert_eq!(reply.text, text_);
                return;
            }
        }
    }
    panic!("the server refused 100 streams in a row; so far: {}", conn.transcript());
}

/// A normal call on a new connection from a Courier channel.
async fn serves_a_new_connection(addr: SocketAddr) {
    let channel = Channel::connect(format!("http://{addr}"))
        .await
        .expect("a channel to the server");
    let reply = guard(
        "a call on a new connection",
        EchoClient::new(channel).unary(Request::new(text("still serving"))),
    )
    .await
    .expect("a call on a new connection after the attack");
    assert_eq!(reply.get_ref().text, "still serving");
}

/// A server whose clients may PING as often as they like, so that floods
/// of PINGs meet the engine's other limits rather than the PING policy.
async fn start_lenient_server() -> courier_tests::TestServer {
    let lenient = EnforcementPolicy::new()
        .permit_without_calls(true)
        .min_time(Duration::ZERO);
    start_with_counters(move |b, counters| {
        b.add_service(courier_tests::echo_with(counters))
            .keepalive(ServerParameters::new().enforcement(lenient))
    })
    .await
}

/// Fails unless `goaway` carries `debug`.
fn assert_debug(goaway: &Frame, debug: &[u8]) {
    assert_eq!(
        String::from_utf8_lossy(goaway.goaway_debug().unwrap_or_default()),
        String::from_utf8_lossy(debug),
        "the GOAWAY's debug data ({})",
        goaway.describe()
    );
}

// 1. Rapid reset (CVE-2023-44487).

#[tokio::test]
async fn rapid_reset_of_thousands_of_streams_gets_goaway_enhance_your_calm() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    let block = request_block(server.addr, UNARY);
    // Up to 200,000 streams, each opened and at once cancelled, 500 to a
    // write.
    const PER_CHUNK: usize = 500;
    let flood = conn
        .flood(400, |i| {
            let mut bytes = Vec::new();
            for k in 0..PER_CHUNK {
                let id = (1 + 2 * (i * PER_CHUNK + k)) as u32;
                bytes.extend(headers(id, END_HEADERS, &block));
                bytes.extend(rst_stream(id, CANCEL));
            }
            bytes
        })
        .await;
    let goaway = conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;
    eprintln!(
        "rapid reset: {} streams sent before {}",
        flood.written * PER_CHUNK,
        goaway.describe()
    );
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn rapid_reset_of_streams_the_server_took_trips_its_reset_limit() {
    let _serial = serial().await;
    // Room for two waves of 500 streams: the wave just reset, whose calls
    // may not have ended yet, and the next.
    const WAVE: u32 = 500;
    let server = start_with_counters(|b, counters| {
        b.add_service(courier_tests::echo_with(counters))
            .max_concurrent_streams(2 * WAVE)
    })
    .await;
    let mut conn = RawConn::open(server.addr).await;
    let block = request_block(server.addr, UNARY);
    let mut next = 1u32;
    let mut open: Vec<u32> = Vec::new();
    let mut resets = 0;
    // Each wave resets the streams of the one before and, in the same
    // write, opens 500 calls whose request never comes; an empty SETTINGS
    // tells when the server has taken them. The server allows 2,000 resets
    // at once and 1,000 a second after that.
    let goaway = loop {
        assert!(
            resets <= 1_000_000,
            "a million streams the server took were reset, and no GOAWAY"
        );
        let mut bytes = Vec::new();
        for id in open.drain(..) {
            bytes.extend(rst_stream(id, CANCEL));
            resets += 1;
        }
        let fresh: Vec<u32> = (0..WAVE)
            .map(|_| {
                next += 2;
                next - 2
            })
            .collect();
        for &id in &fresh {
            bytes.extend(headers(id, END_HEADERS, &block));
        }
        bytes.extend(settings(&[]));
        conn.send(&bytes).await;
        let outcome = conn
            .wait_for(
                "a SETTINGS ACK after the new streams, or GOAWAY",
                |_, event| match event {
                    Event::Frame(f) if f.is_goaway() => Verdict::Pass(Some(f.clone())),
                    Event::Frame(f) if f.kind == kind::SETTINGS && f.has(ACK) => Verdict::Pass(None),
                    Event::Frame(f) if f.kind == kind::RST_STREAM && f.error_code() == Some(REFUSED_STREAM) => {
                        Verdict::Continue
                    }
                    Event::Frame(f) if f.kind == kind::RST_STREAM => Verdict::Fail(format!("it sent {}", f.describe())),
                    _ => Verdict::Continue,
                },
            )
            .await;
        if let Some(goaway) = outcome {
            break goaway;
        }
        open = fresh;
    };
    eprintln!(
        "{resets} streams the server took were reset before {}",
        goaway.describe()
    );
    assert_eq!(goaway.error_code(), Some(ENHANCE_YOUR_CALM), "{}", goaway.describe());
    let debug = String::from_utf8_lossy(goaway.goaway_debug().unwrap_or_default()).to_string();
    assert!(debug.contains("reset"), "the GOAWAY's debug data: {debug:?}");
    serves_a_new_connection(server.addr).await;
}

/// Reads until the SETTINGS ACK that answers the empty SETTINGS sent after
/// `fresh` streams were opened, and returns those the server refused.
async fn refused_before_ack(conn: &mut RawConn, fresh: &[u32]) -> Vec<u32> {
    let mut refused = Vec::new();
    conn.wait_for("a SETTINGS ACK after the new streams", |_, event| match event {
        Event::Frame(f) if f.kind == kind::SETTINGS && f.has(ACK) => Verdict::Pass(std::mem::take(&mut refused)),
        Event::Frame(f) if f.kind == kind::RST_STREAM && fresh.contains(&f.stream) => {
            if f.error_code() == Some(REFUSED_STREAM) {
                refused.push(f.stream);
                Verdict::Continue
            } else {
                Verdict::Fail(format!("it sent {}", f.describe()))
            }
        }
        Event::Frame(f) if f.is_goaway() || f.kind == kind::RST_STREAM => {
            Verdict::Fail(format!("it sent {}", f.describe()))
        }
        _ => Verdict::Continue,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resetting_streams_never_runs_more_handlers_at_once_than_max_concurrent_streams() {
    let _serial = serial().await;
    const LIMIT: u32 = 4;
    let gate = Arc::new(Gate::default());
    let service = gate.clone();
    let server = start_with(move |b| b.add_service(Gated::server(service)).max_concurrent_streams(LIMIT)).await;
    let mut conn = RawConn::open(server.addr).await;
    assert_eq!(conn.server_setting(setting::MAX_CONCURRENT_STREAMS), Some(LIMIT));
    let block = request_block(server.addr, UNARY);
    let req = text("gated");
    let mut next = 1u32;
    // Streams whose handlers run (blocked at the gate) until reset.
    let mut running: Vec<u32> = Vec::new();
    let mut rounds = 0;
    let mut refused_total = 0;
    // Each round resets the streams whose handlers run and, in the same
    // write, opens twice the limit of new calls; an empty SETTINGS after
    // them tells when the server has taken them all. Until handlers have
    // run in six times the limit's worth of slots, so that resets have
    // freed slots again and again.
    while gate.started() < 6 * LIMIT as usize {
        rounds += 1;
        assert!(
            rounds <= 500,
            "after 500 rounds only {} handlers started: resetting streams does not give their slots back",
            gate.started()
        );
        let started = gate.started();
        let mut bytes = Vec::new();
        for id in running.drain(..) {
            bytes.extend(rst_stream(id, CANCEL));
        }
        let fresh: Vec<u32> = (0..2 * LIMIT)
            .map(|_| {
                next += 2;
                next - 2
            })
            .collect();
        for &id in &fresh {
            bytes.extend(call(id, &block, &req));
        }
        bytes.extend(settings(&[]));
        conn.send(&bytes).await;
        let refused = refused_before_ack(&mut conn, &fresh).await;
        refused_total += refused.len();
        running = fresh.into_iter().filter(|id| !refused.contains(id)).collect();
        assert!(
            running.len() <= LIMIT as usize,
            "the server took {} of {} new streams with a limit of {LIMIT}",
            running.len(),
            2 * LIMIT
        );
        // The streams it took have their requests whole: their handlers
        // start.
        gate.wait_started(started + running.len()).await;
        assert!(
            gate.most() <= LIMIT as usize,
            "{} handlers ran at once, over SETTINGS_MAX_CONCURRENT_STREAMS {LIMIT}",
            gate.most()
        );
    }
    eprintln!(
        "{rounds} rounds, {} handlers started, {refused_total} streams refused, at most {} at once",
        gate.started(),
        gate.most()
    );
    // The connection still serves, once the gate opens.
    gate.release(1000);
    unary_on(&mut conn, &mut next, server.addr, "same connection").await;
    serves_a_new_connection(server.addr).await;
    assert!(gate.most() <= LIMIT as usize, "{} handlers ran at once", gate.most());
}

// 2. CONTINUATION floods.

/// The cap on a header block's encoded size with the default settings.
const BLOCK_CAP: usize = 64 * 1024;

/// The cap on a header block's frames.
const BLOCK_FRAMES: usize = 64;

/// A valid request header block of exactly `len` octets: the request's
/// fields and filler fields. It decodes to more than the header list
/// limit (16 KiB).
fn block_of_len(addr: SocketAddr, len: usize) -> Vec<u8> {
    let mut block = Block::of(&request_fields(addr, UNARY));
    while len - block.bytes().len() > 5_000 {
        block = block.literal("x-fill", &"f".repeat(4_000));
    }
    // The last field's overhead: a flag octet, the name's length and name,
    // and the value's length in three octets (for 255 to 16,510 octets).
    let left = len - block.bytes().len();
    let last = block.literal("x-last", &"l".repeat(left - 11)).bytes();
    assert_eq!(last.len(), len, "the filled block's length");
    last
}

/// HEADERS without END_HEADERS and CONTINUATION frames after it, cutting
/// `block` into frames of 16 KiB.
fn split_block(stream: u32, block: &[u8], end_headers: bool) -> Vec<u8> {
    let pieces: Vec<&[u8]> = block.chunks(DEFAULT_MAX_FRAME_SIZE).collect();
    let mut bytes = headers(stream, 0, pieces[0]);
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        let last = i == pieces.len() - 1;
        bytes.extend(continuation(stream, end_headers && last, piece));
    }
    bytes
}

#[tokio::test]
async fn a_header_block_past_64_kib_is_refused_with_enhance_your_calm_before_the_frame_is_read() {
    let _serial = serial().await;
    let server = start_server().await;
    let block = block_of_len(server.addr, BLOCK_CAP);

    // At the cap, the block is taken: a PING that then interrupts it is a
    // PROTOCOL_ERROR, not a flood.
    let mut conn = RawConn::open(server.addr).await;
    let mut bytes = split_block(1, &block, false);
    bytes.extend(ping(*b"midblock"));
    conn.send(&bytes).await;
    conn.expect_goaway(&[PROTOCOL_ERROR]).await;

    // One octet past it: the server answers the next CONTINUATION's frame
    // header, before its payload is sent at all.
    let mut conn = RawConn::open(server.addr).await;
    let mut bytes = split_block(1, &block, false);
    let header = continuation(1, false, &[0]);
    bytes.extend_from_slice(&header[..9]);
    conn.send(&bytes).await;
    conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;

    // The block whole at the cap: it decodes to more than the header list
    // limit, a stream error, and the connection serves on.
    let mut conn = RawConn::open(server.addr).await;
    conn.send(&split_block(1, &block, true)).await;
    conn.expect_rst_stream(1, PROTOCOL_ERROR).await;
    unary_on(&mut conn, &mut 3, server.addr, "same connection").await;
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn a_header_block_of_more_than_64_frames_is_refused_with_enhance_your_calm() {
    let _serial = serial().await;
    let server = start_server().await;
    let block = request_block(server.addr, UNARY);
    let opened = |end_headers_on_last: bool, continuations: usize| {
        let mut bytes = headers(1, 0, &block);
        for i in 0..continuations {
            let end = end_headers_on_last && i == continuations - 1;
            bytes.extend(continuation(1, end, &[]));
        }
        bytes
    };

    // 64 frames: the block is still open; a PING interrupting it is a
    // PROTOCOL_ERROR.
    let mut conn = RawConn::open(server.addr).await;
    let mut bytes = opened(false, BLOCK_FRAMES - 1);
    bytes.extend(ping(*b"midblock"));
    conn.send(&bytes).await;
    conn.expect_goaway(&[PROTOCOL_ERROR]).await;

    // The 65th frame is one too many, END_HEADERS or not.
    let mut conn = RawConn::open(server.addr).await;
    conn.send(&opened(true, BLOCK_FRAMES)).await;
    conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;

    // A request whose block takes 64 frames is served.
    let mut conn = RawConn::open(server.addr).await;
    let mut bytes = opened(true, BLOCK_FRAMES - 1);
    bytes.extend(data(1, true, &message(&text("64 frames"))));
    conn.send(&bytes).await;
    match answer(&mut conn, 1).await {
        Answer::Done { grpc_status, .. } => assert_eq!(grpc_status, "0"),
        Answer::Refused => panic!("the server refused the stream"),
    }
    unary_on(&mut conn, &mut 3, server.addr, "same connection").await;
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn endless_continuation_frames_large_or_empty_get_goaway_enhance_your_calm() {
    let _serial = serial().await;
    let server = start_server().await;
    for size in [DEFAULT_MAX_FRAME_SIZE, 0] {
        let mut memory = Memory::watch();
        let mut conn = RawConn::open(server.addr).await;
        conn.send(&headers(1, 0, &request_block(server.addr, UNARY))).await;
        let frame = continuation(1, false, &vec![0; size]);
        let chunk = frame.repeat((64 * 1024 / frame.len()).max(1));
        let flood = conn.flood(FLOOD_OCTETS / chunk.len(), |_| chunk.clone()).await;
        memory.sample();
        let goaway = conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;
        eprintln!(
            "CONTINUATION frames of {size} octets: {} octets sent before {}",
            flood.octets,
            goaway.describe()
        );
        memory.assert_bounded(&format!("endless CONTINUATION frames of {size} octets"));
    }
    serves_a_new_connection(server.addr).await;
}

// 3. HPACK.

#[tokio::test]
async fn an_hpack_bomb_is_refused_as_a_stream_error_and_the_connection_serves_on() {
    let _serial = serial().await;
    let mut memory = Memory::watch();
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    let list_limit = conn.server_setting(setting::MAX_HEADER_LIST_SIZE).unwrap_or(16 * 1024) as usize;
    // One 4,000-octet field in the dynamic table (SETTINGS_HEADER_TABLE_SIZE
    // is 4,096), then referenced 4,000 times: 8 KiB that decode to 16 MB.
    let big = "b".repeat(4_000);
    let mut bomb =
        Block::of(&request_fields(server.addr, UNARY)).literal_new_name(Indexing::Incremental, "x-bomb", &big, false);
    for _ in 0..4_000 {
        bomb = bomb.indexed(62);
    }
    let bomb = bomb.bytes();
    assert!(bomb.len() < DEFAULT_MAX_FRAME_SIZE);
    assert!(4_000 * (4_000 + 6 + 32) > 100 * list_limit);
    conn.send(&headers(1, END_HEADERS | END_STREAM, &bomb)).await;
    conn.expect_rst_stream(1, PROTOCOL_ERROR).await;

    // Again and again on the same connection, the entry already in the
    // table: each block is refused, none ends the connection.
    let mut again = Block::of(&request_fields(server.addr, UNARY));
    for _ in 0..8_000 {
        again = again.indexed(62);
    }
    let again = again.bytes();
    for id in (3..200).step_by(2) {
        conn.send(&headers(id, END_HEADERS | END_STREAM, &again)).await;
        conn.expect_rst_stream(id, PROTOCOL_ERROR).await;
    }
    memory.assert_bounded("HPACK bombs");

    // The server's table kept the entry, in step with this client: a
    // request that names it once, within the limit, is served.
    let named = Block::of(&request_fields(server.addr, UNARY)).indexed(62).bytes();
    let mut bytes = headers(201, END_HEADERS, &named);
    bytes.extend(data(201, true, &message(&text("named"))));
    conn.send(&bytes).await;
    match answer(&mut conn, 201).await {
        Answer::Done { grpc_status, .. } => assert_eq!(grpc_status, "0"),
        Answer::Refused => panic!("the server refused the stream"),
    }
    unary_on(&mut conn, &mut 203, server.addr, "same connection").await;
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn a_dynamic_table_size_update_past_settings_header_table_size_is_a_compression_error() {
    let _serial = serial().await;
    let server = start_server().await;
    for size in [None, Some(u32::MAX as usize)] {
        let mut conn = RawConn::open(server.addr).await;
        let limit = conn.server_setting(setting::HEADER_TABLE_SIZE).unwrap_or(4_096) as usize;
        let size = size.unwrap_or(limit + 1);
        let block = Block::new()
            .table_size_update(size)
            .raw(&request_block(server.addr, UNARY))
            .bytes();
        conn.send(&headers(1, END_HEADERS | END_STREAM, &block)).await;
        let goaway = conn.expect_goaway(&[COMPRESSION_ERROR]).await;
        eprintln!("a table size update to {size}: {}", goaway.describe());
    }
    serves_a_new_connection(server.addr).await;
}

// 4. Floods of frames that carry nothing.

/// Floods `conn` with copies of `frame` (up to a million of them, or
/// about 100 MB) and expects GOAWAY ENHANCE_YOUR_CALM; returns it.
async fn flood_of(conn: &mut RawConn, what: &str, frame: &[u8]) -> Frame {
    let chunk = frame.repeat(64 * 1024 / frame.len());
    let frames_per_chunk = chunk.len() / frame.len();
    let chunks = (1_000_000 / frames_per_chunk).min(FLOOD_OCTETS / chunk.len());
    let flood = conn.flood(chunks, |_| chunk.clone()).await;
    let goaway = conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;
    eprintln!(
        "a flood of {what}: {} frames sent before {}",
        flood.octets / frame.len(),
        goaway.describe()
    );
    goaway
}

#[tokio::test]
async fn a_peer_that_pings_after_every_message_is_not_taken_for_a_flood() {
    // What grpc-go and the C core do when they measure the bandwidth-delay
    // product: a PING per round trip, here one after each of 30,000
    // messages of a client stream, three times the burst the flood limit
    // allows frames that carry nothing.
    const MESSAGES: usize = 30_000;
    let _serial = serial().await;
    let lenient = EnforcementPolicy::new()
        .permit_without_calls(true)
        .min_time(Duration::ZERO);
    let server = start_with_counters(move |b, counters| {
        b.add_service(courier_tests::echo_with(counters))
            .keepalive(ServerParameters::new().enforcement(lenient))
            .http2_windows(1 << 20, 1 << 20)
            .expect("valid windows")
    })
    .await;
    let mut conn = RawConn::open(server.addr).await;
    let mut bytes = headers(1, END_HEADERS, &request_block(server.addr, CLIENT_STREAM));
    let message = message(&text(""));
    for i in 0..MESSAGES {
        bytes.extend(data(1, false, &message));
        bytes.extend(ping((i as u64).to_be_bytes()));
    }
    bytes.extend(data(1, true, &[]));
    conn.send(&bytes).await;
    match answer(&mut conn, 1).await {
        Answer::Done { grpc_status, .. } => assert_eq!(grpc_status, "0", "the client stream's status"),
        Answer::Refused => panic!("the stream was refused"),
    }
}

#[tokio::test]
async fn a_settings_flood_gets_goaway_enhance_your_calm() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    flood_of(&mut conn, "SETTINGS", &settings(&[])).await;
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn a_ping_flood_gets_goaway_enhance_your_calm_even_where_pings_are_welcome() {
    let _serial = serial().await;
    // With the default policy the PINGs are struck at once.
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    let goaway = flood_of(&mut conn, "PINGs (default policy)", &ping(*b"flooding")).await;
    assert_debug(&goaway, TOO_MANY_PINGS);
    serves_a_new_connection(server.addr).await;

    // Where the policy allows any PING, the flood still ends.
    let server = start_lenient_server().await;
    let mut conn = RawConn::open(server.addr).await;
    let goaway = flood_of(&mut conn, "PINGs (lenient policy)", &ping(*b"flooding")).await;
    assert_ne!(goaway.goaway_debug(), Some(TOO_MANY_PINGS), "the lenient policy struck");
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn an_empty_data_flood_gets_goaway_enhance_your_calm() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    // A call whose request never comes: its stream takes DATA.
    conn.send(&headers(1, END_HEADERS, &request_block(server.addr, UNARY)))
        .await;
    flood_of(&mut conn, "empty DATA", &data(1, false, &[])).await;
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn a_window_update_flood_gets_goaway_enhance_your_calm() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    // Nothing waits for the connection's window: each update unblocks
    // nothing. A million of +1 keeps the window far below 2^31 - 1.
    flood_of(&mut conn, "WINDOW_UPDATE", &window_update(0, 1)).await;
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn a_priority_or_unknown_frame_flood_gets_goaway_enhance_your_calm() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    flood_of(&mut conn, "PRIORITY", &priority(3, Priority::weight(16))).await;
    let mut conn = RawConn::open(server.addr).await;
    flood_of(&mut conn, "unknown frames", &frame(kind::UNKNOWN, 0, 0, &[0; 8])).await;
    serves_a_new_connection(server.addr).await;
}

// 5. Clients that never read.

/// Sends about 100 MB made by `make` (one MiB at a time) without reading,
/// sampling the memory after each MiB, until the server closes the
/// connection or stops reading (a write that makes no progress for
/// `stall`). Returns how it ended.
async fn send_without_reading(
    conn: &mut RawConn,
    memory: &mut Memory,
    stall: Duration,
    mut make: impl FnMut(usize) -> Vec<u8>,
) -> (usize, Sent) {
    let mut sent = 0;
    for i in 0..FLOOD_OCTETS >> 20 {
        let bytes = make(i);
        let outcome = conn.send_within(&bytes, stall).await;
        memory.sample();
        if outcome != Sent::Written {
            return (sent, outcome);
        }
        sent += bytes.len();
    }
    (sent, Sent::Written)
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_never_reads_leaves_memory_bounded() {
    let _serial = serial().await;
    for lenient in [false, true] {
        let what = if lenient {
            "PINGs never read (lenient policy)"
        } else {
            "PINGs never read (default policy)"
        };
        let server = if lenient {
            start_lenient_server().await
        } else {
            start_server().await
        };
        let mut conn = RawConn::open(server.addr).await;
        conn.auto_reply = false;
        let mut memory = Memory::watch();
        let mib = ping(*b"nevrread").repeat((1 << 20) / 17);
        let (sent, outcome) =
            send_without_reading(&mut conn, &mut memory, Duration::from_secs(10), |_| mib.clone()).await;
        eprintln!("{what}: {} MiB sent, then {outcome:?}", sent >> 20);
        memory.assert_bounded(what);
        // The server ended the connection: what it wrote before is there
        // to read, a GOAWAY ENHANCE_YOUR_CALM last if it could still write
        // it, then the close.
        assert_ne!(outcome, Sent::Stalled, "{what}: the server neither read nor closed");
        conn.expect_connection_error(&[ENHANCE_YOUR_CALM]).await;
        drop(conn);
        serves_a_new_connection(server.addr).await;
    }
}

#[tokio::test]
async fn refused_streams_from_a_client_that_never_reads_hold_bounded_memory_and_end_or_stall() {
    let _serial = serial().await;
    let gate = Arc::new(Gate::default());
    let service = gate.clone();
    let server = start_with(move |b| b.add_service(Gated::server(service)).max_concurrent_streams(1)).await;
    let mut conn = RawConn::open(server.addr).await;
    conn.auto_reply = false;
    // The one stream allowed, its handler held at the gate.
    conn.send(&call(1, &request_block(server.addr, UNARY), &text("held")))
        .await;
    gate.wait_started(1).await;
    // Then streams the server must refuse, each answered with RST_STREAM
    // (REFUSED_STREAM), never read: HEADERS with an empty block, 9 octets
    // each, 100 MB of them. The answers would be 140 MB; a server that
    // stops reading once its answers go unread holds a bounded part.
    let mut memory = Memory::watch();
    const PER_MIB: usize = (1 << 20) / 9;
    let (sent, outcome) = send_without_reading(&mut conn, &mut memory, Duration::from_secs(3), |i| {
        let mut bytes = Vec::with_capacity(PER_MIB * 9);
        for k in 0..PER_MIB {
            bytes.extend(headers((3 + 2 * (i * PER_MIB + k)) as u32, END_HEADERS, &[]));
        }
        bytes
    })
    .await;
    eprintln!("refused streams never read: {} MiB sent, then {outcome:?}", sent >> 20);
    memory.assert_bounded("refused streams never read");
    // Refused streams count against the frames that carry nothing, so the
    // server ends the connection (the write fails) or, before that, stops
    // reading answers that go unread (the write stalls); never does it
    // take all 100 MB.
    assert_ne!(
        outcome,
        Sent::Written,
        "the server took every refused stream of a client that reads none of its answers"
    );
    drop(conn);
    gate.release(100);
    serves_a_new_connection(server.addr).await;
}

// 6. A peer that never opens its window.

/// An Echo service whose ServerStream makes each response only when the
/// server asks the stream for it, and counts them.
#[derive(Clone, Default)]
struct Producer {
    made: Arc<AtomicUsize>,
}

impl Echo for Producer {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            text: request.get_ref().text.clone(),
            ..Default::default()
        }))
    }

    type ServerStreamStream = ResponseStream;

    async fn server_stream(&self, request: Request<EchoRequest>) -> Result<Response<ResponseStream>, Status> {
        let req = request.into_inner();
        let made = self.made.clone();
        let stream = futures_util::stream::iter(0..req.count).map(move |index| {
            made.fetch_add(1, Ordering::SeqCst);
            Ok(EchoResponse {
                payload: vec![7; req.response_size as usize],
                index,
                ..Default::default()
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    type BidiStream = ResponseStream;
}

#[tokio::test]
async fn a_peer_that_never_opens_its_window_back_pressures_a_server_streaming_handler() {
    let _serial = serial().await;
    let producer = Producer::default();
    let made = producer.made.clone();
    let server = start_with(move |b| b.add_service(EchoServer::new(producer))).await;
    let mut memory = Memory::watch();
    let mut conn = RawConn::connect(server.addr).await;
    conn.handshake(&[(setting::INITIAL_WINDOW_SIZE, 0)]).await;
    // 2,000 responses of 256 KiB: 500 MB, were nothing holding them back.
    const COUNT: u32 = 2_000;
    const SIZE: usize = 256 * 1024;
    let req = EchoRequest {
        count: COUNT,
        response_size: SIZE as u32,
        ..Default::default()
    };
    conn.send(&call(1, &request_block(server.addr, SERVER_STREAM), &req))
        .await;
    let head = conn.expect_headers(1).await;
    assert_eq!(head.get(":status"), Some("200"));
    // What the server may hold for a stream: its send buffer (1 MiB) and
    // what is being written into it (a message), a message the handler has
    // made and not handed over, and slack.
    let held = (1 << 20) + 4 * (SIZE + 16);
    // Let through one message's worth at a time, 16 times, and check each
    // time that the handler made no more than it could hold.
    let mut received = 0usize;
    for round in 0..16 {
        let mut update = window_update(1, SIZE as u32);
        update.extend(window_update(0, SIZE as u32));
        conn.send(&update).await;
        let target = received + SIZE;
        while received < target {
            let f = conn.expect_data(1).await;
            received += f.payload.len();
        }
        assert_eq!(received, target, "the server sent past the window");
        memory.sample();
        let made_bytes = made.load(Ordering::SeqCst) * (SIZE + 16);
        assert!(
            made_bytes <= received + held,
            "round {round}: the handler made {} responses ({} MiB) while {} KiB were let through",
            made.load(Ordering::SeqCst),
            made_bytes >> 20,
            received >> 10
        );
    }
    memory.assert_bounded("a window that never opens");
    let made_now = made.load(Ordering::SeqCst);
    assert!(
        made_now < COUNT as usize,
        "the handler ran to completion ({made_now} responses)"
    );
    eprintln!(
        "a window that never opens: {made_now} of {COUNT} responses made, {} KiB let through",
        received >> 10
    );
    // The client gives up on the call; the connection serves on.
    conn.send(&rst_stream(1, CANCEL)).await;
    unary_on(&mut conn, &mut 3, server.addr, "same connection").await;
    serves_a_new_connection(server.addr).await;
}

// 7. PINGs past the policy (gRFC A8).

#[tokio::test]
async fn pings_without_calls_get_goaway_too_many_pings_after_two_strikes() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    // The first PING is free; without a call each later one is a strike;
    // the third strike ends the connection.
    let mut bytes = Vec::new();
    for n in 0..4u8 {
        bytes.extend(ping([b'p', b'i', b'n', b'g', b' ', b'#', b'0' + n, 0]));
    }
    conn.send(&bytes).await;
    for n in 0..3u8 {
        conn.expect_ping_ack([b'p', b'i', b'n', b'g', b' ', b'#', b'0' + n, 0])
            .await;
    }
    let goaway = conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;
    assert_debug(&goaway, TOO_MANY_PINGS);
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn pings_with_calls_get_goaway_too_many_pings_sooner_than_min_time() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    // A call in progress: its request never ends.
    conn.send(&headers(1, END_HEADERS, &request_block(server.addr, UNARY)))
        .await;
    let mut bytes = Vec::new();
    for n in 0..4u8 {
        bytes.extend(ping([b'c', b'a', b'l', b'l', b' ', b'#', b'0' + n, 0]));
    }
    conn.send(&bytes).await;
    let goaway = conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;
    assert_debug(&goaway, TOO_MANY_PINGS);
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn pings_are_fine_where_the_policy_permits_them_without_calls_and_often() {
    let _serial = serial().await;
    let server = start_lenient_server().await;
    let mut conn = RawConn::open(server.addr).await;
    for n in 0..100u32 {
        let mut payload = *b"lenient\0";
        payload[7] = n as u8;
        conn.send(&ping(payload)).await;
        conn.expect_ping_ack(payload).await;
    }
    unary_on(&mut conn, &mut 1, server.addr, "same connection").await;
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn looking_at_a_stream_without_sending_on_it_does_not_start_the_strikes_again() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    // A server-streaming call whose responses wait for a window the client
    // never opens: after its HEADERS, the server sends nothing on it.
    conn.handshake(&[(setting::INITIAL_WINDOW_SIZE, 0)]).await;
    let req = EchoRequest {
        count: 10,
        response_size: 1_000,
        ..Default::default()
    };
    conn.send(&call(1, &request_block(server.addr, SERVER_STREAM), &req))
        .await;
    conn.expect_headers(1).await;
    // Each PING after a SETTINGS that sets the (zero) window again, which
    // makes the server look at the stream's queued responses and send
    // none of them: that is no answer, and the PINGs are struck.
    conn.send(&ping(*b"first\0\0\0")).await;
    conn.expect_ping_ack(*b"first\0\0\0").await;
    for n in 0..3u8 {
        let mut bytes = settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]);
        bytes.extend(ping([b's', b't', b'r', b'i', b'k', b'e', b'0' + n, 0]));
        conn.send(&bytes).await;
        if n < 2 {
            conn.expect_ping_ack([b's', b't', b'r', b'i', b'k', b'e', b'0' + n, 0])
                .await;
        }
    }
    let goaway = conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;
    assert_debug(&goaway, TOO_MANY_PINGS);
    serves_a_new_connection(server.addr).await;
}

#[tokio::test]
async fn the_servers_answers_start_the_strikes_again() {
    let _serial = serial().await;
    let server = start_server().await;
    let mut conn = RawConn::open(server.addr).await;
    let mut next = 1;
    // Two PINGs at a time, a strike each (the first of all is free), and
    // a call in between whose answer (HEADERS and DATA) starts the count
    // again: never the third strike.
    for round in 0..10u8 {
        let mut bytes = ping([b'r', b'o', b'u', b'n', b'd', round, 1, 0]);
        bytes.extend(ping([b'r', b'o', b'u', b'n', b'd', round, 2, 0]));
        conn.send(&bytes).await;
        conn.expect_ping_ack([b'r', b'o', b'u', b'n', b'd', round, 1, 0]).await;
        conn.expect_ping_ack([b'r', b'o', b'u', b'n', b'd', round, 2, 0]).await;
        unary_on(&mut conn, &mut next, server.addr, "between pings").await;
    }
    // Without the calls, the same PINGs end the connection.
    let mut bytes = Vec::new();
    for n in 0..4u8 {
        bytes.extend(ping([b'l', b'a', b's', b't', n, 0, 0, 0]));
    }
    conn.send(&bytes).await;
    let goaway = conn.expect_goaway(&[ENHANCE_YOUR_CALM]).await;
    assert_debug(&goaway, TOO_MANY_PINGS);
}
