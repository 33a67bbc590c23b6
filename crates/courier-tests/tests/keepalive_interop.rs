//! Keepalive and connection management against grpcio, the gRPC C core's
//! Python binding (`peers/retry_peer.py` in its server role): a grpcio
//! server's max-age GOAWAY loses no Courier call, and a grpcio server
//! frozen with SIGSTOP (a half-open connection) is found by Courier's
//! keepalive within its time plus its timeout. And the other way round
//! (`peers/keepalive_client.py`): a grpcio client that PINGs every second
//! gets GOAWAY `too_many_pings` from a Courier server's default policy.
//!
//! Needs the venv that `scripts/interop/install-python.sh` makes; without
//! it the tests print a note and pass, unless `COURIER_REQUIRE_PEERS=1`.

use std::path::Path;
use std::time::Duration;

use courier::client::ConnectivityState;
use courier::keepalive::ClientParameters;
use courier::{Channel, Request};
use courier_tests::{EchoClient, PythonPeer, Relay, grpcio_python, guard, start_server, text};

/// The grpcio server with `options`, killed when dropped.
async fn py_server(python: &Path, options: &[&str]) -> (u16, PythonPeer) {
    let mut args = vec!["server".to_string()];
    args.extend(options.iter().map(|o| format!("--option={o}")));
    let peer = PythonPeer::start(python, "retry_peer.py", &args).await;
    (peer.port, peer)
}

fn call(id: &str) -> Request<courier_tests::EchoRequest> {
    let mut request = Request::new(text(id));
    request.metadata_mut().insert("x-call", id).unwrap();
    request
}

#[tokio::test]
async fn a_grpcio_servers_max_age_goaway_loses_no_courier_call() {
    let Some(python) = grpcio_python("grpc") else { return };
    let (port, _server) = py_server(
        &python,
        &[
            "grpc.max_connection_age_ms=300",
            "grpc.max_connection_age_grace_ms=30000",
        ],
    )
    .await;
    let relay = Relay::start(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let channel = Channel::connect(format!("http://{}", relay.addr)).await.unwrap();
    let client = EchoClient::new(channel);
    let mut calls = 0;
    guard("three connections", async {
        while relay.accepted() < 3 {
            calls += 1;
            let response = client.unary(call(&format!("aging-{calls}"))).await;
            assert!(response.is_ok(), "call {calls} failed: {response:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn keepalive_finds_a_grpcio_server_frozen_with_sigstop() {
    let Some(python) = grpcio_python("grpc") else { return };
    let (port, server) = py_server(&python, &[]).await;
    let pid = server.child.id().expect("the server's pid");
    let keepalive = ClientParameters::new(Duration::from_secs(10))
        .timeout(Duration::from_secs(1))
        .permit_without_calls(true);
    let channel = Channel::builder(format!("http://127.0.0.1:{port}"))
        .keepalive(keepalive)
        .connect()
        .await
        .unwrap();
    EchoClient::new(channel.clone()).unary(call("before")).await.unwrap();
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    // A signal of our own, not the `kill` binary: a bare machine may not
    // have procps.
    let signal = |sig| unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(signal(libc::SIGSTOP), 0, "SIGSTOP the grpcio server");
    // The kernel still holds the connection open; only keepalive can tell
    // that nothing answers on it.
    let state = guard(
        "the channel to leave READY",
        channel.wait_for_state_change(ConnectivityState::Ready),
    )
    .await;
    signal(libc::SIGCONT);
    assert_ne!(state, ConnectivityState::Ready);
}

/// A Courier channel that PINGs a grpcio server every 10 s without calls,
/// behind a relay that counts its connections; the channel is READY.
async fn pinging_channel(port: u16) -> (Channel, Relay) {
    let relay = Relay::start(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let keepalive = ClientParameters::new(Duration::from_secs(10)).permit_without_calls(true);
    let channel = Channel::builder(format!("http://{}", relay.addr))
        .keepalive(keepalive)
        .connect()
        .await
        .unwrap();
    EchoClient::new(channel.clone()).unary(call("first")).await.unwrap();
    (channel, relay)
}

#[tokio::test]
async fn keepalive_stays_within_a_grpcio_servers_ping_policy() {
    let Some(python) = grpcio_python("grpc") else { return };
    // PINGs at least 9 s apart are welcome, with or without calls.
    let (port, _server) = py_server(
        &python,
        &[
            "grpc.keepalive_permit_without_calls=1",
            "grpc.http2.min_ping_interval_without_data_ms=9000",
            "grpc.http2.min_recv_ping_interval_without_data_ms=9000",
            "grpc.http2.max_ping_strikes=1",
        ],
    )
    .await;
    let (channel, relay) = pinging_channel(port).await;
    // Three PINGs' worth of time: a PING too soon would have been a strike,
    // and the second strike a GOAWAY.
    tokio::time::sleep(Duration::from_secs(32)).await;
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    assert_eq!(
        (relay.accepted(), relay.open()),
        (1, 1),
        "the first connection still serves"
    );
    EchoClient::new(channel).unary(call("after")).await.unwrap();
}

#[tokio::test]
async fn a_grpcio_server_that_allows_fewer_pings_sends_too_many_pings_and_the_channel_recovers() {
    let Some(python) = grpcio_python("grpc") else { return };
    // PINGs without data at most every 5 minutes: Courier's every 10 s
    // earn strikes, and the second one a GOAWAY ENHANCE_YOUR_CALM.
    let (port, _server) = py_server(
        &python,
        &[
            "grpc.keepalive_permit_without_calls=1",
            "grpc.http2.min_recv_ping_interval_without_data_ms=300000",
            "grpc.http2.max_ping_strikes=1",
        ],
    )
    .await;
    let (channel, relay) = pinging_channel(port).await;
    // The server closes the connection (proof the PINGs went out)...
    relay.wait_open(0).await;
    // ...and the channel connects again for the next call.
    EchoClient::new(channel)
        .unary(call("again"))
        .await
        .expect("a new connection");
    assert_eq!(relay.accepted(), 2);
}

#[tokio::test]
async fn a_grpcio_client_pinging_every_second_gets_goaway_too_many_pings_from_the_default_policy() {
    let Some(python) = grpcio_python("grpc") else { return };
    // The default policy: PINGs at least 5 minutes apart, none without a
    // call. The client PINGs every second without calls: the first PING is
    // free, the next two are strikes, the one after ends the connection.
    let server = start_server().await;
    let relay = Relay::start(server.addr).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/keepalive_client.py");
    let output = guard(
        "keepalive_client.py",
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg(relay.addr.to_string())
            .env("GRPC_VERBOSITY", "ERROR")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run keepalive_client.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "keepalive_client.py failed ({}): {stderr}",
        output.status
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("keepalive_client.py printed {stdout:?} ({e}); its stderr: {stderr}"));
    assert_eq!(result["first"], "ok", "{result}");
    // The C core logs the GOAWAY as it doubles its keepalive time.
    let goaway = stderr
        .lines()
        .find(|line| line.contains("ENHANCE_YOUR_CALM") && line.contains("too_many_pings"));
    assert!(
        goaway.is_some(),
        "grpcio logged no GOAWAY ENHANCE_YOUR_CALM too_many_pings; {result}; its stderr: {stderr}"
    );
    assert_eq!(result["left_ready"], true, "the idle channel stayed READY: {result}");
    // It connects again for the next call.
    assert_eq!(result["second"], "ok", "{result}");
    assert!(relay.accepted() >= 2, "{} connections", relay.accepted());
}
