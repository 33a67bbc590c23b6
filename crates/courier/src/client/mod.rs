//! Client: a [`Channel`] to a service, over which generated clients make
//! calls.
//!
//! A channel resolves its target to addresses ([`resolver`]), keeps
//! connections to them as its load-balancing policy decides ([`balancer`]:
//! pick_first by default, or round_robin), and sends each call on the
//! connection the policy picks, multiplexing any number of concurrent calls
//! on each. Clones share all of it and are cheap. Lost connections are
//! remade with exponential backoff per grpc/grpc
//! `doc/connection-backoff.md`. While no connection can be made the
//! channel is in TRANSIENT_FAILURE, and calls fail fast with UNAVAILABLE and
//! the cause, unless they wait for ready ([`Request::set_wait_for_ready`]).
//! The channel's [`ConnectivityState`] can be read and watched.
//!
//! ```no_run
//! # async fn run() -> Result<(), courier::Status> {
//! use std::time::Duration;
//! use courier::client::balancer::Policy;
//! let channel = courier::Channel::builder("dns:///backends.example.com:50051")
//!     .load_balancing(Policy::round_robin())
//!     .connect_timeout(Duration::from_secs(5))
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`Request::set_wait_for_ready`]: crate::Request::set_wait_for_ready

pub(crate) mod backoff;
pub mod balancer;
pub(crate) use call::ResponseHead;
pub(crate) mod call;
mod cancel;
mod connectivity;
pub(crate) mod controller;
mod health_check;
#[cfg(feature = "fuzzing")]
pub(crate) use call::encode_timeout;
pub mod resolver;
mod retry;
pub mod service_config;
mod subchannel;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::uri::{Authority, Scheme};

pub use backoff::BackoffConfig;
pub use call::MethodPath;
pub use cancel::CancelHandle;
pub use connectivity::ConnectivityState;
pub use retry::{DEFAULT_PER_CALL_BUFFER, DEFAULT_PER_CHANNEL_BUFFER};
pub use subchannel::{Subchannel, SubchannelState};

use crate::compression::Encoding;
#[cfg(feature = "tls")]
use crate::credentials::ClientTlsConfig;
use crate::interceptor::{ClientDyn, ClientInterceptor, Interceptors};
use crate::metadata::Metadata;
use crate::stats::{StatsHandler, StatsHandlers};
use crate::status::Status;
use crate::transport::{ConnectOptions, Http2Settings};
use balancer::{PickInfo, Policy};
use controller::{Plan, Shared};
use health_check::WatchHead;
use resolver::ResolverBuilder;
use retry::RetrySettings;
use service_config::ServiceConfig;
use subchannel::SubchannelOptions;

/// How long a channel with no calls waits before going IDLE, unless set:
/// grpc-go's 30 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Per-call settings that every call on a channel starts from.
#[derive(Clone, Debug)]
pub(crate) struct CallConfig {
    pub(crate) max_recv_message_size: usize,
    pub(crate) max_send_message_size: usize,
    /// Whether the application set the limits above (a service config's
    /// limit then applies only when smaller), or they are the defaults (a
    /// service config's limit then replaces them, as in grpc-go).
    pub(crate) limits_set: (bool, bool),
    pub(crate) compression: Option<Encoding>,
    pub(crate) user_agent: HeaderValue,
    pub(crate) wait_for_ready: bool,
}

/// A channel to a gRPC service, shared by clones.
///
/// A channel resolves its target to addresses, keeps connections to them
/// (subchannels) as its load-balancing policy decides, and sends each call
/// on one the policy picks. It starts IDLE, connects on its first call (or
/// at once with [`ChannelBuilder::connect`]), and goes IDLE again after
/// [`ChannelBuilder::idle_timeout`] without calls.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: Scheme,
    authority: Authority,
    config: CallConfig,
    interceptors: Interceptors,
    stats: StatsHandlers,
    /// The target with its scheme, as metrics name it (gRFC A66):
    /// `dns:///example.com:443` for `example.com:443`.
    canonical_target: Arc<str>,
    /// `server.address` and `server.port` for tracing spans.
    server_host: Arc<str>,
    server_port: u16,
    shared: Arc<Shared>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("target", &self.target()).finish()
    }
}

impl Channel {
    /// A builder for a channel to `target`. Targets follow grpc/grpc
    /// `doc/naming.md` (see [`resolver`] for the schemes): `dns:///host:port`,
    /// `host:port`, `ipv4:10.0.0.1:50051,10.0.0.2:50051`,
    /// `unix:/path/to/socket`, and also `http://host:port` and
    /// `https://host:port` (TLS).
    pub fn builder(target: impl AsRef<str>) -> ChannelBuilder {
        ChannelBuilder::new(target.as_ref())
    }

    /// Connects to `target` now, with default settings.
    pub async fn connect(target: impl AsRef<str>) -> Result<Channel, Status> {
        Channel::builder(target).connect().await
    }

    /// A channel to `target` that connects on its first call.
    pub fn lazy(target: impl AsRef<str>) -> Result<Channel, Status> {
        Channel::builder(target).connect_lazy()
    }

    /// The target this channel was made for.
    pub fn target(&self) -> &str {
        self.inner.shared.target().as_str()
    }

    /// The channel's connectivity state. With `try_to_connect`, a channel
    /// that is IDLE starts connecting (this needs a Tokio runtime; outside
    /// one it only reports).
    pub fn state(&self, try_to_connect: bool) -> ConnectivityState {
        self.inner.shared.state(try_to_connect)
    }

    /// Waits until the state is no longer `from`, and returns the new
    /// state. States may be missed between two calls: compare with the
    /// state you last saw, as grpc-go's `WaitForStateChange` does.
    ///
    /// ```no_run
    /// # async fn run(channel: courier::Channel) {
    /// let mut state = channel.state(true);
    /// while state != courier::client::ConnectivityState::Ready {
    ///     state = channel.wait_for_state_change(state).await;
    /// }
    /// # }
    /// ```
    pub async fn wait_for_state_change(&self, from: ConnectivityState) -> ConnectivityState {
        self.inner.shared.state_changed(from).await
    }

    /// Whether the channel is READY now.
    pub fn is_connected(&self) -> bool {
        self.state(false) == ConnectivityState::Ready
    }
}

/// Settings for a [`Channel`].
pub struct ChannelBuilder {
    target: String,
    connect: ConnectOptions,
    backoff: BackoffConfig,
    config: CallConfig,
    interceptors: Interceptors,
    stats: StatsHandlers,
    authority: Option<String>,
    policy: Policy,
    resolver: Option<Arc<dyn ResolverBuilder>>,
    idle_timeout: Option<Duration>,
    service_config: ServiceConfig,
    retry: RetrySettings,
    health_check: bool,
    resolver_config: bool,
    dns_service_config: bool,
    #[cfg(feature = "tls")]
    tls: Option<ClientTlsConfig>,
}

impl ChannelBuilder {
    fn new(target: &str) -> ChannelBuilder {
        ChannelBuilder {
            target: target.to_string(),
            connect: ConnectOptions {
                connect_timeout: None,
                tcp_nodelay: true,
                http2: Http2Settings::default(),
                max_concurrent_streams: None,
                keepalive: None,
                #[cfg(feature = "tls")]
                tls: None,
            },
            backoff: BackoffConfig::default(),
            config: CallConfig {
                max_recv_message_size: crate::DEFAULT_MAX_RECV_MESSAGE_SIZE,
                max_send_message_size: usize::MAX,
                limits_set: (false, false),
                compression: None,
                user_agent: HeaderValue::from_static(crate::USER_AGENT),
                wait_for_ready: false,
            },
            interceptors: Interceptors::default(),
            stats: StatsHandlers::default(),
            authority: None,
            policy: Policy::pick_first(),
            resolver: None,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            service_config: ServiceConfig::default(),
            retry: RetrySettings::default(),
            health_check: true,
            resolver_config: true,
            dns_service_config: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// How long each connection attempt may take: reaching the server, the
    /// TLS handshake and the server's first HTTP/2 frame. Set, it wins over
    /// the backoff's [`BackoffConfig::min_connect_timeout`], whichever is
    /// set first. Unset, each attempt gets the backoff's
    /// `min_connect_timeout` (20 s by default) or the current backoff delay,
    /// whichever is longer, per grpc/grpc `doc/connection-backoff.md`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect.connect_timeout = Some(timeout);
        self
    }

    /// The reconnection backoff, and with it the time each connection
    /// attempt gets when no [`ChannelBuilder::connect_timeout`] is set.
    /// Default: the spec's parameters.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Prepends `prefix` to Courier's `user-agent`.
    pub fn user_agent(mut self, prefix: &str) -> Result<Self, Status> {
        let ua = format!("{prefix} {}", crate::USER_AGENT);
        self.config.user_agent =
            HeaderValue::from_str(&ua).map_err(|_| Status::invalid_argument("user agent must be printable ASCII"))?;
        Ok(self)
    }

    /// The `:authority` to send, instead of the target's host and port.
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = Some(authority.into());
        self
    }

    /// Connects over TLS with these settings. An `https://` target uses TLS
    /// with the system's roots without this. Errors in the settings (no
    /// system roots, a bad server name) fail `connect` and `connect_lazy`
    /// with INVALID_ARGUMENT. Needs the `tls` cargo feature.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The largest response message accepted, after decompression. Larger
    /// ones fail the call with RESOURCE_EXHAUSTED. Default 4 MiB.
    pub fn max_decoding_message_size(mut self, bytes: usize) -> Self {
        self.config.max_recv_message_size = bytes;
        self.config.limits_set.0 = true;
        self
    }

    /// The largest request message sent; a larger one fails the call with
    /// RESOURCE_EXHAUSTED before it is sent. Default: no limit.
    pub fn max_encoding_message_size(mut self, bytes: usize) -> Self {
        self.config.max_send_message_size = bytes;
        self.config.limits_set.1 = true;
        self
    }

    /// Compresses request messages with `encoding` (a call may override it).
    /// An encoding not [enabled](Encoding::is_enabled) in this build (its
    /// cargo feature is off) is ignored: messages go uncompressed.
    pub fn send_compressed(mut self, encoding: Encoding) -> Self {
        self.config.compression = Some(encoding);
        self
    }

    /// Adds an interceptor; they run in the order added, before each call.
    pub fn interceptor(mut self, interceptor: impl ClientInterceptor) -> Self {
        self.interceptors.0.push(Arc::new(ClientDyn(interceptor)));
        self
    }

    /// Adds a stats handler, which follows each call from start to end: its
    /// attempts, status, headers, trailers, message sizes and timing (see
    /// [`stats`](crate::stats)). Several may be added. OpenTelemetry
    /// metrics and tracing are one (`courier::opentelemetry`, with the
    /// `opentelemetry` feature).
    pub fn stats_handler(mut self, handler: impl StatsHandler) -> Self {
        self.stats.push(handler);
        self
    }

    /// HTTP/2 flow-control windows for each stream and for the connection,
    /// in bytes. Defaults 1 MiB and 4 MiB. Fails with INVALID_ARGUMENT for a
    /// window larger than HTTP/2 allows, 2^31 - 1 bytes.
    pub fn http2_windows(mut self, stream: u32, connection: u32) -> Result<Self, Status> {
        self.connect
            .http2
            .set_windows(stream, connection)
            .map_err(Status::invalid_argument)?;
        Ok(self)
    }

    /// The largest HTTP/2 frame this channel accepts, which it advertises
    /// in `SETTINGS_MAX_FRAME_SIZE`: clamped to what HTTP/2 allows, 16 KiB to
    /// 16 MiB - 1. Default 16 KiB, as other gRPC implementations use. Larger
    /// frames let a server send a large response in fewer frames, and so in
    /// fewer writes and reads.
    pub fn http2_max_frame_size(mut self, bytes: u32) -> Self {
        self.connect.http2.set_max_frame_size(bytes);
        self
    }

    /// Sets `TCP_NODELAY`. Default on.
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.connect.tcp_nodelay = on;
        self
    }

    /// The load-balancing policy: [`Policy::pick_first`] (the default),
    /// [`Policy::round_robin`], or one of one's own.
    pub fn load_balancing(mut self, policy: impl Into<Policy>) -> Self {
        self.policy = policy.into();
        self
    }

    /// Resolves this channel's target with `builder` when the target has
    /// its scheme, instead of the resolver registered for that scheme
    /// (see [`resolver::register`]). A target that names no scheme
    /// (`host:port`, `http://host:port`) has the `dns` scheme: a
    /// [`resolver::DnsResolver`] given here resolves it.
    pub fn resolver(mut self, builder: impl ResolverBuilder) -> Self {
        self.resolver = Some(Arc::new(builder));
        self
    }

    /// Whether calls wait for a READY connection by default, rather than
    /// failing at once with UNAVAILABLE while the channel is in
    /// TRANSIENT_FAILURE (grpc/grpc `doc/wait-for-ready.md`). A call's own
    /// [`Request::set_wait_for_ready`](crate::Request::set_wait_for_ready)
    /// wins. Default off.
    pub fn wait_for_ready(mut self, on: bool) -> Self {
        self.config.wait_for_ready = on;
        self
    }

    /// How long the channel may go without calls before it goes IDLE,
    /// closing its connections; the next call reconnects. `Duration::ZERO`
    /// keeps it connected for ever. Default [`DEFAULT_IDLE_TIMEOUT`], 30
    /// minutes.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Sends keepalive PINGs (gRFC A8): after `params`' time without
    /// hearing from the server, a PING, and if it goes unanswered for its
    /// timeout, the connection is closed, its calls fail with UNAVAILABLE
    /// and the channel reconnects. A server that answers GOAWAY
    /// `too_many_pings` makes the channel PING half as often. Default: no
    /// keepalive.
    pub fn keepalive(mut self, params: crate::keepalive::ClientParameters) -> Self {
        self.connect.keepalive = Some(crate::transport::keepalive::ClientKeepalive::new(params));
        self
    }

    /// The most calls open at once on each connection, below whatever the
    /// server allows; further calls wait for one to end. Default: only the
    /// server's limit.
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.connect.max_concurrent_streams = Some(streams.max(1));
        self
    }

    /// The service config calls follow while the resolver gives none
    /// (grpc/grpc `doc/service_config.md`): per-method timeouts,
    /// wait-for-ready, message limits, retry and hedging policies, and the
    /// load-balancing policy, which then wins over
    /// [`ChannelBuilder::load_balancing`].
    ///
    /// ```
    /// # fn run() -> Result<(), courier::Status> {
    /// use courier::client::service_config::ServiceConfig;
    /// let config = ServiceConfig::from_json(r#"{
    ///   "methodConfig": [{
    ///     "name": [{"service": "helloworld.Greeter"}],
    ///     "retryPolicy": {
    ///       "maxAttempts": 4,
    ///       "initialBackoff": "0.1s",
    ///       "maxBackoff": "1s",
    ///       "backoffMultiplier": 2,
    ///       "retryableStatusCodes": ["UNAVAILABLE"]
    ///     }
    ///   }]
    /// }"#)?;
    /// let channel = courier::Channel::builder("dns:///greeter.example.com:50051")
    ///     .service_config(config)
    ///     .connect_lazy()?;
    /// # Ok(()) }
    /// ```
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service_config = config;
        self
    }

    /// Turns retries and hedging off: service configs' `retryPolicy` and
    /// `hedgingPolicy` are ignored, for applications that retry on their
    /// own (as grpc-go's `WithDisableRetry`). Transparent retries of calls
    /// the server never processed still happen.
    pub fn disable_retries(mut self) -> Self {
        self.retry.enabled = false;
        self
    }

    /// How much request data calls keep so they can be retried or hedged:
    /// at most `per_call` bytes for one call and `per_channel` for all of
    /// them. A call whose request outgrows its share commits to the attempt
    /// it is on and is not retried again (gRFC A6). Defaults 1 MiB
    /// ([`DEFAULT_PER_CALL_BUFFER`]) and 16 MiB
    /// ([`DEFAULT_PER_CHANNEL_BUFFER`]).
    pub fn retry_buffer_limits(mut self, per_call: usize, per_channel: usize) -> Self {
        self.retry.per_call = per_call;
        self.retry.per_channel = per_channel;
        self
    }

    /// Turns client-side health checking off, even when the service config
    /// asks for it (`healthCheckConfig`, gRFC A17): subchannels are READY as
    /// soon as they connect, whatever their backends' health services say.
    /// By default a policy that health-checks (round_robin) does so whenever
    /// the service config names a service to check.
    pub fn disable_health_check(mut self) -> Self {
        self.health_check = false;
        self
    }

    /// [`ChannelBuilder::service_config`] with a config in its JSON form;
    /// fails with INVALID_ARGUMENT, naming the field, if it is not valid.
    ///
    /// ```
    /// # fn run() -> Result<(), courier::Status> {
    /// let channel = courier::Channel::builder("dns:///greeter.example.com:50051")
    ///     .service_config_json(r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#)?
    ///     .connect_lazy()?;
    /// # let _ = channel; Ok(()) }
    /// ```
    pub fn service_config_json(self, json: &str) -> Result<Self, Status> {
        Ok(self.service_config(ServiceConfig::from_json(json)?))
    }

    /// Ignores the service configs the resolver gives: calls always follow
    /// the builder's ([`ChannelBuilder::service_config`]), as grpc-go's
    /// `WithDisableServiceConfig`. It also keeps the DNS resolver from
    /// looking configs up.
    pub fn disable_service_config_lookup(mut self) -> Self {
        self.resolver_config = false;
        self
    }

    /// Whether the DNS resolver looks up the target's service config in
    /// DNS, in the TXT record `_grpc_config.<host>` (gRFC A2). Default
    /// off, as in grpc-java: a channel trusts its DNS with its config only
    /// when asked to. It applies to targets the DNS resolver resolves; a
    /// [`DnsResolver`](resolver::DnsResolver) given to
    /// [`ChannelBuilder::resolver`] with its own
    /// [`service_config`](resolver::DnsResolver::service_config) setting
    /// follows that instead.
    pub fn dns_service_config(mut self, on: bool) -> Self {
        self.dns_service_config = on;
        self
    }

    fn build(mut self) -> Result<Channel, Status> {
        self.service_config.check()?;
        let parsed = resolver::parse_target(&self.target, self.resolver.as_ref())?;
        let authority_text = self
            .authority
            .take()
            .unwrap_or_else(|| parsed.builder.default_authority(&parsed.target));
        let scheme = self.settle_tls(parsed.https, &authority_text)?;
        let authority = Authority::try_from(authority_text.as_str()).map_err(|_| {
            Status::invalid_argument(format!(
                "invalid authority {authority_text:?} for target {:?}; set one with ChannelBuilder::authority",
                self.target
            ))
        })?;
        let canonical_target: Arc<str> = {
            let t = &parsed.target;
            format!("{}://{}/{}", t.scheme(), t.authority().unwrap_or(""), t.endpoint()).into()
        };
        let server_host: Arc<str> = authority.host().into();
        let server_port = authority
            .port_u16()
            .unwrap_or(if scheme == Scheme::HTTPS { 443 } else { 80 });
        let plan = Plan {
            target: parsed.target,
            resolver: parsed.builder,
            policy: self.policy,
            subchannels: Arc::new(SubchannelOptions {
                connect: self.connect,
                backoff: self.backoff,
                health: WatchHead {
                    scheme: scheme.clone(),
                    authority: authority.clone(),
                    user_agent: self.config.user_agent.clone(),
                },
            }),
            idle_timeout: self.idle_timeout,
            default_config: Arc::new(self.service_config),
            retry: self.retry,
            health_check: self.health_check,
            resolver_config: self.resolver_config,
            dns_service_config: self.dns_service_config,
        };
        Ok(Channel {
            inner: Arc::new(Inner {
                scheme,
                authority,
                config: self.config,
                interceptors: self.interceptors,
                stats: self.stats,
                canonical_target,
                server_host,
                server_port,
                shared: Shared::new(plan),
            }),
        })
    }

    /// Builds the TLS settings: those given, or the defaults for an
    /// `https://` target, checking the server's name against the
    /// authority's host. Returns the scheme calls carry.
    #[cfg(feature = "tls")]
    fn settle_tls(&mut self, https: bool, authority: &str) -> Result<Scheme, Status> {
        let tls = match (self.tls.take(), https) {
            (Some(tls), _) => tls,
            (None, true) => ClientTlsConfig::new(),
            (None, false) => return Ok(Scheme::HTTP),
        };
        let host = resolver::target::host_of(authority);
        let built = tls
            .build(host)
            .map_err(|e| Status::invalid_argument(format!("TLS settings for {}: {e}", self.target)))?;
        self.connect.tls = Some(built);
        Ok(Scheme::HTTPS)
    }

    /// Without TLS support, refuses an `https://` target rather than
    /// sending plaintext to a TLS server.
    #[cfg(not(feature = "tls"))]
    fn settle_tls(&mut self, https: bool, _authority: &str) -> Result<Scheme, Status> {
        if https {
            return Err(Status::invalid_argument(format!(
                "target {:?} needs TLS, which this build of courier leaves out: \
                 enable courier's `tls` cargo feature",
                self.target
            )));
        }
        Ok(Scheme::HTTP)
    }

    /// A channel that connects on its first call. Fails only for a target
    /// that cannot be parsed.
    pub fn connect_lazy(self) -> Result<Channel, Status> {
        self.build()
    }

    /// Connects now; fails with UNAVAILABLE, and the cause, if the server
    /// cannot be reached.
    pub async fn connect(self) -> Result<Channel, Status> {
        let channel = self.build()?;
        let metadata = Metadata::new();
        let probe = PickInfo {
            path: "",
            metadata: &metadata,
        };
        channel.inner.shared.probe(&probe).await?;
        Ok(channel)
    }
}

#[cfg(all(test, not(feature = "tls")))]
mod tests {
    use super::Channel;
    use crate::Code;

    #[test]
    fn https_target_without_the_tls_feature_fails_at_build() {
        let err = Channel::builder("https://localhost:50051").connect_lazy().unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert!(err.message().contains("enable courier's `tls` cargo feature"), "{err}");
        // Plaintext targets are unaffected.
        assert!(Channel::builder("http://localhost:50051").connect_lazy().is_ok());
    }
}
