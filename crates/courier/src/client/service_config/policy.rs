//! Retry and hedging policies and retry throttling (gRFC A6).

use std::time::Duration;

use super::MAX_ATTEMPTS;
use crate::status::Code;

/// A set of status codes, one bit per code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CodeSet(u32);

impl CodeSet {
    pub(crate) fn contains(self, code: Code) -> bool {
        let bit = code.as_i32();
        (0..32).contains(&bit) && self.0 & (1 << bit) != 0
    }
}

impl FromIterator<Code> for CodeSet {
    fn from_iter<I: IntoIterator<Item = Code>>(codes: I) -> CodeSet {
        let mut set = 0u32;
        for code in codes {
            let bit = code.as_i32();
            if (0..32).contains(&bit) {
                set |= 1 << bit;
            }
        }
        CodeSet(set)
    }
}

/// How a method's calls are attempted more than once: a config has at most
/// one of the two.
#[derive(Clone, Debug)]
pub(crate) enum AttemptPolicy {
    Retry(RetryPolicy),
    Hedging(HedgingPolicy),
}

/// Retries a failed call (`retryPolicy`): up to `max_attempts` attempts in
/// all, waiting before attempt n+1 a random time in
/// `[0, min(initial_backoff × multiplier^(n−1), max_backoff)]`, for the
/// status codes listed, until the call commits (its response headers
/// arrive, or its request outgrows the retry buffer).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) backoff_multiplier: f64,
    pub(crate) retryable: CodeSet,
}

impl RetryPolicy {
    /// A retry policy. `max_attempts` counts the first attempt, and is
    /// capped at [`MAX_ATTEMPTS`]; below 2 it means no retries.
    pub fn new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        backoff_multiplier: f64,
        retryable_status_codes: impl IntoIterator<Item = Code>,
    ) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.clamp(1, MAX_ATTEMPTS),
            initial_backoff,
            max_backoff,
            backoff_multiplier,
            retryable: retryable_status_codes.into_iter().collect(),
        }
    }

    /// Attempts in all, the first included, after the cap.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether a call that failed with `code` may be retried.
    pub fn retries(&self, code: Code) -> bool {
        self.retryable.contains(code)
    }

    /// The longest wait before retry number `retry` (1 for the first
    /// retry) since the last pushback: the actual wait is random, from 0 up
    /// to this.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = self.backoff_multiplier.powi(retry.saturating_sub(1).min(1024) as i32);
        let secs = self.initial_backoff.as_secs_f64() * factor;
        let max = self.max_backoff.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            self.max_backoff
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
    }
}

/// Sends a call more than once without waiting for a failure
/// (`hedgingPolicy`): up to `max_attempts` copies, `hedging_delay` apart,
/// until one answers OK or with a status not in the non-fatal list.
#[derive(Clone, Debug)]
pub struct HedgingPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) hedging_delay: Duration,
    pub(crate) non_fatal: CodeSet,
}

impl HedgingPolicy {
    /// A hedging policy; `max_attempts` is capped at [`MAX_ATTEMPTS`].
    pub fn new(
        max_attempts: u32,
        hedging_delay: Duration,
        non_fatal_status_codes: impl IntoIterator<Item = Code>,
    ) -> HedgingPolicy {
        HedgingPolicy {
            max_attempts: max_attempts.clamp(1, MAX_ATTEMPTS),
            hedging_delay,
            non_fatal: non_fatal_status_codes.into_iter().collect(),
        }
    }

    /// Copies in all, the first included, after the cap.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The time between one copy and the next.
    pub fn hedging_delay(&self) -> Duration {
        self.hedging_delay
    }
}

/// Throttles retries and hedges across a channel (`retryThrottling`): a
/// token bucket that starts full at `max_tokens`, loses 1 for each failed
/// attempt (with a retryable or non-fatal code, or pushback that says stop)
/// and gains `token_ratio` for each success; at or below half full, no
/// retry or hedge is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryThrottling {
    pub(crate) max_tokens: u32,
    pub(crate) token_ratio: f64,
}

impl RetryThrottling {
    /// A throttle. `max_tokens` is clamped to 1..=1000; `token_ratio` keeps
    /// three decimal places, as the spec says.
    pub fn new(max_tokens: u32, token_ratio: f64) -> RetryThrottling {
        RetryThrottling {
            max_tokens: max_tokens.clamp(1, 1000),
            token_ratio: (token_ratio * 1000.0).trunc() / 1000.0,
        }
    }
}
