//! Client-side health checking (gRFC A17): a subchannel made for a policy
//! that asks for it watches its backend's health with
//! `grpc.health.v1.Health/Watch` on its own connection, and counts as READY
//! only while the backend says SERVING.
//!
//! The service name comes from the channel's service config
//! (`healthCheckConfig.serviceName`); without one, or with health checking
//! disabled on the channel, the subchannel is READY as soon as it connects.
//! A backend that answers UNIMPLEMENTED has no health service and counts as
//! healthy; any other end of the watch is TRANSIENT_FAILURE, and the watch
//! is made again after the subchannel's backoff delay while the connection
//! stays up. The watch is not a call: it does not keep the channel out of
//! IDLE, and interceptors do not see it.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::uri::{Authority, PathAndQuery, Scheme};
use tokio::sync::watch;

use super::backoff::Backoff;
use super::connectivity::ConnectivityState;
use super::resolver::Address;
use super::subchannel::SubchannelOptions;
use crate::codec::{Codec, FrameReader, FrameWriter, ProstCodec};
use crate::status::{Code, Status};
use crate::streaming::Streaming;
use crate::transport::client::Connection;
use crate::transport::head::OutRequest;

const WATCH_PATH: &str = "/grpc.health.v1.Health/Watch";

/// The largest health response accepted: one is a few bytes.
const MAX_RESPONSE: usize = 64 * 1024;

/// `grpc.health.v1.HealthCheckRequest`. Written out here, rather than taken
/// from [`crate::health`], so that health checking does not need the
/// `health` feature, which is the service.
#[derive(Clone, PartialEq, prost::Message)]
struct WatchRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`: `status` is a `ServingStatus`.
#[derive(Clone, PartialEq, prost::Message)]
struct WatchResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `ServingStatus.SERVING`; every other value is unhealthy.
const SERVING: i32 = 1;

fn status_name(status: i32) -> String {
    match status {
        0 => "UNKNOWN".to_string(),
        1 => "SERVING".to_string(),
        2 => "NOT_SERVING".to_string(),
        3 => "SERVICE_UNKNOWN".to_string(),
        other => format!("unknown status {other}"),
    }
}

/// The service name a channel's health-checking subchannels watch, `None`
/// when its service config asks for no health checking. It follows the
/// service config in force.
pub(crate) type ServiceName = watch::Receiver<Option<Arc<str>>>;

/// What each watch request carries besides the service name: the same for
/// every subchannel of a channel.
pub(crate) struct WatchHead {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    pub(crate) user_agent: HeaderValue,
}

/// Where a health check sends each verdict: a state, and in
/// TRANSIENT_FAILURE why.
pub(crate) type Report<'a> = dyn FnMut(ConnectivityState, Option<Status>) + Send + 'a;

/// One subchannel's health checking, kept across its connections.
pub(crate) struct HealthCheck {
    service: ServiceName,
    /// Whether UNIMPLEMENTED was logged: once per subchannel is enough.
    told_unimplemented: bool,
}

/// How one watch ended.
struct Ended {
    status: Status,
    /// Whether the server sent a message on it: the next watch then starts
    /// at once, with the backoff reset (gRFC A17).
    heard: bool,
}

impl HealthCheck {
    pub(crate) fn new(service: ServiceName) -> HealthCheck {
        HealthCheck {
            service,
            told_unimplemented: false,
        }
    }

    /// Checks the health of the backend at `address` over `conn`, handing
    /// each verdict to `report`: READY while it is healthy, CONNECTING
    /// while a watch waits for its first answer, TRANSIENT_FAILURE, and
    /// why, otherwise. Restarts the watch when the service name changes.
    /// Never returns: the subchannel drops it when the connection goes,
    /// which cancels the watch.
    pub(crate) async fn run(
        &mut self,
        conn: &Connection,
        address: &Address,
        options: &SubchannelOptions,
        report: &mut Report<'_>,
    ) {
        let mut backoff = Backoff::new(options.backoff.clone());
        loop {
            let service = self.service.borrow_and_update().clone();
            let Some(service) = service else {
                // Not asked for (or no longer): healthy once connected.
                report(ConnectivityState::Ready, None);
                self.service_changed().await;
                continue;
            };
            // Not READY until the backend's first answer (gRFC A17), so
            // that queued calls do not rush a backend that is unhealthy.
            report(ConnectivityState::Connecting, None);
            let ended = tokio::select! {
                ended = watch(conn, &service, &options.health, &mut backoff, address, report) => ended,
                () = self.service_changed() => continue,
            };
            if ended.status.code() == Code::Unimplemented {
                if !self.told_unimplemented {
                    self.told_unimplemented = true;
                    tracing::error!(
                        %address,
                        service = &*service,
                        "the server does not implement grpc.health.v1.Health/Watch ({}); \
                         treating it as healthy, as gRFC A17 says",
                        ended.status
                    );
                }
                report(ConnectivityState::Ready, None);
                self.service_changed().await;
                continue;
            }
            let delay = if ended.heard {
                backoff.reset();
                Duration::ZERO
            } else {
                backoff.next_delay()
            };
            tracing::debug!(%address, service = &*service, "health check failed: {}; next watch in {delay:?}", ended.status);
            report(
                ConnectivityState::TransientFailure,
                Some(Status::unavailable(format!(
                    "health check of {address} (service {service:?}) failed: {}",
                    ended.status
                ))),
            );
            // A delay past what a timer can represent is forever.
            let wait = async {
                match tokio::time::Instant::now().checked_add(delay) {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wait => {}
                () = self.service_changed() => {}
            }
        }
    }

    /// Resolves when the service name changes; never, once the channel that
    /// sets it is gone.
    async fn service_changed(&mut self) {
        if self.service.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One watch of `service`, until it ends, reporting each status the server
/// sends.
async fn watch(
    conn: &Connection,
    service: &str,
    head: &WatchHead,
    backoff: &mut Backoff,
    address: &Address,
    report: &mut Report<'_>,
) -> Ended {
    let mut stream = match open(conn, service, head).await {
        Ok(stream) => stream,
        Err(status) => return Ended { status, heard: false },
    };
    let mut heard = false;
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                heard = true;
                backoff.reset();
                if response.status == SERVING {
                    report(ConnectivityState::Ready, None);
                } else {
                    let status = status_name(response.status);
                    tracing::debug!(%address, service, "health check: {status}");
                    report(
                        ConnectivityState::TransientFailure,
                        Some(Status::unavailable(format!(
                            "health check of {address}: the server reports service {service:?} as {status}"
                        ))),
                    );
                }
            }
            Ok(None) => {
                return Ended {
                    status: Status::unavailable("the server ended the watch"),
                    heard,
                };
            }
            Err(status) => return Ended { status, heard },
        }
    }
}

/// Opens a `Watch` stream of `service` on `conn`.
async fn open(conn: &Connection, service: &str, head: &WatchHead) -> Result<Streaming<WatchResponse>, Status> {
    let mut codec = ProstCodec::<WatchRequest, WatchResponse>::new();
    let mut writer = FrameWriter::new(codec.encoder(), None, usize::MAX);
    writer.write(
        WatchRequest {
            service: service.to_string(),
        },
        false,
    )?;
    let request = OutRequest {
        https: head.scheme == Scheme::HTTPS,
        authority: head.authority.clone(),
        path: PathAndQuery::from_static(WATCH_PATH),
        user_agent: head.user_agent.clone(),
        timeout: None,
        encoding: None,
        accept_encoding: None,
        previous_attempts: 0,
        metadata: http::HeaderMap::new(),
    };
    let mut opener = conn.opener();
    opener.ready().await.map_err(|e| e.to_status())?;
    let (response, mut body) = opener.open(request).map_err(|e| e.to_status())?;
    // An error here shows up in the response.
    let _ = body.queue_data(writer.take(), true);
    Ok(Streaming::pending_head(
        crate::client::call::PendingHead::Stream(response),
        FrameReader::new(MAX_RESPONSE, None),
        codec.decoder(),
        None,
        None,
    ))
}

#[cfg(all(test, feature = "health"))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::Channel;
    use crate::client::ConnectivityState::{self, Ready, TransientFailure};
    use crate::client::balancer::Policy;
    use crate::client::service_config::ServiceConfig;
    use crate::health::HealthReporter;

    async fn wait_for(channel: &Channel, want: ConnectivityState) {
        let wait = async {
            let mut state = channel.state(true);
            while state != want {
                state = channel.wait_for_state_change(state).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("channel not {want} within 60 s"));
    }

    #[tokio::test]
    async fn running_watches_follow_the_service_name_in_the_config() {
        let health = HealthReporter::new();
        health.set_not_serving("sick");
        health.set_serving("well");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = crate::Server::builder().with_health(health.clone());
        tokio::spawn(server.serve_with_listener(listener, std::future::pending()));

        let channel = Channel::builder(format!("ipv4:{addr}"))
            .load_balancing(Policy::round_robin())
            .service_config(ServiceConfig::new().health_check_service("sick"))
            .connect_lazy()
            .unwrap();
        wait_for(&channel, TransientFailure).await;
        let shared = &channel.inner.shared;
        let set = |config: ServiceConfig| shared.set_service_config(Arc::new(config));

        // The same connection's watch restarts with each new name.
        set(ServiceConfig::new().health_check_service("well"));
        wait_for(&channel, Ready).await;
        set(ServiceConfig::new().health_check_service("sick"));
        wait_for(&channel, TransientFailure).await;
        // A config without health checking: READY as connected.
        set(ServiceConfig::new());
        wait_for(&channel, Ready).await;
    }
}
