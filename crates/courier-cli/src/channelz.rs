//! `courier channelz ADDR [channel|subchannel|server|socket ID]`: reads a
//! server's channelz service (`grpc.channelz.v1.Channelz`, gRFC A14) and
//! prints what it reports as an indented tree. Without an entity it lists
//! the process's top channels (each with its subchannels and their sockets)
//! and servers (each with its listening sockets and connections); with one,
//! it prints that entity and what hangs under it.

use std::fmt::Write as _;
use std::time::Duration;

use courier::channelz::pb;
use courier::channelz::pb::channelz_client::ChannelzClient;
use courier::{Channel, Code, Request, Status};

use crate::connect::{ConnectArgs, connect, explain_transport_error, parse_duration};
use crate::error::{Error, Result, status_line};

/// What to show.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A channel, with its subchannels and their sockets.
    Channel,
    /// A subchannel, with its sockets.
    Subchannel,
    /// A server, with its listening sockets and connections.
    Server,
    /// A socket: its counters, addresses and security.
    Socket,
}

/// `courier channelz`.
#[derive(clap::Args, Debug)]
pub struct ChannelzArgs {
    /// The server: HOST:PORT, http(s)://HOST:PORT, or a target such as
    /// dns:///HOST:PORT, unix:PATH or passthrough:///HOST:PORT.
    pub addr: String,
    /// Show one entity instead of listing them all.
    #[arg(requires = "id")]
    pub kind: Option<Kind>,
    /// The entity's id, as a listing shows it.
    pub id: Option<i64>,
    /// Give up on each request after this long (such as 500ms, 10s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Asks the channelz service, turning failures into the CLI's errors.
struct Reader {
    client: ChannelzClient,
    addr: String,
    timeout: Duration,
    tls: bool,
}

impl Reader {
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    fn fail(&self, what: &str, status: Status) -> Error {
        if let Some(message) = explain_transport_error(&status, self.tls) {
            return Error::msg(message);
        }
        let message = match status.code() {
            Code::Unimplemented => format!("{} does not serve channelz (grpc.channelz.v1.Channelz)", self.addr),
            Code::NotFound => format!("{} has no {what}", self.addr),
            _ => format!("reading {what} failed: {}", status_line(&status)),
        };
        Error::with_status(message, &status)
    }

    async fn top_channels(&self) -> Result<Vec<pb::Channel>> {
        let mut all = Vec::new();
        let mut start = 0;
        loop {
            let request = self.request(pb::GetTopChannelsRequest {
                start_channel_id: start,
                max_results: 0,
            });
            let page = self
                .client
                .get_top_channels(request)
                .await
                .map_err(|s| self.fail("top channels", s))?
                .into_inner();
            let last = page.channel.last().and_then(|c| c.r#ref.as_ref()).map(|r| r.channel_id);
            all.extend(page.channel);
            match last {
                Some(id) if !page.end => start = id + 1,
                _ => return Ok(all),
            }
        }
    }

    async fn servers(&self) -> Result<Vec<pb::Server>> {
        let mut all = Vec::new();
        let mut start = 0;
        loop {
            let request = self.request(pb::GetServersRequest {
                start_server_id: start,
                max_results: 0,
            });
            let page = self
                .client
                .get_servers(request)
                .await
                .map_err(|s| self.fail("servers", s))?
                .into_inner();
            let last = page.server.last().and_then(|s| s.r#ref.as_ref()).map(|r| r.server_id);
            all.extend(page.server);
            match last {
                Some(id) if !page.end => start = id + 1,
                _ => return Ok(all),
            }
        }
    }

    /// The connections of a server; `None` if it went away meanwhile.
    async fn server_sockets(&self, server_id: i64) -> Result<Option<Vec<pb::SocketRef>>> {
        let mut all = Vec::new();
        let mut start = 0;
        loop {
            let request = self.request(pb::GetServerSocketsRequest {
                server_id,
                start_socket_id: start,
                max_results: 0,
            });
            let found = self.client.get_server_sockets(request).await;
            let Some(page) = self.alive(&format!("server {server_id}"), found)? else {
                return Ok(None);
            };
            let page = page.into_inner();
            let last = page.socket_ref.last().map(|r| r.socket_id);
            all.extend(page.socket_ref);
            match last {
                Some(id) if !page.end => start = id + 1,
                _ => return Ok(Some(all)),
            }
        }
    }

    async fn fetch_channel(&self, id: i64) -> std::result::Result<pb::Channel, Status> {
        let request = self.request(pb::GetChannelRequest { channel_id: id });
        let reply = self.client.get_channel(request).await?.into_inner();
        reply
            .channel
            .ok_or_else(|| Status::internal("the answer had no channel"))
    }

    async fn fetch_subchannel(&self, id: i64) -> std::result::Result<pb::Subchannel, Status> {
        let request = self.request(pb::GetSubchannelRequest { subchannel_id: id });
        let reply = self.client.get_subchannel(request).await?.into_inner();
        reply
            .subchannel
            .ok_or_else(|| Status::internal("the answer had no subchannel"))
    }

    async fn fetch_server(&self, id: i64) -> std::result::Result<pb::Server, Status> {
        let request = self.request(pb::GetServerRequest { server_id: id });
        let reply = self.client.get_server(request).await?.into_inner();
        reply.server.ok_or_else(|| Status::internal("the answer had no server"))
    }

    async fn fetch_socket(&self, id: i64) -> std::result::Result<pb::Socket, Status> {
        let request = self.request(pb::GetSocketRequest {
            socket_id: id,
            summary: false,
        });
        let reply = self.client.get_socket(request).await?.into_inner();
        reply.socket.ok_or_else(|| Status::internal("the answer had no socket"))
    }

    /// Entities asked for by id: NOT_FOUND is an error.
    async fn channel(&self, id: i64) -> Result<pb::Channel> {
        let found = self.fetch_channel(id).await;
        found.map_err(|s| self.fail(&format!("channel {id}"), s))
    }

    async fn subchannel(&self, id: i64) -> Result<pb::Subchannel> {
        let found = self.fetch_subchannel(id).await;
        found.map_err(|s| self.fail(&format!("subchannel {id}"), s))
    }

    async fn server(&self, id: i64) -> Result<pb::Server> {
        let found = self.fetch_server(id).await;
        found.map_err(|s| self.fail(&format!("server {id}"), s))
    }

    async fn socket(&self, id: i64) -> Result<pb::Socket> {
        let found = self.fetch_socket(id).await;
        found.map_err(|s| self.fail(&format!("socket {id}"), s))
    }

    /// Entities a listing found under another: one that went away since
    /// (NOT_FOUND) is `None`, and shown as gone.
    fn alive<T>(&self, what: &str, found: std::result::Result<T, Status>) -> Result<Option<T>> {
        match found {
            Ok(entity) => Ok(Some(entity)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(self.fail(what, status)),
        }
    }

    /// A channel and everything under it, at `depth`.
    async fn write_channel(&self, out: &mut String, channel: &pb::Channel, depth: usize) -> Result<()> {
        let id = channel.r#ref.as_ref().map_or(0, |r| r.channel_id);
        line(out, depth, format!("channel {id}"));
        if let Some(data) = &channel.data {
            write_channel_data(out, data, depth + 1);
        }
        for child in &channel.channel_ref {
            let id = child.channel_id;
            let found = Box::pin(self.fetch_channel(id)).await;
            match self.alive("a channel", found)? {
                Some(child) => Box::pin(self.write_channel(out, &child, depth + 1)).await?,
                None => line(out, depth + 1, format!("channel {id}: gone")),
            }
        }
        for sub in &channel.subchannel_ref {
            let id = sub.subchannel_id;
            let found = self.fetch_subchannel(id).await;
            match self.alive("a subchannel", found)? {
                Some(sub) => self.write_subchannel(out, &sub, depth + 1).await?,
                None => line(out, depth + 1, format!("subchannel {id}: gone")),
            }
        }
        for socket in &channel.socket_ref {
            self.write_socket_ref(out, socket.socket_id, depth + 1).await?;
        }
        Ok(())
    }

    async fn write_subchannel(&self, out: &mut String, sub: &pb::Subchannel, depth: usize) -> Result<()> {
        let id = sub.r#ref.as_ref().map_or(0, |r| r.subchannel_id);
        line(out, depth, format!("subchannel {id}"));
        if let Some(data) = &sub.data {
            write_channel_data(out, data, depth + 1);
        }
        for socket in &sub.socket_ref {
            self.write_socket_ref(out, socket.socket_id, depth + 1).await?;
        }
        Ok(())
    }

    async fn write_server(&self, out: &mut String, server: &pb::Server, depth: usize) -> Result<()> {
        let id = server.r#ref.as_ref().map_or(0, |r| r.server_id);
        line(out, depth, format!("server {id}"));
        if let Some(data) = &server.data {
            line(
                out,
                depth + 1,
                format!(
                    "calls: {} started, {} succeeded, {} failed",
                    data.calls_started, data.calls_succeeded, data.calls_failed
                ),
            );
            if let Some(at) = &data.last_call_started_timestamp {
                line(out, depth + 1, format!("last call started: {at}"));
            }
        }
        for listen in &server.listen_socket {
            let found = self.fetch_socket(listen.socket_id).await;
            let local = match self.alive("a socket", found)? {
                Some(socket) => socket.local.as_ref().map(address).unwrap_or_else(|| "?".into()),
                None => "gone".to_string(),
            };
            line(out, depth + 1, format!("listen socket {}: {local}", listen.socket_id));
        }
        let sockets = match self.server_sockets(id).await? {
            Some(sockets) => sockets,
            None => {
                line(out, depth + 1, "gone".to_string());
                return Ok(());
            }
        };
        if sockets.is_empty() {
            line(out, depth + 1, "no connections".to_string());
        }
        for socket in sockets {
            self.write_socket_ref(out, socket.socket_id, depth + 1).await?;
        }
        Ok(())
    }

    /// A socket a listing found, or that it is gone.
    async fn write_socket_ref(&self, out: &mut String, id: i64, depth: usize) -> Result<()> {
        let found = self.fetch_socket(id).await;
        match self.alive("a socket", found)? {
            Some(socket) => write_socket(out, &socket, depth),
            None => line(out, depth, format!("socket {id}: gone")),
        }
        Ok(())
    }
}

/// Runs `courier channelz`.
pub async fn run(args: ChannelzArgs) -> Result<()> {
    let (channel, tls): (Channel, bool) = connect(&args.addr, &args.connect).await?;
    let reader = Reader {
        client: ChannelzClient::new(channel),
        addr: args.addr.clone(),
        timeout: args.timeout,
        tls,
    };
    let mut out = String::new();
    match (args.kind, args.id) {
        (Some(Kind::Channel), Some(id)) => {
            let channel = reader.channel(id).await?;
            reader.write_channel(&mut out, &channel, 0).await?;
        }
        (Some(Kind::Subchannel), Some(id)) => {
            let sub = reader.subchannel(id).await?;
            reader.write_subchannel(&mut out, &sub, 0).await?;
        }
        (Some(Kind::Server), Some(id)) => {
            let server = reader.server(id).await?;
            reader.write_server(&mut out, &server, 0).await?;
        }
        (Some(Kind::Socket), Some(id)) => {
            let socket = reader.socket(id).await?;
            write_socket(&mut out, &socket, 0);
        }
        _ => {
            let channels = reader.top_channels().await?;
            if channels.is_empty() {
                line(&mut out, 0, "no channels".to_string());
            }
            for channel in &channels {
                reader.write_channel(&mut out, channel, 0).await?;
            }
            let servers = reader.servers().await?;
            if servers.is_empty() {
                line(&mut out, 0, "no servers".to_string());
            }
            for server in &servers {
                reader.write_server(&mut out, server, 0).await?;
            }
        }
    }
    print!("{out}");
    Ok(())
}

fn line(out: &mut String, depth: usize, text: String) {
    let _ = writeln!(out, "{:indent$}{text}", "", indent = depth * 2);
}

fn state_name(state: Option<&pb::ChannelConnectivityState>) -> &'static str {
    state.map_or("UNKNOWN", |s| s.state().as_str_name())
}

fn write_channel_data(out: &mut String, data: &pb::ChannelData, depth: usize) {
    line(out, depth, format!("state: {}", state_name(data.state.as_ref())));
    if !data.target.is_empty() {
        line(out, depth, format!("target: {}", data.target));
    }
    line(
        out,
        depth,
        format!(
            "calls: {} started, {} succeeded, {} failed",
            data.calls_started, data.calls_succeeded, data.calls_failed
        ),
    );
    if let Some(at) = &data.last_call_started_timestamp {
        line(out, depth, format!("last call started: {at}"));
    }
    if let Some(trace) = &data.trace
        && !trace.events.is_empty()
    {
        line(
            out,
            depth,
            format!("trace ({} events logged):", trace.num_events_logged),
        );
        for event in &trace.events {
            let at = event.timestamp.as_ref().map(|t| t.to_string()).unwrap_or_default();
            let severity = event.severity().as_str_name().trim_start_matches("CT_");
            line(out, depth + 1, format!("{at} {severity} {}", event.description));
        }
    }
}

fn write_socket(out: &mut String, socket: &pb::Socket, depth: usize) {
    let id = socket.r#ref.as_ref().map_or(0, |r| r.socket_id);
    let show = |a: &Option<pb::Address>| a.as_ref().map(address).unwrap_or_else(|| "?".into());
    line(
        out,
        depth,
        format!("socket {id}: {} -> {}", show(&socket.local), show(&socket.remote)),
    );
    let depth = depth + 1;
    if !socket.remote_name.is_empty() {
        line(out, depth, format!("remote name: {}", socket.remote_name));
    }
    if let Some(d) = &socket.data {
        line(
            out,
            depth,
            format!(
                "streams: {} started, {} succeeded, {} failed",
                d.streams_started, d.streams_succeeded, d.streams_failed
            ),
        );
        line(
            out,
            depth,
            format!("messages: {} sent, {} received", d.messages_sent, d.messages_received),
        );
        line(out, depth, format!("keepalives sent: {}", d.keep_alives_sent));
        let window = |w: Option<i64>| w.map_or_else(|| "?".to_string(), |w| w.to_string());
        line(
            out,
            depth,
            format!(
                "flow-control windows: local {}, remote {}",
                window(d.local_flow_control_window),
                window(d.remote_flow_control_window)
            ),
        );
        for (what, at) in [
            ("last local stream", &d.last_local_stream_created_timestamp),
            ("last remote stream", &d.last_remote_stream_created_timestamp),
            ("last message sent", &d.last_message_sent_timestamp),
            ("last message received", &d.last_message_received_timestamp),
        ] {
            if let Some(at) = at {
                line(out, depth, format!("{what}: {at}"));
            }
        }
        for option in &d.option {
            line(out, depth, format!("option {}: {}", option.name, option.value));
        }
    }
    match socket.security.as_ref().and_then(|s| s.model.as_ref()) {
        None => line(out, depth, "security: none".to_string()),
        Some(pb::security::Model::Tls(tls)) => {
            use pb::security::tls::CipherSuite;
            let suite = match &tls.cipher_suite {
                Some(CipherSuite::StandardName(name)) | Some(CipherSuite::OtherName(name)) => name.as_str(),
                None => "?",
            };
            line(out, depth, format!("security: TLS, cipher suite {suite}"));
            line(
                out,
                depth + 1,
                format!(
                    "certificates: local {} bytes, remote {} bytes",
                    tls.local_certificate.len(),
                    tls.remote_certificate.len()
                ),
            );
        }
        Some(pb::security::Model::Other(other)) => line(out, depth, format!("security: {}", other.name)),
    }
}

/// An address as people write it.
fn address(address: &pb::Address) -> String {
    use pb::address::Address;
    match &address.address {
        Some(Address::TcpipAddress(a)) => {
            let ip: Option<std::net::IpAddr> = match a.ip_address.len() {
                4 => <[u8; 4]>::try_from(&a.ip_address[..]).ok().map(Into::into),
                16 => <[u8; 16]>::try_from(&a.ip_address[..]).ok().map(Into::into),
                _ => None,
            };
            match ip {
                Some(ip) => std::net::SocketAddr::new(ip, a.port as u16).to_string(),
                None => format!("?:{}", a.port),
            }
        }
        Some(Address::UdsAddress(a)) => format!("unix:{}", a.filename),
        Some(Address::OtherAddress(a)) => a.name.clone(),
        None => "?".to_string(),
    }
}
