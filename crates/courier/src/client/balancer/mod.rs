//! Load balancing: a policy keeps subchannels to a target's addresses and
//! gives the channel a picker, which chooses a subchannel for each call.
//!
//! The channel runs its policy on one task, its control loop: the policy's
//! methods are called one at a time and must not block. Each time the
//! policy's view changes it hands the channel a new [`Picker`] and the
//! channel's [`ConnectivityState`]. Calls read the current picker without a
//! lock; a call whose pick is [`Pick::Queue`] waits for the next picker.
//!
//! Built in, chosen by [`Policy`]: [`PickFirst`] (`pick_first`, the
//! default) and [`RoundRobin`] (`round_robin`). A policy of one's own
//! implements [`LoadBalancer`] and [`LoadBalancerBuilder`], and is chosen
//! with [`Policy::custom`], or registered by name with [`register`].

mod pick_first;
mod round_robin;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

pub use pick_first::PickFirst;
pub use round_robin::RoundRobin;

pub use super::connectivity::ConnectivityState;
use super::resolver::{Address, ResolverState};
pub use super::subchannel::{Subchannel, SubchannelState};
use crate::metadata::Metadata;
use crate::status::Status;

/// What a policy may ask of its channel.
pub trait ChannelControl {
    /// A new subchannel to `address`, IDLE until
    /// [`Subchannel::connect`]. Its state changes reach
    /// [`LoadBalancer::subchannel_update`].
    fn new_subchannel(&mut self, address: &Address) -> Subchannel;

    /// A new subchannel to `address`, as [`ChannelControl::new_subchannel`]
    /// makes, that also checks its backend's health when the channel's
    /// service config asks for it (`healthCheckConfig`, gRFC A17) and the
    /// channel does not disable it
    /// ([`ChannelBuilder::disable_health_check`](crate::client::ChannelBuilder::disable_health_check)).
    /// Once connected, such a subchannel watches the backend's
    /// `grpc.health.v1.Health` status for the config's service name, and is
    /// READY only while the backend says SERVING: otherwise it reports
    /// TRANSIENT_FAILURE, with a status that says why, while its connection
    /// stays up. A backend without the health service counts as healthy.
    ///
    /// [`RoundRobin`] makes these; [`PickFirst`] does not, as A17
    /// specifies. By default, the same as
    /// [`new_subchannel`](ChannelControl::new_subchannel).
    fn new_health_checked_subchannel(&mut self, address: &Address) -> Subchannel {
        self.new_subchannel(address)
    }

    /// Replaces the channel's picker, and sets the channel's state.
    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>);

    /// Asks the resolver to resolve again (a hint; DNS acts on it at most
    /// every 30 seconds by default, see
    /// [`DnsResolver`](crate::client::resolver::DnsResolver)).
    fn request_resolution(&mut self);
}

/// A load-balancing policy, for one channel.
pub trait LoadBalancer: Send + 'static {
    /// The resolver found these addresses (never an empty list: the channel
    /// reports that as [`LoadBalancer::resolver_error`]).
    fn resolver_update(&mut self, state: &ResolverState, channel: &mut dyn ChannelControl);

    /// The resolver failed. A policy with addresses keeps using them; one
    /// without should fail calls with `error`.
    fn resolver_error(&mut self, error: &Status, channel: &mut dyn ChannelControl);

    /// One of this policy's subchannels changed state.
    fn subchannel_update(&mut self, subchannel: &Subchannel, state: &SubchannelState, channel: &mut dyn ChannelControl);

    /// A call found the policy IDLE (it last reported
    /// [`ConnectivityState::Idle`]) and waits: start connecting. By
    /// default, nothing.
    fn exit_idle(&mut self, channel: &mut dyn ChannelControl) {
        let _ = channel;
    }
}

/// Makes a policy for each channel that uses it (again each time the
/// channel leaves IDLE).
pub trait LoadBalancerBuilder: Send + Sync + 'static {
    /// The policy's name, as a service config's `loadBalancingConfig`
    /// names it: `"pick_first"`, `"round_robin"`.
    fn name(&self) -> &str;

    /// A new instance of the policy.
    fn build(&self) -> Box<dyn LoadBalancer>;
}

/// What a picker knows of the call it picks for.
#[derive(Debug)]
pub struct PickInfo<'a> {
    pub(crate) path: &'a str,
    pub(crate) metadata: &'a Metadata,
}

impl<'a> PickInfo<'a> {
    /// The method, `/package.Service/Method`.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The call's metadata, after interceptors: for example the key of a
    /// policy that hashes calls onto backends.
    pub fn metadata(&self) -> &'a Metadata {
        self.metadata
    }
}

/// A picker's choice for one call.
#[derive(Debug)]
pub enum Pick {
    /// Send the call on this subchannel. If it turns out not to be READY,
    /// the call waits for the next picker.
    Ready(Subchannel),
    /// No subchannel yet: the call waits for the next picker.
    Queue,
    /// Fail the call with this status, unless it waits for ready, in which
    /// case it waits for the next picker. The status should be UNAVAILABLE
    /// and say why.
    Fail(Status),
}

/// Chooses a subchannel for each call. Called on every call, from any
/// thread, so it must be quick and must not block.
pub trait Picker: Send + Sync + 'static {
    /// The choice for one call.
    fn pick(&self, call: &PickInfo<'_>) -> Pick;
}

/// A picker that makes every call wait for the next one: a policy that is
/// connecting or IDLE.
pub(crate) struct QueuePicker;

impl Picker for QueuePicker {
    fn pick(&self, _call: &PickInfo<'_>) -> Pick {
        Pick::Queue
    }
}

/// A picker that fails every call (queues it, with wait-for-ready) with one
/// status: a policy in TRANSIENT_FAILURE.
#[derive(Debug)]
pub struct FailPicker(pub Status);

impl Picker for FailPicker {
    fn pick(&self, _call: &PickInfo<'_>) -> Pick {
        Pick::Fail(self.0.clone())
    }
}

/// A channel's load-balancing policy, chosen by
/// [`ChannelBuilder::load_balancing`](crate::client::ChannelBuilder::load_balancing).
///
/// ```
/// use courier::client::balancer::{PickFirst, Policy};
/// let _ = courier::Channel::builder("dns:///backends.example:50051")
///     .load_balancing(Policy::round_robin());
/// let _ = courier::Channel::builder("ipv4:10.0.0.1:80,10.0.0.2:80")
///     .load_balancing(PickFirst::new().shuffle_address_list(true));
/// ```
#[derive(Clone)]
pub struct Policy(pub(crate) Arc<dyn LoadBalancerBuilder>);

impl Policy {
    /// `pick_first`, the default: one connection, to the first address
    /// that accepts (gRFC A62).
    pub fn pick_first() -> Policy {
        Policy(Arc::new(PickFirst::new()))
    }

    /// `round_robin`: a connection to every address, and calls rotated
    /// over the READY ones.
    pub fn round_robin() -> Policy {
        Policy(Arc::new(RoundRobin))
    }

    /// A policy of one's own.
    pub fn custom(builder: impl LoadBalancerBuilder) -> Policy {
        Policy(Arc::new(builder))
    }

    /// The policy registered as `name` (built in: `pick_first` and
    /// `round_robin`), if there is one.
    pub fn named(name: &str) -> Option<Policy> {
        registry()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .map(Policy)
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        self.0.name()
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Policy({})", self.0.name())
    }
}

/// Parses a policy by its registered name, as [`Policy::named`] finds it,
/// so that a command line or a config file can choose one:
///
/// ```
/// use courier::client::balancer::Policy;
/// let policy: Policy = "round_robin".parse().unwrap();
/// assert_eq!(policy.name(), "round_robin");
/// assert!("least_loaded".parse::<Policy>().is_err());
/// ```
impl std::str::FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(name: &str) -> Result<Policy, UnknownPolicy> {
        Policy::named(name).ok_or_else(|| UnknownPolicy(name.to_string()))
    }
}

/// A policy name that no registered policy has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPolicy(pub String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<String> = registry()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        write!(
            f,
            "no load-balancing policy is named {:?} (registered: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownPolicy {}

impl<B: LoadBalancerBuilder> From<B> for Policy {
    fn from(builder: B) -> Policy {
        Policy(Arc::new(builder))
    }
}

fn registry() -> &'static RwLock<HashMap<String, Arc<dyn LoadBalancerBuilder>>> {
    static REGISTRY: OnceLock<RwLock<HashMap<String, Arc<dyn LoadBalancerBuilder>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let builtin: [Arc<dyn LoadBalancerBuilder>; 2] = [Arc::new(PickFirst::new()), Arc::new(RoundRobin)];
        RwLock::new(builtin.into_iter().map(|b| (b.name().to_string(), b)).collect())
    })
}

/// Registers `builder` under its name, so that [`Policy::named`] and a
/// service config can choose it. It replaces a policy of the same name.
pub fn register(builder: impl LoadBalancerBuilder) {
    registry()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(builder.name().to_string(), Arc::new(builder));
}
