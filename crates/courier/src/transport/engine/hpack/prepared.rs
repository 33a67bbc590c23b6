//! Prepared header blocks: fields encoded once, their bytes reused for
//! every message (`:status: 200` + `content-type: application/grpc` on each
//! response, `grpc-status: 0` on each OK trailer).
//!
//! Why reuse is safe: a prepared block holds only two representations,
//! - indexed fields whose index is in the static table (1 to 61), and
//! - literals *without indexing* or *never indexed* whose name, if indexed,
//!   is a static index too.
//!
//! Neither reads the dynamic table (static indexes mean the same thing
//! whatever it holds) nor changes it (RFC 7541 §6.1, §6.2.2 and §6.2.3 add
//! nothing to it, and only a size update or a literal *with* incremental
//! indexing would). So the bytes decode to the same fields at any point of
//! any block on any connection, and leave both sides' tables as they were.
//! The one rule left is the encoder's: a size update it owes must open the
//! block, which [`BlockEncoder::prepared`](super::BlockEncoder::prepared)
//! ensures, or which the caller checks with
//! [`Encoder::owes_size_update`](super::Encoder::owes_size_update) before
//! sending the prepared bytes alone.

use bytes::{Bytes, BytesMut};

use super::encoder::{HuffmanPolicy, literal};
use super::integer;
use super::static_table::{self, StaticMatch};

/// Header fields encoded once; see the module's documentation for why
/// their bytes can be reused anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PreparedBlock {
    bytes: Bytes,
}

impl PreparedBlock {
    /// Starts a prepared block.
    pub(crate) fn builder() -> PreparedBlockBuilder {
        PreparedBlockBuilder { bytes: BytesMut::new() }
    }

    /// The encoded fields, to append to a block or to send as one.
    pub(crate) fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Builds a [`PreparedBlock`], field by field.
#[derive(Debug)]
pub(crate) struct PreparedBlockBuilder {
    bytes: BytesMut,
}

impl PreparedBlockBuilder {
    /// Adds a field: its static index when the static table holds it,
    /// otherwise a literal without indexing (Huffman-coded when shorter).
    pub(crate) fn field(mut self, name: &[u8], value: &[u8]) -> Self {
        match static_table::find(name, value) {
            StaticMatch::Field(index) => integer::encode(index, 7, 0x80, &mut self.bytes),
            StaticMatch::Name(index) => {
                literal(0x00, 4, index, name, value, HuffmanPolicy::WhenShorter, &mut self.bytes)
            }
            StaticMatch::None => literal(0x00, 4, 0, name, value, HuffmanPolicy::WhenShorter, &mut self.bytes),
        }
        self
    }

    /// Adds a sensitive field, as a never-indexed literal.
    pub(crate) fn sensitive(mut self, name: &[u8], value: &[u8]) -> Self {
        let index = match static_table::find(name, value) {
            StaticMatch::Field(index) | StaticMatch::Name(index) => index,
            StaticMatch::None => 0,
        };
        literal(0x10, 4, index, name, value, HuffmanPolicy::WhenShorter, &mut self.bytes);
        self
    }

    /// The finished block.
    pub(crate) fn build(self) -> PreparedBlock {
        PreparedBlock {
            bytes: self.bytes.freeze(),
        }
    }
}
