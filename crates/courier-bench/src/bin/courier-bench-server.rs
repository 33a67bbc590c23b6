//! `courier-bench-server`: BenchmarkService (and TestService's EmptyCall,
//! UnaryCall and FullDuplexCall) on Courier, for `scripts/bench.sh`.

use std::process::ExitCode;

use clap::Parser as _;
use courier_bench::serve::{ServerArgs, run};

fn main() -> ExitCode {
    let args = ServerArgs::parse();
    courier_bench::courier_server::set_fixed_windows(args.fixed_windows);
    courier_bench::courier_server::set_unary_delay(std::time::Duration::from_micros(args.unary_delay_us));
    let otel = args.otel.then(courier_bench::courier_server::metrics);
    let serve = move |listener, shutdown| courier_bench::courier_server::serve(listener, shutdown, otel.clone());
    match run(&args, "courier-bench-server", serve) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("courier-bench-server: {e}");
            ExitCode::FAILURE
        }
    }
}
