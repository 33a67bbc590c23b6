//! The load generator: closed loop, `connections` × `streams` workers, each
//! with one call (or one message) in flight at a time, on the Courier
//! client, or with `--client tonic` on tonic's (the baseline the Courier
//! client is measured against: the same calls, messages and workers).
//!
//! - **unary**: each worker makes unary calls back to back.
//! - **empty-call**: TestService.EmptyCall back to back (`--target test`).
//! - **ping-pong**: each worker opens one bidirectional stream and sends one
//!   message, waits for its answer, and so on; latency is the round trip.
//! - **streaming**: each worker opens one bidirectional stream and sends as
//!   fast as HTTP/2 flow control lets it, while it reads the answers; the
//!   rate is messages answered per second, and the latency of a message is
//!   from the moment the sender handed it to the client until its answer
//!   arrived (it includes the time queued behind the flow-control windows).
//! - **idle-connections**: opens `connections` connections, makes one call
//!   on each, holds them idle for `--hold` seconds, and reports how much the
//!   server's resident memory grew per connection.
//!
//! The load is measured for `--duration` seconds after a `--warmup` that is
//! not counted, or as exactly `--requests` calls (or stream messages) with
//! no warm-up. With `--server-pid` the report has the server's CPU time per
//! call over the measured window (utime + stime from `/proc/PID/stat`) and
//! its peak RSS (`VmHWM`); given more than once (several backends behind
//! one target), the servers' sums. The report always has the load
//! generator's own CPU time per call (utime + stime of every thread of this
//! process, from `/proc/self/stat`, over the same window): the client's
//! cost, which is what `--client` compares.
//!
//! `--server` is any channel target (`ipv4:a:p,b:q` for several backends)
//! and `--lb` the channel's load-balancing policy, so that the same load can
//! go to one address or be balanced over several.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use courier::client::balancer::Policy;
use courier::client::service_config::{MethodConfig, MethodName, RetryPolicy, ServiceConfig};
use courier::{Channel, Status, Streaming};
use futures_util::Stream;
use hdrhistogram::Histogram;

use crate::pb::benchmark_service_client::BenchmarkServiceClient;
use crate::pb::test_service_client::TestServiceClient;
use crate::pb::{
    Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use crate::procfs;
use crate::tonic_pb;

/// The client library the load is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClientImpl {
    /// Courier's `Channel` and generated clients.
    Courier,
    /// tonic's `transport::Channel` and generated BenchmarkService client
    /// (BenchmarkService only: unary, ping-pong and streaming; one address,
    /// no balancing, no retry policy).
    Tonic,
}

impl ClientImpl {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ClientImpl::Courier => "courier",
            ClientImpl::Tonic => "tonic",
        }
    }
}

/// What the workers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Unary calls (BenchmarkService or TestService UnaryCall).
    Unary,
    /// TestService.EmptyCall.
    EmptyCall,
    /// One message in flight per stream (StreamingCall or FullDuplexCall).
    PingPong,
    /// As many messages in flight as flow control allows.
    Streaming,
    /// Many connections, one call each, then held idle.
    IdleConnections,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Unary => "unary",
            Mode::EmptyCall => "empty-call",
            Mode::PingPong => "ping-pong",
            Mode::Streaming => "streaming",
            Mode::IdleConnections => "idle-connections",
        }
    }
}

/// Which service the load is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// `grpc.testing.BenchmarkService`: UnaryCall, StreamingCall.
    Benchmark,
    /// `grpc.testing.TestService`: EmptyCall, UnaryCall, FullDuplexCall.
    Test,
}

impl Target {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Target::Benchmark => "benchmark",
            Target::Test => "test",
        }
    }
}

/// The command line of `courier-bench`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "courier-bench",
    version,
    about = "A closed-loop gRPC load generator on the Courier client (or tonic's)."
)]
pub struct Args {
    /// The client library: Courier's, or tonic's as the baseline.
    #[arg(long, value_enum, default_value = "courier")]
    pub client: ClientImpl,

    /// The server: `host:port`, `http://host:port`, or any channel target
    /// (`ipv4:127.0.0.1:5001,127.0.0.1:5002`, `dns:///host:port`, ...).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub server: String,

    /// The channels' load-balancing policy: `pick_first` or `round_robin`.
    #[arg(long, default_value = "pick_first")]
    pub lb: Policy,

    /// Gives the channels a service config whose retry policy covers every
    /// method (up to 5 attempts on UNAVAILABLE), to measure what a policy
    /// costs calls that never fail.
    #[arg(long)]
    pub retry_policy: bool,

    /// Courier's client: fixed HTTP/2 flow-control windows (the default
    /// sizes) instead of adaptive ones, so that it sends no BDP pings.
    /// `scripts/bench.sh --callgrind-lb` uses it: a ping's ack arrives
    /// while the client under callgrind is still at work, sooner or later
    /// from run to run, and the polls it costs made counts vary.
    #[arg(long)]
    pub fixed_windows: bool,

    /// Unary modes: wait this many microseconds after each call before the
    /// next (default 0). `scripts/bench.sh --callgrind` uses it so that
    /// each request reaches the server under callgrind once it has finished
    /// the call before and parked: its work per call then repeats.
    #[arg(long, default_value_t = 0)]
    pub call_gap_us: u64,

    /// Courier's client: records OpenTelemetry metrics for every call
    /// (gRFC A66's instruments, through the SDK, read by a Prometheus
    /// exporter), to measure what they cost.
    #[arg(long)]
    pub otel: bool,

    /// What to send.
    #[arg(long, value_enum, default_value = "unary")]
    pub mode: Mode,

    /// The service to drive.
    #[arg(long, value_enum, default_value = "benchmark")]
    pub target: Target,

    /// Channels (each one HTTP/2 connection with pick_first, one per
    /// address with round_robin).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,

    /// Concurrent calls (or streams) per channel.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,

    /// Seconds to measure for, after the warm-up. Default 10.
    #[arg(long, conflicts_with = "requests")]
    pub duration: Option<f64>,

    /// Make exactly this many calls (stream messages in the streaming
    /// modes) across all workers, all measured, with no warm-up.
    #[arg(long)]
    pub requests: Option<u64>,

    /// Seconds of load before measuring, not counted.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,

    /// Bytes of payload in each request and in each response.
    #[arg(long, default_value_t = 0)]
    pub payload: usize,

    /// The server's process id: its CPU time and memory are read from /proc.
    /// Repeat it for several servers: the report has their sums.
    #[arg(long)]
    pub server_pid: Vec<u32>,

    /// Seconds to hold the connections idle in idle-connections mode.
    #[arg(long, default_value_t = 3.0)]
    pub hold: f64,

    /// Worker threads of the load generator's runtime (default: the CPUs
    /// this process may run on).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Print the report as one JSON object on stdout (the summary goes to
    /// stderr).
    #[arg(long)]
    pub json: bool,

    /// A label copied into the report.
    #[arg(long)]
    pub label: Option<String>,
}

impl Args {
    /// Arguments with every default, for `server`.
    pub fn new(server: impl Into<String>) -> Args {
        let mut args = Args::parse_from(["courier-bench"]);
        args.server = server.into();
        args
    }
}

/// Latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Mean.
    pub mean: f64,
    /// Maximum.
    pub max: f64,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The `--label`.
    pub label: Option<String>,
    /// The client library.
    pub client: ClientImpl,
    /// The mode.
    pub mode: Mode,
    /// The service.
    pub target: Target,
    /// The load-balancing policy.
    pub lb: Policy,
    /// Whether the channels had a retry policy.
    pub retry_policy: bool,
    /// Channels.
    pub connections: usize,
    /// Streams per connection.
    pub streams: usize,
    /// Payload bytes.
    pub payload: usize,
    /// The measured window.
    pub elapsed: Duration,
    /// Calls (or stream messages) answered successfully in the window.
    pub ok: u64,
    /// Failed calls by status code name.
    pub errors: BTreeMap<String, u64>,
    /// The first error message seen for each code.
    pub error_samples: BTreeMap<String, String>,
    /// Response payload bytes received in the window.
    pub bytes_received: u64,
    /// Latency of the successful calls.
    pub latency: Option<Latency>,
    /// The server's CPU time (user + system) in the window.
    pub server_cpu: Option<Duration>,
    /// The server's peak RSS at the end, in KiB.
    pub server_peak_rss_kib: Option<u64>,
    /// The server's RSS before the connections were opened (idle mode), KiB.
    pub server_rss_before_kib: Option<u64>,
    /// The server's RSS at the end (idle: with the connections held), KiB.
    pub server_rss_after_kib: Option<u64>,
    /// The load generator's own CPU time in the window.
    pub client_cpu: Option<Duration>,
    /// Idle mode: connections still open at the end of the hold.
    pub connections_held: Option<usize>,
}

impl Report {
    /// Successful calls (or messages) per second.
    pub fn qps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    /// All failed calls.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The server's CPU microseconds per successful call.
    pub fn server_cpu_us_per_rpc(&self) -> Option<f64> {
        per_rpc(self.server_cpu, self.ok)
    }

    /// The load generator's CPU microseconds per successful call.
    pub fn client_cpu_us_per_rpc(&self) -> Option<f64> {
        per_rpc(self.client_cpu, self.ok)
    }

    /// Idle mode: how much the server's RSS grew per connection, in KiB.
    pub fn rss_per_connection_kib(&self) -> Option<f64> {
        if self.mode != Mode::IdleConnections || self.connections == 0 {
            return None;
        }
        let (before, after) = (self.server_rss_before_kib?, self.server_rss_after_kib?);
        Some((after as f64 - before as f64) / self.connections as f64)
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        let mut j = JsonObject::default();
        j.string("label", self.label.as_deref());
        j.string("client", Some(self.client.name()));
        j.string("mode", Some(self.mode.name()));
        j.string("target", Some(self.target.name()));
        j.string("lb", Some(self.lb.name()));
        j.string("retry_policy", Some(if self.retry_policy { "yes" } else { "no" }));
        j.int("connections", Some(self.connections as u64));
        j.int("streams", Some(self.streams as u64));
        j.int("payload", Some(self.payload as u64));
        j.float("elapsed_s", Some(self.elapsed.as_secs_f64()));
        j.int("ok", Some(self.ok));
        j.int("errors_total", Some(self.error_count()));
        let mut errors = JsonObject::default();
        for (code, n) in &self.errors {
            errors.int(code, Some(*n));
        }
        j.raw("errors", &errors.finish());
        let mut samples = JsonObject::default();
        for (code, message) in &self.error_samples {
            samples.string(code, Some(message));
        }
        j.raw("error_samples", &samples.finish());
        j.float("qps", Some(self.qps()));
        j.int("bytes_received", Some(self.bytes_received));
        let lat = self.latency;
        j.float("p50_us", lat.map(|l| l.p50));
        j.float("p90_us", lat.map(|l| l.p90));
        j.float("p99_us", lat.map(|l| l.p99));
        j.float("p999_us", lat.map(|l| l.p999));
        j.float("mean_us", lat.map(|l| l.mean));
        j.float("max_us", lat.map(|l| l.max));
        j.float("server_cpu_s", self.server_cpu.map(|d| d.as_secs_f64()));
        j.float("server_cpu_us_per_rpc", self.server_cpu_us_per_rpc());
        j.int("server_peak_rss_kib", self.server_peak_rss_kib);
        j.int("server_rss_before_kib", self.server_rss_before_kib);
        j.int("server_rss_after_kib", self.server_rss_after_kib);
        j.float("rss_per_connection_kib", self.rss_per_connection_kib());
        j.int("connections_held", self.connections_held.map(|n| n as u64));
        j.float("client_cpu_s", self.client_cpu.map(|d| d.as_secs_f64()));
        j.float("client_cpu_us_per_rpc", self.client_cpu_us_per_rpc());
        j.finish()
    }

    /// A readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let label = self.label.as_deref().map(|l| format!(" [{l}]")).unwrap_or_default();
        let _ = writeln!(
            s,
            "{}{} on {} ({}), {} client: {} channel(s) x {} stream(s), payload {} B",
            self.mode.name(),
            label,
            self.target.name(),
            self.lb.name(),
            self.client.name(),
            self.connections,
            self.streams,
            self.payload
        );
        let _ = writeln!(
            s,
            "  {} ok in {:.2} s: {:.0} per second; {} errors",
            self.ok,
            self.elapsed.as_secs_f64(),
            self.qps(),
            self.error_count()
        );
        for (code, n) in &self.errors {
            let sample = self.error_samples.get(code).map(String::as_str).unwrap_or("");
            let _ = writeln!(s, "    {code}: {n} (first: {sample})");
        }
        if let Some(l) = self.latency {
            let _ = writeln!(
                s,
                "  latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  mean {:.1}  max {:.1}",
                l.p50, l.p90, l.p99, l.p999, l.mean, l.max
            );
        }
        if self.bytes_received > 0 {
            let mib = self.bytes_received as f64 / (1024.0 * 1024.0);
            let _ = writeln!(
                s,
                "  received {mib:.1} MiB of payload: {:.1} MiB/s",
                mib / self.elapsed.as_secs_f64().max(1e-9)
            );
        }
        if let Some(cpu) = self.server_cpu_us_per_rpc() {
            let _ = writeln!(s, "  server CPU: {cpu:.2} us per call");
        }
        if let Some(cpu) = self.client_cpu_us_per_rpc() {
            let _ = writeln!(s, "  client CPU ({}): {cpu:.2} us per call", self.client.name());
        }
        if let Some(rss) = self.server_peak_rss_kib {
            let _ = writeln!(s, "  server peak RSS: {:.1} MiB", rss as f64 / 1024.0);
        }
        if let Some(per) = self.rss_per_connection_kib() {
            let _ = writeln!(
                s,
                "  server RSS {} KiB -> {} KiB with {} connections held: {per:.1} KiB per connection",
                self.server_rss_before_kib.unwrap_or(0),
                self.server_rss_after_kib.unwrap_or(0),
                self.connections_held.unwrap_or(0)
            );
        }
        s
    }
}

fn per_rpc(cpu: Option<Duration>, ok: u64) -> Option<f64> {
    let cpu = cpu?;
    (ok > 0).then(|| cpu.as_secs_f64() * 1e6 / ok as f64)
}

/// A minimal JSON object writer: strings, numbers, null.
#[derive(Default)]
struct JsonObject(String);

impl JsonObject {
    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        push_json_string(&mut self.0, key);
        self.0.push(':');
    }

    fn raw(&mut self, key: &str, value: &str) {
        self.key(key);
        self.0.push_str(value);
    }

    fn string(&mut self, key: &str, value: Option<&str>) {
        self.key(key);
        match value {
            Some(v) => push_json_string(&mut self.0, v),
            None => self.0.push_str("null"),
        }
    }

    fn int(&mut self, key: &str, value: Option<u64>) {
        self.key(key);
        match value {
            Some(v) => {
                let _ = write!(self.0, "{v}");
            }
            None => self.0.push_str("null"),
        }
    }

    fn float(&mut self, key: &str, value: Option<f64>) {
        self.key(key);
        match value {
            Some(v) if v.is_finite() => {
                let _ = write!(self.0, "{v:.3}");
            }
            _ => self.0.push_str("null"),
        }
    }

    fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Per-shard results: workers record into one of a few shards, so that
/// ten thousand workers do not need ten thousand histograms.
struct Stats {
    latency_ns: Histogram<u64>,
    ok: u64,
    bytes: u64,
    /// Failed calls by code, with the first message seen for the code.
    errors: BTreeMap<&'static str, (u64, String)>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            // 1 ns to 10 minutes, 3 significant digits.
            latency_ns: Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid bounds"),
            ok: 0,
            bytes: 0,
            errors: BTreeMap::new(),
        }
    }
}

const SHARDS: usize = 16;

/// What the workers and the coordinator share.
struct Shared {
    phase: AtomicU8,
    /// With `--requests`: calls left to start.
    tokens: Option<AtomicI64>,
    shards: Vec<Mutex<Stats>>,
}

impl Shared {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// Whether a worker may start another call (`None`: stop), and whether
    /// it took one of the `--requests` tokens.
    fn begin(&self) -> Option<bool> {
        match &self.tokens {
            Some(tokens) => (tokens.fetch_sub(1, Ordering::AcqRel) > 0).then_some(true),
            None => (self.phase() != STOP).then_some(false),
        }
    }

    /// Whether a call that just finished is counted: with `--requests`, the
    /// calls that took a token; otherwise those that finish while measuring.
    fn counts(&self, claimed: bool) -> bool {
        if self.tokens.is_some() {
            claimed
        } else {
            self.phase() == MEASURE
        }
    }

    fn record_ok(&self, worker: usize, latency: Duration, bytes: usize) {
        let mut s = self.shards[worker % SHARDS].lock().unwrap_or_else(|e| e.into_inner());
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        s.latency_ns.saturating_record(ns);
        s.ok += 1;
        s.bytes += bytes as u64;
    }

    fn record_error(&self, worker: usize, status: &Status) {
        let mut s = self.shards[worker % SHARDS].lock().unwrap_or_else(|e| e.into_inner());
        let entry = s
            .errors
            .entry(status.code().name())
            .or_insert_with(|| (0, status.message().to_string()));
        entry.0 += 1;
    }
}

/// A client of the chosen service.
#[derive(Clone)]
enum Client {
    Benchmark(BenchmarkServiceClient),
    Test(TestServiceClient),
}

impl Client {
    fn new(channel: Channel, target: Target) -> Client {
        match target {
            Target::Benchmark => Client::Benchmark(BenchmarkServiceClient::new(channel)),
            Target::Test => Client::Test(TestServiceClient::new(channel)),
        }
    }

    /// One UnaryCall (or EmptyCall); the response payload's size.
    async fn unary(&self, request: &SimpleRequest, empty: bool) -> Result<usize, Status> {
        match self {
            Client::Test(c) if empty => c.empty_call(Empty {}).await.map(|_| 0),
            Client::Test(c) => c.unary_call(request.clone()).await.map(|r| body_len(r.get_ref())),
            Client::Benchmark(_) if empty => Err(Status::unimplemented("EmptyCall needs --target test")),
            Client::Benchmark(c) => c.unary_call(request.clone()).await.map(|r| body_len(r.get_ref())),
        }
    }
}

fn body_len(r: &SimpleResponse) -> usize {
    r.payload.as_ref().map_or(0, |p| p.body.len())
}

fn tonic_body_len(r: &tonic_pb::SimpleResponse) -> usize {
    r.payload.as_ref().map_or(0, |p| p.body.len())
}

/// tonic's BenchmarkService client, on a tonic channel.
type TonicBenchClient = tonic_pb::benchmark_service_client::BenchmarkServiceClient<tonic::transport::Channel>;

/// A tonic status as Courier's, so that both clients' errors are counted
/// alike.
fn from_tonic(status: tonic::Status) -> Status {
    Status::new(courier::Code::from_i32(status.code() as i32), status.message())
}

/// One worker's unary call, made again and again: a client, its request,
/// and which method.
trait Caller: Send + 'static {
    /// One call; the response payload's size.
    fn call(&mut self) -> impl Future<Output = Result<usize, Status>> + Send;
}

/// Unary calls on the Courier client.
struct CourierCaller {
    client: Client,
    request: SimpleRequest,
    empty: bool,
}

impl Caller for CourierCaller {
    fn call(&mut self) -> impl Future<Output = Result<usize, Status>> + Send {
        self.client.unary(&self.request, self.empty)
    }
}

/// Unary calls on tonic's client.
struct TonicCaller {
    client: TonicBenchClient,
    request: tonic_pb::SimpleRequest,
}

impl Caller for TonicCaller {
    fn call(&mut self) -> impl Future<Output = Result<usize, Status>> + Send {
        let request = self.request.clone();
        async move {
            self.client
                .unary_call(request)
                .await
                .map(|r| tonic_body_len(r.get_ref()))
                .map_err(from_tonic)
        }
    }
}

/// The responses of a streaming call, on either client.
trait Responses<T>: Send {
    /// The next message, `None` at the end of the call.
    fn next_message(&mut self) -> impl Future<Output = Result<Option<T>, Status>> + Send;
}

impl<T: Send + 'static> Responses<T> for Streaming<T> {
    fn next_message(&mut self) -> impl Future<Output = Result<Option<T>, Status>> + Send {
        self.message()
    }
}

/// The future of tonic's `streaming_call`, the responses once it resolved.
type TonicOpening<T> = Pin<Box<dyn Future<Output = Result<tonic::Streaming<T>, Status>> + Send>>;

/// A tonic streaming call, opened on the first read. tonic's
/// `streaming_call` resolves only when the response headers have arrived,
/// and a server may send them with the first answer (Courier's does): were
/// the worker to wait for it before handing over its first message, neither
/// side would move. So the call's future is polled from the first read, by
/// which time the first message waits in the request channel.
// One per stream: the open call is kept inline, so that reading a message
// follows no extra pointer.
#[allow(clippy::large_enum_variant)]
enum TonicResponses<T> {
    Opening(TonicOpening<T>),
    Open(tonic::Streaming<T>),
    Failed,
}

impl<T: Send + 'static> Responses<T> for TonicResponses<T> {
    async fn next_message(&mut self) -> Result<Option<T>, Status> {
        if let TonicResponses::Opening(call) = self {
            match call.await {
                Ok(streaming) => *self = TonicResponses::Open(streaming),
                Err(status) => {
                    *self = TonicResponses::Failed;
                    return Err(status);
                }
            }
        }
        match self {
            TonicResponses::Open(streaming) => streaming.message().await.map_err(from_tonic),
            _ => Err(Status::internal("the call had failed")),
        }
    }
}

fn output_body_len(r: &StreamingOutputCallResponse) -> usize {
    r.payload.as_ref().map_or(0, |p| p.body.len())
}

/// The request stream of a streaming worker: messages handed over one at a
/// time (ping-pong), or a flood of copies of one message for as long as the
/// run goes on (streaming), each stamped with the moment it was taken.
pub struct Requests<T> {
    inner: RequestsInner<T>,
}

enum RequestsInner<T> {
    OneByOne(tokio::sync::mpsc::Receiver<T>),
    Flood {
        message: T,
        shared: Arc<Shared>,
        sent: Arc<Mutex<VecDeque<Instant>>>,
    },
}

impl<T: Clone + Unpin> Stream for Requests<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match &mut self.get_mut().inner {
            RequestsInner::OneByOne(rx) => rx.poll_recv(cx),
            RequestsInner::Flood { message, shared, sent } => {
                if shared.begin().is_none() {
                    return Poll::Ready(None);
                }
                sent.lock().unwrap_or_else(|e| e.into_inner()).push_back(Instant::now());
                Poll::Ready(Some(message.clone()))
            }
        }
    }
}

/// Pauses after a failed call, so that a dead server is not hammered.
async fn after_error() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn unary_worker(mut caller: impl Caller, shared: Arc<Shared>, worker: usize) {
    while let Some(claimed) = shared.begin() {
        let start = Instant::now();
        let result = caller.call().await;
        let latency = start.elapsed();
        match result {
            Ok(bytes) => {
                if shared.counts(claimed) {
                    shared.record_ok(worker, latency, bytes);
                }
            }
            Err(status) => {
                if shared.counts(claimed) {
                    shared.record_error(worker, &status);
                }
                after_error().await;
            }
        }
        let gap = CALL_GAP_US.load(Ordering::Relaxed);
        if gap > 0 {
            tokio::time::sleep(Duration::from_micros(gap)).await;
        }
    }
}

/// A worker on one stream at a time: ping-pong (`flood` false) or streaming
/// throughput (`flood` true). A stream that fails is counted as an error and
/// replaced.
async fn stream_worker<Req, Resp, S, Open, Fut>(
    open: Open,
    request: Req,
    body_len: fn(&Resp) -> usize,
    shared: Arc<Shared>,
    worker: usize,
    flood: bool,
) where
    Req: Clone + Unpin + Send + 'static,
    Resp: 'static,
    S: Responses<Resp>,
    Open: Fn(Requests<Req>) -> Fut,
    Fut: Future<Output = Result<S, Status>>,
{
    let by_count = shared.tokens.is_some();
    'calls: while shared.phase() != STOP {
        if shared.tokens.as_ref().is_some_and(|t| t.load(Ordering::Acquire) <= 0) {
            break;
        }
        let sent = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let requests = Requests {
            inner: if flood {
                RequestsInner::Flood {
                    message: request.clone(),
                    shared: shared.clone(),
                    sent: sent.clone(),
                }
            } else {
                RequestsInner::OneByOne(rx)
            },
        };
        let mut responses = match open(requests).await {
            Ok(r) => r,
            Err(status) => {
                if shared.counts(by_count) {
                    shared.record_error(worker, &status);
                }
                after_error().await;
                continue;
            }
        };
        if flood {
            drop(tx);
            loop {
                match responses.next_message().await {
                    Ok(Some(m)) => {
                        let stamped = sent.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                        if shared.counts(by_count) {
                            let latency = stamped.map_or(Duration::ZERO, |t| t.elapsed());
                            shared.record_ok(worker, latency, body_len(&m));
                        }
                    }
                    // The request stream ended (the run is over) and the
                    // server answered everything.
                    Ok(None) => continue 'calls,
                    Err(status) => {
                        if shared.counts(by_count) {
                            shared.record_error(worker, &status);
                        }
                        after_error().await;
                        continue 'calls;
                    }
                }
            }
        }
        while let Some(claimed) = shared.begin() {
            let start = Instant::now();
            if tx.send(request.clone()).await.is_err() {
                // The sending side is gone: the call failed; its status is
                // the next item of the responses.
                let status = match responses.next_message().await {
                    Err(status) => status,
                    Ok(_) => Status::unknown("the request stream closed"),
                };
                if shared.counts(claimed) {
                    shared.record_error(worker, &status);
                }
                after_error().await;
                continue 'calls;
            }
            match responses.next_message().await {
                Ok(Some(m)) => {
                    let latency = start.elapsed();
                    if shared.counts(claimed) {
                        shared.record_ok(worker, latency, body_len(&m));
                    }
                }
                Ok(None) => {
                    if shared.counts(claimed) {
                        shared.record_error(worker, &Status::internal("the stream ended before its answer"));
                    }
                    after_error().await;
                    continue 'calls;
                }
                Err(status) => {
                    if shared.counts(claimed) {
                        shared.record_error(worker, &status);
                    }
                    after_error().await;
                    continue 'calls;
                }
            }
        }
        // Half-close and read the end of the call.
        drop(tx);
        while let Ok(Some(_)) = responses.next_message().await {}
        break;
    }
}

fn simple_request(payload: usize) -> Result<SimpleRequest, String> {
    let body = crate::zeros(payload).ok_or_else(|| format!("payload is limited to {} bytes", crate::MAX_PAYLOAD))?;
    Ok(SimpleRequest {
        response_size: payload as i32,
        payload: Some(Payload { r#type: 0, body }),
        ..Default::default()
    })
}

fn output_request(payload: usize) -> Result<StreamingOutputCallRequest, String> {
    let body = crate::zeros(payload).ok_or_else(|| format!("payload is limited to {} bytes", crate::MAX_PAYLOAD))?;
    Ok(StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size: payload as i32,
            ..Default::default()
        }],
        payload: Some(Payload { r#type: 0, body }),
        ..Default::default()
    })
}

/// The SimpleRequest of [`simple_request`], as tonic's type.
fn tonic_simple_request(payload: usize) -> Result<tonic_pb::SimpleRequest, String> {
    let body = crate::zeros(payload).ok_or_else(|| format!("payload is limited to {} bytes", crate::MAX_PAYLOAD))?;
    Ok(tonic_pb::SimpleRequest {
        response_size: payload as i32,
        payload: Some(tonic_pb::Payload { r#type: 0, body }),
        ..Default::default()
    })
}

/// One connection of the load generator, on either client.
#[derive(Clone)]
enum Conn {
    Courier(Channel),
    Tonic(tonic::transport::Channel),
}

fn spawn_worker(
    conn: Conn,
    args: &Args,
    shared: Arc<Shared>,
    worker: usize,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let flood = args.mode == Mode::Streaming;
    let channel = match conn {
        Conn::Courier(channel) => channel,
        Conn::Tonic(channel) => {
            let client = TonicBenchClient::new(channel);
            return Ok(match args.mode {
                Mode::Unary => {
                    let request = tonic_simple_request(args.payload)?;
                    tokio::spawn(unary_worker(TonicCaller { client, request }, shared, worker))
                }
                Mode::PingPong | Mode::Streaming => {
                    let request = tonic_simple_request(args.payload)?;
                    let open = move |r: Requests<tonic_pb::SimpleRequest>| {
                        let mut c = client.clone();
                        let call: TonicOpening<tonic_pb::SimpleResponse> = Box::pin(async move {
                            c.streaming_call(r)
                                .await
                                .map(tonic::Response::into_inner)
                                .map_err(from_tonic)
                        });
                        std::future::ready(Ok::<_, Status>(TonicResponses::Opening(call)))
                    };
                    tokio::spawn(stream_worker(open, request, tonic_body_len, shared, worker, flood))
                }
                Mode::EmptyCall | Mode::IdleConnections => {
                    return Err(format!("--client tonic has no --mode {}", args.mode.name()));
                }
            });
        }
    };
    let client = Client::new(channel, args.target);
    Ok(match (args.mode, client) {
        (Mode::Unary | Mode::EmptyCall | Mode::IdleConnections, client) => {
            let request = simple_request(args.payload)?;
            let empty = args.mode == Mode::EmptyCall;
            tokio::spawn(unary_worker(CourierCaller { client, request, empty }, shared, worker))
        }
        (Mode::PingPong | Mode::Streaming, Client::Benchmark(c)) => {
            let request = simple_request(args.payload)?;
            let open = move |r: Requests<SimpleRequest>| {
                let c = c.clone();
                async move { c.streaming_call(r).await.map(courier::Response::into_inner) }
            };
            tokio::spawn(stream_worker(open, request, body_len, shared, worker, flood))
        }
        (Mode::PingPong | Mode::Streaming, Client::Test(c)) => {
            let request = output_request(args.payload)?;
            let open = move |r: Requests<StreamingOutputCallRequest>| {
                let c = c.clone();
                async move { c.full_duplex_call(r).await.map(courier::Response::into_inner) }
            };
            tokio::spawn(stream_worker(open, request, output_body_len, shared, worker, flood))
        }
    })
}

/// The channel target for `--server`: a target with a scheme the library
/// resolves as it is, and `host:port` as `http://host:port`.
fn server_uri(server: &str) -> String {
    let named = server.split_once(':').is_some_and(|(scheme, _)| {
        matches!(
            scheme.to_ascii_lowercase().as_str(),
            "dns" | "ipv4" | "ipv6" | "unix" | "unix-abstract" | "passthrough"
        )
    });
    if server.contains("://") || named {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

/// The OpenTelemetry metrics every channel records into, with `--otel`.
static OTEL: std::sync::OnceLock<courier::opentelemetry::OpenTelemetry> = std::sync::OnceLock::new();

/// Whether channels use fixed HTTP/2 windows, with `--fixed-windows`.
static FIXED_WINDOWS: AtomicBool = AtomicBool::new(false);

/// The wait between unary calls, in microseconds, with `--call-gap-us`.
static CALL_GAP_US: AtomicU64 = AtomicU64::new(0);

async fn connect(uri: &str, policy: Policy, retry_policy: bool) -> Result<Channel, Status> {
    let mut builder = Channel::builder(uri)
        .load_balancing(policy)
        .connect_timeout(Duration::from_secs(10));
    if FIXED_WINDOWS.load(Ordering::Relaxed) {
        let (stream, connection) = crate::FIXED_WINDOW_SIZES;
        builder = builder.http2_windows(stream, connection)?;
    }
    if let Some(otel) = OTEL.get() {
        builder = builder.stats_handler(otel.clone());
    }
    if retry_policy {
        let retry = RetryPolicy::new(
            5,
            Duration::from_millis(100),
            Duration::from_secs(1),
            2.0,
            [courier::Code::Unavailable],
        );
        builder =
            builder.service_config(ServiceConfig::new().method(MethodConfig::new([MethodName::all()]).retry(retry)));
    }
    builder.connect().await
}

/// A tonic channel to `uri`: one HTTP/2 connection, made now, with
/// TCP_NODELAY and tonic's other defaults.
async fn connect_tonic(uri: &str) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(uri.to_string())
        .map_err(|e| format!("tonic cannot use {uri}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {uri} with tonic: {e} ({e:?})"))
}

/// What `--client tonic` cannot do, refused before anything connects.
fn check_tonic_args(args: &Args, uri: &str) -> Result<(), String> {
    if args.target != Target::Benchmark {
        return Err("--client tonic drives BenchmarkService only (--target benchmark)".into());
    }
    if matches!(args.mode, Mode::EmptyCall | Mode::IdleConnections) {
        return Err(format!(
            "--client tonic makes unary, ping-pong and streaming calls, not --mode {}",
            args.mode.name()
        ));
    }
    if args.lb.name() != "pick_first" || args.retry_policy {
        return Err("--client tonic has no --lb round_robin or --retry-policy".into());
    }
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(format!(
            "--client tonic needs one address (host:port or http://host:port), not {uri}"
        ));
    }
    Ok(())
}

/// The servers' CPU time: the sum over `pids`, `None` without any or when
/// one cannot be read.
fn servers_cpu(pids: &[u32]) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| procfs::cpu_time(pid)).sum()
}

/// The sum of a memory figure over `pids`, as [`servers_cpu`].
fn servers_kib(pids: &[u32], read: fn(u32) -> Option<u64>) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| read(pid)).sum()
}

/// Runs the load the arguments describe and reports on it.
///
/// # Errors
///
/// Arguments that do not fit together, or a server that cannot be reached.
pub async fn run(args: &Args) -> Result<Report, String> {
    FIXED_WINDOWS.store(args.fixed_windows, Ordering::Relaxed);
    CALL_GAP_US.store(args.call_gap_us, Ordering::Relaxed);
    if args.otel {
        OTEL.get_or_init(crate::courier_server::metrics);
    }
    if args.mode == Mode::EmptyCall && args.target != Target::Test {
        return Err("--mode empty-call needs --target test".into());
    }
    if args.connections == 0 || args.streams == 0 {
        return Err("--connections and --streams must be at least 1".into());
    }
    if args.payload > crate::MAX_PAYLOAD {
        return Err(format!("--payload is limited to {} bytes", crate::MAX_PAYLOAD));
    }
    procfs::raise_fd_limit();
    let uri = server_uri(&args.server);
    if args.client == ClientImpl::Tonic {
        check_tonic_args(args, &uri)?;
    }
    if args.mode == Mode::IdleConnections {
        return idle_connections(args, &uri).await;
    }
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(match args.client {
            ClientImpl::Courier => Conn::Courier(
                connect(&uri, args.lb.clone(), args.retry_policy)
                    .await
                    .map_err(|e| format!("cannot connect to {uri}: {e}"))?,
            ),
            ClientImpl::Tonic => Conn::Tonic(connect_tonic(&uri).await?),
        });
    }
    let by_count = args.requests.is_some();
    let warmup = if by_count {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(args.warmup.max(0.0))
    };
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(if warmup.is_zero() { MEASURE } else { WARMUP }),
        tokens: args
            .requests
            .map(|n| AtomicI64::new(i64::try_from(n).unwrap_or(i64::MAX))),
        shards: (0..SHARDS).map(|_| Mutex::new(Stats::new())).collect(),
    });
    let pids = &args.server_pid;
    let server_cpu = || servers_cpu(pids);

    let mut cpu_before = (server_cpu(), procfs::self_cpu_time());
    let mut start = Instant::now();
    let mut workers = Vec::with_capacity(args.connections * args.streams);
    for (c, channel) in channels.iter().enumerate() {
        for s in 0..args.streams {
            workers.push(spawn_worker(
                channel.clone(),
                args,
                shared.clone(),
                c * args.streams + s,
            )?);
        }
    }
    let end;
    let cpu_after;
    if by_count {
        for w in workers {
            let _ = w.await;
        }
        end = Instant::now();
        cpu_after = (server_cpu(), procfs::self_cpu_time());
    } else {
        if !warmup.is_zero() {
            tokio::time::sleep(warmup).await;
            cpu_before = (server_cpu(), procfs::self_cpu_time());
            start = Instant::now();
            shared.phase.store(MEASURE, Ordering::Release);
        }
        tokio::time::sleep(Duration::from_secs_f64(args.duration.unwrap_or(10.0).max(0.0))).await;
        shared.phase.store(STOP, Ordering::Release);
        end = Instant::now();
        cpu_after = (server_cpu(), procfs::self_cpu_time());
        // Let the calls in flight finish; give up on stragglers.
        let finish = async {
            for w in &mut workers {
                let _ = w.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), finish).await.is_err() {
            for w in &workers {
                w.abort();
            }
        }
    }
    drop(channels);
    let mut report = collect(args, &shared, end - start);
    report.server_cpu = cpu_after.0.zip(cpu_before.0).map(|(a, b)| a.saturating_sub(b));
    report.client_cpu = cpu_after.1.zip(cpu_before.1).map(|(a, b)| a.saturating_sub(b));
    report.server_peak_rss_kib = servers_kib(pids, procfs::peak_rss_kib);
    report.server_rss_after_kib = servers_kib(pids, procfs::rss_kib);
    Ok(report)
}

fn collect(args: &Args, shared: &Shared, elapsed: Duration) -> Report {
    let mut all = Stats::new();
    for shard in &shared.shards {
        let s = shard.lock().unwrap_or_else(|e| e.into_inner());
        let _ = all.latency_ns.add(&s.latency_ns);
        all.ok += s.ok;
        all.bytes += s.bytes;
        for (code, (n, message)) in &s.errors {
            all.errors.entry(code).or_insert_with(|| (0, message.clone())).0 += n;
        }
    }
    let h = &all.latency_ns;
    let us = |ns: u64| ns as f64 / 1000.0;
    let latency = (!h.is_empty()).then(|| Latency {
        p50: us(h.value_at_quantile(0.5)),
        p90: us(h.value_at_quantile(0.9)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        mean: h.mean() / 1000.0,
        max: us(h.max()),
    });
    Report {
        label: args.label.clone(),
        client: args.client,
        mode: args.mode,
        target: args.target,
        lb: args.lb.clone(),
        retry_policy: args.retry_policy,
        connections: args.connections,
        streams: args.streams,
        payload: args.payload,
        elapsed,
        ok: all.ok,
        errors: all.errors.iter().map(|(k, v)| (k.to_string(), v.0)).collect(),
        error_samples: all.errors.into_iter().map(|(k, v)| (k.to_string(), v.1)).collect(),
        bytes_received: all.bytes,
        latency,
        server_cpu: None,
        server_peak_rss_kib: None,
        server_rss_before_kib: None,
        server_rss_after_kib: None,
        client_cpu: None,
        connections_held: None,
    }
}

/// Opens `--connections` connections in batches, makes one call on each,
/// holds them all idle for `--hold` seconds and reads the server's RSS
/// before and after.
async fn idle_connections(args: &Args, uri: &str) -> Result<Report, String> {
    const BATCH: usize = 50;
    let pids = &args.server_pid;
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(MEASURE),
        tokens: None,
        shards: (0..SHARDS).map(|_| Mutex::new(Stats::new())).collect(),
    });
    let request = simple_request(args.payload)?;
    let rss_before = servers_kib(pids, procfs::rss_kib);
    let cpu_before = (servers_cpu(pids), procfs::self_cpu_time());
    let start = Instant::now();
    let mut channels = Vec::with_capacity(args.connections);
    let mut opened = 0;
    while opened < args.connections {
        let n = BATCH.min(args.connections - opened);
        let mut batch = Vec::with_capacity(n);
        for i in 0..n {
            let uri = uri.to_string();
            let request = request.clone();
            let shared = shared.clone();
            let target = args.target;
            let lb = args.lb.clone();
            let retry_policy = args.retry_policy;
            let worker = opened + i;
            batch.push(tokio::spawn(async move {
                let channel = match connect(&uri, lb, retry_policy).await {
                    Ok(c) => c,
                    Err(status) => {
                        shared.record_error(worker, &status);
                        return None;
                    }
                };
                let client = Client::new(channel.clone(), target);
                let t = Instant::now();
                match client.unary(&request, false).await {
                    Ok(bytes) => shared.record_ok(worker, t.elapsed(), bytes),
                    Err(status) => shared.record_error(worker, &status),
                }
                Some(channel)
            }));
        }
        for handle in batch {
            if let Ok(Some(channel)) = handle.await {
                channels.push(channel);
            }
        }
        opened += n;
    }
    tokio::time::sleep(Duration::from_secs_f64(args.hold.max(0.0))).await;
    let rss_after = servers_kib(pids, procfs::rss_kib);
    let held = channels.iter().filter(|c| c.is_connected()).count();
    let elapsed = start.elapsed();
    let cpu_after = (servers_cpu(pids), procfs::self_cpu_time());
    drop(channels);
    let mut report = collect(args, &shared, elapsed);
    report.server_cpu = cpu_after.0.zip(cpu_before.0).map(|(a, b)| a.saturating_sub(b));
    report.client_cpu = cpu_after.1.zip(cpu_before.1).map(|(a, b)| a.saturating_sub(b));
    report.server_peak_rss_kib = servers_kib(pids, procfs::peak_rss_kib);
    report.server_rss_before_kib = rss_before;
    report.server_rss_after_kib = rss_after;
    report.connections_held = Some(held);
    Ok(report)
}

/// Runs the load generator on a runtime of its own, as the binary does.
///
/// # Errors
///
/// As [`run`], or a runtime that cannot be built.
pub fn run_blocking(args: &Args) -> Result<Report, String> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build the runtime: {e}"))?;
    let args = args.clone();
    runtime
        .block_on(async move { tokio::spawn(async move { run(&args).await }).await })
        .map_err(|e| format!("load generator failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_well_formed() {
        let mut args = Args::new("127.0.0.1:1");
        args.label = Some("a \"quoted\"\nlabel".into());
        let shared = Shared {
            phase: AtomicU8::new(MEASURE),
            tokens: None,
            shards: (0..SHARDS).map(|_| Mutex::new(Stats::new())).collect(),
        };
        shared.record_ok(0, Duration::from_micros(100), 10);
        shared.record_ok(1, Duration::from_micros(300), 10);
        shared.record_error(2, &Status::unavailable("gone"));
        let report = collect(&args, &shared, Duration::from_secs(2));
        assert_eq!(report.ok, 2);
        assert_eq!(report.qps(), 1.0);
        let json = report.to_json();
        assert!(
            json.starts_with("{\"label\":\"a \\\"quoted\\\"\\u000alabel\""),
            "{json}"
        );
        assert!(json.contains("\"errors\":{\"UNAVAILABLE\":1}"), "{json}");
        assert!(json.contains("\"server_cpu_us_per_rpc\":null"), "{json}");
        assert!(json.contains("\"client\":\"courier\""), "{json}");
        assert!(json.ends_with('}'));
    }

    #[test]
    fn request_tokens_bound_the_calls() {
        let shared = Shared {
            phase: AtomicU8::new(MEASURE),
            tokens: Some(AtomicI64::new(2)),
            shards: Vec::new(),
        };
        assert_eq!(shared.begin(), Some(true));
        assert_eq!(shared.begin(), Some(true));
        assert_eq!(shared.begin(), None);
        assert!(shared.counts(true));
        assert!(!shared.counts(false));
    }
}
