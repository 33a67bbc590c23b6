//! Name resolution: a channel's target becomes a list of addresses, and
//! perhaps a service config, per grpc/grpc `doc/naming.md`.
//!
//! A target is a URI, `scheme:[//authority/]endpoint`. The scheme picks a
//! resolver; a target whose scheme no resolver claims is resolved by DNS, as
//! if it were written `dns:///target`. Built in:
//!
//! | target | resolves to |
//! |---|---|
//! | `dns:[//dns-server/]host[:port]`, `host:port`, `http://host:port`, `https://host:port` | every A and AAAA record of `host` (default port 443), from `/etc/hosts` and `/etc/resolv.conf`'s name servers, or from `dns-server` alone (an IP address, default port 53): see [`DnsResolver`] |
//! | `ipv4:addr[:port][,addr[:port],...]` | those IPv4 addresses (default port 443) |
//! | `ipv6:addr` or `ipv6:[addr]:port`, comma-separated | those IPv6 addresses (default port 443) |
//! | `unix:path`, `unix:///absolute/path` | a Unix socket |
//! | `unix-abstract:name` | a Unix socket in Linux's abstract namespace |
//! | `passthrough:///host:port` | `host:port` as given, resolved by the system when connecting |
//!
//! Other schemes are added by implementing [`ResolverBuilder`] and
//! registering it, with [`register`] for every channel of the process or
//! [`ChannelBuilder::resolver`](crate::client::ChannelBuilder::resolver) for one
//! channel. A [`ManualResolver`] is one whose addresses the application
//! sets.
//!
//! A resolver pushes what it finds through the [`ResolverSink`] it is built
//! with, as often as it learns something new; the channel asks it to look
//! again with [`Resolver::resolve_now`] when a connection is lost or fails.

pub(crate) mod address;
mod dns;
mod dns_service_config;
mod fixed;
mod manual;
pub(crate) mod target;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

pub use address::Address;
pub use dns::DnsResolver;
pub use manual::ManualResolver;
pub use target::Target;

pub(crate) use target::parse as parse_target;

use crate::status::Status;

/// What a resolver found: the addresses of a target's servers, and the
/// service config to use with them, if the resolver has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolverState {
    addresses: Vec<Address>,
    service_config: Option<String>,
    service_config_error: Option<String>,
}

impl ResolverState {
    /// A state of these addresses, in the order the load-balancing policy
    /// should consider them.
    pub fn new(addresses: Vec<Address>) -> ResolverState {
        ResolverState {
            addresses,
            service_config: None,
            service_config_error: None,
        }
    }

    /// Adds a service config, in its JSON form (grpc/grpc
    /// `doc/service_config.md`).
    pub fn with_service_config(mut self, json: impl Into<String>) -> ResolverState {
        self.service_config = Some(json.into());
        self
    }

    /// Says that the resolver found a service config but could not read
    /// it (`why`): the channel keeps the config it had, as with a config
    /// that fails to parse (gRFC A21).
    pub fn with_service_config_error(mut self, why: impl Into<String>) -> ResolverState {
        self.service_config_error = Some(why.into());
        self
    }

    /// The addresses.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// The service config, in its JSON form, if the resolver gave one.
    pub fn service_config(&self) -> Option<&str> {
        self.service_config.as_deref()
    }

    /// Why the resolver could not read the service config it found, if it
    /// could not.
    pub fn service_config_error(&self) -> Option<&str> {
        self.service_config_error.as_deref()
    }
}

/// Where a resolver sends what it finds: cheap to clone, and safe to keep
/// in a task of the resolver's own. Sending to a channel that has gone idle
/// or been dropped does nothing.
#[derive(Clone)]
pub struct ResolverSink {
    pub(crate) tx: tokio::sync::mpsc::UnboundedSender<crate::client::controller::Event>,
    /// The channel asks the DNS resolver to look up service configs in TXT
    /// records ([`ChannelBuilder::dns_service_config`](crate::client::ChannelBuilder::dns_service_config)).
    pub(crate) dns_service_config: bool,
}

impl ResolverSink {
    /// Reports a new resolution. It replaces the previous one whole.
    pub fn update(&self, state: ResolverState) {
        let _ = self.tx.send(crate::client::controller::Event::Resolved(Ok(state)));
    }

    /// Reports that resolving failed. The channel keeps using the last
    /// addresses it was given; if it has none, calls fail with this status
    /// (which should be UNAVAILABLE, and say what went wrong).
    pub fn error(&self, status: Status) {
        let _ = self.tx.send(crate::client::controller::Event::Resolved(Err(status)));
    }
}

impl fmt::Debug for ResolverSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverSink").finish_non_exhaustive()
    }
}

/// A running resolution of one target, for one channel. Dropping it stops
/// it: a resolver that runs tasks of its own must end them on drop.
pub trait Resolver: Send + 'static {
    /// The channel asks for a fresh resolution, because a connection was
    /// lost or could not be made. A hint: the resolver may ignore it, or
    /// limit how often it acts on it. It must not block.
    fn resolve_now(&mut self) {}
}

/// Makes [`Resolver`]s for the targets of one URI scheme.
///
/// ```
/// use courier::client::resolver::{
///     Address, Resolver, ResolverBuilder, ResolverSink, ResolverState, Target,
/// };
/// use courier::Status;
///
/// /// `fixed:///anything` always resolves to two local servers.
/// struct Fixed;
/// struct Done;
/// impl Resolver for Done {}
///
/// impl ResolverBuilder for Fixed {
///     fn scheme(&self) -> &str {
///         "fixed"
///     }
///     fn build(&self, _target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
///         sink.update(ResolverState::new(vec![
///             Address::socket("127.0.0.1:50051".parse().unwrap()),
///             Address::socket("127.0.0.1:50052".parse().unwrap()),
///         ]));
///         Ok(Box::new(Done))
///     }
/// }
///
/// courier::client::resolver::register(Fixed);
/// let channel = courier::Channel::lazy("fixed:///servers").unwrap();
/// # let _ = channel;
/// ```
pub trait ResolverBuilder: Send + Sync + 'static {
    /// The URI scheme this builder resolves, in lowercase, without the
    /// colon: `"dns"`, `"consul"`.
    fn scheme(&self) -> &str;

    /// Starts resolving `target`, reporting to `sink`. Called each time the
    /// channel leaves IDLE, from within a Tokio runtime. An error here
    /// fails the channel's calls until it next leaves IDLE.
    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status>;

    /// The `:authority` calls carry when the channel sets none: by default
    /// the target's endpoint.
    fn default_authority(&self, target: &Target) -> String {
        target.endpoint().to_string()
    }

    /// Checks a target when the channel is built, so that a malformed one
    /// is an error then rather than on the first call. By default, every
    /// target is accepted.
    fn check(&self, target: &Target) -> Result<(), Status> {
        let _ = target;
        Ok(())
    }
}

/// The process-wide registry of resolver builders, by scheme.
fn registry() -> &'static RwLock<HashMap<String, Arc<dyn ResolverBuilder>>> {
    static REGISTRY: OnceLock<RwLock<HashMap<String, Arc<dyn ResolverBuilder>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let builtin: [Arc<dyn ResolverBuilder>; 6] = [
            Arc::new(DnsResolver::new()),
            Arc::new(fixed::IPV4),
            Arc::new(fixed::IPV6),
            Arc::new(fixed::UNIX),
            Arc::new(fixed::UNIX_ABSTRACT),
            Arc::new(fixed::PASSTHROUGH),
        ];
        let map = builtin.into_iter().map(|b| (b.scheme().to_string(), b)).collect();
        RwLock::new(map)
    })
}

/// Registers `builder` for its scheme, for every channel built afterwards
/// in this process. It replaces any builder registered for that scheme,
/// built-in ones included.
pub fn register(builder: impl ResolverBuilder) {
    let scheme = builder.scheme().to_ascii_lowercase();
    registry()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(scheme, Arc::new(builder));
}

/// The builder registered for `scheme`, if any.
pub(crate) fn lookup(scheme: &str) -> Option<Arc<dyn ResolverBuilder>> {
    registry()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(scheme)
        .cloned()
}

/// The DNS builder, for targets with no registered scheme.
pub(crate) fn dns_builder() -> Arc<dyn ResolverBuilder> {
    lookup("dns").unwrap_or_else(|| Arc::new(DnsResolver::new()))
}
