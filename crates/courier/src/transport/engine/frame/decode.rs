//! The frame decoder: splits whole frames off the front of a read buffer
//! and checks each against the rules of RFC 9113 §4 and §6 that need no
//! connection state.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{FrameError, Violation};
use super::frames::{
    Continuation, Data, Frame, GoAway, Headers, PRIORITY_LEN, Ping, Priority, PrioritySpec, PushPromise, RstStream,
    Unknown, WindowUpdate,
};
use super::header::{
    DEFAULT_MAX_FRAME_SIZE, FrameHeader, FrameKind, HEADER_LEN, MAX_FRAME_SIZE_LIMIT, StreamId, flags,
};
use super::settings::{SETTING_LEN, Settings};

/// Reads frames from a connection's read buffer.
///
/// The buffer is the caller's: it reads from the socket into one large
/// `BytesMut`, and [`decode`](FrameDecoder::decode) splits each whole frame
/// off its front, so payloads are handed on as slices of that buffer, never
/// copied.
#[derive(Clone, Debug)]
pub(crate) struct FrameDecoder {
    max_frame_size: u32,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max_frame_size`, this
    /// endpoint's SETTINGS_MAX_FRAME_SIZE (clamped to the range HTTP/2
    /// allows).
    pub(crate) fn new(max_frame_size: u32) -> FrameDecoder {
        FrameDecoder {
            max_frame_size: max_frame_size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT),
        }
    }

    /// The largest payload accepted.
    pub(crate) fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Changes the largest payload accepted, once the peer has acknowledged
    /// the SETTINGS that announced it (clamped like [`new`](Self::new)).
    pub(crate) fn set_max_frame_size(&mut self, max_frame_size: u32) {
        *self = FrameDecoder::new(max_frame_size);
    }

    /// The next frame, split off the front of `buf`; `Ok(None)` until a
    /// whole frame is there.
    ///
    /// A frame longer than the maximum is refused as soon as its header has
    /// arrived. On a stream error the frame has been consumed and decoding
    /// can go on; after a connection error the connection is over and
    /// `buf`'s contents are unspecified.
    pub(crate) fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = FrameHeader::parse(head);
        if header.length > self.max_frame_size {
            return Err(FrameError::connection(Violation::FrameTooLarge {
                length: header.length,
                max: self.max_frame_size,
            }));
        }
        let total = HEADER_LEN + header.length as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let mut payload = buf.split_to(total).freeze();
        payload.advance(HEADER_LEN);
        parse(header, payload).map(Some)
    }

    /// How many more bytes `buf` needs before [`decode`](Self::decode) can
    /// return the next frame (0 if it already can, or if the frame will be
    /// refused): the caller can reserve room for exactly that.
    pub(crate) fn missing(&self, buf: &[u8]) -> usize {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return HEADER_LEN - buf.len();
        };
        let header = FrameHeader::parse(head);
        if header.length > self.max_frame_size {
            return 0;
        }
        (HEADER_LEN + header.length as usize).saturating_sub(buf.len())
    }
}

/// Checks and reads one whole frame's payload.
fn parse(header: FrameHeader, payload: Bytes) -> Result<Frame, FrameError> {
    match header.kind {
        FrameKind::Data => parse_data(header, payload),
        FrameKind::Headers => parse_headers(header, payload),
        FrameKind::Priority => parse_priority(header, &payload),
        FrameKind::RstStream => parse_rst_stream(header, &payload),
        FrameKind::Settings => parse_settings(header, &payload),
        FrameKind::PushPromise => parse_push_promise(header, payload),
        FrameKind::Ping => parse_ping(header, &payload),
        FrameKind::GoAway => parse_goaway(header, payload),
        FrameKind::WindowUpdate => parse_window_update(header, &payload),
        FrameKind::Continuation => parse_continuation(header, payload),
        FrameKind::Unknown(kind) => Ok(Frame::Unknown(Unknown {
            kind,
            flags: header.flags,
            stream_id: header.stream_id,
            payload,
        })),
    }
}

/// A connection error unless the frame is on a stream.
fn require_stream(header: &FrameHeader) -> Result<(), FrameError> {
    if header.stream_id.is_zero() {
        return Err(FrameError::connection(Violation::MissingStreamId { kind: header.kind }));
    }
    Ok(())
}

/// A connection error unless the frame is on stream 0.
fn require_connection(header: &FrameHeader) -> Result<(), FrameError> {
    if !header.stream_id.is_zero() {
        return Err(FrameError::connection(Violation::UnexpectedStreamId {
            kind: header.kind,
            stream_id: header.stream_id,
        }));
    }
    Ok(())
}

/// A connection error unless the payload is exactly `length` bytes.
fn require_length(header: &FrameHeader, length: usize) -> Result<(), FrameError> {
    if header.length as usize != length {
        return Err(FrameError::connection(Violation::WrongLength {
            kind: header.kind,
            length: header.length,
        }));
    }
    Ok(())
}

/// Removes the pad length byte and the padding of a PADDED frame, checking
/// that `fixed` bytes of mandatory fields fit before the padding. Returns
/// the padding's length and what lies between the pad length and padding.
/// Both errors are connection errors: every padded frame type either
/// carries a header block or counts against the connection's window.
fn strip_padding(header: &FrameHeader, mut payload: Bytes, fixed: usize) -> Result<(Option<u8>, Bytes), FrameError> {
    let too_short = || {
        FrameError::connection(Violation::TooShort {
            kind: header.kind,
            length: header.length,
        })
    };
    if !header.has(flags::PADDED) {
        if payload.len() < fixed {
            return Err(too_short());
        }
        return Ok((None, payload));
    }
    if payload.len() < 1 + fixed {
        return Err(too_short());
    }
    let padding = payload.get_u8();
    if usize::from(padding) > payload.len() - fixed {
        return Err(FrameError::connection(Violation::PaddingTooLong {
            kind: header.kind,
            padding,
            length: header.length,
        }));
    }
    payload.truncate(payload.len() - usize::from(padding));
    Ok((Some(padding), payload))
}

fn parse_data(header: FrameHeader, payload: Bytes) -> Result<Frame, FrameError> {
    require_stream(&header)?;
    let (padding, payload) = strip_padding(&header, payload, 0)?;
    Ok(Frame::Data(Data {
        stream_id: header.stream_id,
        end_stream: header.has(flags::END_STREAM),
        payload,
        padding,
    }))
}

fn read_priority(fields: &[u8]) -> PrioritySpec {
    let dependency = u32::from_be_bytes([fields[0], fields[1], fields[2], fields[3]]);
    PrioritySpec {
        exclusive: dependency & 0x8000_0000 != 0,
        depends_on: StreamId::new(dependency),
        weight: fields[4],
    }
}

fn parse_headers(header: FrameHeader, payload: Bytes) -> Result<Frame, FrameError> {
    require_stream(&header)?;
    let has_priority = header.has(flags::PRIORITY);
    let fixed = if has_priority { PRIORITY_LEN } else { 0 };
    let (padding, mut fragment) = strip_padding(&header, payload, fixed)?;
    let priority = has_priority.then(|| read_priority(&fragment.split_to(PRIORITY_LEN)));
    Ok(Frame::Headers(Headers {
        stream_id: header.stream_id,
        end_stream: header.has(flags::END_STREAM),
        end_headers: header.has(flags::END_HEADERS),
        priority,
        padding,
        fragment,
    }))
}

fn parse_priority(header: FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(&header)?;
    // The one fixed-length frame whose wrong length only breaks its stream
    // (§6.3).
    if payload.len() != PRIORITY_LEN {
        return Err(FrameError::stream(
            header.stream_id,
            Violation::WrongLength {
                kind: header.kind,
                length: header.length,
            },
        ));
    }
    Ok(Frame::Priority(Priority {
        stream_id: header.stream_id,
        spec: read_priority(payload),
    }))
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn parse_rst_stream(header: FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_stream(&header)?;
    require_length(&header, 4)?;
    Ok(Frame::RstStream(RstStream {
        stream_id: header.stream_id,
        error_code: read_u32(payload).into(),
    }))
}

fn parse_settings(header: FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_connection(&header)?;
    if header.has(flags::ACK) {
        if !payload.is_empty() {
            return Err(FrameError::connection(Violation::SettingsAckNotEmpty {
                length: header.length,
            }));
        }
        return Ok(Frame::SettingsAck);
    }
    if !payload.len().is_multiple_of(SETTING_LEN) {
        return Err(FrameError::connection(Violation::SettingsLengthNotMultipleOfSix {
            length: header.length,
        }));
    }
    Settings::parse(payload)
        .map(Frame::Settings)
        .map_err(FrameError::connection)
}

fn parse_push_promise(header: FrameHeader, payload: Bytes) -> Result<Frame, FrameError> {
    require_stream(&header)?;
    let (padding, mut fragment) = strip_padding(&header, payload, 4)?;
    let promised_stream_id = StreamId::new(read_u32(&fragment.split_to(4)));
    if promised_stream_id.is_zero() {
        return Err(FrameError::connection(Violation::ZeroPromisedStreamId));
    }
    Ok(Frame::PushPromise(PushPromise {
        stream_id: header.stream_id,
        promised_stream_id,
        end_headers: header.has(flags::END_HEADERS),
        padding,
        fragment,
    }))
}

fn parse_ping(header: FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_connection(&header)?;
    let Ok(opaque) = <[u8; 8]>::try_from(payload) else {
        return Err(FrameError::connection(Violation::WrongLength {
            kind: header.kind,
            length: header.length,
        }));
    };
    Ok(Frame::Ping(Ping {
        ack: header.has(flags::ACK),
        opaque,
    }))
}

fn parse_goaway(header: FrameHeader, mut payload: Bytes) -> Result<Frame, FrameError> {
    require_connection(&header)?;
    if payload.len() < 8 {
        return Err(FrameError::connection(Violation::TooShort {
            kind: header.kind,
            length: header.length,
        }));
    }
    let last_stream_id = StreamId::new(payload.get_u32());
    let error_code = payload.get_u32().into();
    Ok(Frame::GoAway(GoAway {
        last_stream_id,
        error_code,
        debug_data: payload,
    }))
}

fn parse_window_update(header: FrameHeader, payload: &[u8]) -> Result<Frame, FrameError> {
    require_length(&header, 4)?;
    // The high bit is reserved (§6.9).
    let increment = read_u32(payload) & 0x7fff_ffff;
    if increment == 0 {
        return Err(if header.stream_id.is_zero() {
            FrameError::connection(Violation::ZeroWindowIncrement)
        } else {
            FrameError::stream(header.stream_id, Violation::ZeroWindowIncrement)
        });
    }
    Ok(Frame::WindowUpdate(WindowUpdate {
        stream_id: header.stream_id,
        increment,
    }))
}

fn parse_continuation(header: FrameHeader, fragment: Bytes) -> Result<Frame, FrameError> {
    require_stream(&header)?;
    Ok(Frame::Continuation(Continuation {
        stream_id: header.stream_id,
        end_headers: header.has(flags::END_HEADERS),
        fragment,
    }))
}
