//! HPACK's static Huffman code (RFC 7541 §5.2, Appendix B): encoding, and
//! decoding four bits at a time with a state machine built at compile time
//! from the code table.
//!
//! The decoder's states are the inner nodes of the code tree (a full binary
//! tree with 257 leaves has 256 inner nodes, so a state fits in a `u8`). A
//! step reads one nibble from a state and lands on another, having completed
//! at most one symbol on the way: the shortest code is 5 bits long. At the
//! end of the string the state says whether what is left over is valid
//! padding, that is at most 7 bits, all ones (the start of EOS).

use bytes::{BufMut, BytesMut};

use super::error::DecodeError;
use super::huffman_codes::CODES;

/// The symbol that ends a string; never valid inside one (§5.2).
const EOS: u16 = 256;

/// The octets `src` takes once Huffman-encoded.
pub(super) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| usize::from(CODES[usize::from(b)].1)).sum();
    bits.div_ceil(8)
}

/// Appends `src` Huffman-encoded to `dst`, padded with ones.
pub(super) fn encode(src: &[u8], dst: &mut BytesMut) {
    dst.reserve(encoded_len(src));
    // Bits not yet written are the low `pending` bits of `acc`; anything
    // above them is stale and shifted out by later codes.
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &octet in src {
        let (code, len) = CODES[usize::from(octet)];
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        while pending >= 8 {
            pending -= 8;
            dst.put_u8((acc >> pending) as u8);
        }
    }
    if pending > 0 {
        let pad = 8 - pending;
        dst.put_u8(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
}

/// Decodes the Huffman string `src`, appending the octets to `dst`.
pub(super) fn decode(src: &[u8], dst: &mut BytesMut) -> Result<(), DecodeError> {
    // Every symbol takes at least 5 bits.
    dst.reserve(src.len() * 8 / 5);
    let mut state = ROOT;
    for &octet in src {
        for nibble in [octet >> 4, octet & 0x0f] {
            let step = DECODER.steps[usize::from(state) * 16 + usize::from(nibble)];
            match step.outcome {
                Outcome::Continue => {}
                Outcome::Symbol => dst.put_u8(step.symbol),
                Outcome::Eos => return Err(DecodeError::HuffmanEos),
            }
            state = step.next;
        }
    }
    match DECODER.endings[usize::from(state)] {
        Ending::Complete => Ok(()),
        Ending::PaddingNotOnes => Err(DecodeError::HuffmanPaddingNotOnes),
        Ending::PaddingTooLong => Err(DecodeError::HuffmanPaddingTooLong),
    }
}

/// The state at the start of a string and after each symbol: the root.
const ROOT: u8 = 0;

/// What one nibble does besides moving to the next state.
#[derive(Clone, Copy)]
enum Outcome {
    /// Still inside a code.
    Continue,
    /// A code ended: `symbol` is decoded.
    Symbol,
    /// The EOS code appeared: an error.
    Eos,
}

/// One transition of the decoder.
#[derive(Clone, Copy)]
struct Step {
    next: u8,
    symbol: u8,
    outcome: Outcome,
}

/// Whether a string may end in a given state.
#[derive(Clone, Copy)]
enum Ending {
    /// On a symbol boundary, or inside at most 7 one bits.
    Complete,
    /// The leftover bits are not all ones.
    PaddingNotOnes,
    /// The leftover bits are ones, but more than 7.
    PaddingTooLong,
}

/// A child in the code tree during construction.
#[derive(Clone, Copy)]
enum Child {
    None,
    Inner(u8),
    Leaf(u16),
}

/// The decoder's tables: 16 steps per state, and each state's ending.
struct DecoderTables {
    steps: [Step; 256 * 16],
    endings: [Ending; 256],
}

/// Built once, by the compiler.
static DECODER: DecoderTables = build_decoder();

const fn build_decoder() -> DecoderTables {
    // The code tree, from the code table.
    let mut children = [[Child::None; 2]; 256];
    let mut depth = [0u8; 256];
    let mut all_ones = [true; 256];
    let mut inner_nodes = 1;
    let mut symbol = 0;
    while symbol < CODES.len() {
        let (code, len) = CODES[symbol];
        let mut node = ROOT as usize;
        let mut bit = len;
        while bit > 0 {
            bit -= 1;
            let b = ((code >> bit) & 1) as usize;
            if bit == 0 {
                children[node][b] = Child::Leaf(symbol as u16);
            } else {
                node = match children[node][b] {
                    Child::Inner(next) => next as usize,
                    Child::None => {
                        let next = inner_nodes;
                        inner_nodes += 1;
                        children[node][b] = Child::Inner(next as u8);
                        depth[next] = depth[node] + 1;
                        all_ones[next] = all_ones[node] && b == 1;
                        next
                    }
                    Child::Leaf(_) => panic!("the Huffman code is not a prefix code"),
                };
            }
        }
        symbol += 1;
    }
    assert!(inner_nodes == 256, "the Huffman code is not complete");

    let mut steps = [Step {
        next: ROOT,
        symbol: 0,
        outcome: Outcome::Continue,
    }; 256 * 16];
    let mut endings = [Ending::Complete; 256];
    let mut state = 0;
    while state < 256 {
        endings[state] = if !all_ones[state] {
            Ending::PaddingNotOnes
        } else if depth[state] > 7 {
            Ending::PaddingTooLong
        } else {
            Ending::Complete
        };
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut step = Step {
                next: ROOT,
                symbol: 0,
                outcome: Outcome::Continue,
            };
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                match children[node][(nibble >> bit) & 1] {
                    Child::Inner(next) => node = next as usize,
                    Child::Leaf(EOS) => {
                        step.outcome = Outcome::Eos;
                        node = ROOT as usize;
                    }
                    Child::Leaf(symbol) => {
                        step.symbol = symbol as u8;
                        step.outcome = Outcome::Symbol;
                        node = ROOT as usize;
                    }
                    Child::None => panic!("the Huffman code is not complete"),
                }
            }
            step.next = node as u8;
            steps[state * 16 + nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    DecoderTables { steps, endings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(src: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(src, &mut dst);
        assert_eq!(dst.len(), encoded_len(src));
        dst.to_vec()
    }

    fn decoded(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut dst = BytesMut::new();
        decode(src, &mut dst).map(|()| dst.to_vec())
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Appendix B's code is canonical: codes in order of (length, symbol)
    /// count up, shifted left when the length grows. This checks the table
    /// was transcribed without a slip.
    #[test]
    fn the_code_table_is_canonical() {
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let mut next = 0u64;
        let mut len = CODES[order[0]].1;
        for s in order {
            next <<= CODES[s].1 - len;
            len = CODES[s].1;
            assert_eq!(u64::from(CODES[s].0), next, "symbol {s}");
            next += 1;
        }
        assert_eq!(next, 1 << 30, "the code fills the 30-bit space exactly");
        assert_eq!(CODES[usize::from(EOS)], (0x3fff_ffff, 30));
    }

    /// Strings from RFC 7541 C.4 and C.6.
    #[test]
    fn appendix_c_strings() {
        let cases = [
            ("www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"),
            ("no-cache", "a8eb10649cbf"),
            ("custom-key", "25a849e95ba97d7f"),
            ("custom-value", "25a849e95bb8e8b4bf"),
            ("302", "6402"),
            ("private", "aec3771a4b"),
            (
                "Mon, 21 Oct 2013 20:13:21 GMT",
                "d07abe941054d444a8200595040b8166e082a62d1bff",
            ),
            ("https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"),
            ("307", "640eff"),
            ("gzip", "9bd9ab"),
            (
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
            ),
        ];
        for (plain, coded) in cases {
            assert_eq!(encoded(plain.as_bytes()), hex(coded), "{plain}");
            assert_eq!(decoded(&hex(coded)).unwrap(), plain.as_bytes(), "{plain}");
        }
    }

    #[test]
    fn every_octet_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decoded(&encoded(&all)).unwrap(), all);
        for octet in 0..=255u8 {
            let one = [octet];
            assert_eq!(decoded(&encoded(&one)).unwrap(), one);
            let many = [octet; 9];
            assert_eq!(decoded(&encoded(&many)).unwrap(), many);
        }
        assert_eq!(decoded(&[]).unwrap(), b"");
    }

    #[test]
    fn eos_inside_a_string_is_an_error() {
        // EOS (30 ones), then two more ones of padding.
        assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xff]), Err(DecodeError::HuffmanEos));
        // 'a' (00011), then EOS, then padding.
        let mut bits: u64 = 0b00011;
        bits = (bits << 30) | 0x3fff_ffff;
        bits = (bits << 5) | 0b11111;
        let bytes = bits.to_be_bytes()[3..].to_vec();
        assert_eq!(decoded(&bytes), Err(DecodeError::HuffmanEos));
    }

    #[test]
    fn padding_must_be_ones() {
        // '0' is 00000: 0x00 is '0' then 3 zero bits of padding.
        assert_eq!(decoded(&[0x00]), Err(DecodeError::HuffmanPaddingNotOnes));
        // 'a' then 3 one bits: fine; 'a' then 011: not.
        assert_eq!(decoded(&[0b0001_1111]).unwrap(), b"a");
        assert_eq!(decoded(&[0b0001_1011]), Err(DecodeError::HuffmanPaddingNotOnes));
    }

    #[test]
    fn padding_must_be_shorter_than_an_octet() {
        // A whole octet of ones after a symbol boundary.
        assert_eq!(decoded(&[0b0001_1111, 0xff]), Err(DecodeError::HuffmanPaddingTooLong));
        assert_eq!(decoded(&[0xff]), Err(DecodeError::HuffmanPaddingTooLong));
        // Fewer than 8 ones end a string: 00000 ('0'), 00001 ('1'), 6 ones.
        assert_eq!(decoded(&[0x00, 0x7f]).unwrap(), b"01");
    }
}
