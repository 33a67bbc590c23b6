//! Tests of the decoder and encoder together: RFC 7541 Appendix C, error
//! cases, limits, prepared blocks and a randomized round trip.

mod appendix_c;
mod bomb;
mod decode_errors;
mod encoder;
mod round_trip;
mod speed;

use bytes::Bytes;

use super::{DecodeError, Decoder, Field};

/// The octets of a hex string (spaces ignored).
pub(super) fn hex(s: &str) -> Bytes {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect::<Vec<u8>>()
        .into()
}

/// Decodes a block into a fresh vector.
pub(super) fn decode(decoder: &mut Decoder, block: &Bytes) -> Result<Vec<Field>, DecodeError> {
    let mut fields = Vec::new();
    decoder.decode(block, &mut fields).map(|()| fields)
}

/// `name: value` lines, as Appendix C lists header lists and tables.
pub(super) fn lines<'a>(pairs: impl IntoIterator<Item = (&'a Bytes, &'a Bytes)>) -> Vec<String> {
    pairs
        .into_iter()
        .map(|(name, value)| format!("{}: {}", String::from_utf8_lossy(name), String::from_utf8_lossy(value)))
        .collect()
}
