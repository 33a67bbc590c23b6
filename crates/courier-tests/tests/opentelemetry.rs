//! OpenTelemetry metrics and traces (gRFCs A66, A72) over real sockets,
//! read back from the OpenTelemetry SDK's in-memory exporters: every
//! instrument and its attributes for each kind of call, a failed and a
//! retried call, methods not generated from a `.proto`, and one trace
//! across a client, a server that calls a second server, and that server.

use std::collections::BTreeMap;

use courier::client::MethodPath;
use courier::codec::ProstCodec;
use courier::opentelemetry::OpenTelemetry;
use courier::{Channel, Code, Request, Response, Status};
use courier_tests::pb::echo_server::{Echo, EchoServer};
use courier_tests::{
    EchoClient, EchoRequest, EchoResponse, ResponseStream, echo_with, fail_first_attempt, retry_echo_on_unavailable,
    start_with, start_with_counters, text,
};
use futures_util::StreamExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

/// A meter provider whose metrics are read back with [`Metrics::collect`].
struct Metrics {
    provider: SdkMeterProvider,
    exporter: InMemoryMetricExporter,
}

/// One data point: its attributes, and its value (a counter's sum) or
/// count (a histogram's).
type Points = Vec<(BTreeMap<String, String>, u64)>;

impl Metrics {
    fn new() -> Metrics {
        let exporter = InMemoryMetricExporter::default();
        let reader = PeriodicReader::builder(exporter.clone()).build();
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        Metrics { provider, exporter }
    }

    /// Every instrument's points, by name, with its unit.
    fn collect(&self) -> BTreeMap<String, (String, Points)> {
        self.provider.force_flush().unwrap();
        let exported = self.exporter.get_finished_metrics().unwrap();
        let last = exported.last().expect("an export");
        let mut all = BTreeMap::new();
        for scope in last.scope_metrics() {
            assert_eq!(scope.scope().name(), "courier");
            for metric in scope.metrics() {
                let attributes = |kvs: &mut dyn Iterator<Item = &KeyValue>| -> BTreeMap<String, String> {
                    kvs.map(|kv| (kv.key.to_string(), kv.value.to_string())).collect()
                };
                let points: Points = match metric.data() {
                    AggregatedMetrics::U64(MetricData::Sum(sum)) => sum
                        .data_points()
                        .map(|p| (attributes(&mut p.attributes()), p.value()))
                        .collect(),
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            assert_eq!(p.bounds().collect::<Vec<_>>(), courier::opentelemetry::SIZE_BUCKETS);
                        }
                        h.data_points()
                            .map(|p| (attributes(&mut p.attributes()), p.count()))
                            .collect()
                    }
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            assert_eq!(p.bounds().collect::<Vec<_>>(), courier::opentelemetry::LATENCY_BUCKETS);
                        }
                        h.data_points()
                            .map(|p| (attributes(&mut p.attributes()), p.count()))
                            .collect()
                    }
                    other => panic!("{}: unexpected data {other:?}", metric.name()),
                };
                all.insert(metric.name().to_string(), (metric.unit().to_string(), points));
            }
        }
        all
    }
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The value or count of the point of `name` with exactly `attributes`.
fn point(all: &BTreeMap<String, (String, Points)>, name: &str, attributes: &[(&str, &str)]) -> u64 {
    let (_, points) = all
        .get(name)
        .unwrap_or_else(|| panic!("no instrument {name}: {:?}", all.keys()));
    let want = attrs(attributes);
    points
        .iter()
        .find(|(a, _)| *a == want)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{name}: no point with {want:?} in {points:?}"))
}

#[tokio::test]
async fn every_instrument_is_recorded_with_its_attributes_for_each_kind_of_call() {
    let metrics = Metrics::new();
    let otel = OpenTelemetry::builder().meter_provider(&metrics.provider).build();
    let on_server = otel.clone();
    let srv = start_with_counters(move |b, counters| {
        b.stats_handler(on_server)
            .interceptor(fail_first_attempt)
            .add_service(echo_with(counters))
    })
    .await;
    let config = retry_echo_on_unavailable();
    let ch = Channel::builder(srv.url())
        .stats_handler(otel)
        .service_config(config)
        .connect()
        .await
        .unwrap();
    let echo = EchoClient::new(ch.clone());
    let target = format!("dns:///{}", srv.addr);

    // Each kind of call, once, successfully.
    echo.unary(Request::new(text("u"))).await.unwrap();
    echo.client_stream(Request::new(tokio_stream::iter(vec![text("c1"), text("c2")])))
        .await
        .unwrap();
    let ask = EchoRequest { count: 3, ..text("s") };
    let mut stream = echo.server_stream(Request::new(ask)).await.unwrap().into_inner();
    while stream.next().await.transpose().unwrap().is_some() {}
    let mut stream = echo
        .bidi(Request::new(tokio_stream::iter(vec![text("b1")])))
        .await
        .unwrap()
        .into_inner();
    while stream.next().await.transpose().unwrap().is_some() {}
    // A failed call.
    let failing = EchoRequest {
        fail_code: Code::NotFound as i32,
        ..text("f")
    };
    assert_eq!(
        echo.unary(Request::new(failing)).await.unwrap_err().code(),
        Code::NotFound
    );
    // A retried call: two attempts, one call.
    let mut retried = Request::new(text("r"));
    retried.metadata_mut().insert("fail-first", "1").unwrap();
    echo.unary(retried).await.unwrap();
    // A method called by a path made at run time, and one the server lacks.
    let codec = ProstCodec::<EchoRequest, EchoResponse>::new();
    ch.unary(
        Request::new(text("d")),
        MethodPath::parse("/courier.test.Echo/Unary").unwrap(),
        codec,
    )
    .await
    .unwrap();
    let codec = ProstCodec::<EchoRequest, EchoResponse>::new();
    let err = ch
        .unary(
            Request::new(text("n")),
            MethodPath::parse("/no.Such/Method").unwrap(),
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    drop(srv);

    let all = metrics.collect();
    let names: Vec<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "grpc.client.attempt.duration",
            "grpc.client.attempt.rcvd_total_compressed_message_size",
            "grpc.client.attempt.sent_total_compressed_message_size",
            "grpc.client.attempt.started",
            "grpc.client.call.duration",
            "grpc.server.call.duration",
            "grpc.server.call.rcvd_total_compressed_message_size",
            "grpc.server.call.sent_total_compressed_message_size",
            "grpc.server.call.started",
        ]
    );
    let units: Vec<(&str, &str)> = all.iter().map(|(n, (u, _))| (n.as_str(), u.as_str())).collect();
    for (name, unit) in units {
        let want = if name.ends_with("duration") {
            "s"
        } else if name.ends_with("size") {
            "By"
        } else if name.starts_with("grpc.client") {
            "{attempt}"
        } else {
            "{call}"
        };
        assert_eq!(unit, want, "{name}");
    }

    let unary = "courier.test.Echo/Unary";
    let m = |method| [("grpc.method", method), ("grpc.target", target.as_str())];
    let ms = |method, status| {
        [
            ("grpc.method", method),
            ("grpc.status", status),
            ("grpc.target", target.as_str()),
        ]
    };
    // Unary: "u" and "f" (one attempt each) and "r" (two).
    assert_eq!(point(&all, "grpc.client.attempt.started", &m(unary)), 4);
    assert_eq!(point(&all, "grpc.client.attempt.duration", &ms(unary, "OK")), 2);
    assert_eq!(point(&all, "grpc.client.attempt.duration", &ms(unary, "NOT_FOUND")), 1);
    assert_eq!(
        point(&all, "grpc.client.attempt.duration", &ms(unary, "UNAVAILABLE")),
        1
    );
    assert_eq!(
        point(&all, "grpc.client.call.duration", &ms(unary, "OK")),
        2,
        "u and r, once each"
    );
    assert_eq!(point(&all, "grpc.client.call.duration", &ms(unary, "NOT_FOUND")), 1);
    for size in [
        "grpc.client.attempt.sent_total_compressed_message_size",
        "grpc.client.attempt.rcvd_total_compressed_message_size",
    ] {
        assert_eq!(point(&all, size, &ms(unary, "OK")), 2, "{size}");
        assert_eq!(point(&all, size, &ms(unary, "UNAVAILABLE")), 1, "{size}");
    }
    for method in [
        "courier.test.Echo/ClientStream",
        "courier.test.Echo/ServerStream",
        "courier.test.Echo/Bidi",
    ] {
        assert_eq!(point(&all, "grpc.client.attempt.started", &m(method)), 1, "{method}");
        assert_eq!(
            point(&all, "grpc.client.attempt.duration", &ms(method, "OK")),
            1,
            "{method}"
        );
        assert_eq!(
            point(&all, "grpc.client.call.duration", &ms(method, "OK")),
            1,
            "{method}"
        );
        let server = [("grpc.method", method)];
        assert_eq!(point(&all, "grpc.server.call.started", &server), 1, "{method}");
        let server = [("grpc.method", method), ("grpc.status", "OK")];
        for name in [
            "grpc.server.call.duration",
            "grpc.server.call.sent_total_compressed_message_size",
            "grpc.server.call.rcvd_total_compressed_message_size",
        ] {
            assert_eq!(point(&all, name, &server), 1, "{name} {method}");
        }
    }
    // The server saw the retried call as two calls, and the call by a path
    // made at run time as one of its methods: u, f, r twice, d.
    assert_eq!(point(&all, "grpc.server.call.started", &[("grpc.method", unary)]), 5);
    let on_server = |status| [("grpc.method", unary), ("grpc.status", status)];
    assert_eq!(point(&all, "grpc.server.call.duration", &on_server("OK")), 3);
    assert_eq!(point(&all, "grpc.server.call.duration", &on_server("UNAVAILABLE")), 1);
    assert_eq!(point(&all, "grpc.server.call.duration", &on_server("NOT_FOUND")), 1);
    // Paths made at run time are "other" on the client; on the server, a
    // method it has is itself, one it lacks "other".
    assert_eq!(point(&all, "grpc.client.attempt.started", &m("other")), 2);
    assert_eq!(point(&all, "grpc.client.call.duration", &ms("other", "OK")), 1);
    assert_eq!(
        point(&all, "grpc.client.call.duration", &ms("other", "UNIMPLEMENTED")),
        1
    );
    let other = [("grpc.method", "other"), ("grpc.status", "UNIMPLEMENTED")];
    assert_eq!(point(&all, "grpc.server.call.duration", &other), 1);
}

/// A spans exporter and a tracer provider.
fn tracing() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

/// A service whose unary handler asks another server before it answers.
struct Forwarder {
    next: EchoClient,
}

impl Echo for Forwarder {
    type ServerStreamStream = ResponseStream;
    type BidiStream = ResponseStream;

    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let saw_traceparent = request.metadata().get("traceparent").is_some();
        let mut answer = self.next.unary(Request::new(request.into_inner())).await?;
        if !saw_traceparent {
            return Err(Status::failed_precondition("no traceparent in the request"));
        }
        answer.get_mut().text.push_str(" via forwarder");
        Ok(answer)
    }
}

fn span<'a>(spans: &'a [SpanData], name: &str, kind: SpanKind) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name && s.span_kind == kind).collect();
    assert_eq!(found.len(), 1, "one {kind:?} span {name} in {:#?}", names(spans));
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| format!("{:?} {}", s.span_kind, s.name)).collect()
}

#[tokio::test]
async fn one_trace_runs_through_a_client_a_forwarding_server_and_the_server_it_calls() {
    let (provider, exporter) = tracing();
    let otel = || {
        OpenTelemetry::builder()
            .tracer_provider(&provider)
            .propagator(TraceContextPropagator::new())
            .build()
    };
    let last = {
        let otel = otel();
        start_with(move |b| b.stats_handler(otel).add_service(echo_with(Default::default()))).await
    };
    let to_last = Channel::builder(last.url())
        .stats_handler(otel())
        .connect()
        .await
        .unwrap();
    let middle = {
        let otel = otel();
        let forwarder = Forwarder {
            next: EchoClient::new(to_last),
        };
        start_with(move |b| b.stats_handler(otel).add_service(EchoServer::new(forwarder))).await
    };
    let ch = Channel::builder(middle.url())
        .stats_handler(otel())
        .connect()
        .await
        .unwrap();

    // The application's own span, current while it makes the call.
    let tracer = provider.tracer("application");
    let root = tracer.start("request from the application");
    let root_cx = Context::current_with_span(root);
    let answer = {
        let _attached = root_cx.clone().attach();
        EchoClient::new(ch).unary(Request::new(text("hello"))).await
    }
    .unwrap()
    .into_inner();
    assert_eq!(answer.text, "hello via forwarder");
    root_cx.span().end();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let root = span(&spans, "request from the application", SpanKind::Internal);
    let trace_id = root.span_context.trace_id();
    let name = "courier.test.Echo.Unary";
    let clients: Vec<&SpanData> = spans.iter().filter(|s| s.span_kind == SpanKind::Client).collect();
    let servers: Vec<&SpanData> = spans.iter().filter(|s| s.span_kind == SpanKind::Server).collect();
    assert_eq!((clients.len(), servers.len()), (2, 2), "{:#?}", names(&spans));
    for s in &spans {
        assert_eq!(
            s.span_context.trace_id(),
            trace_id,
            "{} is in the application's trace",
            s.name
        );
    }
    // Application -> client call -> its attempt -> middle server -> its
    // client call -> attempt -> last server.
    let outer = clients
        .iter()
        .find(|c| c.parent_span_id == root.span_context.span_id())
        .expect("the client call is a child of the application's span");
    assert_eq!(outer.name, format!("Sent.{name}"));
    let by_parent = |parent: &SpanData, kind: SpanKind| -> &SpanData {
        spans
            .iter()
            .find(|s| s.parent_span_id == parent.span_context.span_id() && s.span_kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} child of {}", parent.name))
    };
    let attempt = by_parent(outer, SpanKind::Internal);
    assert_eq!(attempt.name, format!("Attempt.{name}"));
    let middle_span = by_parent(outer, SpanKind::Server);
    assert_eq!(middle_span.name, format!("Recv.{name}"));
    assert!(
        middle_span.parent_span_is_remote,
        "the server's parent came over the wire"
    );
    let inner = by_parent(middle_span, SpanKind::Client);
    assert_eq!(inner.name, format!("Sent.{name}"));
    let last_span = by_parent(inner, SpanKind::Server);
    assert_eq!(last_span.name, format!("Recv.{name}"));
    for s in [outer, middle_span, inner, last_span] {
        let attributes: BTreeMap<String, String> = s
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        assert_eq!(
            attributes.get("rpc.system").map(String::as_str),
            Some("grpc"),
            "{}",
            s.name
        );
        assert_eq!(
            attributes.get("rpc.service").map(String::as_str),
            Some("courier.test.Echo"),
            "{}",
            s.name
        );
        assert_eq!(
            attributes.get("rpc.method").map(String::as_str),
            Some("Unary"),
            "{}",
            s.name
        );
        assert_eq!(
            attributes.get("rpc.grpc.status_code").map(String::as_str),
            Some("0"),
            "{}",
            s.name
        );
    }
    drop((middle, last));
}

#[tokio::test]
async fn a_failed_call_ends_its_client_span_with_an_error() {
    let (provider, exporter) = tracing();
    let otel = OpenTelemetry::builder()
        .tracer_provider(&provider)
        .propagator(TraceContextPropagator::new())
        .build();
    let on_server = otel.clone();
    let srv = start_with(move |b| b.stats_handler(on_server).add_service(echo_with(Default::default()))).await;
    let ch = Channel::builder(srv.url()).stats_handler(otel).connect().await.unwrap();
    let failing = EchoRequest {
        fail_code: Code::NotFound as i32,
        ..text("missing")
    };
    let err = EchoClient::new(ch).unary(Request::new(failing)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let client = span(&spans, "Sent.courier.test.Echo.Unary", SpanKind::Client);
    assert!(
        matches!(&client.status, opentelemetry::trace::Status::Error { description } if description.contains("NOT_FOUND")),
        "{:?}",
        client.status
    );
    // NOT_FOUND is the client's error, not the server's (OpenTelemetry's
    // RPC conventions).
    let server = span(&spans, "Recv.courier.test.Echo.Unary", SpanKind::Server);
    assert_eq!(server.status, opentelemetry::trace::Status::Unset);
}
