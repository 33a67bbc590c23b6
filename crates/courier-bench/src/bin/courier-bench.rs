//! `courier-bench`: the closed-loop gRPC load generator. See
//! `courier_bench::loadgen`.

use std::process::ExitCode;

use clap::Parser as _;
use courier_bench::loadgen::{Args, run_blocking};

fn main() -> ExitCode {
    let args = Args::parse();
    match run_blocking(&args) {
        Ok(report) => {
            if args.json {
                eprint!("{}", report.summary());
                println!("{}", report.to_json());
            } else {
                print!("{}", report.summary());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("courier-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
