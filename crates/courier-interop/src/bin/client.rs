//! `courier-interop-client`: runs one gRPC interop test case against a
//! server. Exits 0 when the case passes; otherwise prints one line saying
//! what differed and exits 1. See `courier_interop::client`.

use std::process::ExitCode;

use clap::Parser as _;
use courier_interop::client::{ClientArgs, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args = ClientArgs::parse();
    match run(&args).await {
        Ok(()) => {
            println!("{}: passed", args.test_case);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
