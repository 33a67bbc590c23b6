//! Deadlines, cancellation, interceptors, channels that connect and
//! reconnect, and graceful shutdown, over real loopback sockets.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use courier::interceptor::{CallHead, ClientInterceptor, ServerInterceptor};
use courier::{Channel, Code, Request, Status};
use courier_tests::*;
use futures_util::StreamExt;

/// How long a step may take before the test calls it a hang: generous, for
/// loaded machines; it bounds a failure and times no success.
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn deadline_is_sent_and_seen_by_the_handler() {
    let server = start_server().await;
    let client = EchoClient::connect(server.url()).await.unwrap();
    let mut req = Request::new(text("d"));
    req.set_timeout(Duration::from_secs(5));
    let resp = client.unary(req).await.unwrap();
    let left = resp.get_ref().deadline_ms;
    assert!((4000..=5000).contains(&left), "handler saw {left} ms left");
}

#[tokio::test]
async fn deadline_exceeded_on_both_sides() {
    let server = start_server().await;
    let client = EchoClient::connect(server.url()).await.unwrap();
    // The handler would take a minute; the deadline is a second, long
    // enough for the call to reach the handler on a loaded machine.
    let mut req = Request::new(EchoRequest {
        sleep_ms: 60_000,
        ..text("slow")
    });
    req.set_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = client.unary(req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(
        started.elapsed() < LIMIT,
        "the deadline ended the call, not the handler"
    );
    // The server gave up on the handler too: its future was dropped.
    server.counters.wait_cancelled(1).await;
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 1);

    // A stream that outlives its deadline ends with DEADLINE_EXCEEDED (at
    // the first response, or later if the headers made it first).
    let mut req = Request::new(EchoRequest {
        count: 100,
        sleep_ms: 600,
        ..text("s")
    });
    req.set_timeout(Duration::from_secs(1));
    let last = match client.server_stream(req).await {
        Err(e) => e,
        Ok(resp) => {
            let mut stream = resp.into_inner();
            let mut last = None;
            while let Some(item) = stream.next().await {
                if let Err(e) = item {
                    last = Some(e);
                }
            }
            last.expect("the stream ended with an error")
        }
    };
    assert_eq!(last.code(), Code::DeadlineExceeded, "{last:?}");
    // The channel still works.
    assert_eq!(client.unary(text("ok")).await.unwrap().get_ref().text, "ok");
}

#[tokio::test]
async fn server_enforces_the_deadline_itself() {
    // A raw client that sends grpc-timeout but never cancels: the server
    // must answer DEADLINE_EXCEEDED on its own.
    use bytes::{BufMut, BytesMut};
    use prost::Message;
    let server = start_server().await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut h2c, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}/courier.test.Echo/Unary", server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "1S")
        .body(())
        .unwrap();
    let msg = EchoRequest {
        sleep_ms: 60_000,
        ..text("x")
    }
    .encode_to_vec();
    let mut framed = BytesMut::new();
    framed.put_u8(0);
    framed.put_u32(msg.len() as u32);
    framed.put_slice(&msg);
    let (resp, mut send) = h2c.send_request(req, false).unwrap();
    send.send_data(framed.freeze(), true).unwrap();
    // The handler would take a minute: an answer within LIMIT is the
    // server's own deadline.
    let resp = tokio::time::timeout(LIMIT, resp).await.unwrap().unwrap();
    let status = resp
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status.as_deref(), Some("4"), "headers: {:?}", resp.headers());
    server.counters.wait_cancelled(1).await;
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_a_call_cancels_the_handler() {
    let server = start_server().await;
    let client = EchoClient::connect(server.url()).await.unwrap();
    // Unary: drop the call future once its handler runs.
    let call = client.unary(EchoRequest {
        sleep_ms: 60_000,
        ..text("x")
    });
    tokio::select! {
        _ = server.counters.wait_started(1) => {}
        done = call => panic!("the call ended before it was dropped: {done:?}"),
    }
    server.counters.wait_cancelled(1).await;

    // Server streaming: drop the stream after one message.
    let req = EchoRequest {
        count: 1000,
        sleep_ms: 20,
        ..text("x")
    };
    let mut stream = client.server_stream(req).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    server.counters.wait_cancelled(2).await;

    // Bidi: drop both sides.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut stream = client
        .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(text("one")).await.unwrap();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    server.counters.wait_cancelled(3).await;
    assert_eq!(server.counters.cancelled.load(Ordering::SeqCst), 3);
    drop(tx);
    // The channel is still good.
    assert_eq!(client.unary(text("ok")).await.unwrap().get_ref().text, "ok");
}

struct AddToken(&'static str);

impl ClientInterceptor for AddToken {
    async fn intercept(&self, mut head: CallHead) -> Result<CallHead, Status> {
        head.metadata_mut().insert("authorization", self.0)?;
        Ok(head)
    }
}

struct Authenticate;

impl ServerInterceptor for Authenticate {
    async fn intercept(&self, mut head: CallHead) -> Result<CallHead, Status> {
        tokio::task::yield_now().await;
        match head.metadata().get("authorization") {
            Some(token) if token.starts_with("Bearer ") => {
                let who = token["Bearer ".len()..].to_string();
                head.extensions_mut().insert(Identity(who));
                Ok(head)
            }
            _ => Err(Status::unauthenticated("no bearer token")),
        }
    }
}

#[tokio::test]
async fn interceptors_stack_and_pass_values() {
    let server = start_with_counters(|b, counters| {
        b.add_service(echo_with(counters))
            // Runs first: records the method in metadata the next one can see.
            .interceptor(|mut head: CallHead| {
                let method = head.method().to_string();
                head.metadata_mut().insert("x-seen-method", &method)?;
                Ok(head)
            })
            .interceptor(Authenticate)
            .interceptor(|head: CallHead| {
                if head.metadata().get("x-seen-method") == Some("Unary") || head.method() != "Unary" {
                    Ok(head)
                } else {
                    Err(Status::internal("interceptors ran out of order"))
                }
            })
    })
    .await;

    // Without a token: rejected, and the handler never ran.
    let plain = EchoClient::connect(server.url()).await.unwrap();
    let err = plain.unary(text("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "no bearer token");
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 0);
    let err = plain
        .bidi(tokio_stream::iter(vec![text("x")]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // With a client interceptor adding the token: the handler sees who.
    let channel = Channel::builder(server.url())
        .interceptor(AddToken("Bearer alice"))
        .interceptor(|head: CallHead| {
            if head.path().starts_with("/courier.test.") {
                Ok(head)
            } else {
                Err(Status::internal("bad path"))
            }
        })
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let resp = client.unary(text("x")).await.unwrap();
    assert_eq!(resp.get_ref().identity, "alice");

    // A client interceptor can fail the call before it is sent.
    let channel = Channel::builder(server.url())
        .interceptor(|_: CallHead| -> Result<CallHead, Status> { Err(Status::permission_denied("client says no")) })
        .connect_lazy()
        .unwrap();
    let err = EchoClient::new(channel.clone()).unary(text("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(!channel.is_connected(), "the call was never sent");
}

#[tokio::test]
async fn lazy_and_eager_connection() {
    let server = start_server().await;
    let lazy = Channel::lazy(server.url()).unwrap();
    assert!(!lazy.is_connected());
    let client = EchoClient::new(lazy.clone());
    client.unary(text("x")).await.unwrap();
    assert!(lazy.is_connected());
    let eager = Channel::connect(server.url()).await.unwrap();
    assert!(eager.is_connected());
    // Host:port without a scheme works too.
    let bare = Channel::connect(server.addr.to_string()).await.unwrap();
    EchoClient::new(bare).unary(text("x")).await.unwrap();
}

#[tokio::test]
async fn unreachable_server_is_unavailable_with_the_cause() {
    let refusing = RefusingAddr::new();
    let addr = refusing.addr;
    let err = Channel::connect(format!("http://{addr}")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains(&addr.to_string()), "{err}");
    assert!(err.message().to_lowercase().contains("refused"), "{err}");
    // A lazy channel fails its calls the same way.
    let client = EchoClient::new(Channel::lazy(format!("http://{addr}")).unwrap());
    let err = client.unary(text("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    // Bad targets are refused up front.
    for bad in ["http://h:notaport", "dns://8.8.8.8", "ipv4:not-an-ip", "unix:"] {
        assert_eq!(Channel::lazy(bad).unwrap_err().code(), Code::InvalidArgument, "{bad}");
    }
}

/// A TCP socket that may share its port with the others made here
/// (`SO_REUSEPORT`), and only with them.
fn port_sharing_socket() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.set_reuseport(true).unwrap();
    socket
}

/// A TCP server that reads what a client sends first, answers with
/// `answer` and closes its side, then reads until the client hangs up (so
/// that unread bytes do not turn its close into a reset).
async fn answering_listener(answer: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer).await;
                let _ = socket.shutdown().await;
                while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

async fn connect_error(target: String) -> Status {
    let connect = Channel::builder(target)
        .connect_timeout(Duration::from_secs(5))
        .connect();
    tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .expect("the attempt ends within its timeout")
        .unwrap_err()
}

#[tokio::test]
async fn an_http1_server_is_named_as_such() {
    let addr = answering_listener(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    let err = connect_error(format!("http://{addr}")).await;
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("answered with HTTP/1.x, not HTTP/2"), "{err}");
    assert!(err.message().contains("gRPC server"), "{err}");
}

#[tokio::test]
async fn a_server_that_closes_before_the_handshake_is_named_as_such() {
    let addr = answering_listener(b"").await;
    let err = connect_error(format!("http://{addr}")).await;
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(
        err.message()
            .contains("closed the connection before the HTTP/2 handshake"),
        "{err}"
    );
}

#[tokio::test]
async fn a_host_name_that_does_not_resolve_is_named_as_such() {
    // `.invalid` never resolves (RFC 6761).
    let err = connect_error("http://no-such-host.invalid:50051".to_string()).await;
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("cannot resolve the host name"), "{err}");
    assert!(err.message().contains("no-such-host.invalid"), "{err}");
}

#[tokio::test]
async fn connection_refused_says_nothing_is_listening() {
    // Bound and never listening: refused, and no other test can take it.
    let refusing = RefusingAddr::new();
    let err = connect_error(format!("http://{}", refusing.addr)).await;
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("nothing is listening"), "{err}");
}

#[tokio::test]
async fn reconnects_after_the_server_restarts() {
    // The port stays this test's between the two servers: a socket bound to
    // it and never listening holds it, so connections are refused while no
    // server is up, and a server of another test cannot take the port.
    let holder = port_sharing_socket();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = holder.local_addr().unwrap();
    let listen = || {
        let socket = port_sharing_socket();
        socket.bind(addr).unwrap();
        socket.listen(1024).unwrap()
    };

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn(
        courier::Server::builder()
            .add_service(EchoServer::new(EchoService::default()))
            .serve_with_listener(listen(), async {
                let _ = rx.await;
            }),
    );
    // No backoff between attempts: every call after a failure dials again.
    let channel = Channel::builder(format!("http://{addr}"))
        .backoff(courier::client::BackoffConfig {
            base_delay: Duration::ZERO,
            jitter: 0.0,
            ..Default::default()
        })
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel.clone());
    client.unary(text("before")).await.unwrap();
    tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    let left = tokio::time::timeout(
        LIMIT,
        channel.wait_for_state_change(courier::client::ConnectivityState::Ready),
    )
    .await
    .expect("the channel noticed the connection closed");
    assert_ne!(left, courier::client::ConnectivityState::Ready);
    let err = client.unary(text("down")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().to_lowercase().contains("refused"), "{err:?}");

    // The server comes back on the same port. A call that waits for ready
    // succeeds once the channel's next attempt reaches it, rather than
    // failing from the cached error.
    let _second = tokio::spawn(
        courier::Server::builder()
            .add_service(EchoServer::new(EchoService::default()))
            .serve_with_listener(listen(), std::future::pending()),
    );
    let mut after = courier::Request::new(text("after"));
    after.set_wait_for_ready(true);
    assert_eq!(client.unary(after).await.unwrap().get_ref().text, "after");
    assert!(channel.is_connected());
}

type ServeTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// A server with the given grace period: its address, its handlers'
/// counters, the sender that shuts it down, and its task.
async fn serve_with_grace(
    grace: Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<Counters>,
    tokio::sync::oneshot::Sender<()>,
    ServeTask,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counters = std::sync::Arc::new(Counters::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        courier::Server::builder()
            .add_service(echo_with(counters.clone()))
            .shutdown_grace_period(grace)
            .serve_with_listener(listener, async {
                let _ = rx.await;
            }),
    );
    (addr, counters, tx, server)
}

#[tokio::test]
async fn graceful_shutdown_lets_calls_finish() {
    let (addr, counters, tx, server) = serve_with_grace(Duration::from_secs(30)).await;
    let client = EchoClient::connect(format!("http://{addr}")).await.unwrap();
    let in_flight = {
        let c = client.clone();
        tokio::spawn(async move {
            c.unary(EchoRequest {
                sleep_ms: 500,
                ..text("finishing")
            })
            .await
        })
    };
    // Shut down while the call's handler runs.
    counters.wait_started(1).await;
    tx.send(()).unwrap();
    // The call in flight completes normally.
    let resp = in_flight.await.unwrap().unwrap();
    assert_eq!(resp.get_ref().text, "finishing");
    // The server then stops, and new connections are refused.
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
    assert_eq!(counters.cancelled.load(Ordering::SeqCst), 0, "no handler was cut short");
    let err = Channel::connect(format!("http://{addr}")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[tokio::test]
async fn shutdown_grace_period_is_bounded() {
    let (addr, counters, tx, server) = serve_with_grace(Duration::from_millis(200)).await;
    let client = EchoClient::connect(format!("http://{addr}")).await.unwrap();
    let stuck = {
        let c = client.clone();
        tokio::spawn(async move {
            c.unary(EchoRequest {
                sleep_ms: 60_000,
                ..text("stuck")
            })
            .await
        })
    };
    // Shut down while the call's handler runs; it would run for a minute.
    counters.wait_started(1).await;
    tx.send(()).unwrap();
    tokio::time::timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
    // The grace period ended the handler.
    counters.wait_cancelled(1).await;
    let err = tokio::time::timeout(LIMIT, stuck).await.unwrap().unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

#[tokio::test]
async fn cancel_ends_the_stream_with_cancelled_and_cancels_the_handler() {
    let server = start_server().await;
    let client = EchoClient::connect(server.url()).await.unwrap();

    // Server streaming, after the first message.
    let req = EchoRequest {
        count: 1000,
        sleep_ms: 20,
        ..text("x")
    };
    let mut stream = client.server_stream(req).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    stream.cancel();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Cancelled);
    assert!(stream.message().await.unwrap().is_none(), "the status comes once");
    server.counters.wait_cancelled(1).await;

    // Bidirectional, with the request stream still open.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut stream = client
        .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(text("one")).await.unwrap();
    stream.message().await.unwrap().unwrap();
    stream.cancel();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Cancelled);
    server.counters.wait_cancelled(2).await;
    // The sending task is gone too: the request channel is closed.
    tokio::time::timeout(LIMIT, tx.closed())
        .await
        .expect("the request channel closed");

    // Cancelling a stream that already ended changes nothing.
    let mut stream = client
        .server_stream(EchoRequest { count: 1, ..text("y") })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    assert!(stream.message().await.unwrap().is_none());
    stream.cancel();
    assert!(stream.message().await.unwrap().is_none());
    assert!(stream.trailers().is_some());
    assert_eq!(client.unary(text("ok")).await.unwrap().get_ref().text, "ok");
}

#[tokio::test]
async fn duration_max_timeout_means_no_deadline_for_every_call_kind() {
    let server = start_server().await;
    let channel = Channel::builder(server.url())
        .connect_timeout(Duration::MAX)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let mut req = Request::new(text("forever"));
    req.set_timeout(Duration::MAX);
    let resp = client.unary(req).await.unwrap();
    assert_eq!(resp.get_ref().deadline_ms, -1, "the handler saw no deadline");

    let mut req = Request::new(tokio_stream::iter(vec![text("a"), text("b")]));
    req.set_timeout(Duration::MAX);
    assert_eq!(client.client_stream(req).await.unwrap().get_ref().text, "ab");

    let mut req = Request::new(EchoRequest { count: 2, ..text("s") });
    req.set_timeout(Duration::MAX);
    let mut stream = client.server_stream(req).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().index, 0);
    assert_eq!(stream.message().await.unwrap().unwrap().index, 1);
    assert!(stream.message().await.unwrap().is_none());

    let mut req = Request::new(tokio_stream::iter(vec![text("x")]));
    req.set_timeout(Duration::MAX);
    let mut stream = client.bidi(req).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().text, "x");
    assert!(stream.message().await.unwrap().is_none());
}

#[tokio::test]
async fn http2_windows_above_2_pow_31_minus_1_are_rejected_with_a_clear_message() {
    let max = (1u32 << 31) - 1;
    for (stream, connection) in [(1 << 31, 1 << 20), (1 << 20, 1 << 31), (u32::MAX, u32::MAX)] {
        let err = Channel::builder("http://127.0.0.1:1")
            .http2_windows(stream, connection)
            .err()
            .expect("the channel refuses the window");
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert!(err.message().contains("2147483647"), "{err}");
        let err = courier::Server::builder()
            .http2_windows(stream, connection)
            .err()
            .expect("the server refuses the window too");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("2147483647"), "{err}");
    }
    // The largest windows HTTP/2 allows work end to end.
    let server = start_with(|b| {
        b.http2_windows(max, max)
            .unwrap()
            .add_service(EchoServer::new(EchoService::default()))
    })
    .await;
    let channel = Channel::builder(server.url())
        .http2_windows(max, max)
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(
        EchoClient::new(channel)
            .unary(text("big"))
            .await
            .unwrap()
            .get_ref()
            .text,
        "big"
    );
}

#[tokio::test]
async fn a_failed_connect_with_absurd_backoff_values_is_unavailable_without_panicking() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    for multiplier in [f64::INFINITY, f64::NAN, -1.0] {
        let channel = Channel::builder(format!("http://{addr}"))
            .backoff(courier::client::BackoffConfig {
                base_delay: Duration::MAX,
                multiplier,
                jitter: f64::MAX,
                max_delay: Duration::MAX,
                min_connect_timeout: Duration::MAX,
            })
            .connect_lazy()
            .unwrap();
        let client = EchoClient::new(channel);
        for _ in 0..2 {
            let err = client.unary(text("x")).await.unwrap_err();
            assert_eq!(err.code(), Code::Unavailable, "{err}");
        }
    }
}

#[tokio::test]
async fn min_connect_timeout_of_a_custom_backoff_bounds_each_attempt() {
    let (addr, _task) = silent_listener().await;
    let connect = Channel::builder(format!("http://{addr}"))
        .backoff(courier::client::BackoffConfig {
            // An attempt gets the longer of the two.
            base_delay: Duration::from_millis(100),
            min_connect_timeout: Duration::from_millis(200),
            ..Default::default()
        })
        .connect();
    let err = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .expect("the attempt gave up long before the default 20 s")
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("timed out after 200ms"), "{err}");
}

#[tokio::test]
async fn an_explicit_connect_timeout_wins_over_the_backoffs_minimum() {
    let (addr, _task) = silent_listener().await;
    // Whatever the order of the two settings.
    let first = Channel::builder(format!("http://{addr}"))
        .connect_timeout(Duration::from_millis(150))
        .backoff(courier::client::BackoffConfig {
            min_connect_timeout: Duration::from_secs(60),
            ..Default::default()
        });
    let second = Channel::builder(format!("http://{addr}"))
        .backoff(courier::client::BackoffConfig {
            min_connect_timeout: Duration::from_secs(60),
            ..Default::default()
        })
        .connect_timeout(Duration::from_millis(150));
    for builder in [first, second] {
        let err = tokio::time::timeout(Duration::from_secs(10), builder.connect())
            .await
            .expect("the attempt gave up long before the backoff's 60 s")
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err}");
        assert!(err.message().contains("timed out after 150ms"), "{err}");
    }
}

/// A raw HTTP/2 server that answers each call with response headers and
/// `messages` messages (no headers at all for `None`), then waits for the
/// client to reset the stream and reports the reason.
async fn server_reporting_resets(
    messages: Option<usize>,
) -> (std::net::SocketAddr, tokio::sync::mpsc::UnboundedReceiver<h2::Reason>) {
    use prost::Message as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let mut conn = h2::server::handshake(socket).await.unwrap();
        while let Some(Ok((request, mut respond))) = conn.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _body = request.into_body();
                let reason = match messages {
                    None => std::future::poll_fn(|cx| respond.poll_reset(cx)).await,
                    Some(n) => {
                        let response = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let mut send = respond.send_response(response, false).unwrap();
                        for i in 0..n {
                            let msg = EchoResponse {
                                index: i as u32,
                                ..Default::default()
                            }
                            .encode_to_vec();
                            let mut framed = vec![0u8];
                            framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
                            framed.extend_from_slice(&msg);
                            send.send_data(framed.into(), false).unwrap();
                        }
                        std::future::poll_fn(|cx| send.poll_reset(cx)).await
                    }
                };
                if let Ok(reason) = reason {
                    let _ = tx.send(reason);
                }
            });
        }
    });
    (addr, rx)
}

async fn reset_reason(resets: &mut tokio::sync::mpsc::UnboundedReceiver<h2::Reason>) -> h2::Reason {
    tokio::time::timeout(Duration::from_secs(10), resets.recv())
        .await
        .expect("the server saw the stream reset while the client still holds it")
        .unwrap()
}

#[tokio::test]
async fn a_server_stream_is_reset_as_soon_as_its_deadline_fires() {
    let (addr, mut resets) = server_reporting_resets(Some(1)).await;
    let client = EchoClient::new(Channel::connect(format!("http://{addr}")).await.unwrap());
    let mut req = Request::new(text("s"));
    req.set_timeout(Duration::from_millis(300));
    let mut stream = client.server_stream(req).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().index, 0);
    assert_eq!(stream.message().await.unwrap_err().code(), Code::DeadlineExceeded);
    // The stream is still held, and the server has seen it cancelled.
    assert_eq!(reset_reason(&mut resets).await, h2::Reason::CANCEL);
    drop(stream);
}

#[tokio::test]
async fn a_bidi_stream_is_reset_as_soon_as_its_deadline_fires() {
    let (addr, mut resets) = server_reporting_resets(Some(1)).await;
    let client = EchoClient::new(Channel::connect(format!("http://{addr}")).await.unwrap());
    let (_tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
    let mut req = Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.set_timeout(Duration::from_millis(300));
    let mut stream = client.bidi(req).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().index, 0);
    assert_eq!(stream.message().await.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(reset_reason(&mut resets).await, h2::Reason::CANCEL);
    drop(stream);
}

#[tokio::test]
async fn a_bidi_stream_waiting_for_headers_is_reset_when_its_deadline_fires() {
    let (addr, mut resets) = server_reporting_resets(None).await;
    let client = EchoClient::new(Channel::connect(format!("http://{addr}")).await.unwrap());
    let (_tx, rx) = tokio::sync::mpsc::channel::<EchoRequest>(1);
    let mut req = Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    req.set_timeout(Duration::from_millis(300));
    let mut stream = client.bidi(req).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(reset_reason(&mut resets).await, h2::Reason::CANCEL);
    drop(stream);
}

/// Waits for `notify`, within a bound that turns a hang into a failure.
async fn signalled(notify: &tokio::sync::Notify, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), notify.notified())
        .await
        .unwrap_or_else(|_| panic!("{what} within 10 s"));
}

#[tokio::test]
async fn a_cancel_handle_cancels_every_call_kind_on_both_sides() {
    let server = start_server().await;
    let client = EchoClient::connect(server.url()).await.unwrap();
    let counters = server.counters.clone();

    // Unary, while the handler runs.
    let mut req = Request::new(EchoRequest {
        sleep_ms: 10_000,
        ..text("u")
    });
    let cancel = req.cancel_handle();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.unary(req).await }
    });
    signalled(&counters.on_start, "the unary handler started").await;
    assert!(!cancel.is_cancelled());
    cancel.cancel();
    assert!(cancel.is_cancelled());
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
    signalled(&counters.on_cancel, "the unary handler was cancelled").await;

    // Client streaming, with the request stream still open.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut req = Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let cancel = req.cancel_handle();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.client_stream(req).await }
    });
    tx.send(text("one")).await.unwrap();
    signalled(&counters.on_start, "the client-streaming handler started").await;
    cancel.cancel();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
    signalled(&counters.on_cancel, "the client-streaming handler was cancelled").await;

    // Server streaming, after the first message.
    let mut req = Request::new(EchoRequest {
        count: 1000,
        sleep_ms: 20,
        ..text("s")
    });
    let cancel = req.cancel_handle();
    let mut stream = client.server_stream(req).await.unwrap().into_inner();
    stream.message().await.unwrap().unwrap();
    cancel.cancel();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Cancelled);
    signalled(&counters.on_cancel, "the server-streaming handler was cancelled").await;

    // Bidirectional, with the request stream open, from another task.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut req = Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let cancel = req.cancel_handle();
    let mut stream = client.bidi(req).await.unwrap().into_inner();
    tx.send(text("one")).await.unwrap();
    stream.message().await.unwrap().unwrap();
    let reader = tokio::spawn(async move { stream.message().await });
    tokio::task::spawn_blocking(move || cancel.cancel()).await.unwrap();
    assert_eq!(reader.await.unwrap().unwrap_err().code(), Code::Cancelled);
    signalled(&counters.on_cancel, "the bidi handler was cancelled").await;

    // Cancelled before it starts: the call fails at once.
    let mut req = Request::new(text("never"));
    req.cancel_handle().cancel();
    assert_eq!(client.unary(req).await.unwrap_err().code(), Code::Cancelled);
    // The channel is still good.
    assert_eq!(client.unary(text("ok")).await.unwrap().get_ref().text, "ok");
}
