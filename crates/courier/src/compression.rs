//! Message compression: gzip, deflate (zlib) and zstd, per grpc/grpc
//! `doc/compression.md`.
//!
//! Each message is compressed on its own. A receiver bounds the decompressed
//! size by its receive limit, so a small compressed message cannot expand
//! without bound.
//!
//! gzip and deflate need the `gzip` cargo feature, zstd the `zstd` feature
//! (both on by default). The [`Encoding`] variants exist whatever the
//! features, so code naming them builds in every configuration; an encoding
//! whose feature is off is not [enabled](Encoding::is_enabled): it is not
//! advertised in `grpc-accept-encoding`, not recognised in `grpc-encoding`
//! (a request compressed with it gets UNIMPLEMENTED naming the supported
//! encodings), and a channel, server or call set to send it sends its
//! messages uncompressed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};

use crate::status::Status;

/// A message compression algorithm.
///
/// Every variant exists whatever the cargo features; see
/// [`is_enabled`](Encoding::is_enabled) for the ones this build can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// gzip (RFC 1952). Needs the `gzip` feature.
    Gzip,
    /// deflate, in the zlib format (RFC 1950), as gRPC uses the name. Needs
    /// the `gzip` feature.
    Deflate,
    /// Zstandard (RFC 8878). Needs the `zstd` feature.
    Zstd,
}

impl Encoding {
    /// Every encoding Courier knows, enabled in this build or not.
    pub const ALL: [Encoding; 3] = [Encoding::Gzip, Encoding::Deflate, Encoding::Zstd];

    /// The name used in `grpc-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress with the encoding:
    /// its cargo feature (`gzip` for gzip and deflate, `zstd` for zstd) is
    /// on.
    pub fn is_enabled(self) -> bool {
        match self {
            Encoding::Gzip | Encoding::Deflate => cfg!(feature = "gzip"),
            Encoding::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// The encoding for a `grpc-encoding` name; `None` for `identity`, for
    /// names Courier does not know and for encodings not
    /// [enabled](Encoding::is_enabled) in this build.
    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL
            .into_iter()
            .find(|e| e.is_enabled() && e.name() == name.trim())
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

/// The value Courier sends in `grpc-accept-encoding`: the enabled encodings,
/// or only `identity` when none is.
#[cfg(all(feature = "gzip", feature = "zstd"))]
pub(crate) const ACCEPT_ENCODING: &str = "gzip,deflate,zstd";
/// The value Courier sends in `grpc-accept-encoding`.
#[cfg(all(feature = "gzip", not(feature = "zstd")))]
pub(crate) const ACCEPT_ENCODING: &str = "gzip,deflate";
/// The value Courier sends in `grpc-accept-encoding`.
#[cfg(all(not(feature = "gzip"), feature = "zstd"))]
pub(crate) const ACCEPT_ENCODING: &str = "zstd";
/// The value Courier sends in `grpc-accept-encoding`.
#[cfg(not(any(feature = "gzip", feature = "zstd")))]
pub(crate) const ACCEPT_ENCODING: &str = "identity";

/// Whether an encoding is enabled here and a peer's `grpc-accept-encoding`
/// lists it.
pub(crate) fn accepts(header: Option<&http::HeaderValue>, encoding: Encoding) -> bool {
    encoding.is_enabled()
        && header
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim() == encoding.name()))
}

/// The error for an encoding that is not enabled in this build.
#[cfg(not(all(feature = "gzip", feature = "zstd")))]
fn not_enabled(encoding: Encoding) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{} compression is not enabled in this build", encoding.name()),
    )
}

/// Compresses `src`, appending the result to `dst`. Fails for an encoding
/// that is not enabled (callers never choose one).
#[cfg(any(feature = "gzip", feature = "zstd"))]
pub(crate) fn compress(encoding: Encoding, src: &[u8], dst: &mut BytesMut) -> std::io::Result<()> {
    use bytes::BufMut;
    use std::io::Write;

    match encoding {
        #[cfg(feature = "gzip")]
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(dst.writer(), flate2::Compression::fast());
            enc.write_all(src)?;
            enc.finish()?;
        }
        #[cfg(feature = "gzip")]
        Encoding::Deflate => {
            let mut enc = flate2::write::ZlibEncoder::new(dst.writer(), flate2::Compression::fast());
            enc.write_all(src)?;
            enc.finish()?;
        }
        #[cfg(feature = "zstd")]
        Encoding::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(dst.writer(), 1)?;
            enc.write_all(src)?;
            enc.finish()?;
        }
        #[cfg(not(all(feature = "gzip", feature = "zstd")))]
        disabled => return Err(not_enabled(disabled)),
    }
    Ok(())
}

/// Without any compression feature, no encoding can be used.
#[cfg(not(any(feature = "gzip", feature = "zstd")))]
pub(crate) fn compress(encoding: Encoding, _src: &[u8], _dst: &mut BytesMut) -> std::io::Result<()> {
    Err(not_enabled(encoding))
}

/// The smallest zstd window a receiver always accepts, as a power of two:
/// 8 MiB, what common encoders declare when they do not know the message's
/// size in advance (the reference library up to level 19, and other
/// implementations' streaming defaults), whatever the receive limit.
#[cfg(feature = "zstd")]
const ZSTD_MIN_WINDOW_LOG: u32 = 23;

/// The largest zstd window accepted, as a power of two: 128 MiB, the zstd
/// library's own default limit, even without a receive limit.
#[cfg(feature = "zstd")]
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// The largest window, as a power of two, that a zstd frame may declare
/// when messages may decompress to `limit` bytes: enough to hold the whole
/// message, bounded by [`ZSTD_MIN_WINDOW_LOG`] and [`ZSTD_MAX_WINDOW_LOG`].
/// The decoder allocates the declared window up front, so this bounds what a
/// tiny frame can make the receiver allocate.
#[cfg(feature = "zstd")]
fn zstd_window_log_max(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG)
}

/// Decompresses one message, refusing output larger than `limit` bytes with
/// RESOURCE_EXHAUSTED, corrupt input with INTERNAL, and an encoding that is
/// not enabled (never negotiated) with UNIMPLEMENTED.
pub(crate) fn decompress(encoding: Encoding, src: &[u8], limit: usize) -> Result<Bytes, Status> {
    if !encoding.is_enabled() {
        return Err(Status::unimplemented(format!(
            "message compression {:?} is not supported; supported: {ACCEPT_ENCODING}",
            encoding.name()
        )));
    }
    let out = inflate(encoding, src, limit).map_err(|err| {
        #[cfg(feature = "zstd")]
        if encoding == Encoding::Zstd && zstd_window_too_large(&err) {
            return Status::resource_exhausted(format!(
                "the zstd frame's window exceeds the limit of {} bytes for a message \
                 of at most {limit} bytes; the sender should compress with a smaller window",
                1u64 << zstd_window_log_max(limit)
            ));
        }
        Status::internal(format!("failed to decompress {} message: {err}", encoding.name()))
    })?;
    if out.len() > limit {
        return Err(Status::resource_exhausted(format!(
            "decompressed message is larger than the limit of {limit} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

/// Decompresses `src`, stopping one byte past `limit`.
#[cfg(any(feature = "gzip", feature = "zstd"))]
fn inflate(encoding: Encoding, src: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;

    // What the output starts with is bounded whatever the input claims;
    // it grows as the message actually decompresses.
    let mut out = Vec::with_capacity(src.len().saturating_mul(2).min(limit).min(1 << 20));
    // One byte past the limit tells a message at the limit from a larger one.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    match encoding {
        #[cfg(feature = "gzip")]
        Encoding::Gzip => flate2::read::GzDecoder::new(src).take(cap).read_to_end(&mut out)?,
        #[cfg(feature = "gzip")]
        Encoding::Deflate => flate2::read::ZlibDecoder::new(src).take(cap).read_to_end(&mut out)?,
        #[cfg(feature = "zstd")]
        Encoding::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(src)?;
            decoder.window_log_max(zstd_window_log_max(limit))?;
            decoder.take(cap).read_to_end(&mut out)?
        }
        #[cfg(not(all(feature = "gzip", feature = "zstd")))]
        disabled => return Err(not_enabled(disabled)),
    };
    Ok(out)
}

/// Without any compression feature, no encoding can be used.
#[cfg(not(any(feature = "gzip", feature = "zstd")))]
fn inflate(encoding: Encoding, _src: &[u8], _limit: usize) -> std::io::Result<Vec<u8>> {
    Err(not_enabled(encoding))
}

/// Whether zstd refused a frame because its window is larger than the
/// decoder allows. The zstd crate keeps only the error's name.
#[cfg(feature = "zstd")]
fn zstd_window_too_large(err: &std::io::Error) -> bool {
    let code = zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge as usize;
    // A function result holding error `code` is `-code`, as an unsigned.
    err.to_string() == zstd::zstd_safe::get_error_name(code.wrapping_neg())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> impl Iterator<Item = Encoding> {
        Encoding::ALL.into_iter().filter(|e| e.is_enabled())
    }

    #[test]
    fn round_trip_each_enabled_encoding() {
        let data = b"hello hello hello hello hello hello".repeat(20);
        for enc in enabled() {
            let mut buf = BytesMut::new();
            compress(enc, &data, &mut buf).unwrap();
            assert!(buf.len() < data.len(), "{enc:?}");
            assert_eq!(decompress(enc, &buf, 1 << 20).unwrap(), &data[..]);
            assert_eq!(Encoding::from_name(enc.name()), Some(enc));
        }
        assert_eq!(Encoding::from_name("identity"), None);
    }

    #[cfg(feature = "zstd")]
    /// A zstd frame declaring a window of `2^(10 + exponent)` bytes, with no
    /// content size, holding one raw block of "A".
    fn zstd_frame_with_window(exponent: u8) -> Vec<u8> {
        vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, exponent << 3, 0x09, 0x00, 0x00, b'A']
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_legacy_frame_is_refused_as_corrupt() {
        // Found by the decompress fuzzer: a pre-1.0 (v0.7) zstd frame takes
        // no window limit, and these 18 bytes made the legacy decoder ask
        // for gigabytes. Courier builds zstd without the legacy formats.
        let legacy = [
            0x27, 0xb5, 0x2f, 0xfd, 0x00, 0x88, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        let err = decompress(Encoding::Zstd, &legacy, 1 << 20).unwrap_err();
        assert_eq!(err.code(), crate::Code::Internal, "{err:?}");
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_window_is_bounded() {
        // Found by the decompress fuzzer: this 10-byte message made the
        // decoder allocate a 128 MiB window before producing anything.
        let huge = zstd_frame_with_window(17);
        let err = decompress(Encoding::Zstd, &huge, crate::DEFAULT_MAX_RECV_MESSAGE_SIZE).unwrap_err();
        assert_eq!(err.code(), crate::Code::ResourceExhausted, "{err:?}");
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
        for enc in enabled() {
            let mut buf = BytesMut::new();
            compress(enc, &data, &mut buf).unwrap();
            let err = decompress(enc, &buf, 1000).unwrap_err();
            assert_eq!(err.code(), crate::Code::ResourceExhausted);
            let err = decompress(enc, b"garbage!", 1000).unwrap_err();
            assert_eq!(err.code(), crate::Code::Internal);
        }
    }

    #[test]
    fn enabled_encodings_follow_the_features() {
        assert_eq!(Encoding::Gzip.is_enabled(), cfg!(feature = "gzip"));
        assert_eq!(Encoding::Deflate.is_enabled(), cfg!(feature = "gzip"));
        assert_eq!(Encoding::Zstd.is_enabled(), cfg!(feature = "zstd"));
        // `grpc-accept-encoding` lists exactly the enabled encodings.
        let names: Vec<&str> = enabled().map(Encoding::name).collect();
        let expected = if names.is_empty() {
            "identity".to_owned()
        } else {
            names.join(",")
        };
        assert_eq!(ACCEPT_ENCODING, expected);
    }

    #[test]
    fn disabled_encodings_are_neither_named_nor_used() {
        let header = http::HeaderValue::from_static("gzip,deflate,zstd");
        for enc in Encoding::ALL.into_iter().filter(|e| !e.is_enabled()) {
            assert_eq!(Encoding::from_name(enc.name()), None, "{enc:?}");
            assert!(!accepts(Some(&header), enc), "{enc:?}");
            assert!(compress(enc, b"data", &mut BytesMut::new()).is_err(), "{enc:?}");
            let err = decompress(enc, b"data", 1000).unwrap_err();
            assert_eq!(err.code(), crate::Code::Unimplemented, "{enc:?}");
        }
        for enc in enabled() {
            assert!(accepts(Some(&header), enc), "{enc:?}");
        }
    }

    #[test]
    fn unlimited_receive_size_decodes_each_encoding() {
        let data = b"unlimited unlimited unlimited".repeat(10);
        for enc in enabled() {
            let mut buf = BytesMut::new();
            compress(enc, &data, &mut buf).unwrap();
            assert_eq!(decompress(enc, &buf, usize::MAX).unwrap(), &data[..], "{enc:?}");
        }
    }

    #[cfg(feature = "zstd")]
    /// A zstd frame header declaring a window of `2^log` bytes (no content
    /// size, not single-segment), then one empty last raw block.
    fn zstd_frame_with_window_log(log: u8) -> Vec<u8> {
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD];
        frame.push(0x00); // Frame_Header_Descriptor: no FCS, no checksum, no dict
        frame.push((log - 10) << 3); // Window_Descriptor: exponent, mantissa 0
        frame.extend_from_slice(&[0x01, 0x00, 0x00]); // last block, raw, size 0
        frame
    }

    #[cfg(feature = "zstd")]
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
