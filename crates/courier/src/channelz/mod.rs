//! Channelz (gRFC A14): what this process's channels, subchannels, servers
//! and connections are doing, for a remote debugging tool to read.
//!
//! Every [`Channel`](crate::Channel), its subchannels, every serving
//! [`Server`](crate::Server) and every connection register themselves in a
//! process-wide registry, each under an id that no other entity of the
//! process ever has, and leave it when they are dropped. The registry costs
//! a lock once per channel, subchannel, server or connection, never per
//! call; calls and frames are counted with relaxed atomic adds.
//!
//! [`ChannelzService`] serves the registry as `grpc.channelz.v1.Channelz`,
//! which grpc's tools and any gRPC implementation's channelz client read,
//! and `courier channelz ADDR` prints. [`Server::with_admin`] adds it with
//! the health and reflection services in one call.
//!
//! What is reported:
//!
//! - channels: target, connectivity state, calls started (succeeded and
//!   failed once the call path reports how calls end), the time of the last
//!   call, their subchannels, and a trace of their last
//!   [`TRACE_EVENTS`](trace::TRACE_EVENTS) events (creation, state changes,
//!   subchannels made);
//! - subchannels: address, state, calls started, trace, and their current
//!   connection;
//! - servers: calls started, succeeded and failed, the last call's time, the
//!   listening socket and the connections accepted;
//! - sockets: streams started, succeeded (ended by both sides) and failed
//!   (reset, or cut off with their connection), "messages" sent and
//!   received, which are the DATA frames that carry data (a gRPC message
//!   larger than a frame counts once per frame), keepalive PINGs sent, the
//!   last stream opened by each side, the last message sent and received,
//!   the connection-level flow-control windows, the local and remote
//!   addresses, and for TLS the cipher suite and the peer's certificate.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use courier::channelz::pb::{GetServersRequest, channelz_client::ChannelzClient};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = courier::Server::builder().with_channelz();
//! tokio::spawn(server.serve_with_listener(listener, std::future::pending()));
//!
//! let client = ChannelzClient::connect(format!("http://{addr}")).await?;
//! let servers = client.get_servers(GetServersRequest::default()).await?.into_inner();
//! assert!(!servers.server.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! [`Server::with_admin`]: crate::Server::with_admin
#![cfg_attr(
    not(all(feature = "health", feature = "reflection")),
    doc = "\n`Server::with_admin` needs the `health` and `reflection` features too."
)]
// Without the feature the registry is still kept (the transport counts into
// it), but nothing reads it.
#![cfg_attr(not(feature = "channelz"), allow(dead_code))]

#[cfg(all(feature = "channelz", feature = "health", feature = "reflection"))]
mod admin;
pub(crate) mod channel;
pub(crate) mod registry;
pub(crate) mod server;
#[cfg(feature = "channelz")]
mod service;
pub(crate) mod socket;
pub mod trace;

#[cfg(all(feature = "channelz", feature = "health", feature = "reflection"))]
pub use admin::Admin;
#[cfg(feature = "channelz")]
pub use service::{ChannelzService, DEFAULT_PAGE, MAX_PAGE};

/// The messages, client and server generated from
/// `grpc/channelz/v1/channelz.proto`.
///
/// [`channelz_client::ChannelzClient`](pb::channelz_client::ChannelzClient)
/// reads the channelz service of any gRPC server.
#[cfg(feature = "channelz")]
pub mod pb {
    #![allow(clippy::all)]
    #![allow(missing_docs)]
    crate::include_proto!("grpc.channelz.v1");
}
