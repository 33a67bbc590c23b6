//! The Courier bench server: `grpc.testing.BenchmarkService` and the parts
//! of `grpc.testing.TestService` that benchmarks use (EmptyCall, UnaryCall,
//! FullDuplexCall), so that the same load can be sent to Courier and to the
//! interop servers of other implementations.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use courier::opentelemetry::OpenTelemetry;
use courier::{Request, Response, Status, Streaming};
use futures_util::StreamExt as _;
use futures_util::stream::Map;

use crate::pb::benchmark_service_server::{BenchmarkService, BenchmarkServiceServer};
use crate::pb::test_service_server::{TestService, TestServiceServer};
use crate::pb::{
    Empty, Payload, SimpleRequest, SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse,
    StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use crate::serve::ShutdownSignal;

/// A payload of `size` zero bytes.
fn payload(size: i32) -> Result<Option<Payload>, Status> {
    let body = usize::try_from(size)
        .ok()
        .and_then(crate::zeros)
        .ok_or_else(|| Status::invalid_argument(format!("response size {size} is out of range")))?;
    Ok(Some(Payload { r#type: 0, body }))
}

fn simple_response(size: i32) -> Result<SimpleResponse, Status> {
    Ok(SimpleResponse {
        payload: payload(size)?,
        ..Default::default()
    })
}

fn answer(request: Result<SimpleRequest, Status>) -> Result<SimpleResponse, Status> {
    simple_response(request?.response_size)
}

fn answer_output(request: Result<StreamingOutputCallRequest, Status>) -> Result<StreamingOutputCallResponse, Status> {
    let request = request?;
    match request.response_parameters.as_slice() {
        [one] => Ok(StreamingOutputCallResponse {
            payload: payload(one.size)?,
        }),
        _ => Err(Status::unimplemented(
            "the bench server answers each request with exactly one response",
        )),
    }
}

/// The responses of StreamingCall: one per request, in order.
pub type StreamingCallResponses =
    Map<Streaming<SimpleRequest>, fn(Result<SimpleRequest, Status>) -> Result<SimpleResponse, Status>>;

/// The responses of FullDuplexCall: one per request, in order.
pub type FullDuplexResponses = Map<
    Streaming<StreamingOutputCallRequest>,
    fn(Result<StreamingOutputCallRequest, Status>) -> Result<StreamingOutputCallResponse, Status>,
>;

/// How late BenchmarkService.UnaryCall answers, in microseconds (0: at
/// once); set once by `courier-bench-server --unary-delay-us`.
static UNARY_DELAY_US: AtomicU64 = AtomicU64::new(0);

/// Makes BenchmarkService.UnaryCall answer `delay` late (zero: at once).
pub fn set_unary_delay(delay: Duration) {
    UNARY_DELAY_US.store(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Whether the server keeps fixed HTTP/2 windows; set once by
/// `courier-bench-server --fixed-windows`.
static FIXED_WINDOWS: AtomicBool = AtomicBool::new(false);

/// Makes the server keep fixed HTTP/2 windows (the default sizes), with no
/// BDP pings.
pub fn set_fixed_windows(fixed: bool) {
    FIXED_WINDOWS.store(fixed, Ordering::Relaxed);
}

/// BenchmarkService and TestService on Courier.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bench;

impl BenchmarkService for Bench {
    async fn unary_call(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        let delay = UNARY_DELAY_US.load(Ordering::Relaxed);
        if delay > 0 {
            // Boxed, so that the call's future is as large as without the
            // delay: the Sleep (some 450 bytes) and the request held across
            // it would be in every call's future, which every move copies,
            // and --callgrind compares this server's calls with older
            // builds', which have no delay.
            return Box::pin(delayed_response(request, delay)).await;
        }
        simple_response(request.get_ref().response_size).map(Response::new)
    }

    type StreamingCallStream = StreamingCallResponses;

    async fn streaming_call(
        &self,
        request: Request<Streaming<SimpleRequest>>,
    ) -> Result<Response<StreamingCallResponses>, Status> {
        let f: fn(_) -> _ = answer;
        Ok(Response::new(request.into_inner().map(f)))
    }
}

type NoOutput = futures_util::stream::Empty<Result<StreamingOutputCallResponse, Status>>;

/// The answer to `request`, `delay_us` late (`--unary-delay-us`).
async fn delayed_response(request: Request<SimpleRequest>, delay_us: u64) -> Result<Response<SimpleResponse>, Status> {
    tokio::time::sleep(Duration::from_micros(delay_us)).await;
    simple_response(request.get_ref().response_size).map(Response::new)
}

fn not_here<T>() -> Result<T, Status> {
    Err(Status::unimplemented("not served by the bench server"))
}

impl TestService for Bench {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(&self, request: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        simple_response(request.get_ref().response_size).map(Response::new)
    }

    async fn cacheable_unary_call(&self, _: Request<SimpleRequest>) -> Result<Response<SimpleResponse>, Status> {
        not_here()
    }

    type StreamingOutputCallStream = NoOutput;

    async fn streaming_output_call(
        &self,
        _: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<NoOutput>, Status> {
        not_here()
    }

    async fn streaming_input_call(
        &self,
        _: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        not_here()
    }

    type FullDuplexCallStream = FullDuplexResponses;

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<FullDuplexResponses>, Status> {
        let f: fn(_) -> _ = answer_output;
        Ok(Response::new(request.into_inner().map(f)))
    }

    type HalfDuplexCallStream = NoOutput;

    async fn half_duplex_call(
        &self,
        _: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<NoOutput>, Status> {
        not_here()
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        not_here()
    }
}

/// OpenTelemetry metrics as an application would record them: the SDK's
/// meter provider, read by a Prometheus exporter into a registry nobody
/// scrapes. The provider lives as long as the process. The server's
/// `--otel` and the load generator's use it.
pub fn metrics() -> OpenTelemetry {
    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry)
        .build()
        .expect("a Prometheus exporter");
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .build();
    let otel = OpenTelemetry::builder().meter_provider(&provider).build();
    std::mem::forget(provider);
    otel
}

/// Serves both services on `listener` with Courier's defaults (TCP_NODELAY
/// is on by default) until `shutdown`, with `otel`'s metrics if given.
///
/// # Errors
///
/// The listener failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: ShutdownSignal,
    otel: Option<OpenTelemetry>,
) -> Result<(), String> {
    let mut builder = courier::Server::builder();
    if let Some(otel) = otel {
        builder = builder.stats_handler(otel);
    }
    if FIXED_WINDOWS.load(Ordering::Relaxed) {
        let (stream, connection) = crate::FIXED_WINDOW_SIZES;
        builder = builder
            .http2_windows(stream, connection)
            .map_err(|e| format!("cannot set the windows: {e}"))?;
    }
    builder
        .tcp_nodelay(true)
        // tonic's server sets no stream limit; the streams-10k scenarios
        // compare the two with 10,000 streams open on one connection.
        .max_concurrent_streams(u32::MAX)
        .shutdown_grace_period(Duration::from_secs(1))
        .add_service(BenchmarkServiceServer::new(Bench))
        .add_service(TestServiceServer::new(Bench))
        .serve_with_listener(listener, shutdown.wait())
        .await
        .map_err(|e| format!("server failed: {e}"))
}
