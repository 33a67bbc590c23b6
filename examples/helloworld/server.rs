//! The helloworld server: serves the `helloworld.Greeter` service, whose one
//! unary method answers a name with a greeting.
//!
//! Run it with
//!
//! ```text
//! cargo run -p examples --example helloworld-server [-- [--addr] ADDR]
//! ```
//!
//! It listens on 127.0.0.1:50051 unless given another address, and stops on
//! Ctrl-C. Call it with the `helloworld-client` example.

use std::process::ExitCode;

use examples::cli::{Args, exit_code};
use examples::helloworld::{DEFAULT_SERVER_ADDR, MyGreeter};
use examples::pb::helloworld::greeter_server::GreeterServer;

const USAGE: &str = "usage: helloworld-server [--addr ADDR | ADDR]   (default 127.0.0.1:50051)";

#[tokio::main]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let addr = Args::from_env(USAGE).addr_or_first(DEFAULT_SERVER_ADDR);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    println!("Greeter server listening on {}", listener.local_addr()?);

    courier::Server::builder()
        .add_service(GreeterServer::new(MyGreeter))
        .serve_with_listener(listener, async {
            let _ = tokio::signal::ctrl_c().await;
            println!("Shutting down");
        })
        .await?;
    Ok(())
}
