//! The observability server: the `helloworld.Greeter` service with
//! OpenTelemetry metrics served for Prometheus at `/metrics`, and spans
//! printed to stdout. See `examples/observability/README.md`.
//!
//! ```text
//! cargo run -p examples --example observability-server [-- ADDR [METRICS_ADDR]]
//! ```
//!
//! It listens for gRPC on 127.0.0.1:50051 and serves metrics on
//! 127.0.0.1:9464 unless given other addresses, and stops on Ctrl-C.

use std::process::ExitCode;

use examples::cli::exit_code;
use examples::helloworld::MyGreeter;
use examples::observability::{DEFAULT_SERVER_ADDR, DEFAULT_SERVER_METRICS_ADDR, Telemetry, spawn_metrics_endpoint};
use examples::pb::helloworld::greeter_server::GreeterServer;

#[tokio::main]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| DEFAULT_SERVER_ADDR.to_string());
    let metrics_addr = args.next().unwrap_or_else(|| DEFAULT_SERVER_METRICS_ADDR.to_string());
    let telemetry = Telemetry::new("greeter-server", true)?;
    let metrics = spawn_metrics_endpoint(&metrics_addr, telemetry.registry.clone())
        .await
        .map_err(|err| format!("cannot serve metrics on {metrics_addr}: {err}"))?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    println!("Greeter server listening on {}", listener.local_addr()?);
    println!("Metrics at http://{metrics}/metrics");

    courier::Server::builder()
        .stats_handler(telemetry.otel.clone())
        .add_service(GreeterServer::new(MyGreeter))
        .serve_with_listener(listener, async {
            let _ = tokio::signal::ctrl_c().await;
            println!("Shutting down");
        })
        .await?;
    telemetry.shutdown();
    Ok(())
}
