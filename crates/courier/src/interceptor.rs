//! Interceptors: async hooks that see every call before it runs, on the
//! client or the server. They read and change metadata, attach values for the
//! handler, or reject the call with a status. Several may be stacked; they run
//! in the order they were added. To see how calls end (status, response
//! metadata, message sizes, timing), for metrics or logs, use a
//! [stats handler](crate::stats) instead: it watches the whole call.
//!
//! ```
//! use courier::interceptor::{CallHead, ServerInterceptor};
//! use courier::Status;
//!
//! #[derive(Clone)]
//! struct Identity(String);
//!
//! struct RequireToken;
//!
//! impl ServerInterceptor for RequireToken {
//!     async fn intercept(&self, mut head: CallHead) -> Result<CallHead, Status> {
//!         match head.metadata().get("authorization") {
//!             Some("Bearer open-sesame") => {
//!                 head.extensions_mut().insert(Identity("alice".into()));
//!                 Ok(head)
//!             }
//!             _ => Err(Status::unauthenticated("missing or wrong token")),
//!         }
//!     }
//! }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

use crate::extensions::Extensions;
use crate::metadata::Metadata;
use crate::status::Status;

/// What an interceptor sees of a call: its method, metadata, extensions and
/// deadline.
#[derive(Debug)]
pub struct CallHead {
    pub(crate) path: http::uri::PathAndQuery,
    /// Where the method starts in `path`, one past the slash that ends the
    /// service, when the server has checked that the path is
    /// `/service/method`; 0 when not known (the parts are then searched for).
    pub(crate) method_start: u16,
    pub(crate) metadata: Metadata,
    pub(crate) extensions: Extensions,
    pub(crate) deadline: Option<Instant>,
    pub(crate) remote_addr: Option<SocketAddr>,
}

impl CallHead {
    /// An empty head that holds a call's place while interceptors own the
    /// real one. It allocates nothing.
    pub(crate) fn placeholder() -> CallHead {
        CallHead {
            path: http::uri::PathAndQuery::from_static("/"),
            method_start: 0,
            metadata: Metadata::new(),
            extensions: Extensions::default(),
            deadline: None,
            remote_addr: None,
        }
    }

    /// The full method path, e.g. `/helloworld.Greeter/SayHello`.
    pub fn path(&self) -> &str {
        self.path.path()
    }

    /// The service part of the path, e.g. `helloworld.Greeter`.
    #[inline]
    pub fn service(&self) -> &str {
        let path = self.path.path();
        match usize::from(self.method_start) {
            0 => split_path(path).0,
            at => path.get(1..at - 1).unwrap_or_default(),
        }
    }

    /// The method part of the path, e.g. `SayHello`.
    #[inline]
    pub fn method(&self) -> &str {
        let path = self.path.path();
        match usize::from(self.method_start) {
            0 => split_path(path).1,
            at => path.get(at..).unwrap_or_default(),
        }
    }

    /// The call's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The call's metadata, to change.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Values for the handler (server) or for later interceptors.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// When the call's deadline passes, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Server: the client's address, when known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
}

/// Splits `/pkg.Service/Method` into service and method.
pub(crate) fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    trimmed.rsplit_once('/').unwrap_or((trimmed, ""))
}

/// Runs on the client before each call is sent.
pub trait ClientInterceptor: Send + Sync + 'static {
    /// Returns the (possibly changed) head, or a status that fails the call
    /// without sending it.
    fn intercept(&self, head: CallHead) -> impl Future<Output = Result<CallHead, Status>> + Send;
}

/// Runs on the server before each call reaches its handler.
pub trait ServerInterceptor: Send + Sync + 'static {
    /// Returns the (possibly changed) head, or a status that is sent back in
    /// place of calling the handler.
    fn intercept(&self, head: CallHead) -> impl Future<Output = Result<CallHead, Status>> + Send;
}

/// A synchronous function works as an interceptor on either side.
impl<F> ClientInterceptor for F
where
    F: Fn(CallHead) -> Result<CallHead, Status> + Send + Sync + 'static,
{
    fn intercept(&self, head: CallHead) -> impl Future<Output = Result<CallHead, Status>> + Send {
        std::future::ready(self(head))
    }
}

impl<F> ServerInterceptor for F
where
    F: Fn(CallHead) -> Result<CallHead, Status> + Send + Sync + 'static,
{
    fn intercept(&self, head: CallHead) -> impl Future<Output = Result<CallHead, Status>> + Send {
        std::future::ready(self(head))
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form, so that interceptors of different types stack.
pub(crate) trait DynInterceptor: Send + Sync + 'static {
    fn intercept_dyn(&self, head: CallHead) -> BoxFuture<'_, Result<CallHead, Status>>;
}

pub(crate) struct ClientDyn<I>(pub(crate) I);
pub(crate) struct ServerDyn<I>(pub(crate) I);

impl<I: ClientInterceptor> DynInterceptor for ClientDyn<I> {
    fn intercept_dyn(&self, head: CallHead) -> BoxFuture<'_, Result<CallHead, Status>> {
        Box::pin(self.0.intercept(head))
    }
}

impl<I: ServerInterceptor> DynInterceptor for ServerDyn<I> {
    fn intercept_dyn(&self, head: CallHead) -> BoxFuture<'_, Result<CallHead, Status>> {
        Box::pin(self.0.intercept(head))
    }
}

/// A stack of interceptors; empty costs nothing per call.
#[derive(Clone, Default)]
pub(crate) struct Interceptors(pub(crate) Vec<std::sync::Arc<dyn DynInterceptor>>);

impl Interceptors {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) async fn run(&self, mut head: CallHead) -> Result<CallHead, Status> {
        for i in &self.0 {
            head = i.intercept_dyn(head).await?;
        }
        Ok(head)
    }
}
