//! Courier: a complete, fast gRPC implementation for Rust.
//!
//! Courier has the client, the server, all four kinds of call (unary, client
//! streaming, server streaming, bidirectional), metadata, deadlines,
//! cancellation, compression and interceptors, over HTTP/2. Services are
//! generated from `.proto` files by the `courier-build` crate, in pure Rust.
//!
//! # Quick start
//!
//! In `build.rs`:
//!
//! ```ignore
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     courier_build::compile_protos("proto/helloworld.proto")?;
//!     Ok(())
//! }
//! ```
//!
//! A server and a client:
//!
//! ```ignore
//! mod pb { courier::include_proto!("helloworld"); }
//! use pb::greeter_server::{Greeter, GreeterServer};
//! use courier::{Request, Response, Status};
//!
//! struct MyGreeter;
//! impl Greeter for MyGreeter {
//!     async fn say_hello(&self, req: Request<pb::HelloRequest>) -> Result<Response<pb::HelloReply>, Status> {
//!         Ok(Response::new(pb::HelloReply { message: format!("Hello {}!", req.get_ref().name) }))
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! tokio::spawn(courier::Server::builder().add_service(GreeterServer::new(MyGreeter)).serve("127.0.0.1:50051"));
//! let client = pb::greeter_client::GreeterClient::connect("http://127.0.0.1:50051").await?;
//! let reply = client.say_hello(pb::HelloRequest { name: "Ada".into() }).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! One module per concept: [`status`], [`metadata`], [`codec`],
//! [`compression`], [`credentials`], [`client`], [`server`], [`interceptor`]; the HTTP/2
//! transport is private.

#![warn(missing_docs)]

pub mod client;
pub mod codec;
pub mod compression;
pub mod credentials;
mod extensions;
pub mod interceptor;
pub mod metadata;
mod request;
mod response;
pub mod server;
pub mod status;
mod streaming;
mod transport;

pub use client::Channel;
pub use compression::{Encoding, MessageCompression};
pub use extensions::Extensions;
pub use metadata::Metadata;
pub use request::{IntoRequest, IntoStreamingRequest, Request};
pub use response::Response;
pub use server::Server;
pub use status::{Code, Status};
pub use streaming::Streaming;

/// The default largest message a receiver accepts: 4 MiB, as in every
/// official gRPC implementation.
pub const DEFAULT_MAX_RECV_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The `user-agent` Courier sends.
pub const USER_AGENT: &str = concat!("grpc-rust-courier/", env!("CARGO_PKG_VERSION"));

/// Marks a message that arrived compressed: present in the extensions of a
/// server's unary or server-streaming request, and of a client's unary or
/// client-streaming response, when the one message was compressed on the
/// wire. For streams, see [`Streaming::last_message_compressed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageCompressed;

/// Includes the code `courier-build` generated for a proto package.
///
/// ```ignore
/// pub mod helloworld {
///     courier::include_proto!("helloworld");
/// }
/// ```
#[macro_export]
macro_rules! include_proto {
    ($package:tt) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// What generated code uses. Not a stable API for people.
#[doc(hidden)]
pub mod codegen {
    pub use futures_core::Stream;
    pub use std::future::Future;
    pub use std::sync::Arc;
}
