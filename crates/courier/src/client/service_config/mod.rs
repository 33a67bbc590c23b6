//! Service config (grpc/grpc `doc/service_config.md`): the settings a
//! service's owner gives its clients, per method (timeouts, wait-for-ready,
//! message size limits, retry and hedging policies, gRFC A6) and per channel
//! (the load-balancing policy, retry throttling, client-side health
//! checking, gRFC A17).
//!
//! A channel takes a default config from its builder
//! ([`ChannelBuilder::service_config`](crate::client::ChannelBuilder::service_config)),
//! and uses the one its resolver returns, if any, in its place. Configs are
//! written in the spec's JSON form or built as Rust values:
//!
//! ```
//! use std::time::Duration;
//! use courier::Code;
//! use courier::client::service_config::{MethodConfig, MethodName, RetryPolicy, ServiceConfig};
//!
//! let retry = RetryPolicy::new(
//!     4,
//!     Duration::from_millis(100),
//!     Duration::from_secs(1),
//!     2.0,
//!     [Code::Unavailable],
//! );
//! let config = ServiceConfig::new().method(
//!     MethodConfig::new([MethodName::service("helloworld.Greeter")])
//!         .timeout(Duration::from_secs(2))
//!         .retry(retry),
//! );
//! assert!(config.method_config("/helloworld.Greeter/SayHello").is_some());
//! assert!(config.method_config("/other.Service/Call").is_none());
//! ```

mod field;
mod json;
#[cfg(test)]
mod json_tests;
mod method;
mod policy;

use std::collections::HashMap;
use std::sync::Arc;

pub use method::{MethodConfig, MethodName};
pub(crate) use policy::AttemptPolicy;
pub use policy::{HedgingPolicy, RetryPolicy, RetryThrottling};

use super::balancer::Policy;
use crate::status::Status;

/// The most attempts a retry or hedging policy gets, whatever it asks for
/// (gRFC A6's client-side limit).
pub const MAX_ATTEMPTS: u32 = 5;

/// A parsed, validated service config.
#[derive(Clone, Debug, Default)]
pub struct ServiceConfig {
    pub(crate) load_balancing: Option<Policy>,
    /// For a policy from JSON: a text equal for equal choices, so that a
    /// channel given the same choice again keeps its running policy.
    pub(crate) load_balancing_key: Option<String>,
    pub(crate) retry_throttling: Option<RetryThrottling>,
    pub(crate) health_check_service: Option<String>,
    methods: Vec<Arc<MethodConfig>>,
    /// `/service/method` → index in `methods`.
    by_method: HashMap<String, usize>,
    /// `service` → index in `methods`.
    by_service: HashMap<String, usize>,
    /// The `{}` entry.
    default: Option<usize>,
    /// A name that two entries give, which makes the config invalid.
    duplicate: Option<MethodName>,
}

impl ServiceConfig {
    /// An empty config: every method with the channel's own settings.
    pub fn new() -> ServiceConfig {
        ServiceConfig::default()
    }

    /// Parses a config in the spec's JSON form. Unknown fields are ignored,
    /// as the spec requires; a field with a bad value fails with
    /// INVALID_ARGUMENT and a message naming it.
    pub fn from_json(text: &str) -> Result<ServiceConfig, Status> {
        json::parse(text)
    }

    /// Adds a method config. Fails, at the channel builder, if one of its
    /// names is already taken by another entry.
    pub fn method(mut self, config: MethodConfig) -> ServiceConfig {
        let config = Arc::new(config);
        let index = self.methods.len();
        for name in config.names() {
            // The first entry to give a name keeps it.
            let taken = match (name.service_name(), name.method_name()) {
                (None, _) => self.default.replace(self.default.unwrap_or(index)).is_some(),
                (Some(service), None) => !insert_new(&mut self.by_service, service.to_string(), index),
                (Some(service), Some(method)) => {
                    !insert_new(&mut self.by_method, format!("/{service}/{method}"), index)
                }
            };
            if taken {
                self.duplicate.get_or_insert_with(|| name.clone());
            }
        }
        self.methods.push(config);
        self
    }

    /// The load-balancing policy the channel uses instead of the one its
    /// builder set (`loadBalancingConfig`).
    pub fn load_balancing(mut self, policy: impl Into<Policy>) -> ServiceConfig {
        self.load_balancing = Some(policy.into());
        self.load_balancing_key = None;
        self
    }

    /// Retry and hedging throttling for the channel (`retryThrottling`).
    pub fn retry_throttling(mut self, throttling: RetryThrottling) -> ServiceConfig {
        self.retry_throttling = Some(throttling);
        self
    }

    /// Client-side health checking (gRFC A17): the service name each
    /// subchannel watches with `grpc.health.v1.Health/Watch`, under a policy
    /// that health-checks (round_robin). `""` is the server as a whole.
    pub fn health_check_service(mut self, service: impl Into<String>) -> ServiceConfig {
        self.health_check_service = Some(service.into());
        self
    }

    /// The method config that applies to `path` (`/package.Service/Method`):
    /// the entry naming the method, else the one naming its service, else
    /// the default (`{}`) entry.
    pub fn method_config(&self, path: &str) -> Option<&MethodConfig> {
        self.method_config_arc(path).map(|c| &**c)
    }

    pub(crate) fn method_config_arc(&self, path: &str) -> Option<&Arc<MethodConfig>> {
        if self.methods.is_empty() {
            return None;
        }
        let index = self.by_method.get(path).copied().or_else(|| {
            let service = path.strip_prefix('/')?.split_once('/')?.0;
            self.by_service.get(service).copied()
        });
        index.or(self.default).map(|i| &self.methods[i])
    }

    /// Fails with INVALID_ARGUMENT if two method configs give one name.
    pub(crate) fn check(&self) -> Result<(), Status> {
        match &self.duplicate {
            None => Ok(()),
            Some(name) => Err(Status::invalid_argument(format!(
                "service config: two method configs name {}; each name may be given once",
                describe(name)
            ))),
        }
    }

    /// The policy a channel runs under this config: its own, else
    /// `fallback` (the builder's).
    pub(crate) fn chosen_policy(&self, fallback: &Policy) -> ChosenPolicy {
        match &self.load_balancing {
            Some(policy) => ChosenPolicy {
                policy: policy.clone(),
                key: self.load_balancing_key.clone(),
            },
            None => ChosenPolicy {
                policy: fallback.clone(),
                key: None,
            },
        }
    }
}

/// Inserts `key` unless it is there; false if it was.
fn insert_new(map: &mut HashMap<String, usize>, key: String, index: usize) -> bool {
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(_) => false,
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(index);
            true
        }
    }
}

/// A name as an error tells it.
fn describe(name: &MethodName) -> String {
    match (name.service_name(), name.method_name()) {
        (None, _) => "every method ({})".to_string(),
        (Some(service), None) => format!("the service {service:?}"),
        (Some(service), Some(method)) => format!("the method {service:?} {method:?}"),
    }
}

/// The load-balancing policy a channel runs, and whether another choice is
/// the same one: equal JSON for policies from JSON, the same value
/// otherwise.
#[derive(Clone, Debug)]
pub(crate) struct ChosenPolicy {
    pub(crate) policy: Policy,
    key: Option<String>,
}

impl ChosenPolicy {
    /// Whether `other` asks for this same policy, so that the running one
    /// may stay.
    pub(crate) fn same_as(&self, other: &ChosenPolicy) -> bool {
        match (&self.key, &other.key) {
            (Some(a), Some(b)) => a == b,
            (None, None) => Arc::ptr_eq(&self.policy.0, &other.policy.0),
            _ => false,
        }
    }
}
