//! The CONTINUATION assembler: joins a HEADERS or PUSH_PROMISE fragment and
//! the CONTINUATION frames after it into one header block (RFC 9113 §4.3,
//! §6.10), within caps on the block's size and frame count, so that a
//! CONTINUATION flood (the 2024 family of CVEs) costs a bounded amount of
//! memory and work.

use bytes::BytesMut;

use super::error::{FrameError, Violation};
use super::frames::{Frame, Headers, PushPromise};
use super::header::{FrameHeader, FrameKind, StreamId};

/// The default cap on one header block's encoded size.
pub(crate) const DEFAULT_MAX_HEADER_BLOCK_SIZE: usize = 64 * 1024;

/// The default cap on the frames of one header block, the first included.
pub(crate) const DEFAULT_MAX_HEADER_BLOCK_FRAMES: usize = 64;

/// What one header block may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderBlockLimits {
    /// The most bytes of HPACK-encoded block, over all its frames.
    pub(crate) max_size: usize,
    /// The most frames, HEADERS or PUSH_PROMISE plus CONTINUATIONs. Bounds
    /// the work of empty CONTINUATION frames, which the size cap cannot.
    pub(crate) max_frames: usize,
}

impl Default for HeaderBlockLimits {
    fn default() -> Self {
        HeaderBlockLimits {
            max_size: DEFAULT_MAX_HEADER_BLOCK_SIZE,
            max_frames: DEFAULT_MAX_HEADER_BLOCK_FRAMES,
        }
    }
}

/// The frame that opened a header block, its fragment moved out.
#[derive(Debug)]
enum Opener {
    Headers(Headers),
    PushPromise(PushPromise),
}

impl Opener {
    fn stream_id(&self) -> StreamId {
        match self {
            Opener::Headers(h) => h.stream_id,
            Opener::PushPromise(p) => p.stream_id,
        }
    }
}

/// Whether a header block is open.
#[derive(Debug)]
enum State {
    /// Between header blocks: every frame passes through.
    Idle,
    /// A block is open: only CONTINUATION frames on its stream may come.
    Collecting {
        opener: Opener,
        /// The fragments so far, joined.
        block: BytesMut,
        /// The frames so far.
        frames: usize,
    },
}

/// Joins header blocks split over CONTINUATION frames; every other frame
/// passes through unchanged.
///
/// Out of [`push`](Self::push), a HEADERS or PUSH_PROMISE frame holds its
/// whole block with `end_headers` set, and no CONTINUATION frame comes out.
/// A block in one frame is passed on as it is, uncopied; a split one is
/// copied once into a buffer that is reused for the next.
#[derive(Debug)]
pub(crate) struct HeaderBlockAssembler {
    limits: HeaderBlockLimits,
    state: State,
    /// Kept between blocks, so a split block does not allocate anew.
    spare: BytesMut,
}

impl Default for HeaderBlockAssembler {
    fn default() -> Self {
        HeaderBlockAssembler::new(HeaderBlockLimits::default())
    }
}

impl HeaderBlockAssembler {
    /// An assembler enforcing `limits`.
    pub(crate) fn new(limits: HeaderBlockLimits) -> HeaderBlockAssembler {
        HeaderBlockAssembler {
            limits,
            state: State::Idle,
            spare: BytesMut::new(),
        }
    }

    /// The stream whose header block is open, if one is.
    pub(crate) fn open_stream(&self) -> Option<StreamId> {
        match &self.state {
            State::Idle => None,
            State::Collecting { opener, .. } => Some(opener.stream_id()),
        }
    }

    /// Takes the next frame in order; `Ok(None)` while a block is open.
    /// Every error is a connection error; after one the assembler is idle.
    pub(crate) fn push(&mut self, frame: Frame) -> Result<Option<Frame>, FrameError> {
        let State::Collecting {
            opener,
            mut block,
            frames,
        } = std::mem::replace(&mut self.state, State::Idle)
        else {
            return self.take_idle(frame);
        };
        let open_on = opener.stream_id();
        let continuation = match frame {
            Frame::Continuation(c) if c.stream_id == open_on => c,
            other => return Err(interrupted(open_on, other.kind(), other.stream_id())),
        };
        self.check_growth(block.len(), continuation.fragment.len(), frames)?;
        block.extend_from_slice(&continuation.fragment);
        if !continuation.end_headers {
            self.state = State::Collecting {
                opener,
                block,
                frames: frames + 1,
            };
            return Ok(None);
        }
        let whole = block.split().freeze();
        self.spare = block;
        Ok(Some(match opener {
            Opener::Headers(headers) => Frame::Headers(Headers {
                end_headers: true,
                fragment: whole,
                ..headers
            }),
            Opener::PushPromise(promise) => Frame::PushPromise(PushPromise {
                end_headers: true,
                fragment: whole,
                ..promise
            }),
        }))
    }

    /// Checks the header of the next frame before its payload is read: a
    /// frame that may not come now, or a CONTINUATION that would take the
    /// block past its cap, is refused at once, before it is buffered.
    pub(crate) fn check_next(&self, header: &FrameHeader) -> Result<(), FrameError> {
        match &self.state {
            State::Idle => Ok(()),
            State::Collecting { opener, block, frames } => {
                let open_on = opener.stream_id();
                if header.kind != FrameKind::Continuation || header.stream_id != open_on {
                    return Err(interrupted(open_on, header.kind, header.stream_id));
                }
                self.check_growth(block.len(), header.length as usize, *frames)
            }
        }
    }

    /// A frame with no block open: a HEADERS or PUSH_PROMISE without
    /// END_HEADERS opens one, a CONTINUATION is out of place.
    fn take_idle(&mut self, frame: Frame) -> Result<Option<Frame>, FrameError> {
        match frame {
            Frame::Headers(headers) => {
                self.check_growth(0, headers.fragment.len(), 0)?;
                if headers.end_headers {
                    return Ok(Some(Frame::Headers(headers)));
                }
                self.open(Opener::Headers(headers));
                Ok(None)
            }
            Frame::PushPromise(promise) => {
                self.check_growth(0, promise.fragment.len(), 0)?;
                if promise.end_headers {
                    return Ok(Some(Frame::PushPromise(promise)));
                }
                self.open(Opener::PushPromise(promise));
                Ok(None)
            }
            Frame::Continuation(continuation) => Err(FrameError::connection(Violation::UnexpectedContinuation {
                stream_id: continuation.stream_id,
            })),
            other => Ok(Some(other)),
        }
    }

    /// Refuses a fragment of `more` bytes after `have` bytes in `frames`
    /// frames if the block would exceed a cap.
    fn check_growth(&self, have: usize, more: usize, frames: usize) -> Result<(), FrameError> {
        if frames >= self.limits.max_frames {
            return Err(FrameError::connection(Violation::TooManyContinuations {
                max: self.limits.max_frames,
            }));
        }
        if more > self.limits.max_size.saturating_sub(have) {
            return Err(FrameError::connection(Violation::HeaderBlockTooLarge {
                max: self.limits.max_size,
            }));
        }
        Ok(())
    }

    fn open(&mut self, mut opener: Opener) {
        let fragment = match &mut opener {
            Opener::Headers(h) => std::mem::take(&mut h.fragment),
            Opener::PushPromise(p) => std::mem::take(&mut p.fragment),
        };
        let mut block = std::mem::take(&mut self.spare);
        block.clear();
        block.extend_from_slice(&fragment);
        self.state = State::Collecting {
            opener,
            block,
            frames: 1,
        };
    }
}

/// The error for a frame other than a CONTINUATION on `open_on` while that
/// stream's block is open.
fn interrupted(open_on: StreamId, kind: FrameKind, stream_id: StreamId) -> FrameError {
    FrameError::connection(Violation::HeaderBlockInterrupted {
        open_on,
        kind,
        stream_id,
    })
}
