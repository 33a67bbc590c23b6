//! Client: a [`Channel`] to a server, over which generated clients make
//! calls.
//!
//! A channel owns one HTTP/2 connection, connected lazily or eagerly, and
//! multiplexes any number of concurrent calls on it. Clones share the
//! connection and are cheap. When the connection is lost the channel
//! reconnects on the next call; failed attempts back off exponentially per
//! grpc/grpc `doc/connection-backoff.md`, and calls made while the channel is
//! waiting to retry fail fast with UNAVAILABLE and the cause.
//!
//! ```no_run
//! # async fn run() -> Result<(), courier::Status> {
//! use std::time::Duration;
//! let channel = courier::Channel::builder("http://127.0.0.1:50051")
//!     .connect_timeout(Duration::from_secs(5))
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```

mod backoff;
pub(crate) use call::{ResponseHead, check_response};
pub(crate) mod call;
mod cancel;
#[cfg(feature = "fuzzing")]
pub(crate) use call::encode_timeout;
mod target;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use http::uri::{Authority, Scheme};

pub use backoff::BackoffConfig;
pub use call::MethodPath;
pub use cancel::CancelHandle;

use crate::compression::Encoding;
#[cfg(feature = "tls")]
use crate::credentials::ClientTlsConfig;
use crate::interceptor::{ClientDyn, ClientInterceptor, Interceptors};
use crate::status::Status;
use crate::transport::client::Connection;
use crate::transport::{Address, ConnectOptions, Http2Settings};
use backoff::Backoff;

/// Per-call settings that every call on a channel starts from.
#[derive(Clone, Debug)]
pub(crate) struct CallConfig {
    pub(crate) max_recv_message_size: usize,
    pub(crate) max_send_message_size: usize,
    pub(crate) compression: Option<Encoding>,
    pub(crate) user_agent: HeaderValue,
}

/// A connection to a gRPC server, shared by clones.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    target: String,
    address: Address,
    scheme: Scheme,
    authority: Authority,
    connect: ConnectOptions,
    config: CallConfig,
    interceptors: Interceptors,
    /// The ready connection, read without a lock on every call.
    current: ArcSwapOption<Connection>,
    /// Serializes connection attempts and holds the backoff state.
    dialing: tokio::sync::Mutex<DialState>,
}

struct DialState {
    backoff: Backoff,
    /// After a failed attempt: when the next may start (never, for a
    /// backoff delay past what an `Instant` can represent), and why it
    /// failed.
    failure: Option<(Option<Instant>, Status)>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("target", &self.inner.target).finish()
    }
}

impl Channel {
    /// A builder for a channel to `target`: `http://host:port`,
    /// `https://host:port` (TLS), `host:port`, `dns:///host:port`, or
    /// `unix:/path/to/socket`.
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
        &self.inner.target
    }

    /// Whether the channel has a live connection now.
    pub fn is_connected(&self) -> bool {
        self.inner.current.load().as_ref().is_some_and(|c| c.is_alive())
    }

    /// The live connection, connecting if there is none.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, Status> {
        if let Some(c) = self.inner.current.load().as_ref()
            && c.is_alive()
        {
            return Ok(c.clone());
        }
        // Boxed: dialing (TCP, TLS and HTTP/2 handshakes) is rare and its
        // future is large; unboxed, every call's future would carry it.
        Box::pin(self.dial()).await
    }

    async fn dial(&self) -> Result<Arc<Connection>, Status> {
        let mut state = self.inner.dialing.lock().await;
        if let Some(c) = self.inner.current.load_full()
            && c.is_alive()
        {
            return Ok(c);
        }
        if let Some((retry_at, err)) = &state.failure
            && retry_at.is_none_or(|at| Instant::now() < at)
        {
            return Err(err.clone());
        }
        let timeout = self
            .inner
            .connect
            .connect_timeout
            .unwrap_or_else(|| state.backoff.attempt_timeout());
        match crate::transport::client::connect(&self.inner.address, &self.inner.connect, timeout).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                state.backoff.reset();
                state.failure = None;
                self.inner.current.store(Some(conn.clone()));
                Ok(conn)
            }
            Err(err) => {
                let delay = state.backoff.next_delay();
                tracing::debug!(
                    "connection to {} failed: {err}; next attempt in {delay:?}",
                    self.inner.target
                );
                state.failure = Some((Instant::now().checked_add(delay), err.clone()));
                self.inner.current.store(None);
                Err(err)
            }
        }
    }
}

/// Settings for a [`Channel`].
pub struct ChannelBuilder {
    target: String,
    connect: ConnectOptions,
    backoff: BackoffConfig,
    config: CallConfig,
    interceptors: Interceptors,
    authority: Option<String>,
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
                #[cfg(feature = "tls")]
                tls: None,
            },
            backoff: BackoffConfig::default(),
            config: CallConfig {
                max_recv_message_size: crate::DEFAULT_MAX_RECV_MESSAGE_SIZE,
                max_send_message_size: usize::MAX,
                compression: None,
                user_agent: HeaderValue::from_static(crate::USER_AGENT),
            },
            interceptors: Interceptors::default(),
            authority: None,
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
        self
    }

    /// The largest request message sent; a larger one fails the call with
    /// RESOURCE_EXHAUSTED before it is sent. Default: no limit.
    pub fn max_encoding_message_size(mut self, bytes: usize) -> Self {
        self.config.max_send_message_size = bytes;
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

    fn build(mut self) -> Result<Channel, Status> {
        let mut parsed = target::parse(&self.target)?;
        self.settle_tls(&mut parsed)?;
        let authority_text = self.authority.unwrap_or(parsed.authority);
        let authority = Authority::try_from(authority_text.as_str())
            .map_err(|_| Status::invalid_argument(format!("invalid authority {authority_text:?}")))?;
        Ok(Channel {
            inner: Arc::new(Inner {
                target: self.target,
                address: parsed.address,
                scheme: parsed.scheme,
                authority,
                connect: self.connect,
                config: self.config,
                interceptors: self.interceptors,
                current: ArcSwapOption::empty(),
                dialing: tokio::sync::Mutex::new(DialState {
                    backoff: Backoff::new(self.backoff),
                    failure: None,
                }),
            }),
        })
    }

    /// Builds the TLS settings: those given, or the defaults for an
    /// `https://` target. The channel then uses the `https` scheme.
    #[cfg(feature = "tls")]
    fn settle_tls(&mut self, parsed: &mut target::Target) -> Result<(), Status> {
        let tls = match (self.tls.take(), parsed.scheme == Scheme::HTTPS) {
            (Some(tls), _) => tls,
            (None, true) => ClientTlsConfig::new(),
            (None, false) => return Ok(()),
        };
        let host = match &parsed.address {
            Address::Tcp { host, .. } => host.as_str(),
            Address::Unix(_) => "localhost",
        };
        let built = tls
            .build(host)
            .map_err(|e| Status::invalid_argument(format!("TLS settings for {}: {e}", self.target)))?;
        self.connect.tls = Some(built);
        parsed.scheme = Scheme::HTTPS;
        Ok(())
    }

    /// Without TLS support, refuses an `https://` target rather than
    /// sending plaintext to a TLS server.
    #[cfg(not(feature = "tls"))]
    fn settle_tls(&mut self, parsed: &mut target::Target) -> Result<(), Status> {
        if parsed.scheme == Scheme::HTTPS {
            return Err(Status::invalid_argument(format!(
                "target {:?} needs TLS, which this build of courier leaves out: \
                 enable courier's `tls` cargo feature",
                self.target
            )));
        }
        Ok(())
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
        channel.connection().await?;
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
