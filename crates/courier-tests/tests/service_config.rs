//! Service configs from the resolver, over real sockets: a
//! [`ManualResolver`] pushes addresses of Courier backends with a config in
//! its JSON form, and the channel's load-balancing policy follows it
//! (round_robin spreads calls over every backend, pick_first sends them all
//! to one), keeps it when the next one is invalid, falls back to the
//! builder's without one, and ignores it when lookup is disabled.
//!
//! Which backend served a call is read from its counters.

use std::time::Duration;

use courier::client::resolver::{Address, ManualResolver, ResolverState};
use courier::{Channel, Request};
use courier_tests::*;

/// How long a step may take before the test calls it a hang: generous, for
/// loaded machines. It bounds a failure; it times no success.
const LIMIT: Duration = Duration::from_secs(60);

const ROUND_ROBIN: &str = r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#;

/// The backends' addresses, in order.
fn addresses(backends: &[&Backend]) -> Vec<Address> {
    backends.iter().map(|b| Address::socket(b.addr)).collect()
}

/// A channel on `resolver` with the default policy, pick_first.
fn channel(resolver: &ManualResolver) -> Channel {
    Channel::builder("sctests:///backends")
        .resolver(resolver.clone())
        .connect_lazy()
        .unwrap()
}

/// One call, which must succeed within [`LIMIT`].
async fn call(client: &EchoClient) {
    let mut request = Request::new(text("sc"));
    request.set_wait_for_ready(true);
    request.set_timeout(LIMIT);
    if let Err(status) = client.unary(request).await {
        panic!("a call failed: {status}");
    }
}

/// The calls each backend has served.
fn served(backends: &[&Backend]) -> Vec<usize> {
    backends.iter().map(|b| b.calls()).collect()
}

/// Makes `n` calls one after another, and returns how many each backend
/// served of them.
async fn calls(client: &EchoClient, backends: &[&Backend], n: usize) -> Vec<usize> {
    let before = served(backends);
    for _ in 0..n {
        call(client).await;
    }
    served(backends)
        .iter()
        .zip(before)
        .map(|(now, before)| now - before)
        .collect()
}

/// Calls until every backend has served one since now; panics after
/// [`LIMIT`].
async fn call_until_every_backend_serves(client: &EchoClient, backends: &[&Backend], what: &str) {
    let before = served(backends);
    let spread = async {
        while served(backends).iter().zip(&before).any(|(now, before)| now == before) {
            call(client).await;
        }
    };
    if tokio::time::timeout(LIMIT, spread).await.is_err() {
        panic!("{what}: not every backend served a call within {LIMIT:?}");
    }
}

/// Calls, ten at a time, until ten in a row go to one backend (as under
/// pick_first, never under round_robin over two or more READY backends);
/// panics after [`LIMIT`].
async fn call_until_one_backend_serves_all(client: &EchoClient, backends: &[&Backend], what: &str) {
    let settled = async {
        loop {
            let got = calls(client, backends, 10).await;
            if got.iter().filter(|&&n| n > 0).count() == 1 {
                return;
            }
        }
    };
    if tokio::time::timeout(LIMIT, settled).await.is_err() {
        panic!("{what}: calls still spread over the backends after {LIMIT:?}");
    }
}

/// Asserts that of `n` more calls, every backend serves some.
async fn assert_spread(client: &EchoClient, backends: &[&Backend], n: usize) {
    let got = calls(client, backends, n).await;
    assert!(
        got.iter().all(|&c| c > 0),
        "{n} calls were not spread over every backend: {got:?}"
    );
}

/// Asserts that `n` more calls all go to one backend.
async fn assert_one_backend(client: &EchoClient, backends: &[&Backend], n: usize) {
    let got = calls(client, backends, n).await;
    assert_eq!(
        got.iter().filter(|&&c| c > 0).count(),
        1,
        "{n} calls went to more than one backend: {got:?}"
    );
}

#[tokio::test]
async fn a_config_naming_round_robin_switches_a_pick_first_channel_to_spread_calls() {
    let (b1, b2) = (Backend::start(), Backend::start());
    let all = [&b1, &b2];
    let resolver = ManualResolver::new("sctests");
    resolver.update(ResolverState::new(addresses(&all)));
    let client = EchoClient::new(channel(&resolver));
    assert_one_backend(&client, &all, 20).await;

    resolver.update(ResolverState::new(addresses(&all)).with_service_config(ROUND_ROBIN));
    call_until_every_backend_serves(&client, &all, "after the round_robin config").await;
    assert_spread(&client, &all, 20).await;

    // The same config again keeps the running policy (nothing to observe
    // but that calls keep spreading); a config naming pick_first returns
    // to one backend.
    resolver.update(ResolverState::new(addresses(&all)).with_service_config(ROUND_ROBIN));
    assert_spread(&client, &all, 20).await;
    resolver
        .update(ResolverState::new(addresses(&all)).with_service_config(r#"{"loadBalancingPolicy": "pick_first"}"#));
    call_until_one_backend_serves_all(&client, &all, "after the pick_first config").await;
    assert_one_backend(&client, &all, 20).await;
}

#[tokio::test]
async fn an_invalid_config_from_the_resolver_keeps_the_one_in_force() {
    let (b1, b2, b3) = (Backend::start(), Backend::start(), Backend::start());
    let resolver = ManualResolver::new("sctests");
    resolver.update(ResolverState::new(addresses(&[&b1, &b2])).with_service_config(ROUND_ROBIN));
    let client = EchoClient::new(channel(&resolver));
    call_until_every_backend_serves(&client, &[&b1, &b2], "under round_robin").await;

    // An invalid config, with a third backend: once the third serves, the
    // update was handled, and round_robin (the config before) still runs.
    for invalid in [
        r#"{"loadBalancingConfig": [{"round_robin": {}}"#,
        r#"{"loadBalancingConfig": [{"no_such_policy": {}}]}"#,
        r#"{"methodConfig": [{"name": [{}], "timeout": "soon"}]}"#,
    ] {
        let all = [&b1, &b2, &b3];
        resolver.update(ResolverState::new(addresses(&all)).with_service_config(invalid));
        call_until_every_backend_serves(&client, &all, invalid).await;
        assert_spread(&client, &all, 30).await;
        // Back to two, for the next round.
        resolver.update(ResolverState::new(addresses(&[&b1, &b2])).with_service_config(ROUND_ROBIN));
        call_until_every_backend_serves(&client, &[&b1, &b2], "back to two").await;
    }
}

#[tokio::test]
async fn an_invalid_first_config_leaves_the_builders_default() {
    let (b1, b2) = (Backend::start(), Backend::start());
    let all = [&b1, &b2];
    let resolver = ManualResolver::new("sctests");
    resolver.update(ResolverState::new(addresses(&all)).with_service_config(r#"{"methodConfig": 1}"#));
    let channel = Channel::builder("sctests:///backends")
        .resolver(resolver.clone())
        .service_config_json(ROUND_ROBIN)
        .unwrap()
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    call_until_every_backend_serves(&client, &all, "under the builder's round_robin").await;
    assert_spread(&client, &all, 20).await;
}

#[tokio::test]
async fn a_resolution_without_a_config_returns_to_the_builders_policy() {
    let (b1, b2) = (Backend::start(), Backend::start());
    let all = [&b1, &b2];
    let resolver = ManualResolver::new("sctests");
    resolver.update(ResolverState::new(addresses(&all)).with_service_config(ROUND_ROBIN));
    let client = EchoClient::new(channel(&resolver));
    call_until_every_backend_serves(&client, &all, "under round_robin").await;

    resolver.update(ResolverState::new(addresses(&all)));
    call_until_one_backend_serves_all(&client, &all, "after a resolution without a config").await;
    assert_one_backend(&client, &all, 20).await;
}

#[tokio::test]
async fn disable_service_config_lookup_ignores_the_resolvers_config() {
    let (b1, b2) = (Backend::start(), Backend::start());
    let all = [&b1, &b2];
    let resolver = ManualResolver::new("sctests");
    resolver.update(ResolverState::new(addresses(&all)).with_service_config(ROUND_ROBIN));
    let ignoring = Channel::builder("sctests:///backends")
        .resolver(resolver.clone())
        .disable_service_config_lookup()
        .connect_lazy()
        .unwrap();
    // The first call waits for the resolution, config and all: every call
    // after it is picked under the policy chosen then.
    assert_one_backend(&EchoClient::new(ignoring), &all, 30).await;

    // The same resolver, without the option: round_robin.
    let following = EchoClient::new(channel(&resolver));
    call_until_every_backend_serves(&following, &all, "a channel following the config").await;
    assert_spread(&following, &all, 20).await;
}
