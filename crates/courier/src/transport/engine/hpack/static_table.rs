//! HPACK's static table (RFC 7541 §2.3.1, Appendix A): 61 fixed entries,
//! indexes 1 to 61, and the lookup the encoder uses to find them.

use bytes::Bytes;

/// The static table; `ENTRIES[i - 1]` is index `i`.
pub(super) const ENTRIES: [(&str, &str); 61] = [
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

/// The number of static entries; dynamic indexes start after it.
pub(super) const LEN: usize = ENTRIES.len();

/// The entry at `index` (1-based), if static.
#[cfg(test)]
pub(super) fn get(index: usize) -> Option<(&'static [u8], &'static [u8])> {
    let (name, value) = ENTRIES.get(index.checked_sub(1)?)?;
    Some((name.as_bytes(), value.as_bytes()))
}

/// The entry at `index` (1-based) as `Bytes`, which the decoder hands on
/// without copying or counting references.
pub(super) fn get_bytes(index: usize) -> Option<(&'static Bytes, &'static Bytes)> {
    let (name, value) = FIELDS.get(index.checked_sub(1)?)?;
    Some((name, value))
}

/// [`ENTRIES`] as static `Bytes`, built by the compiler.
static FIELDS: [(Bytes, Bytes); LEN] = {
    let mut fields = [const { (Bytes::new(), Bytes::new()) }; LEN];
    let mut i = 0;
    while i < LEN {
        let (name, value) = ENTRIES[i];
        let field = (
            Bytes::from_static(name.as_bytes()),
            Bytes::from_static(value.as_bytes()),
        );
        // The empty placeholder owns nothing: forgetting it leaks nothing.
        std::mem::forget(std::mem::replace(&mut fields[i], field));
        i += 1;
    }
    fields
};

/// What the static table holds for a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StaticMatch {
    /// The whole field, at this index.
    Field(usize),
    /// Only the name, first at this index.
    Name(usize),
    /// Nothing.
    None,
}

/// Looks a field up: its name selects the run of entries with that name,
/// then the value is compared within the run.
pub(super) fn find(name: &[u8], value: &[u8]) -> StaticMatch {
    let Some((first, count)) = name_run(name) else {
        return StaticMatch::None;
    };
    (first..first + count)
        .find(|&index| ENTRIES[index - 1].1.as_bytes() == value)
        .map_or(StaticMatch::Name(first), StaticMatch::Field)
}

/// The first index and number of entries named `name`.
fn name_run(name: &[u8]) -> Option<(usize, usize)> {
    Some(match name {
        b":authority" => (1, 1),
        b":method" => (2, 2),
        b":path" => (4, 2),
        b":scheme" => (6, 2),
        b":status" => (8, 7),
        b"accept-charset" => (15, 1),
        b"accept-encoding" => (16, 1),
        b"accept-language" => (17, 1),
        b"accept-ranges" => (18, 1),
        b"accept" => (19, 1),
        b"access-control-allow-origin" => (20, 1),
        b"age" => (21, 1),
        b"allow" => (22, 1),
        b"authorization" => (23, 1),
        b"cache-control" => (24, 1),
        b"content-disposition" => (25, 1),
        b"content-encoding" => (26, 1),
        b"content-language" => (27, 1),
        b"content-length" => (28, 1),
        b"content-location" => (29, 1),
        b"content-range" => (30, 1),
        b"content-type" => (31, 1),
        b"cookie" => (32, 1),
        b"date" => (33, 1),
        b"etag" => (34, 1),
        b"expect" => (35, 1),
        b"expires" => (36, 1),
        b"from" => (37, 1),
        b"host" => (38, 1),
        b"if-match" => (39, 1),
        b"if-modified-since" => (40, 1),
        b"if-none-match" => (41, 1),
        b"if-range" => (42, 1),
        b"if-unmodified-since" => (43, 1),
        b"last-modified" => (44, 1),
        b"link" => (45, 1),
        b"location" => (46, 1),
        b"max-forwards" => (47, 1),
        b"proxy-authenticate" => (48, 1),
        b"proxy-authorization" => (49, 1),
        b"range" => (50, 1),
        b"referer" => (51, 1),
        b"refresh" => (52, 1),
        b"retry-after" => (53, 1),
        b"server" => (54, 1),
        b"set-cookie" => (55, 1),
        b"strict-transport-security" => (56, 1),
        b"transfer-encoding" => (57, 1),
        b"user-agent" => (58, 1),
        b"vary" => (59, 1),
        b"via" => (60, 1),
        b"www-authenticate" => (61, 1),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lookup agrees with the table for every entry, and every name's
    /// run is exactly the entries with that name.
    #[test]
    fn lookup_agrees_with_the_table() {
        for (i, (name, value)) in ENTRIES.iter().enumerate() {
            let index = i + 1;
            assert_eq!(
                find(name.as_bytes(), value.as_bytes()),
                StaticMatch::Field(index),
                "{name}: {value}"
            );
            let (first, count) = name_run(name.as_bytes()).unwrap();
            assert!((first..first + count).contains(&index));
            let same_name = ENTRIES.iter().filter(|(n, _)| n == name).count();
            assert_eq!(count, same_name, "{name}");
            assert_eq!(ENTRIES[first - 1].0, *name);
        }
        assert_eq!(LEN, 61);
        for index in 1..=LEN {
            let (name, value) = get_bytes(index).unwrap();
            assert_eq!(get(index), Some((&name[..], &value[..])));
        }
        assert_eq!(get_bytes(0), None);
        assert_eq!(get_bytes(62), None);
    }

    #[test]
    fn names_without_the_value_and_unknown_names() {
        assert_eq!(find(b":status", b"201"), StaticMatch::Name(8));
        assert_eq!(find(b"content-type", b"application/grpc"), StaticMatch::Name(31));
        assert_eq!(find(b"grpc-status", b"0"), StaticMatch::None);
        assert_eq!(find(b":method", b"POST"), StaticMatch::Field(3));
        assert_eq!(get(0), None);
        assert_eq!(get(62), None);
        assert_eq!(get(2), Some((&b":method"[..], &b"GET"[..])));
    }
}
