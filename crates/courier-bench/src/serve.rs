//! What the two bench servers share: the command line, the runtime and the
//! listener, so that the only difference between them is the library.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;

use clap::Parser;

/// The command line of `courier-bench-server` and `tonic-bench-server`.
#[derive(Clone, Debug, Parser)]
pub struct ServerArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// The port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 50051)]
    pub port: u16,

    /// Worker threads of the tokio multi-thread runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Binds the listener, prints `listening on ADDR` on stdout, and runs
/// `serve` on a multi-thread runtime of `args.threads` workers until SIGINT
/// or SIGTERM, when the server shuts down and the process exits normally (so
/// that tools such as callgrind write their output).
///
/// The server runs as a spawned task, on a worker thread, as the
/// connections do: the thread that called this only waits.
///
/// # Errors
///
/// A runtime that cannot be built or an address that cannot be bound.
pub fn run<F, Fut>(args: &ServerArgs, name: &str, serve: F) -> Result<(), String>
where
    F: FnOnce(tokio::net::TcpListener, ShutdownSignal) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;
    let host = args.host.clone();
    let port = args.port;
    let name = name.to_string();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("{name} listening on {addr}");
        let _ = std::io::stdout().flush();
        let served = tokio::spawn(serve(listener, ShutdownSignal));
        served.await.map_err(|e| format!("server task failed: {e}"))?
    })
}

/// Completes on SIGINT or SIGTERM.
#[derive(Clone, Copy, Debug)]
pub struct ShutdownSignal;

impl ShutdownSignal {
    /// Waits for SIGINT or SIGTERM.
    pub async fn wait(self) {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}
