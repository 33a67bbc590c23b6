//! Runs every test case of the Courier interop client against the Courier
//! interop server: the real programs, over a loopback socket.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use courier_interop::client::TEST_CASES;
use courier_interop::server::LISTENING_PREFIX;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const SERVER: &str = env!("CARGO_BIN_EXE_courier-interop-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_courier-interop-client");

/// How long one client run may take before it is killed.
const CLIENT_LIMIT: Duration = Duration::from_secs(180);

/// How long the server may take to report its port.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A running server, killed when dropped, so that a failing test leaves no
/// server behind.
struct Server {
    port: u16,
    _child: Child,
    /// Kept open: the server must never write to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

/// Starts the server without TLS.
async fn start_server() -> Server {
    start_server_with(&["--use_tls=false"]).await
}

/// Starts the server on a port of its choosing (`--port 0`) with more
/// flags, and reads the port from the line it prints once it listens.
async fn start_server_with(flags: &[&str]) -> Server {
    let mut child = Command::new(SERVER)
        .args(["--port", "0"])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start courier-interop-server");
    let mut stdout = BufReader::new(child.stdout.take().expect("the server's stdout"));
    let mut line = String::new();
    let read = tokio::time::timeout(START_LIMIT, stdout.read_line(&mut line))
        .await
        .expect("courier-interop-server reported its address in time")
        .expect("read the server's stdout");
    assert!(read > 0, "courier-interop-server exited before listening");
    let addr: SocketAddr = line
        .trim_end()
        .strip_prefix(LISTENING_PREFIX)
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("not a listening line: {line:?}"));
    Server {
        port: addr.port(),
        _child: child,
        _stdout: stdout,
    }
}

/// Runs the client with `args`; its exit status and its output (stdout and
/// stderr). Kills it after [`CLIENT_LIMIT`].
async fn run_client(args: &[&str]) -> (ExitStatus, String) {
    let child = Command::new(CLIENT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start courier-interop-client");
    let output = tokio::time::timeout(CLIENT_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("courier-interop-client {args:?} ran over {CLIENT_LIMIT:?}"))
        .expect("wait for courier-interop-client");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status, text)
}

#[tokio::test]
async fn every_case_passes_against_the_courier_server() {
    let server = start_server().await;
    let port = server.port.to_string();
    let mut failures = Vec::new();
    for case in TEST_CASES {
        let (status, output) = run_client(&[
            "--server_host=127.0.0.1",
            "--server_port",
            &port,
            "--test_case",
            case,
            "--use_tls=false",
        ])
        .await;
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

#[tokio::test]
async fn every_case_passes_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    write_test_pki(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let cert = format!("--tls_cert_file={}", file("server.pem"));
    let key = format!("--tls_key_file={}", file("server.key"));
    let server = start_server_with(&["--use_tls", &cert, &key]).await;
    let port = server.port.to_string();
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
        ])
        .await;
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
    ])
    .await;
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("TLS handshake"), "{output}");
}

#[tokio::test]
async fn a_failing_case_exits_1_with_one_line() {
    // Nothing listens on a port bound by a socket that never listens, and no
    // other socket can take the port while it is bound, so the call fails.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = refusing.local_addr().unwrap().port().to_string();
    let (status, output) = run_client(&["--server_port", &port, "--test_case", "large_unary"]).await;
    assert_eq!(status.code(), Some(1), "{output}");
    assert_eq!(output.trim_end().lines().count(), 1, "{output:?}");
    assert!(output.starts_with("large_unary: "), "{output}");

    let (status, output) = run_client(&["--server_port", &port, "--test_case", "no_such_case"]).await;
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.starts_with("no_such_case: unknown test case"), "{output}");
}
