//! A service config's per-method settings over real sockets: timeouts,
//! wait-for-ready and message limits, and their precedence against the
//! call's own settings and the channel's.

use std::sync::Arc;
use std::time::Duration;

use courier::client::service_config::{MethodConfig, MethodName, ServiceConfig};
use courier::{Channel, Code, Request};
use courier_tests::{EchoClient, EchoRequest, Gate, RefusingAddr, TestServer, start_server, text};

fn for_echo(method: MethodConfig) -> ServiceConfig {
    ServiceConfig::new().method(method)
}

fn unary_config() -> MethodConfig {
    MethodConfig::new([MethodName::method("courier.test.Echo", "Unary")])
}

async fn client(server: &TestServer, config: ServiceConfig) -> EchoClient {
    let channel = Channel::builder(server.url())
        .service_config(config)
        .connect()
        .await
        .unwrap();
    EchoClient::new(channel)
}

#[tokio::test]
async fn the_configured_timeout_ends_a_call_that_sets_none() {
    let gate = Arc::new(Gate::default());
    let server = courier_tests::start_gated(&gate).await;
    let client = client(&server, for_echo(unary_config().timeout(Duration::from_millis(100)))).await;
    let err = client.unary(text("held")).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
}

#[tokio::test]
async fn the_sooner_of_the_calls_timeout_and_the_configured_one_applies() {
    let server = start_server().await;
    let client = client(&server, for_echo(unary_config().timeout(Duration::from_secs(10)))).await;

    // The server reports the deadline it saw, in ms left.
    let mut long = Request::new(text("long"));
    long.set_timeout(Duration::from_secs(3600));
    let seen = client.unary(long).await.unwrap().get_ref().deadline_ms;
    assert!((0..=10_000).contains(&seen), "the config's 10 s applies: {seen} ms");

    let mut short = Request::new(text("short"));
    short.set_timeout(Duration::from_secs(5));
    let seen = client.unary(short).await.unwrap().get_ref().deadline_ms;
    assert!((0..=5_000).contains(&seen), "the call's 5 s applies: {seen} ms");

    // Neither sets one: no deadline at all.
    let free = Channel::builder(server.url()).connect().await.unwrap();
    let seen = EchoClient::new(free)
        .unary(text("free"))
        .await
        .unwrap()
        .get_ref()
        .deadline_ms;
    assert_eq!(seen, -1, "no deadline");
}

#[tokio::test]
async fn configured_wait_for_ready_holds_calls_and_the_calls_own_setting_wins() {
    let refusing = RefusingAddr::new();
    let config = for_echo(MethodConfig::new([MethodName::all()]).wait_for_ready(true));
    let channel = Channel::builder(format!("http://{}", refusing.addr))
        .service_config(config)
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);

    // Waits for a connection that never comes, until its deadline.
    let mut waiting = Request::new(text("waits"));
    waiting.set_timeout(Duration::from_millis(300));
    let err = client.unary(waiting).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "waited for ready: {err}");

    // The call's own fail-fast wins over the config.
    let mut fast = Request::new(text("fails fast"));
    fast.set_wait_for_ready(false);
    let err = client.unary(fast).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "failed fast: {err}");
}

#[tokio::test]
async fn configured_message_limits_apply_and_the_channels_smaller_limit_wins() {
    let server = start_server().await;
    let config = for_echo(
        unary_config()
            .max_request_message_bytes(1000)
            .max_response_message_bytes(1000),
    );
    let client = client(&server, config.clone()).await;
    let big_request = EchoRequest {
        payload: vec![0; 2000],
        ..text("big request")
    };
    let err = client.unary(big_request.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let big_response = EchoRequest {
        response_size: 2000,
        ..text("big response")
    };
    let err = client.unary(big_response).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let small = EchoRequest {
        payload: vec![0; 500],
        ..text("small")
    };
    client.unary(small.clone()).await.expect("under both limits");

    // The channel's own 100-byte limit is smaller than the config's 1000.
    let channel = Channel::builder(server.url())
        .service_config(config)
        .max_encoding_message_size(100)
        .connect()
        .await
        .unwrap();
    let err = EchoClient::new(channel).unary(small).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
}

#[tokio::test]
async fn a_configured_response_limit_above_the_default_replaces_it() {
    let server = start_server().await;
    let six_mib = 6 * 1024 * 1024;
    let large = EchoRequest {
        response_size: 5 * 1024 * 1024,
        ..text("large")
    };
    // The default limit, 4 MiB, refuses 5 MiB...
    let plain = Channel::connect(server.url()).await.unwrap();
    let err = EchoClient::new(plain).unary(large.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // ...the service config's 6 MiB takes its place...
    let client = client(&server, for_echo(unary_config().max_response_message_bytes(six_mib))).await;
    client.unary(large.clone()).await.expect("within the configured limit");
    // ...but not a limit the application set itself.
    let channel = Channel::builder(server.url())
        .service_config(for_echo(unary_config().max_response_message_bytes(six_mib)))
        .max_decoding_message_size(4 * 1024 * 1024)
        .connect()
        .await
        .unwrap();
    let err = EchoClient::new(channel).unary(large).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
}
