//! Connectivity states, per grpc/grpc `doc/connectivity-semantics-and-api.md`,
//! of a subchannel and, aggregated, of a channel.

use std::fmt;

/// The connectivity state of a channel or a subchannel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection, and none being made: a channel before its first call
    /// or after its idle timeout, a subchannel that lost its connection.
    /// The next call (or `state(true)`) starts connecting.
    Idle,
    /// A connection is being made.
    Connecting,
    /// Connected: calls go out.
    Ready,
    /// Connecting failed, and the channel waits before trying again. Calls
    /// without wait-for-ready fail at once with UNAVAILABLE and the cause.
    TransientFailure,
    /// Closed for good.
    Shutdown,
}

impl ConnectivityState {
    /// The spec's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectivityState::Idle => "IDLE",
            ConnectivityState::Connecting => "CONNECTING",
            ConnectivityState::Ready => "READY",
            ConnectivityState::TransientFailure => "TRANSIENT_FAILURE",
            ConnectivityState::Shutdown => "SHUTDOWN",
        }
    }

    /// The state of a group of subchannels, as round_robin reports it: READY
    /// if any is, else CONNECTING if any is, else IDLE if any is, else
    /// TRANSIENT_FAILURE (and TRANSIENT_FAILURE for an empty group).
    ///
    /// ```
    /// use courier::client::ConnectivityState::*;
    /// use courier::client::ConnectivityState;
    /// assert_eq!(ConnectivityState::aggregate([TransientFailure, Connecting]), Connecting);
    /// assert_eq!(ConnectivityState::aggregate([Idle, Ready]), Ready);
    /// assert_eq!(ConnectivityState::aggregate([]), TransientFailure);
    /// ```
    pub fn aggregate(states: impl IntoIterator<Item = ConnectivityState>) -> ConnectivityState {
        let (mut connecting, mut idle) = (false, false);
        for state in states {
            match state {
                ConnectivityState::Ready => return ConnectivityState::Ready,
                ConnectivityState::Connecting => connecting = true,
                ConnectivityState::Idle => idle = true,
                _ => {}
            }
        }
        if connecting {
            ConnectivityState::Connecting
        } else if idle {
            ConnectivityState::Idle
        } else {
            ConnectivityState::TransientFailure
        }
    }
}

impl fmt::Display for ConnectivityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
