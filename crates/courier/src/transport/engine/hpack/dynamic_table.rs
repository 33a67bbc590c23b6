//! HPACK's dynamic table (RFC 7541 §2.3.2, §4): a FIFO of fields, newest
//! first, bounded by a size in octets (name + value + 32 per entry). The
//! decoder and the encoder each keep one, and apply the same insertions and
//! evictions, so their indexes agree.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

/// The per-entry overhead counted in a table's size (RFC 7541 §4.1).
pub(super) const ENTRY_OVERHEAD: usize = 32;

/// The size of a field as an entry, and in a header list (RFC 9113 §6.5.2).
pub(super) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + ENTRY_OVERHEAD
}

/// One entry. Name and value share one allocation of their own, made on
/// insertion: an entry never pins the header block it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) name: Bytes,
    pub(super) value: Bytes,
}

impl Entry {
    fn size(&self) -> usize {
        entry_size(&self.name, &self.value)
    }
}

/// A dynamic table. Memory is bounded by its maximum size: at most one
/// entry per 32 octets of it.
#[derive(Debug)]
pub(super) struct DynamicTable {
    /// Newest first: `entries[0]` is index 62.
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// Entries inserted since the table was made: the newest entry's
    /// serial number, by which [`DynamicTable::position_of`] finds it again.
    inserted: u64,
}

/// Where a field is in the dynamic table, as a position from 1 (newest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DynamicMatch {
    /// The whole field.
    Field(usize),
    /// Only the name (its newest entry).
    Name(usize),
    /// Neither.
    None,
}

impl DynamicTable {
    /// An empty table holding at most `max_size` octets.
    pub(super) fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            inserted: 0,
        }
    }

    /// The entries' total size.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// The most the entries may take.
    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    /// The number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry at `position`, counted from 1 for the newest.
    pub(super) fn get(&self, position: usize) -> Option<&Entry> {
        self.entries.get(position.checked_sub(1)?)
    }

    /// The entries, newest first.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Changes the maximum size, evicting the oldest entries until the rest
    /// fit (RFC 7541 §4.3).
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Adds a field as the newest entry, first evicting old entries to make
    /// room (RFC 7541 §4.4). A field larger than the whole table empties it
    /// and is not added.
    pub(super) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        let mut both = BytesMut::with_capacity(name.len() + value.len());
        both.put_slice(name);
        both.put_slice(value);
        let both = both.freeze();
        self.entries.push_front(Entry {
            name: both.slice(..name.len()),
            value: both.slice(name.len()..),
        });
        self.size += size;
        self.inserted += 1;
    }

    /// The serial number of the newest entry, to find it again later with
    /// [`DynamicTable::position_of`].
    pub(super) fn newest_serial(&self) -> u64 {
        self.inserted
    }

    /// Where the entry with serial number `serial` is now, counted from 1
    /// for the newest, or `None` once it has been evicted. Entries leave
    /// oldest first, so the one inserted `k` insertions ago is at `k + 1`
    /// while fewer than that many entries have left.
    pub(super) fn position_of(&self, serial: u64) -> Option<usize> {
        let position = usize::try_from(self.inserted.checked_sub(serial)?)
            .ok()?
            .checked_add(1)?;
        (serial > 0 && position <= self.entries.len()).then_some(position)
    }

    /// Finds a field, preferring a whole match to a name match, and newer
    /// entries to older ones.
    pub(super) fn find(&self, name: &[u8], value: &[u8]) -> DynamicMatch {
        let mut by_name = DynamicMatch::None;
        for (i, entry) in self.entries.iter().enumerate() {
            if entry.name == name {
                if entry.value == value {
                    return DynamicMatch::Field(i + 1);
                }
                if by_name == DynamicMatch::None {
                    by_name = DynamicMatch::Name(i + 1);
                }
            }
        }
        by_name
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some(oldest) = self.entries.pop_back() else { break };
            self.size -= oldest.size();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_evicts_the_oldest_first() {
        // Three entries of 34 octets in a 100-octet table.
        let mut table = DynamicTable::new(100);
        table.insert(b"a", b"1");
        table.insert(b"b", b"2");
        assert_eq!((table.len(), table.size()), (2, 68));
        table.insert(b"c", b"3");
        assert_eq!((table.len(), table.size()), (2, 68));
        assert_eq!(table.get(1).unwrap().name, "c");
        assert_eq!(table.get(2).unwrap().name, "b");
        assert_eq!(table.get(3), None);
        assert_eq!(table.get(0), None);
    }

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut table = DynamicTable::new(40);
        table.insert(b"a", b"1");
        table.insert(b"name", b"value"); // 41 octets
        assert_eq!((table.len(), table.size()), (0, 0));
        // Exactly the table's size fits.
        table.insert(b"abcd", b"1234");
        assert_eq!((table.len(), table.size()), (1, 40));
    }

    #[test]
    fn shrinking_evicts_and_zero_empties() {
        let mut table = DynamicTable::new(4096);
        for i in 0..10u8 {
            table.insert(b"k", &[b'0' + i]);
        }
        table.set_max_size(68);
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(1).unwrap().value, "9");
        table.set_max_size(0);
        assert_eq!((table.len(), table.size()), (0, 0));
        table.insert(b"k", b"v");
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn position_of_follows_an_entry_until_it_is_evicted() {
        // Room for two 34-octet entries.
        let mut table = DynamicTable::new(100);
        table.insert(b"a", b"1");
        let a = table.newest_serial();
        assert_eq!(table.position_of(a), Some(1));
        table.insert(b"b", b"2");
        assert_eq!(table.position_of(a), Some(2));
        assert_eq!(table.get(2).unwrap().name, "a");
        table.insert(b"c", b"3");
        assert_eq!(table.position_of(a), None, "evicted");
        let c = table.newest_serial();
        table.set_max_size(0);
        assert_eq!(table.position_of(c), None, "emptied");
        assert_eq!(table.position_of(0), None, "no entry has serial 0");
    }

    #[test]
    fn find_prefers_whole_fields_then_newer_names() {
        let mut table = DynamicTable::new(4096);
        table.insert(b"k", b"old");
        table.insert(b"k", b"new");
        table.insert(b"other", b"x");
        assert_eq!(table.find(b"k", b"old"), DynamicMatch::Field(3));
        assert_eq!(table.find(b"k", b"else"), DynamicMatch::Name(2));
        assert_eq!(table.find(b"none", b"x"), DynamicMatch::None);
    }
}
