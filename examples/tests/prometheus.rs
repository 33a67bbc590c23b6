//! The observability example under a real Prometheus (Debian's
//! `prometheus` package): it scrapes the example server's `/metrics`, and
//! its HTTP API then reports the server calls the test made. Skipped when
//! Prometheus is not installed, unless `COURIER_REQUIRE_PEERS=1` (as in
//! CI), which makes that a failure.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use examples::helloworld::MyGreeter;
use examples::observability::{Telemetry, spawn_metrics_endpoint};
use examples::pb::helloworld::HelloRequest;
use examples::pb::helloworld::greeter_client::GreeterClient;
use examples::pb::helloworld::greeter_server::GreeterServer;

/// How long Prometheus has to start, scrape and answer.
const LIMIT: Duration = Duration::from_secs(60);

/// The Prometheus binary, or `None` to skip.
fn prometheus() -> Option<PathBuf> {
    let path = std::env::var_os("PROMETHEUS").map_or_else(|| PathBuf::from("/usr/bin/prometheus"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("COURIER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!(
            "COURIER_REQUIRE_PEERS=1 but {} is missing (apt-get install prometheus)",
            path.display()
        );
    }
    eprintln!("skipped: {} is missing (apt-get install prometheus)", path.display());
    None
}

/// A Prometheus process, killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on a port it picks, scraping `target` every
    /// second, and reads the port from its log.
    fn start(binary: &PathBuf, target: std::net::SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: greeter\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log to its end, so Prometheus never blocks on it. The
        // line that names the bound address gives the port; the API
        // answers once the log says the server is ready.
        // If Prometheus exits first, its log is the error.
        std::thread::spawn(move || {
            let mut port = None;
            let mut tx = Some(tx);
            let mut log = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("msg=\"Listening on\"") {
                    port = line.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok());
                }
                if line.contains("ready to receive web requests")
                    && let (Some(port), Some(tx)) = (port, tx.take())
                {
                    let _ = tx.send(Ok(port));
                }
                if tx.is_some() {
                    log.push(line);
                }
            }
            if let Some(tx) = tx {
                let _ = tx.send(Err(log.join("\n")));
            }
        });
        let port = match rx.recv_timeout(LIMIT) {
            Ok(Ok(port)) => port,
            Ok(Err(log)) => panic!("prometheus exited before it was ready; its log:\n{log}"),
            Err(e) => panic!("prometheus did not log its address and readiness in {LIMIT:?}: {e}"),
        };
        Prometheus { child, port, _dir: dir }
    }

    /// Runs a PromQL instant query and returns its JSON answer.
    fn query(&self, promql: &str) -> serde_json::Value {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        write!(
            stream,
            "GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {response}"))
    }

    /// Queries until the first result's value is `want`, or the limit.
    fn wait_for(&self, promql: &str, want: &str) -> serde_json::Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            let answer = self.query(promql);
            if answer["data"]["result"][0]["value"][1].as_str() == Some(want) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: never {want}; last answer {answer}"
            );
            // Prometheus has no way to be told when it scraped: ask again
            // after a while (it scrapes every second).
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_server_calls_the_example_made() {
    let Some(binary) = prometheus() else { return };
    let telemetry = Telemetry::new("greeter-server", false).unwrap();
    let metrics = spawn_metrics_endpoint("127.0.0.1:0", telemetry.registry.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = courier::Server::builder()
        .stats_handler(telemetry.otel.clone())
        .add_service(GreeterServer::new(MyGreeter));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_with_listener(listener, async {
        let _ = stopped.await;
    }));

    let greeter = GreeterClient::connect(&url).await.unwrap();
    const CALLS: usize = 7;
    for i in 0..CALLS {
        let request = courier::Request::new(HelloRequest {
            name: format!("Ada {i}"),
        });
        greeter.say_hello(request).await.unwrap();
    }

    let prometheus = tokio::task::spawn_blocking(move || {
        let prometheus = Prometheus::start(&binary, metrics);
        let count = "grpc_server_call_started_total{grpc_method=\"helloworld.Greeter/SayHello\"}";
        let answer = prometheus.wait_for(count, &CALLS.to_string());
        assert_eq!(answer["data"]["result"][0]["metric"]["job"], "greeter", "{answer}");
        let durations =
            "grpc_server_call_duration_seconds_count{grpc_method=\"helloworld.Greeter/SayHello\",grpc_status=\"OK\"}";
        prometheus.wait_for(durations, &CALLS.to_string());
        prometheus
    })
    .await
    .unwrap();
    drop(prometheus);
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    telemetry.shutdown();
}
