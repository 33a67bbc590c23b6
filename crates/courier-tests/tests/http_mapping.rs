//! How a Courier client reports answers that are not proper gRPC: HTTP error
//! statuses (per grpc/grpc doc/http-grpc-status-mapping.md), non-gRPC
//! content, missing status, stream resets, and servers that are not there.
//! The far side is a raw HTTP/2 server on a loopback socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use courier::{Channel, Code, Status};
use courier_tests::*;
use h2::server::SendResponse;
use prost::Message as _;

/// How long any one call may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(30);

/// What the raw server does with every request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// This HTTP status, no grpc-status; with a text body or headers only.
    Http { status: u16, body: bool },
    /// 200 with `text/html` and a page.
    Html,
    /// 200 `application/grpc`, optionally one valid message, then the end of
    /// the stream with no trailers.
    GrpcWithoutTrailers { message: bool },
    /// 200 `application/grpc` with END_STREAM and no grpc-status.
    GrpcHeadersOnlyWithoutStatus,
    /// RST_STREAM before any response.
    Reset(h2::Reason),
    /// RST_STREAM after the response headers.
    ResetAfterHeaders(h2::Reason),
}

/// A raw HTTP/2 server answering every request with one [`Answer`].
struct RawServer {
    addr: SocketAddr,
    /// Requests seen for the Echo Unary path.
    seen: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn raw_server(answer: Answer) -> RawServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                let ping = Arc::new(tokio::sync::Mutex::new(
                    conn.ping_pong().expect("the connection's PingPong"),
                ));
                while let Some(Ok((req, respond))) = conn.accept().await {
                    tokio::spawn(serve(answer, req, respond, counter.clone(), ping.clone()));
                }
            });
        }
    });
    RawServer { addr, seen, task }
}

fn framed(msg: &EchoResponse) -> Bytes {
    let encoded = msg.encode_to_vec();
    let mut buf = BytesMut::new();
    buf.put_u8(0);
    buf.put_u32(encoded.len() as u32);
    buf.extend_from_slice(&encoded);
    buf.freeze()
}

fn head(status: u16, content_type: Option<&str>) -> http::Response<()> {
    let mut builder = http::Response::builder().status(status);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(()).unwrap()
}

async fn serve(
    answer: Answer,
    req: http::Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    seen: Arc<AtomicUsize>,
    ping: Arc<tokio::sync::Mutex<h2::PingPong>>,
) {
    let (parts, mut body) = req.into_parts();
    if parts.uri.path() == "/courier.test.Echo/Unary" {
        seen.fetch_add(1, Ordering::SeqCst);
    }
    if let Answer::Reset(reason) = answer {
        respond.send_reset(reason);
        return;
    }
    // Read the whole request first, like a proxy would.
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    match answer {
        Answer::Reset(_) => unreachable!(),
        Answer::Http { status, body: false } => {
            let _ = respond.send_response(head(status, None), true);
        }
        Answer::Http { status, body: true } => {
            if let Ok(mut send) = respond.send_response(head(status, Some("text/plain")), false) {
                let _ = send.send_data(Bytes::from(format!("error {status} from a proxy\n")), true);
            }
        }
        Answer::Html => {
            if let Ok(mut send) = respond.send_response(head(200, Some("text/html")), false) {
                let _ = send.send_data(Bytes::from_static(b"<html><body>Hello</body></html>\n"), true);
            }
        }
        Answer::GrpcWithoutTrailers { message } => {
            if let Ok(mut send) = respond.send_response(head(200, Some("application/grpc")), false) {
                let data = if message {
                    framed(&EchoResponse {
                        text: "hi".into(),
                        ..Default::default()
                    })
                } else {
                    Bytes::new()
                };
                let _ = send.send_data(data, true);
            }
        }
        Answer::GrpcHeadersOnlyWithoutStatus => {
            let _ = respond.send_response(head(200, Some("application/grpc")), true);
        }
        Answer::ResetAfterHeaders(reason) => {
            if let Ok(mut send) = respond.send_response(head(200, Some("application/grpc")), false) {
                // A reset drops the stream's frames not yet written, so the
                // headers must have left first: they were queued before the
                // PING, which h2 writes no earlier than them, so once the
                // client's PONG is back, the client has them.
                ping.lock()
                    .await
                    .ping(h2::Ping::opaque())
                    .await
                    .expect("the client answers the PING");
                send.send_reset(reason);
            }
        }
    }
}

/// One Unary call to `server` on a fresh client; fails the test on a hang.
async fn call(server: &RawServer) -> Result<EchoResponse, Status> {
    let client = EchoClient::new(Channel::lazy(format!("http://{}", server.addr)).unwrap());
    let result = tokio::time::timeout(LIMIT, client.unary(text("hello"))).await;
    let result = result.unwrap_or_else(|_| panic!("the call to {} hung", server.addr));
    result.map(|r| r.into_inner())
}

/// A call that must fail; also checks that the server saw it once.
async fn call_err(answer: Answer) -> Status {
    call_err_seen(answer, 1).await
}

/// A call that must fail, after reaching the server `times` times.
async fn call_err_seen(answer: Answer, times: usize) -> Status {
    let server = raw_server(answer).await;
    let err = match call(&server).await {
        Ok(resp) => panic!("{answer:?}: call succeeded with {resp:?}"),
        Err(err) => err,
    };
    assert_eq!(
        server.seen.load(Ordering::SeqCst),
        times,
        "{answer:?}: the request reached the server"
    );
    assert!(!err.message().is_empty(), "{answer:?}: {err:?} has a message");
    err
}

#[tokio::test]
async fn http_statuses_map_to_grpc_codes() {
    let cases = [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (500, Code::Unknown),
        (418, Code::Unknown),
        (302, Code::Unknown),
    ];
    for (status, code) in cases {
        for body in [false, true] {
            let answer = Answer::Http { status, body };
            let err = call_err(answer).await;
            assert_eq!(err.code(), code, "{answer:?}: {err:?}");
            assert!(
                err.message().contains(&status.to_string()),
                "{answer:?}: message names the HTTP status: {err:?}"
            );
        }
    }
}

#[tokio::test]
async fn ok_status_with_html_is_an_error() {
    let err = call_err(Answer::Html).await;
    assert!(matches!(err.code(), Code::Internal | Code::Unknown), "{err:?}");
}

#[tokio::test]
async fn grpc_response_without_trailers_is_an_error() {
    for message in [false, true] {
        let answer = Answer::GrpcWithoutTrailers { message };
        let err = call_err(answer).await;
        assert!(
            matches!(err.code(), Code::Internal | Code::Unknown),
            "{answer:?}: {err:?}"
        );
    }
    let err = call_err(Answer::GrpcHeadersOnlyWithoutStatus).await;
    assert!(
        matches!(err.code(), Code::Internal | Code::Unknown),
        "headers only: {err:?}"
    );
}

#[tokio::test]
async fn stream_resets_map_to_codes() {
    // A stream refused before any response never reached the application:
    // the call is sent again, transparently, four times, then fails.
    let refused = call_err_seen(Answer::Reset(h2::Reason::REFUSED_STREAM), 5).await;
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let cases = [
        (Answer::Reset(h2::Reason::CANCEL), Code::Cancelled),
        (Answer::ResetAfterHeaders(h2::Reason::REFUSED_STREAM), Code::Unavailable),
        (Answer::ResetAfterHeaders(h2::Reason::CANCEL), Code::Cancelled),
    ];
    for (answer, code) in cases {
        let err = call_err(answer).await;
        assert_eq!(err.code(), code, "{answer:?}: {err:?}");
    }
}

#[tokio::test]
async fn nothing_listening_is_unavailable_and_names_the_address() {
    let refusing = RefusingAddr::new();
    let addr = refusing.addr;
    let url = format!("http://{addr}");

    // Connecting eagerly.
    let err = match tokio::time::timeout(LIMIT, EchoClient::connect(&url))
        .await
        .expect("no hang")
    {
        Ok(_) => panic!("connected to {addr} with nothing listening"),
        Err(err) => err,
    };
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains(&addr.to_string()),
        "message names {addr}: {err:?}"
    );

    // Connecting on the first call.
    let client = EchoClient::new(Channel::lazy(&url).unwrap());
    let err = tokio::time::timeout(LIMIT, client.unary(text("x")))
        .await
        .expect("no hang")
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains(&addr.to_string()),
        "message names {addr}: {err:?}"
    );
}
