//! The channel over real sockets: round_robin and pick_first across Courier
//! backends that die, shut down and come back; GOAWAY in the middle of a
//! load; the connectivity states a watcher sees; the idle timeout;
//! wait-for-ready against fail-fast; resolver errors; the client's limit on
//! streams per connection; and the `ipv4:`, `unix:` and `unix-abstract:`
//! targets.
//!
//! Which backend served a call is read from its counters: each
//! [`Backend`]'s Echo service counts the calls it has served.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier::client::balancer::{PickFirst, Policy};
use courier::client::resolver::{Address, ManualResolver};
use courier::client::{BackoffConfig, ConnectivityState};
use courier::{Channel, Code, Request, Status};
use courier_tests::*;
use futures_util::StreamExt;

use ConnectivityState::{Connecting, Idle, Ready, TransientFailure};

/// How long a step may take before the test calls it a hang: generous, for
/// loaded machines. It bounds a failure; it times no success.
const LIMIT: Duration = Duration::from_secs(60);

/// Reconnection backoff short enough that a backend that comes back is
/// found again soon: 20 ms after the first failure, growing to 200 ms.
fn quick_backoff() -> BackoffConfig {
    BackoffConfig {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..BackoffConfig::default()
    }
}

/// A request that waits for ready.
fn waiting(s: &str) -> Request<EchoRequest> {
    let mut request = Request::new(text(s));
    request.set_wait_for_ready(true);
    request
}

/// Makes `n` Unary calls, eight at a time; every one must succeed.
async fn make_calls(client: &EchoClient, n: usize, wait_for_ready: bool) {
    let results: Vec<Result<_, Status>> = guard(
        &format!("{n} calls"),
        futures_util::stream::iter(0..n)
            .map(|_| {
                let client = client.clone();
                async move {
                    let mut request = Request::new(text("call"));
                    request.set_wait_for_ready(wait_for_ready);
                    client.unary(request).await
                }
            })
            .buffer_unordered(8)
            .collect(),
    )
    .await;
    let failed: Vec<&Status> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {n} calls failed, the first with {:?}",
        failed.len(),
        failed[0]
    );
}

/// The calls each backend has served.
fn served(backends: &[Backend]) -> Vec<usize> {
    backends.iter().map(Backend::calls).collect()
}

/// The calls each backend has served since `before`.
fn served_since(backends: &[Backend], before: &[usize]) -> Vec<usize> {
    backends.iter().zip(before).map(|(b, n)| b.calls() - n).collect()
}

/// Checks that each count is within 10% of an even share of their sum.
fn assert_even(what: &str, counts: &[usize]) {
    let total: usize = counts.iter().sum();
    let share = total as f64 / counts.len() as f64;
    for (i, &n) in counts.iter().enumerate() {
        assert!(
            (n as f64 - share).abs() <= share * 0.1,
            "{what}: backend {i} served {n} calls, not within 10% of {share} (all: {counts:?})"
        );
    }
}

fn backend_list(backends: &[Backend]) -> String {
    ipv4_target(&backends.iter().collect::<Vec<_>>())
}

/// Makes waiting calls until `backend` has served one more, which proves it
/// takes calls again.
async fn until_served(client: &EchoClient, backend: &Backend, what: &str) {
    let before = backend.calls();
    guard(what, async {
        while backend.calls() == before {
            client.unary(waiting("until served")).await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn round_robin_spreads_calls_evenly_routes_around_a_killed_backend_and_takes_it_back() {
    let mut backends = [Backend::start(), Backend::start(), Backend::start()];
    let channel = Channel::builder(backend_list(&backends))
        .load_balancing(Policy::round_robin())
        .backoff(quick_backoff())
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    // The channel is READY as soon as one backend is: the count starts once
    // all three are in the rotation.
    for backend in &backends {
        until_served(&client, backend, "every backend serves").await;
    }
    let before = served(&backends);
    make_calls(&client, 3000, false).await;
    let spread = served_since(&backends, &before);
    assert_eq!(spread.iter().sum::<usize>(), 3000, "{spread:?}");
    assert_even("3,000 calls over three backends", &spread);

    // Backend 2 dies while no call is in flight. Once the channel has
    // noticed (it dials the port again), no waiting call fails, and the
    // other two take its share.
    backends[2].kill().await;
    backends[2].wait_for_dial().await;
    let before = served(&backends);
    make_calls(&client, 600, true).await;
    let spread = served_since(&backends, &before);
    assert_eq!(spread, [spread[0], 600 - spread[0], 0], "backend 2 is dead");
    assert_even("600 calls over the two live backends", &spread[..2]);

    // It comes back on the same port and rejoins the rotation.
    backends[2].serve();
    until_served(&client, &backends[2], "the restarted backend serves again").await;
    let before = served(&backends);
    make_calls(&client, 900, false).await;
    let spread = served_since(&backends, &before);
    assert_eq!(spread.iter().sum::<usize>(), 900, "{spread:?}");
    assert_even("900 calls once the backend is back", &spread);
}

#[tokio::test]
async fn pick_first_sticks_to_the_first_address_and_fails_over_to_the_next() {
    // While the channel connects only the first address serves. With the
    // others up, Happy Eyeballs (gRFC A61) would also dial the second after
    // 250 ms without an answer from the first, and on a loaded machine the
    // second could win that race: the test would not be deterministic.
    let mut backends = [Backend::start(), Backend::new(), Backend::new()];
    let channel = Channel::builder(backend_list(&backends))
        .backoff(quick_backoff())
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel.clone());
    // With the second address up too, every call still goes to the first.
    backends[1].serve();
    let before = served(&backends);
    make_calls(&client, 300, false).await;
    assert_eq!(served_since(&backends, &before), [300, 0, 0]);

    // The first dies: the channel goes IDLE, and the next calls connect to
    // the next address (the third does not serve yet).
    backends[0].kill().await;
    let state = guard("the channel notices", channel.wait_for_state_change(Ready)).await;
    assert_eq!(state, Idle, "pick_first goes IDLE when its connection is lost");
    let before = served(&backends);
    make_calls(&client, 300, true).await;
    assert_eq!(served_since(&backends, &before), [0, 300, 0]);

    // With the first back and the third up, the channel stays where it is.
    backends[0].serve();
    backends[2].serve();
    let before = served(&backends);
    make_calls(&client, 300, false).await;
    assert_eq!(served_since(&backends, &before), [0, 300, 0]);
}

#[tokio::test]
async fn pick_first_with_shuffled_addresses_spreads_channels_over_the_backends() {
    let backends = [Backend::start(), Backend::start(), Backend::start()];
    let target = backend_list(&backends);
    let policy = PickFirst::new().shuffle_address_list(true);
    // Each channel shuffles the list and sticks to the backend it reaches
    // first: each of the three, by symmetry, with probability 1/3, and
    // independently of the other channels. A given backend gets none of 60
    // channels with probability (2/3)^60 ≈ 2.7e-11, so this fails by chance
    // with probability at most 3 × 2.7e-11 ≈ 8e-11. Without shuffling,
    // every channel would pick backend 0.
    const CHANNELS: usize = 60;
    let calls = (0..CHANNELS).map(|_| {
        let channel = Channel::builder(&target)
            .load_balancing(policy.clone())
            .connect_lazy()
            .unwrap();
        async move { EchoClient::new(channel).unary(waiting("one")).await }
    });
    let results = guard("a call on each channel", futures_util::future::join_all(calls)).await;
    for result in results {
        result.unwrap();
    }
    let spread = served(&backends);
    assert_eq!(spread.iter().sum::<usize>(), CHANNELS, "{spread:?}");
    for (i, n) in spread.iter().enumerate() {
        assert!(*n >= 1, "backend {i} got none of {CHANNELS} channels: {spread:?}");
    }
}

/// Runs calls on eight tasks over two backends with `policy` while the
/// backend the channel uses shuts down gracefully, and checks that every
/// call succeeded, even those that do not wait for ready, and that each ran
/// exactly once.
async fn graceful_shutdown_mid_load_loses_no_call(policy: Policy) {
    let mut backends = [Backend::start(), Backend::start()];
    let channel = Channel::builder(backend_list(&backends))
        .load_balancing(policy)
        .backoff(quick_backoff())
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<Status>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, ok, failures, done) = (client.clone(), ok.clone(), failures.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    // A short sleep in the handler keeps calls in flight.
                    let request = EchoRequest {
                        sleep_ms: 1,
                        ..text("load")
                    };
                    match client.unary(request).await {
                        Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                        Err(status) => {
                            failures.lock().unwrap().push(status);
                            0
                        }
                    };
                }
            })
        })
        .collect();
    // The backend that shuts down is one the load reaches: for pick_first
    // the one it connected to, for round_robin the first.
    backends[0]
        .counters
        .wait_until("the load reaches a backend", |_| {
            backends.iter().any(|b| b.calls() >= 100)
        })
        .await;
    let stopping = if backends[0].calls() >= 100 { 0 } else { 1 };
    let other = 1 - stopping;
    let reached = backends[stopping].calls();
    backends[stopping].counters.wait_started(reached + 100).await;
    // Graceful: GOAWAY, the calls in flight finish, the connections close.
    guard("graceful shutdown", backends[stopping].stop()).await;
    // The load goes on, on the other backend.
    let after = backends[other].calls();
    backends[other].counters.wait_started(after + 200).await;
    done.store(true, Ordering::SeqCst);
    for worker in workers {
        guard("a worker ends", worker).await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} calls failed, the first with {:?}",
        failures.len(),
        failures[0]
    );
    // Calls sent again transparently had never reached a handler: none ran
    // twice.
    let ran: usize = served(&backends).iter().sum();
    assert_eq!(
        ok.load(Ordering::SeqCst),
        ran,
        "calls that succeeded against handlers that ran"
    );
}

#[tokio::test]
async fn round_robin_loses_no_call_when_a_backend_shuts_down_gracefully_mid_load() {
    graceful_shutdown_mid_load_loses_no_call(Policy::round_robin()).await;
}

#[tokio::test]
async fn pick_first_loses_no_call_when_its_backend_shuts_down_gracefully_mid_load() {
    graceful_shutdown_mid_load_loses_no_call(Policy::pick_first()).await;
}

/// The states a channel goes through, as a watcher task sees them with
/// `Channel::wait_for_state_change`.
struct StateLog {
    seen: Vec<ConnectivityState>,
    rx: tokio::sync::mpsc::UnboundedReceiver<ConnectivityState>,
    task: tokio::task::JoinHandle<()>,
}

impl StateLog {
    /// Starts watching, from the channel's state now.
    fn watch(channel: &Channel) -> StateLog {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut state = channel.state(false);
        tx.send(state).unwrap();
        let channel = channel.clone();
        let task = tokio::spawn(async move {
            loop {
                state = channel.wait_for_state_change(state).await;
                if tx.send(state).is_err() || state == ConnectivityState::Shutdown {
                    return;
                }
            }
        });
        StateLog {
            seen: Vec::new(),
            rx,
            task,
        }
    }

    /// Waits until the watcher sees `state`.
    async fn wait_for(&mut self, state: ConnectivityState) {
        let seen = &mut self.seen;
        let rx = &mut self.rx;
        let found = tokio::time::timeout(LIMIT, async {
            while let Some(s) = rx.recv().await {
                seen.push(s);
                if s == state {
                    return;
                }
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "the channel did not become {state} within {LIMIT:?}; seen {:?}",
            self.seen
        );
    }

    /// Checks the states seen against `pattern`: each state in order, where
    /// those marked optional may be missing (a state that lasts only a
    /// moment can pass before the watcher looks).
    fn assert_seen(&self, pattern: &[(ConnectivityState, bool)]) {
        let mut seen = self.seen.iter().peekable();
        for &(state, optional) in pattern {
            if seen.peek() == Some(&&state) {
                seen.next();
            } else if !optional {
                panic!("expected {state} next in {:?}, for {pattern:?}", self.seen);
            }
        }
        assert!(seen.next().is_none(), "states past the pattern: {:?}", self.seen);
    }
}

impl Drop for StateLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const MUST: bool = false;
const MAY: bool = true;

/// Drives a channel with `policy` through a backend that starts slowly,
/// stops and restarts, waiting at each step for the state the watcher must
/// see, and returns the log. With `idle_after_loss`, the channel stays IDLE
/// after losing its connection until a call comes (pick_first), so the test
/// waits to see IDLE before making one.
async fn states_through_a_restart(policy: Policy, idle_after_loss: bool) -> StateLog {
    let mut backend = Backend::new();
    let channel = Channel::builder(ipv4_target(&[&backend]))
        .load_balancing(policy)
        .backoff(quick_backoff())
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel.clone());
    let mut log = StateLog::watch(&channel);
    assert_eq!(log.rx.recv().await, Some(Idle), "a lazy channel starts IDLE");
    log.seen.push(Idle);

    // The backend's port listens but no server answers yet: the first
    // call's connection waits for the HTTP/2 handshake, CONNECTING.
    let listener = backend.listen();
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.unary(waiting("first")).await }
    });
    log.wait_for(Connecting).await;
    // The server starts and answers that connection: READY.
    backend.serve_on(listener);
    guard("the first call", first).await.unwrap().unwrap();
    log.wait_for(Ready).await;

    // It stops: the connection is lost, and the channel leaves READY. A
    // call while it is down finds nothing listening: TRANSIENT_FAILURE.
    backend.stop().await;
    if idle_after_loss {
        log.wait_for(Idle).await;
    }
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.unary(waiting("second")).await }
    });
    log.wait_for(TransientFailure).await;

    // It restarts: the channel's next attempt connects, and the waiting
    // call goes out.
    backend.serve();
    guard("the call made while the backend was down", second)
        .await
        .unwrap()
        .unwrap();
    log.wait_for(Ready).await;
    assert_eq!(backend.calls(), 2);
    log
}

#[tokio::test]
async fn pick_first_states_follow_a_backend_that_starts_stops_and_restarts() {
    let log = states_through_a_restart(Policy::pick_first(), true).await;
    // After losing its connection pick_first waits IDLE for a call; that
    // call's attempt is CONNECTING only as long as a refusal takes, and
    // from TRANSIENT_FAILURE the channel goes straight to READY (sticky,
    // gRFC A62).
    log.assert_seen(&[
        (Idle, MUST),
        (Connecting, MUST),
        (Ready, MUST),
        (Idle, MUST),
        (Connecting, MAY),
        (TransientFailure, MUST),
        (Ready, MUST),
    ]);
}

#[tokio::test]
async fn round_robin_states_follow_a_backend_that_starts_stops_and_restarts() {
    let log = states_through_a_restart(Policy::round_robin(), false).await;
    // round_robin reconnects at once after losing its connection: IDLE and
    // CONNECTING last only until the refusal, and may pass unseen. Then it
    // stays in TRANSIENT_FAILURE until the backend is back.
    log.assert_seen(&[
        (Idle, MUST),
        (Connecting, MUST),
        (Ready, MUST),
        (Idle, MAY),
        (Connecting, MAY),
        (TransientFailure, MUST),
        (Ready, MUST),
    ]);
}

#[tokio::test]
async fn an_idle_channel_closes_its_connection_and_the_next_call_reconnects() {
    let backend = Backend::start();
    // The relay sees the channel's connections open and close.
    let relay = Relay::start(backend.addr).await;
    let channel = Channel::builder(format!("ipv4:{}", relay.addr))
        .idle_timeout(Duration::from_millis(200))
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel.clone());
    client.unary(text("first")).await.unwrap();
    assert_eq!(relay.accepted(), 1);
    let state = guard("the channel goes idle", channel.wait_for_state_change(Ready)).await;
    assert_eq!(state, Idle, "no calls for the idle timeout");
    // Its connection closes, at both ends.
    relay.wait_open(0).await;
    assert_eq!(relay.accepted(), 1);
    // The next call, fail-fast, wakes the channel on a new connection.
    client.unary(text("second")).await.unwrap();
    assert_eq!(relay.accepted(), 2);
    assert_eq!(backend.calls(), 2);
}

#[tokio::test]
async fn with_no_backend_fail_fast_calls_fail_unavailable_and_waiting_calls_wait() {
    let mut backend = Backend::new();
    let channel = Channel::builder(ipv4_target(&[&backend]))
        .backoff(quick_backoff())
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);

    // Fail-fast: UNAVAILABLE once the attempt is refused, naming why. The
    // guard bounds it: a call that waited would wait for ever.
    let err = guard("a fail-fast call", client.unary(text("fast"))).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains(&backend.addr.to_string()), "{err:?}");
    assert!(err.message().contains("nothing is listening"), "{err:?}");

    // Waiting for ready, with a deadline: the deadline ends it.
    let mut request = waiting("deadline");
    request.set_timeout(Duration::from_millis(300));
    let err = guard("a waiting call with a deadline", client.unary(request))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");

    // Waiting for ready, made while the backend is down (its first poll
    // leaves it waiting for a connection), succeeds once the backend starts.
    let call = client.unary(waiting("patient"));
    let mut call = std::pin::pin!(call);
    let first_poll = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
    assert!(first_poll.is_pending(), "the call waits");
    backend.serve();
    let response = guard("the waiting call", call).await.unwrap();
    assert_eq!(response.get_ref().text, "patient");
    assert_eq!(backend.calls(), 1);
}

#[tokio::test]
async fn a_resolver_with_no_addresses_fails_calls_and_an_error_keeps_the_last_good_list() {
    let mut backend = Backend::start();
    let resolver = ManualResolver::new("lbtests");
    resolver.update_addresses(Vec::new());
    let channel = Channel::builder("lbtests:///backends")
        .resolver(resolver.clone())
        .backoff(quick_backoff())
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel.clone());
    let err = guard("a call with no addresses", client.unary(text("none")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("name resolver returned no addresses"), "{err:?}");

    // A good list: calls go out.
    resolver.update_addresses(vec![Address::socket(backend.addr)]);
    guard("a call once listed", client.unary(waiting("listed")))
        .await
        .unwrap();

    // A resolver error: the channel keeps the list.
    resolver.report_error(Status::unavailable("the registry is down"));
    guard("a call after the error", client.unary(text("after")))
        .await
        .unwrap();
    // The error reached the channel before the loss of this connection
    // does, so the reconnection below can only come from the kept list.
    backend.stop().await;
    let state = guard("the connection is lost", channel.wait_for_state_change(Ready)).await;
    assert_eq!(state, Idle);
    backend.serve();
    let mut request = waiting("reconnected");
    request.set_timeout(LIMIT / 2);
    guard("a call on the kept list", client.unary(request)).await.unwrap();
    assert_eq!(backend.calls(), 3);
}

#[tokio::test]
async fn a_channel_limit_of_two_streams_holds_further_calls_until_one_ends() {
    let gate = Arc::new(Gate::default());
    let server = courier_tests::start_gated(&gate).await;
    let channel = Channel::builder(server.url())
        .max_concurrent_streams(2)
        .connect()
        .await
        .unwrap();
    let client = EchoClient::new(channel);
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.unary(text(&format!("call {i}"))).await })
        })
        .collect();
    gate.wait_started(2).await;
    assert_eq!(gate.running(), 2);
    // Each call that ends lets one more start, and never more than two run.
    for n in 3..=5 {
        gate.release(1);
        gate.wait_started(n).await;
        assert!(gate.most() <= 2, "{} calls ran at once", gate.most());
    }
    gate.release(2);
    for call in calls {
        guard("a call", call).await.unwrap().unwrap();
    }
    assert_eq!(gate.started(), 5);
    assert_eq!(gate.most(), 2, "two calls ran at once, and no more");
}

#[tokio::test]
async fn an_ipv4_target_with_two_addresses_reaches_both_with_round_robin() {
    let backends = [Backend::start(), Backend::start()];
    let target = format!("ipv4:{},{}", backends[0].addr, backends[1].addr);
    let channel = Channel::builder(&target)
        .load_balancing(Policy::round_robin())
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    for backend in &backends {
        until_served(&client, backend, &format!("{target} reaches {}", backend.addr)).await;
    }
    let before = served(&backends);
    make_calls(&client, 100, false).await;
    assert_even("100 calls over two addresses", &served_since(&backends, &before));
}

/// Serves Echo on the Unix socket `path` (a name in the abstract namespace
/// when it starts with a NUL byte) until the returned sender is dropped.
fn serve_unix(path: std::path::PathBuf, counters: Arc<Counters>) -> tokio::sync::oneshot::Sender<()> {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        courier::Server::builder()
            .add_service(echo_with(counters))
            .serve_unix(path, async {
                let _ = rx.await;
            }),
    );
    tx
}

/// Makes a waiting call on a channel to `target` (the server may still be
/// binding its socket), and checks the server behind `counters` served it.
async fn call_through(target: &str, counters: &Counters) {
    let before = counters.started.load(Ordering::SeqCst);
    let channel = Channel::builder(target)
        .backoff(quick_backoff())
        .connect_lazy()
        .unwrap();
    let response = guard(target, EchoClient::new(channel).unary(waiting(target)))
        .await
        .unwrap();
    assert_eq!(response.get_ref().text, target);
    assert_eq!(counters.started.load(Ordering::SeqCst), before + 1, "{target}");
}

#[tokio::test]
async fn unix_targets_reach_a_server_on_a_socket_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let counters = Arc::new(Counters::default());
    let _server = serve_unix(path.clone(), counters.clone());
    assert!(path.is_absolute());
    call_through(&format!("unix:{}", path.display()), &counters).await;
    call_through(&format!("unix://{}", path.display()), &counters).await;
}

#[tokio::test]
async fn a_unix_abstract_target_reaches_a_server_in_the_abstract_namespace() {
    // Abstract names vanish with their socket; this one is the process's.
    let name = format!("courier-tests-balancing-{}", std::process::id());
    let counters = Arc::new(Counters::default());
    let _server = serve_unix(format!("\0{name}").into(), counters.clone());
    call_through(&format!("unix-abstract:{name}"), &counters).await;
}
