//! Retries and hedging (gRFC A6): whether and when a failed attempt is
//! followed by another, the channel's retry throttle, and the buffer that
//! keeps a call's request for replay until the call commits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use super::backoff::random_unit;
use super::service_config::{RetryPolicy, RetryThrottling};
use crate::status::{RetryPushback, Status};

/// The retry buffer's default limit per call: grpc-java's 1 MiB.
pub const DEFAULT_PER_CALL_BUFFER: usize = 1024 * 1024;

/// The retry buffer's default limit per channel: grpc-java's 16 MiB.
pub const DEFAULT_PER_CHANNEL_BUFFER: usize = 16 * 1024 * 1024;

/// How a channel retries: set on its builder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetrySettings {
    pub(crate) enabled: bool,
    pub(crate) per_call: usize,
    pub(crate) per_channel: usize,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            enabled: true,
            per_call: DEFAULT_PER_CALL_BUFFER,
            per_channel: DEFAULT_PER_CHANNEL_BUFFER,
        }
    }
}

/// The channel's retry throttle (`retryThrottling`): a token bucket, kept
/// in thousandths of a token as the spec's three decimal places allow.
#[derive(Debug)]
pub(crate) struct Throttle {
    pub(crate) config: RetryThrottling,
    max: u32,
    ratio: u32,
    tokens: AtomicU32,
}

impl Throttle {
    pub(crate) fn new(config: RetryThrottling) -> Throttle {
        let max = config.max_tokens * 1000;
        Throttle {
            config,
            max,
            ratio: (config.token_ratio * 1000.0).round() as u32,
            tokens: AtomicU32::new(max),
        }
    }

    /// An attempt failed with a code the policy `listed` (retryable, or
    /// non-fatal for hedging), and `pushback`: per A6 only such failures,
    /// or pushback that says stop, cost a token.
    pub(crate) fn attempt_failed(&self, listed: bool, pushback: Option<RetryPushback>) {
        if listed || pushback == Some(RetryPushback::Stop) {
            self.failure();
        }
    }

    /// A failed attempt: one token less.
    fn failure(&self) {
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| Some(t.saturating_sub(1000)));
    }

    /// A successful call: `tokenRatio` tokens more, up to the maximum.
    pub(crate) fn success(&self) {
        let _ = self.tokens.fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
            Some(t.saturating_add(self.ratio).min(self.max))
        });
    }

    /// Whether a retry or hedge may be sent: more than half the tokens left.
    pub(crate) fn allows(&self) -> bool {
        self.tokens.load(Ordering::Acquire) * 2 > self.max
    }
}

/// The bytes of request data a channel's calls keep for replay, against a
/// limit per call and one for the channel.
#[derive(Debug)]
pub(crate) struct RetryBuffer {
    per_call: usize,
    per_channel: usize,
    used: AtomicUsize,
}

impl RetryBuffer {
    pub(crate) fn new(settings: &RetrySettings) -> Arc<RetryBuffer> {
        Arc::new(RetryBuffer {
            per_call: settings.per_call,
            per_channel: settings.per_channel,
            used: AtomicUsize::new(0),
        })
    }

    /// Room for a call's buffered request, starting with `bytes`; `None` if
    /// they do not fit, and the call then cannot be retried.
    pub(crate) fn reserve(self: &Arc<RetryBuffer>, bytes: usize) -> Option<BufferHold> {
        let mut hold = BufferHold {
            buffer: self.clone(),
            bytes: 0,
        };
        hold.grow(bytes).then_some(hold)
    }
}

/// One call's share of the retry buffer, given back when dropped.
#[derive(Debug)]
pub(crate) struct BufferHold {
    buffer: Arc<RetryBuffer>,
    bytes: usize,
}

impl BufferHold {
    /// Takes `bytes` more; false, taking nothing, past either limit.
    pub(crate) fn grow(&mut self, bytes: usize) -> bool {
        let Some(total) = self.bytes.checked_add(bytes) else {
            return false;
        };
        if total > self.buffer.per_call {
            return false;
        }
        let fits = self
            .buffer
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&u| u <= self.buffer.per_channel)
            })
            .is_ok();
        if fits {
            self.bytes = total;
        }
        fits
    }
}

impl Drop for BufferHold {
    fn drop(&mut self) {
        self.buffer.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// What follows a failed attempt.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Another attempt, after this delay.
    Retry(Duration),
    /// None: the failure is the call's.
    Stop,
}

/// One call's retry state: the attempts made and the backoff reached.
pub(crate) struct Retrier {
    policy: RetryPolicy,
    throttle: Option<Arc<Throttle>>,
    /// Attempts sent so far.
    attempts: u32,
    /// Retries since the last pushback, for the backoff's exponent.
    since_pushback: u32,
}

impl Retrier {
    pub(crate) fn new(policy: RetryPolicy, throttle: Option<Arc<Throttle>>) -> Retrier {
        Retrier {
            policy,
            throttle,
            attempts: 1,
            since_pushback: 0,
        }
    }

    /// Attempts before the current one, for `grpc-previous-rpc-attempts`.
    pub(crate) fn previous_attempts(&self) -> u32 {
        self.attempts - 1
    }

    /// The current attempt failed with `status` before the call committed.
    pub(crate) fn after_failure(&mut self, status: &Status) -> Verdict {
        let retryable = self.policy.retries(status.code());
        let pushback = status.retry_pushback();
        if let Some(throttle) = &self.throttle {
            throttle.attempt_failed(retryable, pushback);
        }
        if !retryable || pushback == Some(RetryPushback::Stop) || self.attempts >= self.policy.max_attempts {
            return Verdict::Stop;
        }
        if self.throttle.as_ref().is_some_and(|t| !t.allows()) {
            return Verdict::Stop;
        }
        self.attempts += 1;
        let delay = match pushback {
            Some(RetryPushback::After(delay)) => {
                self.since_pushback = 0;
                delay
            }
            _ => {
                self.since_pushback += 1;
                self.policy.backoff_ceiling(self.since_pushback).mul_f64(random_unit())
            }
        };
        Verdict::Retry(delay)
    }

    /// The call succeeded.
    pub(crate) fn success(&self) {
        if let Some(throttle) = &self.throttle {
            throttle.success();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy::new(
            max_attempts,
            Duration::from_millis(100),
            Duration::from_millis(400),
            2.0,
            [Code::Unavailable],
        )
    }

    #[test]
    fn attempts_stop_at_max_attempts_capped_at_five() {
        let mut retrier = Retrier::new(policy(9), None);
        let failure = Status::unavailable("down");
        let mut retries = 0;
        while let Verdict::Retry(_) = retrier.after_failure(&failure) {
            retries += 1;
        }
        assert_eq!(retries, 4, "5 attempts in all");
        assert_eq!(retrier.previous_attempts(), 4);
    }

    #[test]
    fn codes_outside_the_list_and_pushback_stop_are_not_retried() {
        let mut retrier = Retrier::new(policy(3), None);
        assert_eq!(retrier.after_failure(&Status::internal("bug")), Verdict::Stop);
        let stop = Status::unavailable("no").with_retry_pushback(RetryPushback::Stop);
        assert_eq!(retrier.after_failure(&stop), Verdict::Stop);
    }

    #[test]
    fn backoff_is_random_below_the_exponential_ceiling_and_pushback_is_exact() {
        for _ in 0..200 {
            let mut retrier = Retrier::new(policy(5), None);
            let failure = Status::unavailable("down");
            for ceiling in [100, 200, 400] {
                let Verdict::Retry(delay) = retrier.after_failure(&failure) else {
                    panic!("retried")
                };
                assert!(delay <= Duration::from_millis(ceiling), "{delay:?} > {ceiling} ms");
            }
            let pushed = Status::unavailable("later").with_retry_pushback(RetryPushback::After(Duration::from_secs(7)));
            assert_eq!(retrier.after_failure(&pushed), Verdict::Retry(Duration::from_secs(7)));
        }
    }

    #[test]
    fn backoff_spreads_uniformly_below_its_ceiling() {
        // 2,000 first retries with a 100 ms ceiling: uniform on [0, 100 ms]
        // has mean 50 ms, with a standard error of about 0.65 ms.
        let failure = Status::unavailable("down");
        let delays: Vec<f64> = (0..2000)
            .map(|_| match Retrier::new(policy(2), None).after_failure(&failure) {
                Verdict::Retry(d) => d.as_secs_f64() * 1000.0,
                Verdict::Stop => panic!("retried"),
            })
            .collect();
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((45.0..55.0).contains(&mean), "mean {mean} ms");
        assert!(delays.iter().any(|&d| d < 10.0), "some short waits");
        assert!(delays.iter().any(|&d| d > 90.0), "some long waits");
    }

    #[test]
    fn throttle_stops_retries_at_half_its_tokens_and_recovers_with_successes() {
        let throttle = Arc::new(Throttle::new(RetryThrottling::new(10, 0.5)));
        let failure = Status::unavailable("down");
        // Each failed attempt costs a token: 10 → 6 still allows, 5 does not.
        for _ in 0..4 {
            let mut retrier = Retrier::new(policy(2), Some(throttle.clone()));
            assert!(matches!(retrier.after_failure(&failure), Verdict::Retry(_)));
        }
        let mut retrier = Retrier::new(policy(2), Some(throttle.clone()));
        assert_eq!(retrier.after_failure(&failure), Verdict::Stop);
        assert!(!throttle.allows());
        // 5 tokens; two successes make 6.
        retrier.success();
        retrier.success();
        assert!(throttle.allows());
    }

    #[test]
    fn buffer_holds_respect_the_call_and_channel_limits() {
        let buffer = RetryBuffer::new(&RetrySettings {
            enabled: true,
            per_call: 10,
            per_channel: 15,
        });
        let mut a = buffer.reserve(8).expect("fits");
        assert!(!a.grow(3), "past the per-call limit");
        assert!(buffer.reserve(8).is_none(), "past the channel limit");
        let b = buffer.reserve(7).expect("fits beside a");
        drop(a);
        drop(b);
        assert!(buffer.reserve(10).is_some(), "given back on drop");
    }
}
