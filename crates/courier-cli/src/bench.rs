//! `courier bench ADDR pkg.Service/Method`: load for one method, then a
//! summary.
//!
//! `-c` channels carry `--concurrency` calls in flight between them (each
//! call waits for its predecessor on the same worker), until `-n` calls have
//! been made or `-z` has passed. A channel is one connection with the default
//! `--lb pick_first`; with `--lb round_robin` it keeps one to every address
//! the target resolves to (`ipv4:127.0.0.1:5001,127.0.0.1:5002`, or a DNS
//! name with several records) and rotates its calls over them. The request
//! (`-d`, as for `call`) is encoded once; responses are counted, not
//! decoded. Every kind of method works: a
//! streaming call counts as one call, from its start until its last response.
//!
//! On a terminal a progress bar shows on standard error. The summary gives
//! the calls per second, the latency of successful calls (fastest, average,
//! slowest, percentiles and a histogram), the count of each status code and
//! the most common errors; `--format json` gives the same as one JSON object.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use courier::client::MethodPath;
use courier::client::balancer::Policy;
use courier::codec::{Codec, Decoder, Encoder};
use courier::{Channel, Code, Request, Status};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message as _;
use serde_json::json;

use crate::call::resolve_method;
use crate::connect::{ConnectArgs, connect, parse_duration};
use crate::error::{Error, Result, status_line};
use crate::input::Input;
use crate::source::{SourceArgs, open};

/// `courier bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  courier bench localhost:50051 helloworld.Greeter/SayHello -d '{\"name\": \"Ada\"}' -n 10000
  courier bench localhost:50051 helloworld.Greeter/SayHello -c 4 --concurrency 100 -z 30s --format json
  courier bench ipv4:127.0.0.1:5001,127.0.0.1:5002 helloworld.Greeter/SayHello --lb round_robin -z 10s")]
pub struct BenchArgs {
    /// The server: HOST:PORT, http(s)://HOST:PORT, or a target such as
    /// dns:///HOST:PORT, ipv4:ADDR:PORT,ADDR:PORT, ipv6:[ADDR]:PORT,
    /// unix:PATH, unix-abstract:NAME or passthrough:///HOST:PORT.
    pub addr: String,
    /// The method: pkg.Service/Method.
    pub method: String,
    /// The request as JSON, as for `call` (@FILE, @-, or standard input).
    #[arg(short = 'd', long = "data", value_name = "JSON")]
    pub data: Option<String>,
    /// How many channels to open: each is one connection with pick_first,
    /// and one per address with round_robin.
    #[arg(short = 'c', long = "connections", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The load-balancing policy of each channel.
    /// `pick_first` or `round_robin` (or a policy the program registered).
    #[arg(long, value_name = "POLICY", default_value = "pick_first")]
    pub lb: Policy,
    /// How many calls to keep in flight, spread over the connections.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// How many calls to make in all (200 unless -z is given).
    #[arg(short = 'n', long = "total", value_name = "N", conflicts_with = "duration",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub total: Option<u64>,
    /// Make calls for this long instead (such as 10s, 1m).
    #[arg(short = 'z', long = "duration", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Fail each call with DEADLINE_EXCEEDED after this long.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// How to print the summary.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// The summary's format.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON object.
    Json,
}

/// When the run stops.
#[derive(Clone, Copy)]
enum Stop {
    Count(u64),
    After(Duration),
}

/// The shape of the method's calls.
#[derive(Clone, Copy)]
enum Shape {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidi,
}

/// Runs `courier bench`.
pub async fn run(mut args: BenchArgs) -> Result<()> {
    args.connect.lb = Some(args.lb.clone());
    if args.concurrency < args.connections {
        return Err(Error::msg(format!(
            "--concurrency ({}) must be at least the number of connections (-c {})",
            args.concurrency, args.connections
        )));
    }
    let input = Input::new(args.data.as_deref())?;
    let (first, mut source, _) = open(&args.addr, &args.connect, &args.source).await?;
    let method = resolve_method(&mut source, &args.method).await?;
    let shape = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => Shape::Unary,
        (false, true) => Shape::ServerStreaming,
        (true, false) => Shape::ClientStreaming,
        (true, true) => Shape::Bidi,
    };
    let mut messages = input.read_all(&method.input())?;
    if !method.is_client_streaming() {
        if messages.len() > 1 {
            return Err(Error::msg(format!(
                "{} takes one request message, but {} were given",
                method.full_name(),
                messages.len()
            )));
        }
        if messages.is_empty() {
            messages.push(prost_reflect::DynamicMessage::new(method.input()));
        }
    }
    let requests: Arc<[Bytes]> = messages.iter().map(|m| Bytes::from(m.encode_to_vec())).collect();
    let path = MethodPath::parse(format!("/{}/{}", method.parent_service().full_name(), method.name()))
        .map_err(|s| Error::msg(s.message()))?;

    // The first channel comes from `open`.
    let mut channels = vec![first];
    for _ in 1..args.connections {
        channels.push(connect(&args.addr, &args.connect).await?.0);
    }

    let stop = match (args.total, args.duration) {
        (_, Some(d)) => Stop::After(d),
        (n, None) => Stop::Count(n.unwrap_or(200)),
    };
    let done = Arc::new(AtomicU64::new(0));
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = match stop {
        // A duration past what an Instant can hold: run until stopped.
        Stop::After(d) => start.checked_add(d),
        Stop::Count(_) => None,
    };
    let progress = Progress::start(stop, args.format, done.clone(), start);

    let mut workers = Vec::new();
    for i in 0..args.concurrency {
        let channel = channels[i as usize % channels.len()].clone();
        let worker = Worker {
            channel,
            path: path.clone(),
            requests: requests.clone(),
            shape,
            timeout: args.timeout,
            done: done.clone(),
            issued: issued.clone(),
            stop,
            deadline,
        };
        workers.push(tokio::spawn(worker.run()));
    }
    let mut stats = Stats::new();
    for worker in workers {
        match worker.await {
            Ok(s) => stats.merge(s),
            Err(e) => return Err(Error::msg(format!("a load worker failed: {e}"))),
        }
    }
    let elapsed = start.elapsed();
    progress.finish();

    let summary = Summary {
        method: method.full_name().to_string(),
        connections: args.connections,
        lb: args.lb.clone(),
        concurrency: args.concurrency,
        elapsed,
        stats,
    };
    match args.format {
        Format::Text => print!("{}", summary.text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary.json()).unwrap_or_default()),
    }
    if summary.stats.ok == 0 && summary.stats.calls() > 0 {
        let (error, _) = summary.stats.top_errors()[0];
        return Err(Error::msg(format!("every call failed; the most common error: {error}")));
    }
    Ok(())
}

/// One of the `--concurrency` loops of calls.
struct Worker {
    channel: Channel,
    path: MethodPath,
    requests: Arc<[Bytes]>,
    shape: Shape,
    timeout: Option<Duration>,
    done: Arc<AtomicU64>,
    issued: Arc<AtomicU64>,
    stop: Stop,
    deadline: Option<Instant>,
}

impl Worker {
    async fn run(self) -> Stats {
        let mut stats = Stats::new();
        loop {
            match self.stop {
                Stop::Count(n) => {
                    if self.issued.fetch_add(1, Ordering::Relaxed) >= n {
                        break;
                    }
                }
                Stop::After(_) => {
                    if self.deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
            }
            let started = Instant::now();
            let result = self.call().await;
            stats.record(started.elapsed(), result);
            self.done.fetch_add(1, Ordering::Relaxed);
        }
        stats
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(t) = self.timeout {
            request.set_timeout(t);
        }
        request
    }

    async fn call(&self) -> std::result::Result<(), Status> {
        let path = self.path.clone();
        let all = || tokio_stream::iter(self.requests.to_vec());
        match self.shape {
            Shape::Unary => {
                self.channel
                    .unary(self.request(self.requests[0].clone()), path, RawCodec)
                    .await?;
            }
            Shape::ServerStreaming => {
                let mut stream = self
                    .channel
                    .server_streaming(self.request(self.requests[0].clone()), path, RawCodec)
                    .await?
                    .into_inner();
                while stream.message().await?.is_some() {}
            }
            Shape::ClientStreaming => {
                self.channel
                    .client_streaming(self.request(all()), path, RawCodec)
                    .await?;
            }
            Shape::Bidi => {
                let mut stream = self
                    .channel
                    .streaming(self.request(all()), path, RawCodec)
                    .await?
                    .into_inner();
                while stream.message().await?.is_some() {}
            }
        }
        Ok(())
    }
}

/// Sends encoded messages as they are, and keeps responses undecoded.
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> std::result::Result<(), Status> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;

    fn decode(&mut self, src: Bytes) -> std::result::Result<Bytes, Status> {
        Ok(src)
    }
}

/// What the calls came to.
struct Stats {
    /// Latency of successful calls, in microseconds.
    latency: Histogram<u64>,
    ok: u64,
    /// Calls by status code.
    codes: BTreeMap<i32, u64>,
    /// Failed calls by `CODE: message`.
    errors: HashMap<String, u64>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            ok: 0,
            codes: BTreeMap::new(),
            errors: HashMap::new(),
        }
    }

    fn record(&mut self, elapsed: Duration, result: std::result::Result<(), Status>) {
        let code = match result {
            Ok(()) => {
                self.ok += 1;
                self.latency.saturating_record(elapsed.as_micros().max(1) as u64);
                Code::Ok
            }
            Err(status) => {
                *self.errors.entry(status_line(&status)).or_default() += 1;
                status.code()
            }
        };
        *self.codes.entry(code.as_i32()).or_default() += 1;
    }

    fn merge(&mut self, other: Stats) {
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        for (error, n) in other.errors {
            *self.errors.entry(error).or_default() += n;
        }
    }

    fn calls(&self) -> u64 {
        self.codes.values().sum()
    }

    /// Errors, most common first, at most ten.
    fn top_errors(&self) -> Vec<(&str, u64)> {
        let mut errors: Vec<(&str, u64)> = self.errors.iter().map(|(e, n)| (e.as_str(), *n)).collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        errors.truncate(10);
        errors
    }
}

const PERCENTILES: [(f64, &str); 6] = [
    (50.0, "p50"),
    (75.0, "p75"),
    (90.0, "p90"),
    (95.0, "p95"),
    (99.0, "p99"),
    (99.9, "p99.9"),
];

/// The end of a run.
struct Summary {
    method: String,
    connections: u32,
    lb: Policy,
    concurrency: u32,
    elapsed: Duration,
    stats: Stats,
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Summary {
    fn qps(&self) -> f64 {
        self.stats.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Ten equal buckets from the fastest to the slowest call: (upper
    /// bound in µs, count).
    fn histogram(&self) -> Vec<(u64, u64)> {
        let h = &self.stats.latency;
        if h.is_empty() {
            return Vec::new();
        }
        let (low, high) = (h.min(), h.max());
        let buckets = if high == low { 1 } else { 10 };
        let width = (high - low) as f64 / buckets as f64;
        let mut counts = vec![0u64; buckets];
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            let i = if width == 0.0 {
                0
            } else {
                (((value.saturating_sub(low)) as f64 / width).ceil() as usize).saturating_sub(1)
            };
            counts[i.min(buckets - 1)] += v.count_at_value();
        }
        counts
            .into_iter()
            .enumerate()
            .map(|(i, n)| (low + (width * (i + 1) as f64).round() as u64, n))
            .collect()
    }

    fn text(&self) -> String {
        let s = &self.stats;
        let h = &s.latency;
        let calls = s.calls();
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line("Summary:".into());
        line(format!("  Method:        {}", self.method));
        line(format!(
            "  Calls:         {calls} ({} OK, {} failed)",
            s.ok,
            calls - s.ok
        ));
        line(format!("  Total time:    {:.3} s", self.elapsed.as_secs_f64()));
        line(format!("  Calls/sec:     {:.1}", self.qps()));
        line(format!(
            "  Connections:   {}, concurrency {}",
            self.connections, self.concurrency
        ));
        line(format!("  Balancing:     {}", self.lb.name()));
        if !h.is_empty() {
            line(String::new());
            line("Latency of successful calls:".into());
            line(format!("  Fastest:  {:.3} ms", ms(h.min())));
            line(format!("  Average:  {:.3} ms", h.mean() / 1000.0));
            line(format!("  Slowest:  {:.3} ms", ms(h.max())));
            for (q, name) in PERCENTILES {
                line(format!("  {name:<8}  {:.3} ms", ms(h.value_at_percentile(q))));
            }
            line(String::new());
            line("Latency histogram:".into());
            let buckets = self.histogram();
            let most = buckets.iter().map(|b| b.1).max().unwrap_or(1).max(1);
            let width = buckets.iter().map(|b| b.1.to_string().len()).max().unwrap_or(1);
            for (upper, n) in buckets {
                let bar = "■".repeat(((n as f64 / most as f64) * 40.0).round() as usize);
                line(format!("  {:>10.3} ms [{n:>width$}] |{bar}", ms(upper)));
            }
        }
        line(String::new());
        line("Status codes:".into());
        for (code, n) in &s.codes {
            line(format!("  {:<20} {n}", Code::from_i32(*code).name()));
        }
        let errors = s.top_errors();
        if !errors.is_empty() {
            line(String::new());
            line("Errors:".into());
            for (error, n) in errors {
                line(format!("  {n:>8}  {error}"));
            }
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let s = &self.stats;
        let h = &s.latency;
        let latency = if h.is_empty() {
            serde_json::Value::Null
        } else {
            let mut latency = serde_json::Map::new();
            latency.insert("fastest".into(), json!(ms(h.min())));
            latency.insert("average".into(), json!(h.mean() / 1000.0));
            latency.insert("slowest".into(), json!(ms(h.max())));
            for (q, name) in PERCENTILES {
                latency.insert(name.into(), json!(ms(h.value_at_percentile(q))));
            }
            serde_json::Value::Object(latency)
        };
        let histogram: Vec<_> = self
            .histogram()
            .into_iter()
            .map(|(upper, n)| json!({"up_to_ms": ms(upper), "count": n}))
            .collect();
        let codes: serde_json::Map<String, serde_json::Value> = s
            .codes
            .iter()
            .map(|(code, n)| (Code::from_i32(*code).name().to_string(), json!(n)))
            .collect();
        let errors: Vec<_> = s
            .top_errors()
            .into_iter()
            .map(|(error, n)| json!({"error": error, "count": n}))
            .collect();
        json!({
            "method": self.method,
            "connections": self.connections,
            "load_balancing": self.lb.name(),
            "concurrency": self.concurrency,
            "calls": s.calls(),
            "ok": s.ok,
            "failed": s.calls() - s.ok,
            "total_seconds": self.elapsed.as_secs_f64(),
            "calls_per_second": self.qps(),
            "latency_ms": latency,
            "histogram": histogram,
            "status_codes": codes,
            "errors": errors,
        })
    }
}

/// The progress bar, drawn on standard error when it is a terminal.
struct Progress {
    bar: Option<ProgressBar>,
    finished: Arc<AtomicBool>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(stop: Stop, format: Format, done: Arc<AtomicU64>, start: Instant) -> Progress {
        let finished = Arc::new(AtomicBool::new(false));
        if format != Format::Text || !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                finished,
                ticker: None,
            };
        }
        let (length, template) = match stop {
            Stop::Count(n) => (n, "{bar:40.cyan/blue} {pos}/{len} calls  {per_sec}  eta {eta}"),
            Stop::After(d) => (d.as_millis() as u64, "{bar:40.cyan/blue} {msg}"),
        };
        let bar = ProgressBar::new(length);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
        }
        let ticker = {
            let bar = bar.clone();
            let finished = finished.clone();
            tokio::spawn(async move {
                while !finished.load(Ordering::Relaxed) {
                    let calls = done.load(Ordering::Relaxed);
                    match stop {
                        Stop::Count(_) => bar.set_position(calls),
                        Stop::After(d) => {
                            let elapsed = start.elapsed().min(d);
                            bar.set_position(elapsed.as_millis() as u64);
                            bar.set_message(format!(
                                "{calls} calls  {:.1}/{:.1} s",
                                elapsed.as_secs_f64(),
                                d.as_secs_f64()
                            ));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Progress {
            bar: Some(bar),
            finished,
            ticker: Some(ticker),
        }
    }

    fn finish(self) {
        self.finished.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
