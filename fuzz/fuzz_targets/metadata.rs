//! Metadata from received headers: ASCII values and base64 `-bin` values.
//!
//! The input is a list of header names (some picked from the protocol's
//! own, some raw) and values. Checks that `Metadata::from_headers` and
//! `from_headers_ref` agree, hide exactly the protocol's headers and keep
//! every other value in order; that reading each entry (`get`, `get_all`,
//! `get_bin`, `iter`, `to_bytes`) never panics and agrees with the raw
//! value; that metadata sent and received again is unchanged; and that any
//! bytes set with `insert_bin` (also several values joined with `,` as an
//! HTTP peer may join them) decode back to themselves.

#![no_main]

use courier::__fuzz::{metadata_from_headers, metadata_from_headers_ref, metadata_into_headers};
use courier::Metadata;
use courier::metadata::MetadataValue;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 16] = [
    "content-type",
    "te",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-previous-rpc-attempts",
    "user-agent",
    "authorization",
    "x-trace-bin",
    "x-a",
    "-bin",
    "grpc-",
    "x-b-bin",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<(Name, Vec<u8>)>,
    /// Values set through the API, as binary.
    binary: Vec<Vec<u8>>,
    key: String,
    ascii: String,
}

fn is_protocol(name: &str) -> bool {
    // content-length is HTTP's framing, which the transport reads itself.
    name.starts_with("grpc-") || matches!(name, "content-type" | "te" | "content-length")
}

fn check_entries(md: &Metadata, headers: &HeaderMap) {
    // Exactly the non-protocol entries, in order.
    let kept: Vec<(&HeaderName, &HeaderValue)> = headers.iter().filter(|(k, _)| !is_protocol(k.as_str())).collect();
    assert_eq!(md.len(), kept.len());
    for (key, value) in md.iter() {
        assert!(!is_protocol(key), "protocol header {key} in metadata");
        match value {
            MetadataValue::Ascii(s) => {
                assert!(!key.ends_with("-bin"));
                let _ = s;
            }
            MetadataValue::Binary(b) => {
                assert!(key.ends_with("-bin"));
                let _ = MetadataValue::Binary(b).to_bytes();
            }
        }
    }
    for (name, _) in &kept {
        let key = name.as_str();
        let raw: Vec<&HeaderValue> = headers.get_all(*name).iter().collect();
        if key.ends_with("-bin") {
            assert_eq!(md.get(key), None);
            assert_eq!(md.get_all(key).count(), 0);
            let first = md.get_bin(key).expect("a -bin key that is present");
            assert_eq!(
                first.is_ok(),
                MetadataValue::Binary(raw[0].as_bytes()).to_bytes().is_ok()
            );
            assert_eq!(md.get_all_bin(key).count(), raw.len());
        } else {
            assert!(md.get_bin(key).is_none());
            let ascii: Vec<&str> = raw.iter().filter_map(|v| v.to_str().ok()).collect();
            assert_eq!(md.get_all(key).collect::<Vec<_>>(), ascii);
            assert_eq!(md.get(key), raw[0].to_str().ok());
        }
        assert!(md.contains_key(key));
    }
    let _ = format!("{md:?}");
}

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let name = match name {
            Name::Known(i) => HeaderName::from_static(NAMES[*i as usize % NAMES.len()]),
            Name::Raw(raw) => match HeaderName::from_bytes(raw) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        headers.append(name, value);
    }

    let by_value = metadata_from_headers(headers.clone());
    let by_ref = metadata_from_headers_ref(&headers);
    check_entries(&by_value, &headers);
    check_entries(&by_ref, &headers);
    let sent = metadata_into_headers(by_value.clone());
    assert_eq!(sent, metadata_into_headers(by_ref));
    // Sent and received again: unchanged.
    let again = metadata_into_headers(metadata_from_headers(sent.clone()));
    assert_eq!(again, sent);

    // Binary values set through the API decode back, one by one and joined.
    let mut md = Metadata::new();
    let key = if input.key.ends_with("-bin") {
        input.key.clone()
    } else {
        format!("{}-bin", input.key)
    };
    let mut joined = Vec::new();
    for value in &input.binary {
        match md.append_bin(&key, value) {
            Ok(()) => joined.extend_from_slice(value),
            Err(_) => return,
        }
    }
    if input.binary.is_empty() {
        return;
    }
    let decoded: Vec<Vec<u8>> = md
        .get_all_bin(&key)
        .map(|v| v.expect("what insert_bin encodes decodes"))
        .collect();
    assert_eq!(&decoded, &input.binary);
    let wire = metadata_into_headers(md.clone());
    let parts: Vec<&str> = wire.get_all(key.as_str()).iter().map(|v| v.to_str().unwrap()).collect();
    let mut one = HeaderMap::new();
    one.insert(
        HeaderName::from_bytes(key.as_bytes()).unwrap(),
        HeaderValue::from_str(&parts.join(", ")).unwrap(),
    );
    let received = metadata_from_headers(one);
    assert_eq!(
        received.get_bin(&key).unwrap().unwrap(),
        joined,
        "joined values {parts:?}"
    );

    // An ASCII value set through the API reads back.
    let ascii_key = key.trim_end_matches("-bin");
    if md.insert(ascii_key, &input.ascii).is_ok() {
        assert_eq!(md.get(ascii_key), Some(input.ascii.as_str()));
        let back = metadata_from_headers(metadata_into_headers(md));
        assert_eq!(back.get(ascii_key), Some(input.ascii.as_str()));
    }
});
