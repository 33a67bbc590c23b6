//! Decompressing a received message with a size limit: gzip, deflate, zstd.
//!
//! The first byte chooses the encoding, the limit and the mode: the rest is
//! either the compressed bytes themselves, or a message that is compressed
//! first. Checks that decompression never panics, never returns more than
//! the limit, fails with RESOURCE_EXHAUSTED (too large) or INTERNAL
//! (corrupt) only, agrees with itself under a larger limit, and gives back
//! what was compressed. Run with a small `-malloc_limit_mb` so that an
//! allocation out of proportion to the limit is a crash.

#![no_main]

use courier::__fuzz::{compress, decompress};
use courier::{Code, Encoding};
use libfuzzer_sys::fuzz_target;

// usize::MAX is what a receiver configured without a limit passes.
const LIMITS: [usize; 8] = [0, 1, 100, 1024, 65536, 1 << 20, 4 << 20, usize::MAX];

fuzz_target!(|input: &[u8]| {
    let [choice, data @ ..] = input else { return };
    let encoding = Encoding::ALL[(choice % 3) as usize];
    let limit = LIMITS[((choice / 3) % 8) as usize];
    let roundtrip = choice / 24 % 2 == 1;
    // Without a limit, a small input may rightly expand to gigabytes: the
    // target only round-trips its own, small messages then.
    let limit = if limit == usize::MAX && !roundtrip {
        4 << 20
    } else {
        limit
    };

    let src = if roundtrip {
        compress(encoding, data)
    } else {
        bytes::Bytes::copy_from_slice(data)
    };
    let got = decompress(encoding, &src, limit);
    match &got {
        Ok(out) => assert!(out.len() <= limit, "{} bytes out with a limit of {limit}", out.len()),
        Err(status) => assert!(
            matches!(status.code(), Code::ResourceExhausted | Code::Internal),
            "{status:?}"
        ),
    }
    if roundtrip {
        match &got {
            Ok(out) => assert_eq!(out.as_ref(), data),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(data.len() > limit);
            }
        }
    }
    // A larger limit never changes a success, and a failure for size only
    // turns into a larger message or the same failure.
    let larger = decompress(encoding, &src, limit.saturating_mul(2).saturating_add(1));
    match (&got, &larger) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Ok(_), Err(s)) => panic!("fails with a larger limit: {s:?}"),
        (Err(s), Ok(b)) => {
            assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
            assert!(b.len() > limit);
        }
        (Err(_), Err(_)) => {}
    }
});
