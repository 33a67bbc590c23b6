//! Third-party peers the tests run as processes: the grpcio scripts in
//! `peers/`, each started with its standard input and output piped. A
//! script prints `port N` once it serves, may answer commands on its
//! standard input, and exits when that closes.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::guard;

/// A peer script running in the background, killed when dropped.
pub struct PythonPeer {
    /// The port it said it serves on.
    pub port: u16,
    /// The process, for signals.
    pub child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl PythonPeer {
    /// Runs `peers/<script>` with `args` under `python` and waits until it
    /// reports its port.
    pub async fn start(python: &Path, script: &str, args: &[String]) -> PythonPeer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join(script);
        let mut child = Command::new(python)
            .arg(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {script}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let line = guard(&format!("{script}'s port"), stdout.next_line())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{script} exited before serving"));
        let port = line
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{script} said {line:?}, not its port"));
        PythonPeer {
            port,
            child,
            stdin,
            stdout,
        }
    }

    /// Sends a command line and returns the peer's one-line answer.
    pub async fn command(&mut self, command: &str) -> String {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        guard(&format!("the peer's answer to {command}"), self.stdout.next_line())
            .await
            .unwrap()
            .expect("the peer exited")
    }
}
