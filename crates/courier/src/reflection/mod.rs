//! The gRPC server reflection service, `grpc.reflection.v1.ServerReflection`
//! and its earlier name `grpc.reflection.v1alpha.ServerReflection`.
//!
//! Reflection lets tools such as grpcurl, Postman or `courier` call a server
//! without its `.proto` files: they ask the server for its services and for
//! the descriptors of the types those use. Courier answers from the
//! descriptors that `courier-build` embeds in each generated service
//! ([`Service::FILE_DESCRIPTOR_SET`]).
//!
//! [`Server::with_reflection`] adds both versions of the service. They
//! describe every service the server hosts when it starts serving, those
//! added after `with_reflection` included, and the reflection and health
//! services themselves. On each stream the server answers:
//!
//! - `list_services`: the names of the hosted services;
//! - `file_by_filename`, `file_containing_symbol` (a service, method, message,
//!   enum, enum value, field, oneof or extension, nested or not) and
//!   `file_containing_extension`: the file, followed by those of its
//!   transitive imports that the stream has not carried yet;
//! - `all_extension_numbers_of_type`: the field numbers of the known
//!   extensions of a message.
//!
//! A request that cannot be answered (an unknown file or symbol, say) gets an
//! `error_response` with a status code such as NOT_FOUND, and the stream goes
//! on.
//!
//! # Example
//!
//! ```
//! use courier::reflection::pb::v1::server_reflection_client::ServerReflectionClient;
//! use courier::reflection::pb::v1::server_reflection_request::MessageRequest;
//! use courier::reflection::pb::v1::server_reflection_response::MessageResponse;
//! use courier::reflection::pb::v1::ServerReflectionRequest;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = courier::Server::builder()
//!     .with_reflection()
//!     // Services added after `with_reflection` are described too.
//!     .with_health(courier::health::HealthReporter::new());
//! tokio::spawn(server.serve_with_listener(listener, std::future::pending()));
//!
//! let client = ServerReflectionClient::connect(format!("http://{addr}")).await?;
//! let ask = ServerReflectionRequest {
//!     message_request: Some(MessageRequest::ListServices(String::new())),
//!     ..Default::default()
//! };
//! let mut answers = client.server_reflection_info(tokio_stream::iter([ask])).await?.into_inner();
//! let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await?.unwrap().message_response
//! else {
//!     panic!("not a list of services")
//! };
//! let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
//! assert_eq!(
//!     names,
//!     [
//!         "grpc.reflection.v1.ServerReflection",
//!         "grpc.reflection.v1alpha.ServerReflection",
//!         "grpc.health.v1.Health",
//!     ]
//! );
//! # Ok(())
//! # }
//! ```
//!
//! [`Service::FILE_DESCRIPTOR_SET`]: crate::server::Service::FILE_DESCRIPTOR_SET

mod index;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use futures_core::Stream;

use crate::server::{Route, Routes, Server, ServerCall, Service};
use crate::{Code, Request, Response, Status, Streaming};
use index::Index;
use pb::v1::server_reflection_request::MessageRequest;
use pb::v1::server_reflection_response::MessageResponse;
use pb::v1::{
    ErrorResponse, ExtensionNumberResponse, FileDescriptorResponse, ListServiceResponse, ServerReflectionRequest,
    ServerReflectionResponse, ServiceResponse,
};

/// The messages, clients and servers generated from
/// `grpc/reflection/v1/reflection.proto` and
/// `grpc/reflection/v1alpha/reflection.proto`.
///
/// The two versions have the same messages, so there is one set of message
/// types, in [`v1`](pb::v1); the `v1alpha` client and server use them too.
/// Each version's client calls the reflection service of any gRPC server.
pub mod pb {
    /// `grpc.reflection.v1`: the messages, and the client and server.
    pub mod v1 {
        #![allow(clippy::all)]
        crate::include_proto!("grpc.reflection.v1");
    }

    /// `grpc.reflection.v1alpha`: the client and server, over the messages
    /// of [`v1`].
    pub mod v1alpha {
        #![allow(clippy::all)]
        crate::include_proto!("grpc.reflection.v1alpha");
    }
}

/// What the two versions of the service share: the index of the server's
/// descriptors, built at the first reflection call.
#[derive(Default)]
struct Shared {
    index: OnceLock<Arc<Index>>,
}

impl Shared {
    fn index(&self) -> Arc<Index> {
        // `call` builds it before any handler runs.
        self.index.get().cloned().unwrap_or_default()
    }

    fn init(&self, call: &ServerCall) {
        self.index
            .get_or_init(|| Arc::new(Index::build(call.registered_services())));
    }
}

/// The `grpc.reflection.v1.ServerReflection` service. Usually added with
/// [`Server::with_reflection`]; when added on its own with
/// [`Server::add_service`], it describes the services of the server it is
/// added to all the same.
pub struct ReflectionService {
    shared: Arc<Shared>,
    inner: pb::v1::server_reflection_server::ServerReflectionServer<Shared>,
}

/// The `grpc.reflection.v1alpha.ServerReflection` service, for clients that
/// only know the earlier name. See [`ReflectionService`].
pub struct ReflectionServiceV1Alpha {
    shared: Arc<Shared>,
    inner: pb::v1alpha::server_reflection_server::ServerReflectionServer<Shared>,
}

impl ReflectionService {
    /// The v1 service.
    pub fn new() -> Self {
        Self::with_shared(Arc::default())
    }

    fn with_shared(shared: Arc<Shared>) -> Self {
        let inner = pb::v1::server_reflection_server::ServerReflectionServer::from_arc(shared.clone());
        ReflectionService { shared, inner }
    }
}

impl ReflectionServiceV1Alpha {
    /// The v1alpha service.
    pub fn new() -> Self {
        Self::with_shared(Arc::default())
    }

    fn with_shared(shared: Arc<Shared>) -> Self {
        let inner = pb::v1alpha::server_reflection_server::ServerReflectionServer::from_arc(shared.clone());
        ReflectionServiceV1Alpha { shared, inner }
    }
}

impl Default for ReflectionService {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for ReflectionServiceV1Alpha {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ReflectionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReflectionService").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ReflectionServiceV1Alpha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReflectionServiceV1Alpha").finish_non_exhaustive()
    }
}

impl Service for ReflectionService {
    const NAME: &'static str = pb::v1::server_reflection_server::SERVICE_NAME;
    const FILE_DESCRIPTOR_SET: &'static [u8] = pb::v1::server_reflection_server::FILE_DESCRIPTOR_SET;

    fn call(&self, call: ServerCall) -> impl Future<Output = ()> + Send {
        self.shared.init(&call);
        self.inner.call(call)
    }
}

impl Service for ReflectionServiceV1Alpha {
    const NAME: &'static str = pb::v1alpha::server_reflection_server::SERVICE_NAME;
    const FILE_DESCRIPTOR_SET: &'static [u8] = pb::v1alpha::server_reflection_server::FILE_DESCRIPTOR_SET;

    fn call(&self, call: ServerCall) -> impl Future<Output = ()> + Send {
        self.shared.init(&call);
        self.inner.call(call)
    }
}

impl<R: Routes> Server<R> {
    /// Adds the server reflection service, as both
    /// `grpc.reflection.v1.ServerReflection` and
    /// `grpc.reflection.v1alpha.ServerReflection`: one line enables it.
    ///
    /// Reflection describes every service the server hosts when it starts
    /// serving, including those added after this call. See
    /// [`reflection`](crate::reflection).
    ///
    /// ```no_run
    /// # async fn run() -> std::io::Result<()> {
    /// courier::Server::builder()
    ///     .with_reflection()
    ///     // .add_service(GreeterServer::new(MyGreeter))
    ///     .serve("127.0.0.1:50051")
    ///     .await
    /// # }
    /// ```
    pub fn with_reflection(self) -> Server<Route<ReflectionServiceV1Alpha, Route<ReflectionService, R>>> {
        let shared = Arc::new(Shared::default());
        self.add_service(ReflectionService::with_shared(shared.clone()))
            .add_service(ReflectionServiceV1Alpha::with_shared(shared))
    }
}

/// The answers of one reflection stream.
type InfoStream = Pin<Box<dyn Stream<Item = Result<ServerReflectionResponse, Status>> + Send>>;

impl pb::v1::server_reflection_server::ServerReflection for Shared {
    type ServerReflectionInfoStream = InfoStream;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<ServerReflectionRequest>>,
    ) -> Result<Response<InfoStream>, Status> {
        Ok(Response::new(answers(self.index(), request.into_inner())))
    }
}

impl pb::v1alpha::server_reflection_server::ServerReflection for Shared {
    type ServerReflectionInfoStream = InfoStream;

    async fn server_reflection_info(
        &self,
        request: Request<Streaming<ServerReflectionRequest>>,
    ) -> Result<Response<InfoStream>, Status> {
        Ok(Response::new(answers(self.index(), request.into_inner())))
    }
}

/// Answers each request of a stream as it arrives.
fn answers(index: Arc<Index>, requests: Streaming<ServerReflectionRequest>) -> InfoStream {
    struct Stream {
        index: Arc<Index>,
        requests: Streaming<ServerReflectionRequest>,
        /// The files this stream has carried.
        sent: HashSet<usize>,
        failed: bool,
    }
    let state = Stream {
        index,
        requests,
        sent: HashSet::new(),
        failed: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut state| async move {
        if state.failed {
            return None;
        }
        match state.requests.message().await {
            Ok(Some(request)) => {
                let response = answer(&state.index, request, &mut state.sent);
                Some((Ok(response), state))
            }
            Ok(None) => None,
            Err(status) => {
                state.failed = true;
                Some((Err(status), state))
            }
        }
    }))
}

/// The answer to one request.
fn answer(index: &Index, request: ServerReflectionRequest, sent: &mut HashSet<usize>) -> ServerReflectionResponse {
    let mut files = |file: Option<usize>, missing: &dyn Fn() -> String| match file {
        Some(file) => MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
            file_descriptor_proto: index.with_dependencies(file, sent),
        }),
        None => error(Code::NotFound, missing()),
    };
    let response = match &request.message_request {
        Some(MessageRequest::FileByFilename(name)) => {
            files(index.file_by_name(name), &|| format!("unknown file {name:?}"))
        }
        Some(MessageRequest::FileContainingSymbol(symbol)) => files(index.file_containing_symbol(symbol), &|| {
            format!("unknown symbol {symbol:?}")
        }),
        Some(MessageRequest::FileContainingExtension(ext)) => files(
            index.file_containing_extension(&ext.containing_type, ext.extension_number),
            &|| {
                format!(
                    "no extension {} of {:?} is known",
                    ext.extension_number, ext.containing_type
                )
            },
        ),
        Some(MessageRequest::AllExtensionNumbersOfType(message)) => match index.extension_numbers(message) {
            Some(numbers) => MessageResponse::AllExtensionNumbersResponse(ExtensionNumberResponse {
                base_type_name: message.trim_start_matches('.').to_owned(),
                extension_number: numbers,
            }),
            None => error(Code::NotFound, format!("unknown message type {message:?}")),
        },
        Some(MessageRequest::ListServices(_)) => MessageResponse::ListServicesResponse(ListServiceResponse {
            service: index
                .services()
                .iter()
                .map(|name| ServiceResponse {
                    name: (*name).to_owned(),
                })
                .collect(),
        }),
        None => error(Code::InvalidArgument, "the request asks for nothing".to_owned()),
    };
    ServerReflectionResponse {
        valid_host: request.host.clone(),
        original_request: Some(request),
        message_response: Some(response),
    }
}

fn error(code: Code, message: String) -> MessageResponse {
    MessageResponse::ErrorResponse(ErrorResponse {
        error_code: code.as_i32(),
        error_message: message,
    })
}
