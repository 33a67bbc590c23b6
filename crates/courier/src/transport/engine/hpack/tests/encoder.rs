//! The encoder's choices, its size updates, and known fields.

use bytes::{Bytes, BytesMut};

use super::super::{
    DEFAULT_TABLE_SIZE, Decoder, DecoderConfig, Encoder, EncoderConfig, HuffmanPolicy, Indexing, KnownField,
};
use super::{decode, hex, lines};

fn encode(encoder: &mut Encoder, fields: &[(&str, &str, Indexing)]) -> Bytes {
    let mut dst = BytesMut::new();
    let mut block = encoder.block(&mut dst);
    for &(name, value, indexing) in fields {
        block.field(name.as_bytes(), value.as_bytes(), indexing);
    }
    dst.freeze()
}

fn plain() -> EncoderConfig {
    EncoderConfig {
        huffman: HuffmanPolicy::Never,
        ..EncoderConfig::default()
    }
}

#[test]
fn indexing_choices() {
    let mut encoder = Encoder::new(plain());
    // A static field is indexed whatever the choice.
    assert_eq!(
        encode(&mut encoder, &[(":method", "POST", Indexing::DoNotIndex)]),
        hex("83")
    );
    // DoNotIndex: a literal with the static name, not added.
    assert_eq!(
        encode(&mut encoder, &[("grpc-timeout", "1S", Indexing::DoNotIndex)]),
        hex("000c 6772 7063 2d74 696d 656f 7574 0231 53")
    );
    assert_eq!(encoder.table_size().0, 0);
    // Index: added, then indexed.
    let first = encode(&mut encoder, &[("content-type", "application/grpc", Indexing::Index)]);
    assert_eq!(first[0], 0x40 | 31);
    assert_eq!(
        encode(&mut encoder, &[("content-type", "application/grpc", Indexing::Index)]),
        hex("be")
    );
    // The dynamic name is used for a new value when the static table lacks it.
    encode(&mut encoder, &[("x-id", "1", Indexing::Index)]);
    assert_eq!(
        encode(&mut encoder, &[("x-id", "2", Indexing::DoNotIndex)]),
        hex("0f 2f 01 32")
    );
}

#[test]
fn sensitive_fields_are_never_indexed() {
    let mut encoder = Encoder::new(plain());
    let block = encode(&mut encoder, &[("authorization", "Bearer t", Indexing::NeverIndex)]);
    // 0001 + name index 23 (15 + 8), then the value.
    assert_eq!(block, hex("1f 08 08 4265 6172 6572 2074"));
    assert_eq!(encoder.table_size().0, 0);
    // Even a field the static table holds whole is sent as a literal.
    assert_eq!(
        encode(&mut encoder, &[(":method", "GET", Indexing::NeverIndex)]),
        hex("12 03 474554")
    );
    let fields = decode(&mut Decoder::default(), &block).unwrap();
    assert!(fields[0].sensitive);
    assert_eq!(
        lines(fields.iter().map(|f| (&f.name, &f.value))),
        ["authorization: Bearer t"]
    );
}

#[test]
fn fields_larger_than_the_table_are_not_added() {
    let mut encoder = Encoder::new(EncoderConfig {
        max_table_size: 64,
        huffman: HuffmanPolicy::Never,
    });
    encode(&mut encoder, &[("a", "1", Indexing::Index)]);
    let big = "v".repeat(40);
    let block = encode(&mut encoder, &[("big", &big, Indexing::Index)]);
    assert_eq!(block[0], 0x00, "a literal without indexing");
    // The small entry was not flushed out.
    assert_eq!(encoder.table_size(), (34, 64));
}

#[test]
fn a_disabled_table_is_announced_and_never_used() {
    let mut encoder = Encoder::new(EncoderConfig {
        max_table_size: 0,
        huffman: HuffmanPolicy::Never,
    });
    assert!(encoder.owes_size_update());
    let block = encode(&mut encoder, &[("k", "v", Indexing::Index)]);
    assert_eq!(block, hex("20 00 01 6b 01 76"));
    assert!(!encoder.owes_size_update());
    assert_eq!(
        encode(&mut encoder, &[("k", "v", Indexing::Index)]),
        hex("00 01 6b 01 76")
    );
}

#[test]
fn peer_limit_changes_become_size_updates() {
    let mut encoder = Encoder::new(plain());
    let mut decoder = Decoder::default();
    assert!(!encoder.owes_size_update());
    assert_eq!(encoder.table_size(), (0, DEFAULT_TABLE_SIZE));
    decode(&mut decoder, &encode(&mut encoder, &[("k", "v", Indexing::Index)])).unwrap();

    // Lowered: evicted at once, one update.
    encoder.set_peer_max_table_size(0);
    decoder.set_max_table_size(0);
    assert_eq!(encoder.table_size(), (0, 0));
    let block = encode(&mut encoder, &[]);
    assert_eq!(block, hex("20"));
    decode(&mut decoder, &block).unwrap();

    // Lowered then raised between blocks: the smallest, then the final.
    encoder.set_peer_max_table_size(4096);
    decoder.set_max_table_size(4096);
    let block = encode(&mut encoder, &[("k", "v", Indexing::Index)]);
    assert_eq!(&block[..3], &hex("3f e1 1f")[..]);
    decode(&mut decoder, &block).unwrap();
    encoder.set_peer_max_table_size(100);
    encoder.set_peer_max_table_size(4096);
    assert_eq!(encoder.table_size(), (34, 4096));
    encoder.set_peer_max_table_size(10);
    encoder.set_peer_max_table_size(4096);
    let block = encode(&mut encoder, &[("k", "v", Indexing::Index)]);
    assert_eq!(&block[..5], &hex("2a 3f e1 1f 40")[..]);
    decode(&mut decoder, &block).unwrap();
    assert_eq!(lines(decoder.table_entries()), lines(encoder.table_entries()));

    // A limit above the configured size changes nothing.
    encoder.set_peer_max_table_size(1 << 20);
    assert!(!encoder.owes_size_update());
}

const CONTENT_TYPE: KnownField = KnownField {
    slot: 0,
    name: b"content-type",
    value: b"application/grpc",
};

/// A block of `known` fields then `others`, and what it decodes to.
fn known_block(
    encoder: &mut Encoder,
    decoder: &mut Decoder,
    known: &[KnownField],
    others: &[(&str, &str)],
) -> (Bytes, Vec<String>) {
    let mut dst = BytesMut::new();
    let mut block = encoder.block(&mut dst);
    for &field in known {
        block.known(field);
    }
    for &(name, value) in others {
        block.field(name.as_bytes(), value.as_bytes(), Indexing::Index);
    }
    let block = dst.freeze();
    let fields = decode(decoder, &block).expect("decodes");
    let fields = lines(fields.iter().map(|f| (&f.name, &f.value)));
    (block, fields)
}

fn expected(known: &[KnownField], others: &[(&str, &str)]) -> Vec<String> {
    let known = known.iter().map(|f| {
        format!(
            "{}: {}",
            String::from_utf8_lossy(f.name),
            String::from_utf8_lossy(f.value)
        )
    });
    known.chain(others.iter().map(|(n, v)| format!("{n}: {v}"))).collect()
}

#[test]
fn a_known_field_is_added_once_then_sent_as_its_index_while_the_table_holds_it() {
    let mut encoder = Encoder::new(plain());
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut send = |others: &[(&str, &str)]| {
        let (block, fields) = known_block(&mut encoder, &mut decoder, &[CONTENT_TYPE], others);
        assert_eq!(fields, expected(&[CONTENT_TYPE], others));
        block
    };
    // First: a literal with incremental indexing and the static name (31).
    assert_eq!(send(&[]), hex("5f10 6170 706c 6963 6174 696f 6e2f 6772 7063"));
    // Then its index, 62, as other entries push it down: 63, 64.
    assert_eq!(send(&[]), hex("be"));
    assert_eq!(send(&[("x-a", "1")])[..1], hex("be")[..]);
    assert_eq!(send(&[("x-b", "2")])[..1], hex("bf")[..]);
    assert_eq!(send(&[]), hex("c0"));
}

#[test]
fn a_known_field_evicted_from_the_table_is_added_again() {
    // Room for the known field (60 octets) and one small entry (34).
    let mut encoder = Encoder::new(EncoderConfig {
        max_table_size: 100,
        ..plain()
    });
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut send = |known: &[KnownField], others: &[(&str, &str)]| {
        let (block, fields) = known_block(&mut encoder, &mut decoder, known, others);
        assert_eq!(fields, expected(known, others));
        block
    };
    // The first block opens with the size update to 100 (3f 45).
    assert_eq!(send(&[CONTENT_TYPE], &[])[..3], hex("3f45 5f")[..]);
    assert_eq!(send(&[CONTENT_TYPE], &[("x-a", "1")])[0], 0xbe);
    // A second small entry evicts the known one: the next block adds it
    // again rather than send an index that now names another entry.
    send(&[], &[("x-b", "2")]);
    assert_eq!(send(&[CONTENT_TYPE], &[])[0], 0x5f);
    assert_eq!(send(&[CONTENT_TYPE], &[]), hex("be"));
}

#[test]
fn a_known_slot_given_another_value_sends_that_value() {
    const OK: KnownField = KnownField {
        slot: 1,
        name: b"grpc-status",
        value: b"0",
    };
    const NOT_FOUND: KnownField = KnownField { value: b"5", ..OK };
    let mut encoder = Encoder::new(plain());
    let mut decoder = Decoder::new(DecoderConfig::default());
    for field in [OK, OK, NOT_FOUND, NOT_FOUND, OK] {
        let (_, fields) = known_block(&mut encoder, &mut decoder, &[field], &[]);
        assert_eq!(fields, expected(&[field], &[]));
    }
}
