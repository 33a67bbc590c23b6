//! The `dns:` resolver against a real DNS server: dnsmasq on a loopback
//! port, answering for `courier.test` from a hosts file that the tests
//! rewrite (and dnsmasq rereads on SIGHUP). Targets name that server in
//! their authority, `dns://127.0.0.1:PORT/name:port`, so the machine's own
//! DNS configuration plays no part. The backends are Courier servers on one
//! port of several loopback addresses (127.0.0.1, 127.0.0.2, ...), since A
//! records carry no port. Service configs in DNS (gRFC A2) are TXT records
//! of `_grpc_config.<name>` from a second dnsmasq configuration file.
//!
//! dnsmasq comes from Debian's `dnsmasq-base` (`.ci/run` installs it);
//! `COURIER_DNSMASQ` names another binary. Without it the tests print a
//! note and pass, unless `COURIER_REQUIRE_PEERS=1`, which makes a missing
//! dnsmasq a failure.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use courier::client::balancer::{
    ChannelControl, LoadBalancer, LoadBalancerBuilder, Policy, Subchannel, SubchannelState,
};
use courier::client::resolver::{Address, DnsResolver, ResolverState};
use courier::{Channel, Code, Status};
use courier_tests::{Counters, EchoClient, WAIT_LIMIT, echo_with, text};
use tokio::sync::{mpsc, oneshot, watch};

/// How often the resolver of the tests that follow DNS changes may
/// resolve: short, so that a test does not wait out the default 30 s.
const INTERVAL: Duration = Duration::from_millis(500);

/// The dnsmasq binary, or `None` (with a note) to skip the test.
fn dnsmasq_binary() -> Option<PathBuf> {
    let found = match std::env::var_os("COURIER_DNSMASQ") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain(["/usr/sbin".into(), "/sbin".into()])
                .map(|dir| dir.join("dnsmasq"))
                .find(|p| p.is_file())
        }
    };
    match found {
        Some(path) if path.is_file() => Some(path),
        _ if std::env::var("COURIER_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!("COURIER_REQUIRE_PEERS=1 but dnsmasq is not installed (apt-get install dnsmasq-base)")
        }
        _ => {
            eprintln!("note: skipping a DNS test: dnsmasq is not installed (apt-get install dnsmasq-base)");
            None
        }
    }
}

/// What dnsmasq has logged so far.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    /// Its stderr closed: it exited.
    closed: bool,
}

/// A dnsmasq process serving `courier.test` on 127.0.0.1.
struct Dnsmasq {
    child: Child,
    port: u16,
    hosts: PathBuf,
    log: watch::Receiver<Log>,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq with `records` (hosts-file lines) as its hosts file,
    /// or returns `None` when there is no dnsmasq to run.
    ///
    /// dnsmasq takes a port number, not port 0, so the port is drawn at
    /// random and dnsmasq binds it itself; when it is taken, dnsmasq says
    /// so and exits, and another is drawn. Nothing assumes that a port is
    /// free: the server that uses it is the one that binds it.
    async fn start(records: &str) -> Option<Dnsmasq> {
        Dnsmasq::start_with(records, "").await
    }

    /// [`Dnsmasq::start`], with `conf` (dnsmasq configuration lines, such
    /// as `txt-record=...`) read as a second configuration file: in a file,
    /// dnsmasq takes quoted strings with escapes.
    async fn start_with(records: &str, conf: &str) -> Option<Dnsmasq> {
        let binary = dnsmasq_binary()?;
        let dir = tempfile::tempdir().unwrap();
        // dnsmasq, started as root, rereads its files as an unprivileged
        // user: they must be readable by anyone.
        set_mode(dir.path(), 0o755);
        let hosts = dir.path().join("hosts");
        write_hosts(&hosts, records);
        let conf_file = dir.path().join("extra.conf");
        write_hosts(&conf_file, conf);
        for attempt in 0..50 {
            let port = random_port(attempt);
            let mut child = Command::new(&binary)
                .args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--pid-file",
                    "--log-facility=-",
                    "--log-queries",
                    "--no-resolv",
                    "--no-hosts",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    // Names of courier.test that the hosts file lacks do
                    // not exist (NXDOMAIN); nothing is forwarded.
                    "--local=/courier.test/",
                    "--txt-record=text-only.courier.test,no addresses here",
                    // Answers over UDP longer than this are truncated, and
                    // must be asked again over TCP.
                    "--edns-packet-max=512",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--conf-file={}", conf_file.display()))
                .arg(format!("--addn-hosts={}", hosts.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let stderr = child.stderr.take().unwrap();
            let (tx, mut log) = watch::channel(Log::default());
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    tx.send_modify(|log| log.lines.push(line));
                }
                tx.send_modify(|log| log.closed = true);
            });
            let loaded = format!("read {}", hosts.display());
            let ready = tokio::time::timeout(
                WAIT_LIMIT,
                log.wait_for(|log| log.closed || log.lines.iter().any(|l| l.contains(&loaded))),
            )
            .await
            .is_ok();
            let (closed, lines) = {
                let log = log.borrow();
                (log.closed, log.lines.join("\n"))
            };
            if ready && !closed {
                return Some(Dnsmasq {
                    child,
                    port,
                    hosts,
                    log,
                    _dir: dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            if closed && lines.contains("Address already in use") {
                continue;
            }
            panic!("dnsmasq did not start serving on port {port}:\n{lines}");
        }
        panic!("dnsmasq found no free port in 50 tries");
    }

    /// A target that asks this server for `name_port`.
    fn target(&self, name_port: &str) -> String {
        format!("dns://127.0.0.1:{}/{name_port}", self.port)
    }

    /// Replaces the records and waits until dnsmasq has reread them.
    async fn set_records(&self, records: &str) {
        let loaded = format!("read {}", self.hosts.display());
        let reads = |log: &Log| log.lines.iter().filter(|l| l.contains(&loaded)).count();
        let before = reads(&self.log.borrow());
        write_hosts(&self.hosts, records);
        // SAFETY: kill(2) on the child this value owns and has not reaped.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(sent, 0, "SIGHUP to dnsmasq: {}", std::io::Error::last_os_error());
        self.wait_log("dnsmasq rereads its hosts file", |log| reads(log) > before)
            .await;
    }

    /// Waits until `done` holds for the log; panics after [`WAIT_LIMIT`].
    async fn wait_log(&self, what: &str, done: impl Fn(&Log) -> bool) {
        let mut log = self.log.clone();
        let in_time = tokio::time::timeout(WAIT_LIMIT, log.wait_for(|log| done(log) || log.closed))
            .await
            .is_ok();
        if !in_time || log.borrow().closed {
            panic!(
                "{what}: not within {WAIT_LIMIT:?}; log:\n{}",
                log.borrow().lines.join("\n")
            );
        }
    }

    /// How many A queries for `name` dnsmasq has answered.
    fn a_queries(&self, name: &str) -> usize {
        a_queries(&self.log.borrow(), name)
    }
}

fn a_queries(log: &Log, name: &str) -> usize {
    let asked = format!("query[A] {name} ");
    log.lines.iter().filter(|l| l.contains(&asked)).count()
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_hosts(path: &Path, records: &str) {
    std::fs::write(path, records).unwrap();
    set_mode(path, 0o644);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A port for dnsmasq to try, below Linux's ephemeral range.
fn random_port(attempt: u32) -> u16 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.write_u32(std::process::id());
    20_000 + (h.finish() % 12_000) as u16
}

/// The hosts-file lines giving `name` these addresses.
fn records(name: &str, ips: &[IpAddr]) -> String {
    ips.iter().map(|ip| format!("{ip} {name}\n")).collect()
}

/// `127.0.0.n`.
fn lo(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A Courier server with the Echo service.
struct Backend {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Backend {
    fn calls(&self) -> usize {
        self.counters.started.load(Ordering::SeqCst)
    }

    /// Shuts the server down gracefully, and waits until it has.
    async fn shut_down(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT_LIMIT, self.task)
            .await
            .expect("the backend shuts down")
            .unwrap()
            .unwrap();
    }
}

/// Backends on one port (which the first binds, as port 0) of each of
/// `ips`. A port that one of the others cannot have makes a new try.
async fn backends(ips: &[IpAddr]) -> (u16, Vec<Backend>) {
    'attempt: for _ in 0..20 {
        let first = tokio::net::TcpListener::bind((ips[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for &ip in &ips[1..] {
            match tokio::net::TcpListener::bind((ip, port)).await {
                Ok(listener) => listeners.push(listener),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue 'attempt,
                Err(e) => panic!("bind {ip}:{port}: {e}"),
            }
        }
        let backends = listeners
            .into_iter()
            .map(|listener| {
                let addr = listener.local_addr().unwrap();
                let counters = Arc::new(Counters::default());
                let (stop, stopped) = oneshot::channel::<()>();
                let server = courier::Server::builder().add_service(echo_with(counters.clone()));
                let task = tokio::spawn(server.serve_with_listener(listener, async {
                    let _ = stopped.await;
                }));
                Backend {
                    addr,
                    counters,
                    stop: Some(stop),
                    task,
                }
            })
            .collect();
        return (port, backends);
    }
    panic!("no port free on all of {ips:?} in 20 tries");
}

/// One unary call, which must succeed; a hang is a failure.
async fn call(client: &EchoClient) {
    let mut request = courier::Request::new(text("dns"));
    request.set_timeout(WAIT_LIMIT);
    if let Err(status) = client.unary(request).await {
        panic!("a call failed: {status}");
    }
}

/// Calls until `done` holds, each call succeeding; panics after
/// [`WAIT_LIMIT`].
async fn call_until(client: &EchoClient, what: &str, done: impl Fn() -> bool) -> usize {
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut calls = 0;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT_LIMIT:?} ({calls} calls)"
        );
        call(client).await;
        calls += 1;
    }
    calls
}

fn round_robin(target: &str) -> Channel {
    Channel::builder(target)
        .resolver(DnsResolver::new().min_resolution_interval(INTERVAL))
        .load_balancing(Policy::round_robin())
        .wait_for_ready(true)
        .connect_lazy()
        .unwrap()
}

#[tokio::test]
async fn three_a_records_spread_round_robin_calls_over_three_backends() {
    let ips = [lo(1), lo(2), lo(3)];
    let (port, backends) = backends(&ips).await;
    let Some(dns) = Dnsmasq::start(&records("svc.courier.test", &ips)).await else {
        return;
    };
    let client = EchoClient::new(round_robin(&dns.target(&format!("svc.courier.test:{port}"))));
    let calls = call_until(&client, "every backend has calls", || {
        backends.iter().all(|b| b.calls() > 0)
    })
    .await;
    // A hundred more: round_robin keeps rotating over all three.
    let before: Vec<usize> = backends.iter().map(Backend::calls).collect();
    for _ in 0..99 {
        call(&client).await;
    }
    for (backend, before) in backends.iter().zip(before) {
        assert!(backend.calls() > before, "{} got none of 99 calls", backend.addr);
    }
    let total: usize = backends.iter().map(Backend::calls).sum();
    assert_eq!(total, calls + 99, "every call reached one of the three backends");
    dns.wait_log("dnsmasq logs the A query", |log| {
        a_queries(log, "svc.courier.test") >= 1
    })
    .await;
}

#[tokio::test]
async fn after_a_record_is_replaced_and_its_backend_stops_the_channel_follows() {
    let started = Instant::now();
    let (port, mut backends) = backends(&[lo(1), lo(2), lo(3), lo(4)]).await;
    let Some(dns) = Dnsmasq::start(&records("svc.courier.test", &[lo(1), lo(2), lo(3)])).await else {
        return;
    };
    let client = EchoClient::new(round_robin(&dns.target(&format!("svc.courier.test:{port}"))));
    call_until(&client, "backends 1 to 3 have calls", || {
        backends[..3].iter().all(|b| b.calls() > 0)
    })
    .await;
    assert_eq!(backends[3].calls(), 0, "127.0.0.4 is not in DNS yet");

    // 127.0.0.3 leaves DNS and 127.0.0.4 joins; then 127.0.0.3's server
    // goes away. The lost connection makes the channel resolve again.
    dns.set_records(&records("svc.courier.test", &[lo(1), lo(2), lo(4)]))
        .await;
    let third = backends.remove(2);
    third.shut_down().await;
    call_until(&client, "127.0.0.4 has calls", || backends[2].calls() > 0).await;
    let before: Vec<usize> = backends.iter().map(Backend::calls).collect();
    for _ in 0..99 {
        call(&client).await;
    }
    for (backend, before) in backends.iter().zip(before) {
        assert!(backend.calls() > before, "{} got none of 99 calls", backend.addr);
    }

    // However often the channel asked, it resolved at most once per
    // interval (each resolution asks for A once).
    dns.wait_log("dnsmasq logs the second resolution", |log| {
        a_queries(log, "svc.courier.test") >= 2
    })
    .await;
    let resolutions = dns.a_queries("svc.courier.test");
    let most = (started.elapsed().as_millis() / INTERVAL.as_millis()) as usize + 2;
    assert!(
        resolutions <= most,
        "{resolutions} resolutions, more than one per {INTERVAL:?}"
    );
}

#[tokio::test]
async fn a_failed_re_resolution_keeps_the_addresses_from_before() {
    let (port, mut backends) = backends(&[lo(1), lo(2)]).await;
    let Some(dns) = Dnsmasq::start(&records("svc.courier.test", &[lo(1), lo(2)])).await else {
        return;
    };
    let channel = Channel::builder(dns.target(&format!("svc.courier.test:{port}")))
        .resolver(DnsResolver::new().min_resolution_interval(INTERVAL))
        .load_balancing(Policy::round_robin())
        .connect_lazy()
        .unwrap();
    let client = EchoClient::new(channel);
    call_until(&client, "both backends have calls", || {
        backends.iter().all(|b| b.calls() > 0)
    })
    .await;

    // The name stops existing, and 127.0.0.2 goes away: the channel asks
    // again, DNS says NXDOMAIN, and the channel keeps 127.0.0.1.
    dns.set_records("").await;
    let nxdomain = |log: &Log| {
        log.lines
            .iter()
            .filter(|l| l.contains("svc.courier.test is NXDOMAIN"))
            .count()
    };
    backends.pop().unwrap().shut_down().await;
    // Fail-fast calls, all the while the resolver fails (it retries each
    // interval on its own): none fails.
    let deadline = Instant::now() + WAIT_LIMIT;
    while nxdomain(&dns.log.borrow()) < 3 {
        assert!(Instant::now() < deadline, "DNS did not fail three times");
        call(&client).await;
    }
    for _ in 0..20 {
        call(&client).await;
    }
}

#[tokio::test]
async fn a_name_that_does_not_exist_fails_calls_with_unavailable_naming_nxdomain() {
    let Some(dns) = Dnsmasq::start("").await else { return };
    let client = EchoClient::new(Channel::lazy(dns.target("missing.courier.test:50051")).unwrap());
    let err = client.unary(text("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let message = err.message();
    assert!(message.contains("cannot resolve the host name"), "{err}");
    assert!(message.contains("missing.courier.test"), "{err}");
    assert!(message.contains("NXDOMAIN"), "{err}");
    assert!(message.contains(&format!("127.0.0.1:{}", dns.port)), "{err}");
}

#[tokio::test]
async fn a_name_with_no_address_records_fails_calls_with_unavailable() {
    let Some(dns) = Dnsmasq::start("").await else { return };
    let client = EchoClient::new(Channel::lazy(dns.target("text-only.courier.test:50051")).unwrap());
    let err = client.unary(text("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().contains("text-only.courier.test"), "{err}");
    assert!(err.message().contains("no A or AAAA records"), "{err}");
}

/// A policy that only reports what the resolver gave it.
struct Record(mpsc::UnboundedSender<Result<Vec<Address>, Status>>);

impl LoadBalancerBuilder for Record {
    fn name(&self) -> &str {
        "record"
    }
    fn build(&self) -> Box<dyn LoadBalancer> {
        Box::new(Record(self.0.clone()))
    }
}

impl LoadBalancer for Record {
    fn resolver_update(&mut self, state: &ResolverState, _channel: &mut dyn ChannelControl) {
        let _ = self.0.send(Ok(state.addresses().to_vec()));
    }
    fn resolver_error(&mut self, error: &Status, _channel: &mut dyn ChannelControl) {
        let _ = self.0.send(Err(error.clone()));
    }
    fn subchannel_update(&mut self, _: &Subchannel, _: &SubchannelState, _: &mut dyn ChannelControl) {}
}

/// The first resolution of `target`, as a channel's policy receives it.
async fn resolve(target: &str) -> Result<Vec<SocketAddr>, Status> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let channel = Channel::builder(target)
        .load_balancing(Policy::custom(Record(tx)))
        .connect_lazy()
        .unwrap();
    channel.state(true);
    let resolved = tokio::time::timeout(WAIT_LIMIT, rx.recv())
        .await
        .expect("a resolution within the limit")
        .unwrap();
    resolved.map(|addresses| {
        addresses
            .iter()
            .map(|a| a.as_socket().expect("a socket address"))
            .collect()
    })
}

#[tokio::test]
async fn the_named_server_gives_every_a_and_aaaa_record_over_udp_and_tcp() {
    // A hundred A records do not fit in 512 bytes: the UDP answer comes
    // truncated, and the whole one over TCP.
    let v4: Vec<IpAddr> = (1..=100).map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 1, n))).collect();
    let v6: Vec<IpAddr> = vec!["::1".parse().unwrap(), "fd00::7".parse().unwrap()];
    let all = [records("many.courier.test", &v4), records("many.courier.test", &v6)].concat();
    let Some(dns) = Dnsmasq::start(&all).await else { return };
    let found = resolve(&dns.target("many.courier.test")).await.unwrap();
    // Every record, once, with the default port 443, A records first.
    assert_eq!(found.len(), 102, "{found:?}");
    assert!(found.iter().all(|a| a.port() == 443), "{found:?}");
    let found_v4: HashSet<IpAddr> = found[..100].iter().map(SocketAddr::ip).collect();
    let found_v6: HashSet<IpAddr> = found[100..].iter().map(SocketAddr::ip).collect();
    assert_eq!(found_v4, v4.into_iter().collect::<HashSet<_>>());
    assert_eq!(found_v6, v6.into_iter().collect::<HashSet<_>>());
    // dnsmasq answers TCP in a child process, whose log may come later.
    dns.wait_log("dnsmasq logs the A query over UDP, then TCP", |log| {
        a_queries(log, "many.courier.test") >= 2
    })
    .await;
}

/// A dnsmasq configuration line giving `name` a TXT record of
/// `grpc_config=` and `choices` (gRFC A2), in strings of at most 100
/// characters, which the resolver must join.
fn grpc_config_record(name: &str, choices: &str) -> String {
    // One line: the JSON's line breaks become spaces.
    let text = format!("grpc_config={}", choices.replace('\n', " "));
    let strings: Vec<String> = text
        .as_bytes()
        .chunks(100)
        .map(|chunk| {
            let chunk = std::str::from_utf8(chunk).expect("ASCII");
            format!("\"{}\"", chunk.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect();
    format!("txt-record=_grpc_config.{name},{}\n", strings.join(","))
}

/// How many TXT queries for `name` dnsmasq has answered.
fn txt_queries(log: &Log, name: &str) -> usize {
    let asked = format!("query[TXT] {name} ");
    log.lines.iter().filter(|l| l.contains(&asked)).count()
}

/// Choices of which only the second, with a config naming round_robin, is
/// for a Rust client; long enough to take three TXT strings.
const ROUND_ROBIN_CHOICES: &str = r#"[
  {"clientLanguage": ["go", "java"], "serviceConfig": {"loadBalancingConfig": [{"pick_first": {}}]}},
  {"clientLanguage": ["c++", "Rust"], "percentage": 100,
   "serviceConfig": {"loadBalancingConfig": [{"round_robin": {}}],
                     "methodConfig": [{"name": [{"service": "courier.test.Echo"}], "timeout": "30s"}]}}
]"#;

/// A channel with the default policy, pick_first, that takes service
/// configs from DNS or not.
fn pick_first(target: &str, dns_service_config: bool) -> Channel {
    Channel::builder(target)
        .resolver(DnsResolver::new().min_resolution_interval(INTERVAL))
        .dns_service_config(dns_service_config)
        .wait_for_ready(true)
        .connect_lazy()
        .unwrap()
}

/// Of `n` more calls, how many each backend served.
async fn spread_of(client: &EchoClient, backends: &[Backend], n: usize) -> Vec<usize> {
    let before: Vec<usize> = backends.iter().map(Backend::calls).collect();
    for _ in 0..n {
        call(client).await;
    }
    backends
        .iter()
        .zip(before)
        .map(|(b, before)| b.calls() - before)
        .collect()
}

#[tokio::test]
async fn a_txt_service_config_naming_round_robin_spreads_a_pick_first_channel_over_two_backends() {
    let ips = [lo(1), lo(2)];
    let (port, backends) = backends(&ips).await;
    let conf = grpc_config_record("svc.courier.test", ROUND_ROBIN_CHOICES);
    let Some(dns) = Dnsmasq::start_with(&records("svc.courier.test", &ips), &conf).await else {
        return;
    };
    let client = EchoClient::new(pick_first(&dns.target(&format!("svc.courier.test:{port}")), true));
    // Under pick_first every call would go to one backend, and this would
    // not end.
    call_until(&client, "both backends have calls", || {
        backends.iter().all(|b| b.calls() > 0)
    })
    .await;
    let spread = spread_of(&client, &backends, 20).await;
    assert!(
        spread.iter().all(|&n| n > 0),
        "20 calls not spread over both backends: {spread:?}"
    );
    dns.wait_log("dnsmasq logs the TXT query", |log| {
        txt_queries(log, "_grpc_config.svc.courier.test") >= 1
    })
    .await;
}

#[tokio::test]
async fn without_dns_service_config_the_txt_config_is_not_used() {
    let ips = [lo(1), lo(2)];
    let (port, backends) = backends(&ips).await;
    let conf = grpc_config_record("svc.courier.test", ROUND_ROBIN_CHOICES);
    let Some(dns) = Dnsmasq::start_with(&records("svc.courier.test", &ips), &conf).await else {
        return;
    };
    let client = EchoClient::new(pick_first(&dns.target(&format!("svc.courier.test:{port}")), false));
    let spread = spread_of(&client, &backends, 20).await;
    assert_eq!(
        spread.iter().filter(|&&n| n > 0).count(),
        1,
        "pick_first sends every call to one backend: {spread:?}"
    );
}

#[tokio::test]
async fn a_bad_txt_service_config_is_ignored_and_calls_keep_working() {
    let ips = [lo(1), lo(2)];
    let (port, backends) = backends(&ips).await;
    // A valid choice list whose config is invalid (a bad timeout) though
    // its policy would be valid, and a choice list that is not valid.
    let conf = [
        grpc_config_record(
            "bad-config.courier.test",
            r#"[{"serviceConfig": {"loadBalancingConfig": [{"round_robin": {}}],
                 "methodConfig": [{"name": [{}], "timeout": "soon"}]}}]"#,
        ),
        grpc_config_record(
            "bad-choices.courier.test",
            r#"[{"serviceConfig": {"loadBalancingConfig": [{"round_robin": {}}]}, "clientFlavor": "x"}]"#,
        ),
    ]
    .concat();
    let records = [
        records("bad-config.courier.test", &ips),
        records("bad-choices.courier.test", &ips),
    ]
    .concat();
    let Some(dns) = Dnsmasq::start_with(&records, &conf).await else {
        return;
    };
    for name in ["bad-config.courier.test", "bad-choices.courier.test"] {
        let client = EchoClient::new(pick_first(&dns.target(&format!("{name}:{port}")), true));
        // Every call succeeds, under the builder's pick_first: one backend.
        let spread = spread_of(&client, &backends, 20).await;
        assert_eq!(
            spread.iter().filter(|&&n| n > 0).count(),
            1,
            "{name}: the bad config's round_robin was used: {spread:?}"
        );
        let txt_name = format!("_grpc_config.{name}");
        dns.wait_log("dnsmasq logs the TXT query", |log| txt_queries(log, &txt_name) >= 1)
            .await;
    }
}
