//! A smoke run of the benchmark harness: the load generator drives both
//! bench servers briefly in every mode and gets answers without errors. It
//! asserts no timing: benchmarks are not tests.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use courier::client::balancer::Policy;
use courier_bench::loadgen::{Args, ClientImpl, Mode, Report, Target, run_blocking};

/// A bench server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    /// Kept open, so that the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(exe: &str) -> Server {
        Server::start_with(exe, &["--threads", "1"])
    }

    /// The server with `args` after `--port 0`.
    fn start_with(exe: &str, args: &[&str]) -> Server {
        let mut child = Command::new(exe)
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the bench server");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("read the listening line");
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("an address on the listening line")
            .to_string();
        Server {
            child,
            addr,
            _stdout: stdout,
        }
    }

    fn args(&self, mode: Mode, target: Target, payload: usize) -> Args {
        let mut args = Args::new(self.addr.clone());
        args.mode = mode;
        args.target = target;
        args.payload = payload;
        args.duration = Some(0.5);
        args.warmup = 0.1;
        args.threads = Some(1);
        args.server_pid = vec![self.child.id()];
        args
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check(report: &Report) {
    let summary = report.summary();
    assert!(report.ok > 0, "no successful calls:\n{summary}");
    assert_eq!(report.error_count(), 0, "errors:\n{summary}");
    assert!(report.latency.is_some(), "no latency:\n{summary}");
    assert!(report.server_peak_rss_kib.is_some_and(|kib| kib > 0), "{summary}");
    assert!(report.server_cpu.is_some(), "{summary}");
    let json = report.to_json();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
}

fn every_mode(server: &Server, target: Target) {
    for (mode, payload) in [
        (Mode::Unary, 0),
        (Mode::Unary, 1024),
        (Mode::PingPong, 16),
        (Mode::Streaming, 1024),
        (Mode::Streaming, 256 * 1024),
    ] {
        let mut args = server.args(mode, target, payload);
        args.connections = 2;
        args.streams = 4;
        check(&run_blocking(&args).unwrap_or_else(|e| panic!("{mode:?}: {e}")));
    }
}

#[test]
fn courier_server_every_mode() {
    let server = Server::start(env!("CARGO_BIN_EXE_courier-bench-server"));
    every_mode(&server, Target::Benchmark);
    every_mode(&server, Target::Test);
    check(&run_blocking(&server.args(Mode::EmptyCall, Target::Test, 0)).unwrap());

    // An exact number of calls, as the callgrind runs make them.
    let mut args = server.args(Mode::Unary, Target::Benchmark, 0);
    args.duration = None;
    args.requests = Some(100);
    args.streams = 3;
    let report = run_blocking(&args).unwrap();
    assert_eq!(report.ok, 100, "{}", report.summary());
    let mut args = server.args(Mode::PingPong, Target::Benchmark, 0);
    args.duration = None;
    args.requests = Some(50);
    let report = run_blocking(&args).unwrap();
    assert_eq!(report.ok, 50, "{}", report.summary());

    // Idle connections: all held, memory read.
    let mut args = server.args(Mode::IdleConnections, Target::Benchmark, 0);
    args.connections = 20;
    args.hold = 0.2;
    let report = run_blocking(&args).unwrap();
    assert_eq!(report.ok, 20, "{}", report.summary());
    assert_eq!(report.connections_held, Some(20), "{}", report.summary());
    assert!(report.rss_per_connection_kib().is_some(), "{}", report.summary());
}

/// `--runtime per-core`: two current-thread runtimes, each with its own
/// listener on the one port, answer calls on many connections (so that both
/// listeners get some), and the server stops cleanly on SIGTERM.
#[test]
fn courier_server_per_core_runtimes() {
    let mut server = Server::start_with(
        env!("CARGO_BIN_EXE_courier-bench-server"),
        &["--threads", "2", "--runtime", "per-core"],
    );
    for (mode, payload) in [(Mode::Unary, 0), (Mode::PingPong, 16), (Mode::Streaming, 1024)] {
        let mut args = server.args(mode, Target::Benchmark, payload);
        args.connections = 8;
        args.streams = 4;
        check(&run_blocking(&args).unwrap_or_else(|e| panic!("{mode:?}: {e}")));
    }
    let mut args = server.args(Mode::Unary, Target::Benchmark, 0);
    args.duration = None;
    args.requests = Some(100);
    args.connections = 8;
    let report = run_blocking(&args).unwrap();
    assert_eq!(report.ok, 100, "{}", report.summary());

    let pid = libc::pid_t::try_from(server.child.id()).expect("a pid");
    // SAFETY: kill(2) on the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = server.child.wait().expect("wait for the server");
    assert!(status.success(), "{status}");
}

#[test]
fn tonic_server_every_mode() {
    let server = Server::start(env!("CARGO_BIN_EXE_tonic-bench-server"));
    every_mode(&server, Target::Benchmark);
}

/// tonic's client, as `--client tonic`, against both servers: the modes it
/// has, and an exact number of calls.
#[test]
fn tonic_client_against_both_servers() {
    for exe in [
        env!("CARGO_BIN_EXE_courier-bench-server"),
        env!("CARGO_BIN_EXE_tonic-bench-server"),
    ] {
        let server = Server::start(exe);
        for (mode, payload) in [
            (Mode::Unary, 0),
            (Mode::Unary, 1024),
            (Mode::PingPong, 16),
            (Mode::Streaming, 1024),
        ] {
            let mut args = server.args(mode, Target::Benchmark, payload);
            args.client = ClientImpl::Tonic;
            args.connections = 2;
            args.streams = 4;
            let report = run_blocking(&args).unwrap_or_else(|e| panic!("{exe} {mode:?}: {e}"));
            check(&report);
            assert!(report.client_cpu.is_some(), "{}", report.summary());
            assert!(
                report.to_json().contains("\"client\":\"tonic\""),
                "{}",
                report.summary()
            );
        }
        let mut args = server.args(Mode::Unary, Target::Benchmark, 0);
        args.client = ClientImpl::Tonic;
        args.duration = None;
        args.requests = Some(100);
        args.streams = 3;
        let report = run_blocking(&args).unwrap();
        assert_eq!(report.ok, 100, "{}", report.summary());
    }
}

#[test]
fn bad_arguments_are_refused() {
    // Refused for the arguments themselves, before any connection (nothing
    // listens at the address either way).
    let mut args = Args::new("127.0.0.1:1");
    args.mode = Mode::EmptyCall;
    let err = run_blocking(&args).map(|r| r.summary()).unwrap_err();
    assert!(err.contains("--mode empty-call needs --target test"), "{err}");
    let mut args = Args::new("127.0.0.1:1");
    args.streams = 0;
    let err = run_blocking(&args).map(|r| r.summary()).unwrap_err();
    assert!(err.contains("--streams must be at least 1"), "{err}");
    let mut args = Args::new("127.0.0.1:1");
    args.client = ClientImpl::Tonic;
    args.target = Target::Test;
    let err = run_blocking(&args).map(|r| r.summary()).unwrap_err();
    assert!(err.contains("--client tonic drives BenchmarkService only"), "{err}");
    let mut args = Args::new("ipv4:127.0.0.1:1,127.0.0.1:2");
    args.client = ClientImpl::Tonic;
    let err = run_blocking(&args).map(|r| r.summary()).unwrap_err();
    assert!(err.contains("--client tonic needs one address"), "{err}");
}

#[test]
fn round_robin_over_two_servers_answers_every_call_and_sums_the_servers() {
    let exe = env!("CARGO_BIN_EXE_courier-bench-server");
    let (a, b) = (Server::start(exe), Server::start(exe));
    let mut args = Args::new(format!("ipv4:{},{}", a.addr, b.addr));
    args.lb = Policy::round_robin();
    args.requests = Some(200);
    args.streams = 4;
    args.threads = Some(1);
    args.server_pid = vec![a.child.id(), b.child.id()];
    let report = run_blocking(&args).unwrap();
    let summary = report.summary();
    assert_eq!(report.ok, 200, "{summary}");
    assert_eq!(report.error_count(), 0, "{summary}");
    assert!(report.to_json().contains("\"lb\":\"round_robin\""), "{summary}");
    // The servers' memory is the sum of both: more than either alone.
    let one = courier_bench::procfs::rss_kib(a.child.id()).unwrap();
    assert!(report.server_rss_after_kib.is_some_and(|kib| kib > one), "{summary}");
    assert!(report.client_cpu.is_some(), "{summary}");
}
