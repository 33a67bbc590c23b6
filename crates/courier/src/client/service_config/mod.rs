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

mod json;
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
    pub(crate) retry_throttling: Option<RetryThrottling>,
    pub(crate) health_check_service: Option<String>,
    methods: Vec<Arc<MethodConfig>>,
    /// `/service/method` → index in `methods`.
    by_method: HashMap<String, usize>,
    /// `service` → index in `methods`.
    by_service: HashMap<String, usize>,
    /// The `{}` entry.
    default: Option<usize>,
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
            match (name.service_name(), name.method_name()) {
                (None, _) => {
                    self.default.get_or_insert(index);
                }
                (Some(service), None) => {
                    self.by_service.entry(service.to_string()).or_insert(index);
                }
                (Some(service), Some(method)) => {
                    self.by_method.entry(format!("/{service}/{method}")).or_insert(index);
                }
            }
        }
        self.methods.push(config);
        self
    }

    /// The load-balancing policy the channel uses instead of the one its
    /// builder set (`loadBalancingConfig`).
    pub fn load_balancing(mut self, policy: impl Into<Policy>) -> ServiceConfig {
        self.load_balancing = Some(policy.into());
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

    /// The method configs, in order.
    pub(crate) fn methods(&self) -> &[Arc<MethodConfig>] {
        &self.methods
    }
}
