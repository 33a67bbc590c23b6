//! Runs the `courier` binary as a person would, against Courier servers
//! started in the test, and against a grpcio server
//! (`peers/grpcio_server.py`) with reflection and health, and checks what it
//! prints and how it exits.
//!
//! The grpcio test needs the venv that `scripts/interop/install-python.sh`
//! makes. Without it the test prints a note and passes, unless
//! `COURIER_REQUIRE_PEERS=1` is set, which makes a missing venv a failure;
//! `COURIER_PYTHON` names another interpreter to use.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use courier::credentials::ServerTlsConfig;
use courier::health::HealthReporter;
use courier::interceptor::CallHead;
use courier::status::details::{BadRequest, ErrorInfo, FieldViolation};
use courier::{Code, Status};
use courier_tests::pb::other_server::OtherServer;
use courier_tests::{
    OtherService, RefusingAddr, TestServer, echo_with, grpcio_python, start_server, start_with, start_with_counters,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// What a run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Asserts a zero exit and returns itself.
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    /// Every JSON document on standard output.
    fn json(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts a one-line error with this exit code that contains each of
    /// `needles`, and no panic.
    fn one_line_error(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "{self:?}");
        let stderr = self.stderr.trim_end();
        assert_eq!(stderr.lines().count(), 1, "{self:?}");
        assert!(stderr.starts_with("error: "), "{self:?}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{self:?}"
        );
        for needle in needles {
            assert!(stderr.contains(needle), "missing {needle:?}: {self:?}");
        }
    }
}

/// Runs `courier ARGS` with no standard input.
async fn courier<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    courier_with_stdin(args, None).await
}

/// Runs `courier ARGS` with `stdin` as its standard input.
async fn courier_with_stdin<I, S>(args: I, stdin: Option<&str>) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_courier"));
    command
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("the courier binary runs");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("courier finished within a minute")
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A Courier server with reflection, health, and the Echo and Other
/// services. Echo is SERVING and Other NOT_SERVING.
async fn full_server() -> TestServer {
    let health = HealthReporter::new();
    health.set_serving("courier.test.Echo");
    health.set_not_serving("courier.test.Other");
    start_with_counters(move |b, counters| {
        b.with_reflection()
            .with_health(health)
            .add_service(echo_with(counters))
            .add_service(OtherServer::new(OtherService))
    })
    .await
}

fn addr(server: &TestServer) -> String {
    server.addr.to_string()
}

/// The test service's .proto file, for `--proto`.
fn echo_proto() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../courier-tests/proto/echo.proto")
}

// --- list and describe --------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn list_services_and_methods_through_reflection() {
    let server = full_server().await;
    let run = courier(["list", &addr(&server)]).await.ok();
    let services: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        services,
        [
            "courier.test.Echo",
            "courier.test.Other",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ],
        "{run:?}"
    );

    let run = courier(["list", &addr(&server), "courier.test.Echo"]).await.ok();
    let methods: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        methods,
        [
            "courier.test.Echo.Unary",
            "courier.test.Echo.ClientStream",
            "courier.test.Echo.ServerStream",
            "courier.test.Echo.Bidi",
        ],
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_shows_proto_source() {
    let server = full_server().await;
    let run = courier(["describe", &addr(&server), "courier.test.Echo"]).await.ok();
    assert!(run.stdout.starts_with("courier.test.Echo is a service:\n"), "{run:?}");
    assert!(run.stdout.contains("service Echo {\n"), "{run:?}");
    assert!(
        run.stdout
            .contains("  rpc Bidi(stream .courier.test.EchoRequest) returns (stream .courier.test.EchoResponse);\n"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("  rpc ServerStream(.courier.test.EchoRequest) returns (stream .courier.test.EchoResponse);\n"),
        "{run:?}"
    );

    let run = courier(["describe", &addr(&server), "courier.test.EchoRequest"])
        .await
        .ok();
    assert!(
        run.stdout.starts_with("courier.test.EchoRequest is a message:\n"),
        "{run:?}"
    );
    for line in [
        "message EchoRequest {",
        "  string text = 1;",
        "  bytes payload = 2;",
        "  uint32 sleep_ms = 4;",
    ] {
        assert!(run.stdout.contains(line), "missing {line:?}: {run:?}");
    }

    // A method, written either way.
    for symbol in ["courier.test.Echo/Unary", "courier.test.Echo.Unary"] {
        let run = courier(["describe", &addr(&server), symbol]).await.ok();
        assert_eq!(
            run.stdout,
            "courier.test.Echo.Unary is a method:\nrpc Unary(.courier.test.EchoRequest) returns (.courier.test.EchoResponse);\n",
        );
    }

    // An enum and its value, from the health service's file.
    let run = courier([
        "describe",
        &addr(&server),
        "grpc.health.v1.HealthCheckResponse.ServingStatus",
    ])
    .await
    .ok();
    assert!(
        run.stdout
            .contains("enum ServingStatus {\n  UNKNOWN = 0;\n  SERVING = 1;"),
        "{run:?}"
    );
}

// --- call ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn call_unary_prints_proto3_json() {
    let server = full_server().await;
    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo/Unary",
        "-d",
        r#"{"text": "hello", "payload": "AAEC"}"#,
    ])
    .await
    .ok();
    let responses = run.json();
    assert_eq!(responses.len(), 1, "{run:?}");
    assert_eq!(responses[0]["text"], "hello");
    assert_eq!(responses[0]["payload"], "AAEC");
    // Canonical JSON: camelCase names, 64-bit integers as strings.
    assert_eq!(responses[0]["deadlineMs"], "-1", "{run:?}");

    // --emit-defaults shows fields that have their default value.
    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo.Unary",
        "--emit-defaults",
        "--compact",
        "-d",
        "{}",
    ])
    .await
    .ok();
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert_eq!(run.json()[0]["index"], 0, "{run:?}");
    assert_eq!(run.json()[0]["text"], "", "{run:?}");
}

/// A retry policy for every method of the Echo service, as `courier call
/// --service-config` takes it.
const RETRY_CONFIG: &str = r#"{
  "methodConfig": [{
    "name": [{"service": "courier.test.Echo"}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.01s",
      "maxBackoff": "0.01s",
      "backoffMultiplier": 1,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}"#;

#[tokio::test(flavor = "multi_thread")]
async fn call_with_a_service_config_retries_by_its_policy_and_a_bad_config_names_the_field() {
    // Fails the first two attempts of each Unary call, and records the
    // grpc-previous-rpc-attempts of every attempt.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = start_with_counters({
        let seen = seen.clone();
        move |b, counters| {
            b.interceptor(move |head: CallHead| {
                let previous = head
                    .extensions()
                    .get::<courier::PreviousRpcAttempts>()
                    .map_or(0, |p| p.0);
                seen.lock().unwrap().push(previous);
                if previous < 2 {
                    return Err(Status::unavailable("not yet"));
                }
                Ok(head)
            })
            .add_service(echo_with(counters))
        }
    })
    .await;
    let proto = echo_proto();
    let base = |extra: &[&str]| {
        let mut args = vec![
            "call".to_string(),
            addr(&server),
            "courier.test.Echo/Unary".to_string(),
            "--proto".to_string(),
            proto.display().to_string(),
            "-d".to_string(),
            r#"{"text": "again"}"#.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    // Without a config: one attempt, and its UNAVAILABLE.
    let run = courier(base(&[])).await;
    assert_eq!(run.code, 64 + Code::Unavailable as i32, "{run:?}");
    assert_eq!(*seen.lock().unwrap(), [0]);

    // With the retry policy, as JSON text and as a file: the third attempt
    // answers.
    seen.lock().unwrap().clear();
    let run = courier(base(&["--service-config", RETRY_CONFIG])).await.ok();
    assert_eq!(run.json()[0]["text"], "again", "{run:?}");
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    let dir = std::env::temp_dir().join(format!("courier-cli-sc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("retry.json");
    std::fs::write(&file, RETRY_CONFIG).unwrap();
    seen.lock().unwrap().clear();
    let at_file = format!("@{}", file.display());
    courier(base(&["--service-config", &at_file])).await.ok();
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2]);
    std::fs::remove_dir_all(&dir).unwrap();

    // A bad config: a one-line error that names the field.
    let bad = r#"{"methodConfig": [{"name": [{"service": "s"}], "timeout": "soon"}]}"#;
    let run = courier(base(&["--service-config", bad])).await;
    run.one_line_error(1, &["--service-config", "methodConfig[0].timeout"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn call_with_metadata_timeout_and_verbose_output() {
    let server = full_server().await;
    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo/Unary",
        "-d",
        r#"{"text": "hi"}"#,
        "-H",
        "echo-greeting: hello there",
        "-H",
        "echo-raw-bin: AAEC",
        "-H",
        "trailer-done: yes",
        "--timeout",
        "5s",
        "-v",
    ])
    .await
    .ok();
    assert_eq!(run.json()[0]["text"], "hi");
    let deadline: i64 = run.json()[0]["deadlineMs"].as_str().unwrap().parse().unwrap();
    assert!((1..=5000).contains(&deadline), "{run:?}");
    assert!(run.stderr.contains("Response headers:\n"), "{run:?}");
    assert!(run.stderr.contains("  echo-greeting: hello there\n"), "{run:?}");
    assert!(run.stderr.contains("  echo-raw-bin: AAEC"), "{run:?}");
    assert!(
        run.stderr.contains("Response trailers:\n  trailer-done: yes\n"),
        "{run:?}"
    );

    // The deadline passes: DEADLINE_EXCEEDED, exit 64 + 4.
    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo/Unary",
        "-d",
        r#"{"sleep_ms": 3000}"#,
        "--timeout",
        "100ms",
    ])
    .await;
    run.one_line_error(68, &["DEADLINE_EXCEEDED"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn call_streaming_methods() {
    let server = full_server().await;

    // Server streaming: one JSON document per response.
    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo/ServerStream",
        "-d",
        r#"{"text": "tick", "count": 3}"#,
    ])
    .await
    .ok();
    let responses = run.json();
    assert_eq!(responses.len(), 3, "{run:?}");
    assert!(responses.iter().all(|r| r["text"] == "tick"), "{run:?}");
    assert_eq!(responses[2]["index"], 2, "{run:?}");

    // Client streaming from standard input, one JSON object per line.
    let run = courier_with_stdin(
        ["call", &addr(&server), "courier.test.Echo/ClientStream", "-v"],
        Some("{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n"),
    )
    .await
    .ok();
    let responses = run.json();
    assert_eq!(responses.len(), 1, "{run:?}");
    assert_eq!(responses[0]["text"], "abc");
    assert_eq!(responses[0]["index"], 3);
    assert!(run.stderr.contains("x-count: 3"), "{run:?}");

    // Bidirectional from `-d @-`, objects simply concatenated.
    let run = courier_with_stdin(
        ["call", &addr(&server), "courier.test.Echo/Bidi", "-d", "@-"],
        Some(r#"{"text": "one"} {"text": "two"}"#),
    )
    .await
    .ok();
    let texts: Vec<Value> = run.json().iter().map(|r| r["text"].clone()).collect();
    assert_eq!(texts, ["one", "two"], "{run:?}");

    // From a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("requests.json");
    std::fs::write(&file, "{\"text\": \"x\"}\n{\"text\": \"y\"}\n").unwrap();
    let run = courier([
        "call".to_string(),
        addr(&server),
        "courier.test.Echo/ClientStream".to_string(),
        "-d".to_string(),
        format!("@{}", file.display()),
    ])
    .await
    .ok();
    assert_eq!(run.json()[0]["text"], "xy", "{run:?}");

    // Bad JSON in the middle of a stream stops the call with one line.
    let run = courier_with_stdin(
        ["call", &addr(&server), "courier.test.Echo/Bidi"],
        Some("{\"text\": \"fine\"}\n{\"count\": \"many\"}\n"),
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("error: request message 2 does not match courier.test.EchoRequest: field `count`"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn call_error_prints_code_message_and_rich_details() {
    let server = full_server().await;
    // A plain status: its code and message; exit 64 + 5 for NOT_FOUND.
    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo/Unary",
        "-d",
        r#"{"text": "no such thing", "fail_code": 5}"#,
    ])
    .await;
    run.one_line_error(69, &["error: NOT_FOUND: no such thing"]);

    // Rich details, from an interceptor that refuses Unary calls marked
    // `x-reject`.
    let server = start_with(|b| {
        b.interceptor(|head: CallHead| {
            if head.path() == "/courier.test.Echo/Unary" && head.metadata().get("x-reject").is_some() {
                let violation = FieldViolation {
                    field: "text".into(),
                    description: "must not be empty".into(),
                };
                return Err(Status::with_details(
                    Code::InvalidArgument,
                    "the request is invalid",
                    [
                        BadRequest {
                            field_violations: vec![violation],
                        }
                        .to_any(),
                        ErrorInfo {
                            reason: "EMPTY_TEXT".into(),
                            domain: "courier.test".into(),
                            metadata: [("limit".to_string(), "1".to_string())].into(),
                        }
                        .to_any(),
                    ],
                ));
            }
            Ok(head)
        })
        .with_reflection()
        .add_service(echo_with(Default::default()))
    })
    .await;
    let run = courier(["call", &addr(&server), "courier.test.Echo/Unary", "-H", "x-reject: 1"]).await;
    assert_eq!(run.code, 64 + 3, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: INVALID_ARGUMENT: the request is invalid\n  \
         BadRequest: field `text`: must not be empty\n  \
         ErrorInfo: reason EMPTY_TEXT, domain courier.test, limit=1\n",
    );
}

// --- health ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn health_prints_the_status_and_exits_zero_only_when_serving() {
    let server = full_server().await;
    let run = courier(["health", &addr(&server)]).await.ok();
    assert_eq!(run.stdout, "SERVING\n");
    let run = courier(["health", &addr(&server), "courier.test.Echo"]).await.ok();
    assert_eq!(run.stdout, "SERVING\n");

    let run = courier(["health", &addr(&server), "courier.test.Other"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (3, "NOT_SERVING\n"), "{run:?}");

    let run = courier(["health", &addr(&server), "courier.test.Nope"]).await;
    run.one_line_error(69, &["has no health status for service \"courier.test.Nope\""]);

    // A server without the health service.
    let bare = start_server().await;
    let run = courier(["health", &addr(&bare)]).await;
    run.one_line_error(76, &["does not serve the health service"]);
}

/// Calls made to `server`'s Echo service so far.
fn echo_calls(server: &TestServer) -> usize {
    server.counters.started.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread")]
async fn call_accepts_grpc_naming_targets() {
    let server = full_server().await;
    let port = server.addr.port();
    for target in [
        format!("ipv4:127.0.0.1:{port}"),
        format!("dns:///127.0.0.1:{port}"),
        format!("passthrough:///127.0.0.1:{port}"),
        // A list: pick_first takes the first address that connects.
        format!("ipv4:127.0.0.1:{port},127.0.0.1:{port}"),
    ] {
        let before = echo_calls(&server);
        let run = courier(["call", &target, "courier.test.Echo/Unary", "-d", r#"{"text": "named"}"#]).await;
        let run = run.ok();
        assert_eq!(run.json()[0]["text"], "named", "{target}: {run:?}");
        assert_eq!(echo_calls(&server), before + 1, "{target}: {run:?}");
    }

    // A server on a Unix socket, reached as unix:PATH and unix://PATH
    // (an absolute path: unix:///tmp/...).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("courier.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let counters = std::sync::Arc::new(courier_tests::Counters::default());
    let mut serve = Box::pin(
        courier::Server::builder()
            .with_reflection()
            .add_service(echo_with(counters.clone()))
            .serve_unix(path.clone(), async {
                let _ = stopped.await;
            }),
    );
    // The first poll binds the socket; then the server runs as a task.
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(serve.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "the server stopped at once: {first:?}");
    let serving = tokio::spawn(serve);
    for target in [format!("unix:{}", path.display()), format!("unix://{}", path.display())] {
        let run = courier(["call", &target, "courier.test.Echo/Unary", "-d", r#"{"text": "local"}"#])
            .await
            .ok();
        assert_eq!(run.json()[0]["text"], "local", "{target}: {run:?}");
    }
    assert_eq!(counters.started.load(std::sync::atomic::Ordering::SeqCst), 2);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    // A malformed target says what was expected, in one line.
    let run = courier(["call", "ipv4:not-an-ip", "courier.test.Echo/Unary"]).await;
    run.one_line_error(1, &["invalid address \"ipv4:not-an-ip\"", "not an IPv4 address"]);
}

// --- bench -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn bench_round_robin_spreads_calls_over_both_backends_and_pick_first_sticks_to_the_first() {
    let (a, b) = (full_server().await, full_server().await);
    let target = format!("ipv4:{},{}", a.addr, b.addr);
    let bench = |lb: &'static str| {
        let target = target.clone();
        async move {
            courier([
                "bench",
                &target,
                "courier.test.Echo/Unary",
                "-d",
                r#"{"text": "spread"}"#,
                "--lb",
                lb,
                "--concurrency",
                "4",
                "-n",
                "1000",
                "--format",
                "json",
            ])
            .await
            .ok()
        }
    };

    let run = bench("round_robin").await;
    let summary = &run.json()[0];
    assert_eq!(summary["ok"], 1000, "{run:?}");
    assert_eq!(summary["load_balancing"], "round_robin", "{run:?}");
    let (on_a, on_b) = (echo_calls(&a), echo_calls(&b));
    assert_eq!(on_a + on_b, 1000, "{run:?}");
    assert!(
        on_a > 0 && on_b > 0,
        "round_robin sent {on_a} calls to the first backend and {on_b} to the second: {run:?}"
    );

    // pick_first, the default, sends every call to the first address.
    let run = bench("pick_first").await;
    assert_eq!(run.json()[0]["ok"], 1000, "{run:?}");
    assert_eq!(run.json()[0]["load_balancing"], "pick_first", "{run:?}");
    assert_eq!((echo_calls(&a), echo_calls(&b)), (on_a + 1000, on_b), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_summarizes_as_json_and_text() {
    let server = full_server().await;
    let run = courier([
        "bench",
        &addr(&server),
        "courier.test.Echo/Unary",
        "-d",
        r#"{"text": "load"}"#,
        "-c",
        "2",
        "--concurrency",
        "4",
        "-n",
        "60",
        "--format",
        "json",
    ])
    .await
    .ok();
    let summary = &run.json()[0];
    assert_eq!(summary["calls"], 60, "{run:?}");
    assert_eq!(summary["ok"], 60, "{run:?}");
    assert_eq!(summary["status_codes"]["OK"], 60, "{run:?}");
    assert_eq!(summary["connections"], 2, "{run:?}");
    assert!(summary["calls_per_second"].as_f64().unwrap() > 0.0, "{run:?}");
    let latency = &summary["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() > 0.0, "{run:?}");
    assert!(
        latency["p99"].as_f64().unwrap() >= latency["p50"].as_f64().unwrap(),
        "{run:?}"
    );
    let histogram: u64 = summary["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(histogram, 60, "{run:?}");

    // For a duration, as text, with failures counted by code.
    let run = courier([
        "bench",
        &addr(&server),
        "courier.test.Echo/ServerStream",
        "-d",
        r#"{"count": 2, "fail_code": 8, "text": "slow down"}"#,
        "--concurrency",
        "2",
        "-z",
        "300ms",
    ])
    .await;
    assert_eq!(run.code, 1, "every call failed: {run:?}");
    assert!(run.stdout.contains("Calls/sec:"), "{run:?}");
    assert!(run.stdout.contains("RESOURCE_EXHAUSTED"), "{run:?}");
    assert!(
        run.stderr
            .contains("error: every call failed; the most common error: RESOURCE_EXHAUSTED: slow down"),
        "{run:?}"
    );

    let run = courier([
        "bench",
        &addr(&server),
        "courier.test.Echo/Bidi",
        "-d",
        r#"{"text": "a"} {"text": "b"}"#,
        "-n",
        "20",
    ])
    .await
    .ok();
    for part in ["Calls:         20 (20 OK, 0 failed)", "Latency histogram:", "p99", "OK"] {
        assert!(run.stdout.contains(part), "missing {part:?}: {run:?}");
    }
}

// --- errors a person understands ----------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_address() {
    // Refused for as long as `refusing` lives: its port is bound, never
    // listening, and no server of another test can take it meanwhile.
    let refusing = RefusingAddr::new();
    let addr = refusing.addr.to_string();
    for verb in [
        vec!["list", &addr],
        vec!["call", &addr, "courier.test.Echo/Unary"],
        vec!["health", &addr],
    ] {
        let run = courier(verb).await;
        run.one_line_error(1, &["failed to connect to", &addr]);
    }
    let run = courier(["list", "nonsense"]).await;
    run.one_line_error(1, &["invalid address \"nonsense\"", "HOST:PORT"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_without_reflection_suggests_proto() {
    let server = start_server().await;
    let run = courier(["list", &addr(&server)]).await;
    run.one_line_error(76, &["does not support server reflection", "--proto"]);
    let run = courier(["call", &addr(&server), "courier.test.Echo/Unary"]).await;
    run.one_line_error(76, &["does not support server reflection", "--proto"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_service_or_method() {
    let server = full_server().await;
    let run = courier(["call", &addr(&server), "courier.test.Nope/Unary"]).await;
    run.one_line_error(
        1,
        &[
            "unknown service courier.test.Nope",
            "courier.test.Echo, courier.test.Other",
        ],
    );

    let run = courier(["call", &addr(&server), "courier.test.Echo/Nope"]).await;
    run.one_line_error(
        1,
        &[
            "service courier.test.Echo has no method Nope",
            "Unary, ClientStream, ServerStream, Bidi",
        ],
    );

    let run = courier(["describe", &addr(&server), "courier.test.Missing"]).await;
    run.one_line_error(1, &["unknown symbol courier.test.Missing"]);

    let run = courier(["call", &addr(&server), "Unary"]).await;
    run.one_line_error(1, &["invalid method \"Unary\""]);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_that_does_not_match_names_the_field() {
    let server = full_server().await;
    let call = |data: &'static str| {
        let addr = addr(&server);
        async move { courier(["call", &addr, "courier.test.Echo/Unary", "-d", data]).await }
    };
    call(r#"{"sleepMs": "soon"}"#).await.one_line_error(
        1,
        &["the request does not match courier.test.EchoRequest: field `sleepMs`"],
    );
    call(r#"{"text": "x", "colour": "red"}"#)
        .await
        .one_line_error(1, &["courier.test.EchoRequest", "colour"]);
    call(r#"{"payload": "not base64!"}"#)
        .await
        .one_line_error(1, &["field `payload`"]);
    call(r#"{"text": "#)
        .await
        .one_line_error(1, &["the request is not valid JSON"]);
    call(r#"{"text": "a"} {"text": "b"}"#)
        .await
        .one_line_error(1, &["takes one request message, but 2 were given"]);
}

/// A CA and a server certificate it signed for `localhost`.
struct Pki {
    ca_pem: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "courier test CA");
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "server");
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_success_and_failures() {
    let ours = pki();
    let theirs = pki();
    let dir = tempfile::tempdir().unwrap();
    let our_ca = dir.path().join("ca.pem");
    let their_ca = dir.path().join("other-ca.pem");
    std::fs::write(&our_ca, &ours.ca_pem).unwrap();
    std::fs::write(&their_ca, &theirs.ca_pem).unwrap();
    let tls = ServerTlsConfig::from_pem(&ours.cert, &ours.key).unwrap();
    let server = start_with(move |b| {
        b.tls(tls)
            .unwrap()
            .with_reflection()
            .add_service(echo_with(Default::default()))
    })
    .await;
    let addr = addr(&server);
    let our_ca = our_ca.to_str().unwrap();
    let their_ca = their_ca.to_str().unwrap();
    let data = r#"{"text": "secret"}"#;
    let method = "courier.test.Echo/Unary";

    // Trusting the right CA.
    let run = courier([
        "call",
        &addr,
        method,
        "-d",
        data,
        "--ca",
        our_ca,
        "--servername",
        "localhost",
    ])
    .await
    .ok();
    assert_eq!(run.json()[0]["text"], "secret");
    // Or none, unverified.
    let run = courier(["call", &addr, method, "-d", data, "--insecure-skip-verify"])
        .await
        .ok();
    assert_eq!(run.json()[0]["text"], "secret");

    // A certificate from a CA not trusted.
    let run = courier([
        "call",
        &addr,
        method,
        "-d",
        data,
        "--ca",
        their_ca,
        "--servername",
        "localhost",
    ])
    .await;
    run.one_line_error(1, &["TLS handshake with", "failed", "--ca"]);

    // TLS to a plaintext server.
    let plain = start_server().await;
    let run = courier(["list", &plain.addr.to_string(), "--tls", "--insecure-skip-verify"]).await;
    run.one_line_error(1, &["TLS handshake with", "does not speak TLS", "--plaintext"]);

    // Plaintext to a TLS server (the default for loopback).
    let run = courier(["list", &addr]).await;
    run.one_line_error(1, &["answered with TLS", "--tls"]);

    // A CA file that is not one.
    let run = courier(["list", &addr, "--ca", "/nonexistent/ca.pem"]).await;
    run.one_line_error(1, &["cannot read --ca /nonexistent/ca.pem"]);
}

// --- --proto -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn proto_files_instead_of_reflection() {
    let server = start_server().await;
    let proto = echo_proto();
    let proto = proto.to_str().unwrap();
    let run = courier(["list", &addr(&server), "--proto", proto]).await.ok();
    assert_eq!(run.stdout, "courier.test.Echo\ncourier.test.Other\n");

    // The comments of the source show.
    let run = courier(["describe", &addr(&server), "courier.test.EchoRequest", "--proto", proto])
        .await
        .ok();
    assert!(
        run.stdout
            .contains("  // When non-zero, the handler fails with this status code and `text` as message.\n  int32 fail_code = 3;\n"),
        "{run:?}"
    );

    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo/ServerStream",
        "--proto",
        proto,
        "-d",
        r#"{"text": "from files", "count": 2}"#,
    ])
    .await
    .ok();
    assert_eq!(run.json().len(), 2, "{run:?}");
    assert_eq!(run.json()[1]["text"], "from files");

    // With an import path, the file is named relative to it.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../courier-tests/proto");
    let run = courier([
        "call",
        &addr(&server),
        "courier.test.Echo/Unary",
        "-I",
        dir.to_str().unwrap(),
        "--proto",
        "echo.proto",
        "-d",
        "{}",
    ])
    .await
    .ok();
    assert_eq!(run.json()[0], serde_json::json!({"deadlineMs": "-1"}), "{run:?}");

    let run = courier(["list", &addr(&server), "--proto", "/nonexistent/x.proto"]).await;
    run.one_line_error(1, &["--proto /nonexistent/x.proto: no such file"]);

    let run = courier(["call", &addr(&server), "courier.test.Gone/Unary", "--proto", proto]).await;
    run.one_line_error(1, &["unknown service courier.test.Gone", "the --proto files define"]);
}

// --- a grpcio server ------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn grpcio_server_with_reflection_and_health() {
    let Some(python) = grpcio_python("grpc_tools.protoc, grpc_health.v1.health, grpc_reflection.v1alpha.reflection")
    else {
        return;
    };
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let stubs = tempfile::tempdir().unwrap();
    let protoc = std::process::Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(&peers)
        .arg(format!("--python_out={}", stubs.path().display()))
        .arg(format!("--grpc_python_out={}", stubs.path().display()))
        .arg(peers.join("greeter.proto"))
        .output()
        .unwrap();
    assert!(protoc.status.success(), "{}", String::from_utf8_lossy(&protoc.stderr));

    let mut peer = Command::new(&python)
        .arg(peers.join("grpcio_server.py"))
        .arg(stubs.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut first = String::new();
    let stdout = peer.stdout.take().unwrap();
    tokio::time::timeout(Duration::from_secs(30), BufReader::new(stdout).read_line(&mut first))
        .await
        .expect("the grpcio server starts within 30 s")
        .unwrap();
    let port: u16 = first.trim().parse().unwrap_or_else(|_| panic!("not a port: {first:?}"));
    let addr = format!("127.0.0.1:{port}");

    // Reflection: grpcio serves v1alpha only, so this also checks the fallback.
    let run = courier(["list", &addr]).await.ok();
    for service in ["peer.greeter.Greeter", "grpc.health.v1.Health"] {
        assert!(run.stdout.lines().any(|l| l == service), "{run:?}");
    }
    let run = courier(["list", &addr, "peer.greeter.Greeter"]).await.ok();
    assert_eq!(
        run.stdout,
        "peer.greeter.Greeter.SayHello\npeer.greeter.Greeter.SayHellos\n"
    );
    // The imported well-known type comes through too.
    let run = courier(["describe", &addr, "peer.greeter.HelloReply"]).await.ok();
    assert!(run.stdout.contains("  .google.protobuf.Timestamp at = 2;\n"), "{run:?}");

    let run = courier([
        "call",
        &addr,
        "peer.greeter.Greeter/SayHello",
        "-d",
        r#"{"name": "Ada"}"#,
    ])
    .await
    .ok();
    assert_eq!(run.json()[0]["message"], "Hello, Ada!", "{run:?}");
    assert_eq!(run.json()[0]["at"], "2023-11-14T22:13:20Z", "{run:?}");

    let run = courier([
        "call",
        &addr,
        "peer.greeter.Greeter/SayHellos",
        "-d",
        r#"{"name": "Ada", "times": 3}"#,
    ])
    .await
    .ok();
    let messages: Vec<Value> = run.json().iter().map(|r| r["message"].clone()).collect();
    assert_eq!(
        messages,
        ["Hello #1, Ada!", "Hello #2, Ada!", "Hello #3, Ada!"],
        "{run:?}"
    );

    let run = courier(["call", &addr, "peer.greeter.Greeter/SayHello", "-d", "{}"]).await;
    run.one_line_error(67, &["error: INVALID_ARGUMENT: name is required"]);

    // Health.
    let run = courier(["health", &addr]).await.ok();
    assert_eq!(run.stdout, "SERVING\n");
    let run = courier(["health", &addr, "peer.greeter.Greeter"]).await.ok();
    assert_eq!(run.stdout, "SERVING\n");
    let run = courier(["health", &addr, "peer.greeter.Resting"]).await;
    assert_eq!((run.code, run.stdout.as_str()), (3, "NOT_SERVING\n"), "{run:?}");
    let run = courier(["health", &addr, "peer.greeter.Unknown"]).await;
    run.one_line_error(69, &["has no health status"]);

    // Bench.
    let run = courier([
        "bench",
        &addr,
        "peer.greeter.Greeter/SayHello",
        "-d",
        r#"{"name": "load"}"#,
        "-n",
        "30",
        "--concurrency",
        "3",
        "--format",
        "json",
    ])
    .await
    .ok();
    assert_eq!(run.json()[0]["ok"], 30, "{run:?}");

    // The server stops when its standard input closes.
    drop(peer.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), peer.wait()).await;
}

// --- channelz --------------------------------------------------------------

/// The first number after `prefix` on the line of `text` that starts with it
/// (after indentation).
fn number_after(text: &str, prefix: &str) -> Option<i64> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(prefix)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn channelz_prints_a_courier_servers_channels_servers_and_sockets() {
    let server = start_with_counters(|b, counters| b.add_service(echo_with(counters)).with_admin()).await;
    // A channel of this process, with calls, for the listing to show.
    let channel = courier::Channel::connect(server.url()).await.unwrap();
    let echo = courier_tests::EchoClient::new(channel.clone());
    echo.unary(courier_tests::text("one")).await.unwrap();
    echo.unary(courier_tests::text("two")).await.unwrap();

    let run = courier(["channelz", &addr(&server)]).await.ok();
    let out = &run.stdout;
    assert!(out.contains(&format!("target: {}", server.url())), "{run:?}");
    assert!(out.contains("state: READY"), "{run:?}");
    assert!(out.contains("Channel created"), "{run:?}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("subchannel ")),
        "{run:?}"
    );
    let listen = format!(": {}", server.addr);
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("listen socket ") && l.ends_with(&listen)),
        "{run:?}"
    );
    // The channel's connection, seen from both ends, and the CLI's own.
    assert!(out.contains(&format!("-> {}", server.addr)), "{run:?}");
    assert!(out.contains("streams: "), "{run:?}");
    assert!(out.contains("messages: "), "{run:?}");
    assert!(out.contains("security: none"), "{run:?}");

    // One entity at a time. Other tests' channels and servers, in this
    // process too, come and go: ours stay, so ask for those. The socket is
    // the client end of this channel's connection (the CLI's own
    // connection is in the CLI's process).
    let to_server = format!(" -> {}", server.addr);
    let socket_id = out
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with("socket ") && l.ends_with(&to_server))
        .and_then(|l| number_after(l, "socket "))
        .unwrap_or_else(|| panic!("no socket to {}: {run:?}", server.addr));
    let run = courier(["channelz", &addr(&server), "socket", &socket_id.to_string()])
        .await
        .ok();
    assert!(run.stdout.starts_with(&format!("socket {socket_id}: ")), "{run:?}");
    assert!(run.stdout.contains("flow-control windows: local "), "{run:?}");
    let lines: Vec<&str> = out.lines().collect();
    let target_at = lines
        .iter()
        .position(|l| l.trim_start() == format!("target: {}", server.url()))
        .unwrap();
    let channel_id = lines[..target_at]
        .iter()
        .rev()
        .find_map(|l| number_after(l, "channel "))
        .expect("the channel above its target");
    let run = courier(["channelz", &addr(&server), "channel", &channel_id.to_string()])
        .await
        .ok();
    assert!(run.stdout.starts_with(&format!("channel {channel_id}\n")), "{run:?}");
    assert!(run.stdout.contains(&format!("target: {}", server.url())), "{run:?}");

    // An id nothing has: NOT_FOUND, exit 64 + 5.
    let run = courier(["channelz", &addr(&server), "server", "9223372036854775807"]).await;
    run.one_line_error(69, &["has no server 9223372036854775807"]);
    drop(channel);
}

#[tokio::test(flavor = "multi_thread")]
async fn channelz_of_a_server_without_it_says_so() {
    let server = start_server().await;
    let run = courier(["channelz", &addr(&server)]).await;
    run.one_line_error(76, &["does not serve channelz"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn channelz_reads_a_grpcio_servers_channelz() {
    let Some(python) = grpcio_python("grpc_channelz.v1.channelz, grpc_health.v1.health") else {
        return;
    };
    let peer = courier_tests::PythonPeer::start(&python, "channelz_server.py", &[]).await;
    let addr = format!("127.0.0.1:{}", peer.port);
    // A call for the server to count.
    courier(["health", &addr]).await.ok();

    let run = courier(["channelz", &addr]).await.ok();
    let out = &run.stdout;
    assert!(out.lines().any(|l| l.starts_with("server ")), "{run:?}");
    let calls = number_after(out, "calls: ").expect("the server's call counts");
    // The health check, and the calls of this listing so far.
    assert!(calls >= 2, "{run:?}");
    // grpcio reports its listening socket with the port it was asked for
    // (0, an ephemeral one), not the one it got.
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("listen socket ") && l.contains(": 127.0.0.1:")),
        "{run:?}"
    );
    // The CLI's own connection, accepted by the grpcio server.
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("socket ") && l.contains(&format!("{addr} -> 127.0.0.1:"))),
        "{run:?}"
    );
    assert!(out.contains("streams: "), "{run:?}");
    let server_id = number_after(out, "server ").unwrap();
    let run = courier(["channelz", &addr, "server", &server_id.to_string()])
        .await
        .ok();
    assert!(run.stdout.starts_with(&format!("server {server_id}\n")), "{run:?}");
    drop(peer);
}
