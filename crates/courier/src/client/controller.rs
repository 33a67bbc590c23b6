//! A channel's control loop: one task that owns the resolver and the
//! load-balancing policy, feeds the policy what the resolver and the
//! subchannels report, publishes its pickers, and takes the channel IDLE
//! after its idle timeout. Calls never wait on this task's lock: they read
//! the current picker through an atomic swap.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::{mpsc, watch};

use super::balancer::{ChannelControl, FailPicker, LoadBalancer, Pick, PickInfo, Picker, Policy, QueuePicker};
use super::connectivity::ConnectivityState;
use super::health_check::{HealthCheck, ServiceName};
use super::resolver::{Address, Resolver, ResolverBuilder, ResolverSink, ResolverState, Target};
use super::retry::{RetryBuffer, RetrySettings, Throttle};
use super::service_config::{ChosenPolicy, ServiceConfig};
use super::subchannel::{Handle, Subchannel, SubchannelOptions, SubchannelState};
use crate::channelz::channel::ChannelEntry;
use crate::status::Status;
use crate::transport::client::Connection;

/// What the control loop hears about.
pub(crate) enum Event {
    /// From the resolver.
    Resolved(Result<ResolverState, Status>),
    /// A subchannel changed state.
    Subchannel { id: u64, state: SubchannelState },
    /// A call found the policy IDLE.
    ExitIdle,
}

/// How a channel resolves, balances and connects: fixed when it is built.
pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) resolver: Arc<dyn ResolverBuilder>,
    pub(crate) policy: Policy,
    pub(crate) subchannels: Arc<SubchannelOptions>,
    pub(crate) idle_timeout: Option<Duration>,
    /// The builder's service config, used while the resolver gives none.
    pub(crate) default_config: Arc<ServiceConfig>,
    pub(crate) retry: RetrySettings,
    /// Whether subchannels may health-check: false when the builder
    /// disabled it.
    pub(crate) health_check: bool,
    /// Whether the resolver's service configs are used; if not, the
    /// builder's always is.
    pub(crate) resolver_config: bool,
    /// Whether the DNS resolver looks up service configs in TXT records.
    pub(crate) dns_service_config: bool,
}

/// The picker calls use now, and the channel state it came with.
pub(crate) struct Slot {
    picker: Arc<dyn Picker>,
    state: ConnectivityState,
    /// A call has asked the policy to leave IDLE for this picker.
    exit_idle_asked: AtomicBool,
}

/// What a channel's clones and its control loop share.
pub(crate) struct Shared {
    plan: Plan,
    slot: ArcSwap<Slot>,
    /// The service config calls follow now.
    config: ArcSwap<ServiceConfig>,
    /// Its retry throttle, if it has one.
    throttle: ArcSwapOption<Throttle>,
    /// Request data kept for retries, across the channel's calls.
    retry_buffer: Arc<RetryBuffer>,
    /// The config's health-check service name, which health-checking
    /// subchannels follow.
    health_service: watch::Sender<Option<Arc<str>>>,
    /// Bumped after each new slot, to wake the calls waiting for one.
    version: watch::Sender<u64>,
    state: watch::Sender<ConnectivityState>,
    /// The control loop, while the channel is not IDLE.
    running: Mutex<Option<Running>>,
    /// Calls started (high 32 bits, wrapping) and calls in progress (low
    /// 32 bits), for the idle timeout: one atomic add at each end of a call.
    calls: AtomicU64,
    /// The channel's channelz entry: registered while this state lives.
    channelz: Arc<ChannelEntry>,
}

struct Running {
    events: mpsc::UnboundedSender<Event>,
    task: tokio::task::AbortHandle,
}

const STARTED: u64 = 1 << 32;
const ACTIVE_MASK: u64 = STARTED - 1;

/// Counts a call as in progress until dropped: borrowing the channel's
/// state for a call whose future ends with it, owning a reference for a
/// call that outlives its future (a response stream).
pub(crate) struct ActiveCall<S: Deref<Target = Shared>> {
    shared: S,
    /// The call ended with OK: channelz counts it as succeeded when the
    /// guard is dropped, and as failed otherwise.
    ok: bool,
}

impl<S: Deref<Target = Shared>> ActiveCall<S> {
    /// The call ended with OK.
    pub(crate) fn succeeded(&mut self) {
        self.ok = true;
    }
}

/// [`ActiveCall`] for a call that outlives its future.
pub(crate) type OwnedActiveCall = ActiveCall<Arc<Shared>>;

impl<S: Deref<Target = Shared>> Drop for ActiveCall<S> {
    /// The call ended: with OK if [`ActiveCall::succeeded`] said so, and
    /// otherwise with an error, a deadline, or by being cancelled or
    /// dropped.
    fn drop(&mut self) {
        self.shared.calls.fetch_sub(1, Ordering::Release);
        self.shared.channelz_call_ended(self.ok);
    }
}

/// One attempt of a call on the subchannel it was picked for, counted in
/// the subchannel's channelz entry: started when picked, and succeeded or
/// failed when dropped.
pub(crate) struct SubchannelCall(Option<Arc<crate::channelz::channel::SubchannelEntry>>);

impl SubchannelCall {
    fn start(subchannel: &super::Subchannel, counting: Counting, channel: &ChannelEntry) -> SubchannelCall {
        let at = match counting {
            Counting::Nothing => return SubchannelCall(None),
            // The channel counted the call a moment ago: its clock reading
            // serves for the subchannel too.
            Counting::AsCall => channel.calls.last_started(),
            // 0, as for a channel that counted no call: no reading to
            // share, so the subchannel reads the clock.
            Counting::Now => 0,
        };
        let entry = subchannel.0.core.channelz.clone();
        if at == 0 {
            entry.calls.started();
        } else {
            entry.calls.started_at(at);
        }
        SubchannelCall(Some(entry))
    }

    /// The attempt's call ended with OK: counted now, and not again when
    /// dropped.
    pub(crate) fn succeeded(&mut self) {
        if let Some(entry) = self.0.take() {
            entry.calls.ended(true);
        }
    }
}

impl Drop for SubchannelCall {
    /// An attempt not counted as succeeded failed.
    fn drop(&mut self) {
        if let Some(entry) = &self.0 {
            entry.calls.ended(false);
        }
    }
}

/// What a pick counts on the subchannel it picks, in channelz.
#[derive(Clone, Copy)]
enum Counting {
    /// Nothing: the pick is not for a call.
    Nothing,
    /// An attempt that starts as its call did (the first, picked at once),
    /// at the time the channel counted the call.
    AsCall,
    /// An attempt that starts later than its call (a retry, a hedge, or
    /// one that waited for a connection), at the time of the pick.
    Now,
}

impl Shared {
    pub(crate) fn new(plan: Plan) -> Arc<Shared> {
        let channelz = ChannelEntry::register(plan.target.as_str());
        Arc::new(Shared {
            config: ArcSwap::new(plan.default_config.clone()),
            throttle: ArcSwapOption::new(plan.default_config.retry_throttling.map(|t| Arc::new(Throttle::new(t)))),
            retry_buffer: RetryBuffer::new(&plan.retry),
            health_service: watch::Sender::new(health_service(&plan.default_config)),
            plan,
            slot: ArcSwap::from_pointee(Slot::idle()),
            version: watch::Sender::new(0),
            state: watch::Sender::new(ConnectivityState::Idle),
            running: Mutex::new(None),
            calls: AtomicU64::new(0),
            channelz,
        })
    }

    /// The channel's target, as the application wrote it and as parsed.
    pub(crate) fn target(&self) -> &Target {
        &self.plan.target
    }

    /// The service config in force.
    pub(crate) fn service_config(&self) -> arc_swap::Guard<Arc<ServiceConfig>> {
        self.config.load()
    }

    /// Replaces the service config in force. The throttle's tokens carry
    /// over while its settings stay the same.
    pub(crate) fn set_service_config(&self, config: Arc<ServiceConfig>) {
        let same = self.throttle.load().as_ref().map(|t| t.config) == config.retry_throttling;
        if !same {
            self.throttle
                .store(config.retry_throttling.map(|t| Arc::new(Throttle::new(t))));
        }
        let service = health_service(&config);
        self.config.store(config);
        self.health_service.send_if_modified(|s| {
            let changed = *s != service;
            *s = service;
            changed
        });
    }

    /// The retry throttle, if the service config has one.
    pub(crate) fn throttle(&self) -> Option<Arc<Throttle>> {
        self.throttle.load_full()
    }

    /// A call succeeded: the retry throttle, if there is one, gains its
    /// token ratio.
    pub(crate) fn call_succeeded(&self) {
        if let Some(throttle) = &*self.throttle.load() {
            throttle.success();
        }
    }

    /// How retries are set up on this channel.
    pub(crate) fn retry_settings(&self) -> &RetrySettings {
        &self.plan.retry
    }

    /// The channel's retry buffer.
    pub(crate) fn retry_buffer(&self) -> &Arc<RetryBuffer> {
        &self.retry_buffer
    }

    /// Marks a call as started.
    pub(crate) fn call_started(&self) -> ActiveCall<&Shared> {
        self.calls.fetch_add(STARTED + 1, Ordering::AcqRel);
        self.channelz_call_started();
        ActiveCall {
            shared: self,
            ok: false,
        }
    }

    /// Marks a call as started, for a guard the call's response stream
    /// keeps.
    pub(crate) fn owned_call_started(self: &Arc<Shared>) -> OwnedActiveCall {
        self.calls.fetch_add(STARTED + 1, Ordering::AcqRel);
        self.channelz_call_started();
        ActiveCall {
            shared: self.clone(),
            ok: false,
        }
    }

    /// Counts a call as started in the channel's channelz entry (calls
    /// started, and the last call's time). [`Shared::call_started`] and
    /// [`Shared::owned_call_started`] call it.
    pub(crate) fn channelz_call_started(&self) {
        self.channelz.calls.started();
    }

    /// Counts a call as ended in the channel's channelz entry: succeeded
    /// when its status is OK (`ok`), failed otherwise. To be called once per
    /// call started, when its status is known.
    pub(crate) fn channelz_call_ended(&self, ok: bool) {
        self.channelz.calls.ended(ok);
    }

    /// The channel's connectivity state; with `try_to_connect`, an IDLE
    /// channel starts connecting.
    pub(crate) fn state(self: &Arc<Shared>, try_to_connect: bool) -> ConnectivityState {
        let state = *self.state.borrow();
        if try_to_connect && state == ConnectivityState::Idle && tokio::runtime::Handle::try_current().is_ok() {
            self.exit_idle(&self.slot.load());
        }
        state
    }

    /// Waits until the state is no longer `from`, and returns the new one.
    pub(crate) async fn state_changed(&self, from: ConnectivityState) -> ConnectivityState {
        let mut rx = self.state.subscribe();
        match rx.wait_for(|s| *s != from).await {
            Ok(state) => *state,
            Err(_) => ConnectivityState::Shutdown,
        }
    }

    /// A connection for a call: the picker's choice, waiting for a new
    /// picker while there is none to give (and, with `wait_for_ready`,
    /// while the channel is in TRANSIENT_FAILURE). The call counts as
    /// started on the subchannel picked, in channelz.
    /// `previous_attempts` is how many attempts of the call came before.
    pub(crate) fn pick(
        self: &Arc<Shared>,
        call: &PickInfo<'_>,
        wait_for_ready: bool,
        previous_attempts: u32,
    ) -> impl Future<Output = Result<(Arc<Connection>, SubchannelCall), Status>> {
        let counting = if previous_attempts == 0 {
            Counting::AsCall
        } else {
            Counting::Now
        };
        self.pick_counting(call, wait_for_ready, counting)
    }

    /// [`Shared::pick`] for no call: to wait until the channel can take
    /// calls, counting none on the subchannel.
    pub(crate) async fn probe(self: &Arc<Shared>, call: &PickInfo<'_>) -> Result<Arc<Connection>, Status> {
        self.pick_counting(call, false, Counting::Nothing)
            .await
            .map(|(conn, _)| conn)
    }

    async fn pick_counting(
        self: &Arc<Shared>,
        call: &PickInfo<'_>,
        wait_for_ready: bool,
        counting: Counting,
    ) -> Result<(Arc<Connection>, SubchannelCall), Status> {
        if let Pick::Ready(subchannel) = self.slot.load().picker.pick(call)
            && let Some(conn) = subchannel.connection()
        {
            return Ok((conn, SubchannelCall::start(&subchannel, counting, &self.channelz)));
        }
        // Boxed: waiting is rare, and its future would otherwise make every
        // call's future larger.
        Box::pin(self.pick_slowly(call, wait_for_ready, counting)).await
    }

    async fn pick_slowly(
        self: &Arc<Shared>,
        call: &PickInfo<'_>,
        wait_for_ready: bool,
        counting: Counting,
    ) -> Result<(Arc<Connection>, SubchannelCall), Status> {
        // The attempt starts once picked, later than its call.
        let counting = match counting {
            Counting::AsCall => Counting::Now,
            other => other,
        };
        let mut version = self.version.subscribe();
        loop {
            let slot = self.slot.load_full();
            match slot.picker.pick(call) {
                Pick::Ready(subchannel) => {
                    if let Some(conn) = subchannel.connection() {
                        return Ok((conn, SubchannelCall::start(&subchannel, counting, &self.channelz)));
                    }
                    // Not READY after all: its report is on the way, and a
                    // new picker with it.
                }
                Pick::Queue => {}
                Pick::Fail(status) if !wait_for_ready => return Err(status),
                Pick::Fail(_) => {}
            }
            if slot.state == ConnectivityState::Idle {
                self.exit_idle(&slot);
            }
            if version.changed().await.is_err() {
                return Err(Status::unavailable("the channel was shut down"));
            }
        }
    }

    /// Leaves IDLE: starts the control loop, or asks a running one's policy
    /// to connect.
    fn exit_idle(self: &Arc<Shared>, slot: &Slot) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.as_ref() {
            None => *running = self.start(),
            Some(r) => {
                if !slot.exit_idle_asked.swap(true, Ordering::AcqRel) {
                    let _ = r.events.send(Event::ExitIdle);
                }
            }
        }
    }

    /// Builds the resolver and the policy, and starts the control loop.
    fn start(self: &Arc<Shared>) -> Option<Running> {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = ResolverSink {
            tx: tx.clone(),
            dns_service_config: self.plan.dns_service_config && self.plan.resolver_config,
        };
        let resolver = match self.plan.resolver.build(&self.plan.target, sink) {
            Ok(resolver) => resolver,
            Err(status) => {
                self.publish(ConnectivityState::TransientFailure, Arc::new(FailPicker(status)));
                return None;
            }
        };
        // The policy of the config in force, which may be the last
        // resolution's from before the channel went IDLE.
        let chosen = self.service_config().chosen_policy(&self.plan.policy);
        let lb = chosen.policy.0.build();
        self.publish(ConnectivityState::Connecting, Arc::new(QueuePicker));
        let task = tokio::spawn(run(self.clone(), tx.clone(), rx, resolver, (chosen, lb)));
        Some(Running {
            events: tx,
            task: task.abort_handle(),
        })
    }

    /// Hands calls a new picker.
    fn publish(&self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        self.channelz.set_state(state);
        self.slot.store(Arc::new(Slot {
            picker,
            state,
            exit_idle_asked: AtomicBool::new(false),
        }));
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        self.state.send_if_modified(|s| {
            let changed = *s != state;
            if changed {
                tracing::info!(target = self.plan.target.as_str(), from = %s, to = %state, "channel state");
            }
            *s = state;
            changed
        });
    }

    /// Stops the control loop for good: the channel was dropped.
    pub(crate) fn shut_down(&self) {
        if let Some(running) = self.running.lock().unwrap_or_else(|e| e.into_inner()).take() {
            running.task.abort();
        }
        self.publish(
            ConnectivityState::Shutdown,
            Arc::new(FailPicker(Status::unavailable("the channel was shut down"))),
        );
    }
}

/// The health-check service name `config` asks for.
fn health_service(config: &ServiceConfig) -> Option<Arc<str>> {
    config.health_check_service.as_deref().map(Arc::from)
}

impl Slot {
    fn idle() -> Slot {
        Slot {
            picker: Arc::new(QueuePicker),
            state: ConnectivityState::Idle,
            exit_idle_asked: AtomicBool::new(false),
        }
    }
}

/// What the policy may do, from inside the control loop.
struct Control<'a> {
    shared: &'a Shared,
    events: &'a mpsc::UnboundedSender<Event>,
    subchannels: &'a mut HashMap<u64, Weak<Handle>>,
    resolve_now: bool,
}

impl Control<'_> {
    fn spawn_subchannel(&mut self, address: &Address, health: Option<ServiceName>) -> Subchannel {
        let subchannel = Subchannel::spawn(
            address.clone(),
            self.shared.plan.subchannels.clone(),
            self.events.clone(),
            health.map(HealthCheck::new),
        );
        self.shared.channelz.add_subchannel(&subchannel.0.core.channelz);
        self.subchannels.insert(subchannel.id(), Arc::downgrade(&subchannel.0));
        subchannel
    }
}

impl ChannelControl for Control<'_> {
    fn new_subchannel(&mut self, address: &Address) -> Subchannel {
        self.spawn_subchannel(address, None)
    }

    fn new_health_checked_subchannel(&mut self, address: &Address) -> Subchannel {
        let health = self
            .shared
            .plan
            .health_check
            .then(|| self.shared.health_service.subscribe());
        self.spawn_subchannel(address, health)
    }

    fn update_picker(&mut self, state: ConnectivityState, picker: Arc<dyn Picker>) {
        self.shared.publish(state, picker);
    }

    fn request_resolution(&mut self) {
        self.resolve_now = true;
    }
}

/// The control loop.
async fn run(
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<Event>,
    mut rx: mpsc::UnboundedReceiver<Event>,
    mut resolver: Box<dyn Resolver>,
    (mut chosen, mut lb): (ChosenPolicy, Box<dyn LoadBalancer>),
) {
    let mut subchannels: HashMap<u64, Weak<Handle>> = HashMap::new();
    // The text of the resolver's config in force, not parsed again.
    let mut config_text: Option<String> = None;
    let mut idle_check = shared.plan.idle_timeout.and_then(|every| {
        let first = tokio::time::Instant::now().checked_add(every)?;
        Some(tokio::time::interval_at(first, every))
    });
    let mut started = shared.calls.load(Ordering::Acquire) >> 32;
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            _ = async { idle_check.as_mut().expect("checked").tick().await }, if idle_check.is_some() => {
                let calls = shared.calls.load(Ordering::Acquire);
                if calls & ACTIVE_MASK == 0 && calls >> 32 == started && go_idle(&shared) {
                    return;
                }
                started = calls >> 32;
                continue;
            }
        };
        // The loop holds a sender itself, so the stream never ends.
        let Some(event) = event else { return };
        let mut control = Control {
            shared: &shared,
            events: &events,
            subchannels: &mut subchannels,
            resolve_now: false,
        };
        if let Event::Resolved(Ok(state)) = &event {
            adopt_config(&shared, state, &mut config_text);
            let wanted = shared.service_config().chosen_policy(&shared.plan.policy);
            if !wanted.same_as(&chosen) {
                tracing::info!(
                    target = shared.plan.target.as_str(),
                    from = chosen.policy.name(),
                    to = wanted.policy.name(),
                    "load-balancing policy changed by the service config"
                );
                // The old policy's subchannels go with it.
                lb = wanted.policy.0.build();
                chosen = wanted;
            }
        }
        match event {
            Event::Resolved(Ok(state)) if state.addresses().is_empty() => {
                lb.resolver_error(
                    &Status::unavailable("name resolver returned no addresses"),
                    &mut control,
                );
            }
            Event::Resolved(Ok(state)) => lb.resolver_update(&state, &mut control),
            Event::Resolved(Err(status)) => {
                tracing::debug!(target = shared.plan.target.as_str(), "resolution failed: {status}");
                lb.resolver_error(&status, &mut control);
            }
            Event::Subchannel { id, state } => {
                let handle = control.subchannels.get(&id).and_then(Weak::upgrade);
                match handle {
                    Some(handle) => lb.subchannel_update(&Subchannel(handle), &state, &mut control),
                    None => {
                        control.subchannels.remove(&id);
                    }
                }
            }
            Event::ExitIdle => lb.exit_idle(&mut control),
        }
        if control.resolve_now {
            resolver.resolve_now();
        }
        if subchannels.len() > 64 {
            subchannels.retain(|_, weak| weak.strong_count() > 0);
        }
    }
}

/// Puts the service config of a resolution in force (gRFC A21): the
/// resolver's when it is valid, the one in force when it is not (logged),
/// the builder's when the resolver gives none. `text` is the resolver's
/// config in force, so that the same one is not parsed again.
fn adopt_config(shared: &Shared, state: &ResolverState, text: &mut Option<String>) {
    if !shared.plan.resolver_config {
        return;
    }
    let target = shared.plan.target.as_str();
    if let Some(why) = state.service_config_error() {
        tracing::warn!(
            target,
            "the resolver's service config is unusable, keeping the one in force: {why}"
        );
        return;
    }
    match state.service_config() {
        None => {
            *text = None;
            shared.set_service_config(shared.plan.default_config.clone());
        }
        Some(json) if text.as_deref() == Some(json) => {}
        Some(json) => match ServiceConfig::from_json(json) {
            Ok(config) => {
                *text = Some(json.to_string());
                shared.set_service_config(Arc::new(config));
            }
            Err(status) => tracing::warn!(
                target,
                "ignoring the resolver's service config, keeping the one in force: {}",
                status.message()
            ),
        },
    }
}

/// Takes the channel IDLE after its idle timeout: the policy, its
/// subchannels and the resolver are dropped when the loop returns. False if
/// a call raced in first.
fn go_idle(shared: &Arc<Shared>) -> bool {
    let mut running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
    if shared.calls.load(Ordering::Acquire) & ACTIVE_MASK != 0 {
        return false;
    }
    *running = None;
    tracing::debug!(
        target = shared.plan.target.as_str(),
        "channel idle: no calls for its idle timeout"
    );
    shared.publish(ConnectivityState::Idle, Arc::new(QueuePicker));
    true
}
