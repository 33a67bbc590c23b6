//! The `dns:` resolver, the default: every A and AAAA record of a host.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::target::split_host_port;
use super::{Address, Resolver, ResolverBuilder, ResolverSink, ResolverState, Target};
use crate::status::Status;

/// The port of a name that gives none, as naming.md says.
const DEFAULT_PORT: u16 = 443;

/// The least time between two resolutions of one name, however often the
/// channel asks: grpc-go's and the C core's 30 seconds.
pub(crate) const MIN_RESOLUTION_INTERVAL: Duration = Duration::from_secs(30);

/// Builds DNS resolvers.
pub(super) struct DnsBuilder;

/// What a DNS target asks for.
struct Query {
    host: String,
    port: u16,
}

impl DnsBuilder {
    fn query(target: &Target) -> Result<Query, Status> {
        let bad = |why: String| Status::invalid_argument(format!("invalid target {:?}: {why}", target.as_str()));
        if target.authority().is_some_and(|a| !a.is_empty()) {
            return Err(bad(
                "naming a DNS server in the target is not supported by this resolver; use dns:///host:port".into(),
            ));
        }
        let (host, port) = split_host_port(target.endpoint(), DEFAULT_PORT)
            .map_err(|why| bad(format!("{why}; expected dns:[//dns-server/]host[:port]")))?;
        Ok(Query {
            host: host.to_string(),
            port,
        })
    }
}

impl ResolverBuilder for DnsBuilder {
    fn scheme(&self) -> &str {
        "dns"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        let query = Self::query(target)?;
        // An IP address needs no lookup.
        if let Ok(ip) = query.host.parse::<IpAddr>() {
            sink.update(ResolverState::new(vec![Address::socket(SocketAddr::new(
                ip, query.port,
            ))]));
            return Ok(Box::new(Literal));
        }
        let wake = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(resolve_loop(query, sink, wake.clone()));
        Ok(Box::new(DnsResolver {
            wake,
            task: task.abort_handle(),
        }))
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        let bad = |why: String| Status::invalid_argument(format!("invalid target {:?}: {why}", target.as_str()));
        split_host_port(target.endpoint(), DEFAULT_PORT)
            .map(drop)
            .map_err(|why| bad(format!("{why}; expected dns:[//dns-server/]host[:port]")))
    }
}

/// A target that is an IP address.
struct Literal;

impl Resolver for Literal {}

/// A running DNS resolution.
struct DnsResolver {
    wake: Arc<tokio::sync::Notify>,
    task: tokio::task::AbortHandle,
}

impl Resolver for DnsResolver {
    fn resolve_now(&mut self) {
        self.wake.notify_one();
    }
}

impl Drop for DnsResolver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resolves at once, then again each time the channel asks, at most once
/// per [`MIN_RESOLUTION_INTERVAL`].
async fn resolve_loop(query: Query, sink: ResolverSink, wake: Arc<tokio::sync::Notify>) {
    loop {
        let started = tokio::time::Instant::now();
        match lookup(&query).await {
            Ok(addresses) => sink.update(ResolverState::new(addresses)),
            Err(status) => sink.error(status),
        }
        wake.notified().await;
        tokio::time::sleep_until(started + MIN_RESOLUTION_INTERVAL).await;
    }
}

async fn lookup(query: &Query) -> Result<Vec<Address>, Status> {
    let found = tokio::net::lookup_host((query.host.as_str(), query.port))
        .await
        .map_err(|e| {
            Status::unavailable(format!(
                "DNS resolution failed: cannot resolve the host name {:?} ({e}); check the name",
                query.host
            ))
        })?;
    let mut addresses: Vec<Address> = Vec::new();
    for addr in found {
        let addr = Address::socket(addr);
        if !addresses.contains(&addr) {
            addresses.push(addr);
        }
    }
    Ok(addresses)
}
