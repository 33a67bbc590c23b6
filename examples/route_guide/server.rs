//! The route_guide server: serves the `routeguide.RouteGuide` service, which
//! shows all four kinds of gRPC call — unary (`GetFeature`), server streaming
//! (`ListFeatures`), client streaming (`RecordRoute`) and bidirectional
//! streaming (`RouteChat`) — over a small map of 20 made-up features.
//!
//! Run it with
//!
//! ```text
//! cargo run -p examples --example route_guide-server [-- [--addr] ADDR]
//! ```
//!
//! It listens on 127.0.0.1:10000 unless given another address, and stops on
//! Ctrl-C. Call it with the `route_guide-client` example.

use std::process::ExitCode;

use examples::cli::{Args, exit_code};
use examples::pb::routeguide::route_guide_server::RouteGuideServer;
use examples::route_guide::{DEFAULT_SERVER_ADDR, RouteGuideService, features};

const USAGE: &str = "usage: route_guide-server [--addr ADDR | ADDR]   (default 127.0.0.1:10000)";

#[tokio::main]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = Args::from_env(USAGE).addr_or_first(DEFAULT_SERVER_ADDR);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    println!(
        "RouteGuide server listening on {} with {} features",
        listener.local_addr()?,
        features().len()
    );

    courier::Server::builder()
        .add_service(RouteGuideServer::new(RouteGuideService::new()))
        .serve_with_listener(listener, async {
            let _ = tokio::signal::ctrl_c().await;
            println!("Shutting down");
        })
        .await?;
    Ok(())
}
