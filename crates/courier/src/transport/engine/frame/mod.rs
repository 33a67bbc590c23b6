//! The HTTP/2 frame layer (RFC 9113 §4 and §6): every frame type parsed from
//! and written to bytes, with the rules a frame can be checked against on
//! its own. No connection state beyond what one frame, or one header block
//! split over CONTINUATION frames, needs.
//!
//! - [`FrameDecoder`] splits frames off a read buffer, payloads as `Bytes`
//!   slices of it; [`HeaderBlockAssembler`] joins header blocks within
//!   [`HeaderBlockLimits`]; [`FrameReader`] is the two together.
//! - [`encode`] and friends write frames into a caller's `BytesMut`;
//!   [`GatherBuf`] queues them for one `writev`, DATA payloads uncopied.
//! - A broken rule is a [`FrameError`]: the [`Violation`], its
//!   [`ErrorCode`], and whether it ends the connection or one stream.

// Nothing outside the engine uses this module yet, and the fuzz hooks
// (`feature = "fuzzing"`) reach only part of it: unused items are checked
// by the test build alone.
#![cfg_attr(not(test), allow(dead_code, unused_imports))]

mod assemble;
mod decode;
mod encode;
mod error;
mod frames;
mod gather;
mod header;
mod reader;
mod settings;

#[cfg(test)]
mod tests;

pub(crate) use assemble::{HeaderBlockAssembler, HeaderBlockLimits};
pub(crate) use decode::FrameDecoder;
pub(crate) use encode::{encode, encode_data_header, encode_headers, encode_push_promise};
pub(crate) use error::{ErrorCode, ErrorScope, FrameError, Violation};
pub(crate) use frames::{
    Continuation, Data, Frame, GoAway, Headers, Ping, Priority, PrioritySpec, PushPromise, RstStream, Unknown,
    WindowUpdate,
};
pub(crate) use gather::{GatherBuf, INLINE_DATA_MAX};
pub(crate) use header::{
    DEFAULT_MAX_FRAME_SIZE, FrameHeader, FrameKind, HEADER_LEN, MAX_FRAME_SIZE_LIMIT, StreamId, flags,
};
pub(crate) use reader::FrameReader;
pub(crate) use settings::{MAX_WINDOW_SIZE, SettingId, Settings};
