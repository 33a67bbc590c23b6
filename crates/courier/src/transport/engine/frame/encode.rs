//! The frame encoder: writes frames into a caller's `BytesMut`. A DATA
//! frame's payload need not be copied: [`encode_data_header`] writes only
//! its header, for the payload to follow as its own `writev` chunk (see
//! [`GatherBuf`](super::GatherBuf)). Header blocks longer than the peer's
//! maximum frame size are split into HEADERS (or PUSH_PROMISE) and
//! CONTINUATION frames.

use bytes::{BufMut, BytesMut};

use super::frames::{Frame, Headers, PRIORITY_LEN, PrioritySpec, PushPromise};
use super::header::{DEFAULT_MAX_FRAME_SIZE, FrameHeader, FrameKind, MAX_FRAME_SIZE_LIMIT, StreamId, flags};

/// Appends one whole frame to `dst`, payload included (copied).
///
/// The frame must fit in the peer's maximum frame size: split DATA before,
/// and write header blocks with [`encode_headers`] and
/// [`encode_push_promise`], which split them. Panics if a payload does not
/// fit in a frame header's 24-bit length at all.
pub(crate) fn encode(frame: &Frame, dst: &mut BytesMut) {
    match frame {
        Frame::Data(data) => {
            let flags = if data.end_stream { flags::END_STREAM } else { 0 };
            put_padded(
                dst,
                FrameKind::Data,
                flags,
                data.stream_id,
                data.padding,
                &[],
                &data.payload,
            );
        }
        Frame::Headers(headers) => {
            let flags = headers_flags(headers) | end_headers_flag(headers.end_headers);
            let fields = headers.priority.map(priority_bytes);
            let fields = fields.as_ref().map_or(&[][..], |f| &f[..]);
            put_padded(
                dst,
                FrameKind::Headers,
                flags,
                headers.stream_id,
                headers.padding,
                fields,
                &headers.fragment,
            );
        }
        Frame::Priority(priority) => {
            put_header(dst, FrameKind::Priority, 0, priority.stream_id, PRIORITY_LEN);
            dst.put_slice(&priority_bytes(priority.spec));
        }
        Frame::RstStream(rst) => {
            put_header(dst, FrameKind::RstStream, 0, rst.stream_id, 4);
            dst.put_u32(rst.error_code.into());
        }
        Frame::Settings(settings) => {
            put_header(dst, FrameKind::Settings, 0, StreamId::ZERO, settings.encoded_len());
            settings.encode_payload(dst);
        }
        Frame::SettingsAck => put_header(dst, FrameKind::Settings, flags::ACK, StreamId::ZERO, 0),
        Frame::PushPromise(promise) => {
            put_padded(
                dst,
                FrameKind::PushPromise,
                end_headers_flag(promise.end_headers),
                promise.stream_id,
                promise.padding,
                &promise.promised_stream_id.value().to_be_bytes(),
                &promise.fragment,
            );
        }
        Frame::Ping(ping) => {
            let flags = if ping.ack { flags::ACK } else { 0 };
            put_header(dst, FrameKind::Ping, flags, StreamId::ZERO, 8);
            dst.put_slice(&ping.opaque);
        }
        Frame::GoAway(goaway) => {
            put_header(dst, FrameKind::GoAway, 0, StreamId::ZERO, 8 + goaway.debug_data.len());
            dst.put_u32(goaway.last_stream_id.value());
            dst.put_u32(goaway.error_code.into());
            dst.put_slice(&goaway.debug_data);
        }
        Frame::WindowUpdate(update) => {
            put_header(dst, FrameKind::WindowUpdate, 0, update.stream_id, 4);
            dst.put_u32(update.increment & 0x7fff_ffff);
        }
        Frame::Continuation(continuation) => {
            put_header(
                dst,
                FrameKind::Continuation,
                end_headers_flag(continuation.end_headers),
                continuation.stream_id,
                continuation.fragment.len(),
            );
            dst.put_slice(&continuation.fragment);
        }
        Frame::Unknown(unknown) => {
            put_header(
                dst,
                FrameKind::Unknown(unknown.kind),
                unknown.flags,
                unknown.stream_id,
                unknown.payload.len(),
            );
            dst.put_slice(&unknown.payload);
        }
    }
}

/// Appends what precedes a DATA frame's payload: its nine-byte header and,
/// if `padding` is set, the pad length byte. The caller sends the
/// `payload_len` bytes of payload right after it, uncopied, then `padding`
/// zero bytes.
pub(crate) fn encode_data_header(
    stream_id: StreamId,
    payload_len: usize,
    end_stream: bool,
    padding: Option<u8>,
    dst: &mut BytesMut,
) {
    let mut bits = if end_stream { flags::END_STREAM } else { 0 };
    let pad_overhead = padding.map_or(0, |n| 1 + usize::from(n));
    if padding.is_some() {
        bits |= flags::PADDED;
    }
    put_header(dst, FrameKind::Data, bits, stream_id, pad_overhead + payload_len);
    if let Some(n) = padding {
        dst.put_u8(n);
    }
}

/// Appends a header block as one HEADERS frame and as many CONTINUATION
/// frames as `max_frame_size` (the peer's SETTINGS_MAX_FRAME_SIZE, clamped
/// to the range HTTP/2 allows) makes necessary. `headers.fragment` is the
/// whole block; `headers.end_headers` is ignored, as the last frame always
/// carries END_HEADERS. Padding and priority go on the HEADERS frame.
pub(crate) fn encode_headers(headers: &Headers, max_frame_size: u32, dst: &mut BytesMut) {
    let fields = headers.priority.map(priority_bytes);
    let fields = fields.as_ref().map_or(&[][..], |f| &f[..]);
    put_header_block(
        dst,
        FrameKind::Headers,
        headers_flags(headers),
        headers.stream_id,
        headers.padding,
        fields,
        &headers.fragment,
        max_frame_size,
    );
}

/// Like [`encode_headers`], for a PUSH_PROMISE and its CONTINUATIONs.
pub(crate) fn encode_push_promise(promise: &PushPromise, max_frame_size: u32, dst: &mut BytesMut) {
    put_header_block(
        dst,
        FrameKind::PushPromise,
        0,
        promise.stream_id,
        promise.padding,
        &promise.promised_stream_id.value().to_be_bytes(),
        &promise.fragment,
        max_frame_size,
    );
}

/// The HEADERS flags other than END_HEADERS and PADDED.
fn headers_flags(headers: &Headers) -> u8 {
    let mut bits = 0;
    if headers.end_stream {
        bits |= flags::END_STREAM;
    }
    if headers.priority.is_some() {
        bits |= flags::PRIORITY;
    }
    bits
}

fn end_headers_flag(end_headers: bool) -> u8 {
    if end_headers { flags::END_HEADERS } else { 0 }
}

fn priority_bytes(spec: PrioritySpec) -> [u8; PRIORITY_LEN] {
    let exclusive = if spec.exclusive { 0x8000_0000 } else { 0 };
    let [a, b, c, d] = (spec.depends_on.value() | exclusive).to_be_bytes();
    [a, b, c, d, spec.weight]
}

fn put_header(dst: &mut BytesMut, kind: FrameKind, flags: u8, stream_id: StreamId, length: usize) {
    let length = u32::try_from(length).unwrap_or(u32::MAX);
    FrameHeader {
        length,
        kind,
        flags,
        stream_id,
    }
    .write(dst);
}

/// Writes a frame whose payload may be padded: the pad length (if
/// `padding` is set, with the PADDED flag), the fixed `fields`, the
/// `body`, then zeros.
fn put_padded(
    dst: &mut BytesMut,
    kind: FrameKind,
    mut flags: u8,
    stream_id: StreamId,
    padding: Option<u8>,
    fields: &[u8],
    body: &[u8],
) {
    let pad_overhead = padding.map_or(0, |n| 1 + usize::from(n));
    if padding.is_some() {
        flags |= flags::PADDED;
    }
    dst.reserve(super::header::HEADER_LEN + pad_overhead + fields.len() + body.len());
    put_header(dst, kind, flags, stream_id, pad_overhead + fields.len() + body.len());
    if let Some(n) = padding {
        dst.put_u8(n);
    }
    dst.put_slice(fields);
    dst.put_slice(body);
    if let Some(n) = padding {
        dst.put_bytes(0, usize::from(n));
    }
}

/// Splits `block` over a first frame of type `kind` (with its padding and
/// fixed fields) and CONTINUATION frames, END_HEADERS on the last.
#[allow(clippy::too_many_arguments)]
fn put_header_block(
    dst: &mut BytesMut,
    kind: FrameKind,
    flags: u8,
    stream_id: StreamId,
    padding: Option<u8>,
    fields: &[u8],
    block: &[u8],
    max_frame_size: u32,
) {
    // At least 2^14, so padding (at most 256 bytes) and fields always fit.
    let max = max_frame_size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT) as usize;
    let room = max - padding.map_or(0, |n| 1 + usize::from(n)) - fields.len();
    let (first, mut rest) = block.split_at(room.min(block.len()));
    let first_flags = flags | end_headers_flag(rest.is_empty());
    put_padded(dst, kind, first_flags, stream_id, padding, fields, first);
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(max.min(rest.len()));
        rest = after;
        put_header(
            dst,
            FrameKind::Continuation,
            end_headers_flag(rest.is_empty()),
            stream_id,
            chunk.len(),
        );
        dst.put_slice(chunk);
    }
}
