//! Tests of the frame layer as a whole: the rules of RFC 9113 §4 and §6 one
//! by one, round trips, reads cut anywhere, zero-copy payloads, the
//! CONTINUATION assembler, header block splitting and gathered writes.

mod assemble;
mod gather;
mod round_trip;
mod rules;

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

/// A frame's wire bytes, written by hand rather than by the encoder.
fn raw(kind: u8, flag_bits: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.put_u8(kind);
    out.put_u8(flag_bits);
    out.put_u32(stream);
    out.put_slice(payload);
    out
}

/// Decodes one frame with the default maximum frame size, checking that a
/// frame that decodes used every byte.
fn decode_one(wire: &[u8]) -> Result<Frame, FrameError> {
    let mut buf = BytesMut::from(wire);
    let frame = FrameDecoder::default().decode(&mut buf)?.expect("a whole frame");
    assert!(buf.is_empty(), "{} bytes left after {frame:?}", buf.len());
    Ok(frame)
}

/// The error one frame gives.
fn decode_err(wire: &[u8]) -> FrameError {
    match decode_one(wire) {
        Ok(frame) => panic!("decoded {frame:?}, expected an error"),
        Err(err) => err,
    }
}

/// Encodes frames with [`encode`] into one buffer.
fn encode_all(frames: &[Frame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        encode(frame, &mut out);
    }
    out
}

/// A small deterministic PRNG (xorshift64*), for property tests.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn bytes(&mut self, len: usize) -> Bytes {
        (0..len).map(|_| self.next() as u8).collect::<Vec<u8>>().into()
    }
}

fn sid(n: u32) -> StreamId {
    StreamId::new(n)
}
