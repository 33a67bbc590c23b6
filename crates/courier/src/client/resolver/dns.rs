//! The `dns:` resolver, the default: every A and AAAA record of a host,
//! from `/etc/hosts` and the name servers of `/etc/resolv.conf`, or from the
//! one DNS server the target names, through hickory-resolver; and, when
//! asked, the service config in the name's TXT record (gRFC A2).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Query as DnsQuery, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Hosts, TokioResolver};

use super::dns_service_config::{self as txt, Client};
use super::target::split_host_port;
use super::{Address, Resolver, ResolverBuilder, ResolverSink, ResolverState, Target};
use crate::status::Status;

/// The port of a name that gives none, as naming.md says.
const DEFAULT_PORT: u16 = 443;

/// The port of a DNS server named in a target's authority without one.
const DEFAULT_DNS_PORT: u16 = 53;

/// The least time between two resolutions of one name, however often the
/// channel asks: grpc-go's and the C core's 30 seconds.
pub(crate) const MIN_RESOLUTION_INTERVAL: Duration = Duration::from_secs(30);

/// The least interval [`DnsResolver::min_resolution_interval`] accepts, so
/// that a failing name is never retried in a tight loop.
const INTERVAL_FLOOR: Duration = Duration::from_millis(100);

/// The `dns:` resolver, which resolves the targets of the `dns` scheme and
/// those that name no scheme (`host:port`, `http://host:port`).
///
/// It is registered for every channel already; build one only to change
/// how it behaves, for one channel with
/// [`ChannelBuilder::resolver`](crate::client::ChannelBuilder::resolver) or
/// for the process with [`register`](super::register).
///
/// For `dns:///host[:port]` (and the forms without a scheme) it reads
/// `/etc/hosts`, then asks the name servers of `/etc/resolv.conf`, with that
/// file's search domains and options; if the file cannot be read, it logs
/// a warning and asks a name server on this machine (`127.0.0.1` and `::1`,
/// port 53), as the C library does. For `dns://server[:port]/host[:port]`
/// it asks only `server`, an IP address (port 53 by default), over UDP and
/// TCP. Either way it gives every A and AAAA record of `host`, in the order
/// they came (A records first), with the target's port (443 by default).
/// An IP address needs no lookup.
///
/// It resolves when the channel starts, and again when the channel asks
/// (a connection was lost or could not be made), but never more often than
/// once per [minimum interval](DnsResolver::min_resolution_interval). A
/// name that does not resolve fails the channel's calls with UNAVAILABLE,
/// unless it has addresses from before, and is tried again after the
/// interval.
///
/// With [`DnsResolver::service_config`] on (or, unset,
/// [`ChannelBuilder::dns_service_config`](crate::client::ChannelBuilder::dns_service_config)
/// on for the channel), each resolution also asks for the TXT record
/// `_grpc_config.<host>` and gives the channel the service config it holds
/// for this client (gRFC A2): the record's strings are joined; after
/// `grpc_config=` comes a JSON list of choices, and the first whose
/// `clientLanguage` (if any) lists `rust`, whose `percentage` (if any) this
/// client falls in (drawn once per channel resolution), and whose
/// `clientHostname` (if any) lists this machine's host name, gives its
/// `serviceConfig`. No record, or no choice for this client: the channel
/// uses its builder's config. A record that is not a valid list of choices
/// (or a lookup that fails other than with "no such record") is logged by
/// the channel, which keeps the config it has.
///
/// ```
/// # fn main() -> Result<(), courier::Status> {
/// use std::time::Duration;
/// use courier::client::resolver::DnsResolver;
/// // Follow DNS changes within 5 seconds of a lost connection, asking the
/// // name server at 10.0.0.2.
/// let channel = courier::Channel::builder("dns://10.0.0.2/backends.example.com:50051")
///     .resolver(DnsResolver::new().min_resolution_interval(Duration::from_secs(5)))
///     .connect_lazy()?;
/// # let _ = channel; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DnsResolver {
    min_interval: Duration,
    service_config: Option<bool>,
}

impl DnsResolver {
    /// The resolver as registered by default.
    pub fn new() -> DnsResolver {
        DnsResolver {
            min_interval: MIN_RESOLUTION_INTERVAL,
            service_config: None,
        }
    }

    /// Whether to look up service configs in TXT records (gRFC A2) for
    /// every channel this resolver serves, whatever each channel's
    /// [`ChannelBuilder::dns_service_config`](crate::client::ChannelBuilder::dns_service_config)
    /// says. Unset, each channel's setting is followed, which is off by
    /// default.
    ///
    /// ```
    /// # fn main() -> Result<(), courier::Status> {
    /// use courier::client::resolver::DnsResolver;
    /// // Every channel of the process takes its config from DNS.
    /// courier::client::resolver::register(DnsResolver::new().service_config(true));
    /// # Ok(()) }
    /// ```
    pub fn service_config(mut self, on: bool) -> DnsResolver {
        self.service_config = Some(on);
        self
    }

    /// The least time from the start of one resolution to the start of
    /// the next, and the time after which a failed resolution is tried
    /// again. Default 30 seconds, as grpc-go and the C core. A shorter one
    /// makes a channel follow DNS changes sooner, at the cost of more
    /// queries; it is never less than 100 ms.
    pub fn min_resolution_interval(mut self, interval: Duration) -> DnsResolver {
        self.min_interval = interval.max(INTERVAL_FLOOR);
        self
    }
}

impl Default for DnsResolver {
    fn default() -> DnsResolver {
        DnsResolver::new()
    }
}

/// Where a target's names are looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Servers {
    /// `/etc/hosts`, then the name servers of `/etc/resolv.conf`.
    System,
    /// Only this DNS server, named in the target's authority.
    Named(SocketAddr),
}

/// What a DNS target asks for.
#[derive(Debug, PartialEq, Eq)]
struct Query {
    host: String,
    port: u16,
    servers: Servers,
}

fn parse(target: &Target) -> Result<Query, Status> {
    let bad = |why: String| Status::invalid_argument(format!("invalid target {:?}: {why}", target.as_str()));
    let servers = match target.authority() {
        None | Some("") => Servers::System,
        Some(authority) => Servers::Named(parse_server(authority).map_err(bad)?),
    };
    let (host, port) = split_host_port(target.endpoint(), DEFAULT_PORT)
        .map_err(|why| bad(format!("{why}; expected dns:[//dns-server/]host[:port]")))?;
    Ok(Query {
        host: host.to_string(),
        port,
        servers,
    })
}

/// The DNS server of an authority, `ip[:port]` or `[ipv6][:port]`.
fn parse_server(authority: &str) -> Result<SocketAddr, String> {
    let expected = "expected the DNS server as an IP address with an optional port, \
                    as in dns://8.8.8.8/host:port or dns://[::1]:5353/host:port";
    let (host, port) = split_host_port(authority, DEFAULT_DNS_PORT)
        .map_err(|why| format!("DNS server {authority:?}: {why}; {expected}"))?;
    let ip = host
        .parse::<IpAddr>()
        .map_err(|_| format!("DNS server {authority:?} is not an IP address; {expected}"))?;
    Ok(SocketAddr::new(ip, port))
}

impl ResolverBuilder for DnsResolver {
    fn scheme(&self) -> &str {
        "dns"
    }

    fn build(&self, target: &Target, sink: ResolverSink) -> Result<Box<dyn Resolver>, Status> {
        let query = parse(target)?;
        // An IP address needs no lookup.
        if let Ok(ip) = query.host.parse::<IpAddr>() {
            sink.update(ResolverState::new(vec![Address::socket(SocketAddr::new(
                ip, query.port,
            ))]));
            return Ok(Box::new(Literal));
        }
        let asks = Arc::new(Asks::default());
        let txt = self.service_config.unwrap_or(sink.dns_service_config);
        let lookup = Lookup {
            query,
            warned: AtomicBool::new(false),
            client: txt.then(Client::this_one),
        };
        let lookup = Arc::new(lookup);
        let task = tokio::spawn(resolve_loop(
            move || {
                let lookup = lookup.clone();
                async move { lookup.run().await }
            },
            sink,
            asks.clone(),
            self.min_interval,
        ));
        Ok(Box::new(Running {
            asks,
            task: task.abort_handle(),
        }))
    }

    fn check(&self, target: &Target) -> Result<(), Status> {
        parse(target).map(drop)
    }
}

/// A target that is an IP address.
struct Literal;

impl Resolver for Literal {}

/// A running DNS resolution.
struct Running {
    asks: Arc<Asks>,
    task: tokio::task::AbortHandle,
}

impl Resolver for Running {
    fn resolve_now(&mut self) {
        self.asks.ask();
    }
}

/// The channel's asks for a resolution, from [`Resolver::resolve_now`].
#[derive(Default)]
struct Asks {
    asked: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Asks {
    fn ask(&self) {
        self.asked.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Forgets the asks so far: a resolution that starts now answers them.
    fn clear(&self) {
        self.asked.store(false, Ordering::Release);
    }

    /// Waits for an ask made since the last [`Asks::clear`].
    async fn wait(&self) {
        // A permit `notify_one` left while nobody waited wakes this at once;
        // the flag tells whether it is still wanted.
        while !self.asked.swap(false, Ordering::AcqRel) {
            self.notify.notified().await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Resolves at once; then, after a resolution that found addresses, again
/// when the channel asks, and after one that failed, again on its own (no
/// connection may be left to ask). Never two starts within `min_interval`:
/// asks in between wait, and many of them make one resolution.
async fn resolve_loop<L, F>(mut lookup: L, sink: ResolverSink, asks: Arc<Asks>, min_interval: Duration)
where
    L: FnMut() -> F,
    F: Future<Output = Result<ResolverState, Status>>,
{
    loop {
        let started = tokio::time::Instant::now();
        asks.clear();
        let found = match lookup().await {
            Ok(state) => {
                let found = !state.addresses().is_empty();
                // No addresses: the channel says so ("name resolver
                // returned no addresses").
                sink.update(state);
                found
            }
            Err(status) => {
                sink.error(status);
                false
            }
        };
        if found {
            asks.wait().await;
        }
        tokio::time::sleep_until(started + min_interval).await;
    }
}

/// One target's lookups.
struct Lookup {
    query: Query,
    /// The warning that `/etc/resolv.conf` cannot be read was logged.
    warned: AtomicBool,
    /// Who the service config in TXT records is chosen for, if it is
    /// looked up.
    client: Option<Client>,
}

impl Lookup {
    /// The host's addresses and, if asked, its service config.
    async fn run(&self) -> Result<ResolverState, Status> {
        let Some(client) = &self.client else {
            return self.addresses().await.map(ResolverState::new);
        };
        let (addresses, config) = futures_util::future::join(self.addresses(), self.service_config(client)).await;
        let state = ResolverState::new(addresses?);
        Ok(match config {
            Ok(None) => state,
            Ok(Some(json)) => state.with_service_config(json),
            Err(why) => state.with_service_config_error(format!(
                "the TXT record {} (gRFC A2): {why}",
                txt::record_name(&self.query.host)
            )),
        })
    }

    /// The service config the host's TXT record holds for `client`.
    async fn service_config(&self, client: &Client) -> Result<Option<String>, String> {
        let query = &self.query;
        let name = Name::from_utf8(txt::record_name(&query.host)).map_err(|e| format!("not a DNS name: {e}"))?;
        let resolver = match query.servers {
            Servers::System => self.system_resolver(),
            Servers::Named(server) => named_resolver(server),
        }
        .map_err(|e| e.to_string())?;
        let found = match resolver.txt_lookup(name).await {
            Ok(found) => found,
            Err(NetError::Dns(DnsError::NoRecordsFound(_))) => return Ok(None),
            Err(e) => return Err(format!("lookup failed: {e}")),
        };
        let records: Vec<String> = found
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(text) => Some(text.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect()),
                _ => None,
            })
            .collect();
        txt::choose(&records, client)
    }

    /// Every address of the host, in the order found, without repeats.
    async fn addresses(&self) -> Result<Vec<Address>, Status> {
        let query = &self.query;
        let fail = |detail: &dyn std::fmt::Display| {
            let asked = match query.servers {
                Servers::System => String::new(),
                Servers::Named(server) => format!(", asking the DNS server {server}"),
            };
            Status::unavailable(format!(
                "DNS resolution failed: cannot resolve the host name {:?} ({detail}{asked}); check the name",
                query.host
            ))
        };
        let name = Name::from_utf8(&query.host).map_err(|e| fail(&format_args!("not a DNS name: {e}")))?;
        let resolver = match query.servers {
            Servers::System => {
                if let Some(ips) = from_hosts_file(&name) {
                    return Ok(addresses(ips, query.port));
                }
                self.system_resolver()
            }
            Servers::Named(server) => named_resolver(server),
        }
        .map_err(|e| fail(&e))?;
        let found = resolver.lookup_ip(name).await.map_err(|e| fail(&Described(&e)))?;
        let found = addresses(found.iter(), query.port);
        if found.is_empty() {
            return Err(fail(&"no A or AAAA records"));
        }
        Ok(found)
    }

    /// A resolver on the system's configuration, built anew for each
    /// resolution so that it sees changes to `/etc/resolv.conf`.
    fn system_resolver(&self) -> Result<TokioResolver, NetError> {
        let (config, options) = match hickory_resolver::system_conf::read_system_conf() {
            Ok(system) => system,
            Err(e) => {
                let servers = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
                if !self.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        host = self.query.host.as_str(),
                        "cannot read the system's DNS configuration (/etc/resolv.conf: {e}); \
                         asking a name server on this machine (127.0.0.1 and ::1, port 53)"
                    );
                }
                let config =
                    ResolverConfig::from_name_servers(servers.into_iter().map(NameServerConfig::udp_and_tcp).collect());
                (config, ResolverOpts::default())
            }
        };
        build_resolver(config, options)
    }
}

/// A resolver that asks `server` alone, over UDP and, for long answers,
/// TCP.
fn named_resolver(server: SocketAddr) -> Result<TokioResolver, NetError> {
    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()].map(|mut c| {
        c.port = server.port();
        c
    });
    let name_server = NameServerConfig::new(server.ip(), true, connections.into());
    build_resolver(
        ResolverConfig::from_name_servers(vec![name_server]),
        ResolverOpts::default(),
    )
}

fn build_resolver(config: ResolverConfig, mut options: ResolverOpts) -> Result<TokioResolver, NetError> {
    // Both families, A records first; /etc/hosts is read before, whole.
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.use_hosts_file = ResolveHosts::Never;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
}

/// The addresses `/etc/hosts` gives `name`, if it has any: then DNS is not
/// asked, as the C library's "files" source answers before "dns".
fn from_hosts_file(name: &Name) -> Option<Vec<IpAddr>> {
    let hosts = match Hosts::from_system() {
        Ok(hosts) => hosts,
        Err(e) => {
            tracing::debug!("cannot read /etc/hosts: {e}");
            return None;
        }
    };
    let ips: Vec<IpAddr> = [RecordType::A, RecordType::AAAA]
        .into_iter()
        .filter_map(|kind| hosts.lookup_static_host(&DnsQuery::query(name.clone(), kind)))
        .flat_map(|found| {
            found
                .answers()
                .iter()
                .filter_map(|record| record.data.ip_addr())
                .collect::<Vec<_>>()
        })
        .collect();
    (!ips.is_empty()).then_some(ips)
}

fn addresses(ips: impl IntoIterator<Item = IpAddr>, port: u16) -> Vec<Address> {
    let mut addresses: Vec<Address> = Vec::new();
    for ip in ips {
        let address = Address::socket(SocketAddr::new(ip, port));
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    addresses
}

/// A lookup error as the channel's status tells it.
struct Described<'a>(&'a NetError);

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            NetError::Dns(DnsError::NoRecordsFound(none)) if none.response_code == ResponseCode::NXDomain => {
                f.write_str("NXDOMAIN: no such name")
            }
            NetError::Dns(DnsError::NoRecordsFound(none)) => {
                write!(f, "no A or AAAA records ({})", none.response_code)
            }
            other => write!(f, "{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::controller::Event;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    fn query(text: &str) -> Result<Query, Status> {
        let target = crate::client::resolver::target::parse(text, None)?.target;
        parse(&target)
    }

    #[test]
    fn a_dns_server_in_the_authority_is_parsed_with_port_53_by_default() {
        let q = query("dns://8.8.8.8/example.com:50051").unwrap();
        assert_eq!(q.servers, Servers::Named("8.8.8.8:53".parse().unwrap()));
        assert_eq!((q.host.as_str(), q.port), ("example.com", 50051));
        let q = query("dns://127.0.0.1:5353/name").unwrap();
        assert_eq!(q.servers, Servers::Named("127.0.0.1:5353".parse().unwrap()));
        assert_eq!((q.host.as_str(), q.port), ("name", 443));
        let q = query("dns://[::1]:5353/name:1").unwrap();
        assert_eq!(q.servers, Servers::Named("[::1]:5353".parse().unwrap()));
        assert_eq!(query("dns:///name:1").unwrap().servers, Servers::System);
        assert_eq!(query("name:1").unwrap().servers, Servers::System);
    }

    #[test]
    fn a_dns_server_that_is_not_an_ip_address_is_refused_when_built() {
        for (text, says) in [
            ("dns://ns.example.com/name", "is not an IP address"),
            ("dns://1.2.3.4:99999/name", "not a port number"),
        ] {
            let err = query(text).unwrap_err();
            assert_eq!(err.code(), crate::Code::InvalidArgument, "{text}: {err}");
            assert!(err.message().contains(says), "{text}: {err}");
        }
    }

    /// Runs the loop over a lookup that counts its calls and answers with
    /// `answer`, on a paused clock.
    fn start(
        answer: fn() -> Result<ResolverState, Status>,
        interval: Duration,
    ) -> (mpsc::UnboundedReceiver<Event>, Arc<Asks>, Arc<AtomicUsize>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let asks = Arc::new(Asks::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        tokio::spawn(resolve_loop(
            move || {
                counted.fetch_add(1, Ordering::SeqCst);
                std::future::ready(answer())
            },
            ResolverSink {
                tx,
                dns_service_config: false,
            },
            asks.clone(),
            interval,
        ));
        (rx, asks, calls)
    }

    fn one_address() -> Result<ResolverState, Status> {
        Ok(ResolverState::new(vec![Address::socket(
            "127.0.0.1:1".parse().unwrap(),
        )]))
    }

    /// Whether another resolution comes within `wait` of the paused clock.
    async fn resolves_within(rx: &mut mpsc::UnboundedReceiver<Event>, wait: Duration) -> bool {
        tokio::time::timeout(wait, rx.recv()).await.is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn asks_within_the_interval_make_one_resolution_at_its_end() {
        let interval = MIN_RESOLUTION_INTERVAL;
        let (mut rx, asks, calls) = start(one_address, interval);
        assert!(matches!(rx.recv().await, Some(Event::Resolved(Ok(_)))));
        // No ask, no resolution, however long.
        assert!(!resolves_within(&mut rx, Duration::from_secs(3600)).await);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // An ask long after the last resolution is not held back.
        let asked = Instant::now();
        asks.ask();
        assert!(matches!(rx.recv().await, Some(Event::Resolved(Ok(_)))));
        assert!(asked.elapsed() < interval);
        // A hundred asks right after it: one resolution, not before the
        // interval since the last one started.
        let previous = Instant::now();
        for _ in 0..100 {
            asks.ask();
            tokio::task::yield_now().await;
        }
        assert!(matches!(rx.recv().await, Some(Event::Resolved(Ok(_)))));
        assert!(
            previous.elapsed() >= interval,
            "resolved {:?} after the last",
            previous.elapsed()
        );
        assert!(!resolves_within(&mut rx, Duration::from_secs(3600)).await);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "100 asks made one resolution");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_resolution_is_retried_after_the_interval_without_an_ask() {
        let interval = Duration::from_secs(30);
        let (mut rx, _asks, calls) = start(|| Err(Status::unavailable("no")), interval);
        let started = Instant::now();
        for n in 1..=3 {
            assert!(matches!(rx.recv().await, Some(Event::Resolved(Err(_)))));
            assert_eq!(calls.load(Ordering::SeqCst), n);
            assert!(
                started.elapsed() >= interval * (n as u32 - 1),
                "resolution {n} came early"
            );
        }
    }

    #[test]
    fn the_interval_has_a_floor() {
        let dns = DnsResolver::new().min_resolution_interval(Duration::ZERO);
        assert_eq!(dns.min_interval, INTERVAL_FLOOR);
        assert_eq!(DnsResolver::new().min_interval, MIN_RESOLUTION_INTERVAL);
    }

    #[tokio::test]
    async fn localhost_comes_from_the_hosts_file_or_hickory_without_a_server() {
        let lookup = Lookup {
            query: Query {
                host: "localhost".into(),
                port: 7,
                servers: Servers::System,
            },
            warned: AtomicBool::new(false),
            client: None,
        };
        let found = lookup.addresses().await.unwrap();
        assert!(!found.is_empty());
        for address in &found {
            let Some(addr) = address.as_socket() else {
                panic!("{address:?} is not a socket address")
            };
            assert!(addr.ip().is_loopback() && addr.port() == 7, "{addr}");
        }
    }
}
