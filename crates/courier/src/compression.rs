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

/// The smallest zstd window a receiver always accepts, as a power of two:
/// 8 MiB, what common encoders declare when they do not know the message's
/// size in advance (the reference library up to level 19, and other
/// implementations' streaming defaults), whatever the receive limit.
const ZSTD_MIN_WINDOW_LOG: u32 = 23;

/// The largest zstd window accepted, as a power of two: 128 MiB, the zstd
/// library's own default limit, even without a receive limit.
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// The largest window, as a power of two, that a zstd frame may declare
/// when messages may decompress to `limit` bytes: enough to hold the whole
/// message, bounded by [`ZSTD_MIN_WINDOW_LOG`] and [`ZSTD_MAX_WINDOW_LOG`].
/// The decoder allocates the declared window up front, so this bounds what a
/// tiny frame can make the receiver allocate.
fn zstd_window_log_max(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG)
}

/// Decompresses one message, refusing output larger than `limit` bytes with
/// RESOURCE_EXHAUSTED and corrupt input with INTERNAL. A zstd frame whose
/// declared window is larger than [`zstd_window_log_max`] allows is refused
/// with RESOURCE_EXHAUSTED before its window is allocated.
pub(crate) fn decompress(encoding: Encoding, src: &[u8], limit: usize) -> Result<Bytes, Status> {
    // What the output starts with is bounded whatever the input claims;
    // it grows as the message actually decompresses.
    let mut out = Vec::with_capacity(src.len().saturating_mul(2).min(limit).min(1 << 20));
    // One byte past the limit tells a message at the limit from a larger one.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let read = match encoding {
        Encoding::Gzip => flate2::read::GzDecoder::new(src).take(cap).read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(src).take(cap).read_to_end(&mut out),
        Encoding::Zstd => zstd::stream::read::Decoder::with_buffer(src).and_then(|mut d| {
            d.window_log_max(zstd_window_log_max(limit))?;
            d.take(cap).read_to_end(&mut out)
        }),
    };
    if let Err(err) = read {
        if encoding == Encoding::Zstd && zstd_window_too_large(&err) {
            return Err(Status::resource_exhausted(format!(
                "the zstd frame's window exceeds the limit of {} bytes for a message \
                 of at most {limit} bytes; the sender should compress with a smaller window",
                1u64 << zstd_window_log_max(limit)
            )));
        }
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

/// Whether zstd refused a frame because its window is larger than the
/// decoder allows. The zstd crate keeps only the error's name.
fn zstd_window_too_large(err: &std::io::Error) -> bool {
    let code = zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge as usize;
    // A function result holding error `code` is `-code`, as an unsigned.
    err.to_string() == zstd::zstd_safe::get_error_name(code.wrapping_neg())
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

    #[test]
    fn unlimited_receive_size_decodes_each_encoding() {
        let data = b"unlimited unlimited unlimited".repeat(10);
        for enc in Encoding::ALL {
            let mut buf = BytesMut::new();
            compress(enc, &data, &mut buf).unwrap();
            assert_eq!(decompress(enc, &buf, usize::MAX).unwrap(), &data[..], "{enc:?}");
        }
    }

    /// A zstd frame header declaring a window of `2^log` bytes (no content
    /// size, not single-segment), then one empty last raw block.
    fn zstd_frame_with_window_log(log: u8) -> Vec<u8> {
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD];
        frame.push(0x00); // Frame_Header_Descriptor: no FCS, no checksum, no dict
        frame.push((log - 10) << 3); // Window_Descriptor: exponent, mantissa 0
        frame.extend_from_slice(&[0x01, 0x00, 0x00]); // last block, raw, size 0
        frame
    }

    #[test]
    fn zstd_frame_with_a_window_beyond_the_limit_is_resource_exhausted() {
        // A small window is fine: the frame decodes to nothing.
        assert_eq!(
            decompress(Encoding::Zstd, &zstd_frame_with_window_log(16), 1000).unwrap(),
            &b""[..]
        );
        // 1 GiB: past the 4 MiB limit, and past zstd's own default too.
        let err = decompress(Encoding::Zstd, &zstd_frame_with_window_log(30), 4 << 20).unwrap_err();
        assert_eq!(err.code(), crate::Code::ResourceExhausted, "{err}");
        assert!(err.message().contains("window"), "{err}");
        // 64 MiB: within zstd's default (128 MiB), past what a 4 MiB limit allows.
        let err = decompress(Encoding::Zstd, &zstd_frame_with_window_log(26), 4 << 20).unwrap_err();
        assert_eq!(err.code(), crate::Code::ResourceExhausted, "{err}");
    }
}
