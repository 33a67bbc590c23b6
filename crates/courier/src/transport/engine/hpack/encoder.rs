//! The HPACK encoder: fields into a caller's `BytesMut`, using the static
//! table, an optional dynamic table, and Huffman coding when it pays.
//!
//! A block is written through a [`BlockEncoder`], which opens with any
//! dynamic table size update the encoder owes (RFC 7541 §4.2 puts them at
//! the start of a block), so they cannot land anywhere else.

use bytes::BytesMut;

use super::dynamic_table::{DynamicMatch, DynamicTable, entry_size};
use super::static_table::{self, StaticMatch};
use super::{huffman, integer};

/// The dynamic table size HTTP/2 starts with (SETTINGS_HEADER_TABLE_SIZE).
pub(crate) const DEFAULT_TABLE_SIZE: usize = 4096;

/// When string literals are Huffman-coded. Connections use
/// [`HuffmanPolicy::WhenShorter`]; the others are for RFC 7541's examples
/// and for fuzzing.
#[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HuffmanPolicy {
    /// Never: every string is sent as is.
    Never,
    /// When the code is strictly shorter; a tie is sent as is, which the
    /// peer decodes without work.
    WhenShorter,
    /// When the code is not longer (RFC 7541 Appendix C's examples do this).
    WhenNotLonger,
}

/// How a field may use the dynamic table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Indexing {
    /// Indexed when a table holds it, otherwise added to the dynamic table
    /// when that is enabled and the field fits. For fields that repeat.
    Index,
    /// Indexed when a table holds it, otherwise a literal not added: for
    /// values that change every time (`grpc-timeout`, `content-length`).
    DoNotIndex,
    /// Always a never-indexed literal (RFC 7541 §6.2.3, §7.1.3): for
    /// sensitive values (credentials), which a peer or proxy must not put in
    /// a table either.
    NeverIndex,
}

/// The encoder's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EncoderConfig {
    /// The largest dynamic table this encoder keeps, whatever the peer
    /// allows; 0 disables it. Default 4096.
    pub(crate) max_table_size: usize,
    /// When to Huffman-code. Default [`HuffmanPolicy::WhenShorter`].
    pub(crate) huffman: HuffmanPolicy,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            max_table_size: DEFAULT_TABLE_SIZE,
            huffman: HuffmanPolicy::WhenShorter,
        }
    }
}

/// Whether the peer's decoder has been told the table's maximum size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SizeUpdate {
    /// It knows.
    InStep,
    /// The next block must open with updates: to `smallest` first when it
    /// is below the current maximum (the table shrank, then grew, between
    /// blocks), then to the current maximum.
    Owed { smallest: usize },
}

/// An HPACK encoder: one per connection, for every header block sent to
/// the peer, in the order they are sent.
#[derive(Debug)]
pub(crate) struct Encoder {
    table: DynamicTable,
    /// The most this encoder wants.
    configured_size: usize,
    /// The peer's SETTINGS_HEADER_TABLE_SIZE.
    peer_limit: usize,
    size_update: SizeUpdate,
    huffman: HuffmanPolicy,
    /// Where the table holds each [`KnownField`] sent so far, by its slot:
    /// the value sent and its entry's serial number.
    known: [Option<(&'static [u8], u64)>; KNOWN_SLOTS],
}

/// The slots [`BlockEncoder::known`] remembers fields in.
pub(crate) const KNOWN_SLOTS: usize = 8;

/// A field a connection sends on nearly every block, whose name and value
/// are constants: `content-type: application/grpc`, `te: trailers`,
/// `grpc-status: 0`. Its first block adds it to the dynamic table; the
/// encoder remembers its entry by `slot`, and later blocks send its index,
/// one octet, worked out from the entry's serial number without searching
/// the table. Each slot holds one field at a time: another value in the same
/// slot (`grpc-status: 5`) takes the slot over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KnownField {
    /// Below [`KNOWN_SLOTS`]; one per name.
    pub(crate) slot: usize,
    /// The name, lowercase.
    pub(crate) name: &'static [u8],
    /// The value.
    pub(crate) value: &'static [u8],
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(EncoderConfig::default())
    }
}

impl Encoder {
    /// An encoder for a peer that has not yet sent SETTINGS (so allows
    /// 4096 octets).
    pub(crate) fn new(config: EncoderConfig) -> Encoder {
        let size = config.max_table_size.min(DEFAULT_TABLE_SIZE);
        // The peer's decoder starts at 4096: a smaller table is announced.
        let size_update = match size {
            DEFAULT_TABLE_SIZE => SizeUpdate::InStep,
            _ => SizeUpdate::Owed { smallest: size },
        };
        Encoder {
            table: DynamicTable::new(size),
            configured_size: config.max_table_size,
            peer_limit: DEFAULT_TABLE_SIZE,
            size_update,
            huffman: config.huffman,
            known: [None; KNOWN_SLOTS],
        }
    }

    /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE. The table shrinks at
    /// once if it must; the next block tells the peer.
    pub(crate) fn set_peer_max_table_size(&mut self, limit: usize) {
        self.peer_limit = limit;
        let size = self.configured_size.min(limit);
        let smallest = match self.size_update {
            SizeUpdate::InStep if size == self.table.max_size() => return,
            SizeUpdate::InStep => size,
            SizeUpdate::Owed { smallest } => smallest.min(size),
        };
        self.table.set_max_size(size);
        self.size_update = SizeUpdate::Owed { smallest };
    }

    /// Whether the next block must open with a size update.
    #[cfg(test)]
    pub(crate) fn owes_size_update(&self) -> bool {
        self.size_update != SizeUpdate::InStep
    }

    /// The dynamic table's size in octets, and its maximum.
    #[cfg(test)]
    pub(crate) fn table_size(&self) -> (usize, usize) {
        (self.table.size(), self.table.max_size())
    }

    /// The dynamic table's entries, newest first.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn table_entries(&self) -> impl Iterator<Item = (&bytes::Bytes, &bytes::Bytes)> {
        self.table.iter().map(|entry| (&entry.name, &entry.value))
    }

    /// Starts a header block appended to `dst`, writing the size updates
    /// owed.
    pub(crate) fn block<'a>(&'a mut self, dst: &'a mut BytesMut) -> BlockEncoder<'a> {
        if let SizeUpdate::Owed { smallest } = self.size_update {
            if smallest < self.table.max_size() {
                integer::encode(smallest, 5, 0x20, dst);
            }
            integer::encode(self.table.max_size(), 5, 0x20, dst);
            self.size_update = SizeUpdate::InStep;
        }
        BlockEncoder { encoder: self, dst }
    }
}

/// One header block being written; see [`Encoder::block`].
pub(crate) struct BlockEncoder<'a> {
    encoder: &'a mut Encoder,
    dst: &'a mut BytesMut,
}

impl BlockEncoder<'_> {
    /// Appends a field, its name and value already valid (lowercase name).
    pub(crate) fn field(&mut self, name: &[u8], value: &[u8], indexing: Indexing) {
        let encoder = &mut *self.encoder;
        let dst = &mut *self.dst;
        if indexing == Indexing::NeverIndex {
            let name_index = name_index(static_table::find(name, value), encoder.table.find(name, value));
            literal(0x10, 4, name_index, name, value, encoder.huffman, dst);
            return;
        }
        let in_static = static_table::find(name, value);
        if let StaticMatch::Field(index) = in_static {
            integer::encode(index, 7, 0x80, dst);
            return;
        }
        let in_dynamic = encoder.table.find(name, value);
        if let DynamicMatch::Field(position) = in_dynamic {
            integer::encode(static_table::LEN + position, 7, 0x80, dst);
            return;
        }
        let name_index = name_index(in_static, in_dynamic);
        if indexing == Indexing::Index && entry_size(name, value) <= encoder.table.max_size() {
            literal(0x40, 6, name_index, name, value, encoder.huffman, dst);
            encoder.table.insert(name, value);
        } else {
            literal(0x00, 4, name_index, name, value, encoder.huffman, dst);
        }
    }

    /// Appends a [`KnownField`]: its index when the table still holds the
    /// entry its slot remembers, otherwise as [`BlockEncoder::field`] would
    /// with [`Indexing::Index`], remembering the new entry.
    pub(crate) fn known(&mut self, field: KnownField) {
        let encoder = &mut *self.encoder;
        if let Some((value, serial)) = encoder.known[field.slot]
            && value == field.value
            && let Some(position) = encoder.table.position_of(serial)
        {
            integer::encode(static_table::LEN + position, 7, 0x80, self.dst);
            return;
        }
        // Not remembered (or evicted): found by a search, or added anew.
        if let DynamicMatch::Field(position) = encoder.table.find(field.name, field.value) {
            integer::encode(static_table::LEN + position, 7, 0x80, self.dst);
            let serial = encoder.table.newest_serial() + 1 - position as u64;
            encoder.known[field.slot] = Some((field.value, serial));
            return;
        }
        let before = encoder.table.newest_serial();
        self.field(field.name, field.value, Indexing::Index);
        let encoder = &mut *self.encoder;
        let serial = encoder.table.newest_serial();
        encoder.known[field.slot] = (serial != before).then_some((field.value, serial));
    }
}

/// The index to name a field by in a literal, static first (0: none).
fn name_index(in_static: StaticMatch, in_dynamic: DynamicMatch) -> usize {
    match (in_static, in_dynamic) {
        (StaticMatch::Field(index) | StaticMatch::Name(index), _) => index,
        (StaticMatch::None, DynamicMatch::Field(position) | DynamicMatch::Name(position)) => {
            static_table::LEN + position
        }
        (StaticMatch::None, DynamicMatch::None) => 0,
    }
}

/// Writes a literal representation: the first octet's `flags`, the name's
/// index in a `prefix_bits`-bit prefix (or 0 and the name), then the value.
pub(super) fn literal(
    flags: u8,
    prefix_bits: u8,
    name_index: usize,
    name: &[u8],
    value: &[u8],
    huffman: HuffmanPolicy,
    dst: &mut BytesMut,
) {
    integer::encode(name_index, prefix_bits, flags, dst);
    if name_index == 0 {
        string(name, huffman, dst);
    }
    string(value, huffman, dst);
}

/// Writes a string literal (RFC 7541 §5.2), Huffman-coded as `huffman` says.
pub(super) fn string(src: &[u8], huffman: HuffmanPolicy, dst: &mut BytesMut) {
    let coded_len = match huffman {
        HuffmanPolicy::Never => None,
        HuffmanPolicy::WhenShorter => Some(huffman::encoded_len(src)).filter(|&len| len < src.len()),
        HuffmanPolicy::WhenNotLonger => Some(huffman::encoded_len(src)).filter(|&len| len <= src.len()),
    };
    match coded_len {
        Some(len) => {
            integer::encode(len, 7, 0x80, dst);
            huffman::encode(src, dst);
        }
        None => {
            integer::encode(src.len(), 7, 0x00, dst);
            dst.extend_from_slice(src);
        }
    }
}
