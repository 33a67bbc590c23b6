//! Timing of a typical gRPC request head, encoded and decoded; run with
//! `cargo test -p courier --release --lib hpack::tests::speed -- --ignored
//! --nocapture`. Prints numbers; asserts nothing about time.

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;

use super::super::{BlockEncoder, Decoder, Encoder, Field, Indexing};

/// A unary call's request headers as a gRPC client sends them.
const REQUEST: &[(&str, &str, Indexing)] = &[
    (":method", "POST", Indexing::Index),
    (":scheme", "http", Indexing::Index),
    (":path", "/helloworld.Greeter/SayHello", Indexing::Index),
    (":authority", "localhost:50051", Indexing::Index),
    ("content-type", "application/grpc", Indexing::Index),
    ("te", "trailers", Indexing::Index),
    ("user-agent", "grpc-rust-courier/0.1.0", Indexing::Index),
    ("grpc-accept-encoding", "identity,deflate,gzip,zstd", Indexing::Index),
    ("grpc-timeout", "4999m", Indexing::DoNotIndex),
];

fn encode(encoder: &mut Encoder, dst: &mut BytesMut) {
    let mut block: BlockEncoder<'_> = encoder.block(dst);
    for &(name, value, indexing) in REQUEST {
        block.field(name.as_bytes(), value.as_bytes(), indexing);
    }
}

fn per_block(iterations: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iterations)
}

#[test]
#[ignore = "timing; run by hand"]
fn typical_grpc_request_head() {
    const N: u32 = 200_000;
    let mut dst = BytesMut::with_capacity(1024);

    // The first block of a connection: literals, Huffman-coded, added.
    let first = per_block(N / 10, || {
        dst.clear();
        encode(&mut Encoder::default(), &mut dst);
        black_box(&dst);
    });
    let mut encoder = Encoder::default();
    dst.clear();
    encode(&mut encoder, &mut dst);
    let first_block = dst.split().freeze();
    // Every later block: indexes, and grpc-timeout as a literal.
    let steady = per_block(N, || {
        dst.clear();
        encode(&mut encoder, &mut dst);
        black_box(&dst);
    });
    let steady_block = dst.split().freeze();

    let mut count = 0usize;
    let mut sink = |field: Field| count += field.value.len();
    let first_decode = per_block(N / 10, || {
        Decoder::default().decode(&first_block, &mut sink).unwrap();
    });
    let mut decoder = Decoder::default();
    decoder.decode(&first_block, &mut sink).unwrap();
    let steady_decode = per_block(N, || {
        decoder.decode(&steady_block, &mut sink).unwrap();
    });
    black_box(count);
    println!(
        "typical gRPC request head ({} fields): first block {} octets, later blocks {} octets",
        REQUEST.len(),
        first_block.len(),
        steady_block.len()
    );
    println!("encode: first {first:.0} ns, later {steady:.0} ns per block");
    println!("decode: first {first_decode:.0} ns, later {steady_decode:.0} ns per block");
}
