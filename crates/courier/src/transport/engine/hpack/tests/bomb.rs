//! HPACK bombs: a small block that names one large dynamic-table entry
//! many times. The decoder stops delivering at the header list limit, and
//! what it delivers never exceeds it.

use bytes::{BufMut, Bytes, BytesMut};

use super::super::{DecodeError, Decoder, DecoderConfig, Field, FieldSink};

/// A block adding `x: <value_len octets>` to the table.
fn insert_large(value_len: usize) -> BytesMut {
    let mut block = BytesMut::new();
    block.put_slice(&[0x40, 0x01, b'x']);
    // The value's length, 7-bit prefix: 127 then the rest in 7-bit groups.
    let mut rest = value_len - 127;
    block.put_u8(0x7f);
    while rest >= 0x80 {
        block.put_u8((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    block.put_u8(rest as u8);
    block.put_bytes(b'a', value_len);
    block
}

/// A sink counting what it receives.
#[derive(Default)]
struct Tally {
    fields: usize,
    octets: usize,
}

impl FieldSink for Tally {
    fn field(&mut self, field: Field) {
        self.fields += 1;
        self.octets += field.name.len() + field.value.len() + 32;
    }
}

#[test]
fn a_bomb_stops_at_the_limit() {
    let limit = 16 * 1024;
    let mut decoder = Decoder::new(DecoderConfig {
        max_table_size: 4096,
        max_header_list_size: limit,
    });
    // 4000 + 1 + 32 = 4033 octets per reference.
    decoder
        .decode(&insert_large(4000).freeze(), &mut |_: Field| {})
        .unwrap();

    // 16 KiB of references to it would expand to 66 MB.
    let bomb = Bytes::from(vec![0xbe; 16 * 1024]);
    let mut tally = Tally::default();
    let error = decoder.decode(&bomb, &mut tally).unwrap_err();
    assert_eq!(error, DecodeError::HeaderListTooLarge { limit });
    assert!(tally.octets <= limit, "{} octets delivered", tally.octets);
    assert_eq!(tally.fields, limit / 4033);

    // Only the stream is refused: the table is intact and in step.
    let mut tally = Tally::default();
    decoder.decode(&Bytes::from_static(&[0xbe]), &mut tally).unwrap();
    assert_eq!((tally.fields, tally.octets), (1, 4033));
}

/// The same bomb within one block: insert, then reference.
#[test]
fn a_bomb_in_one_block_stops_at_the_limit() {
    let limit = 8 * 1024;
    let mut decoder = Decoder::new(DecoderConfig {
        max_table_size: 4096,
        max_header_list_size: limit,
    });
    let mut block = insert_large(3000);
    block.put_bytes(0xbe, 100_000);
    let mut tally = Tally::default();
    let error = decoder.decode(&block.freeze(), &mut tally).unwrap_err();
    assert_eq!(error, DecodeError::HeaderListTooLarge { limit });
    assert_eq!(tally.fields, 2);
    assert!(tally.octets <= limit);
}

/// Nor can a bomb grow the table: entries larger than the limit the peer
/// was given empty the table instead.
#[test]
fn a_large_entry_cannot_grow_the_table() {
    let mut decoder = Decoder::new(DecoderConfig {
        max_table_size: 1024,
        max_header_list_size: 1 << 20,
    });
    decoder
        .decode(&insert_large(2000).freeze(), &mut |_: Field| {})
        .unwrap();
    assert_eq!(decoder.table_size(), (0, 1024));
}
