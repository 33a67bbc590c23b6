//! Why a header block was refused: which rule of RFC 7541 or RFC 9113 it
//! broke, and what HTTP/2 does about it (RFC 9113 §4.3, §8.1.1).

use std::fmt;

/// A rule of RFC 9113 §8.2 that a decoded field broke. Such a field makes
/// the message malformed: a stream error, the connection stays usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldRule {
    /// §8.2.1 (via RFC 9110 §5.1): a field name is a non-empty token.
    EmptyName,
    /// §8.2.1: a field name must not contain uppercase ASCII.
    UppercaseName,
    /// §8.2.1: a field name must not contain 0x00–0x20 or 0x7f–0xff, nor a
    /// colon except as a pseudo-header's first character.
    InvalidNameCharacter,
    /// §8.2.1: a field value must not contain NUL, CR or LF.
    InvalidValueCharacter,
    /// §8.2.2: connection-specific fields (`connection`, `keep-alive`,
    /// `proxy-connection`, `transfer-encoding`, `upgrade`) are not allowed.
    ConnectionSpecificField,
    /// §8.2.2: `te` may only be `trailers`.
    TeOtherThanTrailers,
}

/// What an HTTP/2 endpoint does with a decoding error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorScope {
    /// The HPACK state may be out of step with the peer's: the connection
    /// ends with GOAWAY and this code (RFC 9113 §4.3: COMPRESSION_ERROR).
    Connection(ErrorCode),
    /// The block was decoded to its end and the dynamic table is in step,
    /// but the stream is refused: RST_STREAM with this code (a server may
    /// first answer 431 for a header list too large, RFC 9113 §10.5.1).
    Stream(ErrorCode),
}

/// The HTTP/2 error codes HPACK decoding leads to (RFC 9113 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// PROTOCOL_ERROR (0x1).
    ProtocolError,
    /// COMPRESSION_ERROR (0x9).
    CompressionError,
}

impl ErrorCode {
    /// The code's value on the wire.
    pub(crate) fn wire(self) -> u32 {
        match self {
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::CompressionError => 0x9,
        }
    }
}

/// Why a header block could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// RFC 7541 §5.1: the block ended inside an integer.
    TruncatedInteger,
    /// RFC 7541 §5.1, §7.4: an integer above 2^32 − 1, or one with more
    /// continuation octets than that needs.
    IntegerOverflow,
    /// RFC 7541 §5.2: a string's length goes past the end of the block.
    TruncatedString,
    /// RFC 7541 §5.2: a Huffman string contains the EOS symbol.
    HuffmanEos,
    /// RFC 7541 §5.2: a Huffman string's padding is not all ones.
    HuffmanPaddingNotOnes,
    /// RFC 7541 §5.2: a Huffman string's padding is longer than 7 bits.
    HuffmanPaddingTooLong,
    /// RFC 7541 §6.1: index 0 is not an entry.
    IndexZero,
    /// RFC 7541 §2.3.3: an index past the static and dynamic tables.
    IndexOutOfRange {
        /// The index received.
        index: u32,
    },
    /// RFC 7541 §6.3: a dynamic table size update above the limit this
    /// endpoint set with SETTINGS_HEADER_TABLE_SIZE.
    TableSizeAboveLimit {
        /// The size asked for.
        requested: u32,
        /// The limit.
        limit: usize,
    },
    /// RFC 7541 §4.2: a dynamic table size update after a field of the
    /// block; they come first.
    TableSizeUpdateNotAtStart,
    /// RFC 7541 §4.2: this endpoint lowered SETTINGS_HEADER_TABLE_SIZE below
    /// the table's size, and the next block did not start with an update.
    TableSizeUpdateMissing,
    /// RFC 9113 §6.5.2: the decoded header list (name + value + 32 per
    /// field) is over SETTINGS_MAX_HEADER_LIST_SIZE. Fields past the limit
    /// were not given to the sink.
    HeaderListTooLarge {
        /// The limit.
        limit: usize,
    },
    /// RFC 9113 §8.2: a field broke this rule. Fields after it were not
    /// given to the sink.
    MalformedField(FieldRule),
}

impl DecodeError {
    /// What the connection does about this error.
    pub(crate) fn scope(&self) -> ErrorScope {
        match self {
            DecodeError::HeaderListTooLarge { .. } | DecodeError::MalformedField(_) => {
                ErrorScope::Stream(ErrorCode::ProtocolError)
            }
            _ => ErrorScope::Connection(ErrorCode::CompressionError),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TruncatedInteger => f.write_str("HPACK: block ends inside an integer"),
            DecodeError::IntegerOverflow => f.write_str("HPACK: integer too large"),
            DecodeError::TruncatedString => f.write_str("HPACK: string longer than the block"),
            DecodeError::HuffmanEos => f.write_str("HPACK: EOS inside a Huffman string"),
            DecodeError::HuffmanPaddingNotOnes => f.write_str("HPACK: Huffman padding is not all ones"),
            DecodeError::HuffmanPaddingTooLong => f.write_str("HPACK: Huffman padding longer than 7 bits"),
            DecodeError::IndexZero => f.write_str("HPACK: index 0"),
            DecodeError::IndexOutOfRange { index } => write!(f, "HPACK: index {index} past the tables"),
            DecodeError::TableSizeAboveLimit { requested, limit } => {
                write!(f, "HPACK: table size update to {requested}, above the limit {limit}")
            }
            DecodeError::TableSizeUpdateNotAtStart => f.write_str("HPACK: table size update after a field"),
            DecodeError::TableSizeUpdateMissing => f.write_str("HPACK: expected a table size update first"),
            DecodeError::HeaderListTooLarge { limit } => write!(f, "header list larger than {limit}"),
            DecodeError::MalformedField(rule) => write!(f, "malformed field: {rule:?}"),
        }
    }
}

impl std::error::Error for DecodeError {}
