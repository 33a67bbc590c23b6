//! Header blocks as HTTP messages: a decoded block's fields checked against
//! RFC 9113 §8.3 (pseudo-headers) and turned into a request head, response
//! head or trailers; and heads encoded into blocks.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};

use super::shared::OutHead;
use crate::transport::engine::hpack::{BlockEncoder, Field, Indexing};

/// Why a header block does not make a valid message: the stream is reset
/// with PROTOCOL_ERROR (RFC 9113 §8.1.1).
#[derive(Debug)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// Adds a regular field to `map`.
fn add(map: &mut HeaderMap, field: Field) -> Result<(), Malformed> {
    let name = HeaderName::from_bytes(&field.name).map_err(|_| Malformed("a field name that is not a token"))?;
    let mut value =
        HeaderValue::from_maybe_shared(field.value).map_err(|_| Malformed("a field value with control characters"))?;
    value.set_sensitive(field.sensitive);
    map.append(name, value);
    Ok(())
}

/// Regular fields after the pseudo-headers, which must all come first.
fn regular(fields: impl Iterator<Item = Field>) -> Result<HeaderMap, Malformed> {
    let mut map = HeaderMap::new();
    for field in fields {
        if field.is_pseudo() {
            return Err(Malformed("a pseudo-header after a regular field (RFC 9113 §8.3)"));
        }
        add(&mut map, field)?;
    }
    Ok(map)
}

/// A request head (server side), with the declared content-length.
pub(crate) fn request(fields: Vec<Field>) -> Result<(Request<()>, Option<u64>), Malformed> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut fields = fields.into_iter().peekable();
    while let Some(field) = fields.next_if(|f| f.is_pseudo()) {
        let slot = match &field.name[..] {
            b":method" => &mut method,
            b":scheme" => &mut scheme,
            b":authority" => &mut authority,
            b":path" => &mut path,
            b":status" => return Err(Malformed("a request with :status (RFC 9113 §8.3.2)")),
            _ => return Err(Malformed("an unknown pseudo-header (RFC 9113 §8.3)")),
        };
        if slot.replace(field.value).is_some() {
            return Err(Malformed("a repeated pseudo-header (RFC 9113 §8.3)"));
        }
    }
    let headers = regular(fields)?;
    let method = method.ok_or(Malformed("a request without :method (RFC 9113 §8.3.1)"))?;
    let method = Method::from_bytes(&method).map_err(|_| Malformed("an invalid :method"))?;
    let (Some(scheme), Some(path)) = (scheme, path) else {
        return Err(Malformed("a request without :scheme or :path (RFC 9113 §8.3.1)"));
    };
    if path.is_empty() {
        return Err(Malformed("an empty :path (RFC 9113 §8.3.1)"));
    }
    let mut uri = Uri::builder().scheme(&scheme[..]).path_and_query(&path[..]);
    if let Some(authority) = &authority {
        uri = uri.authority(&authority[..]);
    } else {
        uri = uri.authority("");
    }
    let uri = uri
        .build()
        .or_else(|_| Uri::builder().path_and_query(&path[..]).build())
        .map_err(|_| Malformed("an invalid :path"))?;
    let content_length = content_length(&headers)?;
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = http::Version::HTTP_2;
    *request.headers_mut() = headers;
    Ok((request, content_length))
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Malformed> {
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(first) = lengths.next() else {
        return Ok(None);
    };
    let parsed = first
        .to_str()
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(Malformed("an invalid content-length"))?;
    if lengths.any(|other| other != first) {
        return Err(Malformed("conflicting content-length fields"));
    }
    Ok(Some(parsed))
}

/// What a response's first block was.
pub(crate) enum ResponseBlock {
    /// An informational (1xx) head, to be skipped.
    Informational,
    /// The response head.
    Final(Response<()>),
}

/// A response head (client side).
pub(crate) fn response(fields: Vec<Field>) -> Result<ResponseBlock, Malformed> {
    let mut status = None;
    let mut fields = fields.into_iter().peekable();
    while let Some(field) = fields.next_if(|f| f.is_pseudo()) {
        match &field.name[..] {
            b":status" if status.is_none() => status = Some(field.value),
            b":status" => return Err(Malformed("a repeated :status (RFC 9113 §8.3)")),
            _ => return Err(Malformed("a response with a request pseudo-header (RFC 9113 §8.3.2)")),
        }
    }
    let headers = regular(fields)?;
    let status = status.ok_or(Malformed("a response without :status (RFC 9113 §8.3.2)"))?;
    let status = StatusCode::from_bytes(&status).map_err(|_| Malformed("an invalid :status"))?;
    if status.is_informational() {
        return Ok(ResponseBlock::Informational);
    }
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = http::Version::HTTP_2;
    *response.headers_mut() = headers;
    Ok(ResponseBlock::Final(response))
}

/// Trailers: regular fields only.
pub(crate) fn trailers(fields: Vec<Field>) -> Result<HeaderMap, Malformed> {
    if fields.iter().any(Field::is_pseudo) {
        return Err(Malformed("a pseudo-header in trailers (RFC 9113 §8.1)"));
    }
    regular(fields.into_iter())
}

/// How a regular field may be indexed.
fn indexing(name: &HeaderName, value: &HeaderValue) -> Indexing {
    if value.is_sensitive() {
        return Indexing::NeverIndex;
    }
    match name.as_str() {
        // Different on every call.
        "grpc-timeout" | "content-length" | "grpc-message" | "grpc-previous-rpc-attempts" => Indexing::DoNotIndex,
        _ => Indexing::Index,
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
        block.field(name.as_str().as_bytes(), value.as_bytes(), indexing(name, value));
    }
}

/// Encodes a head into `block`.
pub(crate) fn encode_head(block: &mut BlockEncoder<'_>, head: &OutHead) {
    match head {
        OutHead::Request(parts) => {
            block.field(b":method", parts.method.as_str().as_bytes(), Indexing::Index);
            let scheme = parts.uri.scheme_str().unwrap_or("http");
            block.field(b":scheme", scheme.as_bytes(), Indexing::Index);
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            block.field(b":path", path.as_bytes(), Indexing::Index);
            if let Some(authority) = parts.uri.authority() {
                block.field(b":authority", authority.as_str().as_bytes(), Indexing::Index);
            }
            encode_map(block, &parts.headers);
        }
        OutHead::Response(parts) => {
            block.field(b":status", parts.status.as_str().as_bytes(), Indexing::Index);
            encode_map(block, &parts.headers);
        }
    }
}

/// Encodes trailers into `block`.
pub(crate) fn encode_trailers(block: &mut BlockEncoder<'_>, trailers: &HeaderMap) {
    encode_map(block, trailers);
}
