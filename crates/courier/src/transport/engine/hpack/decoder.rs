//! The HPACK decoder (RFC 7541 §3, §6): one header block at a time, into a
//! [`FieldSink`], with the limits a peer could otherwise push.
//!
//! A block is always read to its end, even after a field broke a rule of
//! RFC 9113 §8.2 or the header list grew past its limit: the insertions it
//! makes must still be applied so the dynamic table stays in step with the
//! peer's encoder. Those two errors therefore only refuse the stream. Past
//! such an error no field is checked or handed on, and an indexed field is
//! only looked up, so a block that names a large entry many times (an
//! "HPACK bomb") costs no more than reading its own octets. Every other
//! error leaves the table out of step and ends the connection.

use bytes::{Bytes, BytesMut};

use super::dynamic_table::{DynamicTable, entry_size};
use super::error::DecodeError;
use super::field::{self, Field, FieldSink};
use super::{huffman, integer, static_table};

/// The decoder's limits: each is something this endpoint advertises.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DecoderConfig {
    /// SETTINGS_HEADER_TABLE_SIZE: the largest dynamic table the peer's
    /// encoder may ask for. Default 4096, HTTP/2's initial value.
    pub(crate) max_table_size: usize,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the most a decoded header list may
    /// take, counting name + value + 32 octets per field. Default 16 KiB,
    /// Courier's `Http2Settings` default.
    pub(crate) max_header_list_size: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_table_size: 4096,
            max_header_list_size: 16 * 1024,
        }
    }
}

/// Whether the next block must open with a dynamic table size update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SizeUpdate {
    /// The encoder may send one, or not.
    Optional,
    /// This endpoint lowered its limit below the table's maximum size: the
    /// next block must start with an update to at most the new limit
    /// (RFC 7541 §4.2).
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))] // Set by `set_max_table_size`.
    Required,
}

/// Where the decoder is inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockPhase {
    /// Before the first field: size updates may come.
    Start,
    /// After a field: no more size updates.
    Fields,
}

/// What happens to the next decoded field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    /// Checked, counted and handed to the sink.
    Deliver,
    /// Discarded: the block is refused with this error once read to its end.
    Refused(DecodeError),
}

/// The five representations, told apart by the first octet's high bits
/// (RFC 7541 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Representation {
    /// `1xxxxxxx`: a table entry, §6.1.
    Indexed,
    /// `01xxxxxx`: a literal added to the table, §6.2.1.
    LiteralIndexed,
    /// `0000xxxx`: a literal not added, §6.2.2.
    LiteralNotIndexed,
    /// `0001xxxx`: a literal never to be added, anywhere, §6.2.3.
    LiteralNeverIndexed,
    /// `001xxxxx`: a dynamic table size update, §6.3.
    SizeUpdate,
}

impl Representation {
    fn of(first: u8) -> Representation {
        match first {
            0x80..=0xff => Representation::Indexed,
            0x40..=0x7f => Representation::LiteralIndexed,
            0x20..=0x3f => Representation::SizeUpdate,
            0x10..=0x1f => Representation::LiteralNeverIndexed,
            0x00..=0x0f => Representation::LiteralNotIndexed,
        }
    }

    /// The bits of the first octet that start its integer.
    fn prefix_bits(self) -> u8 {
        match self {
            Representation::Indexed => 7,
            Representation::LiteralIndexed => 6,
            Representation::SizeUpdate => 5,
            Representation::LiteralNotIndexed | Representation::LiteralNeverIndexed => 4,
        }
    }
}

/// An HPACK decoder: one per connection, fed every header block the peer
/// sends, in order.
#[derive(Debug)]
pub(crate) struct Decoder {
    table: DynamicTable,
    /// The SETTINGS_HEADER_TABLE_SIZE in force.
    max_table_size: usize,
    max_header_list_size: usize,
    size_update: SizeUpdate,
    /// Huffman-decoded strings are written here, then split off: one
    /// allocation serves many strings.
    huffman_buf: BytesMut,
}

/// The smallest allocation for Huffman-decoded strings.
const HUFFMAN_CHUNK: usize = 1024;

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl Decoder {
    /// A decoder with an empty table and these limits.
    pub(crate) fn new(config: DecoderConfig) -> Decoder {
        Decoder {
            table: DynamicTable::new(config.max_table_size),
            max_table_size: config.max_table_size,
            max_header_list_size: config.max_header_list_size,
            size_update: SizeUpdate::Optional,
            huffman_buf: BytesMut::new(),
        }
    }

    /// The Huffman buffer's capacity.
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.huffman_buf.capacity()
    }

    /// Gives back the Huffman buffer's allocation, for a connection gone
    /// idle; strings split off it keep their part until they are dropped.
    pub(crate) fn release_buffer(&mut self) {
        if self.huffman_buf.capacity() != 0 {
            self.huffman_buf = BytesMut::new();
        }
    }

    /// Applies a new SETTINGS_HEADER_TABLE_SIZE, once the peer has
    /// acknowledged it. A limit below the table's current maximum evicts at
    /// once and requires the next block to open with a size update.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn set_max_table_size(&mut self, limit: usize) {
        self.max_table_size = limit;
        if limit < self.table.max_size() {
            self.table.set_max_size(limit);
            self.size_update = SizeUpdate::Required;
        }
    }

    /// Applies a new SETTINGS_MAX_HEADER_LIST_SIZE.
    #[cfg(test)]
    pub(crate) fn set_max_header_list_size(&mut self, limit: usize) {
        self.max_header_list_size = limit;
    }

    /// The dynamic table's size in octets, and its maximum.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn table_size(&self) -> (usize, usize) {
        (self.table.size(), self.table.max_size())
    }

    /// The dynamic table's entries, newest first.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn table_entries(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.table.iter().map(|entry| (&entry.name, &entry.value))
    }

    /// Decodes one whole header block (HEADERS and its CONTINUATIONs,
    /// reassembled), handing each field to `sink` in order. On an error
    /// whose [`scope`](DecodeError::scope) is a stream error, the block was
    /// still read to its end and the decoder stays usable; on any other the
    /// connection must end.
    pub(crate) fn decode(&mut self, block: &Bytes, sink: &mut impl FieldSink) -> Result<(), DecodeError> {
        let mut cursor = Cursor { block, pos: 0 };
        let mut phase = BlockPhase::Start;
        let mut delivery = Delivery::Deliver;
        let mut list_size = 0usize;
        while let Some(first) = cursor.peek() {
            let representation = Representation::of(first);
            let index = cursor.integer(representation.prefix_bits())? as usize;
            if representation == Representation::SizeUpdate {
                self.size_update_to(phase, index)?;
                continue;
            }
            if phase == BlockPhase::Start {
                self.start_fields()?;
                phase = BlockPhase::Fields;
            }
            if representation == Representation::Indexed {
                let (name, value) = self.entry(index)?;
                if let Delivery::Deliver = delivery {
                    delivery = self.admit(&mut list_size, name, value);
                    if delivery == Delivery::Deliver {
                        sink.field(Field {
                            name: name.clone(),
                            value: value.clone(),
                            sensitive: false,
                        });
                    }
                }
                continue;
            }
            let name = match index {
                0 => cursor.string(&mut self.huffman_buf)?,
                _ => self.entry(index)?.0.clone(),
            };
            let value = cursor.string(&mut self.huffman_buf)?;
            if representation == Representation::LiteralIndexed {
                self.table.insert(&name, &value);
            }
            if let Delivery::Deliver = delivery {
                delivery = self.admit(&mut list_size, &name, &value);
                if delivery == Delivery::Deliver {
                    let sensitive = representation == Representation::LiteralNeverIndexed;
                    sink.field(Field { name, value, sensitive });
                }
            }
        }
        if phase == BlockPhase::Start {
            // A block of size updates only, or an empty one.
            self.start_fields()?;
        }
        match delivery {
            Delivery::Deliver => Ok(()),
            Delivery::Refused(error) => Err(error),
        }
    }

    /// Applies a size update read at `phase`.
    fn size_update_to(&mut self, phase: BlockPhase, size: usize) -> Result<(), DecodeError> {
        if phase == BlockPhase::Fields {
            return Err(DecodeError::TableSizeUpdateNotAtStart);
        }
        if size > self.max_table_size {
            return Err(DecodeError::TableSizeAboveLimit {
                requested: size as u32,
                limit: self.max_table_size,
            });
        }
        self.table.set_max_size(size);
        self.size_update = SizeUpdate::Optional;
        Ok(())
    }

    /// Checks, as the first field of a block begins, that no size update
    /// was owed.
    fn start_fields(&self) -> Result<(), DecodeError> {
        match self.size_update {
            SizeUpdate::Optional => Ok(()),
            SizeUpdate::Required => Err(DecodeError::TableSizeUpdateMissing),
        }
    }

    /// The field at `index` in the static then the dynamic table.
    fn entry(&self, index: usize) -> Result<(&Bytes, &Bytes), DecodeError> {
        if index == 0 {
            return Err(DecodeError::IndexZero);
        }
        if let Some((name, value)) = static_table::get_bytes(index) {
            return Ok((name, value));
        }
        match self.table.get(index - static_table::LEN) {
            Some(entry) => Ok((&entry.name, &entry.value)),
            None => Err(DecodeError::IndexOutOfRange { index: index as u32 }),
        }
    }

    /// Counts a field against the header list limit and checks it: whether
    /// it is delivered, or refuses the block.
    fn admit(&self, list_size: &mut usize, name: &[u8], value: &[u8]) -> Delivery {
        *list_size += entry_size(name, value);
        if *list_size > self.max_header_list_size {
            return Delivery::Refused(DecodeError::HeaderListTooLarge {
                limit: self.max_header_list_size,
            });
        }
        match field::check(name, value) {
            Ok(()) => Delivery::Deliver,
            Err(rule) => Delivery::Refused(DecodeError::MalformedField(rule)),
        }
    }
}

/// A read position in a header block.
struct Cursor<'a> {
    block: &'a Bytes,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.block.get(self.pos).copied()
    }

    /// Reads an integer with a `prefix_bits`-bit prefix.
    fn integer(&mut self, prefix_bits: u8) -> Result<u32, DecodeError> {
        let (value, len) = integer::decode(&self.block[self.pos..], prefix_bits)?;
        self.pos += len;
        Ok(value)
    }

    /// Reads a string literal (RFC 7541 §5.2): a slice of the block, or
    /// Huffman-decoded into `huffman_buf` and split off it.
    fn string(&mut self, huffman_buf: &mut BytesMut) -> Result<Bytes, DecodeError> {
        let huffman = self.peek().ok_or(DecodeError::TruncatedInteger)? & 0x80 != 0;
        let len = self.integer(7)? as usize;
        let start = self.pos;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= self.block.len())
            .ok_or(DecodeError::TruncatedString)?;
        self.pos = end;
        if !huffman {
            return Ok(self.block.slice(start..end));
        }
        let most = len * 8 / 5;
        if huffman_buf.capacity() < most {
            huffman_buf.reserve(most.max(HUFFMAN_CHUNK));
        }
        huffman::decode(&self.block[start..end], huffman_buf).inspect_err(|_| huffman_buf.clear())?;
        Ok(huffman_buf.split().freeze())
    }
}
