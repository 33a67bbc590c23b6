//! The frame reader: the decoder and the CONTINUATION assembler in one, as
//! a connection reads frames. Checks each frame's header against the open
//! header block before its payload is buffered.

use bytes::BytesMut;

use super::assemble::{HeaderBlockAssembler, HeaderBlockLimits};
use super::decode::FrameDecoder;
use super::error::FrameError;
use super::frames::Frame;
use super::header::{FrameHeader, HEADER_LEN};

/// Reads whole frames, header blocks joined, from a connection's read
/// buffer.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    decoder: FrameDecoder,
    assembler: HeaderBlockAssembler,
}

impl FrameReader {
    /// A reader refusing frames over `max_frame_size` (this endpoint's
    /// SETTINGS_MAX_FRAME_SIZE) and header blocks over `limits`.
    pub(crate) fn new(max_frame_size: u32, limits: HeaderBlockLimits) -> FrameReader {
        FrameReader {
            decoder: FrameDecoder::new(max_frame_size),
            assembler: HeaderBlockAssembler::new(limits),
        }
    }

    /// The decoder, to read or change the maximum frame size.
    pub(crate) fn decoder_mut(&mut self) -> &mut FrameDecoder {
        &mut self.decoder
    }

    /// The next frame, split off the front of `buf`, with HEADERS and
    /// PUSH_PROMISE holding their whole header block; `Ok(None)` until one
    /// is there. Consumes every CONTINUATION already in `buf`, so a caller
    /// need not call again before reading more.
    ///
    /// Errors are as [`FrameDecoder::decode`] and
    /// [`HeaderBlockAssembler::push`] give them, except that with a header
    /// block open every frame but its CONTINUATION is a connection error,
    /// even one the decoder would only refuse with a stream error.
    pub(crate) fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(head) = buf.first_chunk::<HEADER_LEN>() {
                self.assembler.check_next(&FrameHeader::parse(head))?;
            }
            let Some(frame) = self.decoder.decode(buf)? else {
                return Ok(None);
            };
            if let Some(frame) = self.assembler.push(frame)? {
                return Ok(Some(frame));
            }
        }
    }

    /// How many more bytes `buf` needs before [`read`](Self::read) can make
    /// progress (see [`FrameDecoder::missing`]).
    pub(crate) fn missing(&self, buf: &[u8]) -> usize {
        self.decoder.missing(buf)
    }
}
