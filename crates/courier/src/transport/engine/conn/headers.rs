//! Header blocks as gRPC's messages: a block's fields, as the decoder hands
//! them on, sorted straight into the slots of a [`RequestHead`],
//! [`ResponseHead`] or trailers ([`Fields`]) and checked against RFC 9113
//! §8.3 (pseudo-headers); and heads encoded from their slots, the fields
//! sent on every call as [`KnownField`]s (one octet once the connection has
//! sent them). No header map is built except for a call's own metadata.

use bytes::Bytes;
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use crate::status::Status;
use crate::transport::engine::hpack::{BlockEncoder, Field, FieldSink, Indexing, KnownField};
use crate::transport::head::{Fields, OutFields, OutRequest, OutResponse, RequestHead, ResponseHead};

/// Why a header block does not make a valid message: the stream is reset
/// with PROTOCOL_ERROR (RFC 9113 §8.1.1).
#[derive(Debug)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// A header block's fields as they are decoded: pseudo-headers and gRPC's
/// fields in slots, the rest as metadata, and the first rule broken.
#[derive(Debug, Default)]
pub(crate) struct Block {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    status: Option<Bytes>,
    /// Any pseudo-header at all (trailers may have none).
    pseudo: bool,
    /// A regular field has been seen: pseudo-headers must come first.
    regular: bool,
    content_length: Option<u64>,
    fields: Fields,
    malformed: Option<Malformed>,
}

impl Block {
    fn fail(&mut self, why: &'static str) {
        self.malformed.get_or_insert(Malformed(why));
    }

    fn check(&mut self) -> Result<(), Malformed> {
        self.malformed.take().map_or(Ok(()), Err)
    }

    fn pseudo(&mut self, field: Field) {
        if self.regular {
            return self.fail("a pseudo-header after a regular field (RFC 9113 §8.3)");
        }
        self.pseudo = true;
        let slot = match &field.name[..] {
            b":method" => &mut self.method,
            b":scheme" => &mut self.scheme,
            b":authority" => &mut self.authority,
            b":path" => &mut self.path,
            b":status" => &mut self.status,
            _ => return self.fail("an unknown pseudo-header (RFC 9113 §8.3)"),
        };
        if slot.replace(field.value).is_some() {
            self.fail("a repeated pseudo-header (RFC 9113 §8.3)");
        }
    }

    fn content_length(&mut self, value: &[u8]) {
        let parsed = std::str::from_utf8(value).ok().and_then(|s| s.parse::<u64>().ok());
        match (parsed, self.content_length) {
            (None, _) => self.fail("an invalid content-length"),
            (Some(n), Some(before)) if n != before => self.fail("conflicting content-length fields"),
            (Some(n), _) => self.content_length = Some(n),
        }
    }

    fn metadata(&mut self, field: Field) {
        let Ok(name) = HeaderName::from_bytes(&field.name) else {
            return self.fail("a field name that is not a token");
        };
        let Ok(mut value) = HeaderValue::from_maybe_shared(field.value) else {
            return self.fail("a field value with control characters");
        };
        value.set_sensitive(field.sensitive);
        self.fields.metadata.append(name, value);
    }
}

impl FieldSink for Block {
    fn field(&mut self, field: Field) {
        if self.malformed.is_some() {
            return;
        }
        if field.is_pseudo() {
            return self.pseudo(field);
        }
        self.regular = true;
        if let Some(slot) = self.fields.slot(&field.name) {
            if slot.is_none() {
                *slot = Some(field.value);
            }
            return;
        }
        match &field.name[..] {
            b"content-length" => self.content_length(&field.value),
            // Reserved by gRPC, and none it reads.
            name if name.starts_with(b"grpc-") => {}
            _ => self.metadata(field),
        }
    }
}

/// Whether `method` is an HTTP token (RFC 9110 §9.1, §5.6.2).
fn is_token(method: &[u8]) -> bool {
    !method.is_empty()
        && method
            .iter()
            .all(|&o| o.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&o))
}

/// A request head (server side).
pub(crate) fn request(mut block: Block) -> Result<RequestHead, Malformed> {
    block.check()?;
    if block.status.is_some() {
        return Err(Malformed("a request with :status (RFC 9113 §8.3.2)"));
    }
    let method = block
        .method
        .ok_or(Malformed("a request without :method (RFC 9113 §8.3.1)"))?;
    if !is_token(&method) {
        return Err(Malformed("an invalid :method"));
    }
    let (Some(_scheme), Some(path)) = (block.scheme, block.path) else {
        return Err(Malformed("a request without :scheme or :path (RFC 9113 §8.3.1)"));
    };
    if path.is_empty() {
        return Err(Malformed("an empty :path (RFC 9113 §8.3.1)"));
    }
    Ok(RequestHead {
        method,
        path,
        content_length: block.content_length,
        fields: block.fields,
    })
}

/// A response head (client side), or `None` for an informational (1xx)
/// head, which is skipped.
pub(crate) fn response(mut block: Block) -> Result<Option<ResponseHead>, Malformed> {
    block.check()?;
    if block.method.is_some() || block.scheme.is_some() || block.authority.is_some() || block.path.is_some() {
        return Err(Malformed("a response with a request pseudo-header (RFC 9113 §8.3.2)"));
    }
    let status = block
        .status
        .ok_or(Malformed("a response without :status (RFC 9113 §8.3.2)"))?;
    let status = match &status[..] {
        &[a, b, c] if (b'1'..=b'9').contains(&a) && b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(Malformed("an invalid :status")),
    };
    if status < 200 {
        return Ok(None);
    }
    Ok(Some(ResponseHead {
        status,
        fields: block.fields,
    }))
}

/// Trailers: regular fields only.
pub(crate) fn trailers(mut block: Block) -> Result<Fields, Malformed> {
    block.check()?;
    if block.pseudo {
        return Err(Malformed("a pseudo-header in trailers (RFC 9113 §8.1)"));
    }
    Ok(block.fields)
}

// The fields sent on every call. Each has a slot of the encoder's own.
const CONTENT_TYPE_GRPC: KnownField = KnownField {
    slot: 0,
    name: b"content-type",
    value: b"application/grpc",
};
const TE_TRAILERS: KnownField = KnownField {
    slot: 1,
    name: b"te",
    value: b"trailers",
};
const GRPC_STATUS: KnownField = KnownField {
    slot: 2,
    name: b"grpc-status",
    value: b"0",
};
const GRPC_ACCEPT_ENCODING: KnownField = KnownField {
    slot: 3,
    name: b"grpc-accept-encoding",
    value: b"",
};
const GRPC_ENCODING: KnownField = KnownField {
    slot: 4,
    name: b"grpc-encoding",
    value: b"",
};

/// How a field of a call's metadata may be indexed.
fn indexing(value: &HeaderValue) -> Indexing {
    if value.is_sensitive() {
        Indexing::NeverIndex
    } else {
        Indexing::Index
    }
}

fn encode_map(block: &mut BlockEncoder<'_>, map: &HeaderMap) {
    for (name, value) in map {
        // Connection-specific fields are not HTTP/2's (RFC 9113 §8.2.2).
        if matches!(
            name.as_str(),
            "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
        ) {
            continue;
        }
        block.field(name.as_str().as_bytes(), value.as_bytes(), indexing(value));
    }
}

/// Encodes a request head into `block`.
pub(crate) fn encode_request(block: &mut BlockEncoder<'_>, head: &OutRequest) {
    // Static table entries: `:method: POST`, `:scheme: http` or `https`.
    block.field(b":method", b"POST", Indexing::Index);
    let scheme: &[u8] = if head.https { b"https" } else { b"http" };
    block.field(b":scheme", scheme, Indexing::Index);
    block.field(b":path", head.path.as_str().as_bytes(), Indexing::Index);
    block.field(b":authority", head.authority.as_str().as_bytes(), Indexing::Index);
    block.known(CONTENT_TYPE_GRPC);
    block.known(TE_TRAILERS);
    block.field(b"user-agent", head.user_agent.as_bytes(), Indexing::Index);
    if let Some(timeout) = &head.timeout {
        // Different on every call.
        block.field(b"grpc-timeout", timeout.as_bytes(), Indexing::DoNotIndex);
    }
    encode_compression(block, head.encoding, head.accept_encoding);
    if head.previous_attempts > 0 {
        let attempts = head.previous_attempts.to_string();
        block.field(b"grpc-previous-rpc-attempts", attempts.as_bytes(), Indexing::DoNotIndex);
    }
    encode_map(block, &head.metadata);
}

/// `grpc-encoding` and `grpc-accept-encoding`, as known fields.
fn encode_compression(block: &mut BlockEncoder<'_>, encoding: Option<&'static str>, accept: Option<&'static str>) {
    if let Some(encoding) = encoding {
        block.known(KnownField {
            value: encoding.as_bytes(),
            ..GRPC_ENCODING
        });
    }
    if let Some(accept) = accept {
        block.known(KnownField {
            value: accept.as_bytes(),
            ..GRPC_ACCEPT_ENCODING
        });
    }
}

/// Encodes a response head into `block`.
pub(crate) fn encode_response(block: &mut BlockEncoder<'_>, head: &OutResponse) {
    // `:status: 200` is a static table entry, as are the other common ones.
    let status = head.status.clamp(100, 999);
    let digits = [status / 100, status / 10 % 10, status % 10].map(|d| b'0' + d as u8);
    block.field(b":status", &digits, Indexing::Index);
    encode_fields(block, &head.fields);
}

/// Encodes trailers into `block`.
pub(crate) fn encode_trailers(block: &mut BlockEncoder<'_>, trailers: &OutFields) {
    encode_fields(block, trailers);
}

fn encode_fields(block: &mut BlockEncoder<'_>, fields: &OutFields) {
    match &fields.content_type {
        Some(ct) if ct.as_bytes() == CONTENT_TYPE_GRPC.value => block.known(CONTENT_TYPE_GRPC),
        Some(ct) => block.field(b"content-type", ct.as_bytes(), Indexing::Index),
        None => {}
    }
    encode_compression(block, fields.encoding, fields.accept_encoding);
    encode_map(block, &fields.metadata);
    if let Some(status) = &fields.status {
        encode_status(block, status);
    }
}

/// `grpc-status` and what goes with it: message, details, pushback and the
/// trailing metadata.
fn encode_status(block: &mut BlockEncoder<'_>, status: &Status) {
    block.known(KnownField {
        value: status.code().header_str().as_bytes(),
        ..GRPC_STATUS
    });
    let message = status.message();
    if !message.is_empty() {
        let encoded = crate::status::encode_message(message);
        block.field(b"grpc-message", encoded.as_bytes(), Indexing::DoNotIndex);
    }
    let details = status.details_bytes();
    if !details.is_empty() {
        let value = crate::metadata::Metadata::bin_value(details);
        block.field(b"grpc-status-details-bin", value.as_bytes(), Indexing::DoNotIndex);
    }
    if let Some(pushback) = status.pushback_header() {
        block.field(b"grpc-retry-pushback-ms", pushback.as_bytes(), Indexing::DoNotIndex);
    }
    encode_map(block, status.metadata().headers());
}

/// A header map's fields as a received block would deliver them, sorted
/// into trailers' slots: for tests and fuzzing, which start from maps.
/// `content-length`, which the transport reads as framing, is left out.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fields_from_map(map: &HeaderMap) -> Fields {
    let mut block = Block::default();
    for (name, value) in map.iter().filter(|(name, _)| *name != http::header::CONTENT_LENGTH) {
        block.field(Field {
            name: Bytes::copy_from_slice(name.as_str().as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            sensitive: value.is_sensitive(),
        });
    }
    trailers(block).unwrap_or_default()
}

/// The trailers a status is sent as, encoded then decoded by a fresh
/// encoder and decoder, as a map: for tests and fuzzing.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn encoded_trailers(status: &Status) -> HeaderMap {
    use crate::transport::engine::hpack::{Decoder, DecoderConfig, Encoder};
    let mut encoded = bytes::BytesMut::new();
    let mut encoder = Encoder::default();
    encode_trailers(
        &mut encoder.block(&mut encoded),
        &OutFields {
            status: Some(status.clone()),
            ..OutFields::default()
        },
    );
    let mut fields = Vec::new();
    let mut decoder = Decoder::new(DecoderConfig {
        max_header_list_size: usize::MAX,
        ..DecoderConfig::default()
    });
    decoder
        .decode(&encoded.freeze(), &mut fields)
        .expect("a block this encoder wrote decodes");
    let mut map = HeaderMap::new();
    for field in fields {
        let name = HeaderName::from_bytes(&field.name).expect("a valid name");
        map.append(
            name,
            HeaderValue::from_maybe_shared(field.value).expect("a valid value"),
        );
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(fields: &[(&str, &str)]) -> Block {
        let mut block = Block::default();
        for (name, value) in fields {
            block.field(Field {
                name: Bytes::copy_from_slice(name.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
                sensitive: false,
            });
        }
        block
    }

    const REQUEST: [(&str, &str); 4] = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/pkg.Service/Method"),
        (":authority", "example.com"),
    ];

    #[test]
    fn a_request_s_grpc_fields_go_into_slots_and_the_rest_into_metadata() {
        let mut fields = REQUEST.to_vec();
        fields.extend([
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "1S"),
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "gzip,zstd"),
            ("grpc-previous-rpc-attempts", "2"),
            ("grpc-something-else", "dropped"),
            ("user-agent", "test/1"),
            ("x-custom", "a"),
            ("x-custom", "b"),
            ("content-type", "ignored/second"),
        ]);
        let head = request(block(&fields)).expect("valid");
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/pkg.Service/Method");
        let f = &head.fields;
        assert_eq!(f.content_type.as_deref(), Some(&b"application/grpc"[..]));
        assert_eq!(f.te.as_deref(), Some(&b"trailers"[..]));
        assert_eq!(f.grpc_timeout.as_deref(), Some(&b"1S"[..]));
        assert_eq!(f.grpc_encoding.as_deref(), Some(&b"gzip"[..]));
        assert_eq!(f.grpc_accept_encoding.as_deref(), Some(&b"gzip,zstd"[..]));
        assert_eq!(f.grpc_previous_rpc_attempts.as_deref(), Some(&b"2"[..]));
        let keys: Vec<&str> = f.metadata.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["user-agent", "x-custom"]);
        assert_eq!(f.metadata.get_all("x-custom").iter().count(), 2);
    }

    #[test]
    fn malformed_requests_are_refused_with_the_rule_they_break() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[(":path", "/a/b"), (":scheme", "http")], "without :method"),
            (&[(":method", "POST"), (":scheme", "http")], "without :scheme or :path"),
            (
                &[(":method", "POST"), (":scheme", "http"), (":path", "")],
                "empty :path",
            ),
            (
                &[(":method", "PO ST"), (":scheme", "http"), (":path", "/")],
                "invalid :method",
            ),
            (&[(":method", "POST"), (":method", "GET")], "repeated"),
            (
                &[(":method", "POST"), ("x", "1"), (":path", "/")],
                "after a regular field",
            ),
            (&[(":method", "POST"), (":status", "200")], "with :status"),
        ];
        for (fields, rule) in cases {
            let why = request(block(fields)).expect_err("malformed").0;
            assert!(why.contains(rule), "{fields:?}: {why}");
        }
        let mut fields = REQUEST.to_vec();
        fields.extend([("content-length", "5"), ("content-length", "6")]);
        assert!(request(block(&fields)).unwrap_err().0.contains("conflicting"));
        let mut fields = REQUEST.to_vec();
        fields.push(("content-length", "5"));
        assert_eq!(request(block(&fields)).unwrap().content_length, Some(5));
        let mut fields = REQUEST.to_vec();
        fields.push(("x", "a\u{1}b"));
        assert!(request(block(&fields)).unwrap_err().0.contains("control characters"));
    }

    #[test]
    fn response_heads_read_status_and_skip_informational_ones() {
        let head = response(block(&[(":status", "200"), ("content-type", "application/grpc")]));
        let head = head.expect("valid").expect("200 is final");
        assert_eq!(head.status, 200);
        assert!(head.fields.metadata.is_empty());
        assert!(matches!(response(block(&[(":status", "103")])), Ok(None)));
        for bad in ["20", "2000", "abc", "099", ""] {
            assert!(response(block(&[(":status", bad)])).is_err(), "{bad:?}");
        }
        assert!(response(block(&[(":status", "200"), (":path", "/")])).is_err());
        assert!(response(block(&[("content-type", "application/grpc")])).is_err());
    }

    #[test]
    fn trailers_refuse_pseudo_headers() {
        assert!(trailers(block(&[("grpc-status", "0")])).is_ok());
        let why = trailers(block(&[(":status", "200"), ("grpc-status", "0")])).unwrap_err();
        assert!(why.0.contains("pseudo-header in trailers"));
    }

    #[test]
    fn a_status_survives_the_trip_through_trailers() {
        let mut status = Status::new(crate::Code::NotFound, "no such thing: 100% gone");
        status.metadata_mut().insert("x-k", "v").unwrap();
        let sent = encoded_trailers(&status);
        assert_eq!(sent.get("grpc-status").unwrap(), "5");
        let back = Status::from_fields(fields_from_map(&sent)).expect("has grpc-status");
        assert_eq!(back.code(), crate::Code::NotFound);
        assert_eq!(back.message(), "no such thing: 100% gone");
        assert_eq!(back.metadata().get("x-k"), Some("v"));
        assert!(!back.metadata().contains_key("grpc-status"));
    }

    #[test]
    fn a_request_head_encodes_and_decodes_to_its_slots() {
        use crate::transport::engine::hpack::{Decoder, DecoderConfig, Encoder};
        let mut encoder = Encoder::default();
        let mut decoder = Decoder::new(DecoderConfig::default());
        let mut metadata = HeaderMap::new();
        metadata.insert("x-custom", HeaderValue::from_static("1"));
        let out = OutRequest {
            https: true,
            authority: "example.com:443".parse().unwrap(),
            path: "/pkg.S/M".parse().unwrap(),
            user_agent: HeaderValue::from_static("courier/test"),
            timeout: Some(HeaderValue::from_static("100m")),
            encoding: Some("gzip"),
            accept_encoding: Some("gzip,zstd"),
            previous_attempts: 3,
            metadata,
        };
        let mut sizes = Vec::new();
        for _ in 0..2 {
            let mut encoded = bytes::BytesMut::new();
            encode_request(&mut encoder.block(&mut encoded), &out);
            sizes.push(encoded.len());
            let mut block = Block::default();
            decoder.decode(&encoded.freeze(), &mut block).unwrap();
            assert_eq!(block.scheme.as_deref(), Some(&b"https"[..]));
            assert_eq!(block.authority.as_deref(), Some(&b"example.com:443"[..]));
            let head = request(block).unwrap();
            assert_eq!(head.path, "/pkg.S/M");
            let f = head.fields;
            assert_eq!(f.content_type.as_deref(), Some(&b"application/grpc"[..]));
            assert_eq!(f.te.as_deref(), Some(&b"trailers"[..]));
            assert_eq!(f.grpc_timeout.as_deref(), Some(&b"100m"[..]));
            assert_eq!(f.grpc_encoding.as_deref(), Some(&b"gzip"[..]));
            assert_eq!(f.grpc_accept_encoding.as_deref(), Some(&b"gzip,zstd"[..]));
            assert_eq!(f.grpc_previous_rpc_attempts.as_deref(), Some(&b"3"[..]));
            assert_eq!(f.metadata.get("user-agent").unwrap(), "courier/test");
            assert_eq!(f.metadata.get("x-custom").unwrap(), "1");
        }
        assert!(
            sizes[1] < sizes[0] / 2,
            "the second block indexes what the first added: {sizes:?}"
        );
    }
}
