//! The observability example: a Greeter server and a client that record
//! gRFC A66's metrics through the OpenTelemetry SDK into a Prometheus
//! registry, served for scraping at `/metrics`, and print their spans
//! (gRFC A72, with W3C trace context carried from the client to the
//! server) to stdout.
//!
//! Courier only calls the OpenTelemetry API; the SDK, the exporters and the
//! metrics endpoint below are the application's, as they would be in
//! production.

use std::net::SocketAddr;

use courier::opentelemetry::OpenTelemetry;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus::{Encoder as _, Registry, TextEncoder};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Where the example server listens for gRPC unless told otherwise.
pub const DEFAULT_SERVER_ADDR: &str = "127.0.0.1:50051";

/// Where the example server serves `/metrics` unless told otherwise.
pub const DEFAULT_SERVER_METRICS_ADDR: &str = "127.0.0.1:9464";

/// Where the example client serves `/metrics` unless told otherwise.
pub const DEFAULT_CLIENT_METRICS_ADDR: &str = "127.0.0.1:9465";

/// A process's OpenTelemetry: its providers, the Prometheus registry its
/// metrics go to, and the Courier handler that records into them.
pub struct Telemetry {
    /// Install on the channel or server builder with `stats_handler`.
    pub otel: OpenTelemetry,
    /// Where the metrics are, for the `/metrics` endpoint.
    pub registry: Registry,
    meters: SdkMeterProvider,
    tracers: SdkTracerProvider,
}

impl Telemetry {
    /// Metrics into a fresh Prometheus registry, and spans printed to
    /// stdout when `spans_to_stdout`, for the service `service_name`.
    ///
    /// # Errors
    ///
    /// The Prometheus exporter could not be set up.
    pub fn new(service_name: &'static str, spans_to_stdout: bool) -> Result<Telemetry, Box<dyn std::error::Error>> {
        let resource = Resource::builder().with_service_name(service_name).build();
        let registry = Registry::new();
        let reader = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()?;
        let meters = SdkMeterProvider::builder()
            .with_reader(reader)
            .with_resource(resource.clone())
            .build();
        let mut tracers = SdkTracerProvider::builder().with_resource(resource);
        if spans_to_stdout {
            tracers = tracers.with_simple_exporter(opentelemetry_stdout::SpanExporter::default());
        }
        let tracers = tracers.build();
        let otel = OpenTelemetry::builder()
            .meter_provider(&meters)
            .tracer_provider(&tracers)
            .propagator(TraceContextPropagator::new())
            .build();
        Ok(Telemetry {
            otel,
            registry,
            meters,
            tracers,
        })
    }

    /// A tracer for the application's own spans, from the same provider.
    pub fn tracer(&self, name: &'static str) -> opentelemetry_sdk::trace::Tracer {
        use opentelemetry::trace::TracerProvider as _;
        self.tracers.tracer(name)
    }

    /// Flushes what is buffered and stops the providers.
    pub fn shutdown(&self) {
        let _ = self.tracers.shutdown();
        let _ = self.meters.shutdown();
    }
}

/// The longest request head the metrics endpoint reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Serves `registry` in Prometheus's text format at `GET /metrics` on
/// `listener`, one request per connection, until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, registry: Registry) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let response = if head.starts_with(b"GET /metrics ") {
                let mut body = Vec::new();
                let encoder = TextEncoder::new();
                let _ = encoder.encode(&registry.gather(), &mut body);
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    encoder.format_type(),
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body);
                out
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            };
            let _ = socket.write_all(&response).await;
        });
    }
}

/// Binds `addr` and serves `registry`'s metrics there in a task of its own;
/// returns the address bound.
///
/// # Errors
///
/// The address could not be bound.
pub async fn spawn_metrics_endpoint(addr: &str, registry: Registry) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve_metrics(listener, registry));
    Ok(bound)
}
