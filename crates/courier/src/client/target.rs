//! Parsing channel targets: `http://host:port`, `host:port`, `dns:///host:port`
//! and `unix:/path`.

use http::uri::Scheme;

use crate::status::Status;
use crate::transport::Address;

pub(crate) struct Target {
    pub(crate) address: Address,
    pub(crate) scheme: Scheme,
    pub(crate) authority: String,
}

pub(crate) fn parse(target: &str) -> Result<Target, Status> {
    let bad = |why: &str| Status::invalid_argument(format!("invalid target {target:?}: {why}"));
    if let Some(path) = target.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(bad("no socket path"));
        }
        return Ok(Target {
            address: Address::Unix(path.into()),
            scheme: Scheme::HTTP,
            authority: "localhost".into(),
        });
    }
    let (scheme, rest) = if let Some(rest) = target.strip_prefix("http://") {
        (Scheme::HTTP, rest)
    } else if let Some(rest) = target.strip_prefix("https://") {
        (Scheme::HTTPS, rest)
    } else if let Some(rest) = target.strip_prefix("dns:///") {
        (Scheme::HTTP, rest)
    } else {
        (Scheme::HTTP, target)
    };
    let hostport = rest.trim_end_matches('/');
    let (host, port) = split_host_port(hostport).ok_or_else(|| bad("expected host:port"))?;
    Ok(Target {
        address: Address::Tcp {
            host: host.to_string(),
            port,
        },
        scheme,
        authority: hostport.to_string(),
    })
}

/// Splits `host:port` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port.parse().ok()?));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.is_empty() || host.contains(':') {
        return None;
    }
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = parse("http://127.0.0.1:50051").unwrap();
        assert_eq!(
            t.address,
            Address::Tcp {
                host: "127.0.0.1".into(),
                port: 50051
            }
        );
        assert_eq!(t.authority, "127.0.0.1:50051");
        let t = parse("localhost:1").unwrap();
        assert_eq!(
            t.address,
            Address::Tcp {
                host: "localhost".into(),
                port: 1
            }
        );
        let t = parse("[::1]:9").unwrap();
        assert_eq!(
            t.address,
            Address::Tcp {
                host: "::1".into(),
                port: 9
            }
        );
        let t = parse("unix:/tmp/s.sock").unwrap();
        assert_eq!(t.address, Address::Unix("/tmp/s.sock".into()));
        let t = parse("unix:///tmp/s.sock").unwrap();
        assert_eq!(t.address, Address::Unix("/tmp/s.sock".into()));
        for bad in ["", "nohost", "http://h:notaport", "unix:", ":80"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
