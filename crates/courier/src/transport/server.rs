//! The server side of an HTTP/2 connection: the handshake, accepting
//! streams, and graceful shutdown with GOAWAY.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::Http2Settings;

/// One accepted stream: the request head and body, and the responder.
pub(crate) type Accepted = (http::Request<h2::RecvStream>, h2::server::SendResponse<Bytes>);

/// Serves one connection until the peer closes it, an error occurs, or
/// shutdown is signalled and every stream has finished. `on_stream` is called
/// for each new stream and must not block.
pub(crate) async fn serve_connection<IO, F>(
    io: IO,
    settings: &Http2Settings,
    mut shutdown: watch::Receiver<bool>,
    on_stream: F,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
    F: Fn(Accepted),
{
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(settings.initial_stream_window)
        .initial_connection_window_size(settings.initial_connection_window)
        .max_frame_size(settings.max_frame_size)
        .max_header_list_size(settings.max_header_list_size)
        .max_send_buffer_size(settings.max_send_buffer);
    if let Some(n) = settings.max_concurrent_streams {
        builder.max_concurrent_streams(n);
    }
    let mut conn = match builder.handshake::<_, Bytes>(io).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("HTTP/2 handshake failed: {e}");
            return;
        }
    };
    let mut draining = *shutdown.borrow();
    if draining {
        conn.graceful_shutdown();
    }
    loop {
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok(stream)) => on_stream(stream),
                Some(Err(e)) => {
                    tracing::debug!("HTTP/2 connection ended: {e}");
                    break;
                }
                None => break,
            },
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.graceful_shutdown();
                }
            }
        }
    }
}
