//! Stats handlers over real sockets: what a handler on the channel and one
//! on the server see of each kind of call, of a failed call, of a retried
//! call, of a cancelled one, and of methods not generated from a `.proto`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::client::MethodPath;
use courier::client::service_config::{HedgingPolicy, MethodConfig, MethodName, ServiceConfig};
use courier::codec::ProstCodec;
use courier::interceptor::CallHead;
use courier::stats::{AttemptInfo, CallEnd, CallInfo, CallStats, MessageTotals, Side, StatsHandler};
use courier::{Channel, Code, Metadata, PreviousRpcAttempts, Request, Status};
use courier_tests::{
    EchoClient, EchoRequest, EchoResponse, TestServer, echo_with, fail_first_attempt, guard, retry_echo_on_unavailable,
    start_with_counters, text,
};
use futures_util::StreamExt as _;
use tokio::sync::Notify;

/// What a handler saw of one call.
#[derive(Clone, Debug)]
struct Seen {
    side: Side,
    method: String,
    registered: bool,
    target: Option<String>,
    /// Each attempt: its `previous_attempts`, whether transparent, and its
    /// end (code, sent, received) once ended.
    attempts: Vec<(u32, bool, Option<AttemptEnd>)>,
    end: Option<Ended>,
}

/// How an attempt ended: its code, and the messages sent and received.
type AttemptEnd = (Code, MessageTotals, MessageTotals);

#[derive(Clone, Debug)]
struct Ended {
    code: Code,
    message: String,
    sent: MessageTotals,
    received: MessageTotals,
    headers: Vec<String>,
    trailers: Vec<String>,
    elapsed: Duration,
}

/// Records every call, and wakes waiters when one ends.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Arc<Mutex<Seen>>>>>,
    ended: Arc<Notify>,
}

struct OneCall {
    seen: Arc<Mutex<Seen>>,
    ended: Arc<Notify>,
}

fn keys(md: &Metadata) -> Vec<String> {
    let mut keys: Vec<String> = md.iter().map(|(k, _)| k.to_string()).collect();
    keys.sort();
    keys
}

impl StatsHandler for Recorder {
    fn call_started(&self, call: &CallInfo, _metadata: &mut Metadata) -> Option<Box<dyn CallStats>> {
        let seen = Arc::new(Mutex::new(Seen {
            side: call.side(),
            method: call.full_method().to_string(),
            registered: call.is_registered(),
            target: call.target().map(str::to_string),
            attempts: Vec::new(),
            end: None,
        }));
        self.calls.lock().unwrap().push(seen.clone());
        Some(Box::new(OneCall {
            seen,
            ended: self.ended.clone(),
        }))
    }
}

impl CallStats for OneCall {
    fn attempt_started(&self, _call: &CallInfo, attempt: &AttemptInfo) {
        let mut seen = self.seen.lock().unwrap();
        seen.attempts
            .push((attempt.previous_attempts(), attempt.is_transparent_retry(), None));
    }

    fn attempt_ended(&self, _call: &CallInfo, attempt: &AttemptInfo, end: &CallEnd<'_>) {
        let mut seen = self.seen.lock().unwrap();
        let slot = seen
            .attempts
            .iter_mut()
            .find(|a| a.0 == attempt.previous_attempts() && a.2.is_none())
            .expect("an attempt ends after it started, once");
        slot.2 = Some((end.status().code(), end.sent(), end.received()));
    }

    fn call_ended(&self, call: &CallInfo, end: &CallEnd<'_>) {
        let mut seen = self.seen.lock().unwrap();
        assert!(seen.end.is_none(), "a call ends once");
        seen.end = Some(Ended {
            code: end.status().code(),
            message: end.status().message().to_string(),
            sent: end.sent(),
            received: end.received(),
            headers: end.headers().map(keys).unwrap_or_default(),
            trailers: keys(end.trailers()),
            elapsed: end.since(call.started()),
        });
        drop(seen);
        self.ended.notify_waiters();
    }
}

impl Recorder {
    /// Waits until `n` calls have ended, and returns them.
    async fn ended(&self, n: usize) -> Vec<Seen> {
        guard(&format!("{n} calls ended"), async {
            loop {
                let notified = self.ended.notified();
                let done: Vec<Seen> = self
                    .calls
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|c| c.lock().unwrap().clone())
                    .filter(|c| c.end.is_some())
                    .collect();
                if done.len() >= n {
                    return done;
                }
                notified.await;
            }
        })
        .await
    }

    /// The one ended call on `side`.
    async fn only(&self, side: Side) -> Seen {
        let calls: Vec<Seen> = self.ended(1).await.into_iter().filter(|c| c.side == side).collect();
        assert_eq!(calls.len(), 1, "{side:?}: {calls:#?}");
        calls.into_iter().next().unwrap()
    }
}

/// A server and a channel to it, each with its own recorder. The server
/// fails the first attempt of a call with `fail-first` metadata, and holds
/// that of a call with `hold-first` until the client gives up on it.
async fn pair(
    channel: impl FnOnce(courier::client::ChannelBuilder) -> courier::client::ChannelBuilder,
) -> (TestServer, Channel, Recorder, Recorder) {
    let (client, server) = (Recorder::default(), Recorder::default());
    let on_server = server.clone();
    let srv = start_with_counters(move |b, counters| {
        b.stats_handler(on_server)
            .interceptor(fail_first_attempt)
            .interceptor(HoldFirstAttempt)
            .add_service(echo_with(counters))
    })
    .await;
    let ch = channel(Channel::builder(srv.url()).stats_handler(client.clone()))
        .connect()
        .await
        .unwrap();
    (srv, ch, client, server)
}

/// The bytes of `message` on the wire, without the gRPC prefix.
fn size(message: &impl prost::Message) -> u64 {
    message.encoded_len() as u64
}

fn totals(messages: u64, bytes: u64) -> MessageTotals {
    MessageTotals { messages, bytes }
}

#[tokio::test]
async fn a_unary_call_reports_its_status_sizes_and_metadata_on_both_sides() {
    let (srv, ch, client, server) = pair(|b| b).await;
    let request = EchoRequest {
        text: "sizes".into(),
        payload: vec![1; 300],
        ..Default::default()
    };
    let mut req = Request::new(request.clone());
    req.metadata_mut().insert("echo-a", "1").unwrap();
    req.metadata_mut().insert("trailer-b", "2").unwrap();
    let response = EchoClient::new(ch.clone()).unary(req).await.unwrap().into_inner();
    let (req_size, resp_size) = (size(&request), size(&response));

    let c = client.only(Side::Client).await;
    assert_eq!(c.method, "courier.test.Echo/Unary");
    assert!(c.registered, "a generated client's method is registered");
    assert_eq!(c.target.as_deref(), Some(format!("dns:///{}", srv.addr).as_str()));
    let end = c.end.unwrap();
    assert_eq!(end.code, Code::Ok);
    assert_eq!((end.sent, end.received), (totals(1, req_size), totals(1, resp_size)));
    assert!(end.headers.contains(&"echo-a".to_string()), "{:?}", end.headers);
    assert!(end.trailers.contains(&"trailer-b".to_string()), "{:?}", end.trailers);
    assert_eq!(c.attempts.len(), 1, "{:?}", c.attempts);
    assert_eq!(c.attempts[0].0, 0);
    assert_eq!(c.attempts[0].2.map(|a| a.0), Some(Code::Ok));

    let s = server.only(Side::Server).await;
    assert_eq!(
        (s.method.as_str(), s.registered, s.target),
        ("courier.test.Echo/Unary", true, None)
    );
    assert!(s.attempts.is_empty(), "a server call has no attempts");
    let send = s.end.unwrap();
    assert_eq!(send.code, Code::Ok);
    assert_eq!((send.received, send.sent), (totals(1, req_size), totals(1, resp_size)));
    assert!(send.headers.contains(&"echo-a".to_string()), "{:?}", send.headers);
    assert!(send.trailers.contains(&"trailer-b".to_string()), "{:?}", send.trailers);
    assert!(
        send.elapsed <= end.elapsed,
        "the server's part of a call is within the client's"
    );
}

#[tokio::test]
async fn streaming_calls_count_every_message_each_way() {
    let (_srv, ch, client, server) = pair(|b| b).await;
    let echo = EchoClient::new(ch);

    let requests: Vec<EchoRequest> = (0..3).map(|i| text(&format!("c{i}"))).collect();
    let sent: u64 = requests.iter().map(size).sum();
    let response = echo
        .client_stream(Request::new(tokio_stream::iter(requests)))
        .await
        .unwrap()
        .into_inner();
    let c = client.ended(1).await.remove(0);
    let end = c.end.unwrap();
    assert_eq!(
        (end.code, end.sent, end.received),
        (Code::Ok, totals(3, sent), totals(1, size(&response)))
    );

    let ask = EchoRequest {
        text: "s".into(),
        count: 4,
        ..Default::default()
    };
    let mut stream = echo
        .server_stream(Request::new(ask.clone()))
        .await
        .unwrap()
        .into_inner();
    let mut received = 0;
    while let Some(message) = stream.next().await {
        received += size(&message.unwrap());
    }
    let calls = client.ended(2).await;
    let end = calls[1].end.clone().unwrap();
    assert_eq!(calls[1].method, "courier.test.Echo/ServerStream");
    assert_eq!(
        (end.code, end.sent, end.received),
        (Code::Ok, totals(1, size(&ask)), totals(4, received))
    );

    let requests: Vec<EchoRequest> = (0..2).map(|i| text(&format!("b{i}"))).collect();
    let sent: u64 = requests.iter().map(size).sum();
    let mut stream = echo
        .bidi(Request::new(tokio_stream::iter(requests)))
        .await
        .unwrap()
        .into_inner();
    let mut received = (0, 0);
    while let Some(message) = stream.next().await {
        received = (received.0 + 1, received.1 + size(&message.unwrap()));
    }
    let calls = client.ended(3).await;
    let end = calls[2].end.clone().unwrap();
    assert_eq!(calls[2].method, "courier.test.Echo/Bidi");
    assert_eq!(
        (end.code, end.sent, end.received),
        (Code::Ok, totals(2, sent), totals(received.0, received.1))
    );

    // The server saw the same messages the other way round.
    let on_server = server.ended(3).await;
    for c in client.ended(3).await {
        let s = on_server
            .iter()
            .find(|s| s.method == c.method)
            .expect("the server saw the call");
        let (c_end, s_end) = (c.end.unwrap(), s.end.clone().unwrap());
        assert_eq!(
            (s_end.received, s_end.sent),
            (c_end.sent, c_end.received),
            "{}",
            c.method
        );
    }
}

#[tokio::test]
async fn a_failed_call_reports_its_status_on_both_sides() {
    let (_srv, ch, client, server) = pair(|b| b).await;
    let request = EchoRequest {
        text: "no such thing".into(),
        fail_code: Code::NotFound as i32,
        ..Default::default()
    };
    let err = EchoClient::new(ch).unary(Request::new(request)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let c = client.only(Side::Client).await;
    let end = c.end.unwrap();
    assert_eq!((end.code, end.message.as_str()), (Code::NotFound, "no such thing"));
    assert_eq!(end.received, totals(0, 0));
    assert_eq!(c.attempts.len(), 1);
    assert_eq!(c.attempts[0].2.map(|a| a.0), Some(Code::NotFound));
    let s = server.only(Side::Server).await;
    assert_eq!(s.end.unwrap().code, Code::NotFound);
}

#[tokio::test]
async fn a_retried_call_has_two_attempts_and_one_end() {
    let config = retry_echo_on_unavailable();
    let (_srv, ch, client, server) = pair(|b| b.service_config(config)).await;
    let mut req = Request::new(text("flaky"));
    req.metadata_mut().insert("fail-first", "1").unwrap();
    EchoClient::new(ch).unary(req).await.unwrap();

    let c = client.only(Side::Client).await;
    assert_eq!(c.end.as_ref().unwrap().code, Code::Ok);
    let attempts: Vec<_> = c.attempts.iter().map(|a| (a.0, a.1, a.2.map(|e| e.0))).collect();
    assert_eq!(
        attempts,
        [(0, false, Some(Code::Unavailable)), (1, false, Some(Code::Ok))],
        "one attempt refused by the server, then one that succeeded"
    );
    // Both attempts carried the one request message.
    for a in &c.attempts {
        assert_eq!(a.2.unwrap().1.messages, 1);
    }
    // On the server, each attempt is a call.
    let mut codes: Vec<Code> = server
        .ended(2)
        .await
        .iter()
        .map(|s| s.end.as_ref().unwrap().code)
        .collect();
    codes.sort_by_key(|c| *c as i32);
    assert_eq!(codes, [Code::Ok, Code::Unavailable]);
}

#[tokio::test]
async fn methods_not_generated_from_a_proto_are_not_registered() {
    let (_srv, ch, client, server) = pair(|b| b).await;
    // A path made at run time, as a CLI makes it, for a method that exists.
    let path = MethodPath::parse("/courier.test.Echo/Unary").unwrap();
    let codec = ProstCodec::<EchoRequest, EchoResponse>::new();
    ch.unary(Request::new(text("dynamic")), path, codec).await.unwrap();
    let c = client.only(Side::Client).await;
    assert!(!c.registered, "a parsed path is not registered");
    assert_eq!(c.method, "courier.test.Echo/Unary");
    assert!(server.only(Side::Server).await.registered, "the server has the method");

    // A method the server does not have.
    let path = MethodPath::parse("/courier.test.Echo/Nope").unwrap();
    let codec = ProstCodec::<EchoRequest, EchoResponse>::new();
    let err = ch.unary(Request::new(text("nope")), path, codec).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let calls = server.ended(2).await;
    let nope = calls
        .iter()
        .find(|s| s.method.ends_with("/Nope"))
        .expect("the server saw it");
    assert!(!nope.registered, "an unknown method is not registered on the server");
    assert_eq!(nope.end.as_ref().unwrap().code, Code::Unimplemented);
}

#[tokio::test]
async fn a_stream_dropped_before_its_end_ends_as_cancelled_on_both_sides() {
    let (_srv, ch, client, server) = pair(|b| b).await;
    let ask = EchoRequest {
        text: "slow".into(),
        count: 1000,
        sleep_ms: 5,
        ..Default::default()
    };
    let mut stream = EchoClient::new(ch)
        .server_stream(Request::new(ask))
        .await
        .unwrap()
        .into_inner();
    stream.next().await.unwrap().unwrap();
    drop(stream);

    let c = client.only(Side::Client).await;
    let end = c.end.unwrap();
    assert_eq!(end.code, Code::Cancelled, "{}", end.message);
    assert!(end.received.messages >= 1);
    let s = server.only(Side::Server).await;
    assert_eq!(s.end.unwrap().code, Code::Cancelled);
}

#[tokio::test]
async fn a_handler_may_leave_calls_it_does_not_want() {
    struct Nothing;
    impl StatsHandler for Nothing {
        fn call_started(&self, _: &CallInfo, _: &mut Metadata) -> Option<Box<dyn CallStats>> {
            None
        }
    }
    let recorder = Recorder::default();
    let srv = start_with_counters(|b, counters| b.add_service(echo_with(counters))).await;
    let ch = Channel::builder(srv.url())
        .stats_handler(Nothing)
        .stats_handler(recorder.clone())
        .connect()
        .await
        .unwrap();
    EchoClient::new(ch).unary(Request::new(text("x"))).await.unwrap();
    let c = recorder.only(Side::Client).await;
    assert_eq!(c.end.unwrap().code, Code::Ok, "the second handler still sees the call");
}

/// Holds the first attempt of a call whose metadata has `hold-first` until
/// the client gives up on it; later attempts go through.
struct HoldFirstAttempt;

impl courier::interceptor::ServerInterceptor for HoldFirstAttempt {
    async fn intercept(&self, head: CallHead) -> Result<CallHead, Status> {
        let hedge = head.extensions().get::<PreviousRpcAttempts>().is_some();
        if head.metadata().get("hold-first").is_some() && !hedge {
            std::future::pending::<()>().await;
        }
        Ok(head)
    }
}

#[tokio::test]
async fn a_hedged_call_ends_the_attempt_that_lost_as_cancelled() {
    let config = ServiceConfig::new().method(
        MethodConfig::new([MethodName::service("courier.test.Echo")]).hedging(HedgingPolicy::new(
            2,
            Duration::from_millis(20),
            [],
        )),
    );
    let (_srv, ch, client, server) = pair(|b| b.service_config(config)).await;
    let mut req = Request::new(text("hedged"));
    req.metadata_mut().insert("hold-first", "1").unwrap();
    EchoClient::new(ch).unary(req).await.unwrap();

    let c = client.only(Side::Client).await;
    assert_eq!(c.end.as_ref().unwrap().code, Code::Ok);
    let mut attempts: Vec<_> = c.attempts.iter().map(|a| (a.0, a.2.map(|e| e.0))).collect();
    attempts.sort_by_key(|a| a.0);
    assert_eq!(
        attempts,
        [(0, Some(Code::Cancelled)), (1, Some(Code::Ok))],
        "the held first attempt lost to the hedge"
    );
    // The server saw both: the hedge answered, the first was cancelled.
    let mut codes: Vec<Code> = server
        .ended(2)
        .await
        .iter()
        .map(|s| s.end.as_ref().unwrap().code)
        .collect();
    codes.sort_by_key(|c| *c as i32);
    assert_eq!(codes, [Code::Ok, Code::Cancelled]);
}
