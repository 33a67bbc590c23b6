//! The `courier` command-line tool. A thin binary over the library: each verb
//! lives in a module of its own.
//!
//! - `list`, `describe` ([`describe`]): what a server offers, through server
//!   reflection or `--proto` files ([`source`]);
//! - `call` ([`call`]): calls a method with JSON requests, through a codec
//!   for dynamic messages ([`dynamic`]) fed from [`input`];
//! - `health` ([`health`]): the standard health check;
//! - `channelz` ([`channelz`]): a process's channels, servers and sockets,
//!   from its channelz service;
//! - `bench` ([`bench`]): load for one method, with a latency summary;
//! - `demo` ([`demo`]): the four kinds of call against an in-process server.
//!
//! [`connect`] makes the channel from an address and the TLS flags, and
//! [`error`] turns every failure into one line and an exit code.

mod bench;
mod call;
mod channelz;
mod connect;
mod demo;
mod describe;
mod dynamic;
mod error;
mod health;
mod input;
mod source;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Courier: a gRPC toolkit.
#[derive(Parser)]
#[command(
    name = "courier",
    version,
    about,
    after_help = "Exit codes: 0 success; 1 an error before or outside a call; 2 bad usage; \
                  3 `health` answered other than SERVING; 64+N a call ended with gRPC status N."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the services of a server, or the methods of one service.
    List(describe::ListArgs),
    /// Show a service, method, message or enum as proto source.
    Describe(describe::DescribeArgs),
    /// Call a method with JSON requests and print the responses as JSON.
    Call(call::CallArgs),
    /// Ask a server's health service; exit 0 only when SERVING.
    Health(health::HealthArgs),
    /// Show a server's channelz: its process's channels, servers and sockets.
    Channelz(channelz::ChannelzArgs),
    /// Load a method with calls and summarize throughput and latency.
    Bench(bench::BenchArgs),
    /// Start a server in-process and call it with each kind of call.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::List(args) => describe::list(args).await,
            Command::Describe(args) => describe::describe(args).await,
            Command::Call(args) => call::run(args).await,
            Command::Health(args) => health::run(args).await,
            Command::Channelz(args) => channelz::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Demo => demo::run().await.map_err(error::Error::msg),
        }
    });
    // A thread blocked reading standard input must not hold the exit up.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(e.report()),
    }
}
