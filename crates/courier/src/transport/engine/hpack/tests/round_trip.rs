//! A randomized round trip: random header lists, encoded with random
//! choices under random table sizes that change between blocks, decode to
//! themselves, and the two dynamic tables stay identical.

use bytes::BytesMut;

use super::super::{Decoder, DecoderConfig, Encoder, EncoderConfig, HuffmanPolicy, Indexing};

/// xorshift64*: small, deterministic, good enough to pick test cases.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    ":path",
    ":authority",
    ":status",
    ":method",
    "content-type",
    "user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-status",
    "grpc-message",
    "x-trace-bin",
    "authorization",
    "cookie",
];

const VALUES: &[&str] = &[
    "",
    "0",
    "200",
    "POST",
    "application/grpc",
    "/pkg.Service/Method",
    "gzip",
    "1S",
];

/// A valid random name: one of the usual ones, or lowercase token octets.
fn name(rng: &mut Rng) -> Vec<u8> {
    if rng.below(2) == 0 {
        return rng.pick(NAMES).as_bytes().to_vec();
    }
    const TOKEN: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'*+^`|~";
    (0..1 + rng.below(20)).map(|_| *rng.pick(TOKEN)).collect()
}

/// A valid random value: a usual one, or any octets but NUL, CR and LF,
/// not starting or ending with whitespace.
fn value(rng: &mut Rng) -> Vec<u8> {
    if rng.below(2) == 0 {
        return rng.pick(VALUES).as_bytes().to_vec();
    }
    let len = match rng.below(10) {
        0 => 100 + rng.below(400),
        _ => rng.below(30),
    };
    let mut value: Vec<u8> = (0..len)
        .map(|_| {
            loop {
                let octet = rng.next() as u8;
                if !matches!(octet, 0 | b'\r' | b'\n') {
                    break octet;
                }
            }
        })
        .collect();
    for end in [0, value.len().saturating_sub(1)] {
        if let Some(octet @ (b' ' | b'\t')) = value.get_mut(end) {
            *octet = b'x';
        }
    }
    value
}

#[test]
fn random_header_lists_round_trip() {
    let mut rng = Rng::new(0x4850_4143_4b21);
    let sizes = [0, 32, 64, 100, 256, 1024, 4096, 8192];
    let mut fields_checked = 0;
    for connection in 0..300 {
        let huffman = *rng.pick(&[
            HuffmanPolicy::Never,
            HuffmanPolicy::WhenShorter,
            HuffmanPolicy::WhenNotLonger,
        ]);
        let mut encoder = Encoder::new(EncoderConfig {
            max_table_size: *rng.pick(&sizes),
            huffman,
        });
        let mut decoder = Decoder::new(DecoderConfig {
            max_table_size: 4096,
            max_header_list_size: usize::MAX,
        });
        let mut dst = BytesMut::new();
        let mut fields = Vec::new();
        for block_number in 0..20 {
            if rng.below(6) == 0 {
                // The decoder's side changes SETTINGS_HEADER_TABLE_SIZE; once
                // acknowledged both apply it before the next block.
                let limit = *rng.pick(&sizes);
                decoder.set_max_table_size(limit);
                encoder.set_peer_max_table_size(limit);
            }
            let list: Vec<(Vec<u8>, Vec<u8>, Indexing)> = (0..rng.below(12))
                .map(|_| {
                    let indexing = *rng.pick(&[
                        Indexing::Index,
                        Indexing::Index,
                        Indexing::DoNotIndex,
                        Indexing::NeverIndex,
                    ]);
                    (name(&mut rng), value(&mut rng), indexing)
                })
                .collect();
            dst.clear();
            let mut block = encoder.block(&mut dst);
            for (name, value, indexing) in &list {
                block.field(name, value, *indexing);
            }
            fields.clear();
            let bytes = dst.split().freeze();
            decoder
                .decode(&bytes, &mut fields)
                .unwrap_or_else(|e| panic!("connection {connection}, block {block_number}: {e}"));
            assert_eq!(fields.len(), list.len());
            for (field, (name, value, indexing)) in fields.iter().zip(&list) {
                assert_eq!((&field.name[..], &field.value[..]), (&name[..], &value[..]));
                assert_eq!(field.sensitive, *indexing == Indexing::NeverIndex);
            }
            fields_checked += list.len();
            assert!(
                encoder.table_entries().eq(decoder.table_entries()),
                "connection {connection}"
            );
            assert_eq!(encoder.table_size(), decoder.table_size());
        }
    }
    assert!(fields_checked > 30_000);
}
