//! The received-message framer: a compressed flag, a four-byte length and
//! the message, in chunks cut anywhere.
//!
//! The first two input bytes choose the size limit and the call's encoding;
//! the rest is the received stream. It is fed whole, byte by byte, and in
//! chunks whose lengths come from the bytes themselves. Checks that every
//! feeding gives the same messages and the same error, that each message
//! matches an independent reading of the stream and never exceeds the limit,
//! and that `finish` agrees.

#![no_main]

use bytes::Bytes;
use courier::__fuzz::{FrameReader, decompress};
use courier::Encoding;
use libfuzzer_sys::fuzz_target;

const LIMITS: [usize; 6] = [0, 1, 5, 64, 1024, 64 * 1024];
const ENCODINGS: [Option<Encoding>; 4] = [
    None,
    Some(Encoding::Gzip),
    Some(Encoding::Deflate),
    Some(Encoding::Zstd),
];

/// What reading a stream gave: each message (or the error, as its code and
/// message, which ends the reading) and what `finish` said.
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<Result<(Bytes, bool), (courier::Code, String)>>,
    finish: Option<Result<(), (courier::Code, String)>>,
}

fn read(data: &[u8], limit: usize, encoding: Option<Encoding>, mut cut: impl FnMut(usize) -> usize) -> Outcome {
    let wire = Bytes::copy_from_slice(data);
    let mut reader = FrameReader::new(limit, encoding);
    let mut out = Outcome {
        messages: Vec::new(),
        finish: None,
    };
    let mut at = 0;
    loop {
        let mut n = cut(at).min(wire.len() - at);
        if n == 0 {
            // An empty chunk, then at least one byte, so the feed moves on.
            reader.push(Bytes::new());
            n = 1.min(wire.len() - at);
        }
        reader.push(wire.slice(at..at + n));
        at += n;
        loop {
            match reader.next() {
                Ok(Some(m)) => {
                    assert!(
                        m.len() <= limit,
                        "a message of {} bytes passed a limit of {limit}",
                        m.len()
                    );
                    out.messages.push(Ok((m, reader.last_compressed())));
                }
                Ok(None) => break,
                Err(status) => {
                    out.messages.push(Err((status.code(), status.message().to_owned())));
                    return out;
                }
            }
        }
        if at == wire.len() {
            break;
        }
    }
    out.finish = Some(reader.finish().map_err(|s| (s.code(), s.message().to_owned())));
    out
}

/// An independent reading of the stream, for the messages it must yield.
fn model(data: &[u8], limit: usize, encoding: Option<Encoding>) -> Vec<Option<(Bytes, bool)>> {
    let mut messages = Vec::new();
    let mut rest = data;
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if flag > 1 || (flag == 1 && encoding.is_none()) || len > limit {
            messages.push(None);
            return messages;
        }
        if rest.len() - 5 < len {
            break;
        }
        let body = &rest[5..5 + len];
        let message = match (flag, encoding) {
            (1, Some(enc)) => match decompress(enc, body, limit) {
                Ok(m) => (m, true),
                Err(_) => {
                    messages.push(None);
                    return messages;
                }
            },
            _ => (Bytes::copy_from_slice(body), false),
        };
        messages.push(Some(message));
        rest = &rest[5 + len..];
    }
    messages
}

fuzz_target!(|input: &[u8]| {
    let [a, b, data @ ..] = input else { return };
    let limit = LIMITS[*a as usize % LIMITS.len()];
    let encoding = ENCODINGS[*b as usize % ENCODINGS.len()];

    let whole = read(data, limit, encoding, |_| usize::MAX);
    let bytewise = read(data, limit, encoding, |_| 1);
    // Chunk lengths from the bytes themselves, empty chunks included.
    let chunked = read(data, limit, encoding, |at| {
        data.get(at).map_or(1, |&b| (b % 11) as usize)
    });
    assert_eq!(whole, bytewise, "one chunk and byte by byte differ");
    assert_eq!(whole, chunked, "one chunk and uneven chunks differ");

    let expected = model(data, limit, encoding);
    assert_eq!(whole.messages.len(), expected.len(), "{whole:?} vs {expected:?}");
    for (got, want) in whole.messages.iter().zip(&expected) {
        match (got, want) {
            (Ok(got), Some(want)) => assert_eq!(got, want),
            (Err(_), None) => {}
            _ => panic!("reader gave {got:?}, the model {want:?}"),
        }
    }
    // A stream read to its end without error finishes cleanly exactly when
    // it ended on a message boundary.
    if let Some(finish) = &whole.finish {
        let mut rest = data;
        while rest.len() >= 5 {
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            if rest.len() - 5 < len {
                break;
            }
            rest = &rest[5 + len..];
        }
        assert_eq!(
            finish.is_ok(),
            rest.is_empty(),
            "finish {finish:?} with {} bytes left",
            rest.len()
        );
    }
});
