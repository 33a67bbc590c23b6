//! HPACK's integer representation (RFC 7541 §5.1): a value in the low `N`
//! bits of a first octet whose high bits carry flags, continued, when it
//! does not fit, in octets of 7 bits each, least significant first.

use bytes::BytesMut;

use super::error::DecodeError;

/// The largest integer this decoder accepts. Every integer in HPACK is an
/// index, a string length or a table size, all far below it; RFC 7541 §7.4
/// asks for such a limit.
pub(super) const MAX_INTEGER: u32 = u32::MAX;

/// Continuation octets enough for [`MAX_INTEGER`] (7 bits each); a longer
/// run, even of zero bits, is refused, so a decoder never loops on padding.
const MAX_CONTINUATION_OCTETS: usize = 5;

/// Reads an integer with a `prefix_bits`-bit prefix (1 to 8) from the start
/// of `src`, returning it and the octets it took.
pub(super) fn decode(src: &[u8], prefix_bits: u8) -> Result<(u32, usize), DecodeError> {
    debug_assert!((1..=8).contains(&prefix_bits));
    let mask = (1u16 << prefix_bits) - 1;
    let first = *src.first().ok_or(DecodeError::TruncatedInteger)?;
    let prefix = u16::from(first) & mask;
    if prefix < mask {
        return Ok((u32::from(prefix), 1));
    }
    let mut value = u64::from(prefix);
    for (i, &octet) in src[1..].iter().enumerate() {
        if i == MAX_CONTINUATION_OCTETS {
            return Err(DecodeError::IntegerOverflow);
        }
        value += u64::from(octet & 0x7f) << (7 * i);
        if value > u64::from(MAX_INTEGER) {
            return Err(DecodeError::IntegerOverflow);
        }
        if octet & 0x80 == 0 {
            // `value` fits: it was just checked against MAX_INTEGER.
            return Ok((value as u32, i + 2));
        }
    }
    Err(DecodeError::TruncatedInteger)
}

/// Writes `value` with a `prefix_bits`-bit prefix; `flags` holds the first
/// octet's bits above the prefix.
pub(super) fn encode(value: usize, prefix_bits: u8, flags: u8, dst: &mut BytesMut) {
    debug_assert!((1..=8).contains(&prefix_bits));
    let mask = (1usize << prefix_bits) - 1;
    if value < mask {
        dst.extend_from_slice(&[flags | value as u8]);
        return;
    }
    let mut buf = [0u8; 11];
    buf[0] = flags | mask as u8;
    let mut len = 1;
    let mut rest = value - mask;
    while rest >= 0x80 {
        buf[len] = (rest as u8 & 0x7f) | 0x80;
        rest >>= 7;
        len += 1;
    }
    buf[len] = rest as u8;
    dst.extend_from_slice(&buf[..=len]);
}

/// The octets [`encode`] writes for `value` with a `prefix_bits`-bit prefix.
#[cfg(test)]
pub(super) fn encoded_len(value: usize, prefix_bits: u8) -> usize {
    let mask = (1usize << prefix_bits) - 1;
    if value < mask {
        return 1;
    }
    let mut len = 2;
    let mut rest = (value - mask) >> 7;
    while rest > 0 {
        rest >>= 7;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: usize, prefix_bits: u8, flags: u8) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode(value, prefix_bits, flags, &mut dst);
        assert_eq!(dst.len(), encoded_len(value, prefix_bits));
        dst.to_vec()
    }

    /// RFC 7541 C.1.1: 10 with a 5-bit prefix.
    #[test]
    fn c_1_1_ten_in_a_5_bit_prefix() {
        assert_eq!(encoded(10, 5, 0), [0b0000_1010]);
        assert_eq!(decode(&[0b1110_1010], 5), Ok((10, 1)));
    }

    /// RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    #[test]
    fn c_1_2_1337_in_a_5_bit_prefix() {
        assert_eq!(encoded(1337, 5, 0), [0b0001_1111, 0b1001_1010, 0b0000_1010]);
        assert_eq!(decode(&[0b0001_1111, 0b1001_1010, 0b0000_1010, 0xff], 5), Ok((1337, 3)));
    }

    /// RFC 7541 C.1.3: 42 starting at an octet boundary (8-bit prefix).
    #[test]
    fn c_1_3_42_in_an_8_bit_prefix() {
        assert_eq!(encoded(42, 8, 0), [42]);
        assert_eq!(decode(&[42], 8), Ok((42, 1)));
    }

    #[test]
    fn flags_above_the_prefix_are_kept_and_ignored() {
        assert_eq!(encoded(3, 6, 0x40), [0x43]);
        assert_eq!(encoded(63, 6, 0x40), [0x7f, 0x00]);
        assert_eq!(decode(&[0x7f, 0x00], 6), Ok((63, 2)));
    }

    #[test]
    fn every_prefix_round_trips_edge_values() {
        for prefix_bits in 1..=8u8 {
            let mask = (1usize << prefix_bits) - 1;
            for value in [
                0,
                1,
                mask - 1,
                mask,
                mask + 1,
                127 + mask,
                128 + mask,
                1 << 20,
                u32::MAX as usize,
            ] {
                let bytes = encoded(value, prefix_bits, 0);
                assert_eq!(
                    decode(&bytes, prefix_bits),
                    Ok((value as u32, bytes.len())),
                    "{value} {prefix_bits}"
                );
            }
        }
    }

    #[test]
    fn truncated_integers_are_errors() {
        assert_eq!(decode(&[], 5), Err(DecodeError::TruncatedInteger));
        assert_eq!(decode(&[0x1f], 5), Err(DecodeError::TruncatedInteger));
        assert_eq!(decode(&[0x1f, 0x80, 0x80], 5), Err(DecodeError::TruncatedInteger));
    }

    #[test]
    fn integers_past_the_limit_are_errors() {
        // 2^32 with an 8-bit prefix.
        let mut dst = BytesMut::new();
        encode(1 << 32, 8, 0, &mut dst);
        assert_eq!(decode(&dst, 8), Err(DecodeError::IntegerOverflow));
        // Endless zero continuation octets: refused after a bounded number.
        let mut zeros = vec![0xff];
        zeros.extend([0x80; 64]);
        assert_eq!(decode(&zeros, 8), Err(DecodeError::IntegerOverflow));
        // Five continuation octets whose value still fits are fine.
        assert_eq!(decode(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x00], 5), Ok((31, 6)));
    }
}
