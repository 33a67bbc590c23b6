//! The interop client: the test cases of grpc/grpc
//! `doc/interop-test-descriptions.md`, run against any server that
//! implements `grpc.testing.TestService`.
//!
//! Each case either passes or fails with one line that says what differed,
//! e.g. `large_unary: response payload is 0 bytes, expected 314159`. Every
//! call has a deadline (at most [`CALL_TIMEOUT`]) and every case a time
//! limit, so a misbehaving server cannot hang the client.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use courier::credentials::ClientTlsConfig;
use courier::{Channel, Code, Encoding, MessageCompressed, MessageCompression, Metadata, Request, Status, Streaming};
use futures_util::stream::{self, Stream, StreamExt as _};
use tokio::sync::mpsc;

use crate::pb::test_service_client::TestServiceClient;
use crate::pb::unimplemented_service_client::UnimplementedServiceClient;
use crate::pb::{
    BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use crate::server::{ECHO_INITIAL_KEY, ECHO_TRAILING_KEY};

/// The deadline of each call, unless a case needs another.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one test case (other than the soak tests) may take in all.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// The test cases this client runs, by name.
pub const TEST_CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
    "rpc_soak",
    "channel_soak",
];

/// The command line of `courier-interop-client`.
///
/// Boolean flags take `--flag`, `--flag=true` or `--flag=false`, as the
/// interop runners of every gRPC implementation pass them.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "courier-interop-client",
    version,
    about = "The gRPC interop test client, for Courier."
)]
pub struct ClientArgs {
    /// The server's host name or IP address.
    #[arg(long = "server_host", default_value = "127.0.0.1")]
    pub server_host: String,

    /// The server's port.
    #[arg(long = "server_port", default_value_t = 10000)]
    pub server_port: u16,

    /// The host name to claim: the TLS server name and the `:authority`.
    #[arg(long = "server_host_override", value_name = "NAME")]
    pub server_host_override: Option<String>,

    /// The test case to run (see TEST_CASES).
    #[arg(long = "test_case", default_value = "large_unary")]
    pub test_case: String,

    /// Connect over TLS rather than plaintext.
    #[arg(long = "use_tls", num_args = 0..=1, default_value_t = false, default_missing_value = "true",
        action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub use_tls: bool,

    /// Trust the test CA given by --ca_file instead of the system roots.
    #[arg(long = "use_test_ca", num_args = 0..=1, default_value_t = false, default_missing_value = "true",
        action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub use_test_ca: bool,

    /// A PEM file of CA certificates to trust, with --use_tls.
    #[arg(long = "ca_file", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// How many calls the soak tests make.
    #[arg(long = "soak_iterations", default_value_t = 10)]
    pub soak_iterations: u32,

    /// How many soak iterations may fail before the test does.
    #[arg(long = "soak_max_failures", default_value_t = 0)]
    pub soak_max_failures: u32,

    /// A soak iteration that takes longer than this fails.
    #[arg(long = "soak_per_iteration_max_acceptable_latency_ms", default_value_t = 1000)]
    pub soak_per_iteration_max_acceptable_latency_ms: u64,

    /// A soak test that has not finished its iterations after this fails.
    #[arg(long = "soak_overall_timeout_seconds", default_value_t = 10)]
    pub soak_overall_timeout_seconds: u64,

    /// The least time from the start of one soak iteration to the next.
    #[arg(long = "soak_min_time_ms_between_rpcs", default_value_t = 0)]
    pub soak_min_time_ms_between_rpcs: u64,
}

/// The TLS configuration that trusts the CA certificates in `ca_file` (or
/// the system roots without one) and expects the server to be
/// `server_name`.
///
/// # Errors
///
/// A CA file that cannot be read or holds no certificate.
pub fn tls_client_config(ca_file: Option<&Path>, server_name: &str) -> Result<ClientTlsConfig, String> {
    let config = ClientTlsConfig::new().server_name(server_name);
    match ca_file {
        Some(path) => config.ca_pem_file(path).map_err(|e| e.to_string()),
        None => Ok(config),
    }
}

/// Runs the test case the arguments name.
///
/// # Errors
///
/// One line, starting with the test case's name, that says what differed or
/// what went wrong.
pub async fn run(args: &ClientArgs) -> Result<(), String> {
    let case = args.test_case.as_str();
    let limit = if case.ends_with("_soak") {
        Duration::from_secs(args.soak_overall_timeout_seconds) + CASE_TIMEOUT
    } else {
        CASE_TIMEOUT
    };
    let result = match tokio::time::timeout(limit, run_case(args)).await {
        Ok(result) => result,
        Err(_) => Err(format!("did not finish within {limit:?}")),
    };
    result.map_err(|e| format!("{case}: {e}").replace('\n', "\\n"))
}

async fn run_case(args: &ClientArgs) -> Result<(), String> {
    if !TEST_CASES.contains(&args.test_case.as_str()) {
        return Err(format!("unknown test case; known cases: {}", TEST_CASES.join(", ")));
    }
    let channel = connect(args).await?;
    let client = TestServiceClient::new(channel.clone());
    match args.test_case.as_str() {
        "empty_unary" => empty_unary(&client).await,
        "large_unary" => large_unary(&client).await,
        "client_streaming" => client_streaming(&client).await,
        "server_streaming" => server_streaming(&client).await,
        "ping_pong" => ping_pong(&client).await,
        "empty_stream" => empty_stream(&client).await,
        "timeout_on_sleeping_server" => timeout_on_sleeping_server(&client).await,
        "cancel_after_begin" => cancel_after_begin(&client).await,
        "cancel_after_first_response" => cancel_after_first_response(&client).await,
        "status_code_and_message" => status_code_and_message(&client).await,
        "special_status_message" => special_status_message(&client).await,
        "custom_metadata" => custom_metadata(&client).await,
        "unimplemented_method" => unimplemented_method(&client).await,
        "unimplemented_service" => unimplemented_service(channel).await,
        "client_compressed_unary" => client_compressed_unary(&client).await,
        "server_compressed_unary" => server_compressed_unary(&client).await,
        "client_compressed_streaming" => client_compressed_streaming(&client).await,
        "server_compressed_streaming" => server_compressed_streaming(&client).await,
        "rpc_soak" => soak(args, Some(client)).await,
        "channel_soak" => soak(args, None).await,
        other => Err(format!("test case {other:?} is listed but not implemented")),
    }
}

/// Connects a channel to the server the arguments name.
///
/// # Errors
///
/// Bad TLS flags, or a server that cannot be reached.
pub async fn connect(args: &ClientArgs) -> Result<Channel, String> {
    let host = &args.server_host;
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{}", args.server_port)
    } else {
        format!("http://{host}:{}", args.server_port)
    };
    let tls = if args.use_tls {
        if args.use_test_ca && args.ca_file.is_none() {
            return Err("--use_test_ca needs --ca_file: this client has no built-in test CA".to_string());
        }
        let server_name = args.server_host_override.as_deref().unwrap_or(host);
        Some(tls_client_config(args.ca_file.as_deref(), server_name)?)
    } else {
        None
    };
    let mut builder = Channel::builder(&target).connect_timeout(Duration::from_secs(10));
    if let Some(config) = tls {
        builder = builder.tls(config);
    }
    if let Some(name) = &args.server_host_override {
        builder = builder.authority(format!("{name}:{}", args.server_port));
    }
    builder
        .connect()
        .await
        .map_err(|s| format!("cannot connect to {target}: {}", describe(&s)))
}

/// A status as `CODE "message"`, on one line.
fn describe(status: &Status) -> String {
    format!("{} {:?}", status.code().name(), status.message())
}

/// A request with the default deadline.
fn request<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// A COMPRESSABLE payload of `len` zeros.
fn zeros(len: usize) -> Option<Payload> {
    Some(Payload {
        r#type: PayloadType::Compressable.into(),
        body: vec![0; len],
    })
}

/// Checks that a payload is `len` zeros.
fn check_payload(what: &str, payload: Option<&Payload>, len: usize) -> Result<(), String> {
    let Some(payload) = payload else {
        return Err(format!("{what} has no payload, expected {len} bytes"));
    };
    if payload.body.len() != len {
        return Err(format!(
            "{what} payload is {} bytes, expected {len}",
            payload.body.len()
        ));
    }
    if let Some(at) = payload.body.iter().position(|&b| b != 0) {
        return Err(format!(
            "{what} payload has a non-zero byte at offset {at}, expected zeros"
        ));
    }
    if payload.r#type != i32::from(PayloadType::Compressable) {
        return Err(format!(
            "{what} payload type is {}, expected COMPRESSABLE (0)",
            payload.r#type
        ));
    }
    Ok(())
}

/// Checks that a call failed with `code` (and, if given, `message`).
fn expect_status<T>(what: &str, result: Result<T, Status>, code: Code, message: Option<&str>) -> Result<(), String> {
    match result {
        Ok(_) => Err(format!("{what} succeeded, expected status {}", code.name())),
        Err(status) if status.code() != code => Err(format!(
            "{what} failed with {}, expected {}",
            describe(&status),
            code.name()
        )),
        Err(status) => match message {
            Some(m) if status.message() != m => Err(format!(
                "{what} status message is {:?}, expected {m:?}",
                status.message()
            )),
            _ => Ok(()),
        },
    }
}

/// Maps a failed call to a message that names it.
fn failed(what: &str) -> impl FnOnce(Status) -> String + '_ {
    move |status| format!("{what} failed: {}", describe(&status))
}

/// The large_unary request: 314159 bytes back for 271828 sent.
fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_type: PayloadType::Compressable.into(),
        response_size: 314_159,
        payload: zeros(271_828),
        ..Default::default()
    }
}

/// A streaming request for responses of the given sizes.
fn output_request(sizes: &[i32], payload_len: Option<usize>) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_type: PayloadType::Compressable.into(),
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                ..Default::default()
            })
            .collect(),
        payload: payload_len.and_then(zeros),
        ..Default::default()
    }
}

/// Reads the next response of a stream; an error if the stream ended or
/// failed instead.
async fn next_response(
    what: &str,
    stream: &mut Streaming<StreamingOutputCallResponse>,
) -> Result<StreamingOutputCallResponse, String> {
    match stream.message().await {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err(format!("{what}: the stream ended early")),
        Err(status) => Err(format!("{what} failed: {}", describe(&status))),
    }
}

/// Reads the end of a stream: an error if another message or an error
/// status came instead.
async fn expect_end<T: 'static>(what: &str, stream: &mut Streaming<T>) -> Result<(), String> {
    match stream.message().await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(format!("{what}: got more responses than expected")),
        Err(status) => Err(format!("{what} failed at the end: {}", describe(&status))),
    }
}

/// A request stream fed through a channel, so the client sends as it goes.
fn fed_stream<T: Send + 'static>() -> (mpsc::UnboundedSender<T>, impl Stream<Item = T> + Send + 'static) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    (tx, stream)
}

/// Runs `call` for at most `limit`; an error that names `what` if it takes
/// longer.
async fn within<T>(what: &str, limit: Duration, call: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| format!("{what} did not finish within {limit:?}"))
}

async fn empty_unary(client: &TestServiceClient) -> Result<(), String> {
    let response = client
        .empty_call(request(Empty {}))
        .await
        .map_err(failed("EmptyCall"))?;
    let _: &Empty = response.get_ref();
    Ok(())
}

async fn large_unary(client: &TestServiceClient) -> Result<(), String> {
    large_unary_with(client, CALL_TIMEOUT).await
}

async fn large_unary_with(client: &TestServiceClient, timeout: Duration) -> Result<(), String> {
    let mut req = Request::new(large_request());
    req.set_timeout(timeout);
    let response = client.unary_call(req).await.map_err(failed("UnaryCall"))?;
    check_response(&response.into_inner(), 314_159)
}

fn check_response(response: &SimpleResponse, len: usize) -> Result<(), String> {
    check_payload("response", response.payload.as_ref(), len)
}

async fn client_streaming(client: &TestServiceClient) -> Result<(), String> {
    let messages: Vec<_> = [27_182, 8, 1_828, 45_904]
        .into_iter()
        .map(|len| StreamingInputCallRequest {
            payload: zeros(len),
            ..Default::default()
        })
        .collect();
    let response = client
        .streaming_input_call(request(stream::iter(messages)))
        .await
        .map_err(failed("StreamingInputCall"))?;
    let size = response.get_ref().aggregated_payload_size;
    if size != 74_922 {
        return Err(format!("aggregated_payload_size is {size}, expected 74922"));
    }
    Ok(())
}

async fn server_streaming(client: &TestServiceClient) -> Result<(), String> {
    let sizes = [31_415, 9, 2_653, 58_979];
    let response = client
        .streaming_output_call(request(output_request(&sizes, None)))
        .await
        .map_err(failed("StreamingOutputCall"))?;
    let mut stream = response.into_inner();
    for (i, &size) in sizes.iter().enumerate() {
        let what = format!("response {}", i + 1);
        let message = next_response(&what, &mut stream).await?;
        check_payload(&what, message.payload.as_ref(), size as usize)?;
    }
    expect_end("StreamingOutputCall", &mut stream).await
}

async fn ping_pong(client: &TestServiceClient) -> Result<(), String> {
    let steps = [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)];
    let (tx, requests) = fed_stream();
    let response = client
        .full_duplex_call(request(requests))
        .await
        .map_err(failed("FullDuplexCall"))?;
    let mut stream = response.into_inner();
    for (i, &(size, payload)) in steps.iter().enumerate() {
        tx.send(output_request(&[size], Some(payload)))
            .map_err(|_| format!("request {} could not be sent: the call ended", i + 1))?;
        let what = format!("response {}", i + 1);
        let message = next_response(&what, &mut stream).await?;
        check_payload(&what, message.payload.as_ref(), size as usize)?;
    }
    drop(tx);
    expect_end("FullDuplexCall", &mut stream).await
}

async fn empty_stream(client: &TestServiceClient) -> Result<(), String> {
    let response = client
        .full_duplex_call(request(stream::empty()))
        .await
        .map_err(failed("FullDuplexCall"))?;
    let mut stream = response.into_inner();
    match stream.message().await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err("got a response, expected none".to_string()),
        Err(status) => Err(format!("FullDuplexCall failed: {}", describe(&status))),
    }
}

async fn timeout_on_sleeping_server(client: &TestServiceClient) -> Result<(), String> {
    let first = StreamingOutputCallRequest {
        payload: zeros(27_182),
        ..Default::default()
    };
    // One request, then the stream stays open: the server has nothing to
    // answer and the call can only end by its deadline.
    let requests = stream::iter([first]).chain(stream::pending());
    let mut req = Request::new(requests);
    req.set_timeout(Duration::from_millis(1));
    let outcome = within("FullDuplexCall", CALL_TIMEOUT, async {
        let mut stream = client.full_duplex_call(req).await?.into_inner();
        stream.message().await
    })
    .await?;
    expect_status("FullDuplexCall", outcome, Code::DeadlineExceeded, None)
}

async fn cancel_after_begin(client: &TestServiceClient) -> Result<(), String> {
    // The client starts StreamingInputCall, cancels it without sending a
    // message, and the call must fail with CANCELLED.
    let mut req = request(stream::pending::<StreamingInputCallRequest>());
    let cancel = req.cancel_handle();
    let mut call = std::pin::pin!(client.streaming_input_call(req));
    // Begin the call: drive it until it waits on the server.
    if let Some(outcome) = futures_util::FutureExt::now_or_never(call.as_mut()) {
        return Err(match outcome {
            Ok(_) => "StreamingInputCall succeeded before it was cancelled, expected CANCELLED".to_string(),
            Err(status) => format!(
                "StreamingInputCall failed with {} before it was cancelled, expected CANCELLED",
                describe(&status)
            ),
        });
    }
    cancel.cancel();
    match call.await {
        Err(status) if status.code() == Code::Cancelled => Ok(()),
        Ok(_) => Err("StreamingInputCall succeeded after it was cancelled, expected CANCELLED".to_string()),
        Err(status) => Err(format!(
            "StreamingInputCall failed with {} after it was cancelled, expected CANCELLED",
            describe(&status)
        )),
    }
}

async fn cancel_after_first_response(client: &TestServiceClient) -> Result<(), String> {
    let (tx, requests) = fed_stream();
    let response = client
        .full_duplex_call(request(requests))
        .await
        .map_err(failed("FullDuplexCall"))?;
    let mut stream = response.into_inner();
    tx.send(output_request(&[31_415], Some(27_182)))
        .map_err(|_| "the request could not be sent: the call ended".to_string())?;
    let message = next_response("response 1", &mut stream).await?;
    check_payload("response 1", message.payload.as_ref(), 31_415)?;
    stream.cancel();
    let outcome = stream.message().await;
    drop(tx);
    match outcome {
        Err(status) if status.code() == Code::Cancelled => Ok(()),
        Err(status) => Err(format!("after cancel, the call ended with {}", describe(&status))),
        Ok(m) => Err(format!("after cancel, the stream gave {m:?} instead of CANCELLED")),
    }
}

/// The request of status_code_and_message and special_status_message.
fn echo_status_request(message: &str) -> EchoStatus {
    EchoStatus {
        code: 2,
        message: message.to_string(),
    }
}

async fn status_code_and_message(client: &TestServiceClient) -> Result<(), String> {
    let message = "test status message";
    let unary = SimpleRequest {
        response_status: Some(echo_status_request(message)),
        ..Default::default()
    };
    let result = client.unary_call(request(unary)).await;
    expect_status("UnaryCall", result, Code::Unknown, Some(message))?;

    let duplex = StreamingOutputCallRequest {
        response_status: Some(echo_status_request(message)),
        ..Default::default()
    };
    let outcome = async {
        let mut stream = client
            .full_duplex_call(request(stream::iter([duplex])))
            .await?
            .into_inner();
        stream.message().await
    }
    .await;
    match outcome {
        Ok(None) => Err("FullDuplexCall ended with OK, expected status UNKNOWN".to_string()),
        other => expect_status("FullDuplexCall", other, Code::Unknown, Some(message)),
    }
}

/// The status message of special_status_message.
pub const SPECIAL_STATUS_MESSAGE: &str = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";

async fn special_status_message(client: &TestServiceClient) -> Result<(), String> {
    let req = SimpleRequest {
        response_status: Some(echo_status_request(SPECIAL_STATUS_MESSAGE)),
        ..Default::default()
    };
    let result = client.unary_call(request(req)).await;
    expect_status("UnaryCall", result, Code::Unknown, Some(SPECIAL_STATUS_MESSAGE))
}

/// The initial metadata value of custom_metadata.
const ECHO_INITIAL_VALUE: &str = "test_initial_metadata_value";
/// The trailing metadata value of custom_metadata.
const ECHO_TRAILING_VALUE: [u8; 3] = [0xab, 0xab, 0xab];

fn add_echo_metadata<T>(request: &mut Request<T>) -> Result<(), String> {
    let md = request.metadata_mut();
    md.insert(ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE)
        .and_then(|()| md.insert_bin(ECHO_TRAILING_KEY, &ECHO_TRAILING_VALUE))
        .map_err(|e| format!("cannot set the metadata: {e}"))
}

fn check_initial(what: &str, headers: &Metadata) -> Result<(), String> {
    match headers.get(ECHO_INITIAL_KEY) {
        Some(ECHO_INITIAL_VALUE) => Ok(()),
        Some(other) => Err(format!(
            "{what} initial metadata {ECHO_INITIAL_KEY} is {other:?}, expected {ECHO_INITIAL_VALUE:?}"
        )),
        None => Err(format!(
            "{what} initial metadata has no {ECHO_INITIAL_KEY}, expected {ECHO_INITIAL_VALUE:?}"
        )),
    }
}

fn check_trailing(what: &str, trailers: Option<&Metadata>) -> Result<(), String> {
    match trailers.and_then(|t| t.get_bin(ECHO_TRAILING_KEY)) {
        Some(Ok(value)) if value == ECHO_TRAILING_VALUE => Ok(()),
        Some(Ok(value)) => Err(format!(
            "{what} trailing metadata {ECHO_TRAILING_KEY} is {value:02x?}, expected [ab, ab, ab]"
        )),
        Some(Err(e)) => Err(format!(
            "{what} trailing metadata {ECHO_TRAILING_KEY} is malformed: {e}"
        )),
        None => Err(format!(
            "{what} trailing metadata has no {ECHO_TRAILING_KEY}, expected [ab, ab, ab]"
        )),
    }
}

async fn custom_metadata(client: &TestServiceClient) -> Result<(), String> {
    let mut req = request(large_request());
    add_echo_metadata(&mut req)?;
    let response = client.unary_call(req).await.map_err(failed("UnaryCall"))?;
    check_initial("UnaryCall", response.metadata())?;
    check_trailing("UnaryCall", Some(response.trailers()))?;
    check_response(response.get_ref(), 314_159)?;

    let mut req = request(stream::iter([output_request(&[314_159], Some(271_828))]));
    add_echo_metadata(&mut req)?;
    let response = client.full_duplex_call(req).await.map_err(failed("FullDuplexCall"))?;
    let mut stream = response.into_inner();
    let headers = stream.headers().await.map_err(failed("FullDuplexCall"))?;
    check_initial("FullDuplexCall", headers)?;
    let message = next_response("FullDuplexCall response", &mut stream).await?;
    check_payload("FullDuplexCall response", message.payload.as_ref(), 314_159)?;
    expect_end("FullDuplexCall", &mut stream).await?;
    check_trailing("FullDuplexCall", stream.trailers())
}

async fn unimplemented_method(client: &TestServiceClient) -> Result<(), String> {
    let result = client.unimplemented_call(request(Empty {})).await;
    expect_status("TestService/UnimplementedCall", result, Code::Unimplemented, None)
}

async fn unimplemented_service(channel: Channel) -> Result<(), String> {
    let client = UnimplementedServiceClient::new(channel);
    let result = client.unimplemented_call(request(Empty {})).await;
    expect_status(
        "UnimplementedService/UnimplementedCall",
        result,
        Code::Unimplemented,
        None,
    )
}

fn expect_compressed(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

async fn client_compressed_unary(client: &TestServiceClient) -> Result<(), String> {
    let probe = SimpleRequest {
        expect_compressed: expect_compressed(true),
        ..large_request()
    };
    let mut req = request(probe.clone());
    req.set_compression(None);
    let result = client.unary_call(req).await;
    expect_status(
        "the probe (uncompressed, expect_compressed=true)",
        result,
        Code::InvalidArgument,
        None,
    )?;

    let mut req = request(probe);
    req.set_compression(Some(Encoding::Gzip));
    let response = client.unary_call(req).await.map_err(failed("the compressed call"))?;
    check_response(response.get_ref(), 314_159)?;

    let plain = SimpleRequest {
        expect_compressed: expect_compressed(false),
        ..large_request()
    };
    let mut req = request(plain);
    req.set_compression(None);
    let response = client.unary_call(req).await.map_err(failed("the uncompressed call"))?;
    check_response(response.get_ref(), 314_159)
}

async fn server_compressed_unary(client: &TestServiceClient) -> Result<(), String> {
    for compressed in [true, false] {
        let req = SimpleRequest {
            response_compressed: Some(BoolValue { value: compressed }),
            ..large_request()
        };
        let what = format!("the call with response_compressed={compressed}");
        let response = client.unary_call(request(req)).await.map_err(failed(&what))?;
        let was = response.extensions().get::<MessageCompressed>().is_some();
        if was != compressed {
            return Err(format!(
                "{what}: the response {} compressed",
                if was { "was" } else { "was not" }
            ));
        }
        check_response(response.get_ref(), 314_159)?;
    }
    Ok(())
}

async fn client_compressed_streaming(client: &TestServiceClient) -> Result<(), String> {
    let first = StreamingInputCallRequest {
        expect_compressed: expect_compressed(true),
        payload: zeros(27_182),
    };
    let mut req = request(stream::iter([first.clone()]));
    req.set_compression(None);
    let result = client.streaming_input_call(req).await;
    expect_status(
        "the probe (uncompressed, expect_compressed=true)",
        result,
        Code::InvalidArgument,
        None,
    )?;

    let second = StreamingInputCallRequest {
        expect_compressed: expect_compressed(false),
        payload: zeros(45_904),
    };
    // Each message sets the switch as the stream yields it, so it is
    // compressed or not as the message is written.
    let switch = MessageCompression::new();
    let flip = switch.clone();
    let messages = stream::iter([(true, first), (false, second)]).map(move |(compress, message)| {
        flip.set(compress);
        message
    });
    let mut req = request(messages);
    req.set_compression(Some(Encoding::Gzip));
    req.set_message_compression(switch);
    let response = client
        .streaming_input_call(req)
        .await
        .map_err(failed("the compressed call"))?;
    let size = response.get_ref().aggregated_payload_size;
    if size != 73_086 {
        return Err(format!("aggregated_payload_size is {size}, expected 73086"));
    }
    Ok(())
}

async fn server_compressed_streaming(client: &TestServiceClient) -> Result<(), String> {
    let plan = [(31_415, true), (92_653, false)];
    let req = StreamingOutputCallRequest {
        response_type: PayloadType::Compressable.into(),
        response_parameters: plan
            .iter()
            .map(|&(size, compressed)| ResponseParameters {
                size,
                compressed: Some(BoolValue { value: compressed }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let response = client
        .streaming_output_call(request(req))
        .await
        .map_err(failed("StreamingOutputCall"))?;
    let mut stream = response.into_inner();
    for (i, &(size, compressed)) in plan.iter().enumerate() {
        let what = format!("response {}", i + 1);
        let message = next_response(&what, &mut stream).await?;
        let was = stream.last_message_compressed();
        if was != compressed {
            return Err(format!(
                "{what} (compressed={compressed}) {} compressed",
                if was { "was" } else { "was not" }
            ));
        }
        check_payload(&what, message.payload.as_ref(), size as usize)?;
    }
    expect_end("StreamingOutputCall", &mut stream).await
}

/// rpc_soak (with `client`: every call on its one channel) or channel_soak
/// (without: a new channel for every call).
async fn soak(args: &ClientArgs, client: Option<TestServiceClient>) -> Result<(), String> {
    let overall = Duration::from_secs(args.soak_overall_timeout_seconds);
    let max_latency = Duration::from_millis(args.soak_per_iteration_max_acceptable_latency_ms);
    let min_gap = Duration::from_millis(args.soak_min_time_ms_between_rpcs);
    let start = Instant::now();
    let (mut done, mut failures) = (0u32, 0u32);
    let mut first_failure = None;
    for i in 0..args.soak_iterations {
        let remaining = overall.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            break;
        }
        let began = Instant::now();
        let result = async {
            match &client {
                Some(client) => large_unary_with(client, remaining.min(CALL_TIMEOUT)).await,
                None => {
                    let channel = within("connecting", remaining, connect(args)).await??;
                    large_unary_with(&TestServiceClient::new(channel), remaining.min(CALL_TIMEOUT)).await
                }
            }
        }
        .await;
        let latency = began.elapsed();
        done += 1;
        let failure = match result {
            Err(e) => Some(e),
            Ok(()) if latency > max_latency => Some(format!("took {latency:?}, more than {max_latency:?}")),
            Ok(()) => None,
        };
        if let Some(e) = failure {
            failures += 1;
            first_failure.get_or_insert(format!("iteration {}: {e}", i + 1));
        }
        tokio::time::sleep_until((began + min_gap).into()).await;
    }
    let first = first_failure.map_or(String::new(), |f| format!("; first failure: {f}"));
    if done < args.soak_iterations {
        return Err(format!(
            "only {done} of {} iterations ran within {overall:?}, {failures} failed{first}",
            args.soak_iterations
        ));
    }
    if failures > args.soak_max_failures {
        return Err(format!(
            "{failures} of {done} iterations failed, at most {} may{first}",
            args.soak_max_failures
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ClientArgs {
        ClientArgs::try_parse_from(std::iter::once("client").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_and_flag_forms() {
        let args = parse(&[]);
        assert_eq!(args.server_host, "127.0.0.1");
        assert_eq!(args.server_port, 10000);
        assert_eq!(args.soak_iterations, 10);
        assert!(!args.use_tls && !args.use_test_ca);
        let args = parse(&[
            "--server_host=::1",
            "--server_port=8080",
            "--test_case=ping_pong",
            "--use_tls=false",
            "--use_test_ca",
        ]);
        assert_eq!(args.server_host, "::1");
        assert_eq!(args.server_port, 8080);
        assert_eq!(args.test_case, "ping_pong");
        assert!(!args.use_tls);
        assert!(args.use_test_ca);
        assert!(parse(&["--use_tls=true"]).use_tls);
        assert!(parse(&["--use_tls", "--server_port", "1"]).use_tls);
    }

    #[test]
    fn payload_checks() {
        assert!(check_payload("r", zeros(3).as_ref(), 3).is_ok());
        let short = check_payload("response", zeros(0).as_ref(), 314_159).unwrap_err();
        assert_eq!(short, "response payload is 0 bytes, expected 314159");
        let dirty = Payload {
            r#type: 0,
            body: vec![0, 1],
        };
        assert!(check_payload("r", Some(&dirty), 2).unwrap_err().contains("offset 1"));
    }
}
