//! `grpc-message`: percent-decoding what a peer sent, and the encoder.
//!
//! Checks that decoding any bytes never panics and leaves printable ASCII
//! without `%` unchanged; that any message encodes to printable ASCII that
//! is a valid header value and decodes back to itself; and that a status
//! written as trailers reads back with the same code and message.

#![no_main]

use courier::__fuzz::{decode_message, encode_message, status_from_trailers, status_to_trailers};
use courier::{Code, Status};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The input as received.
    let decoded = decode_message(input);
    if input.iter().all(|b| (0x20..=0x7e).contains(b) && *b != b'%') {
        assert_eq!(decoded.as_bytes(), input);
    }
    if let Ok(text) = std::str::from_utf8(input)
        && !text.contains('%')
    {
        assert_eq!(decoded, text);
    }

    // The input as a message to send.
    let message = String::from_utf8_lossy(input);
    let encoded = encode_message(&message);
    assert!(
        encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "{message:?} encoded as {encoded:?}"
    );
    assert!(http::HeaderValue::from_str(&encoded).is_ok());
    assert_eq!(decode_message(encoded.as_bytes()), message);

    let code = Code::from_i32(input.first().map_or(2, |&b| i32::from(b % 17)));
    let status = Status::new(code, message.clone());
    let mut trailers = HeaderMap::new();
    status_to_trailers(&status, &mut trailers);
    let back = status_from_trailers(&trailers).expect("grpc-status was written");
    assert_eq!(back.code(), code);
    assert_eq!(back.message(), message);
});
