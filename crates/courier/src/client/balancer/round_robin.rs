//! `round_robin`: a subchannel to every address, kept connected, with calls
//! rotated over the READY ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    ChannelControl, ConnectivityState, FailPicker, LoadBalancer, LoadBalancerBuilder, Pick, PickInfo, Picker,
    QueuePicker, Subchannel, SubchannelState,
};
use crate::client::resolver::ResolverState;
use crate::status::Status;

/// The `round_robin` policy.
///
/// Every address gets a subchannel, which reconnects whenever it goes
/// IDLE. Calls rotate over the READY subchannels; one in TRANSIENT_FAILURE
/// is skipped until it reconnects. When the channel's service config asks
/// for health checking (gRFC A17), a subchannel whose backend reports
/// itself unhealthy is skipped too, until it reports SERVING again. The
/// channel is READY while any subchannel is; once all have failed it stays
/// in TRANSIENT_FAILURE until one is READY again.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl LoadBalancerBuilder for RoundRobin {
    fn name(&self) -> &str {
        "round_robin"
    }

    fn build(&self) -> Box<dyn LoadBalancer> {
        Box::new(Balancer {
            endpoints: Vec::new(),
            reported: None,
            last_error: None,
        })
    }
}

struct Endpoint {
    subchannel: Subchannel,
    state: ConnectivityState,
}

struct Balancer {
    endpoints: Vec<Endpoint>,
    /// The state last reported, and the READY subchannels its picker holds.
    reported: Option<(ConnectivityState, Vec<Subchannel>)>,
    last_error: Option<Status>,
}

/// Rotates calls over READY subchannels.
struct Rotation {
    ready: Vec<Subchannel>,
    next: AtomicUsize,
}

impl Picker for Rotation {
    fn pick(&self, _call: &PickInfo<'_>) -> Pick {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.ready.len();
        Pick::Ready(self.ready[i].clone())
    }
}

impl Balancer {
    /// Reports the aggregate state, with a new picker if it changed.
    fn report(&mut self, channel: &mut dyn ChannelControl) {
        let ready: Vec<Subchannel> = self
            .endpoints
            .iter()
            .filter(|e| e.state == ConnectivityState::Ready)
            .map(|e| e.subchannel.clone())
            .collect();
        let mut state = ConnectivityState::aggregate(self.endpoints.iter().map(|e| e.state));
        // Sticky TRANSIENT_FAILURE: only a READY subchannel ends it.
        if state != ConnectivityState::Ready && matches!(self.reported, Some((ConnectivityState::TransientFailure, _)))
        {
            state = ConnectivityState::TransientFailure;
        }
        if state != ConnectivityState::TransientFailure
            && let Some((was, picked)) = &self.reported
            && *was == state
            && *picked == ready
        {
            return;
        }
        let picker: Arc<dyn Picker> = match state {
            ConnectivityState::Ready => Arc::new(Rotation {
                // Start each new rotation somewhere else, so that many
                // clients do not all begin on the same backend.
                next: AtomicUsize::new((crate::client::backoff::random_unit() * ready.len() as f64) as usize),
                ready: ready.clone(),
            }),
            ConnectivityState::TransientFailure => Arc::new(FailPicker(
                self.last_error
                    .clone()
                    .unwrap_or_else(|| Status::unavailable("no address could be connected to")),
            )),
            _ => Arc::new(QueuePicker),
        };
        self.reported = Some((state, ready));
        channel.update_picker(state, picker);
    }
}

impl LoadBalancer for Balancer {
    fn resolver_update(&mut self, state: &ResolverState, channel: &mut dyn ChannelControl) {
        let mut old = std::mem::take(&mut self.endpoints);
        for address in state.addresses() {
            if self.endpoints.iter().any(|e| e.subchannel.address() == address) {
                continue;
            }
            let endpoint = match old.iter().position(|e| e.subchannel.address() == address) {
                Some(i) => old.swap_remove(i),
                None => {
                    let subchannel = channel.new_health_checked_subchannel(address);
                    subchannel.connect();
                    // Asked to connect, it counts as CONNECTING: reported
                    // IDLE, the channel would say it is not trying.
                    Endpoint {
                        subchannel,
                        state: ConnectivityState::Connecting,
                    }
                }
            };
            self.endpoints.push(endpoint);
        }
        // Subchannels to addresses that went are dropped with `old`.
        drop(old);
        self.report(channel);
    }

    fn resolver_error(&mut self, error: &Status, channel: &mut dyn ChannelControl) {
        if self.endpoints.is_empty() {
            self.last_error = Some(error.clone());
            self.reported = Some((ConnectivityState::TransientFailure, Vec::new()));
            channel.update_picker(ConnectivityState::TransientFailure, Arc::new(FailPicker(error.clone())));
        }
    }

    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        channel: &mut dyn ChannelControl,
    ) {
        let Some(endpoint) = self.endpoints.iter_mut().find(|e| e.subchannel == *subchannel) else {
            return;
        };
        endpoint.state = state.state();
        match state.state() {
            ConnectivityState::Idle => {
                subchannel.connect();
                endpoint.state = ConnectivityState::Connecting;
                channel.request_resolution();
            }
            ConnectivityState::TransientFailure => {
                self.last_error = state.error().cloned();
                channel.request_resolution();
            }
            _ => {}
        }
        self.report(channel);
    }
}
