//! `courier-interop-server`: serves `grpc.testing.TestService` for the gRPC
//! interop tests. See `courier_interop::server`.

use std::process::ExitCode;

use clap::Parser as _;
use courier_interop::server::{ServerArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args = ServerArgs::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("courier-interop-server: {e}");
            ExitCode::FAILURE
        }
    }
}
