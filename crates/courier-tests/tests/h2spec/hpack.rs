//! h2spec's `hpack` cases: RFC 7541, by section. Each sends a valid
//! request head with one faulty representation added, which the server
//! must treat as a decoding error: a connection error COMPRESSION_ERROR.

use courier_tests::raw_h2::code::COMPRESSION_ERROR;
use courier_tests::raw_h2::flag::{END_HEADERS, END_STREAM};
use courier_tests::raw_h2::hpack::{self as hp, Block, Indexing};
use courier_tests::raw_h2::*;

use super::*;

/// Sends `block` as a whole request head on stream 1 and expects a
/// connection error COMPRESSION_ERROR.
async fn is_a_compression_error(c: &mut Case, block: Block) {
    c.send(&headers(1, END_STREAM | END_HEADERS, &block.bytes())).await;
    c.expect_connection_error(&[COMPRESSION_ERROR]).await;
}

/// The request head, then `faulty`.
fn request_then(c: &Case, faulty: &[u8]) -> Block {
    Block::of(&c.request()).raw(faulty)
}

/// A literal without indexing named `x-test` whose value is `coded` as a
/// Huffman-coded string.
fn huffman_value(coded: &[u8]) -> Vec<u8> {
    let mut rep = Vec::new();
    hp::encode_int(&mut rep, 0x00, 4, 0);
    hp::encode_str(&mut rep, b"x-test", false);
    hp::encode_int(&mut rep, 0x80, 7, coded.len());
    rep.extend_from_slice(coded);
    rep
}

/// 2.3.3 Index Address Space.
mod s2_3_3_index_address_space {
    use super::*;

    #[tokio::test]
    async fn an_indexed_field_past_both_tables_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        // The request adds nothing to the dynamic table: index 70 is past
        // the 61 static entries and the empty dynamic table.
        let block = Block::of(&c.request()).indexed(70);
        is_a_compression_error(&mut c, block).await;
    }

    #[tokio::test]
    async fn a_literal_name_index_past_both_tables_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        let block = Block::of(&c.request()).literal_indexed_name(Indexing::Incremental, 100, "x", false);
        is_a_compression_error(&mut c, block).await;
    }
}

/// 4.2 Maximum Table Size.
mod s4_2_maximum_table_size {
    use super::*;

    #[tokio::test]
    async fn a_table_size_update_at_the_end_of_a_block_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        let block = Block::of(&c.request()).table_size_update(1);
        is_a_compression_error(&mut c, block).await;
    }
}

/// 5.2 String Literal Representation.
mod s5_2_string_literal_representation {
    use super::*;

    #[tokio::test]
    async fn huffman_padding_longer_than_7_bits_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        let mut coded = hp::huffman_encode(b"test");
        coded.push(0xff);
        let block = request_then(&c, &huffman_value(&coded));
        is_a_compression_error(&mut c, block).await;
    }

    #[tokio::test]
    async fn huffman_padding_of_zeros_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        let symbols: Vec<u16> = b"test".iter().map(|&b| b as u16).collect();
        let (coded, bits) = hp::huffman_symbols(&symbols, false);
        // Fewer than 5 zero bits: too few to be a code (the shortest has 5).
        assert!((1..5).contains(&bits), "{bits} bits of padding");
        let block = request_then(&c, &huffman_value(&coded));
        is_a_compression_error(&mut c, block).await;
    }

    #[tokio::test]
    async fn huffman_coded_eos_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        let (coded, _) = hp::huffman_symbols(&[b't' as u16, hp::EOS, b't' as u16], true);
        let block = request_then(&c, &huffman_value(&coded));
        is_a_compression_error(&mut c, block).await;
    }
}

/// 6.1 Indexed Header Field Representation.
mod s6_1_indexed_header_field {
    use super::*;

    #[tokio::test]
    async fn index_0_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        let block = Block::of(&c.request()).indexed(0);
        is_a_compression_error(&mut c, block).await;
    }
}

/// 6.3 Dynamic Table Size Update.
mod s6_3_dynamic_table_size_update {
    use super::*;

    #[tokio::test]
    async fn a_table_size_update_over_settings_header_table_size_is_a_connection_compression_error() {
        let mut c = Case::open().await;
        let limit = c.server_setting(setting::HEADER_TABLE_SIZE).unwrap_or(4_096) as usize;
        let block = Block::new()
            .table_size_update(limit + 1)
            .raw(&Block::of(&c.request()).bytes());
        is_a_compression_error(&mut c, block).await;
    }
}
