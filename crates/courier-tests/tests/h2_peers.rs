//! Courier's server and client against independent HTTP/2 implementations
//! that know nothing of gRPC, framing it by hand:
//!
//! - Python's `h2` (`peers/h2_peer.py`) as a raw HTTP/2 client of a Courier
//!   server (one call, concurrent streams on one connection, a mebibyte
//!   each way under flow control, a reset mid-call) and as a raw HTTP/2
//!   server for Courier's client (messages split across padded DATA
//!   frames, GOAWAY, REFUSED_STREAM);
//! - nghttp2's tools (Debian's `nghttp2-client` and `nghttp2-server`):
//!   `nghttp` and `h2load` calling a Courier server, and `nghttpd`, a file
//!   server, answering Courier's client with plain HTTP.
//!
//! They test the server and client as a peer sees them on the wire, so
//! they hold whatever HTTP/2 engine is underneath. The Python peer needs
//! the venv that `scripts/interop/install-python.sh` makes (with h2); the
//! nghttp2 tools come from `scripts/interop/install-nghttp2.sh`. Without
//! them the tests print a note and pass, unless `COURIER_REQUIRE_PEERS=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use courier::client::ConnectivityState;
use courier::{Channel, Code, Request};
use courier_tests::{
    EchoClient, EchoRequest, EchoResponse, Gate, PythonPeer, grpcio_python, guard, listening_port, start_gated,
    start_server, text,
};
use prost::Message;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

// --- helpers ------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A gRPC message on the wire: uncompressed flag, 4-byte length, bytes.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The venv's Python with h2, or `None` to skip.
fn h2_python() -> Option<PathBuf> {
    grpcio_python("h2")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/h2_peer.py")
}

/// Runs the h2 client's `case` against `port` with `messages` (serialized
/// protobuf) and returns the JSON line it printed.
async fn h2_client(python: &Path, case: &str, port: u16, messages: &[Vec<u8>]) -> Value {
    let mut child = Command::new(python)
        .arg(script())
        .args(["client", case, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the h2 client");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input: String = messages.iter().map(|m| hex(m) + "\n").collect();
    guard("writing the h2 client's messages", stdin.write_all(input.as_bytes()))
        .await
        .unwrap();
    drop(stdin);
    let output = guard(&format!("the h2 client ({case})"), child.wait_with_output())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the h2 client ({case}) failed: {output:?}");
    let line = stdout.trim().lines().last().expect("the h2 client's JSON line");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("the h2 client printed {line:?}: {e}"))
}

/// One stream of the h2 client's result.
struct Answer {
    headers: Value,
    trailers: Value,
    messages: Vec<EchoResponse>,
    reset: Value,
    data_frames: u64,
    max_data_frame: u64,
}

fn answer(stream: &Value) -> Answer {
    Answer {
        headers: stream["headers"].clone(),
        trailers: stream["trailers"].clone(),
        messages: stream["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| EchoResponse::decode(unhex(m.as_str().unwrap()).as_slice()).expect("an EchoResponse"))
            .collect(),
        reset: stream["reset"].clone(),
        data_frames: stream["data_frames"].as_u64().unwrap(),
        max_data_frame: stream["max_data_frame"].as_u64().unwrap(),
    }
}

/// `value` as JSON, cut short: a stream's result can hold megabytes of hex.
fn brief(value: &Value) -> String {
    let json = value.to_string();
    if json.len() <= 2000 {
        return json;
    }
    json.chars().take(2000).chain("...".chars()).collect()
}

/// The one message of a successful unary answer, after checking its
/// headers and trailers.
fn unary_ok(stream: &Value) -> EchoResponse {
    let a = answer(stream);
    assert_eq!(a.reset, Value::Null, "the stream was reset: {}", brief(stream));
    assert_eq!(a.headers[":status"], "200", "{}", brief(stream));
    assert_eq!(a.headers["content-type"], "application/grpc", "{}", brief(stream));
    assert_eq!(a.trailers["grpc-status"], "0", "{}", brief(stream));
    assert_eq!(a.messages.len(), 1, "{}", brief(stream));
    a.messages.into_iter().next().unwrap()
}

fn streams(result: &Value) -> &Vec<Value> {
    result["streams"].as_array().expect("streams")
}

/// The h2 server, `port N` once it serves.
async fn h2_server(python: &Path) -> PythonPeer {
    PythonPeer::start(python, "h2_peer.py", &["server".to_string()]).await
}

async fn count(server: &mut PythonPeer, command: &str) -> u64 {
    let answer = server.command(command).await;
    answer
        .parse()
        .unwrap_or_else(|_| panic!("the h2 server answered {command:?} with {answer:?}"))
}

fn call(id: &str, metadata: &[(&str, &str)]) -> Request<EchoRequest> {
    let mut request = Request::new(text(id));
    request.metadata_mut().insert("x-call", id).unwrap();
    for (name, value) in metadata {
        request.metadata_mut().insert(name, value).unwrap();
    }
    request
}

async fn channel_to(port: u16) -> Channel {
    guard("connect", Channel::connect(format!("http://127.0.0.1:{port}")))
        .await
        .expect("connect")
}

/// An nghttp2 tool (`nghttp`, `h2load`, `nghttpd`) from `package`, or
/// `None` to skip.
fn nghttp2_tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    match found {
        Some(path) => Some(path),
        None if std::env::var("COURIER_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("COURIER_REQUIRE_PEERS=1 but {name} is not installed (apt-get install {package})")
        }
        None => {
            eprintln!(
                "note: skipping an nghttp2 test: {name} is not installed (apt-get install {package}, \
                 or scripts/interop/install-nghttp2.sh)"
            );
            None
        }
    }
}

/// A file holding one gRPC-framed EchoRequest, for nghttp's and h2load's
/// `-d`.
fn request_file(dir: &Path, request: &EchoRequest) -> PathBuf {
    let path = dir.join("request.grpc");
    std::fs::write(&path, grpc_frame(&request.encode_to_vec())).unwrap();
    path
}

/// The values of the response header (or trailer) `name` in `nghttp -v`'s
/// output, from its lines `[  0.003] recv (stream_id=13) name: value`.
fn received(output: &str, name: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.split_once("] recv (stream_id=")?.1;
            let (_, header) = rest.split_once(") ")?;
            Some(header.strip_prefix(name)?.strip_prefix(": ")?.to_string())
        })
        .collect()
}

/// Runs `nghttp -v` with a gRPC POST of `body` to `path` on `port`; returns
/// its output.
async fn nghttp_post(nghttp: &Path, port: u16, path: &str, body: &Path) -> String {
    let output = guard(
        "nghttp",
        Command::new(nghttp)
            .args([
                "-v",
                "-H",
                ":method: POST",
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
            ])
            .arg("-d")
            .arg(body)
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run nghttp");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "nghttp failed: {output:?}\n{stdout}");
    stdout
}

// --- Python's h2 as a client of a Courier server -------------------------------

#[tokio::test]
async fn python_h2_client_makes_a_unary_call_with_a_hand_framed_message() {
    let Some(python) = h2_python() else { return };
    let server = start_server().await;
    let request = EchoRequest {
        text: "framed by hand".into(),
        payload: vec![1, 2, 3, 0, 255],
        ..Default::default()
    };
    let result = h2_client(&python, "unary", server.addr.port(), &[request.encode_to_vec()]).await;
    assert_eq!(streams(&result).len(), 1, "{result}");
    let response = unary_ok(&streams(&result)[0]);
    assert_eq!(response.text, "framed by hand");
    assert_eq!(response.payload, [1, 2, 3, 0, 255]);
    assert_eq!(result["goaway"], Value::Null, "{result}");
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn python_h2_client_runs_concurrent_streams_on_one_connection() {
    let Some(python) = h2_python() else { return };
    const CALLS: usize = 8;
    let gate = Arc::new(Gate::default());
    let server = start_gated(&gate).await;
    let messages: Vec<Vec<u8>> = (0..CALLS).map(|i| text(&format!("call {i}")).encode_to_vec()).collect();
    // Every handler waits at the gate: all of them start only if the
    // client's streams are open at once on its one connection.
    let (result, ()) = tokio::join!(h2_client(&python, "concurrent", server.addr.port(), &messages), async {
        gate.wait_started(CALLS).await;
        gate.release(CALLS);
    });
    assert_eq!(gate.most(), CALLS, "the calls ran at once");
    let streams = streams(&result);
    assert_eq!(streams.len(), CALLS, "{result}");
    for (i, stream) in streams.iter().enumerate() {
        assert_eq!(stream["id"], 2 * i as u64 + 1, "{stream}");
        assert_eq!(unary_ok(stream).text, format!("call {i}"));
    }
}

#[tokio::test]
async fn python_h2_client_sends_and_receives_a_mebibyte_under_flow_control() {
    let Some(python) = h2_python() else { return };
    let server = start_server().await;
    let payload: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let request = EchoRequest {
        text: "large".into(),
        payload: payload.clone(),
        ..Default::default()
    };
    let result = h2_client(&python, "large", server.addr.port(), &[request.encode_to_vec()]).await;
    let stream = &streams(&result)[0];
    let response = unary_ok(stream);
    assert!(response.payload == payload, "the echoed mebibyte differs");
    // A connection's window starts at 65,535 bytes whatever the settings:
    // the rest of the mebibyte went out on the credit of Courier's
    // WINDOW_UPDATEs.
    let sent = grpc_frame(&request.encode_to_vec()).len() as u64;
    let credit = result["connection_credit"].as_u64().unwrap();
    assert!(
        credit + 65_535 >= sent,
        "{sent} bytes sent on {credit} bytes of credit ({} WINDOW_UPDATEs)",
        result["window_updates"]
    );
    // And the answer came within the client's 16 KiB frames and 64 KiB
    // windows, which h2 enforces (a violation fails the client): Courier
    // waited for the client's WINDOW_UPDATEs.
    assert_eq!(result["receive_window"], 65_535, "the client's initial window");
    let a = answer(stream);
    assert!(a.max_data_frame <= 16_384, "a DATA frame of {} bytes", a.max_data_frame);
    assert!(a.data_frames >= 64, "{} DATA frames for a mebibyte", a.data_frames);
}

#[tokio::test]
async fn python_h2_client_reset_mid_call_cancels_the_handler_and_the_connection_serves_on() {
    let Some(python) = h2_python() else { return };
    let server = start_server().await;
    let messages = [
        text("before the reset").encode_to_vec(),
        text("after the reset").encode_to_vec(),
    ];
    let result = h2_client(&python, "reset", server.addr.port(), &messages).await;
    let streams = streams(&result);
    assert_eq!(streams.len(), 2, "{result}");
    // The Bidi call had answered its first message, and was still open,
    // when the client reset it.
    let bidi = answer(&streams[0]);
    assert_eq!(bidi.headers[":status"], "200", "{result}");
    assert_eq!(bidi.messages[0].text, "before the reset");
    assert_eq!(bidi.trailers, Value::Null, "the Bidi call had ended: {result}");
    // Its handler is cancelled, and the same connection serves a new call.
    server.counters.wait_cancelled(1).await;
    assert_eq!(streams[1]["id"], 3, "{result}");
    assert_eq!(unary_ok(&streams[1]).text, "after the reset");
    assert_eq!(result["goaway"], Value::Null, "{result}");
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 2);
}

// --- Python's h2 as a server for Courier's client ------------------------------

#[tokio::test]
async fn courier_client_reads_a_unary_answer_split_across_padded_frames_from_python_h2() {
    let Some(python) = h2_python() else { return };
    let server = h2_server(&python).await;
    let client = EchoClient::new(channel_to(server.port).await);
    let response = guard("the unary call", client.unary(call("hello", &[])))
        .await
        .expect("the h2 server's answer");
    assert_eq!(response.get_ref().text, "h2 says hello");
    assert_eq!(response.metadata().get("x-h2-peer"), Some("python-h2"));
    let frames: usize = response.trailers().get("x-data-frames").unwrap().parse().unwrap();
    // 5 bytes of prefix and 15 of message, in frames of 1 to 7 bytes.
    assert!(frames >= 4, "the message came in {frames} DATA frames");
}

#[tokio::test]
async fn courier_client_reads_a_server_stream_split_across_padded_frames_from_python_h2() {
    let Some(python) = h2_python() else { return };
    let server = h2_server(&python).await;
    let client = EchoClient::new(channel_to(server.port).await);
    let request = Request::new(EchoRequest {
        text: "streamed".into(),
        count: 5,
        ..Default::default()
    });
    let response = guard("the stream's headers", client.server_stream(request))
        .await
        .expect("the h2 server's answer");
    assert_eq!(response.metadata().get("x-h2-peer"), Some("python-h2"));
    let mut stream = response.into_inner();
    let mut got = Vec::new();
    while let Some(message) = guard("a streamed message", stream.message()).await.expect("a message") {
        got.push((message.text, message.index));
    }
    let want: Vec<(String, u32)> = (0..5).map(|i| ("streamed".to_string(), i)).collect();
    assert_eq!(got, want);
    let trailers = stream.trailers().expect("the trailers");
    let frames: usize = trailers.get("x-data-frames").unwrap().parse().unwrap();
    assert!(frames > 5, "five messages came in {frames} DATA frames");
}

#[tokio::test]
async fn courier_client_reconnects_for_the_next_call_after_a_python_h2_goaway() {
    let Some(python) = h2_python() else { return };
    let mut server = h2_server(&python).await;
    let client = EchoClient::new(channel_to(server.port).await);
    // Answered, then GOAWAY naming this call's stream as the last.
    let first = guard(
        "the call before the GOAWAY",
        client.unary(call("first", &[("x-goaway-after", "1")])),
    )
    .await
    .expect("answered before the GOAWAY");
    assert_eq!(first.get_ref().text, "h2 says first");
    let second = guard("the call after the GOAWAY", client.unary(call("second", &[])))
        .await
        .expect("answered on a new connection");
    assert_eq!(second.get_ref().text, "h2 says second");
    assert_eq!(count(&mut server, "connections").await, 2);
    assert_eq!(count(&mut server, "attempts second").await, 1);
}

#[tokio::test]
async fn courier_client_sends_a_call_again_transparently_after_refused_stream() {
    let Some(python) = h2_python() else { return };
    let mut server = h2_server(&python).await;
    let client = EchoClient::new(channel_to(server.port).await);
    // REFUSED_STREAM says the server never processed the stream: Courier
    // sends the call again, with no retry policy, on the same connection.
    let refused = call("refused-twice", &[("x-refuse-times", "2"), ("x-refuse-how", "rst")]);
    let response = guard("the refused call", client.unary(refused))
        .await
        .expect("answered on the third attempt");
    assert_eq!(response.get_ref().text, "h2 says refused-twice");
    assert_eq!(count(&mut server, "attempts refused-twice").await, 3);
    assert_eq!(count(&mut server, "connections").await, 1);

    // Up to four times (DESIGN.md): a server that refuses everything fails
    // the call with UNAVAILABLE after five attempts.
    let always = call("refused-always", &[("x-refuse-times", "100"), ("x-refuse-how", "rst")]);
    let err = guard("the always refused call", client.unary(always))
        .await
        .expect_err("refused every time");
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("REFUSED_STREAM"), "{err}");
    assert_eq!(count(&mut server, "attempts refused-always").await, 5);
}

#[tokio::test]
async fn courier_client_sends_a_call_left_unprocessed_by_python_h2_goaway_on_a_new_connection() {
    let Some(python) = h2_python() else { return };
    let mut server = h2_server(&python).await;
    let client = EchoClient::new(channel_to(server.port).await);
    // GOAWAY whose last stream ID is below the call's: it was not
    // processed, and goes again on a new connection.
    let refused = call("goaway-once", &[("x-refuse-times", "1"), ("x-refuse-how", "goaway")]);
    let response = guard("the call", client.unary(refused))
        .await
        .expect("answered on the second connection");
    assert_eq!(response.get_ref().text, "h2 says goaway-once");
    assert_eq!(count(&mut server, "attempts goaway-once").await, 2);
    assert_eq!(count(&mut server, "connections").await, 2);
}

// --- nghttp2's nghttp and h2load as clients of a Courier server ----------------

#[tokio::test]
async fn nghttp_makes_a_unary_call_and_reads_grpc_status_0() {
    let Some(nghttp) = nghttp2_tool("nghttp", "nghttp2-client") else {
        return;
    };
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let body = request_file(dir.path(), &text("hello from nghttp"));
    let out = nghttp_post(&nghttp, server.addr.port(), "/courier.test.Echo/Unary", &body).await;
    assert_eq!(received(&out, ":status"), ["200"], "{out}");
    assert_eq!(received(&out, "content-type"), ["application/grpc"], "{out}");
    assert_eq!(received(&out, "grpc-status"), ["0"], "{out}");
    // The body nghttp printed is the echoed message.
    assert!(out.contains("hello from nghttp"), "{out}");
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn nghttp_calling_an_unknown_method_reads_unimplemented() {
    let Some(nghttp) = nghttp2_tool("nghttp", "nghttp2-client") else {
        return;
    };
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let body = request_file(dir.path(), &text("anyone?"));
    let out = nghttp_post(&nghttp, server.addr.port(), "/courier.test.Echo/Nope", &body).await;
    assert_eq!(received(&out, ":status"), ["200"], "{out}");
    assert_eq!(received(&out, "grpc-status"), ["12"], "{out}");
}

#[tokio::test]
async fn h2load_completes_300_grpc_calls_on_a_courier_server() {
    let Some(h2load) = nghttp2_tool("h2load", "nghttp2-client") else {
        return;
    };
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let body = request_file(dir.path(), &text("load"));
    let output = guard(
        "h2load",
        Command::new(h2load)
            .args(["-n", "300", "-c", "2", "-m", "10"])
            .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
            .arg("-d")
            .arg(&body)
            .arg(format!(
                "http://127.0.0.1:{}/courier.test.Echo/Unary",
                server.addr.port()
            ))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run h2load");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "h2load failed: {output:?}\n{out}");
    // "requests: 300 total, 300 started, 300 done, 300 succeeded, 0 failed, ..."
    let requests = out
        .lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .unwrap_or_else(|| panic!("no requests line: {out}"));
    let counted = |what: &str| -> u64 {
        requests
            .split(", ")
            .find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {what} count in {requests:?}"))
    };
    assert_eq!(counted(" succeeded"), 300, "{out}");
    assert_eq!(counted(" failed"), 0, "{out}");
    assert_eq!(counted(" errored"), 0, "{out}");
    assert!(out.contains("status codes: 300 2xx"), "{out}");
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 300);
    assert_eq!(server.counters.cancelled.load(Ordering::SeqCst), 0);
}

// --- nghttpd, a file server, answering Courier's client -------------------------

/// nghttpd without TLS on 127.0.0.1, serving `htdocs`; killed when dropped.
struct Nghttpd {
    port: u16,
    child: tokio::process::Child,
    /// Its verbose log, read as it comes so it never blocks on a full pipe.
    log: tokio::task::JoinHandle<Vec<String>>,
}

impl Nghttpd {
    async fn start(nghttpd: &Path, htdocs: &Path) -> Nghttpd {
        // Port 0: nghttpd binds an ephemeral port but prints the number it
        // was given, so its port is looked up among its sockets once it
        // says it listens (it prints that after listen(2)).
        let mut child = Command::new(nghttpd)
            .args(["--no-tls", "-v", "-a", "127.0.0.1", "-d"])
            .arg(htdocs)
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start nghttpd");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = guard("nghttpd listening", lines.next_line())
            .await
            .unwrap()
            .expect("nghttpd exited before listening");
        assert!(first.starts_with("IPv4: listen 127.0.0.1:"), "nghttpd said {first:?}");
        let pid = child.id().expect("nghttpd's pid");
        let port = listening_port(pid).expect("nghttpd's listening socket");
        let log = tokio::spawn(async move {
            let mut log = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                log.push(line);
            }
            log
        });
        Nghttpd { port, child, log }
    }

    /// Stops nghttpd; returns the connections it served, by the `[id=N]`
    /// its log gives each.
    async fn stop(mut self) -> usize {
        self.child.start_kill().unwrap();
        guard("nghttpd to exit", self.child.wait()).await.unwrap();
        let log = guard("nghttpd's log", self.log).await.unwrap();
        let ids: std::collections::HashSet<&str> = log
            .iter()
            .filter_map(|line| Some(line.strip_prefix("[id=")?.split_once(']')?.0))
            .collect();
        ids.len()
    }
}

#[tokio::test]
async fn courier_client_maps_nghttpd_404_to_unimplemented_over_one_connection() {
    let Some(nghttpd) = nghttp2_tool("nghttpd", "nghttp2-server") else {
        return;
    };
    let htdocs = tempfile::tempdir().unwrap();
    let server = Nghttpd::start(&nghttpd, htdocs.path()).await;
    let channel = channel_to(server.port).await;
    let client = EchoClient::new(channel.clone());
    for id in ["first", "second"] {
        let err = guard("the call to nghttpd", client.unary(call(id, &[])))
            .await
            .expect_err("nghttpd has no such file");
        // PROTOCOL-HTTP2.md's HTTP-to-gRPC mapping: 404 is UNIMPLEMENTED.
        assert_eq!(err.code(), Code::Unimplemented, "{err}");
        assert!(err.message().contains("HTTP status 404"), "{err}");
    }
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    assert_eq!(server.stop().await, 1, "both calls on one HTTP/2 connection");
}

#[tokio::test]
async fn courier_client_rejects_a_plain_200_file_from_nghttpd() {
    let Some(nghttpd) = nghttp2_tool("nghttpd", "nghttp2-server") else {
        return;
    };
    let htdocs = tempfile::tempdir().unwrap();
    std::fs::create_dir(htdocs.path().join("courier.test.Echo")).unwrap();
    std::fs::write(htdocs.path().join("courier.test.Echo/Unary"), "not a gRPC message\n").unwrap();
    let server = Nghttpd::start(&nghttpd, htdocs.path()).await;
    let client = EchoClient::new(channel_to(server.port).await);
    let err = guard("the call to nghttpd", client.unary(call("file", &[])))
        .await
        .expect_err("a file is no gRPC answer");
    // HTTP 200, but neither a gRPC content-type nor a grpc-status: the file
    // is not read as messages.
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(err.message().contains("content-type"), "{err}");
    server.stop().await;
}
