//! Calls as `tracing` spans, over real sockets: a client span and a server
//! span per call with OpenTelemetry's RPC fields and the status code, an
//! attempt span per client attempt, and message events inside them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use courier::{Channel, Code, Request};
use courier_tests::{EchoClient, EchoRequest, echo_with, start_with, text};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// A span as recorded: its name and fields.
#[derive(Clone, Debug, Default)]
struct SeenSpan {
    name: String,
    parent: Option<String>,
    fields: BTreeMap<String, String>,
}

/// Everything the subscriber saw.
#[derive(Clone, Default)]
struct Seen {
    spans: Arc<Mutex<BTreeMap<u64, SeenSpan>>>,
    /// Each event's message and the name of the span it happened in.
    events: Arc<Mutex<Vec<SeenEvent>>>,
}

/// An event's message, and the name of the span it happened in.
type SeenEvent = (String, Option<String>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Seen {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = SeenSpan {
            name: attrs.metadata().name().to_string(),
            parent: ctx.span(id).and_then(|s| s.parent()).map(|p| p.name().to_string()),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.spans.lock().unwrap().insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(span) = self.spans.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let within = ctx.event_span(event).map(|s| s.name().to_string());
        self.events.lock().unwrap().push((message, within));
    }
}

impl Seen {
    fn named(&self, name: &str) -> Vec<SeenSpan> {
        self.spans
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }
}

fn field<'a>(span: &'a SeenSpan, name: &str) -> &'a str {
    span.fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{} has no {name}: {:?}", span.name, span.fields))
}

// One thread: the subscriber is this thread's default, and the server and
// the client both run on it.
#[tokio::test(flavor = "current_thread")]
async fn calls_are_spans_with_rpc_fields_status_codes_and_message_events() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry()
        .with(seen.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    let _default = tracing::subscriber::set_default(subscriber);

    let srv = start_with(|b| b.add_service(echo_with(Default::default()))).await;
    let ch = Channel::builder(srv.url()).connect().await.unwrap();
    let echo = EchoClient::new(ch);
    echo.unary(Request::new(text("ok"))).await.unwrap();
    let failing = EchoRequest {
        fail_code: Code::NotFound as i32,
        ..text("missing")
    };
    assert_eq!(
        echo.unary(Request::new(failing)).await.unwrap_err().code(),
        Code::NotFound
    );

    let clients = seen.named("grpc.client");
    assert_eq!(clients.len(), 2, "{clients:#?}");
    for span in &clients {
        assert_eq!(field(span, "otel.name"), "courier.test.Echo/Unary");
        assert_eq!(field(span, "otel.kind"), "client");
        assert_eq!(field(span, "rpc.system"), "grpc");
        assert_eq!(field(span, "rpc.service"), "courier.test.Echo");
        assert_eq!(field(span, "rpc.method"), "Unary");
        assert_eq!(field(span, "server.address"), "127.0.0.1");
        assert_eq!(field(span, "server.port"), srv.addr.port().to_string());
    }
    let mut codes: Vec<&str> = clients.iter().map(|s| field(s, "rpc.grpc.status_code")).collect();
    codes.sort();
    assert_eq!(codes, ["0", "5"], "OK and NOT_FOUND");

    let attempts = seen.named("grpc.attempt");
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for span in &attempts {
        assert_eq!(span.parent.as_deref(), Some("grpc.client"));
        assert_eq!(field(span, "rpc.grpc.previous_rpc_attempts"), "0");
    }

    let servers = seen.named("grpc.server");
    assert_eq!(servers.len(), 2, "{servers:#?}");
    for span in &servers {
        assert_eq!(field(span, "otel.kind"), "server");
        assert_eq!(field(span, "rpc.method"), "Unary");
        assert_eq!(field(span, "network.peer.address"), "127.0.0.1");
    }
    let mut codes: Vec<&str> = servers.iter().map(|s| field(s, "rpc.grpc.status_code")).collect();
    codes.sort();
    assert_eq!(codes, ["0", "5"]);

    // Each side's message events happen inside its span.
    let events = seen.events.lock().unwrap().clone();
    let count = |message: &str, span: &str| {
        events
            .iter()
            .filter(|(m, s)| m == message && s.as_deref() == Some(span))
            .count()
    };
    assert_eq!(
        count("message sent", "grpc.attempt") + count("message sent", "grpc.client"),
        2,
        "{events:#?}"
    );
    assert_eq!(count("message received", "grpc.server"), 2, "{events:#?}");
    assert_eq!(
        count("message sent", "grpc.server"),
        1,
        "one response, from the call that succeeded"
    );
    assert_eq!(count("message received", "grpc.client"), 1, "{events:#?}");
}
