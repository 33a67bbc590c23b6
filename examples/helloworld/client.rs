//! The helloworld client: makes one unary call to the `helloworld.Greeter`
//! service and prints the greeting it gets back.
//!
//! Start the `helloworld-server` example, then run
//!
//! ```text
//! cargo run -p examples --example helloworld-client [-- [--addr TARGET] [NAME]]
//! ```
//!
//! TARGET defaults to http://127.0.0.1:50051 and NAME to "world".

use std::process::ExitCode;

use examples::cli::{Args, exit_code};
use examples::helloworld::{DEFAULT_NAME, DEFAULT_TARGET, greet};
use examples::pb::helloworld::greeter_client::GreeterClient;

const USAGE: &str = "usage: helloworld-client [--addr TARGET] [NAME]   (default http://127.0.0.1:50051, world)";

#[tokio::main]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::from_env(USAGE);
    let target = args.addr.as_deref().unwrap_or(DEFAULT_TARGET);
    let name = args.positional.first().map_or(DEFAULT_NAME, String::as_str);

    let client = GreeterClient::connect(target)
        .await
        .map_err(|err| format!("cannot connect to {target}: {err}"))?;
    let message = greet(&client, name).await?;
    println!("Greeter replied: {message}");
    Ok(())
}
