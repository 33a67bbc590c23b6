//! `grpc-status` and `grpc-status-details-bin`: rich error details from a
//! peer.
//!
//! The first byte chooses how the rest reaches the decoder: as the raw
//! header value (base64 of anything), or base64-encoded first (so the
//! protobuf decoder sees the bytes themselves); `grpc-status` comes from the
//! second byte or raw. Checks that reading the status, its details and each
//! standard detail type never panics; that details which decode are those
//! `google.rpc.Status` holds; and that they survive being sent again.

#![no_main]

use courier::__fuzz::{metadata_into_headers, status_from_trailers, status_to_trailers};
use courier::Metadata;
use courier::Status;
use courier::status::details::{
    BadRequest, DebugInfo, ErrorInfo, Help, LocalizedMessage, PreconditionFailure, QuotaFailure, RequestInfo,
    ResourceInfo, RetryInfo, RpcStatus,
};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fn every_detail(status: &Status) {
    let _ = status.detail::<ErrorInfo>();
    let _ = status.detail::<RetryInfo>();
    let _ = status.detail::<DebugInfo>();
    let _ = status.detail::<QuotaFailure>();
    let _ = status.detail::<PreconditionFailure>();
    let _ = status.detail::<BadRequest>();
    let _ = status.detail::<RequestInfo>();
    let _ = status.detail::<ResourceInfo>();
    let _ = status.detail::<Help>();
    let _ = status.detail::<LocalizedMessage>();
    let _ = status.detail::<RpcStatus>();
}

fuzz_target!(|input: &[u8]| {
    let [mode, code, rest @ ..] = input else { return };
    let details_value = if mode & 1 == 0 {
        match HeaderValue::from_bytes(rest) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        let mut md = Metadata::new();
        md.insert_bin("x-bin", rest).unwrap();
        metadata_into_headers(md).remove("x-bin").unwrap()
    };
    let status_value = if mode & 2 == 0 {
        HeaderValue::from(i32::from(*code) - 8)
    } else {
        match HeaderValue::from_bytes(&rest[..rest.len().min(4)]) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", status_value);
    trailers.insert("grpc-status-details-bin", details_value);
    trailers.insert("grpc-message", HeaderValue::from_static("m%41"));
    let status = status_from_trailers(&trailers).expect("grpc-status is present");
    assert_eq!(status.message(), "mA");
    let _ = format!("{status:?} {status}");
    every_detail(&status);

    let details = match status.details() {
        Ok(d) => d,
        Err(_) => return,
    };
    if mode & 1 == 1 {
        // The bytes themselves, exactly.
        assert_eq!(status.details_bytes().as_ref(), rest);
        assert_eq!(details, RpcStatus::decode(rest).unwrap().details);
    }
    // Sent again and received: the same details.
    let again = Status::with_details(status.code(), status.message(), details.clone());
    let mut out = HeaderMap::new();
    status_to_trailers(&again, &mut out);
    let back = status_from_trailers(&out).unwrap();
    assert_eq!(back.code(), status.code());
    assert_eq!(back.details().unwrap(), details);
    every_detail(&back);
});
