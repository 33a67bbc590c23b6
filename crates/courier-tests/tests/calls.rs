//! The four kinds of call, metadata, status and details, over real loopback
//! sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use courier::status::details::{BadRequest, ErrorInfo, FieldViolation};
use courier::{Channel, Code, Request, Response, Status, Streaming};
use courier_tests::*;
use futures_util::StreamExt;

async fn client(server: &TestServer) -> EchoClient {
    EchoClient::connect(server.url()).await.unwrap()
}

#[tokio::test]
async fn unary_round_trip() {
    let server = start_server().await;
    let client = client(&server).await;
    let resp = client.unary(text("hello")).await.unwrap();
    assert_eq!(resp.get_ref().text, "hello");
    assert_eq!(resp.get_ref().deadline_ms, -1);
}

#[tokio::test]
async fn client_streaming_round_trip() {
    let server = start_server().await;
    let client = client(&server).await;
    let msgs = vec![text("a"), text("b"), text("c")];
    let resp = client.client_stream(tokio_stream::iter(msgs)).await.unwrap();
    assert_eq!(resp.get_ref().text, "abc");
    assert_eq!(resp.get_ref().index, 3);
    assert_eq!(resp.trailers().get("x-count"), Some("3"));
    // An empty request stream is fine too.
    let resp = client
        .client_stream(tokio_stream::iter(Vec::<EchoRequest>::new()))
        .await
        .unwrap();
    assert_eq!(resp.get_ref().index, 0);
}

#[tokio::test]
async fn server_streaming_round_trip() {
    let server = start_server().await;
    let client = client(&server).await;
    let req = EchoRequest {
        text: "x".into(),
        count: 100,
        ..Default::default()
    };
    let mut stream = client.server_stream(req).await.unwrap().into_inner();
    let mut seen = 0;
    while let Some(msg) = stream.message().await.unwrap() {
        assert_eq!(msg.index, seen);
        seen += 1;
    }
    assert_eq!(seen, 100);
    assert!(stream.trailers().is_some());
}

#[tokio::test]
async fn server_streaming_error_after_messages() {
    let server = start_server().await;
    let client = client(&server).await;
    let req = EchoRequest {
        text: "boom".into(),
        count: 2,
        fail_code: Code::Aborted as i32,
        ..Default::default()
    };
    let mut stream = client.server_stream(req).await.unwrap().into_inner();
    assert!(stream.next().await.unwrap().is_ok());
    assert!(stream.next().await.unwrap().is_ok());
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(err.message(), "boom");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn bidi_reads_and_writes_concurrently() {
    let server = start_server().await;
    let client = client(&server).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut responses = client
        .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // Ping-pong: each reply arrives before the next request is sent.
    for i in 0..10 {
        tx.send(text(&format!("m{i}"))).await.unwrap();
        let reply = responses.message().await.unwrap().unwrap();
        assert_eq!(reply.text, format!("m{i}"));
        assert_eq!(reply.index, i);
    }
    drop(tx);
    assert!(responses.message().await.unwrap().is_none());
}

#[tokio::test]
async fn many_concurrent_calls_share_one_connection() {
    // All 200 calls are in flight at once: the server holds each back until
    // every one has arrived.
    const CALLS: usize = 200;
    let gated = Arc::new(GatedEcho::new(CALLS));
    let server = start_with(|b| b.add_service(EchoServer::from_arc(gated.clone()))).await;
    let client = client(&server).await;
    let mut tasks = Vec::new();
    for i in 0..CALLS {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let r = c.unary(text(&i.to_string())).await.unwrap();
            assert_eq!(r.get_ref().text, i.to_string());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(gated.arrived.load(Ordering::SeqCst), CALLS);
    // The server saw them all come from one client address and port: one
    // TCP connection.
    let peers = gated.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 1, "connections seen by the server: {peers:?}");
    assert!(client.channel().is_connected());
}

/// The Echo service, with unary calls held back until `calls` of them have
/// arrived, so that all their responses leave the server in one burst. A
/// unary call with the text `marker` is answered once all the others have
/// been (or were cancelled).
struct GatedEcho {
    inner: EchoService,
    calls: usize,
    arrived: AtomicUsize,
    settled: AtomicUsize,
    /// True once every held-back call has arrived.
    all_arrived: tokio::sync::watch::Sender<bool>,
    /// True once every held-back call has been answered or cancelled.
    all_settled: tokio::sync::watch::Sender<bool>,
    /// The client addresses the calls came from: one per connection.
    peers: std::sync::Mutex<std::collections::HashSet<std::net::SocketAddr>>,
}

impl GatedEcho {
    fn new(calls: usize) -> GatedEcho {
        GatedEcho {
            inner: EchoService::default(),
            calls,
            arrived: AtomicUsize::new(0),
            settled: AtomicUsize::new(0),
            all_arrived: tokio::sync::watch::Sender::new(false),
            all_settled: tokio::sync::watch::Sender::new(false),
            peers: Default::default(),
        }
    }
}

/// Counts a held-back call as settled when its handler ends either way.
struct Settled<'a>(&'a GatedEcho);

impl Drop for Settled<'_> {
    fn drop(&mut self) {
        if self.0.settled.fetch_add(1, Ordering::SeqCst) + 1 == self.0.calls {
            self.0.all_settled.send_replace(true);
        }
    }
}

impl Echo for GatedEcho {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        if request.get_ref().text == "marker" {
            let _ = self.all_settled.subscribe().wait_for(|&all| all).await;
            return self.inner.unary(request).await;
        }
        let _settled = Settled(self);
        let peer = request.remote_addr().expect("a TCP peer address");
        self.peers.lock().unwrap().insert(peer);
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.calls {
            self.all_arrived.send_replace(true);
        }
        let _ = self.all_arrived.subscribe().wait_for(|&all| all).await;
        self.inner.unary(request).await
    }

    async fn client_stream(&self, request: Request<Streaming<EchoRequest>>) -> Result<Response<EchoResponse>, Status> {
        self.inner.client_stream(request).await
    }

    type ServerStreamStream = ResponseStream;

    async fn server_stream(&self, request: Request<EchoRequest>) -> Result<Response<ResponseStream>, Status> {
        self.inner.server_stream(request).await
    }

    type BidiStream = ResponseStream;

    async fn bidi(&self, request: Request<Streaming<EchoRequest>>) -> Result<Response<ResponseStream>, Status> {
        self.inner.bidi(request).await
    }
}

/// Ten thousand small responses waiting at once on one connection to be read
/// by their calls are legitimate load: the client must not take them for a
/// flood of small DATA frames and close its own connection with GOAWAY
/// `ENHANCE_YOUR_CALM`.
#[tokio::test]
async fn ten_thousand_concurrent_unary_calls_on_one_channel() {
    const CALLS: usize = 10_000;
    let gated = Arc::new(GatedEcho::new(CALLS));
    // Every call must be open on the server at once: past its default
    // limit of 200 streams, the client would queue them.
    let server = start_with(|b| {
        b.max_concurrent_streams(2 * CALLS as u32)
            .add_service(EchoServer::from_arc(gated.clone()))
    })
    .await;
    let client = client(&server).await;

    let mut calls = futures_util::stream::FuturesUnordered::new();
    for i in 0..CALLS {
        let c = &client;
        calls.push(async move { (i, c.unary(text(&i.to_string())).await) });
    }
    // Send every request, and stop polling the calls once the server has
    // them all: from here on their responses pile up in the connection.
    let mut all_arrived = gated.all_arrived.subscribe();
    tokio::select! {
        biased;
        _ = all_arrived.wait_for(|&all| all) => {}
        done = calls.next() => panic!("a call ended before all had arrived: {done:?}"),
    }
    // The marker's response comes after all the others: once it is here, the
    // connection has received every response, none of them read yet.
    let marker = client.unary(text("marker")).await;

    let mut ok = 0;
    let mut first_error = None;
    while let Some((i, result)) = calls.next().await {
        match result {
            Ok(resp) => {
                assert_eq!(resp.get_ref().text, i.to_string());
                ok += 1;
            }
            Err(status) => {
                first_error.get_or_insert(status);
            }
        }
    }
    assert_eq!(ok, CALLS, "first failure: {first_error:?}");
    assert!(marker.is_ok(), "{marker:?}");
    assert_eq!(gated.peers.lock().unwrap().len(), 1, "one connection");
    assert!(client.channel().is_connected());
}

#[tokio::test]
async fn unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = courier::Server::builder().add_service(EchoServer::new(EchoService::default()));
    let mut serve = Box::pin(server.serve_unix(path.clone(), async {
        let _ = rx.await;
    }));
    // The first poll binds the socket; then the server runs as a task.
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(serve.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the server stopped at once: {first:?}");
    assert!(path.exists(), "the first poll bound {}", path.display());
    let task = tokio::spawn(serve);
    let channel = Channel::connect(format!("unix:{}", path.display())).await.unwrap();
    let client = EchoClient::new(channel);
    assert_eq!(
        client.unary(text("over unix")).await.unwrap().get_ref().text,
        "over unix"
    );
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn several_services_and_unimplemented() {
    let server = start_with(|b| {
        b.add_service(EchoServer::new(EchoService::default()))
            .add_service(pb::other_server::OtherServer::new(OtherService))
    })
    .await;
    let channel = Channel::connect(server.url()).await.unwrap();
    let other = pb::other_client::OtherClient::new(channel.clone());
    assert_eq!(other.ping(text("x")).await.unwrap().get_ref().text, "pong x");
    assert_eq!(
        EchoClient::new(channel).unary(text("y")).await.unwrap().get_ref().text,
        "y"
    );

    // A server without the Other service.
    let only_echo = start_server().await;
    let other = pb::other_client::OtherClient::connect(only_echo.url()).await.unwrap();
    let err = other.ping(text("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("courier.test.Other"), "{err}");
}

#[tokio::test]
async fn every_status_code_round_trips() {
    let server = start_server().await;
    let client = client(&server).await;
    for code in Code::ALL.into_iter().skip(1) {
        let msg = format!("failed with {code}: ünïcödé % \n done");
        let req = EchoRequest {
            text: msg.clone(),
            fail_code: code as i32,
            ..Default::default()
        };
        let err = client.unary(req.clone()).await.unwrap_err();
        assert_eq!(err.code(), code);
        assert_eq!(err.message(), msg);
        // The same status through a stream.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(req).await.unwrap();
        let mut s = client
            .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let err = s.message().await.unwrap_err();
        assert_eq!(err.code(), code);
    }
}

#[tokio::test]
async fn metadata_both_ways() {
    let server = start_server().await;
    let client = client(&server).await;
    let mut req = Request::new(text("md"));
    req.metadata_mut().insert("echo-ascii", "value 1").unwrap();
    req.metadata_mut().insert_bin("echo-data-bin", &[0, 1, 2, 255]).unwrap();
    req.metadata_mut().append("trailer-tag", "t1").unwrap();
    req.metadata_mut().append("trailer-tag", "t2").unwrap();
    req.metadata_mut().insert_bin("trailer-raw-bin", b"\xde\xad").unwrap();
    let resp = client.unary(req).await.unwrap();
    assert_eq!(resp.metadata().get("echo-ascii"), Some("value 1"));
    assert_eq!(
        resp.metadata().get_bin("echo-data-bin").unwrap().unwrap(),
        [0, 1, 2, 255]
    );
    assert_eq!(resp.trailers().get_all("trailer-tag").collect::<Vec<_>>(), ["t1", "t2"]);
    assert_eq!(
        resp.trailers().get_bin("trailer-raw-bin").unwrap().unwrap(),
        b"\xde\xad"
    );
    // Protocol headers are not shown as metadata.
    assert!(!resp.metadata().contains_key("content-type"));
    assert!(!resp.trailers().contains_key("grpc-status"));

    // Server streaming carries headers and trailers too.
    let mut req = Request::new(EchoRequest { count: 1, ..text("s") });
    req.metadata_mut().insert("echo-k", "v").unwrap();
    req.metadata_mut().insert("trailer-k", "tv").unwrap();
    let resp = client.server_stream(req).await.unwrap();
    assert_eq!(resp.metadata().get("echo-k"), Some("v"));
    let mut stream = resp.into_inner();
    while stream.message().await.unwrap().is_some() {}
    assert_eq!(stream.trailers().unwrap().get("trailer-k"), Some("tv"));

    // Bidi: headers from the stream.
    let mut req = Request::new(tokio_stream::iter(vec![text("b")]));
    req.metadata_mut().insert("echo-b", "bv").unwrap();
    let mut stream = client.bidi(req).await.unwrap().into_inner();
    assert_eq!(stream.headers().await.unwrap().get("echo-b"), Some("bv"));
    assert_eq!(stream.message().await.unwrap().unwrap().text, "b");

    // A stream that ends before any message still sends the headers the
    // handler set, with OK or with an error.
    for fail_code in [0, Code::Aborted as i32] {
        let mut req = Request::new(EchoRequest {
            count: 0,
            fail_code,
            ..text("empty")
        });
        req.metadata_mut().insert("echo-empty", "ev").unwrap();
        req.metadata_mut().insert("trailer-empty", "tv").unwrap();
        let resp = client.server_stream(req).await.unwrap();
        assert_eq!(resp.metadata().get("echo-empty"), Some("ev"), "fail_code {fail_code}");
        let mut stream = resp.into_inner();
        match stream.message().await {
            Ok(None) => assert_eq!(stream.trailers().unwrap().get("trailer-empty"), Some("tv")),
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted);
                assert_eq!(status.metadata().get("trailer-empty"), Some("tv"));
            }
            Ok(Some(m)) => panic!("unexpected message {m:?}"),
        }
    }
}

#[tokio::test]
async fn reserved_metadata_cannot_be_set() {
    let mut req = Request::new(text("x"));
    for key in [
        "grpc-timeout",
        "grpc-status",
        "content-type",
        "te",
        ":path",
        "user-agent",
    ] {
        assert!(req.metadata_mut().insert(key, "1").is_err(), "{key}");
    }
}

#[tokio::test]
async fn rich_error_details() {
    struct Detailed;
    impl pb::other_server::Other for Detailed {
        async fn ping(&self, _: Request<EchoRequest>) -> Result<courier::Response<EchoResponse>, Status> {
            Err(Status::with_details(
                Code::InvalidArgument,
                "bad name",
                [
                    ErrorInfo {
                        reason: "NAME_EMPTY".into(),
                        domain: "test".into(),
                        ..Default::default()
                    }
                    .to_any(),
                    BadRequest {
                        field_violations: vec![FieldViolation {
                            field: "name".into(),
                            description: "empty".into(),
                        }],
                    }
                    .to_any(),
                ],
            ))
        }
    }
    let server = start_with(|b| b.add_service(pb::other_server::OtherServer::new(Detailed))).await;
    let client = pb::other_client::OtherClient::connect(server.url()).await.unwrap();
    let err = client.ping(text("")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.details().unwrap().len(), 2);
    assert_eq!(err.detail::<ErrorInfo>().unwrap().reason, "NAME_EMPTY");
    assert_eq!(err.detail::<BadRequest>().unwrap().field_violations[0].field, "name");
}

#[tokio::test]
async fn compression_each_encoding_both_ways() {
    for enc in courier::Encoding::ALL {
        let server = start_with(|b| {
            b.add_service(EchoServer::new(EchoService::default()))
                .send_compressed(enc)
        })
        .await;
        let channel = Channel::builder(server.url())
            .send_compressed(enc)
            .connect()
            .await
            .unwrap();
        let client = EchoClient::new(channel);
        let big = EchoRequest {
            payload: vec![b'z'; 100_000],
            ..text("compress me")
        };
        let resp = client.unary(big.clone()).await.unwrap();
        assert_eq!(resp.get_ref().payload.len(), 100_000, "{enc:?}");
        assert_eq!(resp.metadata().get(REQUEST_COMPRESSED), Some("true"), "{enc:?}");
        // Streaming both ways, compressed.
        let mut s = client
            .bidi(tokio_stream::iter(vec![big.clone(), big]))
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(m) = s.message().await.unwrap() {
            assert_eq!(m.payload.len(), 100_000);
            assert!(s.last_message_compressed(), "{enc:?}");
            n += 1;
        }
        assert_eq!(n, 2);
        // A call can turn compression off.
        let mut req = Request::new(text("plain"));
        req.set_compression(None);
        let resp = client.unary(req).await.unwrap();
        assert_eq!(resp.get_ref().text, "plain");
        assert_eq!(resp.metadata().get(REQUEST_COMPRESSED), None, "{enc:?}");
    }
}

#[tokio::test]
async fn compressed_messages_decode_with_an_unlimited_receive_size() {
    for enc in courier::Encoding::ALL {
        let server = start_with(|b| {
            b.add_service(EchoServer::new(EchoService::default()))
                .send_compressed(enc)
                .max_decoding_message_size(usize::MAX)
        })
        .await;
        let channel = Channel::builder(server.url())
            .send_compressed(enc)
            .max_decoding_message_size(usize::MAX)
            .connect()
            .await
            .unwrap();
        let client = EchoClient::new(channel);
        let big = EchoRequest {
            payload: vec![b'u'; 100_000],
            ..text("unlimited")
        };
        let resp = client.unary(big).await.unwrap();
        assert_eq!(resp.get_ref().text, "unlimited", "{enc:?}");
        assert_eq!(resp.get_ref().payload, vec![b'u'; 100_000], "{enc:?}");
        assert!(
            resp.extensions().get::<courier::MessageCompressed>().is_some(),
            "{enc:?}"
        );
    }
}

#[tokio::test]
async fn send_limit_fails_before_sending() {
    let server = start_server().await;
    let channel = Channel::builder(server.url())
        .max_encoding_message_size(1000)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let err = client
        .unary(EchoRequest {
            payload: vec![1; 2000],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(server.counters.started.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(client.unary(text("small")).await.unwrap().get_ref().text, "small");
}

#[tokio::test]
async fn oversized_response_is_refused_by_client() {
    let server = start_server().await;
    let channel = Channel::builder(server.url())
        .max_decoding_message_size(10_000)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let err = client
        .unary(EchoRequest {
            response_size: 20_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert_eq!(client.unary(text("after")).await.unwrap().get_ref().text, "after");
}

#[tokio::test]
async fn large_messages_with_any_http2_frame_size() {
    // 1 is raised to HTTP/2's 16 KiB minimum and u32::MAX lowered to its
    // 16 MiB - 1 maximum; 1 MiB frames carry a message in a few frames. The
    // two sides may also differ.
    for (server_frames, client_frames) in [(1, 1), (1 << 20, 1 << 20), (u32::MAX, 1), (1, u32::MAX)] {
        let server = start_with(move |b| {
            b.http2_max_frame_size(server_frames)
                .add_service(EchoServer::new(EchoService::default()))
        })
        .await;
        let channel = Channel::builder(server.url())
            .http2_max_frame_size(client_frames)
            .connect()
            .await
            .unwrap();
        let client = EchoClient::new(channel);
        let big = EchoRequest {
            payload: (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect(),
            ..text("big")
        };
        let resp = client.unary(big.clone()).await.unwrap();
        assert_eq!(
            resp.get_ref().payload,
            big.payload,
            "frames {server_frames}/{client_frames}"
        );
        let mut s = client
            .bidi(tokio_stream::iter(vec![big.clone(), big.clone()]))
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(m) = s.message().await.unwrap() {
            assert_eq!(m.payload, big.payload, "frames {server_frames}/{client_frames}");
            n += 1;
        }
        assert_eq!(n, 2);
    }
}
