//! Status: the outcome of a gRPC call, as a code, a message, rich error
//! details and trailing metadata.
//!
//! ```
//! use courier::{Code, Status};
//! use courier::status::details::ErrorInfo;
//!
//! let status = Status::with_details(
//!     Code::InvalidArgument,
//!     "name is empty",
//!     [ErrorInfo { reason: "EMPTY_NAME".into(), domain: "example.com".into(), ..Default::default() }.to_any()],
//! );
//! let info: ErrorInfo = status.detail().unwrap();
//! assert_eq!(info.reason, "EMPTY_NAME");
//! ```

mod code;
pub mod details;

use std::fmt;

use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, utf8_percent_encode};
use prost::Message as _;

pub use code::Code;

use crate::metadata::Metadata;
use crate::transport::head::Fields;

/// Bytes that `grpc-message` carries percent-encoded: everything outside
/// 0x20..=0x7E, and `%` itself.
const MESSAGE_ENCODE: &AsciiSet = &CONTROLS.add(b'%');

/// The outcome of a gRPC call.
///
/// Two words in size: the message, details and metadata live behind one
/// allocation, which a bare code does not need.
#[derive(Clone)]
pub struct Status {
    code: Code,
    rest: Option<Box<Rest>>,
}

#[derive(Clone, Default)]
struct Rest {
    message: String,
    details: Bytes,
    metadata: Metadata,
    pushback: Option<RetryPushback>,
}

/// A server's word on retrying a failed call, sent in the
/// `grpc-retry-pushback-ms` trailer (gRFC A6). A client with a retry or
/// hedging policy obeys it: it waits exactly this long before its next
/// attempt, or makes no more attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryPushback {
    /// Retry after this delay (whole milliseconds, up to 2^31 - 1).
    After(std::time::Duration),
    /// Do not retry.
    Stop,
}

impl RetryPushback {
    /// Reads a `grpc-retry-pushback-ms` value: a non-negative 32-bit
    /// integer is a delay; a negative or unreadable one means stop.
    pub(crate) fn parse(value: &[u8]) -> RetryPushback {
        let ms = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok());
        match ms {
            Some(ms) if ms >= 0 => RetryPushback::After(std::time::Duration::from_millis(ms as u64)),
            _ => RetryPushback::Stop,
        }
    }

    fn header_value(self) -> http::HeaderValue {
        match self {
            RetryPushback::After(d) => http::HeaderValue::from(d.as_millis().min(i32::MAX as u128) as u32),
            RetryPushback::Stop => http::HeaderValue::from_static("-1"),
        }
    }
}

static EMPTY_BYTES: Bytes = Bytes::new();
static EMPTY_METADATA: std::sync::LazyLock<Metadata> = std::sync::LazyLock::new(Metadata::new);

impl Status {
    /// A status with a code and a message.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        let message = message.into();
        let rest = (!message.is_empty()).then(|| {
            Box::new(Rest {
                message,
                ..Default::default()
            })
        });
        Status { code, rest }
    }

    /// A status carrying rich error details, sent as a `google.rpc.Status`
    /// in `grpc-status-details-bin`.
    pub fn with_details(
        code: Code,
        message: impl Into<String>,
        details: impl IntoIterator<Item = prost_types::Any>,
    ) -> Status {
        let message = message.into();
        let proto = details::RpcStatus {
            code: code.as_i32(),
            message: message.clone(),
            details: details.into_iter().collect(),
        };
        let details = Bytes::from(proto.encode_to_vec());
        Status {
            code,
            rest: Some(Box::new(Rest {
                message,
                details,
                metadata: Metadata::new(),
                pushback: None,
            })),
        }
    }

    fn rest_mut(&mut self) -> &mut Rest {
        self.rest.get_or_insert_with(Default::default)
    }

    /// Tells a client with a retry or hedging policy when to try again, or
    /// not to (`grpc-retry-pushback-ms`, gRFC A6).
    ///
    /// ```
    /// use std::time::Duration;
    /// use courier::Status;
    /// use courier::status::RetryPushback;
    /// let status = Status::unavailable("overloaded")
    ///     .with_retry_pushback(RetryPushback::After(Duration::from_millis(250)));
    /// assert_eq!(status.retry_pushback(), Some(RetryPushback::After(Duration::from_millis(250))));
    /// ```
    pub fn with_retry_pushback(mut self, pushback: RetryPushback) -> Status {
        self.rest_mut().pushback = Some(pushback);
        self
    }

    /// The server's retry pushback, if it sent one.
    pub fn retry_pushback(&self) -> Option<RetryPushback> {
        self.rest.as_ref().and_then(|r| r.pushback)
    }

    /// The OK status.
    pub fn ok() -> Status {
        Status {
            code: Code::Ok,
            rest: None,
        }
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        self.rest.as_ref().map_or("", |r| &r.message)
    }

    /// The encoded `google.rpc.Status`, empty if there is none.
    pub fn details_bytes(&self) -> &Bytes {
        self.rest.as_ref().map_or(&EMPTY_BYTES, |r| &r.details)
    }

    /// The rich error details, decoded. Empty when none were sent.
    pub fn details(&self) -> Result<Vec<prost_types::Any>, prost::DecodeError> {
        let details = self.details_bytes();
        if details.is_empty() {
            return Ok(Vec::new());
        }
        Ok(details::RpcStatus::decode(details.clone())?.details)
    }

    /// The first detail of type `T`, if any.
    pub fn detail<T: prost::Name + Default>(&self) -> Option<T> {
        self.details()
            .ok()?
            .iter()
            .find(|any| any.type_url == T::type_url())
            .and_then(|any| T::decode(any.value.as_slice()).ok())
    }

    /// Trailing metadata sent or received with this status.
    pub fn metadata(&self) -> &Metadata {
        self.rest.as_ref().map_or(&EMPTY_METADATA, |r| &r.metadata)
    }

    /// The `grpc-retry-pushback-ms` value to send, if the status has one.
    pub(crate) fn pushback_header(&self) -> Option<http::HeaderValue> {
        self.rest.as_ref()?.pushback.map(RetryPushback::header_value)
    }

    /// Trailing metadata, to change before sending.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.rest_mut().metadata
    }

    /// Replaces the trailing metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Status {
        if !metadata.is_empty() || self.rest.is_some() {
            self.rest_mut().metadata = metadata;
        }
        self
    }

    /// Shorthand for [`Code::Cancelled`].
    pub fn cancelled(message: impl Into<String>) -> Status {
        Status::new(Code::Cancelled, message)
    }
    /// Shorthand for [`Code::Unknown`].
    pub fn unknown(message: impl Into<String>) -> Status {
        Status::new(Code::Unknown, message)
    }
    /// Shorthand for [`Code::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }
    /// Shorthand for [`Code::DeadlineExceeded`].
    pub fn deadline_exceeded(message: impl Into<String>) -> Status {
        Status::new(Code::DeadlineExceeded, message)
    }
    /// Shorthand for [`Code::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Status {
        Status::new(Code::NotFound, message)
    }
    /// Shorthand for [`Code::AlreadyExists`].
    pub fn already_exists(message: impl Into<String>) -> Status {
        Status::new(Code::AlreadyExists, message)
    }
    /// Shorthand for [`Code::PermissionDenied`].
    pub fn permission_denied(message: impl Into<String>) -> Status {
        Status::new(Code::PermissionDenied, message)
    }
    /// Shorthand for [`Code::ResourceExhausted`].
    pub fn resource_exhausted(message: impl Into<String>) -> Status {
        Status::new(Code::ResourceExhausted, message)
    }
    /// Shorthand for [`Code::FailedPrecondition`].
    pub fn failed_precondition(message: impl Into<String>) -> Status {
        Status::new(Code::FailedPrecondition, message)
    }
    /// Shorthand for [`Code::Aborted`].
    pub fn aborted(message: impl Into<String>) -> Status {
        Status::new(Code::Aborted, message)
    }
    /// Shorthand for [`Code::OutOfRange`].
    pub fn out_of_range(message: impl Into<String>) -> Status {
        Status::new(Code::OutOfRange, message)
    }
    /// Shorthand for [`Code::Unimplemented`].
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }
    /// Shorthand for [`Code::Internal`].
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::Internal, message)
    }
    /// Shorthand for [`Code::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::new(Code::Unavailable, message)
    }
    /// Shorthand for [`Code::DataLoss`].
    pub fn data_loss(message: impl Into<String>) -> Status {
        Status::new(Code::DataLoss, message)
    }
    /// Shorthand for [`Code::Unauthenticated`].
    pub fn unauthenticated(message: impl Into<String>) -> Status {
        Status::new(Code::Unauthenticated, message)
    }

    /// Reads a status from trailers (or a Trailers-Only response), taking
    /// their metadata. `None` when there is no `grpc-status`.
    pub(crate) fn from_fields(fields: Fields) -> Option<Status> {
        let code = Code::from_header(&fields.grpc_status?);
        let message = fields.grpc_message.map(|v| decode_message(&v)).unwrap_or_default();
        let details = fields
            .grpc_status_details_bin
            .and_then(|v| crate::metadata::MetadataValue::Binary(&v).to_bytes().ok())
            .map(Bytes::from)
            .unwrap_or_default();
        let metadata = Metadata::from_received(fields.metadata);
        // Only a failure carries pushback.
        let pushback = fields
            .grpc_retry_pushback_ms
            .filter(|_| code != Code::Ok)
            .map(|v| RetryPushback::parse(&v));
        let rest =
            (!message.is_empty() || !details.is_empty() || !metadata.is_empty() || pushback.is_some()).then(|| {
                Box::new(Rest {
                    message,
                    details,
                    metadata,
                    pushback,
                })
            });
        Some(Status { code, rest })
    }
}

/// Percent-encodes a status message for `grpc-message`.
///
/// A leading or trailing space is escaped too: an HTTP/2 field value may
/// not start or end with whitespace (RFC 9113 §8.2.1), and a peer that
/// checks (Courier's own decoder, Python's `h2`) would reject the trailers.
pub(crate) fn encode_message(message: &str) -> String {
    let mut encoded = utf8_percent_encode(message, MESSAGE_ENCODE).to_string();
    if encoded.ends_with(' ') {
        encoded.pop();
        encoded.push_str("%20");
    }
    if encoded.starts_with(' ') {
        encoded.replace_range(..1, "%20");
    }
    encoded
}

/// Decodes `grpc-message`. Never fails: invalid escapes are kept as they are.
pub(crate) fn decode_message(raw: &[u8]) -> String {
    String::from_utf8_lossy(&percent_decode(raw).collect::<Vec<u8>>()).into_owned()
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Status");
        d.field("code", &self.code).field("message", &self.message());
        if !self.details_bytes().is_empty() {
            d.field("details", &self.details_bytes().len());
        }
        if !self.metadata().is_empty() {
            d.field("metadata", self.metadata());
        }
        d.finish()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message().is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message())
        }
    }
}

impl std::error::Error for Status {}

impl From<std::io::Error> for Status {
    fn from(err: std::io::Error) -> Status {
        use std::io::ErrorKind::*;
        let code = match err.kind() {
            TimedOut => Code::DeadlineExceeded,
            PermissionDenied => Code::PermissionDenied,
            NotFound => Code::NotFound,
            AlreadyExists => Code::AlreadyExists,
            InvalidInput | InvalidData => Code::InvalidArgument,
            ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected | BrokenPipe | AddrNotAvailable
            | UnexpectedEof => Code::Unavailable,
            _ => Code::Unknown,
        };
        Status::new(code, err.to_string())
    }
}

impl From<crate::metadata::MetadataError> for Status {
    fn from(err: crate::metadata::MetadataError) -> Status {
        Status::internal(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_percent_encoding() {
        let raw = "ünïcode\t% done\r\n";
        let enc = encode_message(raw);
        assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{enc}");
        assert!(enc.contains("%25"));
        assert_eq!(decode_message(enc.as_bytes()), raw);
        // Invalid escapes are kept, not an error.
        assert_eq!(decode_message(b"50%zz"), "50%zz");
    }

    #[test]
    fn a_message_with_spaces_at_its_ends_is_sent_as_a_valid_field_value() {
        for message in [" leading", "trailing ", " both ", " ", "  "] {
            let encoded = encode_message(message);
            assert!(!encoded.starts_with(' ') && !encoded.ends_with(' '), "{encoded:?}");
            assert_eq!(decode_message(encoded.as_bytes()), message);
            let status = Status::new(Code::NotFound, message);
            let sent = crate::transport::engine::conn::headers::encoded_trailers(&status);
            let back = Status::from_fields(crate::transport::engine::conn::headers::fields_from_map(&sent)).unwrap();
            assert_eq!(back.message(), message);
        }
        assert_eq!(encode_message("a b"), "a b");
    }

    #[test]
    fn trailers_round_trip_with_details() {
        let mut st = Status::with_details(
            Code::FailedPrecondition,
            "no: \u{1F600}",
            [details::ErrorInfo {
                reason: "R".into(),
                ..Default::default()
            }
            .to_any()],
        );
        st.metadata_mut().insert("x-k", "v").unwrap();
        let sent = crate::transport::engine::conn::headers::encoded_trailers(&st);
        assert!(sent.contains_key("grpc-status"));
        let back = Status::from_fields(crate::transport::engine::conn::headers::fields_from_map(&sent)).unwrap();
        assert_eq!(back.code(), Code::FailedPrecondition);
        assert_eq!(back.message(), "no: \u{1F600}");
        assert_eq!(back.detail::<details::ErrorInfo>().unwrap().reason, "R");
        assert_eq!(back.metadata().get("x-k"), Some("v"));
        assert!(!back.metadata().contains_key("grpc-status"));
    }
}
