//! Retries (gRFC A6) against grpcio, the gRPC C core's Python binding
//! (`peers/retry_peer.py`): a Courier client retrying on a grpcio server,
//! which reads the attempt numbers Courier sends and sends its pushback;
//! and a grpcio client retrying on a Courier server, which reads grpcio's
//! attempt numbers and whose pushback grpcio obeys.
//!
//! Needs the venv that `scripts/interop/install-python.sh` makes; without
//! it the tests print a note and pass, unless `COURIER_REQUIRE_PEERS=1`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::client::service_config::ServiceConfig;
use courier::interceptor::CallHead;
use courier::status::RetryPushback;
use courier::{Channel, Code, PreviousRpcAttempts, Request, Status};
use courier_tests::{EchoClient, PythonPeer, WAIT_LIMIT, echo_with, grpcio_python, guard, start_with_counters, text};
use tokio::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/retry_peer.py")
}

async fn py_server(python: &Path) -> PythonPeer {
    PythonPeer::start(python, "retry_peer.py", &["server".to_string()]).await
}

const RETRY: &str = r#"{
  "methodConfig": [{
    "name": [{"service": "courier.test.Echo"}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "3600s",
      "maxBackoff": "3600s",
      "backoffMultiplier": 1,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}"#;

fn call(id: &str, fail_times: u32, pushback: Option<&str>) -> Request<courier_tests::EchoRequest> {
    let mut request = Request::new(text(id));
    request.metadata_mut().insert("x-call", id).unwrap();
    request
        .metadata_mut()
        .insert("x-fail-times", &fail_times.to_string())
        .unwrap();
    if let Some(ms) = pushback {
        request.metadata_mut().insert("x-pushback-ms", ms).unwrap();
    }
    request.set_timeout(WAIT_LIMIT);
    request
}

#[tokio::test]
async fn courier_client_retries_on_a_grpcio_server_by_its_pushback_with_attempt_numbers() {
    let Some(python) = grpcio_python("grpc") else { return };
    let server = py_server(&python).await;
    let channel = Channel::builder(format!("http://127.0.0.1:{}", server.port))
        .service_config(ServiceConfig::from_json(RETRY).unwrap())
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);

    // An hour's backoff: only grpcio's 1 ms pushback lets the retries
    // happen before the deadline. The server lists each attempt's
    // grpc-previous-rpc-attempts.
    let response = client
        .unary(call("pushed", 2, Some("1")))
        .await
        .expect("retried on pushback");
    assert_eq!(response.get_ref().text, "0,1,2");

    // Pushback -1: no retry. A second call under the same name then lists
    // both calls' attempts: one each.
    let err = client.unary(call("stopped", 1, Some("-1"))).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let response = client.unary(call("stopped", 0, None)).await.unwrap();
    assert_eq!(response.get_ref().text, "0,0", "the stopped call had one attempt");
}

/// Runs the grpcio client against `port` with `metadata`; returns what it
/// printed: `ok` or `error CODE`.
async fn py_client(python: &Path, port: u16, metadata: &[&str]) -> String {
    let mut command = Command::new(python);
    command
        .arg(script())
        .arg("client")
        .arg(format!("--target=127.0.0.1:{port}"));
    for m in metadata {
        command.arg(format!("--metadata={m}"));
    }
    let output = guard("the grpcio client", command.kill_on_drop(true).output())
        .await
        .expect("run the grpcio client");
    assert!(output.status.success(), "the grpcio client failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcio_client_retries_on_a_courier_server_obeying_its_pushback() {
    let Some(python) = grpcio_python("grpc") else { return };
    // Fails the first two attempts of each call with the pushback its
    // metadata asks for, and records every attempt's number.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = start_with_counters({
        let seen = seen.clone();
        move |b, counters| {
            b.interceptor(move |head: CallHead| {
                let previous = head.extensions().get::<PreviousRpcAttempts>().map_or(0, |p| p.0);
                seen.lock().unwrap().push(previous);
                let pushback = match head.metadata().get("x-pushback-ms") {
                    Some("stop") => RetryPushback::Stop,
                    _ => RetryPushback::After(Duration::from_millis(1)),
                };
                if previous < 2 {
                    return Err(Status::unavailable("not yet").with_retry_pushback(pushback));
                }
                Ok(head)
            })
            .add_service(echo_with(counters))
        }
    })
    .await;
    let port = server.addr.port();

    // grpcio's backoff is 100 s: the retries within its 30 s deadline are
    // the pushback's doing.
    assert_eq!(py_client(&python, port, &[]).await, "ok");
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2], "grpcio's attempt numbers");

    seen.lock().unwrap().clear();
    assert_eq!(
        py_client(&python, port, &["x-pushback-ms=stop"]).await,
        "error UNAVAILABLE"
    );
    assert_eq!(*seen.lock().unwrap(), [0], "pushback stop: no retry");
}
