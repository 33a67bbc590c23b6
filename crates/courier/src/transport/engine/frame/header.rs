//! The nine-byte header that starts every HTTP/2 frame (RFC 9113 §4.1): the
//! payload's length, the frame's type, its flags and its stream.

use bytes::{BufMut, BytesMut};

/// The length of a frame header on the wire.
pub(crate) const HEADER_LEN: usize = 9;

/// The largest payload length the 24-bit length field can carry, which is
/// also the largest `SETTINGS_MAX_FRAME_SIZE` (RFC 9113 §6.5.2).
pub(crate) const MAX_FRAME_SIZE_LIMIT: u32 = (1 << 24) - 1;

/// The `SETTINGS_MAX_FRAME_SIZE` every endpoint starts with, and the
/// smallest one allowed (RFC 9113 §6.5.2).
pub(crate) const DEFAULT_MAX_FRAME_SIZE: u32 = 1 << 14;

/// The flag bits defined by RFC 9113 §6. Each only means something on the
/// frame types listed; elsewhere a received flag is ignored (§4.1).
pub(crate) mod flags {
    /// DATA, HEADERS: the sender's last frame on the stream.
    pub(crate) const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub(crate) const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the header block ends here.
    pub(crate) const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a pad length byte leads the payload.
    pub(crate) const PADDED: u8 = 0x8;
    /// HEADERS: the priority fields of RFC 7540 follow the padding length.
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// A stream identifier: 31 bits, the reserved high bit cleared (RFC 9113
/// §4.1 says to ignore it on receipt and send it unset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamId(u32);

impl StreamId {
    /// Stream 0: the connection itself.
    pub(crate) const ZERO: StreamId = StreamId(0);
    /// The largest stream identifier, 2^31 - 1.
    pub(crate) const MAX: StreamId = StreamId(0x7fff_ffff);

    /// The stream numbered by the low 31 bits of `raw`.
    pub(crate) const fn new(raw: u32) -> StreamId {
        StreamId(raw & 0x7fff_ffff)
    }

    /// The identifier as a number, below 2^31.
    pub(crate) const fn value(self) -> u32 {
        self.0
    }

    /// Whether this is stream 0, the connection.
    pub(crate) const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A frame's type (RFC 9113 §6), with types this crate does not know kept
/// as their number: such frames are skipped (§4.1, §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FrameKind {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    /// An extension frame type.
    Unknown(u8),
}

impl From<u8> for FrameKind {
    fn from(raw: u8) -> FrameKind {
        match raw {
            0x0 => FrameKind::Data,
            0x1 => FrameKind::Headers,
            0x2 => FrameKind::Priority,
            0x3 => FrameKind::RstStream,
            0x4 => FrameKind::Settings,
            0x5 => FrameKind::PushPromise,
            0x6 => FrameKind::Ping,
            0x7 => FrameKind::GoAway,
            0x8 => FrameKind::WindowUpdate,
            0x9 => FrameKind::Continuation,
            other => FrameKind::Unknown(other),
        }
    }
}

impl From<FrameKind> for u8 {
    fn from(kind: FrameKind) -> u8 {
        match kind {
            FrameKind::Data => 0x0,
            FrameKind::Headers => 0x1,
            FrameKind::Priority => 0x2,
            FrameKind::RstStream => 0x3,
            FrameKind::Settings => 0x4,
            FrameKind::PushPromise => 0x5,
            FrameKind::Ping => 0x6,
            FrameKind::GoAway => 0x7,
            FrameKind::WindowUpdate => 0x8,
            FrameKind::Continuation => 0x9,
            FrameKind::Unknown(other) => other,
        }
    }
}

impl std::fmt::Display for FrameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            FrameKind::Data => "DATA",
            FrameKind::Headers => "HEADERS",
            FrameKind::Priority => "PRIORITY",
            FrameKind::RstStream => "RST_STREAM",
            FrameKind::Settings => "SETTINGS",
            FrameKind::PushPromise => "PUSH_PROMISE",
            FrameKind::Ping => "PING",
            FrameKind::GoAway => "GOAWAY",
            FrameKind::WindowUpdate => "WINDOW_UPDATE",
            FrameKind::Continuation => "CONTINUATION",
            FrameKind::Unknown(raw) => return write!(f, "frame type {raw:#04x}"),
        };
        f.write_str(name)
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// The payload's length, below 2^24.
    pub(crate) length: u32,
    pub(crate) kind: FrameKind,
    /// The raw flag bits, unknown ones included.
    pub(crate) flags: u8,
    pub(crate) stream_id: StreamId,
}

impl FrameHeader {
    /// Reads a header from its nine bytes.
    pub(crate) fn parse(bytes: &[u8; HEADER_LEN]) -> FrameHeader {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *bytes;
        FrameHeader {
            length: u32::from_be_bytes([0, l0, l1, l2]),
            kind: FrameKind::from(kind),
            flags,
            stream_id: StreamId::new(u32::from_be_bytes([s0, s1, s2, s3])),
        }
    }

    /// Appends the nine header bytes to `dst`.
    ///
    /// Panics if `length` does not fit in 24 bits: frames are built by this
    /// crate, and a longer one is a bug in the caller, not peer input.
    pub(crate) fn write(&self, dst: &mut BytesMut) {
        assert!(
            self.length <= MAX_FRAME_SIZE_LIMIT,
            "HTTP/2 frame payload of {} bytes does not fit in a frame header",
            self.length
        );
        let [_, l0, l1, l2] = self.length.to_be_bytes();
        let [s0, s1, s2, s3] = self.stream_id.value().to_be_bytes();
        dst.put_slice(&[l0, l1, l2, u8::from(self.kind), self.flags, s0, s1, s2, s3]);
    }

    /// Whether `flag` (one of [`flags`]) is set.
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_masks_the_reserved_bit() {
        let wire = [0x01, 0x02, 0x03, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff];
        let header = FrameHeader::parse(&wire);
        assert_eq!(header.length, 0x010203);
        assert_eq!(header.kind, FrameKind::GoAway);
        assert_eq!(header.flags, 0xff);
        assert_eq!(header.stream_id, StreamId::MAX);
        let mut out = BytesMut::new();
        header.write(&mut out);
        // The reserved bit is sent unset.
        assert_eq!(&out[..], &[0x01, 0x02, 0x03, 0x07, 0xff, 0x7f, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn frame_kinds_round_trip_through_their_numbers() {
        for raw in 0..=255u8 {
            assert_eq!(u8::from(FrameKind::from(raw)), raw);
        }
        assert_eq!(FrameKind::from(0x0a), FrameKind::Unknown(0x0a));
    }
}
