//! `courier-bench-server`: BenchmarkService (and TestService's EmptyCall,
//! UnaryCall and FullDuplexCall) on Courier, for `scripts/bench.sh`.

use std::process::ExitCode;

use clap::Parser as _;
use courier_bench::serve::{ServerArgs, run};

fn main() -> ExitCode {
    let args = ServerArgs::parse();
    match run(&args, "courier-bench-server", courier_bench::courier_server::serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("courier-bench-server: {e}");
            ExitCode::FAILURE
        }
    }
}
