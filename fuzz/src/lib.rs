//! What the `server` and `reflection` fuzz targets share: a real Courier
//! server (reflection and health), served over in-memory HTTP/2 connections
//! on a single-threaded runtime whose clock is paused, and a raw `h2` client
//! that sends it one request per connection.
//!
//! With the clock paused, time only moves when every task is waiting, so a
//! call that would hang shows up at once as a timeout (in virtual time), and
//! runs are repeatable.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use courier::__fuzz::FrameReader;
use courier::Encoding;
use http::{HeaderMap, Method};
use tokio::io::DuplexStream;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedSender;

/// The receive limit of the server under test, small enough that the
/// fuzzer reaches it.
pub const SERVER_RECV_LIMIT: usize = 16 * 1024;

/// How long (in virtual time) a call may take before it counts as hung.
pub const HANG: Duration = Duration::from_secs(600);

struct Harness {
    runtime: Runtime,
    connections: UnboundedSender<DuplexStream>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let (connections, accepted) = tokio::sync::mpsc::unbounded_channel();
        let health = courier::health::HealthReporter::new();
        health.set_serving("grpc.health.v1.Health");
        let server = courier::Server::builder()
            .max_decoding_message_size(SERVER_RECV_LIMIT)
            .send_compressed(Encoding::Gzip)
            .with_reflection()
            .with_health(health);
        runtime.spawn(courier::__fuzz::serve(server, accepted));
        Harness { runtime, connections }
    })
}

/// One request.
#[derive(Debug, Clone)]
pub struct Call {
    /// The HTTP method.
    pub method: Method,
    /// The URI, whose path names the method.
    pub uri: http::Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The body, as the DATA frames to send.
    pub body: Vec<Bytes>,
}

/// The server's answer.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Vec<u8>,
    /// The trailers, unless the response ended with its headers.
    pub trailers: Option<HeaderMap>,
}

impl Answer {
    /// Where `grpc-status` is: the trailers, or the headers of a
    /// trailers-only response.
    pub fn grpc_status(&self) -> Option<&HeaderMap> {
        match &self.trailers {
            Some(t) => Some(t),
            None => Some(&self.headers),
        }
    }

    /// The `grpc-status` code, if the answer has one.
    pub fn code(&self) -> Option<i32> {
        let value = self.grpc_status()?.get("grpc-status")?;
        std::str::from_utf8(value.as_bytes()).ok()?.parse().ok()
    }

    /// The response messages, decompressed per the response's
    /// `grpc-encoding`. Panics on a malformed response body.
    pub fn messages(&self) -> Vec<Bytes> {
        let encoding = self
            .headers
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .and_then(Encoding::from_name);
        let mut reader = FrameReader::new(usize::MAX, encoding);
        reader.push(Bytes::copy_from_slice(&self.body));
        let mut out = Vec::new();
        while let Some(m) = reader.next().expect("the server's response frames are well formed") {
            out.push(m);
        }
        reader
            .finish()
            .expect("the server's response ends on a message boundary");
        out
    }
}

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// The client refused to send it (invalid headers, say): nothing to check.
    Refused,
    /// The server answered.
    Answered(Box<Answer>),
    /// No answer within [`HANG`] of virtual time.
    Hung,
}

/// Sends one request on a new connection and collects the answer.
pub fn run(call: Call) -> Outcome {
    let h = harness();
    h.runtime.block_on(async {
        let (client, server) = tokio::io::duplex(256 * 1024);
        h.connections.send(server).expect("the server is running");
        let exchange = async {
            let (send, conn) = h2::client::handshake(client).await.map_err(|_| ())?;
            // The client's connection task ends with the exchange, even
            // when that is dropped for hanging.
            let _driver = AbortOnDrop(tokio::spawn(async move {
                let _ = conn.await;
            }));
            exchange(send, call).await
        };
        let out = match tokio::time::timeout(HANG, exchange).await {
            Ok(Ok(answer)) => Outcome::Answered(Box::new(answer)),
            Ok(Err(())) => Outcome::Refused,
            Err(_) => Outcome::Hung,
        };
        // Let the server see the connection close and clean up.
        tokio::time::sleep(Duration::from_millis(1)).await;
        out
    })
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange(send: h2::client::SendRequest<Bytes>, call: Call) -> Result<Answer, ()> {
    let mut send = send.ready().await.map_err(|_| ())?;
    let mut request = http::Request::builder()
        .method(call.method)
        .uri(call.uri)
        .body(())
        .map_err(|_| ())?;
    *request.headers_mut() = call.headers;
    let body: Vec<Bytes> = call.body.into_iter().filter(|b| !b.is_empty()).collect();
    let (response, mut stream) = send.send_request(request, body.is_empty()).map_err(|_| ())?;
    let n = body.len();
    for (i, chunk) in body.into_iter().enumerate() {
        // The server may already have answered and reset the stream.
        if stream.send_data(chunk, i + 1 == n).is_err() {
            break;
        }
    }
    let response = response.await.map_err(|_| ())?;
    let (parts, mut recv) = response.into_parts();
    let mut body = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.map_err(|_| ())?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.map_err(|_| ())?;
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
        trailers,
    })
}

/// Frames messages as gRPC does: an uncompressed flag or a compressed one
/// (compressing with `encoding`), then the length.
pub fn frame(messages: &[(Vec<u8>, bool)], encoding: Option<Encoding>) -> Vec<u8> {
    let mut out = Vec::new();
    for (message, compress) in messages {
        match (compress, encoding) {
            (true, Some(enc)) => {
                let packed = courier::__fuzz::compress(enc, message);
                out.push(1);
                out.extend_from_slice(&(packed.len() as u32).to_be_bytes());
                out.extend_from_slice(&packed);
            }
            _ => {
                out.push(0);
                out.extend_from_slice(&(message.len() as u32).to_be_bytes());
                out.extend_from_slice(message);
            }
        }
    }
    out
}

/// Cuts `data` into DATA frames at the given lengths (the rest goes last).
pub fn cut(data: &[u8], lengths: &[u16]) -> Vec<Bytes> {
    let data = Bytes::copy_from_slice(data);
    let mut out = Vec::new();
    let mut at = 0;
    for &len in lengths {
        let n = (len as usize).min(data.len() - at);
        out.push(data.slice(at..at + n));
        at += n;
    }
    out.push(data.slice(at..));
    out
}
