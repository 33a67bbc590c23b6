//! Keepalive (gRFC A8) and connection management (gRFC A9) over real
//! sockets: a relay that can go silent stands for a half-open connection,
//! and counts the connections through it.

use std::sync::Arc;
use std::time::Duration;

use courier::keepalive::{ClientParameters, ServerParameters};
use courier::{Channel, Code};
use courier_tests::{EchoClient, Gate, Gated, Relay, echo_with, guard, start_with, start_with_counters, text};

#[tokio::test]
async fn client_keepalive_finds_a_silent_connection_and_fails_its_call_with_unavailable() {
    // The call waits at the server until the end; only keepalive can tell
    // that the connection has gone silent.
    let gate = Arc::new(Gate::default());
    let server = courier_tests::start_gated(&gate).await;
    let relay = Relay::start(server.addr).await;
    let keepalive = ClientParameters::new(Duration::from_secs(10)).timeout(Duration::from_secs(1));
    let channel = Channel::builder(format!("http://{}", relay.addr))
        .keepalive(keepalive)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let call = tokio::spawn(async move { client.unary(text("held")).await });
    gate.wait_started(1).await;
    relay.silence();
    let result = guard("the call to fail", call).await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    // The client closed the connection it gave up on.
    relay.wait_open(0).await;
}

#[tokio::test]
async fn server_keepalive_closes_a_connection_whose_client_went_silent() {
    let server = start_with_counters(|b, counters| {
        b.keepalive(
            ServerParameters::new()
                .time(Duration::from_millis(200))
                .timeout(Duration::from_millis(500)),
        )
        .add_service(echo_with(counters))
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let channel = Channel::connect(format!("http://{}", relay.addr)).await.unwrap();
    let client = EchoClient::new(channel);
    client.unary(text("before")).await.unwrap();
    relay.silence();
    // The server's PINGs go unanswered: it closes the connection.
    relay.wait_open(0).await;
}

#[tokio::test]
async fn max_connection_age_moves_the_channel_to_a_new_connection_losing_no_call() {
    let server = start_with_counters(|b, counters| {
        b.keepalive(
            ServerParameters::new()
                .max_connection_age(Duration::from_millis(200))
                .max_connection_age_grace(Duration::from_secs(30)),
        )
        .add_service(echo_with(counters))
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let channel = Channel::connect(format!("http://{}", relay.addr)).await.unwrap();
    let client = EchoClient::new(channel);
    // Calls one after another until the channel has been moved on twice;
    // every one of them succeeds.
    let mut calls = 0;
    guard("three connections", async {
        while relay.accepted() < 3 {
            calls += 1;
            let response = client.unary(text("aging")).await;
            assert!(response.is_ok(), "call {calls} failed: {response:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn max_connection_idle_closes_a_connection_without_calls_and_the_next_call_reconnects() {
    let server = start_with_counters(|b, counters| {
        b.keepalive(ServerParameters::new().max_connection_idle(Duration::from_millis(200)))
            .add_service(echo_with(counters))
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let channel = Channel::connect(format!("http://{}", relay.addr)).await.unwrap();
    let client = EchoClient::new(channel);
    client.unary(text("first")).await.unwrap();
    relay.wait_open(0).await;
    client.unary(text("again")).await.expect("a new connection");
    assert_eq!(relay.accepted(), 2);
}

#[tokio::test]
async fn a_call_in_progress_keeps_the_connection_from_going_idle() {
    let gate = Arc::new(Gate::default());
    let server = start_with({
        let gate = gate.clone();
        move |b| {
            b.keepalive(ServerParameters::new().max_connection_idle(Duration::from_millis(100)))
                .add_service(Gated::server(gate))
        }
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let channel = Channel::connect(format!("http://{}", relay.addr)).await.unwrap();
    let client = EchoClient::new(channel);
    let call = tokio::spawn(async move { client.unary(text("long")).await });
    gate.wait_started(1).await;
    // Far longer than the idle limit passes with the call in progress...
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(relay.open(), 1, "a connection with a call is not idle");
    // ...and the call still finishes on it.
    gate.release(1);
    guard("the call", call).await.unwrap().expect("the call succeeds");
    assert_eq!(relay.accepted(), 1);
}
