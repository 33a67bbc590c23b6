//! `Server::with_admin`: the services an operator expects of every server,
//! added in one call, as grpc-go's `admin` package does.

use crate::health::{HealthReporter, HealthService};
use crate::reflection::{ReflectionService, ReflectionServiceV1Alpha};
use crate::server::{Route, Routes, Server};

use super::ChannelzService;

/// The routes [`Server::with_admin`] adds in front of a server's `R`:
/// channelz, reflection (`v1alpha` and `v1`) and health.
pub type Admin<R> =
    Route<ChannelzService, Route<ReflectionServiceV1Alpha, Route<ReflectionService, Route<HealthService, R>>>>;

impl<R: Routes> Server<R> {
    /// Adds the administration services: health (`grpc.health.v1.Health`,
    /// reporting the server SERVING), reflection (`grpc.reflection.v1` and
    /// `v1alpha`, describing every service of the server, those added later
    /// included) and channelz (`grpc.channelz.v1.Channelz`).
    ///
    /// The health service gets a [`HealthReporter`] of its own; to set
    /// statuses, add the three with [`Server::with_health`] and your
    /// reporter, [`Server::with_reflection`] and [`Server::with_channelz`]
    /// instead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use courier::health::pb::{HealthCheckRequest, health_client::HealthClient};
    /// use courier::channelz::pb::{GetServersRequest, channelz_client::ChannelzClient};
    ///
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = listener.local_addr()?;
    /// let server = courier::Server::builder()
    ///     // .add_service(GreeterServer::new(MyGreeter))
    ///     .with_admin();
    /// assert!(server.service_names().contains(&"grpc.channelz.v1.Channelz"));
    /// tokio::spawn(server.serve_with_listener(listener, std::future::pending()));
    ///
    /// let target = format!("http://{addr}");
    /// let health = HealthClient::connect(&target).await?;
    /// let reply = health.check(HealthCheckRequest::default()).await?.into_inner();
    /// assert_eq!(reply.status(), courier::health::ServingStatus::Serving);
    ///
    /// let channelz = ChannelzClient::connect(&target).await?;
    /// let servers = channelz.get_servers(GetServersRequest::default()).await?.into_inner();
    /// assert!(!servers.server.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_admin(self) -> Server<Admin<R>> {
        self.with_health(HealthReporter::new())
            .with_reflection()
            .with_channelz()
    }
}
