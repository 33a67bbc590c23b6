//! One `methodConfig` entry: the methods it names and their settings.

use std::time::Duration;

use super::policy::{AttemptPolicy, HedgingPolicy, RetryPolicy};

/// A name in a method config: a method, every method of a service, or
/// every method (the default entry, `{}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MethodName {
    service: Option<String>,
    method: Option<String>,
}

impl MethodName {
    /// One method of a service: `("helloworld.Greeter", "SayHello")`.
    pub fn method(service: impl Into<String>, method: impl Into<String>) -> MethodName {
        MethodName {
            service: Some(service.into()),
            method: Some(method.into()),
        }
    }

    /// Every method of a service, `helloworld.Greeter`.
    pub fn service(service: impl Into<String>) -> MethodName {
        MethodName {
            service: Some(service.into()),
            method: None,
        }
    }

    /// Every method of every service: the default entry.
    pub fn all() -> MethodName {
        MethodName {
            service: None,
            method: None,
        }
    }

    /// The service, unless this is the default entry.
    pub fn service_name(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The method, when one is named.
    pub fn method_name(&self) -> Option<&str> {
        self.method.as_deref()
    }
}

/// The settings of the methods one entry names.
#[derive(Clone, Debug)]
pub struct MethodConfig {
    names: Vec<MethodName>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) wait_for_ready: Option<bool>,
    pub(crate) max_request_message_bytes: Option<usize>,
    pub(crate) max_response_message_bytes: Option<usize>,
    pub(crate) attempts: Option<AttemptPolicy>,
}

impl MethodConfig {
    /// Settings for the methods `names` names.
    pub fn new(names: impl IntoIterator<Item = MethodName>) -> MethodConfig {
        MethodConfig {
            names: names.into_iter().collect(),
            timeout: None,
            wait_for_ready: None,
            max_request_message_bytes: None,
            max_response_message_bytes: None,
            attempts: None,
        }
    }

    /// The names this entry applies to.
    pub fn names(&self) -> &[MethodName] {
        &self.names
    }

    /// The calls' timeout; a call's own deadline wins when it is sooner.
    pub fn timeout(mut self, timeout: Duration) -> MethodConfig {
        self.timeout = Some(timeout);
        self
    }

    /// Whether calls wait for ready, unless a call sets it itself.
    pub fn wait_for_ready(mut self, on: bool) -> MethodConfig {
        self.wait_for_ready = Some(on);
        self
    }

    /// The largest request message: it replaces the channel's default, and
    /// a limit the channel's builder set wins when it is smaller.
    pub fn max_request_message_bytes(mut self, bytes: usize) -> MethodConfig {
        self.max_request_message_bytes = Some(bytes);
        self
    }

    /// The largest response message: it replaces the channel's default (4
    /// MiB), and a limit the channel's builder set wins when it is smaller.
    pub fn max_response_message_bytes(mut self, bytes: usize) -> MethodConfig {
        self.max_response_message_bytes = Some(bytes);
        self
    }

    /// Retries failed calls with `policy` (replacing a hedging policy).
    pub fn retry(mut self, policy: RetryPolicy) -> MethodConfig {
        self.attempts = Some(AttemptPolicy::Retry(policy));
        self
    }

    /// Hedges calls with `policy` (replacing a retry policy). Calls whose
    /// request is one message (unary and server-streaming) are hedged; a
    /// call with a streamed request is sent once, as grpc-go sends every
    /// hedged call.
    pub fn hedging(mut self, policy: HedgingPolicy) -> MethodConfig {
        self.attempts = Some(AttemptPolicy::Hedging(policy));
        self
    }

    /// The retry policy, if the entry has one.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        match &self.attempts {
            Some(AttemptPolicy::Retry(p)) => Some(p),
            _ => None,
        }
    }

    /// The hedging policy, if the entry has one.
    pub fn hedging_policy(&self) -> Option<&HedgingPolicy> {
        match &self.attempts {
            Some(AttemptPolicy::Hedging(p)) => Some(p),
            _ => None,
        }
    }
}
