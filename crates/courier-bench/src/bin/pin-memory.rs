//! How much memory one client connection can make a gRPC server hold.
//!
//! Opens one HTTP/2 connection, starts `--streams` calls to
//! `BenchmarkService/UnaryCall`, and on each sends a message prefix
//! declaring `--message-size` bytes followed by all but the last byte of the
//! message, as fast as the server's flow control allows, for at most
//! `--secs` seconds. Then it reads the server's resident memory growth and
//! prints one line: streams the server accepted, streams it refused, bytes
//! it let in, and its RSS growth.
//!
//! ```text
//! pin-memory --server 127.0.0.1:PORT --server-pid PID --streams 64 --message-size 4194304
//! ```

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::Parser;
use courier_bench::procfs;

#[derive(Parser)]
struct Args {
    /// The server's address, host:port.
    #[arg(long)]
    server: String,
    /// The server's process id, for its memory.
    #[arg(long)]
    server_pid: u32,
    /// Calls to open on the one connection.
    #[arg(long, default_value_t = 64)]
    streams: usize,
    /// The size each message prefix declares.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    message_size: u32,
    /// How long to keep sending.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let before = procfs::rss_kib(args.server_pid).ok_or("cannot read the server's memory")?;
    let tcp = tokio::net::TcpStream::connect(&args.server).await?;
    let (send, conn) = h2::client::Builder::new()
        .initial_max_send_streams(args.streams)
        .handshake::<_, Bytes>(tcp)
        .await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let deadline = Instant::now() + Duration::from_secs_f64(args.secs);
    let mut calls = Vec::new();
    for _ in 0..args.streams {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!(
                "http://{}/grpc.testing.BenchmarkService/UnaryCall",
                args.server
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let mut ready = send.clone().ready().await?;
        let (response, stream) = ready.send_request(request, false)?;
        calls.push(tokio::spawn(feed(stream, response, args.message_size, deadline)));
    }
    let (mut accepted, mut refused, mut bytes) = (0, 0, 0u64);
    // The streams stay open, unfinished, until the memory is read.
    let mut held = Vec::new();
    for call in calls {
        let (sent, open) = call.await?;
        bytes += sent;
        match open {
            Some(stream) => {
                accepted += 1;
                held.push(stream);
            }
            None => refused += 1,
        }
    }
    let after = procfs::rss_kib(args.server_pid).ok_or("cannot read the server's memory")?;
    println!(
        "streams {} accepted {accepted} refused {refused} bytes_sent {bytes} server_rss_growth_kib {}",
        args.streams,
        after.saturating_sub(before)
    );
    Ok(())
}

/// Sends a prefix and all but the last byte of a message, within flow
/// control, until the deadline. Returns the bytes the server let in and
/// the stream, still open, unless the server refused or answered it.
async fn feed(
    mut stream: h2::SendStream<Bytes>,
    response: h2::client::ResponseFuture,
    size: u32,
    deadline: Instant,
) -> (u64, Option<Open>) {
    let mut left = 5 + size as usize - 1;
    let mut first = true;
    let mut sent = 0u64;
    let mut response = Box::pin(response);
    while left > 0 {
        stream.reserve_capacity(left.min(1 << 20));
        let capacity = tokio::select! {
            c = std::future::poll_fn(|cx| stream.poll_capacity(cx)) => c,
            _ = tokio::time::sleep_until(deadline.into()) => break,
            _ = &mut response => return (sent, None),
        };
        let n = match capacity {
            Some(Ok(n)) if n >= 5 || !first => n.min(left),
            Some(Ok(_)) => continue,
            _ => return (sent, None),
        };
        let mut chunk = BytesMut::with_capacity(n);
        if first {
            chunk.put_u8(0);
            chunk.put_u32(size);
            chunk.put_bytes(b'x', n - 5);
            first = false;
        } else {
            chunk.put_bytes(b'x', n);
        }
        if stream.send_data(chunk.freeze(), false).is_err() {
            return (sent, None);
        }
        sent += n as u64;
        left -= n;
    }
    // A response by now means the server ended the call.
    if futures_util::FutureExt::now_or_never(&mut response).is_some() {
        return (sent, None);
    }
    (sent, Some((stream, ())))
}

/// A stream kept open.
type Open = (h2::SendStream<Bytes>, ());
