//! OpenTelemetry metrics and tracing for channels and servers (with the
//! `opentelemetry` cargo feature): the instruments of gRFC A66, spans and
//! W3C trace-context propagation after gRFC A72. It is a
//! [stats handler](crate::stats), installed with one call on a channel
//! builder and one on a server builder, and it records through the
//! application's own `MeterProvider` and `TracerProvider`: Courier owns no
//! exporter and depends only on the OpenTelemetry API.
//!
//! ```
//! use courier::opentelemetry::OpenTelemetry;
//! # fn providers() -> (opentelemetry::metrics::noop::NoopMeterProvider, opentelemetry::trace::noop::NoopTracerProvider) {
//! #     (opentelemetry::metrics::noop::NoopMeterProvider::new(), opentelemetry::trace::noop::NoopTracerProvider::new())
//! # }
//! let (meter_provider, tracer_provider) = providers(); // the application's SDK providers
//! let otel = OpenTelemetry::builder()
//!     .meter_provider(&meter_provider)
//!     .tracer_provider(&tracer_provider)
//!     .build();
//! let channel = courier::Channel::builder("localhost:50051").stats_handler(otel.clone());
//! let server = courier::Server::builder().stats_handler(otel);
//! # drop((channel, server));
//! ```
//!
//! **Metrics** (gRFC A66, with its units and histogram buckets):
//! `grpc.client.attempt.started`, `grpc.client.attempt.duration`,
//! `grpc.client.attempt.sent_total_compressed_message_size`,
//! `grpc.client.attempt.rcvd_total_compressed_message_size`,
//! `grpc.client.call.duration`, `grpc.server.call.started`,
//! `grpc.server.call.duration`,
//! `grpc.server.call.sent_total_compressed_message_size` and
//! `grpc.server.call.rcvd_total_compressed_message_size`, with the
//! attributes `grpc.method`, `grpc.status` and (client) `grpc.target`. A
//! method not generated from a `.proto` (a client's [`MethodPath::parse`],
//! a server's unknown method) is recorded as `"other"`, unless
//! [`OpenTelemetryBuilder::record_all_methods`] says otherwise.
//!
//! **Traces** (gRFC A72): a client call is a span `Sent.<service>.<method>`
//! of kind CLIENT, a child of the context current when the call is made,
//! with a child span `Attempt.<service>.<method>` per attempt; a server call
//! is a span `Recv.<service>.<method>` of kind SERVER whose parent is the
//! context the client sent. The context goes in the request metadata
//! through the propagator: the one given to the builder, or else the
//! global one (`opentelemetry::global::set_text_map_propagator`, e.g. with
//! the SDK's `TraceContextPropagator` for W3C `traceparent` and
//! `tracestate`). A server's handler runs in its span's context, so calls
//! it makes continue the trace.
//!
//! [`MethodPath::parse`]: crate::client::MethodPath::parse

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ::opentelemetry::global::BoxedTracer;
use ::opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider};
use ::opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use ::opentelemetry::trace::{SpanKind, Status as SpanStatus, TraceContextExt as _, Tracer as _, TracerProvider};
use ::opentelemetry::{Context, InstrumentationScope, KeyValue, StringValue};

use crate::metadata::Metadata;
use crate::stats::{AttemptInfo, CallEnd, CallInfo, CallStats, Side, StatsHandler};
use crate::status::Code;

/// gRFC A66's latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 41] = [
    0.0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01,
    0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8,
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

/// gRFC A66's size buckets, in bytes.
pub const SIZE_BUCKETS: [f64; 14] = [
    0.0,
    1024.0,
    2048.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
];

/// What `grpc.method` and `grpc.target` say when they are not recorded.
const OTHER: &str = "other";

/// OpenTelemetry metrics and traces for the channels and servers it is
/// installed on. Clones share one set of instruments.
#[derive(Clone)]
pub struct OpenTelemetry {
    plugin: Arc<Plugin>,
}

impl std::fmt::Debug for OpenTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenTelemetry")
            .field("metrics", &self.plugin.metrics.is_some())
            .field("traces", &self.plugin.tracer.is_some())
            .finish()
    }
}

type Propagator = Box<dyn TextMapPropagator + Send + Sync>;
type TargetFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

struct Plugin {
    metrics: Option<Instruments>,
    tracer: Option<BoxedTracer>,
    propagator: Option<Propagator>,
    all_methods: bool,
    target_filter: Option<TargetFilter>,
}

/// Settings for [`OpenTelemetry`].
#[must_use]
pub struct OpenTelemetryBuilder {
    meter: Option<Meter>,
    tracer: Option<BoxedTracer>,
    propagator: Option<Propagator>,
    all_methods: bool,
    target_filter: Option<TargetFilter>,
}

impl OpenTelemetry {
    /// A builder: without a meter provider no metrics are recorded, and
    /// without a tracer provider no spans are made (gRFC A66 asks that the
    /// global providers not be used in their place).
    pub fn builder() -> OpenTelemetryBuilder {
        OpenTelemetryBuilder {
            meter: None,
            tracer: None,
            propagator: None,
            all_methods: false,
            target_filter: None,
        }
    }
}

/// The instrumentation scope Courier's meter and tracer are made with.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("courier")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

impl OpenTelemetryBuilder {
    /// Records metrics through `provider`'s meter `courier`.
    pub fn meter_provider(mut self, provider: &impl MeterProvider) -> Self {
        self.meter = Some(provider.meter_with_scope(scope()));
        self
    }

    /// Makes spans through `provider`'s tracer `courier`.
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as ::opentelemetry::trace::Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = Some(BoxedTracer::new(Box::new(provider.tracer_with_scope(scope()))));
        self
    }

    /// Carries trace context in metadata with `propagator` (the SDK's
    /// `TraceContextPropagator`, say, for W3C `traceparent`), instead of the
    /// global propagator.
    pub fn propagator(mut self, propagator: impl TextMapPropagator + Send + Sync + 'static) -> Self {
        self.propagator = Some(Box::new(propagator));
        self
    }

    /// Records every method's name in `grpc.method`, even those not
    /// generated from a `.proto`, which are otherwise `"other"`. Only for
    /// clients and servers whose peers are trusted not to invent methods.
    pub fn record_all_methods(mut self, on: bool) -> Self {
        self.all_methods = on;
        self
    }

    /// Decides per channel whether `grpc.target` records its target or
    /// `"other"` (channels to many IP addresses, say). By default every
    /// target is recorded.
    pub fn target_attribute_filter(mut self, filter: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.target_filter = Some(Box::new(filter));
        self
    }

    /// The handler, to give to [`ChannelBuilder::stats_handler`] and
    /// [`Server::stats_handler`].
    ///
    /// [`ChannelBuilder::stats_handler`]: crate::client::ChannelBuilder::stats_handler
    /// [`Server::stats_handler`]: crate::server::Server::stats_handler
    pub fn build(self) -> OpenTelemetry {
        OpenTelemetry {
            plugin: Arc::new(Plugin {
                metrics: self.meter.as_ref().map(Instruments::new),
                tracer: self.tracer,
                propagator: self.propagator,
                all_methods: self.all_methods,
                target_filter: self.target_filter,
            }),
        }
    }
}

/// gRFC A66's instruments.
struct Instruments {
    attempt_started: Counter<u64>,
    attempt_duration: Histogram<f64>,
    attempt_sent: Histogram<u64>,
    attempt_rcvd: Histogram<u64>,
    call_duration: Histogram<f64>,
    server_started: Counter<u64>,
    server_duration: Histogram<f64>,
    server_sent: Histogram<u64>,
    server_rcvd: Histogram<u64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Instruments {
        let latency = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(LATENCY_BUCKETS.to_vec())
                .build()
        };
        let size = |name: &'static str, description: &'static str| {
            meter
                .u64_histogram(name)
                .with_unit("By")
                .with_description(description)
                .with_boundaries(SIZE_BUCKETS.to_vec())
                .build()
        };
        Instruments {
            attempt_started: meter
                .u64_counter("grpc.client.attempt.started")
                .with_unit("{attempt}")
                .with_description("Number of client call attempts started.")
                .build(),
            attempt_duration: latency(
                "grpc.client.attempt.duration",
                "Time from the start of a client call attempt, before its connection is picked, to its end.",
            ),
            attempt_sent: size(
                "grpc.client.attempt.sent_total_compressed_message_size",
                "Bytes of request messages an attempt sent, compressed, without framing.",
            ),
            attempt_rcvd: size(
                "grpc.client.attempt.rcvd_total_compressed_message_size",
                "Bytes of response messages an attempt received, compressed, without framing.",
            ),
            call_duration: latency(
                "grpc.client.call.duration",
                "Time from the application starting a client call to its status.",
            ),
            server_started: meter
                .u64_counter("grpc.server.call.started")
                .with_unit("{call}")
                .with_description("Number of server calls started.")
                .build(),
            server_duration: latency(
                "grpc.server.call.duration",
                "Time from a server call's request headers to its status being sent.",
            ),
            server_sent: size(
                "grpc.server.call.sent_total_compressed_message_size",
                "Bytes of response messages a server call sent, compressed, without framing.",
            ),
            server_rcvd: size(
                "grpc.server.call.rcvd_total_compressed_message_size",
                "Bytes of request messages a server call received, compressed, without framing.",
            ),
        }
    }
}

impl Plugin {
    fn with_propagator<T>(&self, f: impl FnOnce(&dyn TextMapPropagator) -> T) -> T {
        match &self.propagator {
            Some(p) => f(p.as_ref()),
            None => {
                let mut f = Some(f);
                ::opentelemetry::global::get_text_map_propagator(|p| (f.take().expect("called once"))(p))
            }
        }
    }
}

/// Writes trace context into request metadata.
struct MetadataInjector<'a>(&'a mut Metadata);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // A value metadata cannot carry is left out.
        let _ = self.0.insert(key.to_ascii_lowercase().as_str(), value.as_str());
    }
}

/// Reads trace context from request metadata.
struct MetadataExtractor<'a>(&'a Metadata);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k).collect()
    }
}

/// A span's name: `Sent.`, `Attempt.` or `Recv.` and the method, its
/// slash made a dot, as gRPC's other implementations name them.
fn span_name(prefix: &str, call: &CallInfo) -> Cow<'static, str> {
    format!("{prefix}.{}", call.full_method().replace('/', ".")).into()
}

impl StatsHandler for OpenTelemetry {
    fn call_started(&self, call: &CallInfo, metadata: &mut Metadata) -> Option<Box<dyn CallStats>> {
        let plugin = &self.plugin;
        if plugin.metrics.is_none() && plugin.tracer.is_none() {
            return None;
        }
        // Shared strings: the attribute sets below clone them for each
        // measurement, which then costs a reference count, not a copy.
        let method: StringValue = if call.is_registered() || plugin.all_methods {
            Arc::<str>::from(call.full_method()).into()
        } else {
            OTHER.into()
        };
        let method = KeyValue::new("grpc.method", method);
        let target = call.target.as_ref().map(|t| {
            let recorded = plugin.target_filter.as_ref().is_none_or(|keep| keep(t));
            let value: StringValue = if recorded { t.clone().into() } else { OTHER.into() };
            KeyValue::new("grpc.target", value)
        });
        let cx = plugin.tracer.as_ref().map(|tracer| match call.side() {
            Side::Client => {
                let parent = Context::current();
                let span = tracer
                    .span_builder(span_name("Sent", call))
                    .with_kind(SpanKind::Client)
                    .with_attributes(rpc_attributes(call))
                    .start_with_context(tracer, &parent);
                let cx = parent.with_span(span);
                plugin.with_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
                cx
            }
            Side::Server => {
                let parent = plugin.with_propagator(|p| p.extract(&MetadataExtractor(metadata)));
                let span = tracer
                    .span_builder(span_name("Recv", call))
                    .with_kind(SpanKind::Server)
                    .with_attributes(rpc_attributes(call))
                    .start_with_context(tracer, &parent);
                parent.with_span(span)
            }
        });
        if let (Some(m), Side::Server) = (&plugin.metrics, call.side()) {
            m.server_started.add(1, std::slice::from_ref(&method));
        }
        Some(Box::new(OtelCall {
            plugin: self.plugin.clone(),
            method,
            target,
            cx,
            attempts: Mutex::new(Vec::new()),
        }))
    }
}

/// OpenTelemetry's RPC attributes of a span.
fn rpc_attributes(call: &CallInfo) -> Vec<KeyValue> {
    let (service, method) = crate::interceptor::split_path(call.path());
    let mut attributes = vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", service.to_string()),
        KeyValue::new("rpc.method", method.to_string()),
    ];
    if let Some(peer) = call.peer() {
        attributes.push(KeyValue::new("network.peer.address", peer.ip().to_string()));
        attributes.push(KeyValue::new("network.peer.port", i64::from(peer.port())));
    }
    attributes
}

/// One call, followed for OpenTelemetry.
struct OtelCall {
    plugin: Arc<Plugin>,
    method: KeyValue,
    target: Option<KeyValue>,
    /// The call's span, in its context.
    cx: Option<Context>,
    /// Client: the spans of attempts under way, by number and start.
    attempts: Mutex<Vec<(u32, Instant, Context)>>,
}

impl OtelCall {
    /// `grpc.method`, `grpc.target` if a client's, and `grpc.status`.
    fn attributes(&self, code: Option<Code>) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(3);
        attributes.push(self.method.clone());
        if let Some(target) = &self.target {
            attributes.push(target.clone());
        }
        if let Some(code) = code {
            attributes.push(KeyValue::new("grpc.status", code.name()));
        }
        attributes
    }
}

/// Ends the span of `cx` with the call's status. A server marks only the
/// codes that mean it failed as errors, after OpenTelemetry's RPC
/// conventions; a client marks every code but OK.
fn end_span(cx: &Context, side: Side, end: &CallEnd<'_>) {
    let span = cx.span();
    let code = end.status().code();
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code.as_i32())));
    let failed = match side {
        Side::Client => code != Code::Ok,
        Side::Server => matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ),
    };
    if failed {
        span.set_status(SpanStatus::error(format!(
            "{}: {}",
            code.name(),
            end.status().message()
        )));
    }
    span.end_with_timestamp(std::time::SystemTime::now());
}

impl CallStats for OtelCall {
    fn attempt_started(&self, call: &CallInfo, attempt: &AttemptInfo) {
        if let Some(m) = &self.plugin.metrics {
            m.attempt_started.add(1, &self.attributes(None));
        }
        if let (Some(tracer), Some(parent)) = (&self.plugin.tracer, &self.cx) {
            let span = tracer
                .span_builder(span_name("Attempt", call))
                .with_kind(SpanKind::Internal)
                .with_attributes([
                    KeyValue::new("previous-rpc-attempts", i64::from(attempt.previous_attempts())),
                    KeyValue::new("transparent-retry", attempt.is_transparent_retry()),
                ])
                .start_with_context(tracer, parent);
            if let Ok(mut attempts) = self.attempts.lock() {
                attempts.push((attempt.previous_attempts(), attempt.started(), parent.with_span(span)));
            }
        }
    }

    fn attempt_ended(&self, _call: &CallInfo, attempt: &AttemptInfo, end: &CallEnd<'_>) {
        if let Some(m) = &self.plugin.metrics {
            let attributes = self.attributes(Some(end.status().code()));
            m.attempt_duration
                .record(end.since(attempt.started()).as_secs_f64(), &attributes);
            m.attempt_sent.record(end.sent().bytes, &attributes);
            m.attempt_rcvd.record(end.received().bytes, &attributes);
        }
        let cx = self.attempts.lock().ok().and_then(|mut attempts| {
            let at = attempts
                .iter()
                .position(|(n, started, _)| *n == attempt.previous_attempts() && *started == attempt.started())?;
            Some(attempts.swap_remove(at).2)
        });
        if let Some(cx) = cx {
            end_span(&cx, Side::Client, end);
        }
    }

    fn call_ended(&self, call: &CallInfo, end: &CallEnd<'_>) {
        let side = call.side();
        if let Some(m) = &self.plugin.metrics {
            let attributes = self.attributes(Some(end.status().code()));
            let took = end.since(call.started()).as_secs_f64();
            match side {
                Side::Client => m.call_duration.record(took, &attributes),
                Side::Server => {
                    m.server_duration.record(took, &attributes);
                    m.server_sent.record(end.sent().bytes, &attributes);
                    m.server_rcvd.record(end.received().bytes, &attributes);
                }
            }
        }
        if let Some(cx) = &self.cx {
            end_span(cx, side, end);
        }
    }

    fn in_scope(&self, poll: &mut dyn FnMut()) {
        match &self.cx {
            Some(cx) => {
                let _attached = cx.clone().attach();
                poll()
            }
            None => poll(),
        }
    }
}
