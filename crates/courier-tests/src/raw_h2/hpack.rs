//! Just enough HPACK (RFC 7541) for conformance tests: an encoder that
//! writes exactly the representations a test asks for, byte by byte, and a
//! decoder (static table, dynamic table, Huffman) for the server's header
//! blocks.

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

/// The static table (RFC 7541 Appendix A); index 1 is the first entry.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The static table index of `user-agent` (with an empty value).
pub const USER_AGENT: usize = 58;

/// The symbol number of EOS in the Huffman code.
pub const EOS: u16 = 256;

/// The length in bits of each symbol's Huffman code (RFC 7541 Appendix B),
/// the 256 octets and then EOS. The code is canonical, so the lengths alone
/// determine it: [`codes`] assigns the codes in order of (length, symbol).
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0x00
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 0x10
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 0x20
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 0x30
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 0x40
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 0x50
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 0x60
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 0x70
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 0x80
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 0x90
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 0xa0
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 0xb0
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 0xc0
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 0xd0
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 0xe0
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 0xf0
    30, // EOS
];

/// Each symbol's `(code, length)`, the code aligned to the least
/// significant bit.
pub fn codes() -> &'static [(u32, u8); 257] {
    static CODES: OnceLock<[(u32, u8); 257]> = OnceLock::new();
    CODES.get_or_init(|| {
        let mut order: Vec<u16> = (0..257).collect();
        order.sort_by_key(|&s| (CODE_LENGTHS[s as usize], s));
        let mut out = [(0u32, 0u8); 257];
        let mut code = 0u32;
        let mut prev_len = CODE_LENGTHS[order[0] as usize];
        for (i, &sym) in order.iter().enumerate() {
            let len = CODE_LENGTHS[sym as usize];
            if i > 0 {
                code = (code + 1) << (len - prev_len);
            }
            prev_len = len;
            out[sym as usize] = (code, len);
        }
        out
    })
}

fn decode_map() -> &'static HashMap<(u8, u32), u16> {
    static MAP: OnceLock<HashMap<(u8, u32), u16>> = OnceLock::new();
    MAP.get_or_init(|| {
        codes()
            .iter()
            .enumerate()
            .map(|(sym, &(code, len))| ((len, code), sym as u16))
            .collect()
    })
}

/// Huffman-codes `symbols` (octets, or [`EOS`]) and pads the last octet
/// with `pad` bits (ones are the proper padding, a prefix of EOS). Returns
/// the octets and how many padding bits the last one has.
pub fn huffman_symbols(symbols: &[u16], pad: bool) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &sym in symbols {
        let (code, len) = codes()[sym as usize];
        acc = (acc << len) | code as u64;
        bits += len as u32;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    let padding = if bits == 0 { 0 } else { 8 - bits };
    if bits > 0 {
        let fill = if pad { (1u64 << padding) - 1 } else { 0 };
        out.push(((acc << padding) | fill) as u8);
    }
    (out, padding)
}

/// The Huffman coding of `s`, properly padded.
pub fn huffman_encode(s: &[u8]) -> Vec<u8> {
    let symbols: Vec<u16> = s.iter().map(|&b| b as u16).collect();
    huffman_symbols(&symbols, true).0
}

/// Decodes a Huffman-coded string, refusing what RFC 7541 §5.2 calls a
/// decoding error: EOS in the string, padding longer than 7 bits, and
/// padding that is not the most significant bits of EOS (all ones).
pub fn huffman_decode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let map = decode_map();
    let mut out = Vec::new();
    let mut code = 0u32;
    let mut len = 0u8;
    for &byte in bytes {
        for shift in (0..8).rev() {
            code = (code << 1) | ((byte >> shift) & 1) as u32;
            len += 1;
            if let Some(&sym) = map.get(&(len, code)) {
                if sym == EOS {
                    return Err("a Huffman-coded string contains EOS".into());
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len >= 30 {
                return Err("a Huffman code longer than 30 bits".into());
            }
        }
    }
    if len > 7 {
        return Err(format!("Huffman padding of {len} bits, more than 7"));
    }
    if code != (1u32 << len) - 1 {
        return Err("Huffman padding that is not a prefix of EOS".into());
    }
    Ok(out)
}

/// Appends `value` as an HPACK integer with an `prefix_bits`-bit prefix,
/// the first octet's other bits set to `first` (RFC 7541 §5.1).
pub fn encode_int(out: &mut Vec<u8>, first: u8, prefix_bits: u8, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a string literal (RFC 7541 §5.2), Huffman-coded or not.
pub fn encode_str(out: &mut Vec<u8>, s: &[u8], huffman: bool) {
    if huffman {
        let coded = huffman_encode(s);
        encode_int(out, 0x80, 7, coded.len());
        out.extend_from_slice(&coded);
    } else {
        encode_int(out, 0, 7, s.len());
        out.extend_from_slice(s);
    }
}

/// How a literal field representation asks the decoder to treat the
/// dynamic table (RFC 7541 §6.2).
#[derive(Clone, Copy, Debug)]
pub enum Indexing {
    /// Literal Header Field with Incremental Indexing: added to the table.
    Incremental,
    /// Literal Header Field without Indexing.
    Without,
    /// Literal Header Field Never Indexed.
    Never,
}

impl Indexing {
    fn first_and_prefix(self) -> (u8, u8) {
        match self {
            Indexing::Incremental => (0x40, 6),
            Indexing::Without => (0x00, 4),
            Indexing::Never => (0x10, 4),
        }
    }
}

/// A header block, built one representation at a time.
#[derive(Clone, Debug, Default)]
pub struct Block {
    bytes: Vec<u8>,
}

impl Block {
    /// An empty block.
    pub fn new() -> Block {
        Block::default()
    }

    /// A block of `fields`, each a literal without indexing with a new
    /// name, not Huffman-coded: what a test usually sends.
    pub fn of<N: AsRef<str>, V: AsRef<str>>(fields: &[(N, V)]) -> Block {
        fields
            .iter()
            .fold(Block::new(), |b, (n, v)| b.literal(n.as_ref(), v.as_ref()))
    }

    /// A literal without indexing, new name, no Huffman coding.
    pub fn literal(self, name: &str, value: &str) -> Block {
        self.literal_new_name(Indexing::Without, name, value, false)
    }

    /// An indexed field (RFC 7541 §6.1).
    pub fn indexed(mut self, index: usize) -> Block {
        encode_int(&mut self.bytes, 0x80, 7, index);
        self
    }

    /// A literal whose name is the table entry `name_index`.
    pub fn literal_indexed_name(mut self, indexing: Indexing, name_index: usize, value: &str, huffman: bool) -> Block {
        let (first, prefix) = indexing.first_and_prefix();
        encode_int(&mut self.bytes, first, prefix, name_index);
        encode_str(&mut self.bytes, value.as_bytes(), huffman);
        self
    }

    /// A literal with a new name.
    pub fn literal_new_name(mut self, indexing: Indexing, name: &str, value: &str, huffman: bool) -> Block {
        let (first, prefix) = indexing.first_and_prefix();
        encode_int(&mut self.bytes, first, prefix, 0);
        encode_str(&mut self.bytes, name.as_bytes(), huffman);
        encode_str(&mut self.bytes, value.as_bytes(), huffman);
        self
    }

    /// A dynamic table size update (RFC 7541 §6.3).
    pub fn table_size_update(mut self, size: usize) -> Block {
        encode_int(&mut self.bytes, 0x20, 5, size);
        self
    }

    /// Octets appended as they are.
    pub fn raw(mut self, bytes: &[u8]) -> Block {
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// The encoded block.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

/// A header field as decoded: name and value.
pub type Field = (String, String);

/// An HPACK decoder with its dynamic table.
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<Field>,
    size: usize,
    max_size: usize,
    /// The most the encoder may set the table size to: the
    /// SETTINGS_HEADER_TABLE_SIZE this side advertised.
    limit: usize,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(4096)
    }
}

fn entry_size(field: &Field) -> usize {
    field.0.len() + field.1.len() + 32
}

impl Decoder {
    /// A decoder for a table of at most `limit` octets.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    fn evict(&mut self) {
        while self.size > self.max_size {
            let gone = self.table.pop_back().expect("a table over its size has entries");
            self.size -= entry_size(&gone);
        }
    }

    fn insert(&mut self, field: Field) {
        let size = entry_size(&field);
        self.size += size;
        self.table.push_front(field);
        self.evict();
    }

    fn get(&self, index: usize) -> Result<Field, String> {
        if index == 0 {
            return Err("index 0".into());
        }
        if index <= STATIC_TABLE.len() {
            let (n, v) = STATIC_TABLE[index - 1];
            return Ok((n.to_string(), v.to_string()));
        }
        self.table
            .get(index - STATIC_TABLE.len() - 1)
            .cloned()
            .ok_or_else(|| format!("index {index} is past the tables' {} entries", 61 + self.table.len()))
    }

    /// Decodes one whole header block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, String> {
        let mut r = Reader { bytes: block, pos: 0 };
        let mut fields = Vec::new();
        while r.pos < block.len() {
            let b = block[r.pos];
            if b & 0x80 != 0 {
                let index = r.int(7)?;
                fields.push(self.get(index)?);
            } else if b & 0x40 != 0 {
                let field = self.literal(&mut r, 6)?;
                self.insert(field.clone());
                fields.push(field);
            } else if b & 0x20 != 0 {
                if !fields.is_empty() {
                    return Err("a dynamic table size update after a field".into());
                }
                let size = r.int(5)?;
                if size > self.limit {
                    return Err(format!("a table size update to {size}, over the limit {}", self.limit));
                }
                self.max_size = size;
                self.evict();
            } else {
                fields.push(self.literal(&mut r, 4)?);
            }
        }
        Ok(fields)
    }

    fn literal(&self, r: &mut Reader<'_>, prefix: u8) -> Result<Field, String> {
        let index = r.int(prefix)?;
        let name = if index == 0 { r.string()? } else { self.get(index)?.0 };
        let value = r.string()?;
        Ok((name, value))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or("the block ends inside a representation")?;
        self.pos += 1;
        Ok(b)
    }

    fn int(&mut self, prefix: u8) -> Result<usize, String> {
        let max = (1usize << prefix) - 1;
        let mut value = (self.byte()? as usize) & max;
        if value < max {
            return Ok(value);
        }
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift > 28 {
                return Err("an integer too large".into());
            }
            value += ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let huffman = self.bytes.get(self.pos).ok_or("the block ends before a string")? & 0x80 != 0;
        let len = self.int(7)?;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or("a string runs past the block")?;
        let raw = &self.bytes[self.pos..end];
        self.pos = end;
        let octets = if huffman { huffman_decode(raw)? } else { raw.to_vec() };
        Ok(String::from_utf8_lossy(&octets).into_owned())
    }
}
