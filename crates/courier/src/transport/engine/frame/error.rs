//! HTTP/2 error codes (RFC 9113 §7) and the errors of the frame layer: which
//! rule a peer broke, with the code to send and whether it ends the
//! connection or only one stream (§5.4).

use super::header::{FrameKind, StreamId};

/// An error code, as carried by RST_STREAM and GOAWAY (RFC 9113 §7). Codes
/// this crate does not know are kept as their number; §7 says to treat them
/// as INTERNAL_ERROR, which is the caller's choice to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ErrorCode {
    NoError,
    ProtocolError,
    InternalError,
    FlowControlError,
    SettingsTimeout,
    StreamClosed,
    FrameSizeError,
    RefusedStream,
    Cancel,
    CompressionError,
    ConnectError,
    EnhanceYourCalm,
    InadequateSecurity,
    Http11Required,
    /// A code outside RFC 9113's list.
    Unknown(u32),
}

impl From<u32> for ErrorCode {
    fn from(raw: u32) -> ErrorCode {
        match raw {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> u32 {
        match code {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Unknown(other) => other,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Unknown(raw) => return write!(f, "error code {raw:#x}"),
        };
        f.write_str(name)
    }
}

/// The rule of RFC 9113 a received frame broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    /// §4.2: longer than the local SETTINGS_MAX_FRAME_SIZE.
    FrameTooLarge { length: u32, max: u32 },
    /// §6.3, §6.4, §6.7, §6.9: a fixed-length frame of another length.
    WrongLength { kind: FrameKind, length: u32 },
    /// §4.2: too short for the frame's mandatory fields (pad length,
    /// priority, promised stream, GOAWAY's eight bytes).
    TooShort { kind: FrameKind, length: u32 },
    /// §6.5: a SETTINGS acknowledgement with a payload.
    SettingsAckNotEmpty { length: u32 },
    /// §6.5: a SETTINGS payload that is not a whole number of parameters.
    SettingsLengthNotMultipleOfSix { length: u32 },
    /// §6.1, §6.2, §6.3, §6.4, §6.6, §6.10: stream 0 where a stream is
    /// required.
    MissingStreamId { kind: FrameKind },
    /// §6.5, §6.7, §6.8: a stream where stream 0 is required.
    UnexpectedStreamId { kind: FrameKind, stream_id: StreamId },
    /// §6.1, §6.2, §6.6: padding as long as the payload, or longer.
    PaddingTooLong { kind: FrameKind, padding: u8, length: u32 },
    /// §6.5.2: SETTINGS_ENABLE_PUSH other than 0 or 1.
    InvalidEnablePush { value: u32 },
    /// §6.5.2: SETTINGS_INITIAL_WINDOW_SIZE above 2^31 - 1.
    InitialWindowTooLarge { value: u32 },
    /// §6.5.2: SETTINGS_MAX_FRAME_SIZE outside 2^14 ..= 2^24 - 1.
    InvalidMaxFrameSize { value: u32 },
    /// §6.9: a WINDOW_UPDATE of 0.
    ZeroWindowIncrement,
    /// §6.6: a PUSH_PROMISE promising stream 0.
    ZeroPromisedStreamId,
    /// §4.3, §6.10: a frame other than CONTINUATION for the same stream
    /// while a header block is open.
    HeaderBlockInterrupted {
        open_on: StreamId,
        kind: FrameKind,
        stream_id: StreamId,
    },
    /// §6.10: a CONTINUATION with no open header block.
    UnexpectedContinuation { stream_id: StreamId },
    /// The header block grew past the local cap (CONTINUATION floods).
    HeaderBlockTooLarge { max: usize },
    /// The header block came in more frames than the local cap allows
    /// (floods of empty CONTINUATION frames).
    TooManyContinuations { max: usize },
}

impl Violation {
    /// The error code RFC 9113 gives for this rule. The two local caps on
    /// header blocks answer ENHANCE_YOUR_CALM: the block is not wrong, only
    /// more than this endpoint is willing to hold.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Violation::FrameTooLarge { .. }
            | Violation::WrongLength { .. }
            | Violation::TooShort { .. }
            | Violation::SettingsAckNotEmpty { .. }
            | Violation::SettingsLengthNotMultipleOfSix { .. } => ErrorCode::FrameSizeError,
            Violation::InitialWindowTooLarge { .. } => ErrorCode::FlowControlError,
            Violation::HeaderBlockTooLarge { .. } | Violation::TooManyContinuations { .. } => {
                ErrorCode::EnhanceYourCalm
            }
            Violation::MissingStreamId { .. }
            | Violation::UnexpectedStreamId { .. }
            | Violation::PaddingTooLong { .. }
            | Violation::InvalidEnablePush { .. }
            | Violation::InvalidMaxFrameSize { .. }
            | Violation::ZeroWindowIncrement
            | Violation::ZeroPromisedStreamId
            | Violation::HeaderBlockInterrupted { .. }
            | Violation::UnexpectedContinuation { .. } => ErrorCode::ProtocolError,
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::FrameTooLarge { length, max } => {
                write!(
                    f,
                    "frame of {length} bytes is longer than the maximum frame size of {max}"
                )
            }
            Violation::WrongLength { kind, length } => write!(f, "{kind} frame of {length} bytes"),
            Violation::TooShort { kind, length } => {
                write!(f, "{kind} frame of {length} bytes is too short for its fields")
            }
            Violation::SettingsAckNotEmpty { length } => {
                write!(f, "SETTINGS acknowledgement with a payload of {length} bytes")
            }
            Violation::SettingsLengthNotMultipleOfSix { length } => {
                write!(f, "SETTINGS payload of {length} bytes is not a multiple of 6")
            }
            Violation::MissingStreamId { kind } => write!(f, "{kind} frame on stream 0"),
            Violation::UnexpectedStreamId { kind, stream_id } => {
                write!(f, "{kind} frame on stream {stream_id}, not stream 0")
            }
            Violation::PaddingTooLong { kind, padding, length } => {
                write!(f, "{kind} frame of {length} bytes with {padding} bytes of padding")
            }
            Violation::InvalidEnablePush { value } => write!(f, "SETTINGS_ENABLE_PUSH of {value}"),
            Violation::InitialWindowTooLarge { value } => {
                write!(f, "SETTINGS_INITIAL_WINDOW_SIZE of {value} is above 2^31 - 1")
            }
            Violation::InvalidMaxFrameSize { value } => {
                write!(f, "SETTINGS_MAX_FRAME_SIZE of {value} is outside 16384..=16777215")
            }
            Violation::ZeroWindowIncrement => f.write_str("WINDOW_UPDATE with an increment of 0"),
            Violation::ZeroPromisedStreamId => f.write_str("PUSH_PROMISE promising stream 0"),
            Violation::HeaderBlockInterrupted {
                open_on,
                kind,
                stream_id,
            } => write!(
                f,
                "{kind} frame on stream {stream_id} inside the header block of stream {open_on}"
            ),
            Violation::UnexpectedContinuation { stream_id } => {
                write!(f, "CONTINUATION frame on stream {stream_id} with no header block open")
            }
            Violation::HeaderBlockTooLarge { max } => write!(f, "header block larger than {max} bytes"),
            Violation::TooManyContinuations { max } => {
                write!(f, "header block in more than {max} frames")
            }
        }
    }
}

/// Whether an error ends the connection or only one stream (§5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorScope {
    /// A connection error: send GOAWAY with the code, then close.
    Connection,
    /// A stream error: send RST_STREAM on this stream with the code; the
    /// connection goes on, and the frame has been consumed.
    Stream(StreamId),
}

/// A received frame that breaks RFC 9113: the rule, and its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameError {
    pub(crate) violation: Violation,
    pub(crate) scope: ErrorScope,
}

impl FrameError {
    /// A connection error.
    pub(crate) fn connection(violation: Violation) -> FrameError {
        FrameError {
            violation,
            scope: ErrorScope::Connection,
        }
    }

    /// A stream error on `stream_id`.
    pub(crate) fn stream(stream_id: StreamId, violation: Violation) -> FrameError {
        FrameError {
            violation,
            scope: ErrorScope::Stream(stream_id),
        }
    }

    /// The code to send in GOAWAY or RST_STREAM.
    pub(crate) fn code(&self) -> ErrorCode {
        self.violation.code()
    }

    /// Whether the connection must end.
    pub(crate) fn is_connection_error(&self) -> bool {
        self.scope == ErrorScope::Connection
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.scope {
            ErrorScope::Connection => write!(f, "HTTP/2 connection error {}: {}", self.code(), self.violation),
            ErrorScope::Stream(id) => write!(f, "HTTP/2 stream {id} error {}: {}", self.code(), self.violation),
        }
    }
}

impl std::error::Error for FrameError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_and_keep_unknown_numbers() {
        for raw in (0..=0x20).chain([0xdead_beef, u32::MAX]) {
            assert_eq!(u32::from(ErrorCode::from(raw)), raw);
        }
        assert_eq!(ErrorCode::from(0xb), ErrorCode::EnhanceYourCalm);
        assert_eq!(ErrorCode::from(0xe), ErrorCode::Unknown(0xe));
        assert_eq!(ErrorCode::from(0xd).to_string(), "HTTP_1_1_REQUIRED");
    }

    #[test]
    fn errors_say_their_scope_and_code() {
        let err = FrameError::stream(StreamId::new(3), Violation::ZeroWindowIncrement);
        assert!(!err.is_connection_error());
        assert_eq!(err.code(), ErrorCode::ProtocolError);
        assert_eq!(
            err.to_string(),
            "HTTP/2 stream 3 error PROTOCOL_ERROR: WINDOW_UPDATE with an increment of 0"
        );
        let err = FrameError::connection(Violation::InitialWindowTooLarge { value: 1 << 31 });
        assert!(err.is_connection_error());
        assert_eq!(err.code(), ErrorCode::FlowControlError);
    }
}
