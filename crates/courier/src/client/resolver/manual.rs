//! A resolver whose addresses the application sets.

use std::sync::{Arc, Mutex};

use super::{Address, Resolver, ResolverBuilder, ResolverSink, ResolverState, Target};
use crate::status::Status;

/// A resolver whose address list the application updates, for service
/// discovery Courier does not know: give it to a channel with
/// [`ChannelBuilder::resolver`](crate::client::ChannelBuilder::resolver) and
/// call [`ManualResolver::update`] whenever the list changes. Clones share
/// the list, and every channel built with it follows it.
///
/// ```
/// # async fn run() -> Result<(), courier::Status> {
/// use courier::client::resolver::{Address, ManualResolver};
/// let servers = ManualResolver::new("backends");
/// servers.update_addresses(vec![Address::socket("127.0.0.1:50051".parse().unwrap())]);
/// let channel = courier::Channel::builder("backends:///")
///     .resolver(servers.clone())
///     .load_balancing(courier::client::balancer::Policy::round_robin())
///     .connect_lazy()?;
/// // Later, when a server is added:
/// servers.update_addresses(vec![
///     Address::socket("127.0.0.1:50051".parse().unwrap()),
///     Address::socket("127.0.0.1:50052".parse().unwrap()),
/// ]);
/// # let _ = channel; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ManualResolver {
    scheme: Arc<str>,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    /// The last state set, given to each channel as it starts resolving.
    state: Option<Result<ResolverState, Status>>,
    /// The channels resolving now, by registration number.
    sinks: Vec<(u64, ResolverSink)>,
    next_id: u64,
}

impl std::fmt::Debug for ManualResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualResolver").field("scheme", &self.scheme).finish()
    }
}

impl ManualResolver {
    /// A resolver for targets of `scheme`, such as `"backends"` for the
    /// target `backends:///`. It has no addresses until the first update;
    /// calls made before it wait (with wait-for-ready) or fail with
    /// UNAVAILABLE.
    pub fn new(scheme: impl Into<String>) -> ManualResolver {
        ManualResolver {
            scheme: scheme.into().to_ascii_lowercase().into(),
            shared: Arc::default(),
        }
    }

    /// Replaces the state every channel using this resolver sees.
    pub fn update(&self, state: ResolverState) {
        self.publish(Ok(state));
    }

    /// Replaces the address list, with no service config.
    pub fn update_addresses(&self, addresses: Vec<Address>) {
        self.update(ResolverState::new(addresses));
    }

    /// Reports a resolution error: channels keep their last addresses, and
    /// a channel that has none fails its calls with `status`.
    pub fn report_error(&self, status: Status) {
        self.publish(Err(status));
    }

    fn publish(&self, state: Result<ResolverState, Status>) {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.sinks.retain(|(_, sink)| !sink.tx.is_closed());
        for (_, sink) in &shared.sinks {
            send(sink, &state);
        }
        shared.state = Some(state);
    }
}

fn send(sink: &ResolverSink, state: &Result<ResolverState, Status>) {
    match state {
        Ok(state) => sink.update(state.clone()),
        Err(status) => sink.error(status.clone()),
    }
}

/// One channel's use of a [`ManualResolver`]; dropping it stops updates.
struct Registration {
    id: u64,
    shared: Arc<Mutex<Shared>>,
}

impl Resolver for Registration {}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.sinks.retain(|(id, _)| *id != self.id);
    }
}

impl ResolverBuilder for ManualResolver {
    fn scheme(&self) -> &str {
        &self.scheme
    }

    fn build(&self, _target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = &shared.state {
            send(&sink, state);
        }
        let id = shared.next_id;
        shared.next_id += 1;
        shared.sinks.push((id, sink));
        Ok(Box::new(Registration {
            id,
            shared: self.shared.clone(),
        }))
    }

    fn default_authority(&self, _target: &Target) -> String {
        "localhost".into()
    }
}
