//! Deadlines across hops: `Request::set_deadline`, and a server handler
//! passing its call's deadline and cancellation on to the calls it makes
//! (`Request::context`, `Request::with_parent`), over real loopback sockets.
//!
//! Three parties: the test is the upstream client; a middle server (the
//! `Other` service) makes calls on its callers' behalf to a downstream
//! server (the `Echo` service). Both servers report what they see through
//! channels, so the tests wait for events rather than for time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use courier::{CallContext, Code, Request, Response, Status};
use courier_tests::pb::other_client::OtherClient;
use courier_tests::pb::other_server::{Other, OtherServer};
use courier_tests::*;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};

/// What the downstream server saw.
#[derive(Debug)]
enum Downstream {
    /// A handler started, with this request text and what was left of the
    /// deadline its client sent (the `grpc-timeout`).
    Started(String, Option<Duration>),
    /// A handler that had not finished was dropped: its call was cancelled.
    Cancelled(String),
}

/// What the middle server saw.
#[derive(Debug)]
enum Middle {
    /// About to make its call: the incoming call's deadline, and the
    /// instant just before the outgoing call was made.
    Calling { incoming: Option<Instant>, before: Instant },
    /// A call made from a spawned task received its first streamed message.
    Streaming,
    /// A call made from a spawned task ended with this status.
    SpawnedCallEnded(Status),
}

/// Sends `Downstream::Cancelled` when dropped unfinished.
struct OnDrop(String, mpsc::UnboundedSender<Downstream>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.1.send(Downstream::Cancelled(std::mem::take(&mut self.0)));
    }
}

/// The downstream service: reports each call, answers those whose text is
/// `answer` and leaves the others waiting until they are cancelled.
#[derive(Clone)]
struct Recorder(mpsc::UnboundedSender<Downstream>);

impl Echo for Recorder {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let text = request.get_ref().text.clone();
        let _ = self.0.send(Downstream::Started(text.clone(), request.timeout()));
        if text == "answer" {
            return Ok(Response::new(EchoResponse {
                text,
                ..Default::default()
            }));
        }
        let _cancelled = OnDrop(text, self.0.clone());
        std::future::pending().await
    }

    type ServerStreamStream = ResponseStream;

    /// Sends one message, then waits until the call is cancelled.
    async fn server_stream(&self, request: Request<EchoRequest>) -> Result<Response<ResponseStream>, Status> {
        let text = request.get_ref().text.clone();
        let _ = self.0.send(Downstream::Started(text.clone(), request.timeout()));
        let guard = OnDrop(text.clone(), self.0.clone());
        let first = futures_util::stream::iter([Ok(EchoResponse {
            text,
            ..Default::default()
        })]);
        let rest = futures_util::stream::pending().map(move |item| {
            let _keep = &guard;
            item
        });
        Ok(Response::new(Box::pin(first.chain(rest))))
    }

    type BidiStream = ResponseStream;
}

/// The middle service. What its `Ping` does depends on the request text:
///
/// - `forward`: calls downstream with `answer`, with its context and a 10 s
///   timeout of its own, and answers with the result;
/// - `hang`: calls downstream with `hang`, with its context, in the handler;
/// - `spawn`: calls downstream with `hang` from a spawned task, with its
///   context, and waits forever;
/// - `spawn-then-return`: the same, but returns once `release` is notified;
/// - `spawn-stream`: like `spawn`, with a server-streaming call.
#[derive(Clone)]
struct Forwarder {
    downstream: EchoClient,
    events: mpsc::UnboundedSender<Middle>,
    release: Arc<Notify>,
}

impl Forwarder {
    /// Makes the downstream call from a task of its own, which reports how
    /// it ended.
    fn spawn_call(&self, ctx: &CallContext, streaming: bool) {
        let (downstream, events, ctx) = (self.downstream.clone(), self.events.clone(), ctx.clone());
        tokio::spawn(async move {
            let request = Request::new(text("hang")).with_parent(&ctx);
            let status = if streaming {
                match downstream.server_stream(request).await {
                    Err(status) => status,
                    Ok(response) => {
                        let mut stream = response.into_inner();
                        stream.message().await.expect("the first message").expect("one");
                        let _ = events.send(Middle::Streaming);
                        stream.message().await.expect_err("the stream ends with an error")
                    }
                }
            } else {
                downstream
                    .unary(request)
                    .await
                    .expect_err("the call never gets an answer")
            };
            let _ = events.send(Middle::SpawnedCallEnded(status));
        });
    }
}

impl Other for Forwarder {
    async fn ping(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let ctx = request.context();
        match request.get_ref().text.as_str() {
            "forward" => {
                let mut out = Request::new(text("answer")).with_parent(&ctx);
                out.set_timeout(Duration::from_secs(10));
                let before = Instant::now();
                let _ = self.events.send(Middle::Calling {
                    incoming: ctx.deadline(),
                    before,
                });
                self.downstream.unary(out).await
            }
            "hang" => {
                self.downstream
                    .unary(Request::new(text("hang")).with_parent(&ctx))
                    .await
            }
            "spawn" => {
                self.spawn_call(&ctx, false);
                std::future::pending().await
            }
            "spawn-then-return" => {
                self.spawn_call(&ctx, false);
                self.release.notified().await;
                Ok(Response::new(EchoResponse::default()))
            }
            "spawn-stream" => {
                self.spawn_call(&ctx, true);
                std::future::pending().await
            }
            other => Err(Status::invalid_argument(format!("unknown instruction {other:?}"))),
        }
    }
}

/// The three parties, connected.
struct Hops {
    upstream: OtherClient,
    middle_events: mpsc::UnboundedReceiver<Middle>,
    downstream_events: mpsc::UnboundedReceiver<Downstream>,
    release: Arc<Notify>,
    servers: (TestServer, TestServer),
}

async fn hops() -> Hops {
    let (down_tx, downstream_events) = mpsc::unbounded_channel();
    let downstream = start_with(|b| b.add_service(EchoServer::new(Recorder(down_tx)))).await;
    let (middle_tx, middle_events) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let forwarder = Forwarder {
        downstream: EchoClient::connect(downstream.url()).await.unwrap(),
        events: middle_tx,
        release: release.clone(),
    };
    let middle = start_with(|b| b.add_service(OtherServer::new(forwarder))).await;
    Hops {
        upstream: OtherClient::connect(middle.url()).await.unwrap(),
        middle_events,
        downstream_events,
        release,
        servers: (downstream, middle),
    }
}

/// The output of `fut`; fails the test after [`WAIT_LIMIT`], so a call that
/// should have ended and did not is a failure, not a hang.
/// An upstream call of `message`, made on a task of its own, and the handle
/// that cancels it.
fn cancellable_upstream_call(
    hops: &Hops,
    message: &str,
) -> (
    courier::client::CancelHandle,
    tokio::task::JoinHandle<Result<Response<EchoResponse>, Status>>,
) {
    let mut req = Request::new(text(message));
    let cancel = req.cancel_handle();
    let upstream = hops.upstream.clone();
    (cancel, tokio::spawn(async move { upstream.ping(req).await }))
}

/// Cancels an upstream call and checks that it ends CANCELLED.
async fn cancel_upstream_call(
    cancel: courier::client::CancelHandle,
    call: tokio::task::JoinHandle<Result<Response<EchoResponse>, Status>>,
) {
    cancel.cancel();
    let err = within(call, "the upstream call ends").await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::Cancelled, "{err}");
}

async fn within<F: std::future::Future>(fut: F, what: &str) -> F::Output {
    tokio::time::timeout(WAIT_LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {WAIT_LIMIT:?}"))
}

/// The next event on `rx`; fails the test after [`WAIT_LIMIT`].
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match tokio::time::timeout(WAIT_LIMIT, rx.recv()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("{what}: the channel closed"),
        Err(_) => panic!("{what}: not within {WAIT_LIMIT:?}"),
    }
}

async fn downstream_started(hops: &mut Hops) -> (String, Option<Duration>) {
    match next(&mut hops.downstream_events, "a downstream handler starts").await {
        Downstream::Started(text, timeout) => (text, timeout),
        other => panic!("expected a downstream call to start, got {other:?}"),
    }
}

async fn downstream_cancelled(hops: &mut Hops) -> String {
    match next(&mut hops.downstream_events, "the downstream handler is cancelled").await {
        Downstream::Cancelled(text) => text,
        other => panic!("expected the downstream call to be cancelled, got {other:?}"),
    }
}

async fn spawned_call_ended(hops: &mut Hops) -> Status {
    match next(&mut hops.middle_events, "the spawned call ends").await {
        Middle::SpawnedCallEnded(status) => status,
        other => panic!("expected the spawned call to end, got {other:?}"),
    }
}

/// The message of the CANCELLED a call ends with when the server call it
/// was made for ends first.
const PARENT_ENDED: &str = "the server call it was made for has ended";

/// Waits for the middle server's spawned call to end, and checks that it
/// was cancelled because its parent, the server call, ended.
async fn spawned_call_cancelled_with_its_parent(hops: &mut Hops) {
    let status = spawned_call_ended(hops).await;
    assert_eq!(status.code(), Code::Cancelled, "{status}");
    assert!(status.message().contains(PARENT_ENDED), "{status}");
}

#[tokio::test]
async fn the_downstream_deadline_is_no_later_than_the_incoming_one() {
    let mut hops = hops().await;
    let mut req = Request::new(text("forward"));
    req.set_timeout(Duration::from_millis(300));
    let resp = within(hops.upstream.ping(req), "the forwarded call ends")
        .await
        .expect("the forwarded call is answered");
    assert_eq!(resp.get_ref().text, "answer");

    let Middle::Calling { incoming, before } = next(&mut hops.middle_events, "the middle calls").await else {
        panic!("expected the middle's call");
    };
    let incoming = incoming.expect("the middle saw the upstream deadline");
    let (_, sent) = downstream_started(&mut hops).await;
    let sent = sent.expect("the downstream call carries a grpc-timeout although only its parent had a deadline");
    // What was left of the incoming deadline when the outgoing call was
    // made bounds the grpc-timeout it sent (rounded up, to the microsecond
    // at this size), although that call asked for 10 s of its own.
    let left = incoming.saturating_duration_since(before);
    assert!(
        sent <= left + Duration::from_micros(1),
        "downstream got {sent:?}, the incoming call had {left:?} left"
    );
    assert!(sent <= Duration::from_millis(300), "downstream got {sent:?}");
}

/// A call the handler awaits itself is cancelled when the server drops the
/// handler; the spawned-task tests below need the context's cancellation.
#[tokio::test]
async fn cancelling_the_upstream_call_cancels_the_downstream_call() {
    let mut hops = hops().await;
    let (cancel, call) = cancellable_upstream_call(&hops, "hang");
    let (text, timeout) = downstream_started(&mut hops).await;
    assert_eq!((text.as_str(), timeout), ("hang", None), "no deadline anywhere");
    cancel_upstream_call(cancel, call).await;
    assert_eq!(downstream_cancelled(&mut hops).await, "hang");
}

#[tokio::test]
async fn a_call_from_a_spawned_task_is_cancelled_with_the_upstream_call() {
    let mut hops = hops().await;
    let (cancel, call) = cancellable_upstream_call(&hops, "spawn");
    downstream_started(&mut hops).await;
    cancel_upstream_call(cancel, call).await;
    // Nothing dropped the spawned call: only its parent's end stopped it.
    spawned_call_cancelled_with_its_parent(&mut hops).await;
    assert_eq!(downstream_cancelled(&mut hops).await, "hang");
}

#[tokio::test]
async fn a_call_from_a_spawned_task_is_cancelled_when_the_handler_returns() {
    let mut hops = hops().await;
    let upstream = hops.upstream.clone();
    let call = tokio::spawn(async move { upstream.ping(text("spawn-then-return")).await });
    downstream_started(&mut hops).await;
    hops.release.notify_one();
    within(call, "the upstream call ends")
        .await
        .unwrap()
        .expect("the middle answers");
    spawned_call_cancelled_with_its_parent(&mut hops).await;
    assert_eq!(downstream_cancelled(&mut hops).await, "hang");
}

#[tokio::test]
async fn a_response_stream_from_a_spawned_task_ends_with_the_upstream_call() {
    let mut hops = hops().await;
    let (cancel, call) = cancellable_upstream_call(&hops, "spawn-stream");
    let event = next(&mut hops.middle_events, "the spawned call streams").await;
    assert!(matches!(event, Middle::Streaming), "{event:?}");
    cancel_upstream_call(cancel, call).await;
    spawned_call_cancelled_with_its_parent(&mut hops).await;
    downstream_started(&mut hops).await;
    assert_eq!(downstream_cancelled(&mut hops).await, "hang");
}

#[tokio::test]
async fn an_upstream_deadline_ends_a_call_from_a_spawned_task_with_its_parent() {
    let mut hops = hops().await;
    let mut req = Request::new(text("spawn"));
    // Long enough for the call to reach the handler on a loaded machine.
    req.set_timeout(Duration::from_secs(1));
    let err = within(hops.upstream.ping(req), "the upstream call ends")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    // The spawned call had no deadline of its own: its parent's applied, and
    // it ended with its parent. Which status it sees is a race by
    // construction, as in grpc-go: the client resets the upstream call at
    // its own deadline, which the server reaches a network hop later than
    // its deadline timer (the timeout counted from when the request
    // arrived) fires. The timer first: DEADLINE_EXCEEDED; the reset first:
    // the parent ended before its deadline, so CANCELLED for that reason,
    // never for another.
    let status = spawned_call_ended(&mut hops).await;
    match status.code() {
        Code::DeadlineExceeded => {}
        Code::Cancelled => assert!(status.message().contains(PARENT_ENDED), "{status}"),
        _ => panic!("the spawned call ended with {status}, not its parent's deadline or end"),
    }
}

#[tokio::test]
async fn set_deadline_ends_a_call_with_deadline_exceeded_and_is_sent_as_grpc_timeout() {
    let mut hops = hops().await;
    let downstream = EchoClient::connect(hops.servers.0.url()).await.unwrap();
    let mut req = Request::new(text("hang"));
    // Long enough for the call to reach the handler on a loaded machine.
    req.set_deadline(Instant::now() + Duration::from_secs(1));
    let err = within(downstream.unary(req), "the call ends").await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    let (_, sent) = downstream_started(&mut hops).await;
    let sent = sent.expect("the deadline was sent as grpc-timeout");
    assert!(sent <= Duration::from_secs(1), "the server got {sent:?}");
    assert_eq!(downstream_cancelled(&mut hops).await, "hang");
}

#[tokio::test]
async fn the_earlier_of_timeout_and_deadline_applies() {
    let mut hops = hops().await;
    let downstream = EchoClient::connect(hops.servers.0.url()).await.unwrap();
    // Long enough for each call to reach the handler on a loaded machine.
    let short = Duration::from_secs(1);
    let long = Duration::from_secs(60);
    // The deadline is earlier; then the timeout; then a timeout too long
    // for grpc-timeout, which means none, beside a deadline.
    let cases: [(&str, Duration, Duration); 3] = [
        ("the deadline", long, short),
        ("the timeout", short, long),
        ("the deadline beside Duration::MAX", Duration::MAX, short),
    ];
    for (earlier, timeout, deadline_in) in cases {
        let mut req = Request::new(text("hang"));
        req.set_timeout(timeout);
        req.set_deadline(Instant::now() + deadline_in);
        let err = within(downstream.unary(req), earlier).await.unwrap_err();
        assert_eq!(err.code(), Code::DeadlineExceeded, "{earlier}: {err}");
        let (_, sent) = downstream_started(&mut hops).await;
        let sent = sent.unwrap_or_else(|| panic!("{earlier}: no grpc-timeout"));
        assert!(sent <= short, "{earlier} applies, yet the server got {sent:?}");
        downstream_cancelled(&mut hops).await;
    }
}

#[tokio::test]
async fn a_deadline_already_past_fails_the_call_with_deadline_exceeded() {
    let hops = hops().await;
    let downstream = EchoClient::connect(hops.servers.0.url()).await.unwrap();
    let mut req = Request::new(text("hang"));
    req.set_deadline(Instant::now());
    let err = within(downstream.unary(req), "the call ends").await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
}
