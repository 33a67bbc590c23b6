//! grpc-go 1.33's interop binaries as peers (built by
//! `scripts/interop/install-go.sh` under `target/interop/go/bin`): found or
//! skipped, and started on a port of their own choosing, found through
//! /proc with [`listening_port`], since they print nothing once they
//! listen.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

use crate::{guard, listening_port};

/// The grpc-go binary `name` under `target/interop/go/bin`, or `None` to
/// skip (with a note) when it has not been built; with
/// `COURIER_REQUIRE_PEERS=1`, a missing binary panics instead.
pub fn go_binary(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/interop/go/bin")
        .join(name);
    if path.exists() {
        return Some(path);
    }
    let why = format!("{} does not exist (run scripts/interop/install-go.sh)", path.display());
    if std::env::var("COURIER_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("COURIER_REQUIRE_PEERS=1 but the grpc-go peer is unavailable: {why}");
    }
    eprintln!("note: skipping a grpc-go test: {why}");
    None
}

/// A running grpc-go server, killed when dropped.
pub struct GoServer {
    /// What the test calls this server, for messages.
    pub label: String,
    /// The port it listens on.
    pub port: u16,
    child: Child,
}

impl GoServer {
    /// Starts `binary` with `--port=port` and `args`; port 0 lets it bind a
    /// port of the kernel's choosing. The server binds the port itself, so
    /// no other process can take it between a choice and its use; a server
    /// restarted on its old port whose bind fails with EADDRINUSE (someone
    /// else holds the port for now) is started again until it binds.
    ///
    /// grpc-go's server prints nothing once it listens, so its listening
    /// socket is looked up in /proc until it appears.
    pub async fn start(binary: &Path, label: &str, args: &[String], port: u16) -> GoServer {
        let start = async {
            loop {
                let mut child = Command::new(binary)
                    .arg(format!("--port={port}"))
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
                let pid = child.id().expect("a running child has a pid");
                loop {
                    if let Some(bound) = listening_port(pid) {
                        assert!(
                            port == 0 || bound == port,
                            "asked for port {port}, listening on {bound}"
                        );
                        return GoServer {
                            label: label.to_string(),
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
                            "grpc-go's server {label} exited ({status}) before listening: {stderr}"
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
        guard(&format!("grpc-go's server {label} listening on port {port}"), start).await
    }

    /// Kills the server and gives back the port it listened on.
    pub async fn kill(mut self) -> u16 {
        self.child.kill().await.expect("kill the grpc-go server");
        self.port
    }
}
