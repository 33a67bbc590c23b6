//! What one connection can make a server hold: concurrent streams, bytes in
//! unfinished messages, stalled partial messages and silent handshakes, each
//! tried from a raw HTTP/2 client over a real loopback socket, with a normal
//! call on a second connection afterwards.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use courier::{Channel, Code};
use courier_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

/// How long any one exchange may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(20);

const CLIENT_STREAM: &str = "/courier.test.Echo/ClientStream";

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

mod frame_type {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const WINDOW_UPDATE: u8 = 8;
}

const REFUSED_STREAM: u32 = 7;

/// A frame the server sent, as the raw client needs to know it.
#[derive(Debug)]
enum Event {
    Settings { ack: bool, values: Vec<(u16, u32)> },
    WindowUpdate { stream: u32, increment: u32 },
    Reset { stream: u32, code: u32 },
    GoAway,
    Closed,
}

/// A hand-written HTTP/2 client: it sends exactly the frames a test asks
/// for, ignoring the server's limits, and reports the frames it gets back.
struct RawClient {
    write: OwnedWriteHalf,
    events: mpsc::UnboundedReceiver<Event>,
    /// The server's SETTINGS_INITIAL_WINDOW_SIZE.
    stream_window: u32,
}

impl RawClient {
    /// Connects and exchanges SETTINGS; returns once the server's SETTINGS
    /// (and the connection window it opens with them) have arrived.
    async fn connect(addr: SocketAddr) -> RawClient {
        let tcp = TcpStream::connect(addr).await.expect("TCP connect");
        tcp.set_nodelay(true).unwrap();
        let (read, write) = tcp.into_split();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(read_frames(read, tx));
        let mut client = RawClient {
            write,
            events,
            stream_window: 65_535,
        };
        let mut hello = BytesMut::from(PREFACE);
        put_frame(&mut hello, frame_type::SETTINGS, 0, 0, &[]);
        client.write.write_all(&hello).await.unwrap();
        match client.next().await {
            Event::Settings { ack: false, values } => {
                for (id, value) in values {
                    if id == 4 {
                        client.stream_window = value;
                    }
                }
                let mut ack = BytesMut::new();
                put_frame(&mut ack, frame_type::SETTINGS, 1, 0, &[]);
                client.write.write_all(&ack).await.unwrap();
                client
            }
            other => panic!("expected the server's SETTINGS first, got {other:?}"),
        }
    }

    async fn next(&mut self) -> Event {
        tokio::time::timeout(LIMIT, self.events.recv())
            .await
            .expect("the server answered in time")
            .unwrap_or(Event::Closed)
    }

    /// Opens stream `id` for a gRPC call to `path` and sends `data` on it,
    /// without ending it.
    async fn open(&mut self, id: u32, addr: SocketAddr, path: &str, data: &[u8]) {
        let mut block = BytesMut::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", &addr.to_string()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            put_literal(&mut block, name, value);
        }
        let mut out = BytesMut::new();
        // END_HEADERS.
        put_frame(&mut out, frame_type::HEADERS, 0x4, id, &block);
        for chunk in data.chunks(16_384) {
            put_frame(&mut out, frame_type::DATA, 0, id, chunk);
        }
        self.write.write_all(&out).await.unwrap();
    }

    /// Waits for the server's verdict on stream `id`: Ok(increment) for a
    /// WINDOW_UPDATE on it (its bytes were taken), Err(code) for a reset.
    /// Frames about other streams are kept in `seen`.
    async fn verdict(&mut self, id: u32, seen: &mut HashMap<u32, u32>) -> Result<u32, u32> {
        if let Some(code) = seen.remove(&id) {
            return Err(code);
        }
        loop {
            match self.next().await {
                Event::WindowUpdate { stream, increment } if stream == id => return Ok(increment),
                Event::Reset { stream, code } if stream == id => return Err(code),
                Event::Reset { stream, code } => {
                    seen.insert(stream, code);
                }
                Event::Closed | Event::GoAway => panic!("the server closed the connection"),
                _ => {}
            }
        }
    }
}

/// Appends one frame.
fn put_frame(out: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.put_slice(&len.to_be_bytes()[1..]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
    out.put_slice(payload);
}

/// Appends an HPACK literal header field without indexing, with a new name
/// and plain (not Huffman-coded) strings; every string here is under 127
/// bytes.
fn put_literal(out: &mut BytesMut, name: &str, value: &str) {
    out.put_u8(0);
    out.put_u8(name.len() as u8);
    out.put_slice(name.as_bytes());
    out.put_u8(value.len() as u8);
    out.put_slice(value.as_bytes());
}

/// Reads the server's frames and reports those the tests need.
async fn read_frames(mut read: OwnedReadHalf, tx: mpsc::UnboundedSender<Event>) {
    let mut head = [0u8; 9];
    loop {
        if read.read_exact(&mut head).await.is_err() {
            let _ = tx.send(Event::Closed);
            return;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        if read.read_exact(&mut payload).await.is_err() {
            let _ = tx.send(Event::Closed);
            return;
        }
        let word = |at: usize| u32::from_be_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]);
        let event = match kind {
            frame_type::SETTINGS => Event::Settings {
                ack: flags & 1 == 1,
                values: payload
                    .chunks_exact(6)
                    .map(|s| {
                        (
                            u16::from_be_bytes([s[0], s[1]]),
                            u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                        )
                    })
                    .collect(),
            },
            frame_type::WINDOW_UPDATE => Event::WindowUpdate {
                stream,
                increment: word(0) & 0x7fff_ffff,
            },
            frame_type::RST_STREAM => Event::Reset { stream, code: word(0) },
            frame_type::GOAWAY => Event::GoAway,
            frame_type::HEADERS | frame_type::PING | frame_type::DATA => continue,
            _ => continue,
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

/// A message prefix declaring `declared` bytes, then `sent` bytes of it.
fn partial_message(declared: u32, sent: usize) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + sent);
    buf.put_u8(0);
    buf.put_u32(declared);
    buf.put_bytes(b'x', sent);
    buf.freeze()
}

/// An `EchoRequest` with `text`, framed as one whole message.
fn whole_message(s: &str) -> Bytes {
    let msg = prost::Message::encode_to_vec(&text(s));
    let mut buf = BytesMut::with_capacity(5 + msg.len());
    buf.put_u8(0);
    buf.put_u32(msg.len() as u32);
    buf.put_slice(&msg);
    buf.freeze()
}

/// A server with a handshake timeout of `ms` milliseconds.
async fn server_with_handshake_timeout(ms: u64) -> TestServer {
    start_with_counters(|b, c| {
        b.handshake_timeout(Some(Duration::from_millis(ms)))
            .add_service(echo_with(c))
    })
    .await
}

/// Whether the server closes `socket`, reading (and dropping) whatever it
/// sends first, such as its SETTINGS.
async fn closed_by_server(socket: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(LIMIT, async {
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    });
    closed.await.is_ok()
}

/// A unary call on a connection of its own, which must succeed.
async fn normal_call_succeeds(server: &TestServer) {
    let client = EchoClient::new(Channel::connect(server.url()).await.expect("connect"));
    let reply = tokio::time::timeout(LIMIT, client.unary(text("still serving")))
        .await
        .expect("the call finished in time")
        .expect("a normal call on a second connection succeeds");
    assert_eq!(reply.get_ref().text, "still serving");
}

#[tokio::test]
async fn streams_past_the_concurrency_limit_are_refused_and_others_still_served() {
    let server = start_with_counters(|b, c| b.max_concurrent_streams(3).add_service(echo_with(c))).await;
    let mut raw = RawClient::connect(server.addr).await;
    let mut seen = HashMap::new();
    // Three streams each hold part of a message and never finish it.
    for id in [1, 3, 5] {
        raw.open(id, server.addr, CLIENT_STREAM, &partial_message(1 << 20, 1000))
            .await;
    }
    // A fourth, opened while those are still open, is refused.
    raw.open(7, server.addr, CLIENT_STREAM, &partial_message(1 << 20, 1000))
        .await;
    assert_eq!(raw.verdict(7, &mut seen).await, Err(REFUSED_STREAM));
    assert!(seen.is_empty(), "only the stream past the limit is reset: {seen:?}");
    normal_call_succeeds(&server).await;
}

#[tokio::test]
async fn streams_past_the_receive_budget_are_refused_and_others_still_served() {
    // A budget of 1 MiB, and streams that each send 600 KiB of a 2 MiB
    // message: more than half the stream window, so each stream's bytes
    // being taken shows as a WINDOW_UPDATE for it.
    let server = start_with_counters(|b, c| {
        b.max_concurrent_streams(100)
            .max_connection_recv_buffer(1 << 20)
            .add_service(echo_with(c))
    })
    .await;
    let mut raw = RawClient::connect(server.addr).await;
    assert!(raw.stream_window >= 1 << 20, "the test assumes a 1 MiB stream window");
    let part = partial_message(2 << 20, 600 * 1024);
    let mut seen = HashMap::new();
    // The first stream is within the budget.
    raw.open(1, server.addr, CLIENT_STREAM, &part).await;
    assert!(
        raw.verdict(1, &mut seen).await.is_ok(),
        "the first stream's bytes are taken"
    );
    // The second takes the connection past it: it may still go on (one
    // stream may, so that partial messages never wait on each other).
    raw.open(3, server.addr, CLIENT_STREAM, &part).await;
    assert!(
        raw.verdict(3, &mut seen).await.is_ok(),
        "the second stream's bytes are taken"
    );
    // Now the connection holds 1.2 MiB of unfinished messages: new streams
    // are refused.
    for id in [5, 7, 9] {
        raw.open(id, server.addr, CLIENT_STREAM, &partial_message(100, 10))
            .await;
        assert_eq!(raw.verdict(id, &mut seen).await, Err(REFUSED_STREAM), "stream {id}");
    }
    normal_call_succeeds(&server).await;
}

#[tokio::test]
async fn concurrent_large_messages_larger_than_the_budget_all_complete() {
    // Eight 900 KiB requests at once on one connection whose budget is
    // 1 MiB: admitted together, they must all finish, one after another
    // going past the budget, rather than wait on each other forever.
    let server = start_with_counters(|b, c| b.max_connection_recv_buffer(1 << 20).add_service(echo_with(c))).await;
    let client = EchoClient::new(Channel::connect(server.url()).await.expect("connect"));
    let big = "y".repeat(900 * 1024);
    let calls = (0..8).map(|_| {
        let client = client.clone();
        let big = big.clone();
        async move { client.unary(text(&big)).await.map(|r| r.into_inner().text.len()) }
    });
    let results = tokio::time::timeout(LIMIT, futures_util::future::join_all(calls))
        .await
        .expect("every call finished in time");
    for result in results {
        assert_eq!(result.expect("each call succeeds"), 900 * 1024);
    }
}

/// Opens an HTTP/2 connection with the h2 client, driven by its own task.
async fn h2_connect(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// Starts a gRPC request to `path` on `send` and sends `data`, ending the
/// stream if `end`.
async fn h2_call(
    send: &mut h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    path: &str,
    data: Bytes,
    end: bool,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let mut ready = send.clone().ready().await.expect("connection ready");
    let (response, mut stream) = ready.send_request(request, false).expect("request sent");
    stream.send_data(data, end).expect("data sent");
    (response, stream)
}

/// The `grpc-status` and `grpc-message` of a trailers-only response, or of
/// the trailers after the body.
async fn h2_status(response: h2::client::ResponseFuture) -> (String, String) {
    let response = tokio::time::timeout(LIMIT, response)
        .await
        .expect("response in time")
        .expect("a response, not a reset");
    let (head, mut body) = response.into_parts();
    let headers = if head.headers.contains_key("grpc-status") {
        head.headers
    } else {
        while let Some(chunk) = body.data().await {
            let _ = chunk;
        }
        body.trailers().await.expect("trailers").expect("trailers present")
    };
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    (get("grpc-status"), get("grpc-message"))
}

#[tokio::test]
async fn a_partial_message_that_stalls_is_ended_with_resource_exhausted() {
    let server = start_with_counters(|b, c| {
        b.partial_message_timeout(Some(Duration::from_millis(200)))
            .add_service(echo_with(c))
    })
    .await;
    let mut send = h2_connect(server.addr).await;
    let (response, _stream) = h2_call(&mut send, server.addr, CLIENT_STREAM, partial_message(1000, 10), false).await;
    let (code, message) = h2_status(response).await;
    assert_eq!(code, (Code::ResourceExhausted as i32).to_string(), "{message}");
    assert!(message.contains("no more of the request message arrived"), "{message}");
    normal_call_succeeds(&server).await;
}

#[tokio::test]
async fn a_stream_idle_between_whole_messages_outlives_the_partial_message_timeout() {
    let server = start_with_counters(|b, c| {
        b.partial_message_timeout(Some(Duration::from_millis(100)))
            .add_service(echo_with(c))
    })
    .await;
    let mut send = h2_connect(server.addr).await;
    let first = whole_message("first");
    let (response, mut stream) = h2_call(&mut send, server.addr, CLIENT_STREAM, first.clone(), false).await;
    // Idle, with no message partial, for several times the timeout: time
    // passing is what is tested here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream.send_data(first, true).expect("the stream is still open");
    let (code, message) = h2_status(response).await;
    assert_eq!(code, "0", "{message}");
}

#[tokio::test]
async fn a_connection_that_never_sends_the_preface_is_closed_after_the_handshake_timeout() {
    let server = server_with_handshake_timeout(200).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "the server closed the silent connection"
    );
    normal_call_succeeds(&server).await;
}

#[tokio::test]
async fn a_connection_that_sends_the_preface_but_no_settings_is_closed() {
    let server = server_with_handshake_timeout(200).await;
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(PREFACE).await.unwrap();
    assert!(
        closed_by_server(&mut half).await,
        "the server closed the connection that sent no SETTINGS"
    );
}

#[tokio::test]
async fn a_connection_that_greeted_in_time_outlives_the_handshake_timeout() {
    let server = server_with_handshake_timeout(100).await;
    let mut send = h2_connect(server.addr).await;
    let unary = || whole_message("hi");
    let (response, _s) = h2_call(&mut send, server.addr, "/courier.test.Echo/Unary", unary(), true).await;
    assert_eq!(h2_status(response).await.0, "0");
    // Let the handshake deadline pass: time passing is what is tested.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (response, _s) = h2_call(&mut send, server.addr, "/courier.test.Echo/Unary", unary(), true).await;
    assert_eq!(
        h2_status(response).await.0,
        "0",
        "a second call on the same connection, after the deadline"
    );
}

/// A handler that works before its first `.await`: it spins until `done`
/// is set (by another call's handler) or ten seconds have passed.
struct Spinner {
    started: Arc<tokio::sync::Notify>,
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl pb::other_server::Other for Spinner {
    async fn ping(
        &self,
        _request: courier::Request<EchoRequest>,
    ) -> Result<courier::Response<EchoResponse>, courier::Status> {
        self.started.notify_one();
        let began = std::time::Instant::now();
        while !self.done.load(std::sync::atomic::Ordering::SeqCst) {
            if began.elapsed() > Duration::from_secs(10) {
                return Err(courier::Status::internal("spun for 10 s: the other call never ran"));
            }
            std::hint::spin_loop();
        }
        Ok(courier::Response::new(EchoResponse {
            text: "released".into(),
            ..Default::default()
        }))
    }
}

/// Sets `done` when it answers, after which the spinner stops.
struct Releaser {
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl pb::echo_server::Echo for Releaser {
    type ServerStreamStream = ResponseStream;
    type BidiStream = ResponseStream;

    async fn unary(
        &self,
        request: courier::Request<EchoRequest>,
    ) -> Result<courier::Response<EchoResponse>, courier::Status> {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(courier::Response::new(EchoResponse {
            text: request.into_inner().text,
            ..Default::default()
        }))
    }
    async fn client_stream(
        &self,
        _request: courier::Request<courier::Streaming<EchoRequest>>,
    ) -> Result<courier::Response<EchoResponse>, courier::Status> {
        Err(courier::Status::unimplemented("not used"))
    }
    async fn server_stream(
        &self,
        _request: courier::Request<EchoRequest>,
    ) -> Result<courier::Response<ResponseStream>, courier::Status> {
        Err(courier::Status::unimplemented("not used"))
    }
    async fn bidi(
        &self,
        _request: courier::Request<courier::Streaming<EchoRequest>>,
    ) -> Result<courier::Response<ResponseStream>, courier::Status> {
        Err(courier::Status::unimplemented("not used"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_busy_before_its_first_await_does_not_hold_up_other_calls_on_its_connection() {
    let started = Arc::new(tokio::sync::Notify::new());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinner = Spinner {
        started: started.clone(),
        done: done.clone(),
    };
    let releaser = Releaser { done };
    let server = start_with(|b| {
        b.add_service(pb::other_server::OtherServer::new(spinner))
            .add_service(pb::echo_server::EchoServer::new(releaser))
    })
    .await;
    let channel = Channel::connect(server.url()).await.expect("connect");
    let busy = pb::other_client::OtherClient::new(channel.clone());
    let quick = EchoClient::new(channel);
    let busy_call = tokio::spawn(async move { busy.ping(text("spin")).await });
    // The second call starts once the first handler is spinning, on the
    // same connection; it must be served meanwhile, and its answer is what
    // lets the first one stop.
    started.notified().await;
    let reply = tokio::time::timeout(LIMIT, quick.unary(text("quick")))
        .await
        .expect("the quick call finished while the other handler spun")
        .expect("the quick call succeeds");
    assert_eq!(reply.get_ref().text, "quick");
    let busy_reply = busy_call
        .await
        .unwrap()
        .expect("the busy handler was released by the quick call");
    assert_eq!(busy_reply.get_ref().text, "released");
}
