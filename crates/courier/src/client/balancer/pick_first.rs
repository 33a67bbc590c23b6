//! `pick_first`, the default policy (gRFC A62), with Happy Eyeballs
//! (gRFC A61): connect to the target's addresses in order, starting the
//! next attempt when one fails or after 250 ms without an answer, and send
//! every call to the first that connects.

use std::sync::Arc;
use std::time::Duration;

use super::{
    ChannelControl, ConnectivityState, FailPicker, LoadBalancer, LoadBalancerBuilder, Pick, PickInfo, Picker,
    QueuePicker, Subchannel, SubchannelState,
};
use crate::client::resolver::{Address, ResolverState};
use crate::status::Status;
use crate::streaming::AbortOnDrop;

/// How long an attempt runs alone before the next address is tried too:
/// gRFC A61's Connection Attempt Delay.
pub(crate) const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The `pick_first` policy, and its one option.
///
/// Addresses are tried in the order the resolver gives them (after
/// shuffling, if asked), with the two IP families interleaved. Once every
/// address has failed, the channel stays in TRANSIENT_FAILURE, retrying
/// each address as its backoff ends, until one connects: it does not flap
/// to CONNECTING. When the connection is lost the channel goes IDLE, and the
/// next call starts over from the first address. It does not health-check
/// its subchannels, whatever the service config says (gRFC A17).
#[derive(Clone, Debug, Default)]
pub struct PickFirst {
    shuffle: bool,
}

impl PickFirst {
    /// `pick_first` with the addresses in the resolver's order.
    pub fn new() -> PickFirst {
        PickFirst::default()
    }

    /// Shuffles each new address list first (A62's `shuffleAddressList`),
    /// so that many clients of one name spread over its servers.
    pub fn shuffle_address_list(mut self, on: bool) -> PickFirst {
        self.shuffle = on;
        self
    }
}

impl LoadBalancerBuilder for PickFirst {
    fn name(&self) -> &str {
        "pick_first"
    }

    fn build(&self) -> Box<dyn LoadBalancer> {
        Box::new(Balancer {
            shuffle: self.shuffle,
            addresses: Vec::new(),
            attempts: Vec::new(),
            phase: Phase::Idle,
            next: 0,
            timer: None,
            last_error: None,
            failures: 0,
        })
    }
}

/// Where the policy is.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// No connection and none wanted: waiting for a call, or for addresses.
    Idle,
    /// The first pass over the addresses.
    Connecting,
    /// Connected to `attempts[0]`, the only subchannel kept.
    Ready,
    /// Every address failed; retrying each as its backoff ends.
    TransientFailure,
}

/// One address being tried, and what its subchannel last reported.
struct Attempt {
    subchannel: Subchannel,
    state: ConnectivityState,
    /// Has failed in this pass.
    failed: bool,
}

struct Balancer {
    shuffle: bool,
    /// The addresses, ordered as they are tried.
    addresses: Vec<Address>,
    attempts: Vec<Attempt>,
    phase: Phase,
    /// The next attempt of the pass to start.
    next: usize,
    /// Starts the next attempt once the current one has run alone for
    /// [`CONNECTION_ATTEMPT_DELAY`].
    timer: Option<AbortOnDrop>,
    last_error: Option<Status>,
    /// Failures while in TRANSIENT_FAILURE, to ask for a new resolution
    /// once per round of them.
    failures: usize,
}

/// Calls go to one subchannel.
struct Connected(Subchannel);

impl Picker for Connected {
    fn pick(&self, _call: &PickInfo<'_>) -> Pick {
        Pick::Ready(self.0.clone())
    }
}

/// Orders addresses as gRFC A61 says: the family of the first address
/// first, then alternating, without duplicates.
fn interleave(addresses: &[Address]) -> Vec<Address> {
    let mut unique: Vec<&Address> = Vec::with_capacity(addresses.len());
    for a in addresses {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    let Some(first) = unique.first() else { return Vec::new() };
    let first_v6 = first.is_ipv6();
    let (mut same, mut other): (Vec<&Address>, Vec<&Address>) = unique.iter().partition(|a| a.is_ipv6() == first_v6);
    same.reverse();
    other.reverse();
    let mut out = Vec::with_capacity(unique.len());
    loop {
        match (same.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b).cloned()),
        }
    }
}

/// Shuffles in place (Fisher-Yates).
fn shuffle(addresses: &mut [Address]) {
    for i in (1..addresses.len()).rev() {
        let j = ((crate::client::backoff::random_unit() * (i + 1) as f64) as usize).min(i);
        addresses.swap(i, j);
    }
}

impl Balancer {
    fn find(&self, subchannel: &Subchannel) -> Option<usize> {
        self.attempts.iter().position(|a| a.subchannel == *subchannel)
    }

    /// Starts a pass over the addresses, keeping subchannels to addresses
    /// that stay.
    fn start_pass(&mut self, channel: &mut dyn ChannelControl) {
        let mut old = std::mem::take(&mut self.attempts);
        for address in &self.addresses {
            let attempt = match old.iter().position(|a| a.subchannel.address() == address) {
                Some(i) => {
                    let mut kept = old.swap_remove(i);
                    kept.failed = false;
                    kept
                }
                None => Attempt {
                    subchannel: channel.new_subchannel(address),
                    state: ConnectivityState::Idle,
                    failed: false,
                },
            };
            self.attempts.push(attempt);
        }
        self.next = 0;
        self.timer = None;
        self.failures = 0;
        self.start_next(channel);
    }

    /// Starts the pass's next attempt, skipping addresses still backing
    /// off; ends the pass when none is left and none is running.
    fn start_next(&mut self, channel: &mut dyn ChannelControl) {
        self.timer = None;
        while self.next < self.attempts.len() {
            let i = self.next;
            self.next += 1;
            let attempt = &self.attempts[i];
            match attempt.state {
                ConnectivityState::Idle | ConnectivityState::Connecting => {
                    attempt.subchannel.connect();
                    self.arm_timer();
                    return;
                }
                ConnectivityState::Ready => {
                    let subchannel = attempt.subchannel.clone();
                    self.select(&subchannel, channel);
                    return;
                }
                // Still backing off from an earlier failure: this pass
                // counts it as failed.
                _ => self.attempts[i].failed = true,
            }
        }
        self.end_pass_if_done(channel);
    }

    /// After [`CONNECTION_ATTEMPT_DELAY`], connects the pass's next address
    /// as well; its CONNECTING report then moves the pass on.
    fn arm_timer(&mut self) {
        let Some(next) = self.attempts.get(self.next).map(|a| a.subchannel.clone()) else {
            return;
        };
        let task = tokio::spawn(async move {
            tokio::time::sleep(CONNECTION_ATTEMPT_DELAY).await;
            next.connect();
        });
        self.timer = Some(AbortOnDrop(task.abort_handle()));
    }

    /// Ends the first pass once every address has failed.
    fn end_pass_if_done(&mut self, channel: &mut dyn ChannelControl) {
        if self.phase != Phase::Connecting || self.next < self.attempts.len() {
            return;
        }
        if self.attempts.iter().any(|a| !a.failed) {
            return;
        }
        self.phase = Phase::TransientFailure;
        self.report_failure(channel);
        channel.request_resolution();
        // Sticky TRANSIENT_FAILURE: retry every address whose backoff is over.
        for attempt in &self.attempts {
            if attempt.state == ConnectivityState::Idle {
                attempt.subchannel.connect();
            }
        }
    }

    fn report_failure(&self, channel: &mut dyn ChannelControl) {
        let error = self
            .last_error
            .clone()
            .unwrap_or_else(|| Status::unavailable("no address could be connected to"));
        channel.update_picker(ConnectivityState::TransientFailure, Arc::new(FailPicker(error)));
    }

    /// Uses `subchannel` for every call, and drops the others.
    fn select(&mut self, subchannel: &Subchannel, channel: &mut dyn ChannelControl) {
        self.timer = None;
        self.attempts.retain(|a| a.subchannel == *subchannel);
        self.phase = Phase::Ready;
        channel.update_picker(ConnectivityState::Ready, Arc::new(Connected(subchannel.clone())));
    }

    fn go_idle(&mut self, channel: &mut dyn ChannelControl) {
        self.timer = None;
        self.attempts.clear();
        self.phase = Phase::Idle;
        channel.update_picker(ConnectivityState::Idle, Arc::new(QueuePicker));
    }
}

impl LoadBalancer for Balancer {
    fn resolver_update(&mut self, state: &ResolverState, channel: &mut dyn ChannelControl) {
        let mut addresses = state.addresses().to_vec();
        if self.shuffle {
            shuffle(&mut addresses);
        }
        self.addresses = interleave(&addresses);
        // A connection to an address that stays is kept.
        if self.phase == Phase::Ready
            && let Some(current) = self.attempts.first()
            && self.addresses.contains(current.subchannel.address())
        {
            return;
        }
        // Sticky: a new list is tried without leaving TRANSIENT_FAILURE.
        let sticky = self.phase == Phase::TransientFailure;
        self.phase = Phase::Connecting;
        if !sticky {
            channel.update_picker(ConnectivityState::Connecting, Arc::new(QueuePicker));
        }
        self.start_pass(channel);
    }

    fn resolver_error(&mut self, error: &Status, channel: &mut dyn ChannelControl) {
        if self.addresses.is_empty() || self.phase == Phase::TransientFailure {
            self.attempts.clear();
            self.addresses.clear();
            self.last_error = Some(error.clone());
            self.phase = Phase::TransientFailure;
            self.report_failure(channel);
        }
    }

    fn subchannel_update(
        &mut self,
        subchannel: &Subchannel,
        state: &SubchannelState,
        channel: &mut dyn ChannelControl,
    ) {
        let Some(i) = self.find(subchannel) else { return };
        self.attempts[i].state = state.state();
        match state.state() {
            ConnectivityState::Ready => {
                if self.phase != Phase::Ready {
                    self.select(subchannel, channel);
                }
            }
            ConnectivityState::Connecting => {
                // The timer started this one: the pass moves past it.
                if self.phase == Phase::Connecting && i >= self.next {
                    self.next = i + 1;
                    self.arm_timer();
                }
            }
            ConnectivityState::TransientFailure => {
                self.attempts[i].failed = true;
                self.last_error = state.error().cloned();
                match self.phase {
                    Phase::Connecting => {
                        if i + 1 == self.next {
                            // The latest attempt failed: on to the next now.
                            self.start_next(channel);
                        } else {
                            self.end_pass_if_done(channel);
                        }
                    }
                    Phase::TransientFailure => {
                        self.report_failure(channel);
                        self.failures += 1;
                        if self.failures >= self.attempts.len() {
                            self.failures = 0;
                            channel.request_resolution();
                        }
                    }
                    _ => {}
                }
            }
            ConnectivityState::Idle => match self.phase {
                Phase::Ready => {
                    // The connection was lost: idle until the next call.
                    channel.request_resolution();
                    self.go_idle(channel);
                }
                Phase::TransientFailure => subchannel.connect(),
                _ => {}
            },
            ConnectivityState::Shutdown => {}
        }
    }

    fn exit_idle(&mut self, channel: &mut dyn ChannelControl) {
        if self.phase == Phase::Idle && !self.addresses.is_empty() {
            self.phase = Phase::Connecting;
            channel.update_picker(ConnectivityState::Connecting, Arc::new(QueuePicker));
            self.start_pass(channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Address {
        Address::socket(s.parse().unwrap())
    }

    #[test]
    fn families_interleave_starting_with_the_first_and_duplicates_go() {
        let given = [
            a("[::1]:1"),
            a("[::2]:1"),
            a("10.0.0.1:1"),
            a("[::1]:1"),
            a("10.0.0.2:1"),
            a("[::3]:1"),
        ];
        assert_eq!(
            interleave(&given),
            vec![
                a("[::1]:1"),
                a("10.0.0.1:1"),
                a("[::2]:1"),
                a("10.0.0.2:1"),
                a("[::3]:1")
            ]
        );
        let v4_first = [a("10.0.0.1:1"), a("[::1]:1"), a("[::2]:1")];
        assert_eq!(interleave(&v4_first), vec![a("10.0.0.1:1"), a("[::1]:1"), a("[::2]:1")]);
    }

    #[test]
    fn shuffling_keeps_every_address() {
        let mut list: Vec<Address> = (1..=20).map(|p| a(&format!("10.0.0.1:{p}"))).collect();
        let original = list.clone();
        shuffle(&mut list);
        let mut sorted = list.clone();
        sorted.sort_by_key(|x| x.to_string());
        let mut expected = original.clone();
        expected.sort_by_key(|x| x.to_string());
        assert_eq!(sorted, expected);
    }
}
