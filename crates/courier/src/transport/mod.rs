//! Transport: HTTP/2 connections, on Courier's own engine. Everything that
//! touches the engine lives here or is private to the crate, so that it can
//! change without changing the public API.

pub(crate) mod body;
pub(crate) mod budget;
pub(crate) mod client;
pub(crate) mod engine;
pub(crate) mod head;
pub(crate) mod inline;
pub(crate) mod keepalive;
pub(crate) mod server;
pub(crate) mod stream;

use std::time::Duration;

/// The streams a peer may open on one connection unless configured
/// otherwise.
pub(crate) const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;

/// HTTP/2 settings shared by client and server.
#[derive(Clone, Debug)]
pub(crate) struct Http2Settings {
    pub(crate) initial_stream_window: u32,
    /// Whether the receive windows grow with the link's bandwidth-delay
    /// product (as grpc-go does), from the initial sizes up; off once the
    /// application sets the windows itself.
    pub(crate) adaptive_window: bool,
    pub(crate) initial_connection_window: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) max_concurrent_streams: Option<u32>,
    pub(crate) max_header_list_size: u32,
    pub(crate) max_send_buffer: usize,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            // Larger than HTTP/2's 64 KiB default, as grpc-go and the C core
            // effectively use, so one stream is not window-bound on fast links.
            initial_stream_window: 1024 * 1024,
            adaptive_window: true,
            initial_connection_window: 4 * 1024 * 1024,
            max_frame_size: 16 * 1024,
            max_concurrent_streams: Some(DEFAULT_MAX_CONCURRENT_STREAMS),
            max_header_list_size: 16 * 1024,
            max_send_buffer: 1024 * 1024,
        }
    }
}

impl Http2Settings {
    /// The smallest and largest `SETTINGS_MAX_FRAME_SIZE` HTTP/2 allows.
    const FRAME_SIZE_RANGE: (u32, u32) = (16 * 1024, (1 << 24) - 1);

    /// The largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1).
    pub(crate) const MAX_WINDOW: u32 = (1 << 31) - 1;

    /// Sets the stream and connection windows, refusing sizes HTTP/2 does
    /// not allow with a message saying why.
    pub(crate) fn set_windows(&mut self, stream: u32, connection: u32) -> Result<(), String> {
        for (what, size) in [("stream", stream), ("connection", connection)] {
            if size > Self::MAX_WINDOW {
                return Err(format!(
                    "HTTP/2 {what} window of {size} bytes is too large: HTTP/2 allows at most {} bytes (2^31 - 1)",
                    Self::MAX_WINDOW
                ));
            }
        }
        self.initial_stream_window = stream;
        self.adaptive_window = false;
        self.initial_connection_window = connection;
        Ok(())
    }

    pub(crate) fn set_max_frame_size(&mut self, bytes: u32) {
        let (min, max) = Self::FRAME_SIZE_RANGE;
        self.max_frame_size = bytes.clamp(min, max);
    }
}

/// Socket options for client connections.
#[derive(Clone)]
pub(crate) struct ConnectOptions {
    /// Set by the application; otherwise the backoff decides.
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) tcp_nodelay: bool,
    pub(crate) http2: Http2Settings,
    /// The channel's limit on streams open at once on one connection, below
    /// whatever the server allows.
    pub(crate) max_concurrent_streams: Option<u32>,
    /// The channel's keepalive, if it has one.
    pub(crate) keepalive: Option<std::sync::Arc<keepalive::ClientKeepalive>>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::credentials::ClientTls>,
}
