//! HPACK, HTTP/2's header compression (RFC 7541), for Courier's own engine.
//!
//! - [`Decoder`] reads one header block (HEADERS and CONTINUATION already
//!   reassembled) into a [`FieldSink`]: fields come out as `Bytes` slices of
//!   the block, of a table entry or of a shared Huffman buffer, never copied
//!   into a header map. It enforces the limits this endpoint advertises
//!   (SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE, counted as
//!   it goes, so an HPACK bomb is cut short) and RFC 9113 §8.2's field rules,
//!   and says for each error which rule broke and whether the stream or the
//!   connection pays ([`DecodeError::scope`]).
//! - [`Encoder`] writes blocks into a caller's `BytesMut` with the static
//!   table, an optional dynamic table (4096 octets by default), Huffman
//!   coding when shorter and never-indexed literals for sensitive values.
//! - [`KnownField`]s are the fields sent on nearly every block (gRPC's
//!   `content-type`, `te`, `grpc-status`): the encoder remembers where the
//!   table holds each, so after the first block each costs one octet and no
//!   search.
//!
//! Submodules: `integer` and `huffman` (with `huffman_codes`, Appendix B)
//! are the primitives (§5); `static_table` (Appendix A) and `dynamic_table`
//! (§2.3, §4) the tables; `field` the decoded field, the sink and the field
//! rules; `error` the errors.

mod decoder;
mod dynamic_table;
mod encoder;
mod error;
mod field;
mod huffman;
mod huffman_codes;
mod integer;
mod static_table;

#[cfg(test)]
mod tests;

pub(crate) use decoder::{Decoder, DecoderConfig};
#[cfg(test)]
pub(crate) use encoder::DEFAULT_TABLE_SIZE;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use encoder::HuffmanPolicy;
pub(crate) use encoder::{BlockEncoder, Encoder, EncoderConfig, Indexing, KnownField};
pub(crate) use error::ErrorScope;
#[cfg(test)]
pub(crate) use error::{DecodeError, ErrorCode, FieldRule};
pub(crate) use field::{Field, FieldSink};
