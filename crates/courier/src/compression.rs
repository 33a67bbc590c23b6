//! Message compression: gzip, deflate (zlib) and zstd, per grpc/grpc
//! `doc/compression.md`.
//!
//! Each message is compressed on its own. A receiver bounds the decompressed
//! size by its receive limit, so a small compressed message cannot expand
//! without bound.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{BufMut, Bytes, BytesMut};

use crate::status::Status;

/// A message compression algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// gzip (RFC 1952).
    Gzip,
    /// deflate, in the zlib format (RFC 1950), as gRPC uses the name.
    Deflate,
    /// Zstandard (RFC 8878).
    Zstd,
}

impl Encoding {
    /// Every supported encoding.
    pub const ALL: [Encoding; 3] = [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd];

    /// The name used in `grpc-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
        }
    }

    /// The encoding for a `grpc-encoding` name; `None` for `identity` and
    /// for names Courier does not support.
    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == name.trim())
    }
}

/// A switch that turns compression on or off message by message, within a
/// call that has an encoding.
///
/// Compression is chosen per channel ([`ChannelBuilder::send_compressed`]),
/// per server ([`Server::send_compressed`]) and per call
/// ([`Request::set_compression`], [`Response::set_compression`]). Within a
/// call, take a switch from [`Request::message_compression`] or
/// [`Response::message_compression`] and flip it before a message is
/// produced: each message is compressed only if the switch is on when it is
/// sent. It starts on. A message is sent uncompressed anyway when
/// compressing would not make it smaller.
///
/// ```
/// use courier::{Encoding, Request};
/// let mut request = Request::new(futures_util::stream::iter(vec![1u32, 2]));
/// request.set_compression(Some(Encoding::Gzip));
/// let switch = request.message_compression();
/// switch.set(false); // the messages produced from now on go uncompressed
/// assert!(!switch.is_on());
/// ```
///
/// [`ChannelBuilder::send_compressed`]: crate::client::ChannelBuilder::send_compressed
/// [`Server::send_compressed`]: crate::Server::send_compressed
/// [`Request::set_compression`]: crate::Request::set_compression
/// [`Response::set_compression`]: crate::Response::set_compression
/// [`Request::message_compression`]: crate::Request::message_compression
/// [`Response::message_compression`]: crate::Response::message_compression
#[derive(Clone, Debug)]
pub struct MessageCompression(Arc<AtomicBool>);

impl Default for MessageCompression {
    fn default() -> Self {
        MessageCompression::new()
    }
}

impl MessageCompression {
    /// A switch, on. Attach it to a call with
    /// [`Request::set_message_compression`](crate::Request::set_message_compression)
    /// or [`Response::set_message_compression`](crate::Response::set_message_compression).
    pub fn new() -> MessageCompression {
        MessageCompression(Arc::new(AtomicBool::new(true)))
    }

    /// Turns compression on or off for the messages sent from now on.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Release);
    }

    /// Whether the next message will be compressed.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The value Courier sends in `grpc-accept-encoding`.
pub(crate) const ACCEPT_ENCODING: &str = "gzip,deflate,zstd";

/// Whether a peer's `grpc-accept-encoding` lists an encoding.
pub(crate) fn accepts(header: Option<&http::HeaderValue>, encoding: Encoding) -> bool {
    header
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim() == encoding.name()))
}

/// Compresses `src`, appending the result to `dst`.
pub(crate) fn compress(encoding: Encoding, src: &[u8], dst: &mut BytesMut) -> std::io::Result<()> {
    let writer = dst.writer();
    match encoding {
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
            enc.write_all(src)?;
            enc.finish()?;
        }
        Encoding::Deflate => {
            let mut enc = flate2::write::ZlibEncoder::new(writer, flate2::Compression::fast());
            enc.write_all(src)?;
            enc.finish()?;
        }
        Encoding::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(writer, 1)?;
            enc.write_all(src)?;
            enc.finish()?;
        }
    }
    Ok(())
}

/// The largest zstd window (as a power of two) a receiver with `limit`
/// accepts. The decoder allocates the window a frame declares before it
/// produces anything, so without a bound a message of a few bytes could
/// make it allocate 128 MiB (zstd's own default maximum). The window
/// allowed is what the limit could use, but never less than the 8 MiB that
/// RFC 8878 asks every decoder to support, nor more than zstd's default.
fn zstd_window_log_max(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(23, 27)
}

/// Decompresses one message, refusing output larger than `limit` bytes with
/// RESOURCE_EXHAUSTED and corrupt input with INTERNAL.
pub(crate) fn decompress(encoding: Encoding, src: &[u8], limit: usize) -> Result<Bytes, Status> {
    let mut out = Vec::with_capacity((src.len() * 2).min(limit).min(1 << 20));
    // One byte past the limit tells a message that is too large; a limit of
    // usize::MAX (no limit) must not wrap around to reading nothing.
    let cap = (limit as u64).saturating_add(1);
    let read = match encoding {
        Encoding::Gzip => flate2::read::GzDecoder::new(src).take(cap).read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(src).take(cap).read_to_end(&mut out),
        Encoding::Zstd => zstd::stream::read::Decoder::with_buffer(src).and_then(|mut d| {
            d.window_log_max(zstd_window_log_max(limit))?;
            d.take(cap).read_to_end(&mut out)
        }),
    };
    if let Err(err) = read {
        return Err(Status::internal(format!(
            "failed to decompress {} message: {err}",
            encoding.name()
        )));
    }
    if out.len() > limit {
        return Err(Status::resource_exhausted(format!(
            "decompressed message is larger than the limit of {limit} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_each_encoding() {
        let data = b"hello hello hello hello hello hello".repeat(20);
        for enc in Encoding::ALL {
            let mut buf = BytesMut::new();
            compress(enc, &data, &mut buf).unwrap();
            assert!(buf.len() < data.len(), "{enc:?}");
            assert_eq!(decompress(enc, &buf, 1 << 20).unwrap(), &data[..]);
            assert_eq!(Encoding::from_name(enc.name()), Some(enc));
        }
        assert_eq!(Encoding::from_name("identity"), None);
    }

    #[test]
    fn no_limit_is_not_a_limit_of_nothing() {
        // Found by the decompress and reflection fuzzers: `limit + 1`
        // overflowed for usize::MAX, which panicked in debug builds and, in
        // release builds, read nothing and returned every message empty.
        let data = b"unlimited ".repeat(50);
        for enc in Encoding::ALL {
            let mut buf = BytesMut::new();
            compress(enc, &data, &mut buf).unwrap();
            assert_eq!(decompress(enc, &buf, usize::MAX).unwrap(), &data[..], "{enc:?}");
        }
    }

    /// A zstd frame declaring a window of `2^(10 + exponent)` bytes, with no
    /// content size, holding one raw block of "A".
    fn zstd_frame_with_window(exponent: u8) -> Vec<u8> {
        vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, exponent << 3, 0x09, 0x00, 0x00, b'A']
    }

    #[test]
    fn zstd_window_is_bounded() {
        // Found by the decompress fuzzer: this 10-byte message made the
        // decoder allocate a 128 MiB window before producing anything.
        let huge = zstd_frame_with_window(17);
        let err = decompress(Encoding::Zstd, &huge, crate::DEFAULT_MAX_RECV_MESSAGE_SIZE).unwrap_err();
        assert_eq!(err.code(), crate::Code::Internal, "{err:?}");
        // 8 MiB windows, which every zstd decoder supports, still decode.
        let standard = zstd_frame_with_window(13);
        assert_eq!(decompress(Encoding::Zstd, &standard, 1000).unwrap(), &b"A"[..]);
        // A limit that needs a larger window allows one, up to zstd's default.
        assert_eq!(zstd_window_log_max(4 << 20), 23);
        assert_eq!(zstd_window_log_max((64 << 20) + 1), 27);
        assert_eq!(zstd_window_log_max(usize::MAX), 27);
        assert_eq!(zstd_window_log_max(0), 23);
    }

    #[test]
    fn bounded_by_limit() {
        let data = vec![0u8; 1 << 20];
        for enc in Encoding::ALL {
            let mut buf = BytesMut::new();
            compress(enc, &data, &mut buf).unwrap();
            let err = decompress(enc, &buf, 1000).unwrap_err();
            assert_eq!(err.code(), crate::Code::ResourceExhausted);
            let err = decompress(enc, b"garbage!", 1000).unwrap_err();
            assert_eq!(err.code(), crate::Code::Internal);
        }
    }
}
