//! Client-side health checking (gRFC A17) over real servers: a round_robin
//! channel whose service config names a service to check watches each
//! backend's `grpc.health.v1.Health` status, and sends calls only to the
//! backends that say SERVING.
//!
//! - Three grpcio backends with grpcio-health-checking
//!   (`peers/health_backend.py`, from the venv `scripts/interop.sh`
//!   installs): one goes NOT_SERVING and gets no calls until it is SERVING
//!   again.
//! - grpc-go's interop server, which has no health service (built by
//!   `scripts/interop.sh`): its UNIMPLEMENTED means healthy.
//! - Courier servers with their health service, or with one scripted to
//!   fail: NOT_SERVING and back, every backend unhealthy, UNIMPLEMENTED,
//!   a failed watch made again, pick_first (which does not health-check),
//!   the builder's opt-out, and the idle timeout (the watch is not a call).
//!
//! Tests needing a third-party peer print a note and pass when it is
//! missing, unless `COURIER_REQUIRE_PEERS=1` is set (as in CI), which makes
//! a missing peer a failure.
//!
//! Which backend served a call is read from the response (grpcio backends
//! answer with their name) or from the Echo service's counters (Courier
//! backends). Calls are made one at a time, so round_robin's rotation is
//! strict: with three backends, a backend still in the rotation is missed
//! by at most two calls in a row.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use courier::client::balancer::Policy;
use courier::client::service_config::ServiceConfig;
use courier::client::{BackoffConfig, ConnectivityState};
use courier::codec::ProstCodec;
use courier::codegen::Stream;
use courier::health::HealthReporter;
use courier::health::ServingStatus;
use courier::health::pb::health_server::{Health, HealthServer};
use courier::health::pb::{HealthCheckRequest, HealthCheckResponse};
use courier::{Channel, Code, Request, Response, Status};
use courier_tests::*;

/// The service every test's config asks the backends about.
const ECHO: &str = "courier.test.Echo";

/// Calls in a row that must miss a backend before the test takes it as
/// out of the rotation: two full rotations over three backends.
const SKIPS: usize = 6;

/// Calls made, once a backend is out, that must all miss it.
const CHECKED_CALLS: usize = 30;

/// A service config asking for health checks of [`ECHO`].
fn health_config() -> ServiceConfig {
    ServiceConfig::new().health_check_service(ECHO)
}

/// Reconnection (and health-watch) backoff short enough that a test does
/// not wait long for a retry: 20 ms, growing to 200 ms.
fn quick_backoff() -> BackoffConfig {
    BackoffConfig {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..BackoffConfig::default()
    }
}

/// A round_robin channel to `target` that health-checks [`ECHO`].
fn health_checked_channel(target: &str) -> Channel {
    Channel::builder(target)
        .load_balancing(Policy::round_robin())
        .service_config(health_config())
        .backoff(quick_backoff())
        .connect_lazy()
        .unwrap()
}

/// A request that waits for ready.
fn waiting(s: &str) -> Request<EchoRequest> {
    let mut request = Request::new(text(s));
    request.set_wait_for_ready(true);
    request
}

/// Waits until the channel is in `want`.
async fn wait_for_state(channel: &Channel, want: ConnectivityState) {
    guard(&format!("channel {want}"), async {
        let mut state = channel.state(true);
        while state != want {
            state = channel.wait_for_state_change(state).await;
        }
    })
    .await;
}

/// Makes calls, one at a time, with `call` (which returns the backend that
/// served each) until `backend` has been missed [`SKIPS`] times in a row:
/// it is out of the rotation.
async fn until_skipped<F, Fut>(mut call: F, backend: usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    guard(&format!("backend {backend} out of the rotation"), async {
        let mut missed = 0;
        while missed < SKIPS {
            missed = if call().await == backend { 0 } else { missed + 1 };
        }
    })
    .await;
}

/// Makes calls, one at a time, until `backend` serves one.
async fn until_served_by<F, Fut>(mut call: F, backend: usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    guard(&format!("a call served by backend {backend}"), async {
        while call().await != backend {}
    })
    .await;
}

/// Makes calls until every one of `n` backends has served one.
async fn until_all_serve<F, Fut>(mut call: F, n: usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    guard("a call served by every backend", async {
        let mut seen = HashSet::new();
        while seen.len() < n {
            seen.insert(call().await);
        }
    })
    .await;
}

// --- grpcio backends ----------------------------------------------------------

/// A grpcio backend (`peers/health_backend.py`), killed when dropped.
struct PyBackend(PythonPeer);

impl PyBackend {
    async fn start(python: &Path, name: usize) -> PyBackend {
        PyBackend(PythonPeer::start(python, "health_backend.py", &[format!("--name={name}")]).await)
    }

    fn port(&self) -> u16 {
        self.0.port
    }

    async fn set(&mut self, command: &str) {
        assert_eq!(self.0.command(command).await, "ok", "{command}");
    }

    /// The Echo calls it has served.
    async fn calls(&mut self) -> usize {
        let answer = self.0.command("count").await;
        answer
            .strip_prefix("count ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the grpcio backend said {answer:?}, not its count"))
    }
}

/// A call to a grpcio backend: the backend that answered, by its name.
async fn call_named(client: EchoClient) -> usize {
    let reply = client.unary(waiting("hello")).await.expect("a call").into_inner();
    reply.text.parse().expect("a backend's name")
}

#[tokio::test]
async fn grpcio_backend_not_serving_gets_no_calls_until_serving_again() {
    let Some(python) = grpcio_python("grpc_health.v1.health") else {
        return;
    };
    let mut backends = Vec::new();
    for name in 0..3 {
        backends.push(PyBackend::start(&python, name).await);
    }
    let list: Vec<String> = backends.iter().map(|b| format!("127.0.0.1:{}", b.port())).collect();
    let channel = health_checked_channel(&format!("ipv4:{}", list.join(",")));
    let client = EchoClient::new(channel);
    let call = || call_named(client.clone());
    until_all_serve(call, 3).await;

    backends[1].set("not_serving").await;
    until_skipped(call, 1).await;
    let before = backends[1].calls().await;
    for _ in 0..CHECKED_CALLS {
        assert_ne!(call().await, 1, "a call reached the NOT_SERVING backend");
    }
    assert_eq!(
        backends[1].calls().await,
        before,
        "the NOT_SERVING backend served calls"
    );

    backends[1].set("serving").await;
    until_served_by(call, 1).await;
}

// --- a grpc-go backend without the health service -------------------------------

/// `grpc.testing.Empty`.
#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

#[tokio::test]
async fn grpc_go_backend_without_health_service_is_treated_as_healthy() {
    let Some(binary) = go_binary("interop-server") else {
        return;
    };
    let server = GoServer::start(&binary, "grpc-go", &["--use_tls=false".to_string()], 0).await;
    let port = server.port;
    let channel = Channel::builder(format!("ipv4:127.0.0.1:{port}"))
        .load_balancing(Policy::round_robin())
        .service_config(ServiceConfig::new().health_check_service("grpc.testing.TestService"))
        .connect_lazy()
        .unwrap();
    wait_for_state(&channel, ConnectivityState::Ready).await;
    for _ in 0..3 {
        let mut request = Request::new(Empty {});
        request.set_wait_for_ready(true);
        channel
            .unary(
                request,
                "/grpc.testing.TestService/EmptyCall",
                ProstCodec::<Empty, Empty>::new(),
            )
            .await
            .expect("EmptyCall on the grpc-go server");
    }
    assert_eq!(channel.state(false), ConnectivityState::Ready);
}

// --- Courier backends ---------------------------------------------------------

/// A Courier server with the Echo service and the health service, [`ECHO`]
/// SERVING at first.
struct CourierBackend {
    server: TestServer,
    health: HealthReporter,
}

impl CourierBackend {
    async fn start() -> CourierBackend {
        let health = HealthReporter::new();
        health.set_serving(ECHO);
        let reporter = health.clone();
        let server = start_with_counters(|b, counters| b.add_service(echo_with(counters)).with_health(reporter)).await;
        CourierBackend { server, health }
    }

    fn calls(&self) -> usize {
        self.server.counters.started.load(Ordering::SeqCst)
    }
}

fn target_of(backends: &[CourierBackend]) -> String {
    let list: Vec<String> = backends.iter().map(|b| b.server.addr.to_string()).collect();
    format!("ipv4:{}", list.join(","))
}

/// A call to Courier backends: the index of the backend that served it.
fn call_counted(client: &EchoClient, backends: &[CourierBackend]) -> impl Future<Output = usize> {
    let client = client.clone();
    let counters: Vec<Arc<Counters>> = backends.iter().map(|b| b.server.counters.clone()).collect();
    async move {
        let before: Vec<usize> = counters.iter().map(|c| c.started.load(Ordering::SeqCst)).collect();
        client.unary(waiting("hello")).await.expect("a call");
        let served: Vec<usize> = (0..counters.len())
            .filter(|&i| counters[i].started.load(Ordering::SeqCst) != before[i])
            .collect();
        assert_eq!(served.len(), 1, "one call, served by backends {served:?}");
        served[0]
    }
}

#[tokio::test]
async fn round_robin_skips_a_not_serving_backend_until_it_serves_again() {
    let backends = vec![
        CourierBackend::start().await,
        CourierBackend::start().await,
        CourierBackend::start().await,
    ];
    let client = EchoClient::new(health_checked_channel(&target_of(&backends)));
    let call = || call_counted(&client, &backends);
    until_all_serve(call, 3).await;

    backends[2].health.set_not_serving(ECHO);
    until_skipped(call, 2).await;
    let before = backends[2].calls();
    for _ in 0..CHECKED_CALLS {
        assert_ne!(call().await, 2, "a call reached the NOT_SERVING backend");
    }
    assert_eq!(backends[2].calls(), before);

    backends[2].health.set_serving(ECHO);
    until_served_by(call, 2).await;
}

#[tokio::test]
async fn backend_not_serving_from_the_start_never_gets_a_call() {
    let backends = vec![CourierBackend::start().await, CourierBackend::start().await];
    backends[0].health.set_not_serving(ECHO);
    let client = EchoClient::new(health_checked_channel(&target_of(&backends)));
    for _ in 0..CHECKED_CALLS {
        assert_eq!(call_counted(&client, &backends).await, 1);
    }
    assert_eq!(backends[0].calls(), 0);
}

#[tokio::test]
async fn every_backend_unhealthy_fails_calls_with_what_the_health_check_said() {
    let backends = vec![CourierBackend::start().await, CourierBackend::start().await];
    backends[0].health.set_not_serving(ECHO);
    // An unknown service is SERVICE_UNKNOWN: unhealthy too.
    backends[1].health.set_status(ECHO, ServingStatus::ServiceUnknown);
    let channel = health_checked_channel(&target_of(&backends));
    wait_for_state(&channel, ConnectivityState::TransientFailure).await;
    let err = EchoClient::new(channel).unary(text("hello")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(
        err.message().contains("NOT_SERVING") || err.message().contains("SERVICE_UNKNOWN"),
        "the status says what the health check said: {err}"
    );
    assert!(err.message().contains("health check"), "{err}");
    assert_eq!(backends[0].calls() + backends[1].calls(), 0);
}

#[tokio::test]
async fn pick_first_does_not_health_check() {
    let backend = CourierBackend::start().await;
    backend.health.set_not_serving(ECHO);
    let channel = Channel::builder(backend.server.url())
        .load_balancing(Policy::pick_first())
        .service_config(health_config())
        .connect_lazy()
        .unwrap();
    EchoClient::new(channel.clone())
        .unary(text("hello"))
        .await
        .expect("pick_first sends calls to a NOT_SERVING backend");
    assert_eq!(backend.calls(), 1);
    assert_eq!(channel.state(false), ConnectivityState::Ready);
}

#[tokio::test]
async fn disable_health_check_overrides_the_service_config() {
    let backend = CourierBackend::start().await;
    backend.health.set_not_serving(ECHO);
    let channel = Channel::builder(backend.server.url())
        .load_balancing(Policy::round_robin())
        .service_config(health_config())
        .disable_health_check()
        .connect_lazy()
        .unwrap();
    EchoClient::new(channel)
        .unary(text("hello"))
        .await
        .expect("without health checking, a NOT_SERVING backend takes calls");
    assert_eq!(backend.calls(), 1);
}

#[tokio::test]
async fn without_a_health_check_config_round_robin_does_not_health_check() {
    let backend = CourierBackend::start().await;
    backend.health.set_not_serving(ECHO);
    let channel = Channel::builder(backend.server.url())
        .load_balancing(Policy::round_robin())
        .connect_lazy()
        .unwrap();
    EchoClient::new(channel)
        .unary(text("hello"))
        .await
        .expect("no service config, no health checking");
    assert_eq!(backend.calls(), 1);
}

#[tokio::test]
async fn health_watch_does_not_keep_the_channel_out_of_idle() {
    let backend = CourierBackend::start().await;
    let channel = Channel::builder(backend.server.url())
        .load_balancing(Policy::round_robin())
        .service_config(health_config())
        .idle_timeout(Duration::from_millis(100))
        .connect_lazy()
        .unwrap();
    EchoClient::new(channel.clone()).unary(text("hello")).await.unwrap();
    // The watch stays open on the connection; the channel goes IDLE anyway.
    guard("channel IDLE after its idle timeout", async {
        let mut state = channel.state(false);
        while state != ConnectivityState::Idle {
            state = channel.wait_for_state_change(state).await;
        }
    })
    .await;
}

/// A health service whose Watch answers as a test scripts it, counting the
/// watches it gets.
#[derive(Clone)]
struct ScriptedHealth {
    watches: Arc<AtomicUsize>,
    /// The first this many watches fail with this status; later ones
    /// answer SERVING and stay open.
    failing: usize,
    failure: Status,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

impl Health for ScriptedHealth {
    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        assert_eq!(request.get_ref().service, ECHO);
        let n = self.watches.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.failing {
            return Err(self.failure.clone());
        }
        let serving = HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        };
        let stream = futures_util::StreamExt::chain(
            futures_util::stream::iter([Ok(serving)]),
            futures_util::stream::pending(),
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

async fn scripted_backend(health: ScriptedHealth) -> TestServer {
    start_with_counters(|b, counters| {
        b.add_service(echo_with(counters))
            .add_service(HealthServer::new(health))
    })
    .await
}

#[tokio::test]
async fn unimplemented_watch_counts_as_healthy_and_is_not_made_again() {
    let health = ScriptedHealth {
        watches: Arc::default(),
        failing: usize::MAX,
        failure: Status::unimplemented("no health service here"),
    };
    let server = scripted_backend(health.clone()).await;
    let channel = health_checked_channel(&format!("ipv4:{}", server.addr));
    let client = EchoClient::new(channel.clone());
    for _ in 0..3 {
        client.unary(waiting("hello")).await.expect("a call");
    }
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 3);
    assert_eq!(channel.state(false), ConnectivityState::Ready);
    assert_eq!(
        health.watches.load(Ordering::SeqCst),
        1,
        "UNIMPLEMENTED is not asked again"
    );
}

#[tokio::test]
async fn failed_watch_is_made_again_after_backoff() {
    let health = ScriptedHealth {
        watches: Arc::default(),
        failing: 2,
        failure: Status::unavailable("the health service is starting"),
    };
    let server = scripted_backend(health.clone()).await;
    let channel = health_checked_channel(&format!("ipv4:{}", server.addr));
    // Each failure leaves the subchannel in TRANSIENT_FAILURE until the
    // next watch, after its backoff; the third says SERVING.
    let client = EchoClient::new(channel);
    client
        .unary(waiting("hello"))
        .await
        .expect("a call once the third watch says SERVING");
    assert_eq!(health.watches.load(Ordering::SeqCst), 3);
    assert_eq!(server.counters.started.load(Ordering::SeqCst), 1);
}
