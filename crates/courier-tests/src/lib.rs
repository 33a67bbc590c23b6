//! Shared pieces of Courier's integration tests: the generated test service,
//! an implementation of it, and helpers to run servers on loopback ports.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use courier::codegen::Stream;
use courier::{Code, Request, Response, Status, Streaming};
use futures_util::StreamExt;
use tokio::sync::oneshot;

pub mod backend;
pub mod go_peer;
pub mod peer;
pub mod raw_h2;
pub use backend::{Backend, Gate, Gated, Relay, ipv4_target};
pub use go_peer::{GoServer, go_binary};
pub use peer::{PythonPeer, listening_port};

/// Generated from `proto/echo.proto`.
pub mod pb {
    #![allow(missing_docs)]
    courier::include_proto!("courier.test");
}

pub use pb::echo_client::EchoClient;
pub use pb::echo_server::{Echo, EchoServer};
pub use pb::{EchoRequest, EchoResponse};

/// The response header with which the Echo service's Unary says that the
/// request message came compressed.
pub const REQUEST_COMPRESSED: &str = "x-request-compressed";

/// An identity that a test interceptor attaches for the handler.
#[derive(Clone, Debug)]
pub struct Identity(pub String);

/// Counts handlers that started and that were dropped before finishing, and
/// wakes tests waiting for a count.
#[derive(Default, Debug)]
pub struct Counters {
    /// Handlers started.
    pub started: AtomicUsize,
    /// Handler futures dropped before they finished: cancelled.
    pub cancelled: AtomicUsize,
    /// Notified on every change of a count.
    changed: tokio::sync::Notify,
    /// Signalled each time a handler starts, for a test to wait on.
    pub on_start: tokio::sync::Notify,
    /// Signalled each time a handler is cancelled, for a test to wait on.
    pub on_cancel: tokio::sync::Notify,
}

/// How long [`Counters::wait_started`] and [`Counters::wait_cancelled`] wait
/// before they fail the test: a count that never comes is a failure, not a
/// hang. Generous, for loaded machines; it bounds a failure, it does not
/// time a success.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Runs `step`, failing the test if it takes longer than [`WAIT_LIMIT`]:
/// a step that never ends is a failure, not a hang.
pub async fn guard<T>(what: &str, step: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT_LIMIT, step).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: not done within {WAIT_LIMIT:?}"),
    }
}

impl Counters {
    fn bump(&self, count: &AtomicUsize) {
        count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn start(&self) {
        self.bump(&self.started);
        self.on_start.notify_one();
    }

    fn cancel(&self) {
        self.bump(&self.cancelled);
        self.on_cancel.notify_one();
    }

    /// Waits until `done` holds for the counts; panics after [`WAIT_LIMIT`].
    pub async fn wait_until(&self, what: &str, done: impl Fn(&Counters) -> bool) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let mut changed = std::pin::pin!(changed);
                // Registered before the check, so no change is missed.
                changed.as_mut().enable();
                if done(self) {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(WAIT_LIMIT, wait).await.is_err() {
            panic!(
                "{what}: not within {WAIT_LIMIT:?} (started {}, cancelled {})",
                self.started.load(Ordering::SeqCst),
                self.cancelled.load(Ordering::SeqCst)
            );
        }
    }

    /// Waits until at least `n` handlers have started.
    pub async fn wait_started(&self, n: usize) {
        self.wait_until(&format!("{n} handlers started"), |c| {
            c.started.load(Ordering::SeqCst) >= n
        })
        .await;
    }

    /// Waits until at least `n` handlers have been cancelled.
    pub async fn wait_cancelled(&self, n: usize) {
        self.wait_until(&format!("{n} handlers cancelled"), |c| {
            c.cancelled.load(Ordering::SeqCst) >= n
        })
        .await;
    }
}

/// The test service.
#[derive(Default, Clone)]
pub struct EchoService {
    /// Shared counters.
    pub counters: Arc<Counters>,
}

struct CancelGuard {
    counters: Arc<Counters>,
    done: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.done {
            self.counters.cancel();
        }
    }
}

/// A boxed response stream.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send>>;

fn deadline_ms<T>(req: &Request<T>) -> i64 {
    req.deadline()
        .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as i64)
        .unwrap_or(-1)
}

fn answer(req: &EchoRequest, index: u32) -> Result<EchoResponse, Status> {
    if req.fail_code != 0 {
        return Err(Status::new(Code::from_i32(req.fail_code), req.text.clone()));
    }
    let payload = if req.response_size > 0 {
        vec![7u8; req.response_size as usize]
    } else {
        req.payload.clone()
    };
    Ok(EchoResponse {
        text: req.text.clone(),
        payload,
        index,
        ..Default::default()
    })
}

/// Copies request metadata entries named `echo-*` into the response headers,
/// and `trailer-*` ones into the trailers.
fn echo_metadata<T, U>(req: &Request<T>, resp: &mut Response<U>) {
    for (key, value) in req.metadata().iter() {
        let bytes = value.to_bytes().unwrap();
        let target = if key.starts_with("echo-") {
            resp.metadata_mut()
        } else if key.starts_with("trailer-") {
            resp.trailers_mut()
        } else {
            continue;
        };
        if key.ends_with("-bin") {
            target.append_bin(key, &bytes).unwrap();
        } else {
            target.append(key, std::str::from_utf8(&bytes).unwrap()).unwrap();
        }
    }
}

impl Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        self.counters.start();
        let mut guard = CancelGuard {
            counters: self.counters.clone(),
            done: false,
        };
        let msg = request.get_ref();
        if msg.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(msg.sleep_ms as u64)).await;
        }
        if msg.text == "panic" {
            // The handler fails as badly as it can (bad_input.rs).
            panic!("the echo handler was asked to panic");
        }
        let mut out = answer(msg, 0)?;
        out.deadline_ms = deadline_ms(&request);
        out.identity = request
            .extensions()
            .get::<Identity>()
            .map(|i| i.0.clone())
            .or_else(|| {
                let peer = request.extensions().get::<courier::credentials::PeerCertificates>()?;
                Some(peer.identities().join(","))
            })
            .unwrap_or_default();
        let mut resp = Response::new(out);
        echo_metadata(&request, &mut resp);
        if request.extensions().get::<courier::MessageCompressed>().is_some() {
            resp.metadata_mut().insert(REQUEST_COMPRESSED, "true").unwrap();
        }
        guard.done = true;
        Ok(resp)
    }

    async fn client_stream(&self, request: Request<Streaming<EchoRequest>>) -> Result<Response<EchoResponse>, Status> {
        self.counters.start();
        let mut guard = CancelGuard {
            counters: self.counters.clone(),
            done: false,
        };
        let (metadata, _, mut stream) = request.into_parts();
        let mut count = 0;
        let mut text = String::new();
        while let Some(msg) = stream.message().await? {
            if msg.fail_code != 0 {
                return Err(Status::new(Code::from_i32(msg.fail_code), msg.text));
            }
            count += 1;
            text.push_str(&msg.text);
        }
        let mut resp = Response::new(EchoResponse {
            text,
            index: count,
            ..Default::default()
        });
        let _ = metadata;
        guard.done = true;
        resp.trailers_mut().insert("x-count", &count.to_string()).unwrap();
        Ok(resp)
    }

    type ServerStreamStream = ResponseStream;

    async fn server_stream(&self, request: Request<EchoRequest>) -> Result<Response<ResponseStream>, Status> {
        self.counters.start();
        let msg = request.get_ref().clone();
        let sleep = Duration::from_millis(msg.sleep_ms as u64);
        let counters = self.counters.clone();
        let stream = async_stream(move |tx| async move {
            let mut guard = CancelGuard { counters, done: false };
            for i in 0..msg.count {
                if !sleep.is_zero() {
                    tokio::time::sleep(sleep).await;
                }
                if tx
                    .send(answer(
                        &EchoRequest {
                            fail_code: 0,
                            ..msg.clone()
                        },
                        i,
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if msg.fail_code != 0 {
                let _ = tx
                    .send(Err(Status::new(Code::from_i32(msg.fail_code), msg.text.clone())))
                    .await;
            }
            guard.done = true;
        });
        let mut resp = Response::new(stream);
        echo_metadata(&request, &mut resp);
        Ok(resp)
    }

    type BidiStream = ResponseStream;

    async fn bidi(&self, request: Request<Streaming<EchoRequest>>) -> Result<Response<ResponseStream>, Status> {
        self.counters.start();
        let mut resp_md = Response::new(());
        echo_metadata(&request, &mut resp_md);
        let mut input = request.into_inner();
        let counters = self.counters.clone();
        // Replies to each message as it comes, while more are still arriving.
        let stream = async_stream(move |tx| async move {
            let mut guard = CancelGuard { counters, done: false };
            let mut i = 0;
            loop {
                match input.message().await {
                    Ok(Some(msg)) => {
                        if msg.sleep_ms > 0 {
                            tokio::time::sleep(Duration::from_millis(msg.sleep_ms as u64)).await;
                        }
                        let out = answer(&msg, i);
                        let failed = out.is_err();
                        if tx.send(out).await.is_err() || failed {
                            return;
                        }
                        i += 1;
                    }
                    Ok(None) => break,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
            guard.done = true;
        });
        let mut resp = Response::new(stream);
        *resp.metadata_mut() = resp_md.metadata().clone();
        *resp.trailers_mut() = resp_md.trailers().clone();
        Ok(resp)
    }
}

/// The second test service.
#[derive(Default, Clone)]
pub struct OtherService;

impl pb::other_server::Other for OtherService {
    async fn ping(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            text: format!("pong {}", request.get_ref().text),
            ..Default::default()
        }))
    }
}

/// A stream fed by a task: the closure gets a sender and runs as its own task
/// while the stream is read.
pub fn async_stream<F, Fut>(f: F) -> ResponseStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<EchoResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let task = tokio::spawn(f(tx));
    let abort = AbortOnDrop(task.abort_handle());
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx).map(move |item| {
        let _keep = &abort;
        item
    }))
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running test server; dropping it shuts the server down.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The service's counters.
    pub counters: Arc<Counters>,
    shutdown: Option<oneshot::Sender<()>>,
    /// The serve task; resolves when the server has shut down.
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// `http://addr`, for channels.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signals graceful shutdown and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A loopback address where nothing listens, for as long as this value
/// lives: a TCP socket bound to an ephemeral port and never listening.
/// Connecting to it is refused, and no other socket can bind the port
/// meanwhile (the socket does not set `SO_REUSEADDR` or `SO_REUSEPORT`), so
/// a server of a test running alongside cannot end up there, as it could on
/// a port that was free a moment ago.
pub struct RefusingAddr {
    /// The address.
    pub addr: SocketAddr,
    _socket: tokio::net::TcpSocket,
}

impl RefusingAddr {
    /// Binds the port.
    pub fn new() -> RefusingAddr {
        let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("bind an ephemeral port");
        let addr = socket.local_addr().expect("the bound address");
        RefusingAddr { addr, _socket: socket }
    }
}

impl Default for RefusingAddr {
    fn default() -> RefusingAddr {
        RefusingAddr::new()
    }
}

/// A TCP listener that accepts connections and never says a word on them,
/// as a server stuck before its HTTP/2 handshake does: a connection
/// attempt to it stays CONNECTING until its timeout. The task holds every
/// socket it accepted until it is aborted or its runtime ends.
pub async fn silent_listener() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

/// Starts a server whose Echo service is [`Gated`] by `gate`.
pub async fn start_gated(gate: &Arc<Gate>) -> TestServer {
    let gate = gate.clone();
    start_with(move |b| b.add_service(Gated::server(gate))).await
}

/// Starts a server with the Echo service on an ephemeral loopback port.
pub async fn start_server() -> TestServer {
    start_with_counters(|b, counters| b.add_service(echo_with(counters))).await
}

/// Starts a server built by `build` on an ephemeral loopback port.
pub async fn start_with<R, F>(build: F) -> TestServer
where
    R: courier::server::Routes,
    F: FnOnce(courier::Server) -> courier::Server<R>,
{
    start_with_counters(|b, _| build(b)).await
}

/// Like [`start_with`], with the Echo service's counters at hand.
pub async fn start_with_counters<R, F>(build: F) -> TestServer
where
    R: courier::server::Routes,
    F: FnOnce(courier::Server, Arc<Counters>) -> courier::Server<R>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counters = Arc::new(Counters::default());
    let server = build(courier::Server::builder(), counters.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_with_listener(listener, async {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        counters,
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// An Echo service sharing `counters`.
pub fn echo_with(counters: Arc<Counters>) -> EchoServer<EchoService> {
    EchoServer::new(EchoService { counters })
}

/// A request with text only.
pub fn text(s: &str) -> EchoRequest {
    EchoRequest {
        text: s.to_string(),
        ..Default::default()
    }
}

/// A server interceptor that fails, with UNAVAILABLE, the first attempt of
/// a call whose metadata has `fail-first`, and lets retries through: a
/// backend that a retry policy on UNAVAILABLE gets past.
pub fn fail_first_attempt(head: courier::interceptor::CallHead) -> Result<courier::interceptor::CallHead, Status> {
    let retried = head.extensions().get::<courier::PreviousRpcAttempts>().is_some();
    if head.metadata().get("fail-first").is_some() && !retried {
        return Err(Status::unavailable("first attempt fails"));
    }
    Ok(head)
}

/// A service config that retries every Echo method on UNAVAILABLE, up to 3
/// attempts, 1 ms apart at first.
pub fn retry_echo_on_unavailable() -> courier::client::service_config::ServiceConfig {
    use courier::client::service_config::{MethodConfig, MethodName, RetryPolicy, ServiceConfig};
    let policy = RetryPolicy::new(
        3,
        Duration::from_millis(1),
        Duration::from_millis(10),
        2.0,
        [Code::Unavailable],
    );
    ServiceConfig::new().method(MethodConfig::new([MethodName::service("courier.test.Echo")]).retry(policy))
}

/// The Python interpreter of the interop venv that
/// `scripts/interop/install-python.sh` makes (or `COURIER_PYTHON`), for tests
/// against grpcio peers and Python's h2. `None` means skip the test: the venv is missing or
/// cannot import the `modules` (comma-separated) the test needs. With
/// `COURIER_REQUIRE_PEERS=1`, as in CI, a missing peer fails the test
/// instead.
pub fn grpcio_python(modules: &str) -> Option<std::path::PathBuf> {
    match find_python(modules) {
        Ok(python) => Some(python),
        Err(why) if std::env::var("COURIER_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("COURIER_REQUIRE_PEERS=1 but the Python peer is unavailable: {why}")
        }
        Err(why) => {
            eprintln!("note: skipping a Python peer test: {why}");
            None
        }
    }
}

fn find_python(modules: &str) -> Result<std::path::PathBuf, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = match std::env::var_os("COURIER_PYTHON") {
        Some(path) => std::path::PathBuf::from(path),
        None => root.join("target/interop/python/venv/bin/python"),
    };
    if !python.exists() {
        return Err(format!(
            "{} does not exist (run scripts/interop/install-python.sh)",
            python.display()
        ));
    }
    let probe = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !probe.status.success() {
        let stderr = String::from_utf8_lossy(&probe.stderr);
        let last = stderr.trim().lines().last().unwrap_or_default().to_string();
        return Err(format!("{} cannot import {modules}: {last}", python.display()));
    }
    Ok(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusing_addr_refuses_connections_and_keeps_its_port() {
        let refusing = RefusingAddr::new();
        let err = tokio::net::TcpStream::connect(refusing.addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        // A server binding as tokio does (SO_REUSEADDR) cannot take the port.
        let err = tokio::net::TcpListener::bind(refusing.addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    }

    #[tokio::test]
    async fn waiting_for_a_count_wakes_on_the_change() {
        let counters = Arc::new(Counters::default());
        let bumper = counters.clone();
        let waiter = tokio::spawn(async move { counters.wait_cancelled(2).await });
        bumper.bump(&bumper.cancelled);
        bumper.bump(&bumper.cancelled);
        waiter.await.unwrap();
        assert_eq!(bumper.cancelled.load(Ordering::SeqCst), 2);
    }
}
