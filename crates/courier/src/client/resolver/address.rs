//! One address a subchannel connects to.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where one server listens: what a resolver returns, a list of them per
/// target, and what each subchannel connects to.
///
/// ```
/// use courier::client::resolver::Address;
/// let a = Address::socket("[::1]:50051".parse().unwrap());
/// assert_eq!(a.to_string(), "[::1]:50051");
/// assert_eq!(Address::unix("/run/app.sock").to_string(), "unix:/run/app.sock");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address(pub(crate) Repr);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Repr {
    /// An IP address and port.
    Socket(SocketAddr),
    /// A host name, resolved by the system (`getaddrinfo`) each time a
    /// connection is made; for `passthrough:` targets.
    Host { host: String, port: u16 },
    /// A Unix socket path.
    Unix(PathBuf),
    /// A name in Linux's abstract Unix socket namespace.
    UnixAbstract(Vec<u8>),
}

impl Address {
    /// An IP address and port.
    pub fn socket(addr: SocketAddr) -> Address {
        Address(Repr::Socket(addr))
    }

    /// A host name and port, handed to the system's resolver each time a
    /// connection is made, which connects to the first of its addresses
    /// that accepts.
    pub fn host(host: impl Into<String>, port: u16) -> Address {
        Address(Repr::Host {
            host: host.into(),
            port,
        })
    }

    /// A Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Address {
        Address(Repr::Unix(path.into()))
    }

    /// A Unix socket in Linux's abstract namespace, named `name` (without
    /// the leading NUL byte).
    pub fn unix_abstract(name: impl Into<Vec<u8>>) -> Address {
        Address(Repr::UnixAbstract(name.into()))
    }

    /// The IP address and port, for an address that is one.
    pub fn as_socket(&self) -> Option<SocketAddr> {
        match self.0 {
            Repr::Socket(addr) => Some(addr),
            _ => None,
        }
    }

    /// The socket path, for a Unix socket address.
    pub fn as_unix_path(&self) -> Option<&Path> {
        match &self.0 {
            Repr::Unix(path) => Some(path),
            _ => None,
        }
    }

    /// Whether this is an IPv6 address (Happy Eyeballs interleaves the two
    /// families).
    pub(crate) fn is_ipv6(&self) -> bool {
        matches!(self.0, Repr::Socket(SocketAddr::V6(_)))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Socket(addr) => write!(f, "{addr}"),
            Repr::Host { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Repr::Host { host, port } => write!(f, "{host}:{port}"),
            Repr::Unix(path) => write!(f, "unix:{}", path.display()),
            Repr::UnixAbstract(name) => write!(f, "unix-abstract:{}", String::from_utf8_lossy(name)),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        Address::socket(addr)
    }
}
