//! The gRPC health service, `grpc.health.v1.Health`.
//!
//! Load balancers, orchestrators and clients ask a server whether it can take
//! calls through this standard service (see grpc's
//! `doc/health-checking.md`). The application reports the status of each
//! service through a [`HealthReporter`]; the server answers:
//!
//! - `Check`: the current status of one service, or NOT_FOUND for a service
//!   that has none;
//! - `Watch`: the current status at once, then each change, on a stream that
//!   stays open. A service without a status is reported as
//!   [`ServingStatus::ServiceUnknown`] until it gets one;
//! - `List` (gRFC A90): the status of every service that has one.
//!
//! The empty name `""` stands for the server as a whole. A new reporter has
//! it [`Serving`](ServingStatus::Serving) and no other service: the
//! application sets the status of each service it wants reported, usually
//! under the generated `SERVICE_NAME` constant.
//!
//! Before shutting the server down, call
//! [`HealthReporter::enter_graceful_shutdown`]: every service turns
//! NOT_SERVING and `Watch` calls end, so that they do not hold up the
//! server's graceful shutdown.
//!
//! # Example
//!
//! ```
//! use courier::health::{HealthReporter, ServingStatus};
//! use courier::health::pb::{HealthCheckRequest, health_client::HealthClient};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let health = HealthReporter::new();
//! health.set_serving("helloworld.Greeter");
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = courier::Server::builder()
//!     // .add_service(GreeterServer::new(MyGreeter))
//!     .with_health(health.clone());
//! tokio::spawn(server.serve_with_listener(listener, std::future::pending()));
//!
//! let client = HealthClient::connect(format!("http://{addr}")).await?;
//! let ask = |service: &str| HealthCheckRequest { service: service.to_owned() };
//! let reply = client.check(ask("helloworld.Greeter")).await?.into_inner();
//! assert_eq!(reply.status(), ServingStatus::Serving);
//!
//! // Going out of service: watchers hear of it at once.
//! let mut watch = client.watch(ask("helloworld.Greeter")).await?.into_inner();
//! assert_eq!(watch.message().await?.unwrap().status(), ServingStatus::Serving);
//! health.set_not_serving("helloworld.Greeter");
//! assert_eq!(watch.message().await?.unwrap().status(), ServingStatus::NotServing);
//!
//! // A service without a status.
//! let err = client.check(ask("helloworld.Other")).await.unwrap_err();
//! assert_eq!(err.code(), courier::Code::NotFound);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_core::Stream;
use tokio::sync::watch;

use crate::server::{Route, Routes, Server, ServerCall, Service};
use crate::{Request, Response, Status};

/// The messages, client and server generated from `grpc/health/v1/health.proto`.
///
/// [`health_client::HealthClient`](pb::health_client::HealthClient) calls the
/// health service of any gRPC server.
pub mod pb {
    #![allow(clippy::all)]
    crate::include_proto!("grpc.health.v1");
}

pub use pb::health_check_response::ServingStatus;
use pb::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse};

/// `List` answers RESOURCE_EXHAUSTED when more services than this have a
/// status, as grpc-go does, so that its response stays small.
pub const LIST_LIMIT: usize = 100;

/// The handle through which the application sets the serving status of its
/// services. Cloning it is cheap: clones share the statuses, and every change
/// reaches the health service of the server it was given to.
///
/// ```
/// use courier::health::{HealthReporter, ServingStatus};
///
/// let health = HealthReporter::new();
/// assert_eq!(health.status(""), Some(ServingStatus::Serving));
///
/// health.set_serving("helloworld.Greeter");
/// health.clone().set_not_serving("helloworld.Greeter");
/// assert_eq!(health.status("helloworld.Greeter"), Some(ServingStatus::NotServing));
///
/// // SERVICE_UNKNOWN forgets a service.
/// health.set_status("helloworld.Greeter", ServingStatus::ServiceUnknown);
/// assert_eq!(health.status("helloworld.Greeter"), None);
/// ```
#[derive(Clone)]
pub struct HealthReporter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        let mut statuses: Vec<(&str, ServingStatus)> = state
            .services
            .iter()
            .filter_map(|(name, tx)| known(*tx.borrow()).map(|status| (name.as_str(), status)))
            .collect();
        statuses.sort_unstable();
        f.debug_struct("HealthReporter")
            .field("statuses", &statuses)
            .field("shutting_down", &state.shutting_down)
            .finish()
    }
}

/// The statuses, shared by a reporter's clones and the service.
struct Shared {
    state: Mutex<State>,
}

struct State {
    /// One channel per service that has a status or a watcher. A service
    /// without a status holds `ServiceUnknown`, and its entry goes away when
    /// its last watcher does.
    services: HashMap<String, watch::Sender<ServingStatus>>,
    /// After [`HealthReporter::enter_graceful_shutdown`]: changes are ignored.
    shutting_down: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; recover anyway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `Some(status)` for a status a service can have; `None` for none.
fn known(status: ServingStatus) -> Option<ServingStatus> {
    (status != ServingStatus::ServiceUnknown).then_some(status)
}

impl Default for HealthReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthReporter {
    /// A reporter where the server as a whole (`""`) is
    /// [`Serving`](ServingStatus::Serving) and no other service has a status.
    pub fn new() -> Self {
        let mut services = HashMap::new();
        services.insert(String::new(), watch::Sender::new(ServingStatus::Serving));
        HealthReporter {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    services,
                    shutting_down: false,
                }),
            }),
        }
    }

    /// Sets `service` (`""` for the whole server) to
    /// [`Serving`](ServingStatus::Serving).
    pub fn set_serving(&self, service: impl AsRef<str>) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// Sets `service` (`""` for the whole server) to
    /// [`NotServing`](ServingStatus::NotServing).
    pub fn set_not_serving(&self, service: impl AsRef<str>) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Sets the status of `service` (`""` for the whole server). Watchers of
    /// the service get the new status if it differs from the old one.
    ///
    /// [`ServiceUnknown`](ServingStatus::ServiceUnknown) removes the service:
    /// `Check` answers NOT_FOUND for it again and `List` leaves it out.
    /// After [`enter_graceful_shutdown`](Self::enter_graceful_shutdown) this
    /// does nothing.
    pub fn set_status(&self, service: impl AsRef<str>, status: ServingStatus) {
        let service = service.as_ref();
        let mut state = self.shared.lock();
        if state.shutting_down {
            return;
        }
        match state.services.get(service) {
            Some(tx) => {
                tx.send_if_modified(|current| {
                    let changed = *current != status;
                    *current = status;
                    changed
                });
                if status == ServingStatus::ServiceUnknown && tx.receiver_count() == 0 {
                    state.services.remove(service);
                }
            }
            None if status != ServingStatus::ServiceUnknown => {
                state.services.insert(service.to_owned(), watch::Sender::new(status));
            }
            None => {}
        }
    }

    /// The status of `service`, or `None` if it has none.
    pub fn status(&self, service: impl AsRef<str>) -> Option<ServingStatus> {
        let state = self.shared.lock();
        state.services.get(service.as_ref()).and_then(|tx| known(*tx.borrow()))
    }

    /// Sets every service with a status, the server included, to
    /// [`NotServing`](ServingStatus::NotServing) for good: later changes are
    /// ignored. Call it when the server starts to shut down, so that clients
    /// and load balancers stop sending it calls.
    ///
    /// `Watch` calls then end (with OK) once they have sent the final
    /// status, so that they do not hold up the server's graceful shutdown;
    /// the protocol has clients call again, and later calls get the final
    /// status and end the same way.
    pub fn enter_graceful_shutdown(&self) {
        let mut state = self.shared.lock();
        state.shutting_down = true;
        for tx in state.services.values() {
            // Wakes every watcher, changed or not, so that each one ends.
            tx.send_modify(|current| {
                if *current != ServingStatus::ServiceUnknown {
                    *current = ServingStatus::NotServing;
                }
            });
        }
    }

    /// The `grpc.health.v1.Health` service answering from this reporter's
    /// statuses, to add to a server with
    /// [`Server::add_service`](crate::Server::add_service); or use
    /// [`Server::with_health`](crate::Server::with_health).
    pub fn service(&self) -> HealthService {
        HealthService {
            inner: pb::health_server::HealthServer::new(Handler(self.shared.clone())),
        }
    }
}

/// The `grpc.health.v1.Health` service, made by [`HealthReporter::service`].
#[derive(Clone, Debug)]
pub struct HealthService {
    inner: pb::health_server::HealthServer<Handler>,
}

/// Answers the health calls; watchers keep the shared state alive.
struct Handler(Arc<Shared>);

impl Service for HealthService {
    const NAME: &'static str = pb::health_server::SERVICE_NAME;
    const FILE_DESCRIPTOR_SET: &'static [u8] = pb::health_server::FILE_DESCRIPTOR_SET;

    fn call(&self, call: ServerCall) -> impl Future<Output = ()> + Send {
        self.inner.call(call)
    }
}

impl<R: Routes> Server<R> {
    /// Adds the health service, `grpc.health.v1.Health`, answering from
    /// `reporter`'s statuses: one line enables it.
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// let health = courier::health::HealthReporter::new();
    /// courier::Server::builder()
    ///     // .add_service(GreeterServer::new(MyGreeter))
    ///     .with_health(health.clone())
    ///     .serve("127.0.0.1:50051")
    ///     .await
    /// # }
    /// ```
    pub fn with_health(self, reporter: HealthReporter) -> Server<Route<HealthService, R>> {
        self.add_service(reporter.service())
    }
}

/// A watcher of one service's status. When it goes, so does the service's
/// entry if it has no status and no other watcher.
struct Watcher {
    rx: Option<watch::Receiver<ServingStatus>>,
    shared: Arc<Shared>,
    service: String,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut state = self.shared.lock();
        if let Entry::Occupied(entry) = state.services.entry(std::mem::take(&mut self.service))
            && *entry.get().borrow() == ServingStatus::ServiceUnknown
            && entry.get().receiver_count() == 0
        {
            entry.remove();
        }
    }
}

/// The stream of statuses a `Watch` call sends.
type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: status as i32 }
}

impl pb::health_server::Health for Handler {
    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.get_ref().service;
        let state = self.0.lock();
        match state.services.get(service).and_then(|tx| known(*tx.borrow())) {
            Some(status) => Ok(Response::new(response(status))),
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        let state = self.0.lock();
        let statuses: HashMap<String, HealthCheckResponse> = state
            .services
            .iter()
            .filter_map(|(name, tx)| known(*tx.borrow()).map(|status| (name.clone(), response(status))))
            .collect();
        if statuses.len() > LIST_LIMIT {
            return Err(Status::resource_exhausted(format!(
                "{} services have a status, more than the {LIST_LIMIT} List reports",
                statuses.len()
            )));
        }
        Ok(Response::new(HealthListResponse { statuses }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        let service = request.into_inner().service;
        let rx = {
            let mut state = self.0.lock();
            state
                .services
                .entry(service.clone())
                .or_insert_with(|| watch::Sender::new(ServingStatus::ServiceUnknown))
                .subscribe()
        };
        let watcher = Watcher {
            rx: Some(rx),
            shared: self.0.clone(),
            service,
        };
        // Sends the status, then each change; after a graceful shutdown
        // began, the stream ends once the final status is out.
        let stream = futures_util::stream::unfold((watcher, None), |(mut watcher, last)| async move {
            loop {
                if last.is_some() {
                    if watcher.shared.lock().shutting_down {
                        return None;
                    }
                    watcher.rx.as_mut()?.changed().await.ok()?;
                }
                let status = *watcher.rx.as_mut()?.borrow_and_update();
                if last != Some(status) {
                    return Some((Ok(response(status)), (watcher, Some(status))));
                }
            }
        });
        Ok(Response::new(Box::pin(stream) as WatchStream))
    }
}
