//! HPACK: the decoder of Courier's own HTTP/2 engine on arbitrary blocks,
//! and encode → decode round trips of fields taken from the input.
//!
//! The first two octets choose small limits (the SETTINGS_HEADER_TABLE_SIZE
//! and SETTINGS_MAX_HEADER_LIST_SIZE advertised). Then:
//! - The rest, cut into blocks by length octets, is decoded block after
//!   block: it never panics; the fields delivered never exceed the header
//!   list limit and have valid lowercase names; the table stays within its
//!   limit; after a stream-only error the decoder goes on, after a
//!   connection error it stops.
//! - The same octets, read as fields (name, value, indexing) and table size
//!   changes, are encoded by an encoder with a table size and Huffman policy
//!   from the input, and decode back to exactly those fields, the two
//!   dynamic tables equal after every block.

#![no_main]

use bytes::Bytes;
use courier::__fuzz::{HpackDecoder, HpackEncoder, HpackIndexing};
use libfuzzer_sys::fuzz_target;

const TABLE_SIZES: [usize; 8] = [0, 1, 32, 33, 64, 100, 256, 4096];
const LIST_SIZES: [usize; 8] = [0, 32, 40, 64, 100, 256, 1024, 16384];

fuzz_target!(|input: &[u8]| {
    let [table, list, rest @ ..] = input else { return };
    let table_limit = TABLE_SIZES[usize::from(table % 8)];
    let list_limit = LIST_SIZES[usize::from(list % 8)];
    decode_arbitrary(table_limit, list_limit, rest);
    round_trip(table_limit, *table, *list, rest);
});

fn decode_arbitrary(table_limit: usize, list_limit: usize, mut rest: &[u8]) {
    let mut decoder = HpackDecoder::new(table_limit, list_limit);
    let mut fields = Vec::new();
    while let [len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let block = Bytes::copy_from_slice(&tail[..len]);
        rest = &tail[len..];
        fields.clear();
        let result = decoder.decode(&block, &mut fields);
        let delivered: usize = fields.iter().map(|(name, value, _)| name.len() + value.len() + 32).sum();
        assert!(delivered <= list_limit, "{delivered} octets delivered, limit {list_limit}");
        for (name, _, _) in &fields {
            assert!(!name.is_empty() && !name.iter().any(u8::is_ascii_uppercase), "{name:?}");
        }
        let (size, max) = decoder.table_size();
        assert!(size <= max && max <= table_limit, "table {size}/{max}, limit {table_limit}");
        match result {
            Ok(()) => {}
            Err(error) if error.stream_only => {}
            Err(_) => return,
        }
    }
}

/// Reads fields from the input: a valid name and value, and how to index.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn octet(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn take(&mut self, len: usize) -> &[u8] {
        let (taken, rest) = self.0.split_at(len.min(self.0.len()));
        self.0 = rest;
        taken
    }
}

const NAMES: [&[u8]; 8] =
    [b":path", b":status", b"content-type", b"grpc-status", b"grpc-timeout", b"authorization", b"x-a", b"te"];

fn name(fields: &mut Fields<'_>, choice: u8) -> Vec<u8> {
    if choice < 8 {
        return NAMES[usize::from(choice)].to_vec();
    }
    const TOKEN: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*+^`|~";
    let len = 1 + usize::from(choice % 16);
    let name: Vec<u8> = fields.take(len).iter().map(|&b| TOKEN[usize::from(b) % TOKEN.len()]).collect();
    // Connection-specific names are refused by design (RFC 9113 §8.2.2).
    let refused: [&[u8]; 5] = [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"];
    if name.is_empty() || refused.contains(&&name[..]) { b"x-b".to_vec() } else { name }
}

fn value(fields: &mut Fields<'_>, name: &[u8]) -> Vec<u8> {
    let len = usize::from(fields.octet().unwrap_or(0) % 64);
    // Any octet but NUL, CR and LF; surrounding whitespace is accepted on
    // receipt.
    let mut value: Vec<u8> =
        fields.take(len).iter().map(|&b| if matches!(b, 0 | b'\r' | b'\n') { b'x' } else { b }).collect();
    if name == b"te" {
        value = b"trailers".to_vec();
    }
    value
}

fn round_trip(table_limit: usize, table: u8, list: u8, rest: &[u8]) {
    let mut encoder = HpackEncoder::new(TABLE_SIZES[usize::from(list % 8)], table / 8);
    let mut decoder = HpackDecoder::new(table_limit, usize::MAX);
    encoder.set_peer_max_table_size(table_limit);
    let mut fields = Fields(rest);
    let mut decoded = Vec::new();
    while let Some(count) = fields.octet() {
        if count >= 0xf0 {
            // Both sides apply a new SETTINGS_HEADER_TABLE_SIZE.
            let limit = TABLE_SIZES[usize::from(count % 8)];
            decoder.set_max_table_size(limit);
            encoder.set_peer_max_table_size(limit);
        }
        let mut list = Vec::new();
        for _ in 0..count % 8 {
            let Some(choice) = fields.octet() else { break };
            let name = name(&mut fields, choice >> 2);
            let value = value(&mut fields, &name);
            let indexing = match choice % 4 {
                0 | 1 => HpackIndexing::Index,
                2 => HpackIndexing::DoNotIndex,
                _ => HpackIndexing::NeverIndex,
            };
            list.push((name, value, indexing));
        }
        let block = encoder.encode(&list);
        decoded.clear();
        decoder.decode(&block, &mut decoded).expect("an encoded block decodes");
        let want: Vec<(Bytes, Bytes, bool)> = list
            .iter()
            .map(|(name, value, indexing)| {
                (Bytes::copy_from_slice(name), Bytes::copy_from_slice(value), *indexing == HpackIndexing::NeverIndex)
            })
            .collect();
        assert_eq!(decoded, want);
        assert_eq!(encoder.table_entries(), decoder.table_entries());
    }
}
