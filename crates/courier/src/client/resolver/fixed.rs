//! Resolvers whose targets spell out their addresses: `ipv4:`, `ipv6:`,
//! `unix:`, `unix-abstract:` and `passthrough:`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::target::split_host_port;
use super::{Address, Resolver, ResolverBuilder, ResolverSink, ResolverState, Target};
use crate::status::Status;

/// The port of an address that names none, as naming.md gives it.
const DEFAULT_PORT: u16 = 443;

/// A resolver with nothing left to do once it has reported its addresses.
struct Resolved;

impl Resolver for Resolved {}

fn bad(target: &Target, why: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("invalid target {:?}: {why}", target.as_str()))
}

/// Reports `addresses` once.
fn report(sink: &ResolverSink, addresses: Vec<Address>) -> Result<Box<dyn Resolver>, Status> {
    sink.update(ResolverState::new(addresses));
    Ok(Box::new(Resolved))
}

/// The authority of a list of IP addresses: the address itself when there
/// is one, `localhost` otherwise.
fn list_authority(target: &Target) -> String {
    match target.endpoint().split_once(',') {
        None => target.endpoint().to_string(),
        Some(_) => "localhost".into(),
    }
}

/// Parses a comma-separated list of `addr[:port]`, each an IP address of
/// the family `parse_ip` accepts.
fn ip_list(target: &Target, family: &str, parse_ip: fn(&str) -> Option<IpAddr>) -> Result<Vec<Address>, Status> {
    if target.authority().is_some_and(|a| !a.is_empty()) {
        return Err(bad(target, format!("{family}: targets take no authority")));
    }
    let mut addresses = Vec::new();
    for item in target.endpoint().split(',') {
        let (host, port) = split_host_port(item, DEFAULT_PORT).map_err(|why| bad(target, why))?;
        let ip = parse_ip(host).ok_or_else(|| {
            bad(
                target,
                format!("{host:?} is not an {family} address; expected {family}:addr[:port][,addr[:port],...]"),
            )
        })?;
        addresses.push(Address::socket(SocketAddr::new(ip, port)));
    }
    Ok(addresses)
}

/// `ipv4:addr[:port][,addr[:port],...]`.
pub(super) struct Ipv4;

impl Ipv4 {
    fn addresses(target: &Target) -> Result<Vec<Address>, Status> {
        ip_list(target, "IPv4", |s| s.parse::<Ipv4Addr>().ok().map(IpAddr::V4))
    }
}

impl ResolverBuilder for Ipv4 {
    fn scheme(&self) -> &str {
        "ipv4"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        report(&sink, Self::addresses(target)?)
    }

    fn default_authority(&self, target: &Target) -> String {
        list_authority(target)
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        Self::addresses(target).map(drop)
    }
}

/// `ipv6:addr` or `ipv6:[addr]:port`, comma-separated.
pub(super) struct Ipv6;

impl Ipv6 {
    fn addresses(target: &Target) -> Result<Vec<Address>, Status> {
        ip_list(target, "IPv6", |s| s.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
    }
}

impl ResolverBuilder for Ipv6 {
    fn scheme(&self) -> &str {
        "ipv6"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        report(&sink, Self::addresses(target)?)
    }

    fn default_authority(&self, target: &Target) -> String {
        list_authority(target)
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        Self::addresses(target).map(drop)
    }
}

/// `unix:path` (relative or absolute) and `unix:///absolute/path`.
pub(super) struct Unix;

impl Unix {
    fn address(target: &Target) -> Result<Address, Status> {
        let path = match target.authority() {
            None => target.endpoint().to_string(),
            Some("") => format!("/{}", target.endpoint()),
            Some(_) => {
                return Err(bad(
                    target,
                    "unix: targets take no authority; expected unix:path or unix:///absolute/path",
                ));
            }
        };
        if path.is_empty() || path == "/" {
            return Err(bad(
                target,
                "no socket path; expected unix:path or unix:///absolute/path",
            ));
        }
        Ok(Address::unix(path))
    }
}

impl ResolverBuilder for Unix {
    fn scheme(&self) -> &str {
        "unix"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        report(&sink, vec![Self::address(target)?])
    }

    fn default_authority(&self, _target: &Target) -> String {
        "localhost".into()
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        Self::address(target).map(drop)
    }
}

/// `unix-abstract:name`: a socket in Linux's abstract namespace.
pub(super) struct UnixAbstract;

impl UnixAbstract {
    fn address(target: &Target) -> Result<Address, Status> {
        if target.authority().is_some() {
            return Err(bad(target, "expected unix-abstract:name"));
        }
        Ok(Address::unix_abstract(target.endpoint().as_bytes().to_vec()))
    }
}

impl ResolverBuilder for UnixAbstract {
    fn scheme(&self) -> &str {
        "unix-abstract"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        report(&sink, vec![Self::address(target)?])
    }

    fn default_authority(&self, _target: &Target) -> String {
        "localhost".into()
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        Self::address(target).map(drop)
    }
}

/// `passthrough:///host:port`: the endpoint as given, for the system to
/// resolve each time a connection is made.
pub(super) struct Passthrough;

impl Passthrough {
    fn address(target: &Target) -> Result<Address, Status> {
        let (host, port) = split_host_port(target.endpoint(), DEFAULT_PORT).map_err(|why| bad(target, why))?;
        Ok(match host.parse::<IpAddr>() {
            Ok(ip) => Address::socket(SocketAddr::new(ip, port)),
            Err(_) => Address::host(host, port),
        })
    }
}

impl ResolverBuilder for Passthrough {
    fn scheme(&self) -> &str {
        "passthrough"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        report(&sink, vec![Self::address(target)?])
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        Self::address(target).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::resolver::parse_target;

    fn resolve(text: &str) -> Vec<Address> {
        let parsed = parse_target(text, None).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _resolver = parsed.builder.build(&parsed.target, ResolverSink { tx }).unwrap();
        match rx.try_recv() {
            Ok(crate::client::controller::Event::Resolved(Ok(state))) => state.addresses().to_vec(),
            _ => panic!("{text}: no addresses reported"),
        }
    }

    #[test]
    fn literal_targets_resolve_to_their_addresses() {
        let sock = |s: &str| Address::socket(s.parse().unwrap());
        assert_eq!(
            resolve("ipv4:127.0.0.1:1,10.0.0.2"),
            vec![sock("127.0.0.1:1"), sock("10.0.0.2:443")]
        );
        assert_eq!(
            resolve("ipv6:[::1]:5,fe80::1"),
            vec![sock("[::1]:5"), sock("[fe80::1]:443")]
        );
        assert_eq!(resolve("unix:rel/s.sock"), vec![Address::unix("rel/s.sock")]);
        assert_eq!(resolve("unix:/abs/s.sock"), vec![Address::unix("/abs/s.sock")]);
        assert_eq!(resolve("unix:///abs/s.sock"), vec![Address::unix("/abs/s.sock")]);
        assert_eq!(
            resolve("unix-abstract:name"),
            vec![Address::unix_abstract(b"name".to_vec())]
        );
        assert_eq!(
            resolve("passthrough:///svc.local:7"),
            vec![Address::host("svc.local", 7)]
        );
        assert_eq!(resolve("passthrough:///127.0.0.1:7"), vec![sock("127.0.0.1:7")]);
    }
}
