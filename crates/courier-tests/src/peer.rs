//! Third-party peers the tests run as processes: the Python scripts in
//! `peers/` (grpcio, and Python's h2), each started with its standard input
//! and output piped. A script prints `port N` once it serves, may answer
//! commands on its standard input, and exits when that closes. And, for a
//! peer that cannot say which port it bound, [`listening_port`].

use std::collections::HashSet;
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

/// The TCP port process `pid` listens on, once it has bound one: its
/// sockets (`/proc/PID/fd`) found among the kernel's listening sockets.
pub fn listening_port(pid: u32) -> Option<u16> {
    let sockets: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.ok()?.path()).ok()?;
            let link = link.to_str()?;
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    ["tcp", "tcp6"].iter().find_map(|table| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok()?;
        text.lines().skip(1).find_map(|line| {
            // local_address is the second field, the state (0A: LISTEN)
            // the fourth, the inode the tenth.
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" || !sockets.contains(fields[9]) {
                return None;
            }
            u16::from_str_radix(fields[1].rsplit_once(':')?.1, 16).ok()
        })
    })
}
