//! What went wrong, said so a person understands it, and the exit code it
//! gives.
//!
//! Every failure is one line on standard error (`error: ...`), never a panic.
//! A call that the server answered with a non-OK status also shows the rich
//! error details the status carries, one per line below it.
//!
//! Exit codes: 0 success; 1 a failure before or outside a call (unreachable
//! address, bad input, unknown method, ...); 2 a usage error; 3 `health` got
//! an answer other than SERVING; 64 + N a call ended with gRPC status code N
//! (as grpcurl does: 69 is NOT_FOUND, 78 UNAVAILABLE).

use std::fmt;

use courier::Status;
use courier::status::details::{
    BadRequest, DebugInfo, ErrorInfo, Help, LocalizedMessage, PreconditionFailure, QuotaFailure, RequestInfo,
    ResourceInfo, RetryInfo,
};
use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage};

/// The exit code of a plain failure.
pub const FAILURE: u8 = 1;
/// The exit code of `health` when the answer is not SERVING.
pub const NOT_SERVING: u8 = 3;

/// The exit code for a call that ended with `status`: 64 + its code.
pub fn status_exit_code(status: &Status) -> u8 {
    64 + status.code().as_i32() as u8
}

/// A failure of a verb.
#[derive(Debug)]
pub enum Error {
    /// A failure said in one line.
    Failure {
        /// The line.
        message: String,
        /// The exit code.
        exit: u8,
    },
    /// A call ended with a non-OK status.
    Rpc {
        /// The status.
        status: Status,
        /// The descriptors known, to show detail messages of the service's
        /// own types.
        pool: Option<DescriptorPool>,
    },
    /// Everything has been said already; exit with this code.
    Exit(u8),
}

/// The result of a verb.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A one-line failure with exit code 1.
    pub fn msg(message: impl fmt::Display) -> Error {
        Error::Failure {
            message: message.to_string(),
            exit: FAILURE,
        }
    }

    /// A one-line failure that exits as the status would (64 + code).
    pub fn with_status(message: impl fmt::Display, status: &Status) -> Error {
        Error::Failure {
            message: message.to_string(),
            exit: status_exit_code(status),
        }
    }

    /// A call that ended with `status`.
    pub fn rpc(status: Status, pool: Option<DescriptorPool>) -> Error {
        Error::Rpc { status, pool }
    }

    /// Prints the error to standard error and returns the exit code.
    pub fn report(self) -> u8 {
        match self {
            Error::Failure { message, exit } => {
                eprintln!("error: {message}");
                exit
            }
            Error::Rpc { status, pool } => {
                eprintln!("error: {}", status_line(&status));
                for line in detail_lines(&status, pool.as_ref()) {
                    eprintln!("  {line}");
                }
                status_exit_code(&status)
            }
            Error::Exit(code) => code,
        }
    }
}

/// `CODE: message`, or the code alone.
pub fn status_line(status: &Status) -> String {
    if status.message().is_empty() {
        status.code().name().to_string()
    } else {
        format!("{}: {}", status.code().name(), status.message())
    }
}

/// The rich details of a status (`grpc-status-details-bin`), one readable
/// line each. The standard `google.rpc` types are spelled out; other types
/// show as JSON when `pool` knows them, and by name otherwise.
pub fn detail_lines(status: &Status, pool: Option<&DescriptorPool>) -> Vec<String> {
    let details = match status.details() {
        Ok(details) => details,
        Err(e) => return vec![format!("(the status details could not be decoded: {e})")],
    };
    let mut lines = Vec::new();
    for any in details {
        let name = any.type_url.rsplit('/').next().unwrap_or_default().to_string();
        let value = &any.value[..];
        let known = match name.as_str() {
            n if n == ErrorInfo::full_name() => ErrorInfo::decode(value).ok().map(|d| {
                let mut line = format!("ErrorInfo: reason {}", d.reason);
                if !d.domain.is_empty() {
                    line.push_str(&format!(", domain {}", d.domain));
                }
                let mut metadata: Vec<_> = d.metadata.iter().collect();
                metadata.sort();
                for (k, v) in metadata {
                    line.push_str(&format!(", {k}={v}"));
                }
                vec![line]
            }),
            n if n == RetryInfo::full_name() => RetryInfo::decode(value).ok().map(|d| {
                let delay = d.retry_delay.unwrap_or_default();
                let secs = delay.seconds as f64 + delay.nanos as f64 / 1e9;
                vec![format!("RetryInfo: retry after {secs}s")]
            }),
            n if n == DebugInfo::full_name() => DebugInfo::decode(value).ok().map(|d| {
                let mut lines = vec![format!("DebugInfo: {}", d.detail)];
                lines.extend(d.stack_entries.iter().map(|e| format!("    at {e}")));
                lines
            }),
            n if n == QuotaFailure::full_name() => QuotaFailure::decode(value).ok().map(|d| {
                d.violations
                    .iter()
                    .map(|v| format!("QuotaFailure: {}: {}", v.subject, v.description))
                    .collect()
            }),
            n if n == PreconditionFailure::full_name() => PreconditionFailure::decode(value).ok().map(|d| {
                d.violations
                    .iter()
                    .map(|v| format!("PreconditionFailure: {} {}: {}", v.r#type, v.subject, v.description))
                    .collect()
            }),
            n if n == BadRequest::full_name() => BadRequest::decode(value).ok().map(|d| {
                d.field_violations
                    .iter()
                    .map(|v| format!("BadRequest: field `{}`: {}", v.field, v.description))
                    .collect()
            }),
            n if n == RequestInfo::full_name() => RequestInfo::decode(value).ok().map(|d| {
                let mut line = format!("RequestInfo: request id {}", d.request_id);
                if !d.serving_data.is_empty() {
                    line.push_str(&format!(", serving data {}", d.serving_data));
                }
                vec![line]
            }),
            n if n == ResourceInfo::full_name() => ResourceInfo::decode(value).ok().map(|d| {
                let mut line = format!("ResourceInfo: {} {}", d.resource_type, d.resource_name);
                if !d.owner.is_empty() {
                    line.push_str(&format!(" (owner {})", d.owner));
                }
                if !d.description.is_empty() {
                    line.push_str(&format!(": {}", d.description));
                }
                vec![line]
            }),
            n if n == Help::full_name() => Help::decode(value).ok().map(|d| {
                d.links
                    .iter()
                    .map(|l| format!("Help: {} <{}>", l.description, l.url))
                    .collect()
            }),
            n if n == LocalizedMessage::full_name() => LocalizedMessage::decode(value)
                .ok()
                .map(|d| vec![format!("LocalizedMessage ({}): {}", d.locale, d.message)]),
            _ => pool
                .and_then(|pool| pool.get_message_by_name(&name))
                .and_then(|desc| DynamicMessage::decode(desc, value).ok())
                .and_then(|message| serde_json::to_string(&message).ok())
                .map(|json| vec![format!("{name}: {json}")]),
        };
        lines.extend(known.unwrap_or_else(|| vec![format!("{name} ({} bytes)", value.len())]));
    }
    lines
}
