//! Every decoding error, each from the smallest block that causes it, and
//! what it costs: the connection, or only the stream with the table kept in
//! step.

use super::super::{DecodeError, Decoder, DecoderConfig, ErrorCode, ErrorScope, FieldRule};
use super::{decode, hex, lines};

fn error_of(block: &str) -> DecodeError {
    decode(&mut Decoder::default(), &hex(block)).unwrap_err()
}

const CONNECTION: ErrorScope = ErrorScope::Connection(ErrorCode::CompressionError);
const STREAM: ErrorScope = ErrorScope::Stream(ErrorCode::ProtocolError);

#[test]
fn error_codes_on_the_wire() {
    assert_eq!(ErrorCode::ProtocolError.wire(), 0x1);
    assert_eq!(ErrorCode::CompressionError.wire(), 0x9);
}

#[test]
fn the_header_list_limit_can_change() {
    let mut decoder = Decoder::default();
    decoder.set_max_header_list_size(41);
    assert_eq!(
        decode(&mut decoder, &hex("82")).unwrap_err(),
        DecodeError::HeaderListTooLarge { limit: 41 }
    );
    decoder.set_max_header_list_size(42);
    let fields = decode(&mut decoder, &hex("82")).unwrap();
    assert!(fields[0].is_pseudo());
    assert!(!decode(&mut decoder, &hex("00 01 6b 00")).unwrap()[0].is_pseudo());
}

#[test]
fn an_empty_block_is_an_empty_list() {
    assert_eq!(decode(&mut Decoder::default(), &hex("")).unwrap(), []);
}

#[test]
fn truncated_integers() {
    for block in [
        "ff",
        "ff 80",
        "3f",
        "7f",
        "0f",
        "40",
        "40 7f",
        "40 01 61",
        "40 01 61 7f 80",
        "04",
    ] {
        assert_eq!(error_of(block), DecodeError::TruncatedInteger, "{block}");
    }
    assert_eq!(DecodeError::TruncatedInteger.scope(), CONNECTION);
}

#[test]
fn integer_overflow() {
    assert_eq!(error_of("ff ff ff ff ff ff 0f"), DecodeError::IntegerOverflow);
    assert_eq!(error_of("04 ff ff ff ff ff 7f"), DecodeError::IntegerOverflow);
    assert_eq!(error_of("ff 80 80 80 80 80 80 80 00"), DecodeError::IntegerOverflow);
    assert_eq!(DecodeError::IntegerOverflow.scope(), CONNECTION);
}

#[test]
fn truncated_strings() {
    assert_eq!(error_of("40 0a 61 62 63"), DecodeError::TruncatedString);
    assert_eq!(error_of("04 03 61 62"), DecodeError::TruncatedString);
    assert_eq!(error_of("04 83 ff"), DecodeError::TruncatedString);
    assert_eq!(DecodeError::TruncatedString.scope(), CONNECTION);
}

#[test]
fn bad_huffman_strings() {
    // '0' (00000), then padding 000.
    assert_eq!(error_of("04 81 00"), DecodeError::HuffmanPaddingNotOnes);
    // 'a' (00011), then 11 ones of padding.
    assert_eq!(error_of("04 82 1f ff"), DecodeError::HuffmanPaddingTooLong);
    // EOS, in a name.
    assert_eq!(error_of("00 84 ff ff ff ff 01 76"), DecodeError::HuffmanEos);
    assert_eq!(DecodeError::HuffmanEos.scope(), CONNECTION);
}

#[test]
fn index_zero() {
    assert_eq!(error_of("80"), DecodeError::IndexZero);
    assert_eq!(DecodeError::IndexZero.scope(), CONNECTION);
}

#[test]
fn indexes_past_the_tables() {
    assert_eq!(error_of("be"), DecodeError::IndexOutOfRange { index: 62 });
    // A literal naming an entry that does not exist.
    assert_eq!(error_of("7f 00 01 76"), DecodeError::IndexOutOfRange { index: 63 });
    // One entry: 62 is it, 63 is past it.
    let mut decoder = Decoder::default();
    decode(&mut decoder, &hex("40 01 6b 01 76")).unwrap();
    assert_eq!(
        lines(
            decode(&mut decoder, &hex("be"))
                .unwrap()
                .iter()
                .map(|f| (&f.name, &f.value))
        ),
        ["k: v"]
    );
    assert_eq!(
        decode(&mut decoder, &hex("bf")).unwrap_err(),
        DecodeError::IndexOutOfRange { index: 63 }
    );
    assert_eq!(DecodeError::IndexOutOfRange { index: 63 }.scope(), CONNECTION);
}

#[test]
fn size_updates_up_to_the_limit() {
    let mut decoder = Decoder::default();
    // To 0, then to 4096 (31 + 0x61 + 0x1f << 7), then a field.
    decode(&mut decoder, &hex("20 3f e1 1f 82")).unwrap();
    assert_eq!(decoder.table_size(), (0, 4096));
    // A block of size updates only.
    decode(&mut decoder, &hex("3f 45")).unwrap();
    assert_eq!(decoder.table_size(), (0, 100));
}

#[test]
fn size_update_above_the_limit() {
    assert_eq!(
        error_of("3f e2 1f"),
        DecodeError::TableSizeAboveLimit {
            requested: 4097,
            limit: 4096
        }
    );
    let mut decoder = Decoder::new(DecoderConfig {
        max_table_size: 0,
        ..DecoderConfig::default()
    });
    assert_eq!(
        decode(&mut decoder, &hex("21")).unwrap_err(),
        DecodeError::TableSizeAboveLimit { requested: 1, limit: 0 }
    );
    assert_eq!(
        DecodeError::TableSizeAboveLimit { requested: 1, limit: 0 }.scope(),
        CONNECTION
    );
}

#[test]
fn size_update_after_a_field() {
    assert_eq!(error_of("82 20"), DecodeError::TableSizeUpdateNotAtStart);
    assert_eq!(error_of("20 82 20"), DecodeError::TableSizeUpdateNotAtStart);
    assert_eq!(DecodeError::TableSizeUpdateNotAtStart.scope(), CONNECTION);
}

#[test]
fn a_lowered_limit_requires_an_update() {
    let mut decoder = Decoder::default();
    decode(&mut decoder, &hex("40 01 6b 01 76")).unwrap();
    decoder.set_max_table_size(100);
    // Evicted at once down to the new limit; the entry (34) fits.
    assert_eq!(decoder.table_size(), (34, 100));
    assert_eq!(
        decode(&mut decoder, &hex("82")).unwrap_err(),
        DecodeError::TableSizeUpdateMissing
    );
    assert_eq!(
        decode(&mut decoder, &hex("")).unwrap_err(),
        DecodeError::TableSizeUpdateMissing
    );
    assert_eq!(
        decode(&mut decoder, &hex("3f 46 82")).unwrap_err(),
        DecodeError::TableSizeAboveLimit {
            requested: 101,
            limit: 100
        }
    );
    decode(&mut decoder, &hex("3f 45 82")).unwrap();
    // Once updated, blocks need no update.
    decode(&mut decoder, &hex("82")).unwrap();
    // Raising the limit asks nothing of the encoder.
    decoder.set_max_table_size(8192);
    decode(&mut decoder, &hex("82")).unwrap();
    assert_eq!(decoder.table_size(), (34, 100));
    assert_eq!(DecodeError::TableSizeUpdateMissing.scope(), CONNECTION);
}

#[test]
fn header_list_too_large_is_a_stream_error() {
    let mut decoder = Decoder::new(DecoderConfig {
        max_header_list_size: 100,
        ..DecoderConfig::default()
    });
    // :method: GET (42), :path: / (38), then :scheme: http (43): 123 > 100.
    let mut fields = Vec::new();
    let error = decoder.decode(&hex("82 84 86"), &mut fields).unwrap_err();
    assert_eq!(error, DecodeError::HeaderListTooLarge { limit: 100 });
    assert_eq!(
        lines(fields.iter().map(|f| (&f.name, &f.value))),
        [":method: GET", ":path: /"]
    );
    assert_eq!(error.scope(), STREAM);
    // Exactly at the limit is fine: 42, then 10 + 16 + 32.
    let exact = "82 00 0a 6e616d652d3132333435 10 76616c75652d31323334353637383930";
    decode(&mut decoder, &hex(exact)).unwrap();
}

#[test]
fn uppercase_names_are_malformed() {
    let error = error_of("00 03 41 62 63 01 76");
    assert_eq!(error, DecodeError::MalformedField(FieldRule::UppercaseName));
    assert_eq!(error.scope(), STREAM);
    // Huffman-coded "Abc" is refused the same way.
    assert_eq!(
        error_of("00 83 86 32 7f 01 76"),
        DecodeError::MalformedField(FieldRule::UppercaseName)
    );
}

#[test]
fn other_field_rules_are_malformed() {
    assert_eq!(
        error_of("00 00 01 76"),
        DecodeError::MalformedField(FieldRule::EmptyName)
    );
    assert_eq!(
        error_of("00 03 61 3a 62 01 76"),
        DecodeError::MalformedField(FieldRule::InvalidNameCharacter)
    );
    assert_eq!(
        error_of("04 03 61 0a 62"),
        DecodeError::MalformedField(FieldRule::InvalidValueCharacter)
    );
    // A value ending in a space is accepted on receipt (see field.rs).
    assert_eq!(
        &decode(&mut Decoder::default(), &hex("04 02 61 20")).unwrap()[0].value[..],
        b"a "
    );
    assert_eq!(
        error_of("00 0a 63 6f 6e 6e 65 63 74 69 6f 6e 01 76"),
        DecodeError::MalformedField(FieldRule::ConnectionSpecificField)
    );
    assert_eq!(
        error_of("00 02 74 65 01 76"),
        DecodeError::MalformedField(FieldRule::TeOtherThanTrailers)
    );
}

/// After a malformed field the block is still read to its end, so its
/// insertions happen and the next block's indexes are right; fields after
/// the bad one are not delivered.
#[test]
fn a_malformed_field_keeps_the_table_in_step() {
    let mut decoder = Decoder::default();
    let mut fields = Vec::new();
    // Add "Abc: v" (malformed), then add "k: v", then :method: GET.
    let error = decoder
        .decode(&hex("82 40 03 41 62 63 01 76 40 01 6b 01 76 82"), &mut fields)
        .unwrap_err();
    assert_eq!(error, DecodeError::MalformedField(FieldRule::UppercaseName));
    assert_eq!(lines(fields.iter().map(|f| (&f.name, &f.value))), [":method: GET"]);
    assert_eq!(lines(decoder.table_entries()), ["k: v", "Abc: v"]);
    let next = decode(&mut decoder, &hex("be")).unwrap();
    assert_eq!(lines(next.iter().map(|f| (&f.name, &f.value))), ["k: v"]);
    assert_eq!(
        decode(&mut decoder, &hex("bf")).unwrap_err(),
        DecodeError::MalformedField(FieldRule::UppercaseName)
    );
}

/// A connection error found after a stream error still wins: the table is
/// out of step either way.
#[test]
fn a_connection_error_after_a_stream_error_wins() {
    assert_eq!(error_of("00 01 41 01 76 80"), DecodeError::IndexZero);
}
