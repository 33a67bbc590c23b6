//! A channel from an address and the connection flags.
//!
//! `ADDR` is `host:port` (`[::1]:50051` for IPv6), `http://host:port`,
//! `https://host:port`, or any target of grpc/grpc `doc/naming.md` that the
//! library resolves: `dns:[//server/]host:port`, `ipv4:a:port[,b:port...]`,
//! `ipv6:[a]:port[,...]`, `unix:/path`, `unix:///path`,
//! `unix-abstract:name` and `passthrough:///host:port`. Such a target is
//! handed to the channel as written. Loopback addresses (127.0.0.0/8,
//! `::1`, `localhost`, and `ipv4:`/`ipv6:` lists of only those) and Unix
//! sockets are plaintext by default, as a server tried out on one's own
//! machine usually is; every other address uses TLS unless `--plaintext`
//! says otherwise. Any TLS flag (`--ca`, `--cert`, `--insecure-skip-verify`,
//! `--servername`) implies `--tls`.
//!
//! `-H` metadata is attached to every call made on the channel (reflection
//! and health included) by a client interceptor.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use courier::client::balancer::Policy;
use courier::client::service_config::ServiceConfig;
use courier::credentials::ClientTlsConfig;
use courier::interceptor::CallHead;
use courier::{Channel, Metadata, Status};

use crate::error::{Error, Result};

/// How to reach the server.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectArgs {
    /// Plaintext HTTP/2, without TLS. The default for loopback addresses.
    #[arg(long, conflicts_with_all = ["tls", "ca", "cert", "key", "insecure_skip_verify", "servername"])]
    pub plaintext: bool,
    /// Use TLS. The default for addresses other than loopback.
    #[arg(long)]
    pub tls: bool,
    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Present this client certificate (PEM) for mutual TLS; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any server certificate: encrypted but not authenticated. Only
    /// for trying out a server with a self-signed certificate.
    #[arg(long)]
    pub insecure_skip_verify: bool,
    /// Verify the server's certificate against this name (and send it as
    /// SNI) instead of the address's host.
    #[arg(long, value_name = "NAME")]
    pub servername: Option<String>,
    /// How long to wait for the connection, such as 500ms, 10s or 1m.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Metadata to send with every call, as 'name: value' (repeatable). A
    /// name ending in -bin takes a base64 value.
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// A service config for the channel, in gRPC's JSON form
    /// (doc/service_config.md): the JSON text, or @FILE. Its methodConfig
    /// can set timeouts, wait-for-ready and retry or hedging policies; its
    /// loadBalancingConfig, the policy.
    #[arg(long, value_name = "JSON|@FILE")]
    pub service_config: Option<String>,
    /// The load-balancing policy: not a flag of every verb (`bench` sets it
    /// from its `--lb`); `None` is the library's default, pick_first.
    #[arg(skip)]
    pub lb: Option<Policy>,
}

/// A channel to the server, connected, and whether it uses TLS.
pub async fn connect(addr: &str, args: &ConnectArgs) -> Result<(Channel, bool)> {
    let target = Target::parse(addr)?;
    let tls = target.use_tls(args)?;
    let url = target.url(tls);
    let metadata = parse_headers(&args.headers)?;
    let mut builder = Channel::builder(&url).connect_timeout(args.connect_timeout);
    if let Some(lb) = &args.lb {
        builder = builder.load_balancing(lb.clone());
    }
    if let Some(config) = &args.service_config {
        builder = builder.service_config(service_config(config)?);
    }
    if tls {
        builder = builder.tls(tls_config(args)?);
    }
    if !metadata.is_empty() {
        builder = builder.interceptor(move |mut head: CallHead| -> std::result::Result<CallHead, Status> {
            head.metadata_mut().extend(metadata.clone());
            Ok(head)
        });
    }
    let channel = builder
        .connect()
        .await
        .map_err(|status| Error::msg(explain_connect_error(&status, tls)))?;
    Ok((channel, tls))
}

/// Reads `--service-config`: JSON text, or `@FILE`.
fn service_config(arg: &str) -> Result<ServiceConfig> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::msg(format!("cannot read the service config file {path}: {e}")))?,
        None => arg.to_string(),
    };
    ServiceConfig::from_json(&text).map_err(|status| Error::msg(format!("--service-config: {}", status.message())))
}

/// How the library words failures of the connection rather than of a call.
const TRANSPORT_FAILURES: [&str; 12] = [
    "failed to connect to",
    "answered with",
    "closed the connection before the HTTP/2 handshake",
    "did not answer with HTTP/2",
    "timed out after",
    "TLS handshake with",
    "HTTP/2 handshake failed",
    "connection error:",
    "transport error:",
    "connection closed by GOAWAY",
    "stream reset",
    "no system root certificates",
];

/// Says what a failure to connect means, with what to try next.
pub fn explain_connect_error(status: &Status, tls: bool) -> String {
    let message = status.message();
    let hint = if message.starts_with("TLS handshake") {
        if message.contains("does not speak TLS")
            || message.contains("InvalidContentType")
            || message.contains("corrupt message")
        {
            " (is the server plaintext? try --plaintext)"
        } else if message.contains("certificate") || message.contains("UnknownIssuer") {
            " (to trust the server's certificate pass --ca FILE, or --insecure-skip-verify to try it unverified)"
        } else {
            ""
        }
    } else if !tls && (message.contains("answered with TLS") || message.contains("may expect TLS")) {
        " (pass --tls)"
    } else if !tls
        && [
            "HTTP/2",
            "connection error:",
            "transport error:",
            "stream reset",
            "connection closed",
        ]
        .iter()
        .any(|p| message.starts_with(p))
    {
        " (if the server uses TLS, pass --tls)"
    } else {
        ""
    };
    format!("{message}{hint}")
}

/// Says what a call's failure to reach the server means, or `None` when the
/// status came from the server itself.
pub fn explain_transport_error(status: &Status, tls: bool) -> Option<String> {
    if !matches!(status.code(), courier::Code::Unavailable | courier::Code::Internal) {
        return None;
    }
    let message = status.message();
    let transport =
        TRANSPORT_FAILURES.iter().any(|p| message.contains(p)) || message.contains("did not agree to HTTP/2");
    transport.then(|| explain_connect_error(status, tls))
}

/// An address, split into what decides plaintext or TLS.
struct Target {
    /// `host:port` for the `http(s)://` and bare forms; otherwise the whole
    /// target, as written.
    authority: String,
    /// The form the address was written in.
    scheme: Scheme,
    loopback: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheme {
    /// `host:port`.
    Bare,
    Http,
    Https,
    /// `unix:` and `unix-abstract:`.
    Unix,
    /// Another scheme the library resolves (`dns:`, `ipv4:`, ...).
    Named,
}

impl Target {
    fn parse(addr: &str) -> Result<Target> {
        if ["unix:", "unix-abstract:"].iter().any(|p| has_prefix(addr, p)) {
            check_target(addr)?;
            return Ok(Target {
                authority: addr.to_string(),
                scheme: Scheme::Unix,
                loopback: true,
            });
        }
        let (scheme, rest) = if let Some(rest) = strip_prefix(addr, "http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = strip_prefix(addr, "https://") {
            (Scheme::Https, rest)
        } else if let Some(target) = named_target(addr)? {
            return Ok(Target {
                authority: addr.to_string(),
                scheme: Scheme::Named,
                loopback: named_is_loopback(&target),
            });
        } else {
            (Scheme::Bare, addr)
        };
        let rest = rest.trim_end_matches('/');
        let host = host_of(rest).ok_or_else(|| {
            Error::msg(format!(
                "invalid address {addr:?}: expected HOST:PORT, such as localhost:50051 or [::1]:50051, \
                 or a target such as dns:///HOST:PORT, ipv4:ADDR:PORT,... or unix:PATH"
            ))
        })?;
        Ok(Target {
            authority: rest.to_string(),
            scheme,
            loopback: is_loopback_host(host),
        })
    }

    fn use_tls(&self, args: &ConnectArgs) -> Result<bool> {
        let tls_flag = args.tls
            || args.ca.is_some()
            || args.cert.is_some()
            || args.insecure_skip_verify
            || args.servername.is_some();
        match self.scheme {
            Scheme::Unix if tls_flag => Err(Error::msg("TLS over a Unix socket is not supported")),
            Scheme::Unix => Ok(false),
            Scheme::Http if tls_flag => Err(Error::msg("an http:// address is plaintext: drop the TLS flags")),
            Scheme::Https if args.plaintext => Err(Error::msg("an https:// address uses TLS: drop --plaintext")),
            Scheme::Http => Ok(false),
            Scheme::Https => Ok(true),
            Scheme::Bare | Scheme::Named if args.plaintext => Ok(false),
            Scheme::Bare | Scheme::Named if tls_flag => Ok(true),
            Scheme::Bare | Scheme::Named => Ok(!self.loopback),
        }
    }

    /// What the channel is built for: a named target as written (TLS then
    /// comes from the builder's settings), the others as a URL.
    fn url(&self, tls: bool) -> String {
        match self.scheme {
            Scheme::Unix | Scheme::Named => self.authority.clone(),
            _ if tls => format!("https://{}", self.authority),
            _ => format!("http://{}", self.authority),
        }
    }
}

fn strip_prefix<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn has_prefix(text: &str, prefix: &str) -> bool {
    strip_prefix(text, prefix).is_some()
}

/// Checks a target with the library's parser, whose message says what was
/// expected.
fn check_target(addr: &str) -> Result<courier::client::resolver::Target> {
    courier::client::resolver::Target::parse(addr)
        .map_err(|status| Error::msg(format!("invalid address {addr:?}: {}", status.message())))
}

/// The parsed target when `addr` names a scheme the library resolves
/// (`dns:`, `ipv4:`, `ipv6:`, `passthrough:`); `None` for the bare
/// `host:port` form, which the library reads as a DNS name too.
fn named_target(addr: &str) -> Result<Option<courier::client::resolver::Target>> {
    let Some((scheme, _)) = addr.split_once(':') else {
        return Ok(None);
    };
    let named = matches!(
        scheme.to_ascii_lowercase().as_str(),
        "dns" | "ipv4" | "ipv6" | "passthrough"
    );
    if !named {
        return Ok(None);
    }
    check_target(addr).map(Some)
}

/// Whether every address a named target names is on this machine.
fn named_is_loopback(target: &courier::client::resolver::Target) -> bool {
    let endpoint = target.endpoint();
    match target.scheme() {
        "ipv4" | "ipv6" => endpoint.split(',').all(|part| {
            let host = if let Some(rest) = part.strip_prefix('[') {
                rest.split_once(']').map_or(rest, |(host, _)| host)
            } else if part.matches(':').count() > 1 {
                part
            } else {
                part.split_once(':').map_or(part, |(host, _)| host)
            };
            host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }),
        _ => {
            let host = if let Some(rest) = endpoint.strip_prefix('[') {
                rest.split_once(']').map_or(rest, |(host, _)| host)
            } else {
                endpoint.rsplit_once(':').map_or(endpoint, |(host, _)| host)
            };
            is_loopback_host(host)
        }
    }
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of `host:port` or `[v6]:port`; `None` without a port.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = authority.rsplit_once(':')?;
        if host.contains(':') {
            // A bare IPv6 address: it needs brackets.
            return None;
        }
        (host, port)
    };
    (!host.is_empty() && port.parse::<u16>().is_ok()).then_some(host)
}

fn tls_config(args: &ConnectArgs) -> Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new();
    if let Some(ca) = &args.ca {
        config = config
            .ca_pem(read(ca, "--ca")?)
            .map_err(|e| Error::msg(format!("--ca {}: {e}", ca.display())))?;
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        config = config
            .identity_pem(read(cert, "--cert")?, read(key, "--key")?)
            .map_err(|e| Error::msg(format!("--cert/--key: {e}")))?;
    }
    if let Some(name) = &args.servername {
        config = config.server_name(name.clone());
    }
    if args.insecure_skip_verify {
        config = config.insecure_skip_verify();
    }
    Ok(config)
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::msg(format!("cannot read {flag} {}: {e}", path.display())))
}

/// Parses `-H 'name: value'` flags into metadata; `-bin` values are base64.
pub fn parse_headers(headers: &[String]) -> Result<Metadata> {
    let mut metadata = Metadata::new();
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Error::msg(format!("invalid header {header:?}: expected 'name: value'")))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        let added = if name.ends_with("-bin") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(value))
                .map_err(|e| Error::msg(format!("header {name}: the value of a -bin header must be base64: {e}")))?;
            metadata.append_bin(&name, &bytes)
        } else {
            metadata.append(&name, value)
        };
        added.map_err(|e| Error::msg(format!("invalid header {header:?}: {e}")))?;
    }
    Ok(metadata)
}

/// Parses a duration: a number with a unit (`ms`, `s`, `m`, `h`), or a
/// plain number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected such as 500ms, 10s, 1.5 or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(host_of("localhost:50051"), Some("localhost"));
        assert_eq!(host_of("[::1]:50051"), Some("::1"));
        assert_eq!(host_of("example.com"), None);
        assert_eq!(host_of("example.com:x"), None);
        assert!(Target::parse("127.0.0.2:1").unwrap().loopback);
        assert!(Target::parse("[::1]:1").unwrap().loopback);
        assert!(!Target::parse("example.com:443").unwrap().loopback);
    }

    #[test]
    fn named_targets_pass_through_and_loopback_is_per_address() {
        for (addr, loopback) in [
            ("ipv4:127.0.0.1:50051", true),
            ("ipv4:127.0.0.1:1,127.0.0.2:2", true),
            ("ipv4:127.0.0.1:1,10.0.0.1:2", false),
            ("ipv6:[::1]:50051", true),
            ("ipv6:::1", true),
            ("ipv6:[2001:db8::1]:443", false),
            ("dns:///localhost:50051", true),
            ("dns:localhost", true),
            ("dns://127.0.0.1:53/example.com:443", false),
            ("passthrough:///127.0.0.1:50051", true),
            ("unix:/tmp/s", true),
            ("unix-abstract:name", true),
        ] {
            let target = Target::parse(addr).unwrap_or_else(|e| panic!("{addr}: {e:?}"));
            assert_eq!(target.loopback, loopback, "{addr}");
            // Handed to the channel as written, whether plaintext or TLS.
            assert_eq!(target.url(false), addr);
            assert_eq!(target.url(!loopback), addr);
        }
        // The bare and URL forms stay URLs.
        assert_eq!(Target::parse("localhost:1").unwrap().url(false), "http://localhost:1");
        assert_eq!(
            Target::parse("example.com:443").unwrap().url(true),
            "https://example.com:443"
        );
        assert_eq!(Target::parse("https://h:1/").unwrap().url(true), "https://h:1");
    }

    #[test]
    fn malformed_named_targets_say_what_was_expected() {
        for (addr, says) in [
            ("ipv4:not-an-ip", "not an IPv4 address"),
            ("ipv4:127.0.0.1:99999", "not a port number"),
            ("unix:", "no socket path"),
            ("nonsense", "expected HOST:PORT"),
        ] {
            let Err(e) = Target::parse(addr) else {
                panic!("{addr:?} parsed")
            };
            let message = format!("{e:?}");
            assert!(message.contains(says), "{addr:?}: {message}");
            assert!(message.contains("invalid address"), "{addr:?}: {message}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
    }
}
