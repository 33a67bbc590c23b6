//! Connection backoff, per grpc/grpc `doc/connection-backoff.md`: after each
//! failed attempt the delay grows by a multiplier up to a maximum, with
//! random jitter, and a successful connection resets it.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Backoff parameters. The defaults are the spec's.
#[derive(Clone, Debug)]
pub struct BackoffConfig {
    /// The delay after the first failure. Default 1 s.
    pub base_delay: Duration,
    /// The factor each further failure multiplies the delay by. Default 1.6.
    pub multiplier: f64,
    /// The random spread around each delay, as a fraction. Default 0.2.
    pub jitter: f64,
    /// The longest delay. Default 120 s.
    pub max_delay: Duration,
    /// The least time given to one connection attempt. Default 20 s. Each
    /// attempt gets this or the current backoff delay, whichever is longer,
    /// unless the channel has an explicit
    /// [`connect_timeout`](crate::client::ChannelBuilder::connect_timeout).
    pub min_connect_timeout: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base_delay: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// The state of backoff between attempts.
#[derive(Debug)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(config: BackoffConfig) -> Backoff {
        let current = config.base_delay;
        Backoff { config, current }
    }

    /// The time the next connection attempt gets, per the spec:
    /// `MAX(current deadline - now, MIN_CONNECT_TIMEOUT)`, where the
    /// current deadline is one (unjittered) backoff delay away.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        self.current.max(self.config.min_connect_timeout)
    }

    /// Forget earlier failures.
    pub(crate) fn reset(&mut self) {
        self.current = self.config.base_delay;
    }

    /// The delay before the next attempt, with jitter; grows the next one.
    /// Absurd parameters (a multiplier or jitter that is infinite, NaN or
    /// negative, delays near `Duration::MAX`) give absurd delays, never a
    /// panic: a product too large for a `Duration` is the maximum delay, a
    /// negative one no delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current;
        let max = self.config.max_delay;
        let grown = base.as_secs_f64() * self.config.multiplier;
        self.current = seconds(grown, max).min(max);
        let spread = (random_unit() * 2.0 - 1.0) * self.config.jitter;
        seconds(base.as_secs_f64() * (1.0 + spread), base)
    }
}

/// `secs` as a duration: `overflow` when it is too large for one or NaN,
/// zero when it is negative.
fn seconds(secs: f64, overflow: Duration) -> Duration {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) => d,
        Err(_) if secs < 0.0 => Duration::ZERO,
        Err(_) => overflow,
    }
}

/// A random number in [0, 1), from the standard library's seeded hasher.
pub(crate) fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig::default());
        let first = b.next_delay().as_secs_f64();
        assert!((0.8..=1.2).contains(&first), "{first}");
        let second = b.next_delay().as_secs_f64();
        assert!((1.6 * 0.8..=1.6 * 1.2).contains(&second), "{second}");
        for _ in 0..30 {
            let d = b.next_delay().as_secs_f64();
            assert!(d <= 120.0 * 1.2 + 1e-9, "{d}");
        }
        assert!(b.next_delay().as_secs_f64() >= 120.0 * 0.8);
        b.reset();
        assert!(b.next_delay().as_secs_f64() <= 1.2);
    }

    #[test]
    fn an_attempt_gets_the_longer_of_min_connect_timeout_and_the_backoff_delay() {
        let mut b = Backoff::new(BackoffConfig {
            base_delay: Duration::from_millis(100),
            multiplier: 10.0,
            min_connect_timeout: Duration::from_millis(500),
            ..Default::default()
        });
        assert_eq!(b.attempt_timeout(), Duration::from_millis(500));
        b.next_delay();
        assert_eq!(b.attempt_timeout(), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.attempt_timeout(), Duration::from_millis(500));
    }

    #[test]
    fn absurd_values_do_not_panic() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(1),
            Duration::MAX,
        ];
        let factors = [0.0, -1.0, 1.6, 1e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
        for base_delay in durations {
            for max_delay in durations {
                for multiplier in factors {
                    for jitter in factors {
                        let mut b = Backoff::new(BackoffConfig {
                            base_delay,
                            multiplier,
                            jitter,
                            max_delay,
                            min_connect_timeout: Duration::MAX,
                        });
                        for _ in 0..3 {
                            b.next_delay();
                        }
                    }
                }
            }
        }
    }
}
