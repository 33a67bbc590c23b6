//! Rich error details: `google.rpc.Status` and the standard detail messages
//! of `google/rpc/error_details.proto`, sent in `grpc-status-details-bin`.

use std::collections::HashMap;

/// Packs any named message into a `google.protobuf.Any`.
pub fn to_any<M: prost::Name>(message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

/// `google.rpc.Status`: the encoded form of a status with its details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// The developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// The detail messages.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

macro_rules! rpc_detail {
    ($ty:ident, $name:literal) => {
        impl prost::Name for $ty {
            const NAME: &'static str = $name;
            const PACKAGE: &'static str = "google.rpc";
            fn full_name() -> String {
                concat!("google.rpc.", $name).to_string()
            }
            fn type_url() -> String {
                concat!("type.googleapis.com/google.rpc.", $name).to_string()
            }
        }
        impl $ty {
            /// Packs this detail into a `google.protobuf.Any`.
            pub fn to_any(&self) -> prost_types::Any {
                to_any(self)
            }
        }
    };
}

rpc_detail!(RpcStatus, "Status");

/// `google.rpc.ErrorInfo`: the reason for an error, with its domain.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorInfo {
    /// A constant, UPPER_SNAKE_CASE reason.
    #[prost(string, tag = "1")]
    pub reason: String,
    /// The logical grouping of the reason, often a service name.
    #[prost(string, tag = "2")]
    pub domain: String,
    /// Further structured details.
    #[prost(map = "string, string", tag = "3")]
    pub metadata: HashMap<String, String>,
}
rpc_detail!(ErrorInfo, "ErrorInfo");

/// `google.rpc.RetryInfo`: when the client may retry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long to wait before retrying.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<prost_types::Duration>,
}
rpc_detail!(RetryInfo, "RetryInfo");

/// `google.rpc.DebugInfo`: debugging information from the server.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DebugInfo {
    /// The stack trace entries.
    #[prost(string, repeated, tag = "1")]
    pub stack_entries: Vec<String>,
    /// Any other debugging data.
    #[prost(string, tag = "2")]
    pub detail: String,
}
rpc_detail!(DebugInfo, "DebugInfo");

/// `google.rpc.QuotaFailure`: which quota checks failed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuotaFailure {
    /// The quota violations.
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<QuotaViolation>,
}
rpc_detail!(QuotaFailure, "QuotaFailure");

/// `google.rpc.QuotaFailure.Violation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuotaViolation {
    /// The subject on which the check failed.
    #[prost(string, tag = "1")]
    pub subject: String,
    /// Why the check failed.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.PreconditionFailure`: which preconditions failed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PreconditionFailure {
    /// The precondition violations.
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<PreconditionViolation>,
}
rpc_detail!(PreconditionFailure, "PreconditionFailure");

/// `google.rpc.PreconditionFailure.Violation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PreconditionViolation {
    /// The type of the precondition, service-specific.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// The subject that failed the check.
    #[prost(string, tag = "2")]
    pub subject: String,
    /// How the precondition failed.
    #[prost(string, tag = "3")]
    pub description: String,
}

/// `google.rpc.BadRequest`: which request fields were invalid.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BadRequest {
    /// The field violations.
    #[prost(message, repeated, tag = "1")]
    pub field_violations: Vec<FieldViolation>,
}
rpc_detail!(BadRequest, "BadRequest");

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldViolation {
    /// A path to the field, such as `user.email`.
    #[prost(string, tag = "1")]
    pub field: String,
    /// Why the field is invalid.
    #[prost(string, tag = "2")]
    pub description: String,
}

/// `google.rpc.RequestInfo`: identifies the request, for bug reports.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestInfo {
    /// An opaque request id.
    #[prost(string, tag = "1")]
    pub request_id: String,
    /// Data used to serve the request, such as an encrypted stack trace.
    #[prost(string, tag = "2")]
    pub serving_data: String,
}
rpc_detail!(RequestInfo, "RequestInfo");

/// `google.rpc.ResourceInfo`: the resource being accessed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceInfo {
    /// The resource's type.
    #[prost(string, tag = "1")]
    pub resource_type: String,
    /// The resource's name.
    #[prost(string, tag = "2")]
    pub resource_name: String,
    /// The resource's owner.
    #[prost(string, tag = "3")]
    pub owner: String,
    /// What error was met accessing it.
    #[prost(string, tag = "4")]
    pub description: String,
}
rpc_detail!(ResourceInfo, "ResourceInfo");

/// `google.rpc.Help`: links to documentation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Help {
    /// The links.
    #[prost(message, repeated, tag = "1")]
    pub links: Vec<HelpLink>,
}
rpc_detail!(Help, "Help");

/// `google.rpc.Help.Link`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HelpLink {
    /// What the link offers.
    #[prost(string, tag = "1")]
    pub description: String,
    /// The URL.
    #[prost(string, tag = "2")]
    pub url: String,
}

/// `google.rpc.LocalizedMessage`: an error message for end users.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LocalizedMessage {
    /// The locale, as a BCP-47 tag such as `en-US`.
    #[prost(string, tag = "1")]
    pub locale: String,
    /// The localized message.
    #[prost(string, tag = "2")]
    pub message: String,
}
rpc_detail!(LocalizedMessage, "LocalizedMessage");
