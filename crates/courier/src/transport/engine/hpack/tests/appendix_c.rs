//! Every example of RFC 7541 Appendix C.2 to C.6: each block decodes to
//! the listed header list, leaves the dynamic table as listed, and is what
//! the encoder writes for that header list.

use bytes::BytesMut;

use super::super::{Decoder, DecoderConfig, Encoder, EncoderConfig, HuffmanPolicy, Indexing};
use super::{decode, hex, lines};

/// One header block of an example.
struct Block {
    block: &'static str,
    fields: &'static [&'static str],
    /// The dynamic table after it, newest first, and its size.
    table: &'static [&'static str],
    table_size: usize,
}

/// Decodes then encodes a sequence of blocks on one connection.
fn check(table_limit: usize, huffman: HuffmanPolicy, blocks: &[Block]) {
    let mut decoder = Decoder::new(DecoderConfig {
        max_table_size: table_limit,
        ..DecoderConfig::default()
    });
    let mut encoder = Encoder::new(EncoderConfig {
        max_table_size: table_limit,
        huffman,
    });
    for (i, expected) in blocks.iter().enumerate() {
        let block = hex(expected.block);
        let fields = decode(&mut decoder, &block).unwrap();
        assert_eq!(
            lines(fields.iter().map(|f| (&f.name, &f.value))),
            expected.fields,
            "block {i}"
        );
        assert!(fields.iter().all(|f| !f.sensitive));
        assert_eq!(lines(decoder.table_entries()), expected.table, "block {i}");
        assert_eq!(decoder.table_size().0, expected.table_size, "block {i}");

        let mut dst = BytesMut::new();
        let mut writer = encoder.block(&mut dst);
        for line in expected.fields {
            let (name, value) = line.split_once(": ").unwrap();
            writer.field(name.as_bytes(), value.as_bytes(), Indexing::Index);
        }
        let mut want = block.to_vec();
        if i == 0 && table_limit < 4096 {
            // The encoder announces its smaller table first (to 256: 3f e1 01).
            want.splice(0..0, [0x3f, 0xe1, 0x01]);
        }
        assert_eq!(dst.to_vec(), want, "block {i} encoded");
        assert_eq!(
            lines(encoder.table_entries()),
            expected.table,
            "block {i} encoder table"
        );
    }
}

/// C.2.1: literal with indexing.
#[test]
fn c_2_1_literal_with_indexing() {
    let mut decoder = Decoder::default();
    let fields = decode(
        &mut decoder,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    )
    .unwrap();
    assert_eq!(
        lines(fields.iter().map(|f| (&f.name, &f.value))),
        ["custom-key: custom-header"]
    );
    assert_eq!(lines(decoder.table_entries()), ["custom-key: custom-header"]);
    assert_eq!(decoder.table_size().0, 55);

    let mut encoder = Encoder::new(EncoderConfig {
        huffman: HuffmanPolicy::Never,
        ..EncoderConfig::default()
    });
    let mut dst = BytesMut::new();
    encoder
        .block(&mut dst)
        .field(b"custom-key", b"custom-header", Indexing::Index);
    assert_eq!(
        dst,
        hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")
    );
}

/// C.2.2: literal without indexing, indexed name.
#[test]
fn c_2_2_literal_without_indexing() {
    let block = hex("040c 2f73 616d 706c 652f 7061 7468");
    let mut decoder = Decoder::default();
    let fields = decode(&mut decoder, &block).unwrap();
    assert_eq!(
        lines(fields.iter().map(|f| (&f.name, &f.value))),
        [":path: /sample/path"]
    );
    assert!(!fields[0].sensitive);
    assert_eq!(decoder.table_size().0, 0);

    let mut encoder = Encoder::new(EncoderConfig {
        huffman: HuffmanPolicy::Never,
        ..EncoderConfig::default()
    });
    let mut dst = BytesMut::new();
    encoder
        .block(&mut dst)
        .field(b":path", b"/sample/path", Indexing::DoNotIndex);
    assert_eq!(dst, block);
}

/// C.2.3: literal never indexed, which the decoder marks sensitive.
#[test]
fn c_2_3_literal_never_indexed() {
    let block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    let mut decoder = Decoder::default();
    let fields = decode(&mut decoder, &block).unwrap();
    assert_eq!(lines(fields.iter().map(|f| (&f.name, &f.value))), ["password: secret"]);
    assert!(fields[0].sensitive);
    assert_eq!(decoder.table_size().0, 0);

    let mut encoder = Encoder::new(EncoderConfig {
        huffman: HuffmanPolicy::Never,
        ..EncoderConfig::default()
    });
    let mut dst = BytesMut::new();
    encoder
        .block(&mut dst)
        .field(b"password", b"secret", Indexing::NeverIndex);
    assert_eq!(dst, block);
    assert_eq!(encoder.table_size().0, 0);
}

/// C.2.4: indexed field.
#[test]
fn c_2_4_indexed_field() {
    let mut decoder = Decoder::default();
    let fields = decode(&mut decoder, &hex("82")).unwrap();
    assert_eq!(lines(fields.iter().map(|f| (&f.name, &f.value))), [":method: GET"]);
    assert_eq!(decoder.table_size().0, 0);

    let mut encoder = Encoder::default();
    let mut dst = BytesMut::new();
    encoder.block(&mut dst).field(b":method", b"GET", Indexing::Index);
    assert_eq!(dst, hex("82"));
}

const REQUEST_1: &[&str] = &[
    ":method: GET",
    ":scheme: http",
    ":path: /",
    ":authority: www.example.com",
];
const REQUEST_2: &[&str] = &[
    ":method: GET",
    ":scheme: http",
    ":path: /",
    ":authority: www.example.com",
    "cache-control: no-cache",
];
const REQUEST_3: &[&str] = &[
    ":method: GET",
    ":scheme: https",
    ":path: /index.html",
    ":authority: www.example.com",
    "custom-key: custom-value",
];
const REQUEST_TABLE_1: &[&str] = &[":authority: www.example.com"];
const REQUEST_TABLE_2: &[&str] = &["cache-control: no-cache", ":authority: www.example.com"];
const REQUEST_TABLE_3: &[&str] = &[
    "custom-key: custom-value",
    "cache-control: no-cache",
    ":authority: www.example.com",
];

/// C.3: three requests without Huffman coding.
#[test]
fn c_3_requests_without_huffman() {
    check(
        4096,
        HuffmanPolicy::Never,
        &[
            Block {
                block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                fields: REQUEST_1,
                table: REQUEST_TABLE_1,
                table_size: 57,
            },
            Block {
                block: "8286 84be 5808 6e6f 2d63 6163 6865",
                fields: REQUEST_2,
                table: REQUEST_TABLE_2,
                table_size: 110,
            },
            Block {
                block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                fields: REQUEST_3,
                table: REQUEST_TABLE_3,
                table_size: 164,
            },
        ],
    );
}

/// C.4: the same requests with Huffman coding.
#[test]
fn c_4_requests_with_huffman() {
    check(
        4096,
        HuffmanPolicy::WhenNotLonger,
        &[
            Block {
                block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                fields: REQUEST_1,
                table: REQUEST_TABLE_1,
                table_size: 57,
            },
            Block {
                block: "8286 84be 5886 a8eb 1064 9cbf",
                fields: REQUEST_2,
                table: REQUEST_TABLE_2,
                table_size: 110,
            },
            Block {
                block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                fields: REQUEST_3,
                table: REQUEST_TABLE_3,
                table_size: 164,
            },
        ],
    );
}

const RESPONSE_1: &[&str] = &[
    ":status: 302",
    "cache-control: private",
    "date: Mon, 21 Oct 2013 20:13:21 GMT",
    "location: https://www.example.com",
];
const RESPONSE_2: &[&str] = &[
    ":status: 307",
    "cache-control: private",
    "date: Mon, 21 Oct 2013 20:13:21 GMT",
    "location: https://www.example.com",
];
const RESPONSE_3: &[&str] = &[
    ":status: 200",
    "cache-control: private",
    "date: Mon, 21 Oct 2013 20:13:22 GMT",
    "location: https://www.example.com",
    "content-encoding: gzip",
    "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
];
const RESPONSE_TABLE_1: &[&str] = &[
    "location: https://www.example.com",
    "date: Mon, 21 Oct 2013 20:13:21 GMT",
    "cache-control: private",
    ":status: 302",
];
const RESPONSE_TABLE_2: &[&str] = &[
    ":status: 307",
    "location: https://www.example.com",
    "date: Mon, 21 Oct 2013 20:13:21 GMT",
    "cache-control: private",
];
const RESPONSE_TABLE_3: &[&str] = &[
    "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    "content-encoding: gzip",
    "date: Mon, 21 Oct 2013 20:13:22 GMT",
];

/// C.5: three responses without Huffman coding, in a 256-octet table, so
/// entries are evicted.
#[test]
fn c_5_responses_without_huffman() {
    check(
        256,
        HuffmanPolicy::Never,
        &[
            Block {
                block: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                        2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                        6c65 2e63 6f6d",
                fields: RESPONSE_1,
                table: RESPONSE_TABLE_1,
                table_size: 222,
            },
            Block {
                block: "4803 3330 37c1 c0bf",
                fields: RESPONSE_2,
                table: RESPONSE_TABLE_2,
                table_size: 222,
            },
            Block {
                block: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                        54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                        5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                        3d31",
                fields: RESPONSE_3,
                table: RESPONSE_TABLE_3,
                table_size: 215,
            },
        ],
    );
}

/// C.6: the same responses with Huffman coding.
#[test]
fn c_6_responses_with_huffman() {
    check(
        256,
        HuffmanPolicy::WhenNotLonger,
        &[
            Block {
                block: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                        2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                fields: RESPONSE_1,
                table: RESPONSE_TABLE_1,
                table_size: 222,
            },
            Block {
                block: "4883 640e ffc1 c0bf",
                fields: RESPONSE_2,
                table: RESPONSE_TABLE_2,
                table_size: 222,
            },
            Block {
                block: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                        77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                        9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                fields: RESPONSE_3,
                table: RESPONSE_TABLE_3,
                table_size: 215,
            },
        ],
    );
}
