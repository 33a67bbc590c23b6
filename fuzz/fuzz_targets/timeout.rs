//! `grpc-timeout`: the server's parser and the client's encoder.
//!
//! Checks that the parser accepts exactly 1 to 8 ASCII digits and a unit
//! (H, M, S, m, u, n) and gives their value; that it never panics or
//! overflows; that every duration the client encodes is at most 8 digits and
//! a unit, parses to no less than the duration (or to the largest value
//! when the duration is larger), rounded up by less than one unit; and that
//! a parsed timeout encodes back to the same duration.

#![no_main]

use std::time::Duration;

use courier::__fuzz::{encode_timeout, parse_timeout};
use libfuzzer_sys::fuzz_target;

/// Nanoseconds per unit.
fn unit_nanos(unit: u8) -> Option<u128> {
    Some(match unit {
        b'n' => 1,
        b'u' => 1_000,
        b'm' => 1_000_000,
        b'S' => 1_000_000_000,
        b'M' => 60_000_000_000,
        b'H' => 3_600_000_000_000,
        _ => return None,
    })
}

/// What the grammar says a value means, computed independently.
fn model(raw: &[u8]) -> Option<u128> {
    let (&unit, digits) = raw.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0u128, |n, d| n * 10 + u128::from(d - b'0'));
    Some(n * unit_nanos(unit)?)
}

const MAX: Duration = Duration::from_secs(99_999_999 * 3600);

fuzz_target!(|input: &[u8]| {
    // The input as a header value.
    let parsed = parse_timeout(input);
    assert_eq!(
        parsed.map(|d| d.as_nanos()),
        model(input),
        "{:?}",
        String::from_utf8_lossy(input)
    );
    if let Some(d) = parsed
        && !d.is_zero()
    {
        let again = encode_timeout(d);
        assert_eq!(parse_timeout(again.as_bytes()), Some(d), "{d:?} encoded as {again:?}");
    }

    // The input as a duration.
    let mut raw = [0u8; 12];
    let n = input.len().min(12);
    raw[..n].copy_from_slice(&input[..n]);
    let secs = u64::from_le_bytes(raw[..8].try_into().unwrap()) >> (raw[11] % 64);
    let nanos = u32::from_le_bytes(raw[8..12].try_into().unwrap()) % 1_000_000_000;
    let d = Duration::new(secs, nanos);
    let encoded = encode_timeout(d);
    let bytes = encoded.as_bytes();
    assert!(model(bytes).is_some(), "{d:?} encoded as {encoded:?}");
    let back = parse_timeout(bytes).expect("the server parses what the client encodes");
    if d > MAX {
        assert_eq!(back, MAX, "{d:?} encoded as {encoded:?}");
    } else {
        assert!(
            back >= d && back > Duration::ZERO,
            "{d:?} encoded as {encoded:?}, parsed {back:?}"
        );
        let unit = unit_nanos(*bytes.last().unwrap()).unwrap();
        assert!(
            back.as_nanos() - d.as_nanos().max(1) < unit,
            "{d:?} encoded as {encoded:?}"
        );
        // The finest unit that holds the value in 8 digits.
        let finer = [1u128, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000]
            .into_iter()
            .filter(|&per| per < unit)
            .all(|per| d.as_nanos().max(1).div_ceil(per) >= 100_000_000);
        assert!(finer, "{d:?} encoded as {encoded:?}: a finer unit would do");
    }
});
