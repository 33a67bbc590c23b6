//! A server's enforcement of how often its clients may PING (gRFC A8): a
//! PING sooner than the policy allows is a strike, and one strike too many
//! ends the connection with GOAWAY ENHANCE_YOUR_CALM, debug data
//! `too_many_pings`. Sending headers or data resets the count, as grpc-go
//! and the C core do, since then the client's PINGs may be measuring a
//! live exchange.

use std::time::{Duration, Instant};

/// The debug data of the GOAWAY that ends a connection for its PINGs.
pub(crate) const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// What the server allows (grpc-go's `keepalive.EnforcementPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PingPolicy {
    /// The least time between two PINGs: A8's default is 5 minutes.
    pub(crate) min_time: Duration,
    /// Whether PINGs are allowed while no stream is open: default no.
    pub(crate) permit_without_calls: bool,
    /// Strikes allowed before the connection ends: 2.
    pub(crate) max_strikes: u32,
}

impl Default for PingPolicy {
    fn default() -> Self {
        PingPolicy {
            min_time: Duration::from_secs(5 * 60),
            permit_without_calls: false,
            max_strikes: 2,
        }
    }
}

/// The verdict on one PING.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PingVerdict {
    /// Within the policy (or a strike still allowed): answer it.
    Allowed,
    /// Past the strikes allowed: GOAWAY ENHANCE_YOUR_CALM `too_many_pings`.
    TooManyPings,
}

/// One connection's PING enforcement.
#[derive(Debug)]
pub(crate) struct PingEnforcer {
    policy: PingPolicy,
    last_ping: Option<Instant>,
    strikes: u32,
}

impl PingEnforcer {
    pub(crate) fn new(policy: PingPolicy) -> PingEnforcer {
        PingEnforcer {
            policy,
            last_ping: None,
            strikes: 0,
        }
    }

    /// A PING (not an ACK) arrived at `now`, with `open_streams` open.
    pub(crate) fn ping(&mut self, now: Instant, open_streams: usize) -> PingVerdict {
        let too_soon = match self.last_ping {
            None => false,
            Some(last) => {
                // With no call to keep alive, a client may PING only if
                // permitted, and then no more often than with calls.
                let idle_and_forbidden = open_streams == 0 && !self.policy.permit_without_calls;
                idle_and_forbidden || now.saturating_duration_since(last) < self.policy.min_time
            }
        };
        self.last_ping = Some(now);
        if too_soon {
            self.strikes += 1;
            if self.strikes > self.policy.max_strikes {
                return PingVerdict::TooManyPings;
            }
        }
        PingVerdict::Allowed
    }

    /// The server sent HEADERS or DATA: the strikes start again.
    pub(crate) fn sent_headers_or_data(&mut self) {
        self.strikes = 0;
        self.last_ping = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min_secs: u64, permit_without_calls: bool) -> PingPolicy {
        PingPolicy {
            min_time: Duration::from_secs(min_secs),
            permit_without_calls,
            max_strikes: 2,
        }
    }

    #[test]
    fn pings_at_the_allowed_rate_are_never_struck() {
        let mut e = PingEnforcer::new(policy(10, false));
        let start = Instant::now();
        for i in 0..100 {
            assert_eq!(e.ping(start + Duration::from_secs(10 * i), 1), PingVerdict::Allowed);
        }
    }

    #[test]
    fn the_third_early_ping_ends_the_connection() {
        let mut e = PingEnforcer::new(policy(300, false));
        let t = Instant::now();
        assert_eq!(e.ping(t, 1), PingVerdict::Allowed, "the first PING is free");
        assert_eq!(e.ping(t + Duration::from_secs(1), 1), PingVerdict::Allowed, "strike 1");
        assert_eq!(e.ping(t + Duration::from_secs(2), 1), PingVerdict::Allowed, "strike 2");
        assert_eq!(e.ping(t + Duration::from_secs(3), 1), PingVerdict::TooManyPings);
        assert_eq!(TOO_MANY_PINGS, b"too_many_pings");
    }

    #[test]
    fn sending_headers_or_data_resets_the_strikes() {
        let mut e = PingEnforcer::new(policy(300, false));
        let t = Instant::now();
        for i in 0..10 {
            e.ping(t + Duration::from_secs(2 * i), 1);
            assert_eq!(e.ping(t + Duration::from_secs(2 * i + 1), 1), PingVerdict::Allowed);
            e.sent_headers_or_data();
        }
    }

    #[test]
    fn without_calls_pings_are_struck_unless_permitted() {
        let t = Instant::now();
        let mut strict = PingEnforcer::new(policy(1, false));
        strict.ping(t, 0);
        for i in 1..=2 {
            assert_eq!(strict.ping(t + Duration::from_secs(60 * i), 0), PingVerdict::Allowed);
        }
        assert_eq!(strict.ping(t + Duration::from_secs(180), 0), PingVerdict::TooManyPings);

        let mut lenient = PingEnforcer::new(policy(1, true));
        for i in 0..10 {
            assert_eq!(lenient.ping(t + Duration::from_secs(60 * i), 0), PingVerdict::Allowed);
        }
    }
}
