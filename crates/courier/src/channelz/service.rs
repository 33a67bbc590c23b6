//! The `grpc.channelz.v1.Channelz` service over the registry: each method
//! copies what it reports out of the live entities, paging by id as gRFC
//! A14 describes (`start_*_id` inclusive, `max_results` 0 for
//! [`DEFAULT_PAGE`], `end` once nothing is left), and answers NOT_FOUND for
//! an id no live entity has.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use super::channel::{CallTotals, ChannelEntry, SubchannelEntry};
use super::pb;
use super::registry::{REGISTRY, from_nanos};
use super::server::ServerEntry;
use super::socket::{SockAddr, SocketEntry};
use super::trace::{Child, Severity, TraceSnapshot};
use crate::client::ConnectivityState;
use crate::server::{Route, Routes, Server, ServerCall, Service};
use crate::{Request, Response, Status};

/// The page size when a request's `max_results` is 0.
pub const DEFAULT_PAGE: usize = 100;

/// The most entities one page holds, whatever the request asks.
pub const MAX_PAGE: usize = 1000;

/// The channelz service, reporting every channel, subchannel, server and
/// socket of this process. Add it with [`Server::with_channelz`] (or
/// [`Server::with_admin`], with health and reflection).
#[derive(Clone, Debug)]
pub struct ChannelzService {
    inner: pb::channelz_server::ChannelzServer<Handler>,
}

impl ChannelzService {
    /// The service; every instance reports the same, process-wide registry.
    pub fn new() -> ChannelzService {
        ChannelzService {
            inner: pb::channelz_server::ChannelzServer::new(Handler),
        }
    }
}

impl Default for ChannelzService {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Handler;

impl Service for ChannelzService {
    const NAME: &'static str = pb::channelz_server::SERVICE_NAME;
    const FILE_DESCRIPTOR_SET: &'static [u8] = pb::channelz_server::FILE_DESCRIPTOR_SET;

    fn call(&self, call: ServerCall) -> impl Future<Output = ()> + Send {
        self.inner.call(call)
    }
}

impl<R: Routes> Server<R> {
    /// Adds the channelz service ([`ChannelzService`]), which reports this
    /// process's channels, subchannels, servers and sockets.
    pub fn with_channelz(self) -> Server<Route<ChannelzService, R>> {
        self.add_service(ChannelzService::new())
    }
}

/// The page size a request's `max_results` asks for.
fn page_size(max_results: i64) -> usize {
    match max_results {
        n if n <= 0 => DEFAULT_PAGE,
        n => (n as usize).min(MAX_PAGE),
    }
}

fn timestamp(at: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(at)
}

fn stamp(nanos: u64) -> Option<prost_types::Timestamp> {
    from_nanos(nanos).map(timestamp)
}

fn connectivity(state: ConnectivityState) -> pb::ChannelConnectivityState {
    use pb::channel_connectivity_state::State;
    let state = match state {
        ConnectivityState::Idle => State::Idle,
        ConnectivityState::Connecting => State::Connecting,
        ConnectivityState::Ready => State::Ready,
        ConnectivityState::TransientFailure => State::TransientFailure,
        ConnectivityState::Shutdown => State::Shutdown,
    };
    pb::ChannelConnectivityState { state: state as i32 }
}

fn trace(snapshot: TraceSnapshot) -> pb::ChannelTrace {
    use pb::channel_trace_event::{ChildRef, Severity as PbSeverity};
    let events = snapshot
        .events
        .into_iter()
        .map(|event| pb::ChannelTraceEvent {
            description: event.description,
            severity: match event.severity {
                Severity::Info => PbSeverity::CtInfo,
                Severity::Warning => PbSeverity::CtWarning,
                Severity::Error => PbSeverity::CtError,
            } as i32,
            timestamp: Some(timestamp(event.at)),
            child_ref: event.child.map(|child| match child {
                Child::Channel(id) => ChildRef::ChannelRef(pb::ChannelRef {
                    channel_id: id,
                    name: String::new(),
                }),
                Child::Subchannel(id) => ChildRef::SubchannelRef(pb::SubchannelRef {
                    subchannel_id: id,
                    name: String::new(),
                }),
            }),
        })
        .collect();
    pb::ChannelTrace {
        num_events_logged: snapshot.logged as i64,
        creation_timestamp: Some(timestamp(snapshot.created)),
        events,
    }
}

fn channel_data(state: ConnectivityState, target: &str, calls: CallTotals, snapshot: TraceSnapshot) -> pb::ChannelData {
    pb::ChannelData {
        state: Some(connectivity(state)),
        target: target.to_owned(),
        trace: Some(trace(snapshot)),
        calls_started: calls.started as i64,
        calls_succeeded: calls.succeeded as i64,
        calls_failed: calls.failed as i64,
        last_call_started_timestamp: stamp(calls.last_started),
    }
}

fn socket_ref(socket: &SocketEntry) -> pb::SocketRef {
    pb::SocketRef {
        socket_id: socket.id,
        name: socket.name(),
    }
}

fn subchannel_ref(subchannel: &SubchannelEntry) -> pb::SubchannelRef {
    pb::SubchannelRef {
        subchannel_id: subchannel.id,
        name: subchannel.target.clone(),
    }
}

fn channel(entry: &ChannelEntry) -> pb::Channel {
    pb::Channel {
        r#ref: Some(pb::ChannelRef {
            channel_id: entry.id,
            name: entry.target.clone(),
        }),
        data: Some(channel_data(
            entry.state(),
            &entry.target,
            entry.calls.totals(),
            entry.trace.snapshot(),
        )),
        channel_ref: Vec::new(),
        subchannel_ref: entry.subchannels().iter().map(|s| subchannel_ref(s)).collect(),
        socket_ref: Vec::new(),
    }
}

fn subchannel(entry: &SubchannelEntry) -> pb::Subchannel {
    pb::Subchannel {
        r#ref: Some(subchannel_ref(entry)),
        data: Some(channel_data(
            entry.state(),
            &entry.target,
            entry.calls.totals(),
            entry.trace.snapshot(),
        )),
        channel_ref: Vec::new(),
        subchannel_ref: Vec::new(),
        socket_ref: entry.socket().iter().map(|s| socket_ref(s)).collect(),
    }
}

fn server(entry: &ServerEntry) -> pb::Server {
    let calls = entry.calls.totals();
    pb::Server {
        r#ref: Some(pb::ServerRef {
            server_id: entry.id,
            name: String::new(),
        }),
        data: Some(pb::ServerData {
            trace: Some(trace(entry.trace.snapshot())),
            calls_started: calls.started as i64,
            calls_succeeded: calls.succeeded as i64,
            calls_failed: calls.failed as i64,
            last_call_started_timestamp: stamp(calls.last_started),
        }),
        listen_socket: entry.listeners().iter().map(|s| socket_ref(s)).collect(),
    }
}

fn address(addr: &SockAddr) -> pb::Address {
    use pb::address::{Address as Kind, TcpIpAddress, UdsAddress};
    let kind = match addr {
        SockAddr::Tcp(addr) => Kind::TcpipAddress(TcpIpAddress {
            ip_address: match addr.ip() {
                std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
                std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
            },
            port: i32::from(addr.port()),
        }),
        SockAddr::Unix(path) => Kind::UdsAddress(UdsAddress { filename: path.clone() }),
    };
    pb::Address { address: Some(kind) }
}

fn socket(entry: &SocketEntry, summary: bool) -> pb::Socket {
    use pb::security::{Model, Tls, tls::CipherSuite};
    let data = entry.stats.as_ref().map(|stats| {
        let t = stats.totals();
        pb::SocketData {
            streams_started: t.streams_started as i64,
            streams_succeeded: t.streams_succeeded as i64,
            streams_failed: t.streams_failed as i64,
            messages_sent: t.messages_sent as i64,
            messages_received: t.messages_received as i64,
            keep_alives_sent: t.keepalives_sent as i64,
            last_local_stream_created_timestamp: stamp(t.last_local_stream),
            last_remote_stream_created_timestamp: stamp(t.last_remote_stream),
            last_message_sent_timestamp: stamp(t.last_message_sent),
            last_message_received_timestamp: stamp(t.last_message_received),
            local_flow_control_window: Some(t.local_window),
            remote_flow_control_window: Some(t.remote_window),
            option: Vec::new(),
        }
    });
    let info = &entry.info;
    let security = (!summary)
        .then_some(info.tls.as_ref())
        .flatten()
        .map(|tls| pb::Security {
            model: Some(Model::Tls(Tls {
                cipher_suite: tls.cipher_suite.clone().map(CipherSuite::StandardName),
                local_certificate: tls.local_certificate.clone(),
                remote_certificate: tls.remote_certificate.clone(),
            })),
        });
    pb::Socket {
        r#ref: Some(socket_ref(entry)),
        data,
        local: info.local.as_ref().map(address),
        remote: info.remote.as_ref().map(address),
        security,
        remote_name: info.remote_name.clone(),
    }
}

fn not_found(what: &str, id: i64) -> Status {
    Status::not_found(format!("no {what} with id {id}"))
}

impl pb::channelz_server::Channelz for Handler {
    async fn get_top_channels(
        &self,
        request: Request<pb::GetTopChannelsRequest>,
    ) -> Result<Response<pb::GetTopChannelsResponse>, Status> {
        let r = request.get_ref();
        let (found, end) = REGISTRY.channels.page(r.start_channel_id, page_size(r.max_results));
        Ok(Response::new(pb::GetTopChannelsResponse {
            channel: found.iter().map(|c| channel(c)).collect(),
            end,
        }))
    }

    async fn get_servers(
        &self,
        request: Request<pb::GetServersRequest>,
    ) -> Result<Response<pb::GetServersResponse>, Status> {
        let r = request.get_ref();
        let (found, end) = REGISTRY.servers.page(r.start_server_id, page_size(r.max_results));
        Ok(Response::new(pb::GetServersResponse {
            server: found.iter().map(|s| server(s)).collect(),
            end,
        }))
    }

    async fn get_server(
        &self,
        request: Request<pb::GetServerRequest>,
    ) -> Result<Response<pb::GetServerResponse>, Status> {
        let id = request.get_ref().server_id;
        let entry = REGISTRY.servers.get(id).ok_or_else(|| not_found("server", id))?;
        Ok(Response::new(pb::GetServerResponse {
            server: Some(server(&entry)),
        }))
    }

    async fn get_server_sockets(
        &self,
        request: Request<pb::GetServerSocketsRequest>,
    ) -> Result<Response<pb::GetServerSocketsResponse>, Status> {
        let r = request.get_ref();
        let entry: Arc<ServerEntry> = REGISTRY
            .servers
            .get(r.server_id)
            .ok_or_else(|| not_found("server", r.server_id))?;
        let (found, end) = entry.socket_page(r.start_socket_id, page_size(r.max_results));
        Ok(Response::new(pb::GetServerSocketsResponse {
            socket_ref: found.iter().map(|s| socket_ref(s)).collect(),
            end,
        }))
    }

    async fn get_channel(
        &self,
        request: Request<pb::GetChannelRequest>,
    ) -> Result<Response<pb::GetChannelResponse>, Status> {
        let id = request.get_ref().channel_id;
        let entry = REGISTRY.channels.get(id).ok_or_else(|| not_found("channel", id))?;
        Ok(Response::new(pb::GetChannelResponse {
            channel: Some(channel(&entry)),
        }))
    }

    async fn get_subchannel(
        &self,
        request: Request<pb::GetSubchannelRequest>,
    ) -> Result<Response<pb::GetSubchannelResponse>, Status> {
        let id = request.get_ref().subchannel_id;
        let entry = REGISTRY
            .subchannels
            .get(id)
            .ok_or_else(|| not_found("subchannel", id))?;
        Ok(Response::new(pb::GetSubchannelResponse {
            subchannel: Some(subchannel(&entry)),
        }))
    }

    async fn get_socket(
        &self,
        request: Request<pb::GetSocketRequest>,
    ) -> Result<Response<pb::GetSocketResponse>, Status> {
        let r = request.get_ref();
        let entry = REGISTRY
            .sockets
            .get(r.socket_id)
            .ok_or_else(|| not_found("socket", r.socket_id))?;
        Ok(Response::new(pb::GetSocketResponse {
            socket: Some(socket(&entry, r.summary)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_max_results_means_the_default_page_and_large_ones_are_capped() {
        assert_eq!(page_size(0), DEFAULT_PAGE);
        assert_eq!(page_size(-3), DEFAULT_PAGE);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(1 << 40), MAX_PAGE);
    }

    #[test]
    fn addresses_carry_the_ip_bytes_and_port() {
        let v4 = address(&SockAddr::Tcp("127.0.0.1:8080".parse().unwrap()));
        match v4.address {
            Some(pb::address::Address::TcpipAddress(a)) => {
                assert_eq!(a.ip_address, [127, 0, 0, 1]);
                assert_eq!(a.port, 8080);
            }
            other => panic!("{other:?}"),
        }
        let v6 = address(&SockAddr::Tcp("[::1]:1".parse().unwrap()));
        match v6.address {
            Some(pb::address::Address::TcpipAddress(a)) => assert_eq!(a.ip_address.len(), 16),
            other => panic!("{other:?}"),
        }
    }
}
