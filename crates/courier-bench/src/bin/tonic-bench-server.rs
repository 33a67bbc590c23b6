//! `tonic-bench-server`: BenchmarkService on tonic 0.14, for
//! `scripts/bench.sh`.

use std::process::ExitCode;

use clap::Parser as _;
use courier_bench::serve::{ServerArgs, run};

fn main() -> ExitCode {
    let args = ServerArgs::parse();
    match run(&args, "tonic-bench-server", courier_bench::tonic_server::serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tonic-bench-server: {e}");
            ExitCode::FAILURE
        }
    }
}
