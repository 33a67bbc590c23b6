//! Field values that grpc-go puts on the wire unchanged and a strict
//! reading of RFC 9113 §8.2.1 would refuse: a `grpc-message` or a metadata
//! value that starts or ends with a space. grpc-go percent-encodes a status
//! message only outside printable ASCII, so the spaces arrive as they are;
//! Courier's client takes them as Go's HTTP/2 does, and the caller sees the
//! status and metadata grpc-go sent, not a reset stream.
//!
//! The peer is grpc-go 1.33's interop server (`target/interop/go/bin/
//! interop-server`, built by `scripts/interop/install-go.sh`), which echoes
//! a requested status and the `x-grpc-test-echo-initial` metadata. Without
//! it the tests print a note and pass, unless `COURIER_REQUIRE_PEERS=1`.

use courier::{Code, Request};
use courier_interop::pb::test_service_client::TestServiceClient;
use courier_interop::pb::{EchoStatus, SimpleRequest};
use courier_tests::{GoServer, WAIT_LIMIT as LIMIT, go_binary};

/// A client of a freshly started grpc-go interop server, which is kept
/// alive as long as the returned guard.
async fn go_client() -> Option<(TestServiceClient, GoServer)> {
    let binary = go_binary("interop-server")?;
    let server = GoServer::start(&binary, "grpc-go", &[], 0).await;
    let target = format!("http://127.0.0.1:{}", server.port);
    let channel = courier::Channel::builder(&target)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {target}: {e:?}"));
    Some((TestServiceClient::new(channel), server))
}

#[tokio::test]
async fn a_grpc_go_status_message_with_surrounding_spaces_arrives_unchanged() {
    let Some((client, _server)) = go_client().await else {
        return;
    };
    let message = "  padded status message  ";
    let mut request = Request::new(SimpleRequest {
        response_status: Some(EchoStatus {
            code: Code::FailedPrecondition as i32,
            message: message.to_string(),
        }),
        ..Default::default()
    });
    request.set_timeout(LIMIT);
    let status = client
        .unary_call(request)
        .await
        .expect_err("grpc-go answers with the requested status");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(status.message(), message, "{status:?}");
}

#[tokio::test]
async fn grpc_go_echoed_metadata_with_surrounding_spaces_arrives_unchanged() {
    let Some((client, _server)) = go_client().await else {
        return;
    };
    let value = " spaced value ";
    let mut request = Request::new(SimpleRequest::default());
    request
        .metadata_mut()
        .insert("x-grpc-test-echo-initial", value)
        .expect("a printable ASCII value");
    request.set_timeout(LIMIT);
    let response = client
        .unary_call(request)
        .await
        .unwrap_or_else(|status| panic!("grpc-go's UnaryCall failed: {status:?}"));
    assert_eq!(response.metadata().get("x-grpc-test-echo-initial"), Some(value));
}
