//! Keepalive (gRFC A8) and connection management (gRFC A9): HTTP/2 PINGs
//! that find a connection whose peer has gone silent, and a server's limits
//! on how long a connection may stay idle or open at all.
//!
//! A client sends a PING after the time given to [`ClientParameters::new`]
//! without hearing from the server, and closes the connection if the PING is
//! not answered
//! within [`ClientParameters::timeout`]: its calls fail with UNAVAILABLE and
//! the channel reconnects. A server does the same with its
//! [`ServerParameters`], and can close connections gracefully (GOAWAY,
//! then the calls in progress finish) once they have been idle for
//! [`ServerParameters::max_connection_idle`] or open for
//! [`ServerParameters::max_connection_age`].
//!
//! ```
//! use std::time::Duration;
//! use courier::keepalive::{ClientParameters, ServerParameters};
//!
//! let client = ClientParameters::new(Duration::from_secs(30))
//!     .timeout(Duration::from_secs(5))
//!     .permit_without_calls(true);
//! let channel = courier::Channel::builder("dns:///greeter.example.com:50051")
//!     .keepalive(client);
//!
//! let server = courier::Server::builder().keepalive(
//!     ServerParameters::new()
//!         .max_connection_idle(Duration::from_secs(15 * 60))
//!         .max_connection_age(Duration::from_secs(30 * 60))
//!         .max_connection_age_grace(Duration::from_secs(5 * 60)),
//! );
//! # let _ = (channel, server);
//! ```

use std::time::Duration;

/// The shortest keepalive time a client may use: 10 s, as grpc-go and
/// grpc-java enforce. A shorter one is raised to it.
pub const MIN_CLIENT_TIME: Duration = Duration::from_secs(10);

/// How long a PING may go unanswered before the connection is closed,
/// unless set: A8's 20 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// A server's keepalive time unless set: A8's 2 hours.
pub const DEFAULT_SERVER_TIME: Duration = Duration::from_secs(2 * 60 * 60);

/// A channel's keepalive settings (grpc-go's `keepalive.ClientParameters`).
/// Without them a channel sends no keepalive PINGs, as A8 says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientParameters {
    pub(crate) time: Duration,
    pub(crate) timeout: Duration,
    pub(crate) permit_without_calls: bool,
}

impl ClientParameters {
    /// A PING after `time` without hearing from the server (at least
    /// [`MIN_CLIENT_TIME`]), answered within [`DEFAULT_TIMEOUT`], and only
    /// while calls are in progress.
    pub fn new(time: Duration) -> ClientParameters {
        ClientParameters {
            time: time.max(MIN_CLIENT_TIME),
            timeout: DEFAULT_TIMEOUT,
            permit_without_calls: false,
        }
    }

    /// How long a PING may go unanswered before the connection is closed.
    pub fn timeout(mut self, timeout: Duration) -> ClientParameters {
        self.timeout = timeout;
        self
    }

    /// Whether to PING a connection with no calls in progress too. Servers
    /// usually forbid it (their enforcement policy answers with GOAWAY
    /// `too_many_pings`); default off.
    pub fn permit_without_calls(mut self, on: bool) -> ClientParameters {
        self.permit_without_calls = on;
        self
    }
}

/// A server's keepalive and connection-management settings (grpc-go's
/// `keepalive.ServerParameters`). By default connections are never closed
/// for being idle or old, and a PING goes out after 2 hours of silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerParameters {
    pub(crate) max_connection_idle: Option<Duration>,
    pub(crate) max_connection_age: Option<Duration>,
    pub(crate) max_connection_age_grace: Option<Duration>,
    pub(crate) time: Duration,
    pub(crate) timeout: Duration,
    pub(crate) enforcement: EnforcementPolicy,
}

impl Default for ServerParameters {
    fn default() -> Self {
        ServerParameters::new()
    }
}

impl ServerParameters {
    /// A8's defaults: PINGs after 2 hours of silence, answered within 20 s;
    /// no idle or age limit.
    pub fn new() -> ServerParameters {
        ServerParameters {
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
            time: DEFAULT_SERVER_TIME,
            timeout: DEFAULT_TIMEOUT,
            enforcement: EnforcementPolicy::new(),
        }
    }

    /// How often clients may PING; see [`EnforcementPolicy`].
    pub fn enforcement(mut self, policy: EnforcementPolicy) -> ServerParameters {
        self.enforcement = policy;
        self
    }

    /// Closes a connection gracefully once it has had no calls for this
    /// long.
    pub fn max_connection_idle(mut self, idle: Duration) -> ServerParameters {
        self.max_connection_idle = Some(idle);
        self
    }

    /// Closes a connection gracefully once it has been open this long,
    /// give or take 10% (so that connections made together do not all
    /// close together).
    pub fn max_connection_age(mut self, age: Duration) -> ServerParameters {
        self.max_connection_age = Some(age);
        self
    }

    /// After [`ServerParameters::max_connection_age`], how long the calls
    /// in progress get to finish before the connection is closed outright.
    /// Default: as long as they take.
    pub fn max_connection_age_grace(mut self, grace: Duration) -> ServerParameters {
        self.max_connection_age_grace = Some(grace);
        self
    }

    /// A PING after this long without hearing from the client.
    pub fn time(mut self, time: Duration) -> ServerParameters {
        self.time = time;
        self
    }

    /// How long a PING may go unanswered before the connection is closed.
    pub fn timeout(mut self, timeout: Duration) -> ServerParameters {
        self.timeout = timeout;
        self
    }
}

/// How often a server lets its clients PING (grpc-go's
/// `keepalive.EnforcementPolicy`, gRFC A8). A PING sooner than
/// `min_time` after the previous one, or any PING while no call is open
/// unless permitted, is a strike; the third strike in a row ends the
/// connection with GOAWAY `ENHANCE_YOUR_CALM` and debug data
/// `too_many_pings`. Each time the server sends headers or data the
/// strikes start again.
///
/// ```
/// use std::time::Duration;
/// use courier::keepalive::{EnforcementPolicy, ServerParameters};
///
/// let params = ServerParameters::new()
///     .enforcement(EnforcementPolicy::new().min_time(Duration::from_secs(10)).permit_without_calls(true));
/// # let _ = params;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnforcementPolicy {
    pub(crate) min_time: Duration,
    pub(crate) permit_without_calls: bool,
}

/// A8's least time between a client's PINGs unless set: 5 minutes.
pub const DEFAULT_MIN_PING_TIME: Duration = Duration::from_secs(5 * 60);

impl Default for EnforcementPolicy {
    fn default() -> Self {
        EnforcementPolicy::new()
    }
}

impl EnforcementPolicy {
    /// A8's defaults: at least 5 minutes between PINGs, and none while no
    /// call is open.
    pub fn new() -> EnforcementPolicy {
        EnforcementPolicy {
            min_time: DEFAULT_MIN_PING_TIME,
            permit_without_calls: false,
        }
    }

    /// The least time a client must leave between PINGs.
    pub fn min_time(mut self, min_time: Duration) -> EnforcementPolicy {
        self.min_time = min_time;
        self
    }

    /// Whether a client may PING while it has no call open.
    pub fn permit_without_calls(mut self, on: bool) -> EnforcementPolicy {
        self.permit_without_calls = on;
        self
    }

    pub(crate) fn policy(&self) -> crate::transport::engine::ping_policy::PingPolicy {
        crate::transport::engine::ping_policy::PingPolicy {
            min_time: self.min_time,
            permit_without_calls: self.permit_without_calls,
            max_strikes: 2,
        }
    }
}
