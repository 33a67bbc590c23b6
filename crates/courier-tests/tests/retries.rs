//! Retries and hedging (gRFC A6) over real sockets: a backend that fails
//! each call until its Nth attempt, and a client channel whose service
//! config retries or hedges.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::client::balancer::Policy;
use courier::client::service_config::{
    HedgingPolicy, MethodConfig, MethodName, RetryPolicy, RetryThrottling, ServiceConfig,
};
use courier::status::RetryPushback;
use courier::{Channel, Code, PreviousRpcAttempts, Request, Response, Status, Streaming};
use courier_tests::pb::echo_server::EchoServer;
use courier_tests::{
    EchoClient, EchoRequest, EchoResponse, Gate, ResponseStream, WAIT_LIMIT, async_stream, start_with, text,
};
use tokio::sync::Notify;

/// What the flaky backend saw: for each call (named by its request's
/// `text`), the `grpc-previous-rpc-attempts` of each attempt, 0 for none.
#[derive(Default)]
struct Seen {
    attempts: Mutex<HashMap<String, Vec<u32>>>,
    changed: Notify,
}

impl Seen {
    /// Records an attempt of call `id`; returns how many it has had.
    fn record<T>(&self, id: &str, request: &Request<T>) -> u32 {
        self.record_previous(id, previous_attempts(request))
    }

    fn record_previous(&self, id: &str, previous: u32) -> u32 {
        let mut all = self.attempts.lock().unwrap();
        let list = all.entry(id.to_string()).or_default();
        list.push(previous);
        let n = list.len() as u32;
        drop(all);
        self.changed.notify_waiters();
        n
    }

    fn of(&self, id: &str) -> Vec<u32> {
        self.attempts.lock().unwrap().get(id).cloned().unwrap_or_default()
    }
}

fn previous_attempts<T>(request: &Request<T>) -> u32 {
    request.extensions().get::<PreviousRpcAttempts>().map_or(0, |p| p.0)
}

/// Fails each call's first `count` attempts with `fail_code` (UNAVAILABLE
/// if 0), with the pushback its `x-pushback-ms` metadata asks for, then
/// answers; its response's `index` is the attempt's
/// `grpc-previous-rpc-attempts`.
#[derive(Clone, Default)]
struct Flaky(Arc<Seen>);

fn failure<T>(request: &Request<T>, msg: &EchoRequest) -> Status {
    let code = if msg.fail_code == 0 {
        Code::Unavailable
    } else {
        Code::from_i32(msg.fail_code)
    };
    let status = Status::new(code, format!("attempt failed as asked ({})", msg.text));
    match request.metadata().get("x-pushback-ms") {
        Some(ms) => status.with_retry_pushback(match ms.parse::<i64>() {
            Ok(ms) if ms >= 0 => RetryPushback::After(Duration::from_millis(ms as u64)),
            _ => RetryPushback::Stop,
        }),
        None => status,
    }
}

impl courier_tests::Echo for Flaky {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let msg = request.get_ref().clone();
        let n = self.0.record(&msg.text, &request);
        if n <= msg.count {
            return Err(failure(&request, &msg));
        }
        let previous = previous_attempts(&request);
        Ok(Response::new(EchoResponse {
            text: msg.text,
            index: previous,
            ..Default::default()
        }))
    }

    async fn client_stream(&self, request: Request<Streaming<EchoRequest>>) -> Result<Response<EchoResponse>, Status> {
        let previous = previous_attempts(&request);
        let (_, _, mut stream) = request.into_parts();
        let first = stream.message().await?.expect("a first message");
        // The attempt is recorded under the first message's text.
        let n = self.0.record_previous(&first.text, previous);
        if n <= first.count {
            // Fails with the rest of the request still on its way.
            return Err(failure(&Request::new(()), &first));
        }
        let mut texts = vec![first.text];
        while let Some(msg) = stream.message().await? {
            texts.push(msg.text);
        }
        Ok(Response::new(EchoResponse {
            index: texts.len() as u32,
            text: texts.join(","),
            ..Default::default()
        }))
    }

    type ServerStreamStream = ResponseStream;

    async fn server_stream(&self, request: Request<EchoRequest>) -> Result<Response<ResponseStream>, Status> {
        let msg = request.get_ref().clone();
        let n = self.0.record(&msg.text, &request);
        if n <= msg.count {
            return Err(failure(&request, &msg));
        }
        // One message, then UNAVAILABLE: the call committed with the
        // message's headers, so the failure must not be retried.
        Ok(Response::new(async_stream(move |tx| async move {
            let _ = tx
                .send(Ok(EchoResponse {
                    text: msg.text,
                    ..Default::default()
                }))
                .await;
            let _ = tx
                .send(Err(Status::unavailable("failed after the first message")))
                .await;
        })))
    }

    type BidiStream = ResponseStream;

    async fn bidi(&self, request: Request<Streaming<EchoRequest>>) -> Result<Response<ResponseStream>, Status> {
        let previous = previous_attempts(&request);
        let mut input = request.into_inner();
        let first = input.message().await?.expect("a first message");
        let n = self.0.record_previous(&first.text, previous);
        if n <= first.count {
            return Err(failure(&Request::new(()), &first));
        }
        // Echoes each message's text, the first's included.
        Ok(Response::new(async_stream(move |tx| async move {
            let _ = tx
                .send(Ok(EchoResponse {
                    text: first.text,
                    ..Default::default()
                }))
                .await;
            while let Ok(Some(msg)) = input.message().await {
                if tx
                    .send(Ok(EchoResponse {
                        text: msg.text,
                        ..Default::default()
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })))
    }
}

fn retry_policy(max_attempts: u32, initial: Duration, codes: impl IntoIterator<Item = Code>) -> RetryPolicy {
    RetryPolicy::new(
        max_attempts,
        initial,
        initial.max(Duration::from_millis(10)),
        2.0,
        codes,
    )
}

fn echo_config(method: MethodConfig) -> ServiceConfig {
    ServiceConfig::new().method(method)
}

fn retrying(max_attempts: u32) -> ServiceConfig {
    echo_config(
        MethodConfig::new([MethodName::service("courier.test.Echo")]).retry(retry_policy(
            max_attempts,
            Duration::from_millis(1),
            [Code::Unavailable],
        )),
    )
}

async fn flaky_server() -> (courier_tests::TestServer, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let service = Flaky(seen.clone());
    let server = start_with(move |b| b.add_service(EchoServer::new(service))).await;
    (server, seen)
}

async fn client(server: &courier_tests::TestServer, config: ServiceConfig) -> EchoClient {
    let channel = Channel::builder(server.url())
        .service_config(config)
        .connect()
        .await
        .unwrap();
    EchoClient::new(channel)
}

fn failing(id: &str, failures: u32) -> EchoRequest {
    EchoRequest {
        count: failures,
        ..text(id)
    }
}

#[tokio::test]
async fn unary_retries_until_it_succeeds_and_each_attempt_says_how_many_came_before() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, retrying(4)).await;
    let response = client
        .unary(failing("twice", 2))
        .await
        .expect("the third attempt succeeds");
    assert_eq!(response.get_ref().index, 2, "the answering attempt had 2 before it");
    assert_eq!(seen.of("twice"), [0, 1, 2]);
}

#[tokio::test]
async fn codes_outside_the_retryable_list_are_not_retried() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, retrying(4)).await;
    let request = EchoRequest {
        fail_code: Code::Internal as i32,
        ..failing("internal", 1)
    };
    let err = client.unary(request).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert_eq!(seen.of("internal"), [0], "one attempt only");
}

#[tokio::test]
async fn max_attempts_over_five_is_capped_at_five() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, retrying(10)).await;
    let err = client.unary(failing("always", 100)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert_eq!(seen.of("always"), [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn pushback_replaces_the_backoff_and_pushback_stop_ends_the_retries() {
    let (server, seen) = flaky_server().await;
    // An hour's backoff: only the pushback's 1 ms lets the retry happen
    // within the call's deadline.
    let slow = echo_config(MethodConfig::new([MethodName::all()]).retry(RetryPolicy::new(
        3,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
        1.0,
        [Code::Unavailable],
    )));
    let client = client(&server, slow).await;
    let mut request = Request::new(failing("pushed", 1));
    request.metadata_mut().insert("x-pushback-ms", "1").unwrap();
    request.set_timeout(WAIT_LIMIT);
    let response = client.unary(request).await.expect("retried after the pushback");
    assert_eq!(response.get_ref().index, 1);

    let mut request = Request::new(failing("stopped", 1));
    request.metadata_mut().insert("x-pushback-ms", "-1").unwrap();
    let err = client.unary(request).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert_eq!(seen.of("stopped"), [0], "pushback -1 means no retry");
}

#[tokio::test]
async fn throttling_stops_retries_after_a_burst_of_failures_and_resumes_after_successes() {
    let (server, seen) = flaky_server().await;
    let config = retrying(5).retry_throttling(RetryThrottling::new(10, 1.0));
    let client = client(&server, config).await;
    // 10 tokens; each failed attempt costs one, and retries stop at 5.
    let err = client.unary(failing("burst-1", 100)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(seen.of("burst-1").len(), 5, "10 → 5 tokens: five attempts");
    let _ = client.unary(failing("burst-2", 100)).await.unwrap_err();
    assert_eq!(seen.of("burst-2").len(), 1, "throttled: no retry at 4 tokens");
    // Three successes: 4 → 7 tokens; the next failure leaves 6, above
    // half, so it is retried.
    for ok in ["ok-1", "ok-2", "ok-3"] {
        client.unary(text(ok)).await.unwrap();
    }
    let response = client.unary(failing("resumed", 1)).await.expect("retried again");
    assert_eq!(response.get_ref().index, 1);
}

#[tokio::test]
async fn a_call_that_received_response_headers_is_never_retried() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, retrying(5)).await;
    let mut stream = client.server_stream(text("committed")).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("the first message");
    assert_eq!(first.text, "committed");
    let err = stream.message().await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert_eq!(seen.of("committed"), [0], "no retry after the headers");
}

#[tokio::test]
async fn server_streaming_is_retried_until_its_headers_arrive() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, retrying(3)).await;
    let mut stream = client.server_stream(failing("stream", 2)).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().text, "stream");
    assert_eq!(seen.of("stream"), [0, 1, 2]);
}

#[tokio::test]
async fn client_streaming_retried_before_commit_replays_every_message_once() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, retrying(3)).await;
    // Large enough to go out in several batches.
    let payload = vec![1u8; 40 * 1024];
    let messages: Vec<EchoRequest> = (0..6)
        .map(|i| EchoRequest {
            payload: payload.clone(),
            ..failing(&format!("m{i}"), if i == 0 { 2 } else { 0 })
        })
        .collect();
    let response = client
        .client_stream(futures_util::stream::iter(messages))
        .await
        .expect("the third attempt succeeds");
    assert_eq!(
        response.get_ref().text,
        "m0,m1,m2,m3,m4,m5",
        "every message once, in order"
    );
    assert_eq!(seen.of("m0"), [0, 1, 2]);
}

#[tokio::test]
async fn bidi_retried_before_its_headers_replays_its_messages_and_streams_the_answers() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, retrying(3)).await;
    let messages = vec![failing("b0", 1), text("b1"), text("b2")];
    let mut stream = client
        .bidi(futures_util::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    let mut texts = Vec::new();
    while let Some(msg) = stream.message().await.expect("the retried attempt answers") {
        texts.push(msg.text);
    }
    assert_eq!(texts, ["b0", "b1", "b2"]);
    assert_eq!(seen.of("b0"), [0, 1]);
}

#[tokio::test]
async fn a_client_stream_larger_than_the_retry_buffer_is_not_retried() {
    let (server, seen) = flaky_server().await;
    let channel = Channel::builder(server.url())
        .service_config(retrying(3))
        .retry_buffer_limits(16 * 1024, 1024 * 1024)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let messages: Vec<EchoRequest> = (0..4)
        .map(|i| EchoRequest {
            payload: vec![2u8; 32 * 1024],
            ..failing(&format!("big{i}"), if i == 0 { 1 } else { 0 })
        })
        .collect();
    let err = client
        .client_stream(futures_util::stream::iter(messages))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert_eq!(seen.of("big0"), [0], "committed by outgrowing the buffer");
}

#[tokio::test]
async fn disable_retries_ignores_the_retry_policy() {
    let (server, seen) = flaky_server().await;
    let channel = Channel::builder(server.url())
        .service_config(retrying(5))
        .disable_retries()
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    assert_eq!(
        client.unary(failing("off", 1)).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(seen.of("off"), [0]);
}

#[tokio::test]
async fn hedging_takes_the_fast_backends_answer_and_cancels_the_slow_attempt() {
    // The slow backend holds each call until released, which never comes:
    // only cancellation ends its calls.
    let gate = Arc::new(Gate::default());
    let slow = courier_tests::start_gated(&gate).await;
    let fast = courier_tests::start_server().await;
    let hedged = echo_config(
        MethodConfig::new([MethodName::method("courier.test.Echo", "Unary")]).hedging(HedgingPolicy::new(
            2,
            Duration::ZERO,
            [Code::Unavailable],
        )),
    );
    let channel = Channel::builder(format!("ipv4:{},{}", slow.addr, fast.addr))
        .load_balancing(Policy::round_robin())
        .service_config(hedged)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    // Until round_robin has both backends READY, both copies may go to the
    // fast one; call until a copy has reached the slow one.
    let mut calls = 0;
    while gate.started() == 0 {
        calls += 1;
        assert!(calls <= 1000, "no hedged copy ever reached the second backend");
        let response = client.unary(text("hedged")).await.expect("the fast backend answers");
        assert_eq!(response.get_ref().text, "hedged");
    }
    // The slow copy was cancelled: its handler is no longer running.
    gate.wait_running_at_most(0).await;
    assert_eq!(gate.running(), 0);
}

fn hedging_an_hour_apart() -> ServiceConfig {
    echo_config(MethodConfig::new([MethodName::all()]).hedging(HedgingPolicy::new(
        3,
        Duration::from_secs(3600),
        [Code::Unavailable],
    )))
}

#[tokio::test]
async fn a_non_fatal_failure_sends_the_next_hedged_copy_at_once() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, hedging_an_hour_apart()).await;
    // The copies are an hour apart: only the first copy's UNAVAILABLE can
    // send the second within the deadline.
    let mut request = Request::new(failing("hedge-next", 1));
    request.set_timeout(WAIT_LIMIT);
    let response = client.unary(request).await.expect("the second copy answers");
    assert_eq!(response.get_ref().index, 1, "the second copy had one before it");
    assert_eq!(seen.of("hedge-next"), [0, 1]);
}

#[tokio::test]
async fn hedging_stops_at_a_fatal_code_or_a_pushback_that_says_stop() {
    let (server, seen) = flaky_server().await;
    let client = client(&server, hedging_an_hour_apart()).await;
    let fatal = EchoRequest {
        fail_code: Code::Internal as i32,
        ..failing("hedge-fatal", 1)
    };
    let err = client.unary(fatal).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert_eq!(seen.of("hedge-fatal"), [0]);

    let mut stopped = Request::new(failing("hedge-stop", 1));
    stopped.metadata_mut().insert("x-pushback-ms", "-1").unwrap();
    let err = client.unary(stopped).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert_eq!(seen.of("hedge-stop"), [0], "no copy after pushback stop");
}
