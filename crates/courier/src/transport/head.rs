//! The heads of gRPC's HTTP/2 messages as the transport carries them: the
//! few fields gRPC reads or writes on every call in slots of their own, and
//! everything else (the call's metadata) in a header map, which stays
//! empty, and unallocated, on a call that has none.
//!
//! The engine parses received header blocks straight into these slots and
//! encodes these slots straight into blocks (`engine::conn::headers`), so
//! no general header map, URI or method is built on a call's hot path.

use bytes::Bytes;
use http::HeaderMap;
use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery};

use crate::status::Status;

/// gRPC's own fields of a received header block, and the rest.
///
/// A field that occurs more than once keeps its first value in its slot,
/// as a header map's `get` would. Fields the protocol reserves that gRPC
/// does not use (any other `grpc-*`) are dropped; every other field is
/// metadata.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// `content-type`.
    pub(crate) content_type: Option<Bytes>,
    /// `te` (the decoder already refused any value but `trailers`).
    pub(crate) te: Option<Bytes>,
    /// `grpc-timeout`.
    pub(crate) grpc_timeout: Option<Bytes>,
    /// `grpc-encoding`.
    pub(crate) grpc_encoding: Option<Bytes>,
    /// `grpc-accept-encoding`.
    pub(crate) grpc_accept_encoding: Option<Bytes>,
    /// `grpc-status`.
    pub(crate) grpc_status: Option<Bytes>,
    /// `grpc-message`.
    pub(crate) grpc_message: Option<Bytes>,
    /// `grpc-status-details-bin`.
    pub(crate) grpc_status_details_bin: Option<Bytes>,
    /// `grpc-previous-rpc-attempts`.
    pub(crate) grpc_previous_rpc_attempts: Option<Bytes>,
    /// `grpc-retry-pushback-ms`.
    pub(crate) grpc_retry_pushback_ms: Option<Bytes>,
    /// Every other field: the call's metadata.
    pub(crate) metadata: HeaderMap,
}

impl Fields {
    /// The slot for a field gRPC reads, by name.
    pub(crate) fn slot(&mut self, name: &[u8]) -> Option<&mut Option<Bytes>> {
        Some(match name {
            b"te" => &mut self.te,
            b"content-type" => &mut self.content_type,
            b"grpc-status" => &mut self.grpc_status,
            b"grpc-timeout" => &mut self.grpc_timeout,
            b"grpc-message" => &mut self.grpc_message,
            b"grpc-encoding" => &mut self.grpc_encoding,
            b"grpc-accept-encoding" => &mut self.grpc_accept_encoding,
            b"grpc-retry-pushback-ms" => &mut self.grpc_retry_pushback_ms,
            b"grpc-status-details-bin" => &mut self.grpc_status_details_bin,
            b"grpc-previous-rpc-attempts" => &mut self.grpc_previous_rpc_attempts,
            _ => return None,
        })
    }
}

/// A received request head (server side).
#[derive(Debug)]
pub(crate) struct RequestHead {
    /// `:method`.
    pub(crate) method: Bytes,
    /// `:path`, not empty.
    pub(crate) path: Bytes,
    /// The declared `content-length`, if any.
    pub(crate) content_length: Option<u64>,
    /// The regular fields.
    pub(crate) fields: Fields,
}

/// A received response head (client side).
#[derive(Debug)]
pub(crate) struct ResponseHead {
    /// `:status`, a final (2xx to 5xx) one.
    pub(crate) status: u16,
    /// The regular fields: in a Trailers-Only response, the status too.
    pub(crate) fields: Fields,
}

/// A request head to send (client side).
#[derive(Debug)]
pub(crate) struct OutRequest {
    /// Whether `:scheme` is `https`.
    pub(crate) https: bool,
    /// `:authority`.
    pub(crate) authority: Authority,
    /// `:path`.
    pub(crate) path: PathAndQuery,
    /// `user-agent`.
    pub(crate) user_agent: HeaderValue,
    /// `grpc-timeout`, encoded.
    pub(crate) timeout: Option<HeaderValue>,
    /// `grpc-encoding`, when the request's messages are compressed.
    pub(crate) encoding: Option<&'static str>,
    /// `grpc-accept-encoding`, the encodings the caller takes.
    pub(crate) accept_encoding: Option<&'static str>,
    /// `grpc-previous-rpc-attempts`, when not 0.
    pub(crate) previous_attempts: u32,
    /// The call's metadata.
    pub(crate) metadata: HeaderMap,
}

/// gRPC's fields of a response head or of trailers, to send.
#[derive(Debug, Default)]
pub(crate) struct OutFields {
    /// `content-type` (response heads): nearly always `application/grpc`.
    pub(crate) content_type: Option<HeaderValue>,
    /// `grpc-encoding`, when the responses are compressed.
    pub(crate) encoding: Option<&'static str>,
    /// `grpc-accept-encoding`, the encodings the server takes.
    pub(crate) accept_encoding: Option<&'static str>,
    /// The call's status, with its message, details, pushback and trailing
    /// metadata (trailers, and Trailers-Only responses).
    pub(crate) status: Option<Status>,
    /// Other fields: the response's leading metadata, or, on answers that
    /// are not gRPC, whatever they carry.
    pub(crate) metadata: HeaderMap,
}

/// A response head to send (server side).
#[derive(Debug)]
pub(crate) struct OutResponse {
    /// `:status`: 200 for every gRPC answer.
    pub(crate) status: u16,
    /// The fields.
    pub(crate) fields: OutFields,
}

impl OutResponse {
    /// A `:status: 200` head with `fields`.
    pub(crate) fn ok(fields: OutFields) -> OutResponse {
        OutResponse { status: 200, fields }
    }
}
