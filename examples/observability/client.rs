//! The observability client: says hello to the observability server a few
//! times with OpenTelemetry metrics (served for Prometheus at `/metrics`
//! while it runs) and spans printed to stdout; the server's spans continue
//! its trace. See `examples/observability/README.md`.
//!
//! ```text
//! cargo run -p examples --example observability-client [-- TARGET [CALLS]]
//! ```

use std::process::ExitCode;

use examples::cli::exit_code;
use examples::observability::{DEFAULT_CLIENT_METRICS_ADDR, Telemetry, spawn_metrics_endpoint};
use examples::pb::helloworld::HelloRequest;
use examples::pb::helloworld::greeter_client::GreeterClient;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};

#[tokio::main]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "http://127.0.0.1:50051".to_string());
    let calls: u32 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(3);
    let telemetry = Telemetry::new("greeter-client", true)?;
    let metrics = spawn_metrics_endpoint(DEFAULT_CLIENT_METRICS_ADDR, telemetry.registry.clone()).await?;
    println!("Client metrics at http://{metrics}/metrics while it runs");

    let channel = courier::Channel::builder(&target)
        .stats_handler(telemetry.otel.clone())
        .connect()
        .await?;
    let greeter = GreeterClient::new(channel);
    // The application's own span: the calls are its children, and the
    // server's spans join the same trace.
    let tracer = telemetry.tracer("observability-client");
    let cx = opentelemetry::Context::current_with_span(tracer.start("say hello"));
    for i in 0..calls {
        let request = courier::Request::new(HelloRequest {
            name: format!("Ada #{i}"),
        });
        let reply = greeter.say_hello(request).with_context(cx.clone()).await?;
        println!("{}", reply.into_inner().message);
    }
    cx.span().end();
    telemetry.shutdown();
    Ok(())
}
