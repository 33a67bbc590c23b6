//! h2spec's server cases, as raw-frame tests against a Courier server over
//! a real loopback socket: every behaviour h2spec (the HTTP/2 conformance
//! tool) checks of a server, for RFC 9113 (`http2`), RFC 7541 (`hpack`)
//! and its generic cases (`generic`), one test each, grouped in modules by
//! section. The raw client is `courier_tests::raw_h2`.
//!
//! What a case expects is what h2spec accepts: a connection error is a
//! GOAWAY with the given code followed by the connection closing, or the
//! connection simply closing; a stream error is an RST_STREAM with the
//! given code, or a connection error with it. One thing is stricter than
//! h2spec: a GOAWAY or reset with a code other than the expected ones fails
//! the case at once (h2spec lets a close that follows it pass).
//!
//! Where a case needs a normal request it sends a valid gRPC call to the
//! Echo service: `POST /courier.test.Echo/Unary` with `content-type:
//! application/grpc` and `te: trailers`, and a length-prefixed message
//! where h2spec sends a body.
//!
//! Where a gRPC server makes h2spec's own steps miss their point, a case
//! reaches the same state another way:
//! - a request with END_STREAM and no message is answered at once, so a
//!   stream that must stay half-closed (remote) carries a call whose
//!   handler takes a minute (`Case::send_slow_call`), and the concurrency
//!   case's requests leave their streams open;
//! - trailers with a pseudo-header (8.1.2.1) carry END_STREAM, as trailers
//!   do (without it the case repeats 8.1's);
//! - CONTINUATION after DATA (6.10) follows a complete header block;
//! - DATA on an idle stream (5.1) must be the connection error RFC 9113
//!   asks for, where h2spec accepts a stream error too.
//!
//! Every case runs against Courier's own HTTP/2 engine. With
//! `RAW_H2_TRACE=1` (and `--nocapture`) every case prints the frames the
//! server sent.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};

use courier_tests::raw_h2::hpack::Block;
use courier_tests::raw_h2::*;
use courier_tests::{EchoRequest, TestServer, start_server, text};
use prost::Message as _;

#[path = "h2spec/generic.rs"]
mod generic;
#[path = "h2spec/hpack.rs"]
mod hpack;
#[path = "h2spec/http2.rs"]
mod http2;

/// The unary method every normal request calls.
const UNARY: &str = "/courier.test.Echo/Unary";

/// A header field as the cases build them.
type Field = (String, String);

/// One case: a server of its own and a raw connection to it. Dereferences
/// to the connection.
struct Case {
    conn: RawConn,
    addr: SocketAddr,
    _server: TestServer,
}

impl Deref for Case {
    type Target = RawConn;
    fn deref(&self) -> &RawConn {
        &self.conn
    }
}

impl DerefMut for Case {
    fn deref_mut(&mut self) -> &mut RawConn {
        &mut self.conn
    }
}

impl Case {
    /// A server and a connection that has completed the HTTP/2 handshake.
    async fn open() -> Case {
        let mut case = Case::unopened().await;
        case.conn.handshake(&[]).await;
        case
    }

    /// A server and a TCP connection on which nothing was sent yet.
    async fn unopened() -> Case {
        let server = start_server().await;
        let conn = RawConn::connect(server.addr).await;
        Case {
            conn,
            addr: server.addr,
            _server: server,
        }
    }

    /// The pseudo-header fields of a unary gRPC call.
    fn pseudo(&self) -> Vec<Field> {
        fields(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", UNARY),
            (":authority", &self.addr.to_string()),
        ])
    }

    /// The regular fields of a gRPC request.
    fn regular(&self) -> Vec<Field> {
        fields(&[("content-type", "application/grpc"), ("te", "trailers")])
    }

    /// The fields of a unary gRPC call, pseudo-header fields first.
    fn request(&self) -> Vec<Field> {
        let mut all = self.pseudo();
        all.extend(self.regular());
        all
    }

    /// The request's fields with `extra` after them.
    fn request_with(&self, extra: &[(&str, &str)]) -> Vec<Field> {
        let mut all = self.request();
        all.extend(fields(extra));
        all
    }

    /// The request encoded: literals without indexing, no Huffman coding.
    fn request_block(&self) -> Vec<u8> {
        Block::of(&self.request()).bytes()
    }

    /// Sends the request's HEADERS (END_HEADERS) on `stream`.
    async fn send_request(&mut self, stream: u32, end_stream: bool) {
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        let frame = headers(stream, flags, &self.request_block());
        self.send(&frame).await;
    }

    /// Sends a whole unary call on `stream`: HEADERS, then `req` in one DATA
    /// frame with END_STREAM. The stream is then half-closed (remote).
    async fn send_call(&mut self, stream: u32, req: &EchoRequest) {
        let mut bytes = headers(stream, flag::END_HEADERS, &self.request_block());
        bytes.extend(data(stream, true, &message(req)));
        self.send(&bytes).await;
    }

    /// Sends a unary call whose handler takes a minute to answer, so that
    /// the stream stays half-closed (remote) for the whole case.
    async fn send_slow_call(&mut self, stream: u32) {
        let slow = EchoRequest {
            text: "slow".into(),
            sleep_ms: 60_000,
            ..Default::default()
        };
        self.send_call(stream, &slow).await;
    }
}

/// Owned fields.
fn fields(list: &[(&str, &str)]) -> Vec<Field> {
    list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// A gRPC length-prefixed message: no compression, the length, the bytes.
fn message(req: &EchoRequest) -> Vec<u8> {
    let body = req.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A small request message.
fn hello() -> Vec<u8> {
    message(&text("hello"))
}

/// A request message of exactly `len` octets, prefix included.
fn message_of_len(len: usize) -> Vec<u8> {
    let mut payload = len.saturating_sub(16);
    loop {
        let msg = message(&EchoRequest {
            payload: vec![b'x'; payload],
            ..Default::default()
        });
        match msg.len() {
            n if n == len => return msg,
            n if n < len => payload += 1,
            _ => panic!("no message is exactly {len} octets"),
        }
    }
}

/// h2spec's filler fields: `count` fields `x-dummyN` of `len` octets each.
fn dummy_fields(count: usize, len: usize) -> Vec<Field> {
    (0..count).map(|i| (format!("x-dummy{i}"), "x".repeat(len))).collect()
}

/// A header block of one filler field, for CONTINUATION frames.
fn dummy_block() -> Vec<u8> {
    Block::of(&dummy_fields(1, 100)).bytes()
}

/// Checks of the raw client itself, against the examples of RFC 7541
/// Appendix C, so that a failing case is the server's doing.
mod raw_client {
    use courier_tests::raw_h2::hpack::{self, Block, Decoder, Indexing};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
        fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    #[test]
    fn huffman_coding_matches_rfc_7541_c_4_1() {
        assert_eq!(
            hpack::huffman_encode(b"www.example.com"),
            hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")
        );
        assert_eq!(hpack::huffman_encode(b"no-cache"), hex("a8eb 1064 9cbf"));
        assert_eq!(
            hpack::huffman_decode(&hex("25a8 49e9 5ba9 7d7f")).unwrap(),
            b"custom-key"
        );
        assert_eq!(
            hpack::huffman_decode(&hex("25a8 49e9 5bb8 e8b4 bf")).unwrap(),
            b"custom-value"
        );
    }

    #[test]
    fn huffman_decoding_refuses_what_rfc_7541_section_5_2_forbids() {
        let (zeros, bits) = hpack::huffman_symbols(&[b't' as u16, b'e' as u16, b's' as u16, b't' as u16], false);
        assert_eq!(bits, 4);
        assert!(hpack::huffman_decode(&zeros).is_err(), "zero padding");
        let mut long = hpack::huffman_encode(b"test");
        long.push(0xff);
        assert!(hpack::huffman_decode(&long).is_err(), "padding over 7 bits");
        let (eos, _) = hpack::huffman_symbols(&[b't' as u16, hpack::EOS], true);
        assert!(hpack::huffman_decode(&eos).is_err(), "EOS");
    }

    #[test]
    fn decoding_matches_rfc_7541_c_4_requests_with_huffman_coding() {
        let mut decoder = Decoder::default();
        let first = decoder
            .decode(&hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))
            .unwrap();
        assert_eq!(
            pairs(&first),
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ]
        );
        let second = decoder.decode(&hex("8286 84be 5886 a8eb 1064 9cbf")).unwrap();
        assert_eq!(
            pairs(&second),
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ]
        );
        let third = decoder
            .decode(&hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))
            .unwrap();
        assert_eq!(third[4], ("custom-key".to_string(), "custom-value".to_string()));
        assert_eq!(third[3], (":authority".to_string(), "www.example.com".to_string()));
    }

    #[test]
    fn decoding_matches_rfc_7541_c_5_responses_with_eviction() {
        let mut decoder = Decoder::new(256);
        let first = decoder
            .decode(&hex(
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
                 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
                 6c65 2e63 6f6d",
            ))
            .unwrap();
        assert_eq!(first[0], (":status".to_string(), "302".to_string()));
        let second = decoder.decode(&hex("4803 3330 37c1 c0bf")).unwrap();
        assert_eq!(
            pairs(&second),
            [
                (":status", "307"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com")
            ]
        );
    }

    #[test]
    fn the_encoder_writes_the_representations_asked_for() {
        let block = Block::new()
            .table_size_update(4096)
            .indexed(2)
            .literal_indexed_name(Indexing::Incremental, 4, "/x", false)
            .literal_new_name(Indexing::Never, "a", "b", true)
            .literal("c", "d")
            .bytes();
        let fields = Decoder::default().decode(&block).unwrap();
        assert_eq!(
            pairs(&fields),
            [(":method", "GET"), (":path", "/x"), ("a", "b"), ("c", "d")]
        );
        let mut int = Vec::new();
        hpack::encode_int(&mut int, 0, 5, 1337);
        assert_eq!(int, [31, 154, 10], "RFC 7541 C.1.2");
    }
}
