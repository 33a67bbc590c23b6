//! What the two bench servers share: the command line, the runtime and the
//! listener, so that the only difference between them is the library.

use std::future::Future;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs as _};

use clap::{Parser, ValueEnum};
use tokio::sync::{mpsc, watch};

/// The command line of `courier-bench-server` and `tonic-bench-server`.
#[derive(Clone, Debug, Parser)]
pub struct ServerArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// The port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 50051)]
    pub port: u16,

    /// Threads serving connections: the workers of the multi-thread
    /// runtime, or the number of current-thread runtimes with `--runtime
    /// per-core`.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// How the serving threads are run.
    #[arg(long, value_enum, default_value_t = RuntimeKind::MultiThread)]
    pub runtime: RuntimeKind,

    /// Courier: record OpenTelemetry metrics for every call (gRFC A66's
    /// instruments, through the OpenTelemetry SDK, read by a Prometheus
    /// exporter), to measure what they cost. tonic's server ignores it.
    #[arg(long)]
    pub otel: bool,

    /// Courier: fixed HTTP/2 flow-control windows (the default sizes)
    /// instead of adaptive ones, so that the server sends no BDP pings.
    /// `scripts/bench.sh --callgrind` uses it: a ping's ack arrives while
    /// the server under callgrind is still at work, sooner or later from
    /// run to run. tonic's server ignores it (its windows are fixed).
    #[arg(long)]
    pub fixed_windows: bool,

    /// Courier: answer each BenchmarkService.UnaryCall this many
    /// microseconds late (default 0). `scripts/bench.sh --callgrind-lb`
    /// uses it so that a response never arrives while the client under
    /// callgrind is still sending: the client then does the same work for
    /// every call, and its instruction counts repeat. tonic's server
    /// ignores it.
    #[arg(long, default_value_t = 0)]
    pub unary_delay_us: u64,
}

/// How a bench server runs its threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// One tokio multi-thread runtime of `--threads` workers and one
    /// listener: connections and calls go to any worker, and idle workers
    /// steal queued tasks from busy ones.
    #[default]
    MultiThread,
    /// `--threads` tokio current-thread runtimes, each on a thread of its
    /// own with its own listener on the same port (`SO_REUSEPORT`, so the
    /// kernel spreads new connections over them by a hash of the address
    /// pair). A connection and its calls stay on the thread that accepted
    /// it; nothing is stolen.
    PerCore,
}

/// Binds the listener, prints `listening on ADDR` on stdout, and runs
/// `serve` on the runtime `args.runtime` names until SIGINT or SIGTERM, when
/// the server shuts down and the process exits normally (so that tools such
/// as callgrind write their output).
///
/// With [`RuntimeKind::MultiThread`], `serve` is called once, on a
/// multi-thread runtime of `args.threads` workers, as a spawned task (on a
/// worker thread, as the connections are): the thread that called this only
/// waits. With [`RuntimeKind::PerCore`], `serve` is called once on each of
/// `args.threads` threads, each running a current-thread runtime, with a
/// listener of its own on the same address; the thread that called this
/// waits for the signal and passes it on.
///
/// # Errors
///
/// A runtime that cannot be built, an address that cannot be bound, or a
/// server that failed.
pub fn run<F, Fut>(args: &ServerArgs, name: &str, serve: F) -> Result<(), String>
where
    F: Fn(tokio::net::TcpListener, ShutdownSignal) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    match args.runtime {
        RuntimeKind::MultiThread => run_multi_thread(args, name, serve),
        RuntimeKind::PerCore => run_per_core(args, name, serve),
    }
}

fn run_multi_thread<F, Fut>(args: &ServerArgs, name: &str, serve: F) -> Result<(), String>
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
        announce(&name, addr);
        let served = tokio::spawn(serve(listener, ShutdownSignal::default()));
        served.await.map_err(|e| format!("server task failed: {e}"))?
    })
}

fn run_per_core<F, Fut>(args: &ServerArgs, name: &str, serve: F) -> Result<(), String>
where
    F: Fn(tokio::net::TcpListener, ShutdownSignal) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + 'static,
{
    let (host, port) = (args.host.as_str(), args.port);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port} resolves to no address"))?;
    // Every listener is bound before any thread starts, the first one on
    // the port asked for (or a free one, for port 0) and the others on the
    // port it got.
    let first = reuse_port_listener(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = first.local_addr().map_err(|e| e.to_string())?;
    let mut listeners = vec![first];
    for _ in 1..args.threads.max(1) {
        listeners.push(reuse_port_listener(addr).map_err(|e| format!("cannot listen on {addr} again: {e}"))?);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<()>();
    let mut threads = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let serve = serve.clone();
        let shutdown = ShutdownSignal {
            stop: Some(stop_rx.clone()),
        };
        let ended = Ended(ended_tx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
                let _ended = ended;
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot build runtime {i}: {e}"))
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                            serve(listener, shutdown).await
                        })
                    })
            })
            .map_err(|e| format!("cannot start thread {i}: {e}"))?;
        threads.push(thread);
    }
    drop(ended_tx);

    // This thread only waits: for the signal, or for a server that ended
    // early (failed), and then stops the others.
    let waiter = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the signal runtime: {e}"))?;
    waiter.block_on(async {
        // Listening for the signals before saying so, so that a SIGTERM
        // sent as soon as the line is read stops the server gracefully.
        let signals = OsSignals::new();
        announce(name, addr);
        tokio::select! {
            () = signals.recv() => {}
            _ = ended_rx.recv() => {}
        }
    });
    let _ = stop_tx.send(true);
    let mut failed = Vec::new();
    for (i, thread) in threads.into_iter().enumerate() {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push(format!("thread {i}: {e}")),
            Err(_) => failed.push(format!("thread {i} panicked")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// Tells the waiting thread, when dropped, that a serving thread has ended
/// (returned or panicked).
struct Ended(mpsc::UnboundedSender<()>);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A non-blocking TCP listener on `addr` with `SO_REUSEADDR` and
/// `SO_REUSEPORT` set, so that several can listen on the same port.
fn reuse_port_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn announce(name: &str, addr: SocketAddr) {
    println!("{name} listening on {addr}");
    let _ = std::io::stdout().flush();
}

/// Completes when the server is to stop: on SIGINT or SIGTERM, or, on the
/// threads of [`RuntimeKind::PerCore`], when the thread that waits for
/// those signals says so.
#[derive(Clone, Debug, Default)]
pub struct ShutdownSignal {
    /// Set for the per-core runtimes: turns `true` when they are to stop.
    stop: Option<watch::Receiver<bool>>,
}

impl ShutdownSignal {
    /// Waits for the signal to stop.
    pub async fn wait(self) {
        if let Some(mut stop) = self.stop {
            // An error means the sender is gone, which also means stop.
            let _ = stop.wait_for(|stop| *stop).await;
            return;
        }
        OsSignals::new().recv().await;
    }
}

/// SIGINT and SIGTERM, listened for from when this is made.
struct OsSignals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl OsSignals {
    /// Must be called within a runtime with the signal driver enabled.
    fn new() -> OsSignals {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(int), Ok(term)) => OsSignals(Some((int, term))),
            // Without signals, the server runs until it is killed.
            _ => OsSignals(None),
        }
    }

    /// Completes on the first SIGINT or SIGTERM.
    async fn recv(self) {
        let Some((mut int, mut term)) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}
