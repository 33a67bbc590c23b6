//! Parsing a channel's target into a scheme, an authority and an endpoint,
//! and choosing the resolver for it.

use std::fmt;
use std::sync::Arc;

use super::ResolverBuilder;
use crate::status::Status;

/// A channel's target, parsed as grpc/grpc `doc/naming.md` describes it:
/// `scheme:[//authority/]endpoint`.
///
/// ```
/// # fn main() -> Result<(), courier::Status> {
/// use courier::client::resolver::Target;
/// let t = Target::parse("dns://8.8.8.8/example.com:443")?;
/// assert_eq!(t.scheme(), "dns");
/// assert_eq!(t.authority(), Some("8.8.8.8"));
/// assert_eq!(t.endpoint(), "example.com:443");
/// // A target without a known scheme is a DNS name.
/// let t = Target::parse("localhost:50051")?;
/// assert_eq!((t.scheme(), t.endpoint()), ("dns", "localhost:50051"));
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    text: String,
    scheme: String,
    authority: Option<String>,
    endpoint: String,
}

impl Target {
    /// Parses `text` with the resolvers registered in this process.
    pub fn parse(text: &str) -> Result<Target, Status> {
        parse(text, None).map(|p| p.target)
    }

    /// The scheme, in lowercase: `"dns"` for a target that named none.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The authority between `//` and the next `/`: for `dns:`, the DNS
    /// server to ask. `None` when the target has no `//`, and `Some("")`
    /// for `scheme:///endpoint`.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_deref()
    }

    /// What the resolver resolves: for `dns:`, `host[:port]`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The target as the application wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// A parsed target and the resolver that will resolve it.
pub(crate) struct Parsed {
    pub(crate) target: Target,
    pub(crate) builder: Arc<dyn ResolverBuilder>,
    /// The target was written `https://`: the channel uses TLS.
    pub(crate) https: bool,
}

/// Whether `s` is a URI scheme: a letter, then letters, digits, `+`, `-`
/// and `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Parses `text`, with `own` a resolver given to this channel alone, which
/// wins over the registered ones for its scheme.
pub(crate) fn parse(text: &str, own: Option<&Arc<dyn ResolverBuilder>>) -> Result<Parsed, Status> {
    if text.trim().is_empty() {
        return Err(Status::invalid_argument(
            "empty channel target: expected a target such as \"dns:///host:port\", \"host:port\" or \"unix:/path\"",
        ));
    }
    // The forms Courier has always taken: http:// and https:// name a host
    // to resolve with DNS, plaintext or over TLS.
    for (prefix, https) in [("http://", false), ("https://", true)] {
        if let Some(rest) = strip_prefix_ignore_case(text, prefix) {
            let endpoint = rest.strip_suffix('/').unwrap_or(rest);
            let target = Target {
                text: text.to_string(),
                scheme: "dns".into(),
                authority: Some(String::new()),
                endpoint: endpoint.to_string(),
            };
            let builder = dns(own);
            builder.check(&target)?;
            return Ok(Parsed { target, builder, https });
        }
    }
    let scheme_given = text.split_once(':').filter(|(s, _)| is_scheme(s));
    let found = scheme_given.and_then(|(scheme, rest)| {
        let scheme = scheme.to_ascii_lowercase();
        let builder = match own {
            Some(own) if own.scheme().eq_ignore_ascii_case(&scheme) => Some(own.clone()),
            _ => super::lookup(&scheme),
        }?;
        Some((scheme, rest, builder))
    });
    let (target, builder) = match found {
        Some((scheme, rest, builder)) => {
            let (authority, endpoint) = match rest.strip_prefix("//") {
                Some(after) => match after.split_once('/') {
                    Some((authority, endpoint)) => (Some(authority.to_string()), endpoint.to_string()),
                    None => {
                        return Err(Status::invalid_argument(format!(
                            "invalid target {text:?}: after \"{scheme}://\" expected an authority, \
                             then \"/\" and the endpoint, as in \"{scheme}:///endpoint\""
                        )));
                    }
                },
                None => (None, rest.to_string()),
            };
            let target = Target {
                text: text.to_string(),
                scheme,
                authority,
                endpoint,
            };
            (target, builder)
        }
        // No scheme a resolver claims: the whole target is a DNS name, as
        // naming.md says.
        None => {
            let target = Target {
                text: text.to_string(),
                scheme: "dns".into(),
                authority: None,
                endpoint: text.to_string(),
            };
            (target, dns(own))
        }
    };
    builder.check(&target)?;
    Ok(Parsed {
        target,
        builder,
        https: false,
    })
}

/// The resolver of targets that name no scheme: the channel's own for
/// `dns`, if it has one, else the registered one.
fn dns(own: Option<&Arc<dyn ResolverBuilder>>) -> Arc<dyn ResolverBuilder> {
    match own {
        Some(own) if own.scheme().eq_ignore_ascii_case("dns") => own.clone(),
        _ => super::dns_builder(),
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// Splits `host[:port]` or `[v6][:port]`, giving `default_port` when there
/// is none. The host of a bracketed IPv6 address comes without brackets.
pub(crate) fn split_host_port(s: &str, default_port: u16) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?} has no closing ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("expected ':' and a port after ']' in {s:?}")),
            },
        }
    } else {
        match s.rsplit_once(':') {
            // More than one colon and no brackets: a bare IPv6 address.
            Some((host, _)) if host.contains(':') => (s, None),
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {s:?}"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{p:?} is not a port number (0 to 65535) in {s:?}"))?,
    };
    Ok((host, port))
}

/// The host of an authority, for TLS's server name: without the port, and
/// an IPv6 address without its brackets.
#[cfg(feature = "tls")]
pub(crate) fn host_of(authority: &str) -> &str {
    split_host_port(authority, 0).map(|(host, _)| host).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (String, Option<String>, String, bool) {
        let p = parse(text, None).unwrap_or_else(|e| panic!("{text}: {e}"));
        (p.target.scheme, p.target.authority, p.target.endpoint, p.https)
    }

    #[test]
    fn targets_split_into_scheme_authority_and_endpoint() {
        let s = |v: &str| v.to_string();
        assert_eq!(
            parts("dns:///foo:50051"),
            (s("dns"), Some(s("")), s("foo:50051"), false)
        );
        assert_eq!(parts("dns:foo"), (s("dns"), None, s("foo"), false));
        assert_eq!(
            parts("dns://8.8.8.8/example.com:443"),
            (s("dns"), Some(s("8.8.8.8")), s("example.com:443"), false)
        );
        assert_eq!(
            parts("dns://127.0.0.1:5353/name:50051"),
            (s("dns"), Some(s("127.0.0.1:5353")), s("name:50051"), false)
        );
        assert_eq!(
            parts("passthrough://auth:53/foo.example:80"),
            (s("passthrough"), Some(s("auth:53")), s("foo.example:80"), false)
        );
        assert_eq!(parts("localhost:50051"), (s("dns"), None, s("localhost:50051"), false));
        assert_eq!(parts("127.0.0.1:50051"), (s("dns"), None, s("127.0.0.1:50051"), false));
        assert_eq!(parts("[::1]:50051"), (s("dns"), None, s("[::1]:50051"), false));
        assert_eq!(parts("http://h:1"), (s("dns"), Some(s("")), s("h:1"), false));
        assert_eq!(parts("https://h:1/"), (s("dns"), Some(s("")), s("h:1"), true));
        assert_eq!(
            parts("ipv4:1.2.3.4,5.6.7.8:9"),
            (s("ipv4"), None, s("1.2.3.4,5.6.7.8:9"), false)
        );
        assert_eq!(parts("unix:///tmp/s"), (s("unix"), Some(s("")), s("tmp/s"), false));
        assert_eq!(
            parts("passthrough:///h:1"),
            (s("passthrough"), Some(s("")), s("h:1"), false)
        );
    }

    #[test]
    fn malformed_targets_say_what_was_expected() {
        for (text, says) in [
            ("", "empty channel target"),
            ("dns://8.8.8.8", "expected an authority"),
            ("ipv4:1.2.3.4:99999", "not a port number"),
            ("ipv4:not-an-ip", "not an IPv4 address"),
            ("ipv6:1.2.3.4", "not an IPv6 address"),
            ("unix:", "no socket path"),
            ("http://h:notaport", "not a port number"),
            ("dns:///:80", "no host"),
            ("dns://ns.example.com/h:80", "is not an IP address"),
        ] {
            let err = parse(text, None).err().unwrap_or_else(|| panic!("{text:?} parsed"));
            assert_eq!(err.code(), crate::Code::InvalidArgument, "{text:?}: {err}");
            assert!(err.message().contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn host_and_port_split_with_defaults() {
        assert_eq!(split_host_port("h", 443), Ok(("h", 443)));
        assert_eq!(split_host_port("h:80", 443), Ok(("h", 80)));
        assert_eq!(split_host_port("[::1]:80", 443), Ok(("::1", 80)));
        assert_eq!(split_host_port("[::1]", 443), Ok(("::1", 443)));
        assert_eq!(split_host_port("::1", 443), Ok(("::1", 443)));
        assert!(split_host_port(":80", 443).is_err());
        assert!(split_host_port("[::1", 443).is_err());
    }
}
