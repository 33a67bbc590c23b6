//! Metadata: the custom key-value pairs carried in gRPC headers and trailers.
//!
//! Keys are lower-case ASCII. A key ending in `-bin` holds binary data, which
//! travels base64-encoded; every other key holds printable ASCII. Keys that
//! gRPC reserves for itself (`grpc-*`, `content-type`, `te`, `user-agent`,
//! and HTTP/2 pseudo-headers) cannot be set through this API.
//!
//! ```
//! use courier::Metadata;
//!
//! let mut md = Metadata::new();
//! md.insert("authorization", "Bearer token").unwrap();
//! md.insert_bin("trace-bin", &[0, 1, 2]).unwrap();
//! assert_eq!(md.get("authorization"), Some("Bearer token"));
//! assert_eq!(md.get_bin("trace-bin").unwrap().unwrap(), vec![0, 1, 2]);
//! assert!(md.insert("grpc-status", "0").is_err());
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::header::{HeaderMap, HeaderName, HeaderValue};

const BASE64_OUT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a metadata key or value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// The key is not a valid lower-case header name.
    InvalidKey(String),
    /// The key is reserved for gRPC itself.
    ReservedKey(String),
    /// An ASCII value holds characters outside printable ASCII.
    InvalidValue(String),
    /// `insert` was used with a `-bin` key, or `insert_bin` without one.
    WrongKind(String),
    /// A binary value is not valid base64.
    InvalidBase64(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::InvalidKey(k) => write!(
                f,
                "invalid metadata key {k:?}: keys are lower-case letters, digits, '-', '_' and '.'"
            ),
            MetadataError::ReservedKey(k) => write!(f, "metadata key {k:?} is reserved for gRPC"),
            MetadataError::InvalidValue(k) => write!(
                f,
                "value for metadata key {k:?} must be printable ASCII (use a -bin key for binary data)"
            ),
            MetadataError::WrongKind(k) if k.ends_with("-bin") => {
                write!(f, "metadata key {k:?} ends in -bin: use the binary methods")
            }
            MetadataError::WrongKind(k) => write!(f, "binary metadata key {k:?} must end in -bin"),
            MetadataError::InvalidBase64(k) => write!(f, "value for binary metadata key {k:?} is not valid base64"),
        }
    }
}

impl std::error::Error for MetadataError {}

/// Whether gRPC reserves a header name for itself.
pub(crate) fn is_reserved(key: &str) -> bool {
    key.starts_with(':')
        || key.starts_with("grpc-")
        || matches!(
            key,
            "content-type" | "te" | "user-agent" | "host" | "connection" | "transfer-encoding"
        )
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
}

/// A value read from [`Metadata`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataValue<'a> {
    /// An ASCII value.
    Ascii(&'a str),
    /// A binary value, still base64-encoded as on the wire; see
    /// [`MetadataValue::to_bytes`].
    Binary(&'a [u8]),
}

impl MetadataValue<'_> {
    /// The value's bytes: an ASCII value as is, a binary one decoded.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MetadataError> {
        match self {
            MetadataValue::Ascii(s) => Ok(s.as_bytes().to_vec()),
            MetadataValue::Binary(b) => decode_bin(b).ok_or_else(|| MetadataError::InvalidBase64(String::new())),
        }
    }
}

fn decode_bin(raw: &[u8]) -> Option<Vec<u8>> {
    // Several values may have been joined with ','; decode each part.
    let mut out = Vec::with_capacity(raw.len() * 3 / 4);
    for part in raw.split(|&b| b == b',') {
        let part = part.trim_ascii();
        BASE64_OUT.decode_vec(part, &mut out).ok()?;
    }
    Some(out)
}

/// A set of gRPC metadata entries, as headers or trailers.
#[derive(Clone, Default)]
pub struct Metadata {
    headers: HeaderMap,
}

impl Metadata {
    /// An empty set.
    pub fn new() -> Metadata {
        Metadata {
            headers: HeaderMap::new(),
        }
    }

    /// Metadata from a received block's fields, which the transport has
    /// already sorted: the protocol's own fields are in slots of their own
    /// (see `transport::head::Fields`), so what is left is metadata.
    pub(crate) fn from_received(headers: HeaderMap) -> Metadata {
        Metadata { headers }
    }

    /// The header map, to be sent.
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The underlying header map, to be sent.
    pub(crate) fn into_headers(self) -> HeaderMap {
        self.headers
    }

    fn key(key: &str, binary: bool) -> Result<HeaderName, MetadataError> {
        if !valid_key(key) {
            return Err(MetadataError::InvalidKey(key.to_string()));
        }
        if is_reserved(key) {
            return Err(MetadataError::ReservedKey(key.to_string()));
        }
        if key.ends_with("-bin") != binary {
            return Err(MetadataError::WrongKind(key.to_string()));
        }
        HeaderName::from_bytes(key.as_bytes()).map_err(|_| MetadataError::InvalidKey(key.to_string()))
    }

    fn ascii_value(key: &str, value: &str) -> Result<HeaderValue, MetadataError> {
        if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(MetadataError::InvalidValue(key.to_string()));
        }
        HeaderValue::from_str(value).map_err(|_| MetadataError::InvalidValue(key.to_string()))
    }

    /// A binary value, base64-encoded for the wire.
    pub(crate) fn bin_value(value: &[u8]) -> HeaderValue {
        let encoded = BASE64_OUT.encode(value);
        HeaderValue::from_maybe_shared(bytes::Bytes::from(encoded)).expect("base64 is a valid header value")
    }

    /// Sets an ASCII entry, replacing any earlier values of the key.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let name = Self::key(key, false)?;
        let value = Self::ascii_value(key, value)?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds an ASCII entry, keeping earlier values of the key.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let name = Self::key(key, false)?;
        let value = Self::ascii_value(key, value)?;
        self.headers.append(name, value);
        Ok(())
    }

    /// Sets a binary entry; the key must end in `-bin`.
    pub fn insert_bin(&mut self, key: &str, value: &[u8]) -> Result<(), MetadataError> {
        let name = Self::key(key, true)?;
        self.headers.insert(name, Self::bin_value(value));
        Ok(())
    }

    /// Adds a binary entry, keeping earlier values; the key must end in `-bin`.
    pub fn append_bin(&mut self, key: &str, value: &[u8]) -> Result<(), MetadataError> {
        let name = Self::key(key, true)?;
        self.headers.append(name, Self::bin_value(value));
        Ok(())
    }

    /// The first ASCII value of a key, if present and printable.
    pub fn get(&self, key: &str) -> Option<&str> {
        if key.ends_with("-bin") {
            return None;
        }
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// Every ASCII value of a key.
    pub fn get_all<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a str> + 'a {
        let bin = key.ends_with("-bin");
        self.headers
            .get_all(key)
            .into_iter()
            .filter(move |_| !bin)
            .filter_map(|v| v.to_str().ok())
    }

    /// The first binary value of a `-bin` key, decoded from base64.
    pub fn get_bin(&self, key: &str) -> Option<Result<Vec<u8>, MetadataError>> {
        if !key.ends_with("-bin") {
            return None;
        }
        let raw = self.headers.get(key)?;
        Some(decode_bin(raw.as_bytes()).ok_or_else(|| MetadataError::InvalidBase64(key.to_string())))
    }

    /// Every binary value of a `-bin` key, decoded.
    pub fn get_all_bin<'a>(&'a self, key: &str) -> impl Iterator<Item = Result<Vec<u8>, MetadataError>> + 'a {
        let bin = key.ends_with("-bin");
        let owned = key.to_string();
        self.headers
            .get_all(key)
            .into_iter()
            .filter(move |_| bin)
            .map(move |v| decode_bin(v.as_bytes()).ok_or_else(|| MetadataError::InvalidBase64(owned.clone())))
    }

    /// Whether the key is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.headers.contains_key(key)
    }

    /// Removes every value of a key; returns whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        self.headers.remove(key).is_some()
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Every entry, with its key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, MetadataValue<'_>)> {
        self.headers.iter().map(|(k, v)| {
            let key = k.as_str();
            let value = if key.ends_with("-bin") {
                MetadataValue::Binary(v.as_bytes())
            } else {
                MetadataValue::Ascii(v.to_str().unwrap_or(""))
            };
            (key, value)
        })
    }

    /// Adds every entry of `other`, keeping existing ones.
    pub fn extend(&mut self, other: Metadata) {
        for (k, v) in other.headers.into_iter() {
            if let Some(k) = k {
                self.headers.append(k, v);
            }
        }
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.iter() {
            match v {
                MetadataValue::Ascii(s) => m.entry(&k, &s),
                MetadataValue::Binary(b) => m.entry(&k, &String::from_utf8_lossy(b)),
            };
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_binary() {
        let mut md = Metadata::new();
        md.insert("x-user", "alice").unwrap();
        md.append("x-user", "bob").unwrap();
        assert_eq!(md.get_all("x-user").collect::<Vec<_>>(), ["alice", "bob"]);
        md.insert_bin("blob-bin", b"\x00\xff\x10").unwrap();
        assert_eq!(md.get_bin("blob-bin").unwrap().unwrap(), b"\x00\xff\x10");
        assert_eq!(md.get("blob-bin"), None);
        assert!(matches!(md.insert("blob-bin", "x"), Err(MetadataError::WrongKind(_))));
        assert!(matches!(md.insert_bin("blob", b"x"), Err(MetadataError::WrongKind(_))));
        assert!(matches!(md.insert("Upper", "x"), Err(MetadataError::InvalidKey(_))));
        assert!(matches!(md.insert("x", "\n"), Err(MetadataError::InvalidValue(_))));
        for reserved in ["grpc-status", "content-type", "te", "user-agent", ":path"] {
            assert!(md.insert(reserved, "x").is_err(), "{reserved}");
        }
    }

    #[test]
    fn decodes_padded_unpadded_and_joined() {
        assert_eq!(decode_bin(b"AAE=").unwrap(), [0, 1]);
        assert_eq!(decode_bin(b"AAE").unwrap(), [0, 1]);
        assert_eq!(decode_bin(b"AAE=,AgM").unwrap(), [0, 1, 2, 3]);
        assert!(decode_bin(b"!!").is_none());
    }

    /// Metadata from these headers, as the transport sorts a received
    /// block's fields.
    fn received(headers: &HeaderMap) -> Metadata {
        Metadata::from_received(crate::transport::engine::conn::headers::fields_from_map(headers).metadata)
    }

    #[test]
    fn received_headers_hide_protocol_ones() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        h.insert("grpc-timeout", HeaderValue::from_static("1S"));
        h.insert("x-a", HeaderValue::from_static("b"));
        let md = received(&h);
        assert_eq!(md.len(), 1);
        assert_eq!(md.get("x-a"), Some("b"));
    }

    #[test]
    fn received_headers_hide_every_protocol_one() {
        let mut h = HeaderMap::new();
        for name in [
            "content-type",
            "te",
            "grpc-timeout",
            "grpc-encoding",
            "grpc-accept-encoding",
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
        ] {
            h.append(name, HeaderValue::from_static("1"));
            h.append(name, HeaderValue::from_static("2"));
        }
        h.insert("grpc-previous-rpc-attempts", HeaderValue::from_static("1"));
        h.insert("user-agent", HeaderValue::from_static("ua"));
        h.append("x-a", HeaderValue::from_static("b"));
        h.append("x-a", HeaderValue::from_static("c"));
        h.insert("x-bin", HeaderValue::from_static("AAE"));
        let md = received(&h);
        assert_eq!(md.len(), 4, "{md:?}");
        assert_eq!(md.get("user-agent"), Some("ua"));
        assert_eq!(md.get_all("x-a").collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(md.get_bin("x-bin").unwrap().unwrap(), [0, 1]);
    }

    #[test]
    fn received_headers_of_only_the_protocol_are_no_metadata() {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("0"));
        h.insert("grpc-message", HeaderValue::from_static("ok"));
        h.insert("grpc-retry-pushback-ms", HeaderValue::from_static("10"));
        assert!(received(&h).is_empty());
        assert!(received(&HeaderMap::new()).is_empty());
    }
}
