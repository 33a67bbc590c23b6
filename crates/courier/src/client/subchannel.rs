//! Subchannels: one connection to one address, with its own backoff and
//! connectivity state, made and dropped by a load-balancing policy.
//!
//! A subchannel starts IDLE and connects when its policy asks
//! ([`Subchannel::connect`]). From CONNECTING it becomes READY, or
//! TRANSIENT_FAILURE when the attempt fails; after the backoff delay it goes
//! back to IDLE, and the policy decides whether to try again. A READY
//! subchannel whose connection closes, fails or receives GOAWAY goes IDLE.
//! Each change reaches the policy through the channel's control loop.
//!
//! A subchannel that health-checks (see [`super::health_check`]) is READY
//! only while its backend says it is healthy: once connected it stays
//! CONNECTING until the backend's first answer, and goes between READY and
//! TRANSIENT_FAILURE as the backend's health changes, without a new
//! connection.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, BackoffConfig};
use super::connectivity::ConnectivityState;
use super::controller::Event;
use super::health_check::{HealthCheck, WatchHead};
use super::resolver::Address;
use crate::channelz::channel::SubchannelEntry;
use crate::status::Status;
use crate::transport::ConnectOptions;
use crate::transport::client::Connection;

/// One connection to one address, shared by clones. A load-balancing
/// policy makes subchannels with
/// [`ChannelControl::new_subchannel`](super::balancer::ChannelControl::new_subchannel)
/// and returns them from its picker. When the last clone is dropped, the
/// subchannel shuts down: its connection closes once the calls on it end.
#[derive(Clone)]
pub struct Subchannel(pub(crate) Arc<Handle>);

/// The policy's hold on a subchannel; dropped, it shuts the subchannel down.
pub(crate) struct Handle {
    pub(crate) core: Arc<Core>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.shutdown.cancel();
    }
}

/// What a subchannel's task and its handles share.
pub(crate) struct Core {
    pub(crate) id: u64,
    address: Address,
    /// The live connection, while READY: what calls read.
    connection: ArcSwapOption<Connection>,
    /// The current state; why it last failed goes to the policy with each
    /// change, and is not kept here.
    state: Mutex<ConnectivityState>,
    /// Set by [`Subchannel::connect`] while IDLE.
    wake: tokio::sync::Notify,
    shutdown: CancellationToken,
    events: UnboundedSender<Event>,
    /// The subchannel's channelz entry.
    pub(crate) channelz: Arc<SubchannelEntry>,
}

/// What a subchannel reports to its policy on each change: its new state,
/// and, in TRANSIENT_FAILURE, why connecting failed.
#[derive(Clone, Debug)]
pub struct SubchannelState {
    pub(crate) state: ConnectivityState,
    pub(crate) error: Option<Status>,
}

impl SubchannelState {
    /// The new state.
    pub fn state(&self) -> ConnectivityState {
        self.state
    }

    /// In TRANSIENT_FAILURE, why: the last connection attempt failed, or
    /// the backend's health check says it is unhealthy.
    pub fn error(&self) -> Option<&Status> {
        self.error.as_ref()
    }
}

/// How subchannels connect: the same for every subchannel of a channel.
pub(crate) struct SubchannelOptions {
    pub(crate) connect: ConnectOptions,
    pub(crate) backoff: BackoffConfig,
    /// What health-check watches send besides the service name.
    pub(crate) health: WatchHead,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Subchannel {
    /// A subchannel to `address`, IDLE, whose changes go to `events`, and
    /// that checks its backend's health with `health`, if given. Its task
    /// starts at once, on the current Tokio runtime.
    pub(crate) fn spawn(
        address: Address,
        options: Arc<SubchannelOptions>,
        events: UnboundedSender<Event>,
        health: Option<HealthCheck>,
    ) -> Subchannel {
        let core = Arc::new(Core {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            channelz: SubchannelEntry::register(address.to_string()),
            address,
            connection: ArcSwapOption::empty(),
            state: Mutex::new(ConnectivityState::Idle),
            wake: tokio::sync::Notify::new(),
            shutdown: CancellationToken::new(),
            events,
        });
        tokio::spawn(run(core.clone(), options, health));
        Subchannel(Arc::new(Handle { core }))
    }

    /// The address this subchannel connects to.
    pub fn address(&self) -> &Address {
        &self.0.core.address
    }

    /// The current state.
    pub fn state(&self) -> ConnectivityState {
        self.0.core.state()
    }

    /// Starts connecting, if IDLE; otherwise does nothing. Safe to call from
    /// a picker, on any thread.
    pub fn connect(&self) {
        let core = &self.0.core;
        let state = core.state.lock().unwrap_or_else(|e| e.into_inner());
        if *state == ConnectivityState::Idle {
            core.wake.notify_one();
        }
    }

    /// The live connection, if READY and it still takes calls.
    pub(crate) fn connection(&self) -> Option<Arc<Connection>> {
        let guard = self.0.core.connection.load();
        match guard.as_ref() {
            Some(conn) if conn.is_alive() => Some(conn.clone()),
            _ => None,
        }
    }

    /// A number that tells this subchannel from the channel's others.
    pub(crate) fn id(&self) -> u64 {
        self.0.core.id
    }
}

impl PartialEq for Subchannel {
    fn eq(&self, other: &Subchannel) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Subchannel {}

impl fmt::Debug for Subchannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subchannel")
            .field("address", &self.0.core.address)
            .field("state", &self.state())
            .finish()
    }
}

impl Core {
    fn state(&self) -> ConnectivityState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves to `state` and tells the policy.
    fn set(&self, state: ConnectivityState, error: Option<Status>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        self.channelz.set_state(state, error.as_ref().map(|e| e.message()));
        match &error {
            Some(error) => tracing::info!(address = %self.address, %state, %error, "subchannel state"),
            None => tracing::info!(address = %self.address, %state, "subchannel state"),
        }
        let _ = self.events.send(Event::Subchannel {
            id: self.id,
            state: SubchannelState { state, error },
        });
    }

    /// Moves to what the health check says of the live connection `conn`:
    /// READY hands calls the connection, any other state takes it away.
    /// A repeated READY or CONNECTING is not reported again.
    fn set_health(&self, conn: &Arc<Connection>, state: ConnectivityState, error: Option<Status>) {
        let ready = state == ConnectivityState::Ready;
        self.connection.store(ready.then(|| conn.clone()));
        if state != ConnectivityState::TransientFailure && state == self.state() {
            return;
        }
        self.set(state, error);
    }
}

/// A subchannel's life: wait to be asked, connect, serve, and back off
/// after failures, until it is shut down.
async fn run(core: Arc<Core>, options: Arc<SubchannelOptions>, mut health: Option<HealthCheck>) {
    let shutdown = core.shutdown.clone();
    let mut backoff = Backoff::new(options.backoff.clone());
    let life = async {
        loop {
            core.wake.notified().await;
            core.set(ConnectivityState::Connecting, None);
            let timeout = options
                .connect
                .connect_timeout
                .unwrap_or_else(|| backoff.attempt_timeout());
            match crate::transport::client::connect(&core.address, &options.connect, timeout).await {
                Ok(conn) => {
                    backoff.reset();
                    core.channelz.set_socket(conn.channelz_socket());
                    let conn = Arc::new(conn);
                    match health.as_mut() {
                        None => {
                            core.connection.store(Some(conn.clone()));
                            core.set(ConnectivityState::Ready, None);
                            conn.closed().await;
                        }
                        // The watch goes with the connection.
                        Some(health) => {
                            let mut report = |state, error| core.set_health(&conn, state, error);
                            tokio::select! {
                                () = conn.closed() => {}
                                () = health.run(&conn, &core.address, &options, &mut report) => {}
                            }
                        }
                    }
                    core.connection.store(None);
                    drop(conn);
                    core.set(ConnectivityState::Idle, None);
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::debug!(address = %core.address, "connecting failed: {error}; next attempt in {delay:?}");
                    core.set(ConnectivityState::TransientFailure, Some(error));
                    // A delay past what a timer can represent is forever.
                    match tokio::time::Instant::now().checked_add(delay) {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                    core.set(ConnectivityState::Idle, None);
                }
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = life => {}
    }
    core.connection.store(None);
    *core.state.lock().unwrap_or_else(|e| e.into_inner()) = ConnectivityState::Shutdown;
    core.channelz.set_state(ConnectivityState::Shutdown, None);
}
