//! A decoded header field, the sink the decoder hands fields to, and the
//! field rules of RFC 9113 §8.2 the decoder checks before handing one on.
//!
//! One rule of §8.2.1 is relaxed on receipt: a value that starts or ends
//! with SP or HTAB is accepted, unchanged. grpc-go percent-encodes a
//! `grpc-message` only outside printable ASCII, so a status message with a
//! leading or trailing space reaches the wire as it is, and Go's HTTP/2
//! and the h2 crate both accept such values; rejecting them would turn the
//! peer's status into a reset stream. NUL, CR and LF, which could split a
//! field when it is passed on, are still refused. Courier itself never
//! sends such a `grpc-message` (see `status::encode_message`).

use bytes::Bytes;

use super::error::FieldRule;

/// One decoded header field. Name and value are slices of the header block,
/// of a table entry, or of the decoder's Huffman buffer: never copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// The name, lowercase (checked).
    pub(crate) name: Bytes,
    /// The value.
    pub(crate) value: Bytes,
    /// Sent as never-indexed (RFC 7541 §6.2.3): a proxy re-encoding it must
    /// keep it so, and it should not go into any compression table.
    pub(crate) sensitive: bool,
}

impl Field {
    /// Whether this is a pseudo-header (`:method`, `:status`, …).
    pub(crate) fn is_pseudo(&self) -> bool {
        self.name.first() == Some(&b':')
    }
}

/// Where the decoder puts the fields of a block, in order. Implemented by
/// closures taking a [`Field`] and by `Vec<Field>`, so a caller can parse
/// fields into fixed slots as they come, or collect them into a vector it
/// clears and reuses.
pub(crate) trait FieldSink {
    /// Takes the next field of the block.
    fn field(&mut self, field: Field);
}

impl<F: FnMut(Field)> FieldSink for F {
    fn field(&mut self, field: Field) {
        self(field)
    }
}

impl FieldSink for Vec<Field> {
    fn field(&mut self, field: Field) {
        self.push(field);
    }
}

/// Checks a field against RFC 9113 §8.2.1 (names and values) and §8.2.2
/// (connection-specific fields), giving the first rule it breaks.
pub(super) fn check(name: &[u8], value: &[u8]) -> Result<(), FieldRule> {
    // One table lookup per octet for the fields that pass, which is nearly
    // all; the rule a field breaks is worked out only when it breaks one.
    let name_ok = match name.split_first() {
        Some((b':', rest)) => rest.iter().all(|&o| NAME_OCTET[usize::from(o)]),
        Some(_) => name.iter().all(|&o| NAME_OCTET[usize::from(o)]),
        None => false,
    };
    if !name_ok {
        check_name(name)?;
    }
    if value.iter().any(|&o| BAD_VALUE_OCTET[usize::from(o)]) {
        return Err(FieldRule::InvalidValueCharacter);
    }
    match name {
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => {
            Err(FieldRule::ConnectionSpecificField)
        }
        b"te" if value != b"trailers" => Err(FieldRule::TeOtherThanTrailers),
        _ => Ok(()),
    }
}

/// The octets a field name may hold after its first: lowercase tokens
/// (RFC 9113 §8.2.1), no colon.
const NAME_OCTET: [bool; 256] = {
    let mut table = [false; 256];
    let mut o = 0x21;
    while o < 0x7f {
        table[o] = !(o >= b'A' as usize && o <= b'Z' as usize) && o != b':' as usize;
        o += 1;
    }
    table
};

/// The octets a field value may not hold (RFC 9113 §8.2.1): NUL, CR, LF.
const BAD_VALUE_OCTET: [bool; 256] = {
    let mut table = [false; 256];
    table[0] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table
};

fn check_name(name: &[u8]) -> Result<(), FieldRule> {
    let Some((&first, rest)) = name.split_first() else {
        return Err(FieldRule::EmptyName);
    };
    // A leading colon marks a pseudo-header; anywhere else it is invalid.
    if first != b':' {
        check_name_octet(first)?;
    }
    rest.iter().try_for_each(|&octet| match octet {
        b':' => Err(FieldRule::InvalidNameCharacter),
        _ => check_name_octet(octet),
    })
}

fn check_name_octet(octet: u8) -> Result<(), FieldRule> {
    match octet {
        b'A'..=b'Z' => Err(FieldRule::UppercaseName),
        0x00..=0x20 | 0x7f..=0xff => Err(FieldRule::InvalidNameCharacter),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_fields() {
        for (name, value) in [
            (&b":path"[..], &b"/pkg.Service/Method"[..]),
            (b"content-type", b"application/grpc"),
            (b"grpc-timeout", b"1S"),
            (b"x-bin", b"\x01\xff"),
            (b"te", b"trailers"),
            (b"empty", b""),
            (b"inner", b"a \t b"),
            (b"!#$%&'*+-.^_`|~0a", b"v"),
        ] {
            assert_eq!(check(name, value), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(check(b"", b"v"), Err(FieldRule::EmptyName));
        assert_eq!(check(b"Content-Type", b"v"), Err(FieldRule::UppercaseName));
        assert_eq!(check(b"x-A", b"v"), Err(FieldRule::UppercaseName));
        assert_eq!(check(b":Path", b"/"), Err(FieldRule::UppercaseName));
        for bad in [&b"a b"[..], b"a\0", b"a\x7f", b"a\x80", b"\xff", b"a:b", b"::a", b" a"] {
            assert_eq!(check(bad, b"v"), Err(FieldRule::InvalidNameCharacter), "{bad:?}");
        }
    }

    #[test]
    fn value_rules() {
        for bad in [&b"a\0b"[..], b"a\rb", b"a\nb", b"\n"] {
            assert_eq!(check(b"x", bad), Err(FieldRule::InvalidValueCharacter), "{bad:?}");
        }
    }

    #[test]
    fn values_surrounded_by_whitespace_are_accepted_as_go_accepts_them() {
        for value in [&b" a"[..], b"a ", b"\ta", b"a\t", b" ", b"  padded  "] {
            assert_eq!(check(b"grpc-message", value), Ok(()), "{value:?}");
        }
    }

    #[test]
    fn connection_specific_fields() {
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
        ] {
            assert_eq!(
                check(name.as_bytes(), b"x"),
                Err(FieldRule::ConnectionSpecificField),
                "{name}"
            );
        }
        assert_eq!(check(b"te", b"gzip"), Err(FieldRule::TeOtherThanTrailers));
    }
}
