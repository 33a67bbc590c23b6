//! An HTTP/2 connection on the engine's layers: one [`Driver`] owns the
//! connection's state and its socket; streams are shared between it and
//! their handles ([`handle`]), each under its own lock. Handles queue work
//! and hand their stream to the driver through one queue of [`Command`]s;
//! the driver applies what the peer sends and writes what the handles
//! queued. Both roles, client and server, are the same driver.

pub(crate) mod driver;
pub(crate) mod handle;
pub(crate) mod headers;
pub(crate) mod shared;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub(crate) use driver::{Driver, Event};
pub(crate) use handle::{Admission, AwaitResponse, Opener, RecvHalf, Responder, SendHalf};
pub(crate) use shared::Failure;

use super::frame::ErrorCode;
use super::ping_policy::PingPolicy;
use crate::transport::Http2Settings;

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// What the handles ask of the driver.
pub(crate) enum Command {
    /// Open this client stream (its headers are queued on it).
    Open(Arc<shared::Stream>),
    /// The stream has work queued.
    Ready(Arc<shared::Stream>),
    /// Enough of the connection's window was released for a WINDOW_UPDATE.
    Release,
}

/// Keepalive PINGs (gRFC A8): one after `time` without hearing from the
/// peer, which must be answered within `timeout`.
#[derive(Clone)]
pub(crate) struct Keepalive {
    /// Read afresh for each PING, since a client's doubles when a server
    /// says it PINGs too often.
    pub(crate) time: Arc<dyn Fn() -> Duration + Send + Sync>,
    pub(crate) timeout: Duration,
    pub(crate) permit_without_calls: bool,
}

/// A connection's settings.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) role: Role,
    pub(crate) settings: Http2Settings,
    pub(crate) keepalive: Option<Keepalive>,
    /// A server's limit on its clients' PINGs.
    pub(crate) ping_policy: Option<PingPolicy>,
    /// How long the peer has to acknowledge this side's SETTINGS.
    pub(crate) settings_timeout: Duration,
    /// Where the driver counts streams, frames and keepalives for channelz.
    pub(crate) stats: Arc<crate::channelz::socket::SocketStats>,
}

impl Config {
    /// The settings for `role`, with no keepalive and no PING limit.
    pub(crate) fn new(role: Role, settings: Http2Settings) -> Config {
        Config {
            role,
            settings,
            keepalive: None,
            ping_policy: None,
            settings_timeout: Duration::from_secs(10),
            stats: Arc::default(),
        }
    }
}

/// How a connection ended.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ended {
    /// The peer's GOAWAY, if it sent one: its code and debug data.
    pub(crate) goaway: Option<(ErrorCode, Bytes)>,
    /// Why this side ended it, or what failed.
    pub(crate) error: Option<String>,
}

/// A new connection's driver and its command queue's sending side.
pub(crate) fn new<IO>(io: IO, config: Config) -> (Driver<IO>, Opener)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let admission = Arc::new(Admission::default());
    let send_buffer = config.settings.max_send_buffer;
    let conn = Arc::new(shared::ConnShared {
        released: std::sync::atomic::AtomicUsize::new(0),
        wake_at: std::sync::atomic::AtomicUsize::new(1),
    });
    let driver = Driver::new(io, config, rx, &tx, admission.clone(), conn.clone());
    let opener = Opener {
        commands: tx,
        conn,
        admission,
        send_buffer,
    };
    (driver, opener)
}
