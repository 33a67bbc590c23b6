//! The header names gRPC reserves for itself, made once.
//!
//! A `&str` key costs a parse (and a lower-case check) on every `HeaderMap`
//! look-up, and an allocation of the name on every insert. These
//! `HeaderName`s are built at compile time with `HeaderName::from_static`:
//! look up, insert and remove with `&NAME` (inserting clones the name, which
//! for a static one copies pointers and allocates nothing). The per-call
//! paths (request and response headers, trailers, `Metadata::from_headers`)
//! use them instead of string literals; so can the server's.
//!
//! They are `static`, not `const`, because a `HeaderName` holds `Bytes`,
//! which has interior mutability (clippy's `declare_interior_mutable_const`).

use http::header::HeaderName;

/// `content-type`: `application/grpc`, with an optional `+codec` suffix.
pub(crate) static CONTENT_TYPE: HeaderName = http::header::CONTENT_TYPE;
/// `te`: `trailers`, which gRPC requests must carry.
pub(crate) static TE: HeaderName = http::header::TE;
/// `user-agent`: the client library, and what the application prepended.
pub(crate) static USER_AGENT: HeaderName = http::header::USER_AGENT;
/// `grpc-status`: the status code, in trailers.
pub(crate) static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`: the percent-encoded status message, in trailers.
pub(crate) static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// `grpc-status-details-bin`: an encoded `google.rpc.Status`, in trailers.
pub(crate) static GRPC_STATUS_DETAILS_BIN: HeaderName = HeaderName::from_static("grpc-status-details-bin");
/// `grpc-encoding`: how the sender's messages are compressed.
pub(crate) static GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
/// `grpc-accept-encoding`: the compressions the sender can read.
pub(crate) static GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
/// `grpc-timeout`: the call's deadline, as a duration, in request headers.
pub(crate) static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// A server's retry pushback (gRFC A6).
pub(crate) static GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");
/// How many attempts of a call came before this one (gRFC A6).
pub(crate) static GRPC_PREVIOUS_RPC_ATTEMPTS: HeaderName = HeaderName::from_static("grpc-previous-rpc-attempts");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_they_say() {
        for (name, text) in [
            (&GRPC_STATUS, "grpc-status"),
            (&GRPC_MESSAGE, "grpc-message"),
            (&GRPC_STATUS_DETAILS_BIN, "grpc-status-details-bin"),
            (&GRPC_ENCODING, "grpc-encoding"),
            (&GRPC_ACCEPT_ENCODING, "grpc-accept-encoding"),
            (&GRPC_TIMEOUT, "grpc-timeout"),
            (&CONTENT_TYPE, "content-type"),
            (&TE, "te"),
            (&USER_AGENT, "user-agent"),
        ] {
            assert_eq!(name.as_str(), text);
            assert_eq!(*name, HeaderName::from_bytes(text.as_bytes()).unwrap());
        }
    }
}
