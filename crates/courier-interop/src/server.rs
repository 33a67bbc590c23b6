//! The interop server: `grpc.testing.TestService` with every server feature
//! of grpc/grpc `doc/interop-test-descriptions.md`.
//!
//! [`TestServiceImpl`] answers each method as the descriptions ask, and
//! honours, wherever they apply: `response_status` (echo status),
//! `x-grpc-test-echo-initial` and `x-grpc-test-echo-trailing-bin` (echo
//! metadata), `response_compressed` and `ResponseParameters.compressed`
//! (compressed responses), `expect_compressed` (compressed requests) and
//! `ResponseParameters.interval_us`. [`run`] serves it as the
//! `courier-interop-server` program does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use courier::credentials::ServerTlsConfig;
use courier::{Code, Encoding, MessageCompressed, MessageCompression, Metadata, Request, Response, Status, Streaming};
use futures_util::stream::{self, Stream, StreamExt as _};

use crate::pb::test_service_server::{TestService, TestServiceServer};
use crate::pb::{
    BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
};

/// The metadata key whose value the server echoes in the response headers.
pub const ECHO_INITIAL_KEY: &str = "x-grpc-test-echo-initial";

/// The binary metadata key whose value the server echoes in the trailers.
pub const ECHO_TRAILING_KEY: &str = "x-grpc-test-echo-trailing-bin";

/// What [`run`] prints on standard output, before the bound address
/// (`host:port`), once it listens: the line to read for the port that
/// `--port 0` picked.
pub const LISTENING_PREFIX: &str = "courier-interop-server listening on ";

/// The command line of `courier-interop-server`.
///
/// Boolean flags take `--flag`, `--flag=true` or `--flag=false`, as the
/// interop runners of every gRPC implementation pass them.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "courier-interop-server",
    version,
    about = "The gRPC interop test server, for Courier."
)]
pub struct ServerArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 10000)]
    pub port: u16,

    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Serve over TLS rather than plaintext.
    #[arg(long = "use_tls", num_args = 0..=1, default_value_t = false, default_missing_value = "true",
        action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub use_tls: bool,

    /// The PEM certificate chain the server presents, with --use_tls.
    #[arg(long = "tls_cert_file", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// The PEM private key of the certificate, with --use_tls.
    #[arg(long = "tls_key_file", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
}

/// The TLS configuration for a certificate chain and its private key, both
/// PEM files.
///
/// # Errors
///
/// A file that cannot be read, or PEM without a usable certificate or key.
pub fn tls_server_config(cert: &Path, key: &Path) -> Result<ServerTlsConfig, String> {
    ServerTlsConfig::from_pem_files(cert, key).map_err(|e| e.to_string())
}

/// Serves [`TestServiceImpl`] as the arguments say, until Ctrl-C. Once it
/// listens, it prints [`LISTENING_PREFIX`] and the bound address on a line
/// of standard output.
///
/// # Errors
///
/// A description of what went wrong: bad TLS flags, an address that cannot
/// be bound, or a failing listener.
pub async fn run(args: ServerArgs) -> Result<(), String> {
    let tls = if args.use_tls {
        let (Some(cert), Some(key)) = (&args.tls_cert_file, &args.tls_key_file) else {
            return Err("--use_tls needs --tls_cert_file and --tls_key_file".to_string());
        };
        Some(tls_server_config(cert, key)?)
    } else {
        None
    };
    let host = args.host.trim_start_matches('[').trim_end_matches(']');
    let listener = tokio::net::TcpListener::bind((host, args.port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    // On stdout, one line, for whoever started the server with --port 0.
    println!("{LISTENING_PREFIX}{addr}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let mut server = courier::Server::builder();
    if let Some(config) = tls {
        server = server.tls(config).map_err(|e| format!("TLS: {e}"))?;
    }
    server
        .add_service(TestServiceServer::new(TestServiceImpl))
        .shutdown_grace_period(Duration::from_secs(1))
        .serve_with_listener(listener, shutdown)
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// The response stream of the streaming methods.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

/// The interop `TestService`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestServiceImpl;

impl TestService for TestServiceImpl {
    async fn empty_call(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        echo.unary(Ok(Response::new(Empty {})))
    }

    async fn unary_call(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let compressed = request.extensions().get::<MessageCompressed>().is_some();
        let result = simple_response(request.into_inner(), compressed);
        echo.unary(result)
    }

    async fn cacheable_unary_call(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut response = Response::new(SimpleResponse {
            payload: Some(Payload {
                r#type: PayloadType::Compressable.into(),
                body: nanos.to_string().into_bytes(),
            }),
            ..Default::default()
        });
        let cache = response.metadata_mut().insert("cache-control", "max-age=60");
        echo.unary(cache.map(|()| response).map_err(Status::from))
    }

    type StreamingOutputCallStream = ResponseStream;

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<ResponseStream>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let request = request.into_inner();
        let outcome = match check_streaming_request(&request) {
            Ok(()) => Ok(request.response_parameters),
            Err(status) => Err(status),
        };
        let compress = outcome
            .as_ref()
            .is_ok_and(|params| params.iter().any(|p| wants_compression(p.compressed)));
        Ok(echo.streaming(compress, |switch| match outcome {
            Ok(params) => responses(params.into(), switch).boxed(),
            Err(status) => stream::once(async { Err(status) }).boxed(),
        }))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let mut requests = request.into_inner();
        let sum = async {
            let mut total = 0usize;
            while let Some(message) = requests.message().await? {
                check_compressed(message.expect_compressed, requests.last_message_compressed())?;
                total += message.payload.map_or(0, |p| p.body.len());
            }
            let aggregated_payload_size = i32::try_from(total)
                .map_err(|_| Status::invalid_argument(format!("aggregated payload size {total} overflows int32")))?;
            Ok(Response::new(StreamingInputCallResponse {
                aggregated_payload_size,
            }))
        };
        echo.unary(sum.await)
    }

    type FullDuplexCallStream = ResponseStream;

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let requests = request.into_inner();
        // Whether a response is compressed is only known as its request
        // arrives, so the call may compress and each message chooses.
        Ok(echo.streaming(true, |switch| full_duplex(requests, switch).boxed()))
    }

    type HalfDuplexCallStream = ResponseStream;

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let echo = Echo::from_metadata(request.metadata());
        let mut requests = request.into_inner();
        let mut params = Vec::new();
        let mut end = None;
        loop {
            match requests.message().await {
                Ok(Some(message)) => match check_streaming_request(&message) {
                    Ok(()) => params.extend(message.response_parameters),
                    Err(status) => {
                        end = Some(status);
                        break;
                    }
                },
                Ok(None) => break,
                Err(status) => return Err(status),
            }
        }
        let compress = params.iter().any(|p| wants_compression(p.compressed));
        Ok(echo.streaming(compress, |switch| match end {
            Some(status) => stream::once(async { Err(status) }).boxed(),
            None => responses(params.into(), switch).boxed(),
        }))
    }

    async fn unimplemented_call(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "grpc.testing.TestService/UnimplementedCall is not implemented, by design",
        ))
    }
}

/// The metadata a call asked the server to echo.
#[derive(Clone, Debug, Default)]
struct Echo {
    /// The value of `x-grpc-test-echo-initial`, for the response headers.
    initial: Option<String>,
    /// The value of `x-grpc-test-echo-trailing-bin`, for the trailers.
    trailing: Option<Vec<u8>>,
}

impl Echo {
    fn from_metadata(metadata: &Metadata) -> Echo {
        Echo {
            initial: metadata.get(ECHO_INITIAL_KEY).map(str::to_string),
            trailing: metadata.get_bin(ECHO_TRAILING_KEY).and_then(Result::ok),
        }
    }

    fn add_initial(&self, metadata: &mut Metadata) {
        if let Some(value) = &self.initial {
            // The value was valid metadata when it arrived.
            let _ = metadata.insert(ECHO_INITIAL_KEY, value);
        }
    }

    fn add_trailing(&self, metadata: &mut Metadata) {
        if let Some(value) = &self.trailing {
            let _ = metadata.insert_bin(ECHO_TRAILING_KEY, value);
        }
    }

    /// Adds the echoes to a single-response call's outcome. An error ends
    /// the call with a trailers-only response, whose one header block is
    /// both the headers and the trailers, so both echoes go there.
    fn unary<T>(&self, result: Result<Response<T>, Status>) -> Result<Response<T>, Status> {
        match result {
            Ok(mut response) => {
                self.add_initial(response.metadata_mut());
                self.add_trailing(response.trailers_mut());
                Ok(response)
            }
            Err(mut status) => {
                self.add_initial(status.metadata_mut());
                self.add_trailing(status.metadata_mut());
                Err(status)
            }
        }
    }

    /// A streamed response with the echoes. With `compress`, the call
    /// compresses with gzip (when the client accepts it) and `make` gets
    /// the switch that turns compression on and off per message, starting
    /// off; without, the switch does nothing.
    fn streaming(
        &self,
        compress: bool,
        make: impl FnOnce(MessageCompression) -> ResponseStream,
    ) -> Response<ResponseStream> {
        let switch = MessageCompression::new();
        switch.set(false);
        let mut response = Response::new(make(switch.clone()));
        if compress {
            response.set_compression(Some(Encoding::Gzip));
        }
        response.set_message_compression(switch);
        self.add_initial(response.metadata_mut());
        self.add_trailing(response.trailers_mut());
        response
    }
}

/// Whether a `BoolValue` is present and true.
fn wants_compression(value: Option<BoolValue>) -> bool {
    value.is_some_and(|v| v.value)
}

/// The status a request asks the call to end with, if any (code 0 is OK and
/// asks for nothing).
fn echo_status(status: Option<&EchoStatus>) -> Option<Status> {
    status
        .filter(|s| s.code != 0)
        .map(|s| Status::new(Code::from_i32(s.code), s.message.clone()))
}

/// INVALID_ARGUMENT when a message's compression is not what the request's
/// `expect_compressed` says.
fn check_compressed(expect: Option<BoolValue>, compressed: bool) -> Result<(), Status> {
    match expect {
        Some(BoolValue { value: true }) if !compressed => Err(Status::invalid_argument(
            "expected a compressed request message, but it arrived uncompressed",
        )),
        Some(BoolValue { value: false }) if compressed => Err(Status::invalid_argument(
            "expected an uncompressed request message, but it arrived compressed",
        )),
        _ => Ok(()),
    }
}

/// INVALID_ARGUMENT for a payload type other than COMPRESSABLE, the only one
/// the tests use.
fn check_response_type(response_type: i32) -> Result<(), Status> {
    if response_type == i32::from(PayloadType::Compressable) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "unsupported response_type {response_type}: only COMPRESSABLE (0) is supported"
        )))
    }
}

/// A COMPRESSABLE payload of `size` zeros; INVALID_ARGUMENT for a negative
/// size.
fn zeros(size: i32) -> Result<Payload, Status> {
    let len = usize::try_from(size).map_err(|_| Status::invalid_argument(format!("negative response size {size}")))?;
    Ok(Payload {
        r#type: PayloadType::Compressable.into(),
        body: vec![0; len],
    })
}

/// Checks a streaming request: its echo status, if it asks for one, and its
/// response type and sizes.
fn check_streaming_request(request: &StreamingOutputCallRequest) -> Result<(), Status> {
    if let Some(status) = echo_status(request.response_status.as_ref()) {
        return Err(status);
    }
    check_response_type(request.response_type)?;
    if let Some(p) = request.response_parameters.iter().find(|p| p.size < 0) {
        return Err(Status::invalid_argument(format!("negative response size {}", p.size)));
    }
    Ok(())
}

/// The response of UnaryCall for `request`, whose message arrived compressed
/// or not.
fn simple_response(request: SimpleRequest, compressed: bool) -> Result<Response<SimpleResponse>, Status> {
    check_compressed(request.expect_compressed, compressed)?;
    if let Some(status) = echo_status(request.response_status.as_ref()) {
        return Err(status);
    }
    check_response_type(request.response_type)?;
    let mut response = Response::new(SimpleResponse {
        payload: Some(zeros(request.response_size)?),
        ..Default::default()
    });
    match request.response_compressed {
        Some(BoolValue { value: true }) => response.set_compression(Some(Encoding::Gzip)),
        Some(BoolValue { value: false }) => response.set_compression(None),
        None => {}
    }
    Ok(response)
}

/// Waits `interval_us`, then sets the switch for this response and makes it.
async fn respond(
    params: ResponseParameters,
    switch: &MessageCompression,
) -> Result<StreamingOutputCallResponse, Status> {
    if let Ok(us) = u64::try_from(params.interval_us)
        && us > 0
    {
        tokio::time::sleep(Duration::from_micros(us)).await;
    }
    let payload = zeros(params.size)?;
    // Set last, right before the message is handed over to be written.
    switch.set(wants_compression(params.compressed));
    Ok(StreamingOutputCallResponse { payload: Some(payload) })
}

/// One response per parameter set, in order.
fn responses(
    params: VecDeque<ResponseParameters>,
    switch: MessageCompression,
) -> impl Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send {
    stream::unfold((params, switch), |(mut params, switch)| async move {
        let next = params.pop_front()?;
        let response = respond(next, &switch).await;
        Some((response, (params, switch)))
    })
}

/// FullDuplexCall: answers each request's parameters as the request
/// arrives; ends after the client half-closes, or with the first echo
/// status or error.
fn full_duplex(
    requests: Streaming<StreamingOutputCallRequest>,
    switch: MessageCompression,
) -> impl Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send {
    struct State {
        requests: Streaming<StreamingOutputCallRequest>,
        pending: VecDeque<ResponseParameters>,
        switch: MessageCompression,
        done: bool,
    }
    let state = State {
        requests,
        pending: VecDeque::new(),
        switch,
        done: false,
    };
    stream::unfold(state, |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            if let Some(params) = state.pending.pop_front() {
                let response = respond(params, &state.switch).await;
                state.done = response.is_err();
                return Some((response, state));
            }
            match state.requests.message().await {
                Ok(Some(request)) => match check_streaming_request(&request) {
                    Ok(()) => state.pending.extend(request.response_parameters),
                    Err(status) => {
                        state.done = true;
                        return Some((Err(status), state));
                    }
                },
                Ok(None) => return None,
                Err(status) => {
                    state.done = true;
                    return Some((Err(status), state));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ServerArgs {
        ServerArgs::try_parse_from(std::iter::once("server").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn boolean_flag_forms() {
        assert!(!parse(&[]).use_tls);
        assert!(parse(&["--use_tls"]).use_tls);
        assert!(parse(&["--use_tls=true"]).use_tls);
        assert!(!parse(&["--use_tls=false"]).use_tls);
        assert!(!parse(&["--use_tls", "false"]).use_tls);
        let args = parse(&["--use_tls", "--port", "8080"]);
        assert!(args.use_tls);
        assert_eq!(args.port, 8080);
        assert_eq!(args.host, "127.0.0.1");
    }

    #[test]
    fn expect_compressed_both_ways() {
        assert!(check_compressed(None, true).is_ok());
        assert!(check_compressed(Some(BoolValue { value: true }), true).is_ok());
        assert!(check_compressed(Some(BoolValue { value: false }), false).is_ok());
        let err = check_compressed(Some(BoolValue { value: true }), false).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = check_compressed(Some(BoolValue { value: false }), true).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[test]
    fn echo_status_ignores_ok() {
        let ok = EchoStatus {
            code: 0,
            message: "fine".into(),
        };
        assert!(echo_status(Some(&ok)).is_none());
        let unknown = EchoStatus {
            code: 2,
            message: "\t☺\n".into(),
        };
        let status = echo_status(Some(&unknown)).unwrap();
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "\t☺\n");
    }
}
