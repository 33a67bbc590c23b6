//! The frames of RFC 9113 §6 as values: one struct per frame type and the
//! [`Frame`] enum over them. Payloads are `Bytes` slices of the buffer they
//! were read from.

use bytes::Bytes;

use super::error::ErrorCode;
use super::header::{FrameKind, StreamId};
use super::settings::Settings;

/// One HTTP/2 frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    Data(Data),
    Headers(Headers),
    /// Parsed for its rules only: RFC 9113 deprecates its signal (§5.3.2),
    /// and callers ignore it.
    Priority(Priority),
    RstStream(RstStream),
    Settings(Settings),
    /// A SETTINGS frame with the ACK flag, which carries no parameters.
    SettingsAck,
    PushPromise(PushPromise),
    Ping(Ping),
    GoAway(GoAway),
    WindowUpdate(WindowUpdate),
    Continuation(Continuation),
    /// A frame of a type this crate does not know: to be skipped (§5.5).
    Unknown(Unknown),
}

impl Frame {
    /// The frame's type.
    pub(crate) fn kind(&self) -> FrameKind {
        match self {
            Frame::Data(_) => FrameKind::Data,
            Frame::Headers(_) => FrameKind::Headers,
            Frame::Priority(_) => FrameKind::Priority,
            Frame::RstStream(_) => FrameKind::RstStream,
            Frame::Settings(_) | Frame::SettingsAck => FrameKind::Settings,
            Frame::PushPromise(_) => FrameKind::PushPromise,
            Frame::Ping(_) => FrameKind::Ping,
            Frame::GoAway(_) => FrameKind::GoAway,
            Frame::WindowUpdate(_) => FrameKind::WindowUpdate,
            Frame::Continuation(_) => FrameKind::Continuation,
            Frame::Unknown(u) => FrameKind::Unknown(u.kind),
        }
    }

    /// The stream the frame is on; stream 0 for connection frames.
    pub(crate) fn stream_id(&self) -> StreamId {
        match self {
            Frame::Data(f) => f.stream_id,
            Frame::Headers(f) => f.stream_id,
            Frame::Priority(f) => f.stream_id,
            Frame::RstStream(f) => f.stream_id,
            Frame::PushPromise(f) => f.stream_id,
            Frame::WindowUpdate(f) => f.stream_id,
            Frame::Continuation(f) => f.stream_id,
            Frame::Unknown(f) => f.stream_id,
            Frame::Settings(_) | Frame::SettingsAck | Frame::Ping(_) | Frame::GoAway(_) => StreamId::ZERO,
        }
    }
}

/// A DATA frame (§6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Data {
    pub(crate) stream_id: StreamId,
    pub(crate) end_stream: bool,
    /// The data, padding removed: a slice of the read buffer.
    pub(crate) payload: Bytes,
    /// `Some(n)` if the frame was PADDED, with `n` bytes of padding.
    pub(crate) padding: Option<u8>,
}

impl Data {
    /// What the frame counts against flow-control windows: its whole
    /// payload, the pad length byte and padding included (§6.9.1).
    pub(crate) fn flow_controlled_len(&self) -> u32 {
        self.payload.len() as u32 + self.padding.map_or(0, |n| 1 + u32::from(n))
    }
}

/// The priority fields of RFC 7540 (§5.3 there), carried by PRIORITY and
/// by HEADERS with the PRIORITY flag. Parsed so the frame's layout is
/// checked; RFC 9113 leaves acting on them optional, and Courier does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PrioritySpec {
    pub(crate) exclusive: bool,
    pub(crate) depends_on: StreamId,
    /// The weight minus one, as on the wire.
    pub(crate) weight: u8,
}

/// The length of [`PrioritySpec`] on the wire.
pub(crate) const PRIORITY_LEN: usize = 5;

/// A HEADERS frame (§6.2). Out of a
/// [`HeaderBlockAssembler`](super::HeaderBlockAssembler), `fragment` is the
/// whole header block and `end_headers` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Headers {
    pub(crate) stream_id: StreamId,
    pub(crate) end_stream: bool,
    pub(crate) end_headers: bool,
    pub(crate) priority: Option<PrioritySpec>,
    /// `Some(n)` if the frame was PADDED, with `n` bytes of padding.
    pub(crate) padding: Option<u8>,
    /// The header block fragment, HPACK-encoded.
    pub(crate) fragment: Bytes,
}

/// A PRIORITY frame (§6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Priority {
    pub(crate) stream_id: StreamId,
    pub(crate) spec: PrioritySpec,
}

/// An RST_STREAM frame (§6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RstStream {
    pub(crate) stream_id: StreamId,
    pub(crate) error_code: ErrorCode,
}

/// A PUSH_PROMISE frame (§6.6). Whether one is acceptable at all (not to a
/// server, not to a client that disabled push) is the caller's policy; the
/// frame is parsed either way so its header block reaches HPACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PushPromise {
    pub(crate) stream_id: StreamId,
    pub(crate) promised_stream_id: StreamId,
    pub(crate) end_headers: bool,
    /// `Some(n)` if the frame was PADDED, with `n` bytes of padding.
    pub(crate) padding: Option<u8>,
    /// The header block fragment, HPACK-encoded.
    pub(crate) fragment: Bytes,
}

/// A PING frame (§6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ping {
    pub(crate) ack: bool,
    pub(crate) opaque: [u8; 8],
}

/// A GOAWAY frame (§6.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GoAway {
    pub(crate) last_stream_id: StreamId,
    pub(crate) error_code: ErrorCode,
    /// Opaque diagnostic data, a slice of the read buffer.
    pub(crate) debug_data: Bytes,
}

/// A WINDOW_UPDATE frame (§6.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WindowUpdate {
    /// Stream 0 for the connection's window.
    pub(crate) stream_id: StreamId,
    /// 1 ..= 2^31 - 1.
    pub(crate) increment: u32,
}

/// A CONTINUATION frame (§6.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Continuation {
    pub(crate) stream_id: StreamId,
    pub(crate) end_headers: bool,
    /// The header block fragment, HPACK-encoded.
    pub(crate) fragment: Bytes,
}

/// A frame of an unknown type, kept whole so tests and extensions can see
/// it; receivers skip it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unknown {
    /// The frame type's number.
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream_id: StreamId,
    pub(crate) payload: Bytes,
}
