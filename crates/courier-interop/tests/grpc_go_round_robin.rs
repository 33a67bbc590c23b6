//! round_robin across another implementation's servers: Courier's client
//! balances calls over three grpc-go 1.33 interop servers behind one
//! `ipv4:` target. The servers are grpc-go's `interop/xds/server`, whose
//! UnaryCall answers with its `--server_id`, so every response says which
//! backend served it.
//!
//! The binary is built by `scripts/interop/install-go.sh` (run by
//! `scripts/interop.sh`) as `target/interop/go/bin/interop-xds-server`.
//! Without it the test prints a note and passes, unless
//! `COURIER_REQUIRE_PEERS=1` is set, which makes a missing binary a failure
//! (as in CI, after interop.sh).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use courier::Request;
use courier::client::BackoffConfig;
use courier::client::balancer::Policy;
use courier_interop::pb::SimpleRequest;
use courier_interop::pb::test_service_client::TestServiceClient;
use courier_tests::{GoServer, WAIT_LIMIT as LIMIT, go_binary};

/// Makes `n` wait-for-ready UnaryCalls one after another and counts the
/// answers by server id; any failed call fails the test.
async fn calls_by_server(client: &TestServiceClient, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for i in 0..n {
        let mut request = Request::new(SimpleRequest {
            fill_server_id: true,
            ..Default::default()
        });
        request.set_wait_for_ready(true);
        request.set_timeout(LIMIT);
        let response = client
            .unary_call(request)
            .await
            .unwrap_or_else(|status| panic!("call {i} of {n} failed: {status:?} (answered so far: {counts:?})"));
        *counts.entry(response.into_inner().server_id).or_insert(0) += 1;
    }
    counts
}

/// Asserts that each of `ids` answered within ±10% of an equal share of
/// `n` calls, and no other server did.
fn assert_even(counts: &BTreeMap<String, usize>, ids: &[&str], n: usize, when: &str) {
    let share = n as f64 / ids.len() as f64;
    let total: usize = counts.values().sum();
    assert_eq!(total, n, "{when}: {counts:?}");
    for id in ids {
        let got = counts.get(*id).copied().unwrap_or(0) as f64;
        assert!(
            (got - share).abs() <= share * 0.1,
            "{when}: {id} answered {got} of {n} calls, expected {share:.0} ± 10%: {counts:?}"
        );
    }
    assert_eq!(counts.len(), ids.len(), "{when}: answers from others: {counts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn round_robin_spreads_calls_over_three_grpc_go_servers_survives_a_kill_and_takes_the_restarted_one_back() {
    let Some(binary) = go_binary("interop-xds-server") else {
        return;
    };
    let ids = ["go-a", "go-b", "go-c"];
    let mut servers = Vec::new();
    for id in ids {
        servers.push(GoServer::start(&binary, id, &[format!("--server_id={id}")], 0).await);
    }
    let target = format!(
        "ipv4:{}",
        servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    );
    // Quick reconnects, so that the restarted server is taken back soon.
    let backoff = BackoffConfig {
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        ..BackoffConfig::default()
    };
    let channel = courier::Channel::builder(&target)
        .load_balancing(Policy::round_robin())
        .backoff(backoff)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {target}: {e:?}"));
    let client = TestServiceClient::new(channel);

    // The channel is READY with the first subchannel; calls until every
    // server has answered (the other subchannels are READY then).
    let warm = async {
        let mut seen = HashSet::new();
        while seen.len() < ids.len() {
            seen.extend(calls_by_server(&client, 1).await.into_keys());
        }
    };
    tokio::time::timeout(LIMIT, warm)
        .await
        .expect("every grpc-go server answered a call");

    // 300 calls: a third each.
    let counts = calls_by_server(&client, 300).await;
    assert_even(&counts, &ids, 300, "three servers");

    // Kill one: no wait-for-ready call fails, and the other two take its
    // share.
    let killed = servers.remove(1);
    let killed_id = killed.label.clone();
    let port = killed.kill().await;
    let counts = calls_by_server(&client, 300).await;
    assert_even(&counts, &["go-a", "go-c"], 300, &format!("{killed_id} killed"));

    // Restart it on its port: it rejoins once its subchannel reconnects.
    let restarted = GoServer::start(&binary, &killed_id, &[format!("--server_id={killed_id}")], port).await;
    let rejoin = async { while !calls_by_server(&client, 1).await.contains_key(&killed_id) {} };
    tokio::time::timeout(LIMIT, rejoin)
        .await
        .unwrap_or_else(|_| panic!("{killed_id}, restarted on port {port}, answered no call within {LIMIT:?}"));
    servers.push(restarted);
    let counts = calls_by_server(&client, 300).await;
    assert_even(&counts, &ids, 300, &format!("{killed_id} restarted"));
}
