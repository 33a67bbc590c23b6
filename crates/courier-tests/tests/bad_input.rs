//! Malformed and unexpected requests, sent as raw HTTP/2 to a Courier server
//! over a real loopback socket: each gets the status the gRPC spec asks for,
//! and the connection stays usable for a normal call afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use courier::{Channel, Code};
use courier_tests::*;
use h2::client::{ResponseFuture, SendRequest};
use http::{HeaderMap, Method, StatusCode};
use prost::Message as _;

/// How long any one exchange may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(30);

const UNARY: &str = "/courier.test.Echo/Unary";

/// Opens a raw HTTP/2 connection to `addr`, driven by a task of its own.
async fn raw_connect(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("TCP connect");
    let (send, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// A request head with exactly the given headers.
fn request(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid request head")
}

/// A well-formed gRPC request head, plus `extra` headers.
fn grpc_request(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> http::Request<()> {
    let mut headers = vec![("content-type", "application/grpc"), ("te", "trailers")];
    headers.extend_from_slice(extra);
    request(addr, Method::POST, path, &headers)
}

/// One length-prefixed message: the flag byte, the big-endian length and the bytes.
fn frame(flag: u8, message: &[u8]) -> Bytes {
    prefix(flag, message.len() as u32, message)
}

/// A prefix declaring `len` bytes, followed by `data` (which may be shorter).
fn prefix(flag: u8, len: u32, data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + data.len());
    buf.put_u8(flag);
    buf.put_u32(len);
    buf.extend_from_slice(data);
    buf.freeze()
}

/// An encoded `EchoRequest` with only `text`, framed.
fn echo_frame(s: &str) -> Bytes {
    frame(0, &text(s).encode_to_vec())
}

/// Decodes `grpc-message`'s percent-encoding.
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let (Some(hi), Some(lo)) = (hex(raw[i + 1]), hex(raw[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("grpc-message is UTF-8 once decoded")
}

/// Everything a response carried.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    /// The headers ended the stream: a trailers-only response (or a bare HTTP error).
    trailers_only: bool,
    body: Bytes,
    trailers: Option<HeaderMap>,
    /// `grpc-status`, from the trailers or from trailers-only headers.
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
}

impl Reply {
    /// Checks a gRPC error answer: HTTP 200, gRPC content-type, the expected
    /// code and a non-empty message.
    fn assert_grpc_error(&self, code: Code, case: &str) {
        assert_eq!(self.status, StatusCode::OK, "{case}: HTTP status, {self:?}");
        let ct = self.headers.get("content-type").map(|v| v.as_bytes());
        assert!(
            ct.is_some_and(|ct| ct.starts_with(b"application/grpc")),
            "{case}: content-type, {self:?}"
        );
        assert_eq!(self.grpc_status, Some(code as i32), "{case}: grpc-status, {self:?}");
        let message = self.grpc_message.as_deref().unwrap_or("");
        assert!(
            !message.trim().is_empty(),
            "{case}: grpc-message must say what went wrong, {self:?}"
        );
        assert!(self.body.is_empty(), "{case}: an error carries no message, {self:?}");
    }

    /// The single response message, decoded.
    fn message(&self) -> EchoResponse {
        let body = &self.body[..];
        assert!(body.len() >= 5, "response body too short for a message: {self:?}");
        assert_eq!(body[0], 0, "response is not compressed");
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        assert_eq!(body.len(), 5 + len, "exactly one message in the body");
        EchoResponse::decode(&body[5..]).expect("response decodes")
    }
}

/// Reads a whole response: headers, body and trailers.
async fn read_reply(response: ResponseFuture) -> Reply {
    let response = response.await.expect("response headers");
    let (parts, mut body) = response.into_parts();
    let trailers_only = body.is_end_stream();
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("response body");
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = if trailers_only {
        None
    } else {
        body.trailers().await.expect("response trailers")
    };
    let status_source = if trailers_only {
        Some(&parts.headers)
    } else {
        trailers.as_ref()
    };
    let grpc_status = status_source.and_then(|h| h.get("grpc-status")).map(|v| {
        v.to_str()
            .expect("ASCII grpc-status")
            .parse::<i32>()
            .expect("numeric grpc-status")
    });
    let grpc_message = status_source
        .and_then(|h| h.get("grpc-message"))
        .map(|v| percent_decode(v.as_bytes()));
    Reply {
        status: parts.status,
        headers: parts.headers,
        trailers_only,
        body: data.freeze(),
        trailers,
        grpc_status,
        grpc_message,
    }
}

/// Sends a request (with `body`, if any, then END_STREAM when `end`) and
/// reads the reply, within [`LIMIT`]. The request stream stays open until the
/// reply is read.
async fn exchange(h2: &SendRequest<Bytes>, req: http::Request<()>, body: Option<Bytes>, end: bool) -> Reply {
    exchange_parts(h2, req, body.into_iter().collect(), end).await
}

/// Like [`exchange`], with the body sent as separate DATA frames.
async fn exchange_parts(h2: &SendRequest<Bytes>, req: http::Request<()>, parts: Vec<Bytes>, end: bool) -> Reply {
    let mut h2 = h2.clone().ready().await.expect("connection ready for a new stream");
    let (response, mut send) = h2.send_request(req, parts.is_empty() && end).expect("stream opened");
    let count = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        // A server that answers early may reset the stream; the reply tells.
        let _ = send.send_data(part, end && i + 1 == count);
    }
    let reply = tokio::time::timeout(LIMIT, read_reply(response))
        .await
        .expect("reply within the time limit");
    drop(send);
    reply
}

/// Sends a bad request and checks it failed with `code`.
async fn expect_grpc_error(h2: &SendRequest<Bytes>, req: http::Request<()>, body: Bytes, code: Code, case: &str) {
    let reply = exchange(h2, req, Some(body), true).await;
    reply.assert_grpc_error(code, case);
}

/// A valid unary call on the same connection succeeds.
async fn expect_ok_call(h2: &SendRequest<Bytes>, addr: SocketAddr, after: &str) {
    let reply = exchange(h2, grpc_request(addr, UNARY, &[]), Some(echo_frame("ok")), true).await;
    assert_eq!(reply.status, StatusCode::OK, "valid call after {after}: {reply:?}");
    assert!(!reply.trailers_only, "valid call after {after}: {reply:?}");
    assert_eq!(reply.grpc_status, Some(0), "valid call after {after}: {reply:?}");
    assert!(reply.trailers.is_some());
    assert_eq!(reply.message().text, "ok", "valid call after {after}");
}

#[tokio::test]
async fn bad_requests_fail_and_leave_the_connection_usable() {
    let server = start_server().await;
    let addr = server.addr;
    let h2 = raw_connect(addr).await;

    // The connection works to begin with.
    expect_ok_call(&h2, addr, "nothing").await;

    let ok_msg = text("x").encode_to_vec();

    // A compressed-flag byte that is neither 0 nor 1.
    let case = "compressed flag 2";
    expect_grpc_error(
        &h2,
        grpc_request(addr, UNARY, &[]),
        frame(2, &ok_msg),
        Code::Internal,
        case,
    )
    .await;
    expect_ok_call(&h2, addr, case).await;

    // The stream ends inside a message.
    let case = "message truncated by END_STREAM";
    let body = prefix(0, 100, &[0u8; 10]);
    expect_grpc_error(&h2, grpc_request(addr, UNARY, &[]), body, Code::Internal, case).await;
    expect_ok_call(&h2, addr, case).await;

    // A compressed message on a call that declared no grpc-encoding.
    let case = "compressed message without grpc-encoding";
    expect_grpc_error(
        &h2,
        grpc_request(addr, UNARY, &[]),
        frame(1, &ok_msg),
        Code::Internal,
        case,
    )
    .await;
    expect_ok_call(&h2, addr, case).await;

    // Not gRPC at all: HTTP 415.
    let case = "content-type text/plain";
    let req = request(
        addr,
        Method::POST,
        UNARY,
        &[("content-type", "text/plain"), ("te", "trailers")],
    );
    let reply = exchange(&h2, req, Some(echo_frame("x")), true).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{case}: {reply:?}");
    expect_ok_call(&h2, addr, case).await;

    // Unknown method of a known service, and an unknown service.
    for path in ["/courier.test.Echo/Nope", "/no.Such/Thing"] {
        let case = format!("unknown path {path}");
        expect_grpc_error(
            &h2,
            grpc_request(addr, path, &[]),
            echo_frame("x"),
            Code::Unimplemented,
            &case,
        )
        .await;
        expect_ok_call(&h2, addr, &case).await;
    }

    // A prefix declaring 5 MiB, above the default 4 MiB limit: refused from
    // the prefix alone, without waiting for the rest. The request stream is
    // left open; only 64 KiB follow the prefix.
    let case = "5 MiB message";
    let body = prefix(0, 5 * 1024 * 1024, &[0u8; 64 * 1024]);
    let reply = exchange(&h2, grpc_request(addr, UNARY, &[]), Some(body), false).await;
    reply.assert_grpc_error(Code::ResourceExhausted, case);
    expect_ok_call(&h2, addr, case).await;

    // The same, with only the prefix sent, split across two DATA frames.
    let case = "5 MiB prefix in two frames";
    let head = prefix(0, 5 * 1024 * 1024, &[]);
    let parts = vec![head.slice(..3), head.slice(3..)];
    let reply = exchange_parts(&h2, grpc_request(addr, UNARY, &[]), parts, false).await;
    reply.assert_grpc_error(Code::ResourceExhausted, case);
    expect_ok_call(&h2, addr, case).await;

    // Malformed grpc-timeout values.
    for timeout in ["abc", "123456789S", "10x", ""] {
        let case = format!("grpc-timeout {timeout:?}");
        let req = grpc_request(addr, UNARY, &[("grpc-timeout", timeout)]);
        expect_grpc_error(&h2, req, echo_frame("x"), Code::Internal, &case).await;
        expect_ok_call(&h2, addr, &case).await;
    }

    // No `te: trailers`.
    let case = "missing te";
    let req = request(addr, Method::POST, UNARY, &[("content-type", "application/grpc")]);
    expect_grpc_error(&h2, req, echo_frame("x"), Code::Internal, case).await;
    expect_ok_call(&h2, addr, case).await;

    // A message encoding the server does not support. (That the answer lists
    // the supported ones is checked by a test of its own, below.)
    let case = "grpc-encoding snappy";
    let req = grpc_request(addr, UNARY, &[("grpc-encoding", "snappy")]);
    expect_grpc_error(&h2, req, frame(1, &ok_msg), Code::Unimplemented, case).await;
    expect_ok_call(&h2, addr, case).await;

    // Not POST: HTTP 405.
    let case = "GET";
    let req = request(
        addr,
        Method::GET,
        UNARY,
        &[("content-type", "application/grpc"), ("te", "trailers")],
    );
    let reply = exchange(&h2, req, None, true).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{case}: {reply:?}");
    expect_ok_call(&h2, addr, case).await;

    // None of the bad requests reached the handler; the valid ones did.
    assert_eq!(server.counters.started.load(std::sync::atomic::Ordering::SeqCst), 16);
}

/// A zstd frame of no content whose header declares a window of `2^log`
/// bytes: magic number, a descriptor without content size (so a window
/// descriptor follows), the window, and one empty last raw block.
fn zstd_frame_with_window_log(log: u8) -> Vec<u8> {
    vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, (log - 10) << 3, 0x01, 0x00, 0x00]
}

#[tokio::test]
async fn zstd_frame_declaring_a_huge_window_is_resource_exhausted() {
    // zstd allocates a frame's declared window before decoding it. 64 MiB
    // is within zstd's own default limit (128 MiB), so only a window limit
    // set from the receive limit (4 MiB) refuses it. The refusal comes from
    // the frame header, before the window is allocated: the allocation is
    // made by zstd's C code, out of sight of a Rust allocator.
    let server = start_server().await;
    let addr = server.addr;
    let h2 = raw_connect(addr).await;
    let req = grpc_request(addr, UNARY, &[("grpc-encoding", "zstd")]);
    let reply = exchange(&h2, req, Some(frame(1, &zstd_frame_with_window_log(26))), true).await;
    reply.assert_grpc_error(Code::ResourceExhausted, "zstd window of 64 MiB");
    let message = reply.grpc_message.as_deref().unwrap_or_default();
    assert!(message.contains("window exceeds the limit"), "{message}");
    // A small window is fine.
    let req = grpc_request(addr, UNARY, &[("grpc-encoding", "zstd")]);
    let reply = exchange(&h2, req, Some(frame(1, &zstd_frame_with_window_log(16))), true).await;
    assert_eq!(reply.grpc_status, Some(0), "{reply:?}");
    expect_ok_call(&h2, addr, "a zstd frame with a huge window").await;
}

#[tokio::test]
async fn unsupported_encoding_lists_the_supported_ones() {
    let server = start_server().await;
    let addr = server.addr;
    let h2 = raw_connect(addr).await;
    let req = grpc_request(addr, UNARY, &[("grpc-encoding", "snappy")]);
    let reply = exchange(&h2, req, Some(frame(1, &text("x").encode_to_vec())), true).await;
    reply.assert_grpc_error(Code::Unimplemented, "grpc-encoding snappy");
    let accept = reply
        .headers
        .get("grpc-accept-encoding")
        .map(|v| v.to_str().unwrap().to_string());
    let accept = accept.expect("grpc-accept-encoding in the UNIMPLEMENTED answer");
    assert!(
        accept.split(',').any(|e| e.trim() == "gzip"),
        "grpc-accept-encoding {accept:?} lists gzip"
    );
    expect_ok_call(&h2, addr, "grpc-encoding snappy").await;
}

#[tokio::test]
async fn oversized_message_from_a_real_client() {
    let server = start_server().await;
    let channel = Channel::connect(server.url()).await.unwrap();
    let client = EchoClient::new(channel);
    let big = EchoRequest {
        payload: vec![1u8; 5 * 1024 * 1024],
        ..text("big")
    };
    let err = tokio::time::timeout(LIMIT, client.unary(big))
        .await
        .expect("no hang")
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(!err.message().is_empty());
    // The same channel still makes calls.
    let resp = tokio::time::timeout(LIMIT, client.unary(text("after")))
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(resp.get_ref().text, "after");
}

#[tokio::test]
async fn configured_decoding_limit_is_enforced() {
    let server = start_with(|b| {
        b.max_decoding_message_size(1024)
            .add_service(EchoServer::new(EchoService::default()))
    })
    .await;
    let client = EchoClient::new(Channel::connect(server.url()).await.unwrap());
    let big = EchoRequest {
        payload: vec![1u8; 2 * 1024],
        ..text("big")
    };
    let err = tokio::time::timeout(LIMIT, client.unary(big))
        .await
        .expect("no hang")
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(!err.message().is_empty());
    // Just under the limit is fine, on the same channel.
    let fits = EchoRequest {
        payload: vec![1u8; 900],
        ..text("fits")
    };
    let resp = tokio::time::timeout(LIMIT, client.unary(fits))
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(resp.get_ref().payload.len(), 900);
}

#[tokio::test]
async fn a_panicking_handler_fails_only_its_own_call() {
    let server = start_server().await;
    let client = EchoClient::new(Channel::connect(server.url()).await.unwrap());
    // One panics at once, while the server first polls the call; the other
    // after a sleep, in the call's own task. A call in flight alongside, a
    // bidirectional stream open across both panics, is not disturbed.
    let (alongside_tx, rx) = tokio::sync::mpsc::channel(1);
    let mut alongside = tokio::time::timeout(LIMIT, client.bidi(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
        .expect("no hang")
        .unwrap()
        .into_inner();
    alongside_tx.send(text("before")).await.unwrap();
    let reply = tokio::time::timeout(LIMIT, alongside.message()).await.expect("no hang");
    assert_eq!(reply.unwrap().unwrap().text, "before");
    for sleep_ms in [0, 50] {
        let panics = EchoRequest {
            sleep_ms,
            ..text("panic")
        };
        let err = tokio::time::timeout(LIMIT, client.unary(panics))
            .await
            .expect("no hang")
            .unwrap_err();
        assert_eq!(err.code(), Code::Internal, "panic after {sleep_ms} ms: {err:?}");
        let resp = tokio::time::timeout(LIMIT, client.unary(text("after")))
            .await
            .expect("no hang")
            .unwrap();
        assert_eq!(resp.get_ref().text, "after");
    }
    alongside_tx.send(text("alongside")).await.unwrap();
    let reply = tokio::time::timeout(LIMIT, alongside.message()).await.expect("no hang");
    assert_eq!(reply.unwrap().unwrap().text, "alongside");
    drop(alongside_tx);
    let end = tokio::time::timeout(LIMIT, alongside.message()).await.expect("no hang");
    assert!(end.unwrap().is_none(), "the stream ends with OK");
}
