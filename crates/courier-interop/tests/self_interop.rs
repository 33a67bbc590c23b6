//! Runs every test case of the Courier interop client against the Courier
//! interop server: the real programs, over a loopback socket.

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use courier_interop::client::TEST_CASES;

const SERVER: &str = env!("CARGO_BIN_EXE_courier-interop-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_courier-interop-client");

/// How long one client run may take before it is killed.
const CLIENT_LIMIT: Duration = Duration::from_secs(180);

/// A child process, killed when dropped, so that a failing test leaves no
/// server behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Starts the server on `port` and waits until it accepts connections.
fn start_server(port: u16) -> Killed {
    start_server_with(port, &["--use_tls=false"])
}

/// Starts the server on `port` with more flags.
fn start_server_with(port: u16, flags: &[&str]) -> Killed {
    let child = Command::new(SERVER)
        .args(["--port", &port.to_string()])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start courier-interop-server");
    let mut server = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        if let Some(status) = server.0.try_wait().expect("poll the server") {
            panic!("courier-interop-server exited early with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "courier-interop-server did not listen on port {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the client with `args`; its exit status and its output (stdout and
/// stderr). Kills it after [`CLIENT_LIMIT`].
fn run_client(args: &[&str]) -> (ExitStatus, String) {
    let child = Command::new(CLIENT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start courier-interop-client");
    let mut client = Killed(child);
    let deadline = Instant::now() + CLIENT_LIMIT;
    let status = loop {
        if let Some(status) = client.0.try_wait().expect("poll the client") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "courier-interop-client {args:?} ran over {CLIENT_LIMIT:?}"
        );
        thread::sleep(Duration::from_millis(10));
    };
    let mut output = String::new();
    if let Some(out) = client.0.stdout.as_mut() {
        let _ = out.read_to_string(&mut output);
    }
    if let Some(err) = client.0.stderr.as_mut() {
        let _ = err.read_to_string(&mut output);
    }
    (status, output)
}

#[test]
fn every_case_passes_against_the_courier_server() {
    let port = free_port();
    let _server = start_server(port);
    let port = port.to_string();
    let mut failures = Vec::new();
    for case in TEST_CASES {
        let (status, output) = run_client(&[
            "--server_host=127.0.0.1",
            "--server_port",
            &port,
            "--test_case",
            case,
            "--use_tls=false",
        ]);
        if !status.success() {
            failures.push(format!("{case} ({status}): {}", output.trim()));
        }
    }
    assert!(failures.is_empty(), "failed cases:\n{}", failures.join("\n"));
}

/// Writes a test CA and a server certificate for `*.test.example.com`,
/// made now, into `dir`: `ca.pem`, `server.pem`, `server.key`.
fn write_test_pki(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "interop test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["*.test.example.com".to_string()]).unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
}

#[test]
fn every_case_passes_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    write_test_pki(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let port = free_port();
    let cert = format!("--tls_cert_file={}", file("server.pem"));
    let key = format!("--tls_key_file={}", file("server.key"));
    let _server = start_server_with(port, &["--use_tls", &cert, &key]);
    let port = port.to_string();
    let ca = format!("--ca_file={}", file("ca.pem"));
    let mut failures = Vec::new();
    for case in TEST_CASES {
        let (status, output) = run_client(&[
            "--server_host=127.0.0.1",
            "--server_port",
            &port,
            "--test_case",
            case,
            "--use_tls=true",
            "--use_test_ca=true",
            &ca,
            "--server_host_override=foo.test.example.com",
        ]);
        if !status.success() {
            failures.push(format!("{case} ({status}): {}", output.trim()));
        }
    }
    assert!(failures.is_empty(), "failed cases over TLS:\n{}", failures.join("\n"));

    // The wrong server name fails verification: one line, exit 1.
    let (status, output) = run_client(&[
        "--server_port",
        &port,
        "--test_case=empty_unary",
        "--use_tls",
        &ca,
        "--server_host_override=other.example.com",
    ]);
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("TLS handshake"), "{output}");
}

#[test]
fn a_failing_case_exits_1_with_one_line() {
    // Nothing listens on a port that was just free.
    let port = free_port().to_string();
    let (status, output) = run_client(&["--server_port", &port, "--test_case", "large_unary"]);
    assert_eq!(status.code(), Some(1), "{output}");
    assert_eq!(output.trim_end().lines().count(), 1, "{output:?}");
    assert!(output.starts_with("large_unary: "), "{output}");

    let (status, output) = run_client(&["--server_port", &port, "--test_case", "no_such_case"]);
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.starts_with("no_such_case: unknown test case"), "{output}");
}
