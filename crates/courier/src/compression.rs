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
    let out = inflate(encoding, src, limit)
        .map_err(|err| Status::internal(format!("failed to decompress {} message: {err}", encoding.name())))?;
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

    let mut out = Vec::with_capacity((src.len() * 2).min(limit).min(1 << 20));
    let cap = limit as u64 + 1;
    match encoding {
        #[cfg(feature = "gzip")]
        Encoding::Gzip => flate2::read::GzDecoder::new(src).take(cap).read_to_end(&mut out)?,
        #[cfg(feature = "gzip")]
        Encoding::Deflate => flate2::read::ZlibDecoder::new(src).take(cap).read_to_end(&mut out)?,
        #[cfg(feature = "zstd")]
        Encoding::Zstd => zstd::stream::read::Decoder::with_buffer(src)?
            .take(cap)
            .read_to_end(&mut out)?,
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
}
