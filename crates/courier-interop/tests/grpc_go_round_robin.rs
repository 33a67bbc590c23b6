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
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use courier::Request;
use courier::client::BackoffConfig;
use courier::client::balancer::Policy;
use courier_interop::pb::SimpleRequest;
use courier_interop::pb::test_service_client::TestServiceClient;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

/// A hang guard for each wait below: generous, for loaded machines; it
/// bounds a failure, it never times a success.
const LIMIT: Duration = Duration::from_secs(60);

/// The grpc-go server, or `None` to skip.
fn go_server() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/interop/go/bin/interop-xds-server");
    if path.exists() {
        return Some(path);
    }
    let why = format!("{} does not exist (run scripts/interop/install-go.sh)", path.display());
    if std::env::var("COURIER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("COURIER_REQUIRE_PEERS=1 but the grpc-go peer is unavailable: {why}");
    }
    eprintln!("note: skipping the grpc-go round_robin test: {why}");
    None
}

/// A running grpc-go server, killed when dropped.
struct GoServer {
    id: String,
    port: u16,
    child: Child,
}

/// The TCP port `pid` listens on, if it has a listening socket yet: its
/// socket inodes (`/proc/PID/fd`) looked up in the kernel's TCP tables.
fn listening_port(pid: u32) -> Option<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    for table in ["tcp6", "tcp"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... inode (the tenth field).
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                let port = fields[1].rsplit_once(':')?.1;
                return u16::from_str_radix(port, 16).ok();
            }
        }
    }
    None
}

impl GoServer {
    /// Starts a server with `--server_id=id` on `port`; 0 lets it bind a
    /// port of the kernel's choosing. The server binds the port itself, so
    /// no other process can take it between a choice and its use; a server
    /// restarted on its old port whose bind fails with EADDRINUSE (someone
    /// else holds the port for now) is started again until it binds.
    ///
    /// grpc-go's server prints nothing once it listens, so its listening
    /// socket is looked up in /proc until it appears.
    async fn start(binary: &PathBuf, id: &str, port: u16) -> GoServer {
        let start = async {
            loop {
                let mut child = Command::new(binary)
                    .arg(format!("--port={port}"))
                    .arg(format!("--server_id={id}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("start grpc-go's interop-xds-server");
                let pid = child.id().expect("a running child has a pid");
                loop {
                    if let Some(bound) = listening_port(pid) {
                        assert!(
                            port == 0 || bound == port,
                            "asked for port {port}, listening on {bound}"
                        );
                        return GoServer {
                            id: id.to_string(),
                            port: bound,
                            child,
                        };
                    }
                    if let Some(status) = child.try_wait().expect("poll the server") {
                        let mut stderr = String::new();
                        if let Some(mut pipe) = child.stderr.take() {
                            let _ = pipe.read_to_string(&mut stderr).await;
                        }
                        assert!(
                            stderr.contains("address already in use"),
                            "grpc-go's server {id} exited ({status}) before listening: {stderr}"
                        );
                        // Paces the retries while another socket holds the port.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                    // Paces the look-ups; nothing depends on how long this is.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        tokio::time::timeout(LIMIT, start)
            .await
            .unwrap_or_else(|_| panic!("grpc-go's server {id} did not listen on port {port} within {LIMIT:?}"))
    }

    async fn kill(mut self) -> u16 {
        self.child.kill().await.expect("kill the grpc-go server");
        self.port
    }
}

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
    let Some(binary) = go_server() else { return };
    let ids = ["go-a", "go-b", "go-c"];
    let mut servers = Vec::new();
    for id in ids {
        servers.push(GoServer::start(&binary, id, 0).await);
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
    let killed_id = killed.id.clone();
    let port = killed.kill().await;
    let counts = calls_by_server(&client, 300).await;
    assert_even(&counts, &["go-a", "go-c"], 300, &format!("{killed_id} killed"));

    // Restart it on its port: it rejoins once its subchannel reconnects.
    let restarted = GoServer::start(&binary, &killed_id, port).await;
    let rejoin = async { while !calls_by_server(&client, 1).await.contains_key(&killed_id) {} };
    tokio::time::timeout(LIMIT, rejoin)
        .await
        .unwrap_or_else(|_| panic!("{killed_id}, restarted on port {port}, answered no call within {LIMIT:?}"));
    servers.push(restarted);
    let counts = calls_by_server(&client, 300).await;
    assert_even(&counts, &ids, 300, &format!("{killed_id} restarted"));
}
