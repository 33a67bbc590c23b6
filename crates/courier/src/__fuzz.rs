//! Hooks for the fuzz targets in `fuzz/`, compiled only with the `fuzzing`
//! feature. Each item is a thin wrapper over a crate-private parser, so that
//! the targets exercise exactly the code that reads a peer's bytes. Not an
//! API: nothing here is stable.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};

use crate::compression::Encoding;
use crate::metadata::Metadata;
use crate::server::{FuzzListener, Routes, Server};
use crate::status::Status;

mod connection;

pub use connection::drive_server_connection;

/// The received-message framer ([`crate::codec::FrameReader`]).
pub struct FrameReader(crate::codec::FrameReader);

impl FrameReader {
    /// A reader refusing messages over `max_size` bytes, decompressing with
    /// `encoding` (the call's `grpc-encoding`).
    pub fn new(max_size: usize, encoding: Option<Encoding>) -> FrameReader {
        FrameReader(crate::codec::FrameReader::new(max_size, encoding))
    }

    /// Adds a received chunk.
    pub fn push(&mut self, data: Bytes) {
        self.0.push(data);
    }

    /// The next whole message, if one has arrived.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Bytes>, Status> {
        self.0.next()
    }

    /// Whether the last message returned was compressed on the wire.
    pub fn last_compressed(&self) -> bool {
        self.0.last_compressed()
    }

    /// Checks that the stream did not end inside a message.
    pub fn finish(&self) -> Result<(), Status> {
        self.0.finish()
    }
}

/// Parses a received `grpc-timeout` value, as the server does.
pub fn parse_timeout(raw: &[u8]) -> Option<Duration> {
    crate::server::parse_timeout(raw).ok()
}

/// Formats a `grpc-timeout` value, as the client does.
pub fn encode_timeout(timeout: Duration) -> HeaderValue {
    crate::client::encode_timeout(timeout)
}

/// Metadata from received headers, as calls take it.
pub fn metadata_from_headers(headers: HeaderMap) -> Metadata {
    metadata_from_headers_ref(&headers)
}

/// Metadata from borrowed received headers, as trailers are read.
pub fn metadata_from_headers_ref(headers: &HeaderMap) -> Metadata {
    Metadata::from_received(crate::transport::engine::conn::headers::fields_from_map(headers).metadata)
}

/// The header map that metadata is sent as.
pub fn metadata_into_headers(metadata: Metadata) -> HeaderMap {
    metadata.into_headers()
}

/// Percent-encodes a status message for `grpc-message`.
pub fn encode_message(message: &str) -> String {
    crate::status::encode_message(message)
}

/// Decodes a received `grpc-message`.
pub fn decode_message(raw: &[u8]) -> String {
    crate::status::decode_message(raw)
}

/// Reads a status from received trailers; `None` without `grpc-status`.
pub fn status_from_trailers(trailers: &HeaderMap) -> Option<Status> {
    Status::from_fields(crate::transport::engine::conn::headers::fields_from_map(trailers))
}

/// Writes a status into trailers, as it is sent: encoded into a header
/// block by the engine, then decoded again.
pub fn status_to_trailers(status: &Status, trailers: &mut HeaderMap) {
    let encoded = crate::transport::engine::conn::headers::encoded_trailers(status);
    for (name, value) in &encoded {
        trailers.append(name, value.clone());
    }
}

/// Compresses one message, as a sender does.
pub fn compress(encoding: Encoding, src: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    crate::compression::compress(encoding, src, &mut out).expect("compressing into memory does not fail");
    out.freeze()
}

/// Decompresses one received message, bounded by `limit` bytes.
pub fn decompress(encoding: Encoding, src: &[u8], limit: usize) -> Result<Bytes, Status> {
    crate::compression::decompress(encoding, src, limit)
}

/// Connections for [`serve`]: in-memory streams, handed over one by one.
struct Connections(tokio::sync::mpsc::UnboundedReceiver<tokio::io::DuplexStream>);

use crate::channelz::socket::SockAddr;

impl FuzzListener for Connections {
    type Io = tokio::io::DuplexStream;

    async fn accept(&mut self) -> std::io::Result<(Self::Io, Option<std::net::SocketAddr>, Option<SockAddr>)> {
        match self.0.recv().await {
            Some(io) => Ok((io, None, None)),
            // No more connections will come: idle until the server is dropped.
            None => std::future::pending().await,
        }
    }
}

/// Serves `server` on the in-memory connections sent through `connections`,
/// exactly as on accepted sockets. Runs until the future is dropped.
pub async fn serve<R: Routes>(
    server: Server<R>,
    connections: tokio::sync::mpsc::UnboundedReceiver<tokio::io::DuplexStream>,
) {
    let _ = server.run(Connections(connections), std::future::pending::<()>()).await;
}

/// The HPACK decoder of Courier's own HTTP/2 engine
/// (`transport::engine::hpack::Decoder`).
pub struct HpackDecoder(crate::transport::engine::hpack::Decoder);

/// Why [`HpackDecoder::decode`] refused a block.
#[derive(Debug)]
pub struct HpackError {
    /// Whether only the stream is refused (the table stayed in step), not
    /// the connection.
    pub stream_only: bool,
    /// The rule broken.
    pub message: String,
}

impl HpackDecoder {
    /// A decoder advertising these SETTINGS_HEADER_TABLE_SIZE and
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub fn new(max_table_size: usize, max_header_list_size: usize) -> HpackDecoder {
        use crate::transport::engine::hpack::{Decoder, DecoderConfig};
        HpackDecoder(Decoder::new(DecoderConfig {
            max_table_size,
            max_header_list_size,
        }))
    }

    /// Applies a new SETTINGS_HEADER_TABLE_SIZE, as once acknowledged.
    pub fn set_max_table_size(&mut self, limit: usize) {
        self.0.set_max_table_size(limit);
    }

    /// Decodes one header block, appending `(name, value, sensitive)`.
    pub fn decode(&mut self, block: &Bytes, fields: &mut Vec<(Bytes, Bytes, bool)>) -> Result<(), HpackError> {
        use crate::transport::engine::hpack::{ErrorScope, Field};
        let mut sink = |field: Field| fields.push((field.name, field.value, field.sensitive));
        self.0.decode(block, &mut sink).map_err(|error| HpackError {
            stream_only: matches!(error.scope(), ErrorScope::Stream(_)),
            message: error.to_string(),
        })
    }

    /// The dynamic table's size and maximum size.
    pub fn table_size(&self) -> (usize, usize) {
        self.0.table_size()
    }

    /// The dynamic table's entries, newest first.
    pub fn table_entries(&self) -> Vec<(Bytes, Bytes)> {
        self.0
            .table_entries()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// How [`HpackEncoder::encode`] may index a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackIndexing {
    /// May be added to the dynamic table.
    Index,
    /// Not added.
    DoNotIndex,
    /// Sensitive: never indexed.
    NeverIndex,
}

/// The HPACK encoder of Courier's own HTTP/2 engine.
pub struct HpackEncoder(crate::transport::engine::hpack::Encoder);

impl HpackEncoder {
    /// An encoder keeping at most `max_table_size` octets of dynamic table;
    /// `huffman` 0: never, 1: when shorter, 2: when not longer.
    pub fn new(max_table_size: usize, huffman: u8) -> HpackEncoder {
        use crate::transport::engine::hpack::{Encoder, EncoderConfig, HuffmanPolicy};
        let huffman = match huffman % 3 {
            0 => HuffmanPolicy::Never,
            1 => HuffmanPolicy::WhenShorter,
            _ => HuffmanPolicy::WhenNotLonger,
        };
        HpackEncoder(Encoder::new(EncoderConfig {
            max_table_size,
            huffman,
        }))
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE.
    pub fn set_peer_max_table_size(&mut self, limit: usize) {
        self.0.set_peer_max_table_size(limit);
    }

    /// Encodes one header block of valid fields.
    pub fn encode(&mut self, fields: &[(Vec<u8>, Vec<u8>, HpackIndexing)]) -> Bytes {
        use crate::transport::engine::hpack::Indexing;
        let mut dst = BytesMut::new();
        let mut block = self.0.block(&mut dst);
        for (name, value, indexing) in fields {
            let indexing = match indexing {
                HpackIndexing::Index => Indexing::Index,
                HpackIndexing::DoNotIndex => Indexing::DoNotIndex,
                HpackIndexing::NeverIndex => Indexing::NeverIndex,
            };
            block.field(name, value, indexing);
        }
        dst.freeze()
    }

    /// The dynamic table's entries, newest first.
    pub fn table_entries(&self) -> Vec<(Bytes, Bytes)> {
        self.0
            .table_entries()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// The HTTP/2 frame layer of Courier's own engine
/// (`transport::engine::frame`), wrapped so its crate-private types can
/// cross into the fuzz target.
pub mod http2_frame {
    use bytes::{Buf, BytesMut};

    use crate::transport::engine::frame;

    /// One decoded frame.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Frame(frame::Frame);

    impl Frame {
        /// Whether it is a HEADERS or PUSH_PROMISE frame (whose block the
        /// encoder splits at the maximum frame size).
        pub fn carries_header_block(&self) -> bool {
            matches!(self.0, frame::Frame::Headers(_) | frame::Frame::PushPromise(_))
        }

        /// Whether it is a CONTINUATION frame.
        pub fn is_continuation(&self) -> bool {
            matches!(self.0, frame::Frame::Continuation(_))
        }
    }

    /// A broken rule: its violation, code and scope, as text.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Error(frame::FrameError);

    impl Error {
        /// Whether the connection must end (else one stream is reset and
        /// reading goes on).
        pub fn is_connection_error(&self) -> bool {
            self.0.is_connection_error()
        }
    }

    /// The frame decoder ([`frame::FrameDecoder`]).
    pub struct Decoder(frame::FrameDecoder);

    impl Decoder {
        /// A decoder with this SETTINGS_MAX_FRAME_SIZE (clamped).
        pub fn new(max_frame_size: u32) -> Decoder {
            Decoder(frame::FrameDecoder::new(max_frame_size))
        }

        /// The maximum frame size after clamping.
        pub fn max_frame_size(&self) -> u32 {
            self.0.max_frame_size()
        }

        /// The next frame split off `buf`, if whole.
        pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
            self.0.decode(buf).map(|f| f.map(Frame)).map_err(Error)
        }
    }

    /// The decoder and CONTINUATION assembler ([`frame::FrameReader`]).
    pub struct Reader(frame::FrameReader);

    impl Reader {
        /// A reader with this maximum frame size and these header block caps.
        pub fn new(max_frame_size: u32, max_block_size: usize, max_block_frames: usize) -> Reader {
            let limits = frame::HeaderBlockLimits {
                max_size: max_block_size,
                max_frames: max_block_frames,
            };
            Reader(frame::FrameReader::new(max_frame_size, limits))
        }

        /// The next frame, header blocks joined.
        pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
            self.0.read(buf).map(|f| f.map(Frame)).map_err(Error)
        }
    }

    /// Appends `frame` as [`frame::encode`] writes it.
    pub fn encode(frame: &Frame, dst: &mut BytesMut) {
        frame::encode(&frame.0, dst);
    }

    /// The write queue ([`frame::GatherBuf`]).
    #[derive(Default)]
    pub struct Gather(frame::GatherBuf);

    impl Gather {
        /// Queues `frame`; a header block is split at `max_frame_size`.
        pub fn push(&mut self, frame: Frame, max_frame_size: u32) {
            match frame.0 {
                frame::Frame::Headers(h) => self.0.push_headers(&h, max_frame_size),
                frame::Frame::PushPromise(p) => self.0.push_push_promise(&p, max_frame_size),
                other => self.0.push(other),
            }
        }
    }

    impl Buf for Gather {
        fn remaining(&self) -> usize {
            self.0.remaining()
        }

        fn chunk(&self) -> &[u8] {
            self.0.chunk()
        }

        fn advance(&mut self, cnt: usize) {
            self.0.advance(cnt)
        }

        fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
            self.0.chunks_vectored(dst)
        }
    }
}
