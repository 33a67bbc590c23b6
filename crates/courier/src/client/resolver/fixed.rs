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

/// A scheme whose targets spell out their addresses: parsed once to check
/// the target when the channel is built, and again to report them, once,
/// each time the channel leaves IDLE.
pub(super) struct Literal {
    scheme: &'static str,
    addresses: fn(&Target) -> Result<Vec<Address>, Status>,
    /// The `:authority` of the target's calls; `None` for the endpoint.
    authority: Option<fn(&Target) -> String>,
}

impl ResolverBuilder for Literal {
    fn scheme(&self) -> &str {
        self.scheme
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        sink.update(ResolverState::new((self.addresses)(target)?));
        Ok(Box::new(Resolved))
    }

    fn default_authority(&self, target: &Target) -> String {
        match self.authority {
            Some(authority) => authority(target),
            None => target.endpoint().to_string(),
        }
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        (self.addresses)(target).map(drop)
    }
}

/// The authority of a list of IP addresses: the address itself when there
/// is one, `localhost` otherwise.
fn list_authority(target: &Target) -> String {
    match target.endpoint().split_once(',') {
        None => target.endpoint().to_string(),
        Some(_) => "localhost".into(),
    }
}

/// The authority of a Unix socket target.
fn localhost(_target: &Target) -> String {
    "localhost".into()
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
pub(super) const IPV4: Literal = Literal {
    scheme: "ipv4",
    addresses: |target| ip_list(target, "IPv4", |s| s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)),
    authority: Some(list_authority),
};

/// `ipv6:addr` or `ipv6:[addr]:port`, comma-separated.
pub(super) const IPV6: Literal = Literal {
    scheme: "ipv6",
    addresses: |target| ip_list(target, "IPv6", |s| s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)),
    authority: Some(list_authority),
};

/// `unix:path` (relative or absolute) and `unix:///absolute/path`.
pub(super) const UNIX: Literal = Literal {
    scheme: "unix",
    addresses: unix_address,
    authority: Some(localhost),
};

fn unix_address(target: &Target) -> Result<Vec<Address>, Status> {
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
    Ok(vec![Address::unix(path)])
}

/// `unix-abstract:name`: a socket in Linux's abstract namespace.
pub(super) const UNIX_ABSTRACT: Literal = Literal {
    scheme: "unix-abstract",
    addresses: |target| {
        if target.authority().is_some() {
            return Err(bad(target, "expected unix-abstract:name"));
        }
        Ok(vec![Address::unix_abstract(target.endpoint().as_bytes().to_vec())])
    },
    authority: Some(localhost),
};

/// `passthrough:///host:port`: the endpoint as given, for the system to
/// resolve each time a connection is made.
pub(super) const PASSTHROUGH: Literal = Literal {
    scheme: "passthrough",
    addresses: |target| {
        let (host, port) = split_host_port(target.endpoint(), DEFAULT_PORT).map_err(|why| bad(target, why))?;
        Ok(vec![match host.parse::<IpAddr>() {
            Ok(ip) => Address::socket(SocketAddr::new(ip, port)),
            Err(_) => Address::host(host, port),
        }])
    },
    authority: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::resolver::parse_target;

    fn resolve(text: &str) -> Vec<Address> {
        let parsed = parse_target(text, None).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _resolver = parsed
            .builder
            .build(
                &parsed.target,
                ResolverSink {
                    tx,
                    dns_service_config: false,
                },
            )
            .unwrap();
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
