//! The life of one HTTP/2 stream (RFC 9113 §5.1) as a state machine:
//! which frames each state accepts, which it ignores, and which break the
//! protocol, for the stream or for the whole connection. Server push is
//! never enabled, so the reserved states do not exist here.

/// Where a stream is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamState {
    /// Not opened yet.
    Idle,
    /// Both sides may send; `peer_headers` once the peer's headers have
    /// come (after them, its next HEADERS are trailers).
    Open { peer_headers: bool },
    /// We ended our side (END_STREAM sent); the peer may still send.
    HalfClosedLocal { peer_headers: bool },
    /// The peer ended its side; we may still send.
    HalfClosedRemote,
    /// Done, and how.
    Closed(CloseCause),
}

/// How a stream closed, which decides what late frames mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseCause {
    /// Both sides sent END_STREAM.
    Ended,
    /// We reset it: the peer may not know yet, so its late frames are
    /// ignored (§5.1, "closed").
    ResetByUs,
    /// The peer reset it.
    ResetByPeer,
}

/// A frame that concerns a stream's state, received or sent. WINDOW_UPDATE
/// is not one: it changes no state, and the driver checks only that its
/// stream is not idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFrame {
    /// HEADERS (request or response headers, or trailers), and whether it
    /// carries END_STREAM.
    Headers { end_stream: bool },
    /// DATA, and whether it carries END_STREAM.
    Data { end_stream: bool },
    /// RST_STREAM.
    Reset,
}

/// What to do with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Process it.
    Accept,
    /// Drop it (still counting DATA against the connection's window): it
    /// was in flight when we reset the stream.
    Ignore,
}

/// A received frame broke §5.1: the error code to answer with, and
/// whether the whole connection is at fault or only the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) code: ErrorCode,
    pub(crate) connection: bool,
    pub(crate) rule: &'static str,
}

/// The error codes of §7 that stream states give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// PROTOCOL_ERROR (0x1).
    Protocol,
    /// STREAM_CLOSED (0x5).
    StreamClosed,
}

impl ErrorCode {
    /// The code on the wire.
    pub(crate) fn wire(self) -> u32 {
        match self {
            ErrorCode::Protocol => 0x1,
            ErrorCode::StreamClosed => 0x5,
        }
    }
}

fn stream_error(code: ErrorCode, rule: &'static str) -> Violation {
    Violation {
        code,
        connection: false,
        rule,
    }
}

fn connection_error(code: ErrorCode, rule: &'static str) -> Violation {
    Violation {
        code,
        connection: true,
        rule,
    }
}

impl StreamState {
    /// The peer sent `frame` on this stream.
    pub(crate) fn received(&mut self, frame: StreamFrame) -> Result<Verdict, Violation> {
        use StreamFrame::*;
        use StreamState::*;
        let next = match (*self, frame) {
            (Idle, Headers { end_stream: true }) => HalfClosedRemote,
            (Idle, Headers { end_stream: false }) => Open { peer_headers: true },
            (Idle, _) => {
                return Err(connection_error(
                    ErrorCode::Protocol,
                    "only HEADERS may open a stream (RFC 9113 §5.1, idle)",
                ));
            }
            (Open { peer_headers: true } | HalfClosedLocal { peer_headers: true }, Headers { end_stream: false }) => {
                return Err(stream_error(
                    ErrorCode::Protocol,
                    "trailers must carry END_STREAM (RFC 9113 §8.1)",
                ));
            }
            (Open { peer_headers: false } | HalfClosedLocal { peer_headers: false }, Data { .. }) => {
                return Err(stream_error(
                    ErrorCode::Protocol,
                    "DATA before the HEADERS that start a message (RFC 9113 §8.1)",
                ));
            }
            (Open { .. }, Headers { end_stream: false }) => Open { peer_headers: true },
            (HalfClosedLocal { .. }, Headers { end_stream: false }) => HalfClosedLocal { peer_headers: true },
            (Open { .. }, Headers { end_stream: true } | Data { end_stream: true }) => HalfClosedRemote,
            (HalfClosedLocal { .. }, Headers { end_stream: true } | Data { end_stream: true }) => {
                Closed(CloseCause::Ended)
            }
            (Open { .. } | HalfClosedLocal { .. }, Data { end_stream: false }) => *self,
            (Open { .. } | HalfClosedLocal { .. } | HalfClosedRemote, Reset) => Closed(CloseCause::ResetByPeer),
            (HalfClosedRemote, Headers { .. } | Data { .. }) => {
                return Err(stream_error(
                    ErrorCode::StreamClosed,
                    "the peer sent after ending its side (RFC 9113 §5.1, half-closed (remote))",
                ));
            }
            (Closed(CloseCause::ResetByUs), _) => return Ok(Verdict::Ignore),
            (Closed(_), Reset) => return Ok(Verdict::Ignore),
            (Closed(CloseCause::ResetByPeer), Headers { .. } | Data { .. }) => {
                return Err(stream_error(
                    ErrorCode::StreamClosed,
                    "a frame after the peer's RST_STREAM (RFC 9113 §5.1, closed)",
                ));
            }
            (Closed(CloseCause::Ended), Headers { .. } | Data { .. }) => {
                return Err(connection_error(
                    ErrorCode::StreamClosed,
                    "a frame on a stream both sides ended (RFC 9113 §5.1, closed)",
                ));
            }
        };
        *self = next;
        Ok(Verdict::Accept)
    }

    /// We sent `frame` on this stream. Sending what the state does not
    /// allow is a bug in the caller, reported as `Err` with the rule.
    pub(crate) fn sent(&mut self, frame: StreamFrame) -> Result<(), &'static str> {
        use StreamFrame::*;
        use StreamState::*;
        let next = match (*self, frame) {
            (Idle, Headers { end_stream: false }) => Open { peer_headers: false },
            (Idle, Headers { end_stream: true }) => HalfClosedLocal { peer_headers: false },
            (Open { peer_headers }, Headers { end_stream: true } | Data { end_stream: true }) => {
                HalfClosedLocal { peer_headers }
            }
            (HalfClosedRemote, Headers { end_stream: true } | Data { end_stream: true }) => Closed(CloseCause::Ended),
            (Open { .. } | HalfClosedRemote, Headers { end_stream: false } | Data { end_stream: false }) => *self,
            (Open { .. } | HalfClosedLocal { .. } | HalfClosedRemote, Reset) => Closed(CloseCause::ResetByUs),
            (Closed(_), Reset) => *self,
            (Idle, _) => return Err("a stream opens with HEADERS"),
            (HalfClosedLocal { .. }, Headers { .. } | Data { .. }) => return Err("our side of the stream has ended"),
            (Closed(_), _) => return Err("the stream is closed"),
        };
        *self = next;
        Ok(())
    }

    /// Whether the stream is done.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, StreamState::Closed(_))
    }

    /// Whether the peer may still send on it.
    pub(crate) fn peer_may_send(&self) -> bool {
        matches!(self, StreamState::Open { .. } | StreamState::HalfClosedLocal { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::StreamFrame::*;
    use super::*;

    fn headers(end_stream: bool) -> StreamFrame {
        Headers { end_stream }
    }

    fn data(end_stream: bool) -> StreamFrame {
        Data { end_stream }
    }

    #[test]
    fn a_server_stream_goes_through_a_whole_call() {
        let mut s = StreamState::Idle;
        assert_eq!(s.received(headers(false)), Ok(Verdict::Accept));
        assert_eq!(s, StreamState::Open { peer_headers: true });
        assert!(s.peer_may_send());
        s.received(data(false)).unwrap();
        s.received(data(true)).unwrap();
        assert_eq!(s, StreamState::HalfClosedRemote);
        s.sent(headers(false)).unwrap();
        s.sent(data(false)).unwrap();
        s.sent(headers(true)).unwrap();
        assert_eq!(s, StreamState::Closed(CloseCause::Ended));
    }

    #[test]
    fn a_client_stream_ends_with_the_servers_trailers() {
        let mut s = StreamState::Idle;
        s.sent(headers(false)).unwrap();
        s.sent(data(true)).unwrap();
        assert_eq!(s, StreamState::HalfClosedLocal { peer_headers: false });
        s.received(headers(false)).unwrap();
        s.received(data(false)).unwrap();
        s.received(headers(true)).unwrap();
        assert!(s.is_closed());
    }

    #[test]
    fn a_trailers_only_response_ends_the_stream_in_one_frame() {
        let mut s = StreamState::Idle;
        s.sent(headers(false)).unwrap();
        s.sent(data(true)).unwrap();
        s.received(headers(true)).unwrap();
        assert_eq!(s, StreamState::Closed(CloseCause::Ended));
    }

    #[test]
    fn only_headers_may_open_a_stream_and_anything_else_breaks_the_connection() {
        for frame in [data(false), Reset] {
            let err = StreamState::Idle.received(frame).unwrap_err();
            assert!(err.connection, "{frame:?}");
            assert_eq!(err.code, ErrorCode::Protocol);
        }
    }

    #[test]
    fn trailers_without_end_stream_are_a_stream_protocol_error() {
        let mut s = StreamState::Idle;
        s.received(headers(false)).unwrap();
        let err = s.received(headers(false)).unwrap_err();
        assert_eq!((err.code, err.connection), (ErrorCode::Protocol, false));
    }

    #[test]
    fn data_before_the_peers_headers_is_a_stream_protocol_error() {
        let mut s = StreamState::Idle;
        s.sent(headers(false)).unwrap();
        let err = s.received(data(false)).unwrap_err();
        assert_eq!((err.code, err.connection), (ErrorCode::Protocol, false));
    }

    #[test]
    fn data_after_the_peer_ended_its_side_is_stream_closed() {
        let mut s = StreamState::Idle;
        s.received(headers(true)).unwrap();
        let err = s.received(data(false)).unwrap_err();
        assert_eq!((err.code, err.connection), (ErrorCode::StreamClosed, false));
    }

    #[test]
    fn frames_in_flight_after_our_reset_are_ignored() {
        let mut s = StreamState::Idle;
        s.received(headers(false)).unwrap();
        s.sent(Reset).unwrap();
        for frame in [data(false), data(true), headers(true), Reset] {
            assert_eq!(s.received(frame), Ok(Verdict::Ignore), "{frame:?}");
        }
    }

    #[test]
    fn frames_after_the_peers_reset_are_stream_closed() {
        let mut s = StreamState::Idle;
        s.received(headers(false)).unwrap();
        s.received(Reset).unwrap();
        assert_eq!(s, StreamState::Closed(CloseCause::ResetByPeer));
        let err = s.received(data(false)).unwrap_err();
        assert_eq!((err.code, err.connection), (ErrorCode::StreamClosed, false));
    }

    #[test]
    fn frames_on_a_stream_both_sides_ended_break_the_connection() {
        let mut s = StreamState::Idle;
        s.received(headers(true)).unwrap();
        s.sent(headers(true)).unwrap();
        let err = s.received(data(false)).unwrap_err();
        assert_eq!((err.code, err.connection), (ErrorCode::StreamClosed, true));
    }

    #[test]
    fn sending_what_the_state_forbids_is_refused() {
        assert!(StreamState::Idle.sent(data(false)).is_err());
        let mut s = StreamState::Idle;
        s.sent(headers(true)).unwrap();
        assert!(s.sent(data(false)).is_err(), "after our END_STREAM");
        s.sent(Reset).unwrap();
        assert!(s.sent(headers(false)).is_err());
        assert_eq!(ErrorCode::StreamClosed.wire(), 5);
    }
}
