//! Channelz (gRFC A14) over real sockets: a Courier server with
//! `with_admin()` and a Courier channel that makes calls, read back through
//! Courier's channelz client; and Courier's channelz read by grpcio's
//! channelz client (PyPI's grpcio-channelz), run from
//! `peers/channelz_client.py`.
//!
//! The registry is process-wide and the tests of this file run at once, so
//! each test finds its own server and channel by their ports and targets,
//! and reads the counts of a server through the channelz service of
//! another server (the registry is the same), so that the reading calls do
//! not count on the server read.
//!
//! The grpcio test needs the venv that `scripts/interop/install-python.sh`
//! makes; without it the test prints a note and passes, unless
//! `COURIER_REQUIRE_PEERS=1` is set.

use std::future::Future;
use std::path::Path;
use std::process::Stdio;

use courier::channelz::pb;
use courier::channelz::pb::channelz_client::ChannelzClient;
use courier::{Channel, Code};
use courier_tests::{
    EchoClient, EchoRequest, TestServer, echo_with, grpcio_python, guard, start_with, start_with_counters, text,
};

/// A server with the Echo service and the admin services.
async fn app_server() -> TestServer {
    start_with_counters(|b, counters| b.add_service(echo_with(counters)).with_admin()).await
}

/// A server with channelz alone, to read the registry from without counting
/// on the server being read.
async fn reader() -> (TestServer, ChannelzClient) {
    let server = start_with(|b| b.with_channelz()).await;
    let client = ChannelzClient::connect(server.url()).await.unwrap();
    (server, client)
}

fn failing(code: Code) -> EchoRequest {
    EchoRequest {
        text: "no".into(),
        fail_code: code as i32,
        ..Default::default()
    }
}

/// Makes `ok` calls that succeed and `failed` that fail, one after another.
async fn make_calls(client: &EchoClient, ok: usize, failed: usize) {
    for i in 0..ok {
        client.unary(text(&format!("call {i}"))).await.unwrap();
    }
    for _ in 0..failed {
        let err = client.unary(failing(Code::FailedPrecondition)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
    }
}

/// Asks `read` again until `done` holds of its answer: what channelz reports
/// may trail the calls by a turn of a connection's driver (timestamps and
/// windows are stored at the end of one). Bounded by `guard`'s timeout.
async fn eventually<T, F, Fut>(what: &str, mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    guard(what, async {
        loop {
            let value = read().await;
            if done(&value) {
                return value;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

fn port_of(address: &Option<pb::Address>) -> Option<u16> {
    match address.as_ref()?.address.as_ref()? {
        pb::address::Address::TcpipAddress(a) => Some(a.port as u16),
        _ => None,
    }
}

fn ip_of(address: &Option<pb::Address>) -> Option<Vec<u8>> {
    match address.as_ref()?.address.as_ref()? {
        pb::address::Address::TcpipAddress(a) => Some(a.ip_address.clone()),
        _ => None,
    }
}

async fn socket(client: &ChannelzClient, id: i64) -> pb::Socket {
    let reply = client
        .get_socket(pb::GetSocketRequest {
            socket_id: id,
            summary: false,
        })
        .await
        .unwrap()
        .into_inner();
    reply.socket.expect("a socket")
}

/// The first subchannel `channel` lists.
async fn first_subchannel(client: &ChannelzClient, channel: &pb::Channel) -> pb::Subchannel {
    client
        .get_subchannel(pb::GetSubchannelRequest {
            subchannel_id: channel.subchannel_ref[0].subchannel_id,
        })
        .await
        .unwrap()
        .into_inner()
        .subchannel
        .expect("a subchannel")
}

/// Every server, a page of `page` at a time, checking the paging rules.
async fn all_servers(client: &ChannelzClient, page: i64) -> Vec<pb::Server> {
    let mut all: Vec<pb::Server> = Vec::new();
    let mut start = 0;
    loop {
        let reply = client
            .get_servers(pb::GetServersRequest {
                start_server_id: start,
                max_results: page,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            page == 0 || reply.server.len() as i64 <= page,
            "a page holds at most max_results"
        );
        let ids: Vec<i64> = reply
            .server
            .iter()
            .map(|s| s.r#ref.as_ref().unwrap().server_id)
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids: {ids:?}");
        assert!(ids.iter().all(|id| *id >= start), "no id below start_server_id");
        all.extend(reply.server);
        if reply.end {
            return all;
        }
        assert!(!ids.is_empty(), "a page that is not the end has results");
        start = ids.last().unwrap() + 1;
    }
}

/// The server listening on `port`. The registry is the process's, so it
/// lists the servers of tests running alongside too, and one of them may
/// shut down between the listing and the lookup of its socket: a socket
/// gone by then (NOT_FOUND) is not the one sought.
async fn server_on(client: &ChannelzClient, port: u16) -> pb::Server {
    for server in all_servers(client, 0).await {
        for listen in &server.listen_socket {
            let found = client
                .get_socket(pb::GetSocketRequest {
                    socket_id: listen.socket_id,
                    summary: false,
                })
                .await;
            let local = match found {
                Ok(reply) => reply.into_inner().socket.and_then(|s| s.local),
                Err(status) if status.code() == Code::NotFound => continue,
                Err(status) => panic!("GetSocket {}: {status}", listen.socket_id),
            };
            if port_of(&local) == Some(port) {
                return server;
            }
        }
    }
    panic!("no server listens on port {port}");
}

/// The top channel made for `target`.
async fn channel_for(client: &ChannelzClient, target: &str) -> pb::Channel {
    let reply = client
        .get_top_channels(pb::GetTopChannelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(reply.end, "fewer channels than a page");
    reply
        .channel
        .into_iter()
        .find(|c| c.data.as_ref().unwrap().target == target)
        .unwrap_or_else(|| panic!("no channel to {target}"))
}

#[tokio::test]
async fn server_counts_its_calls_and_its_connection_counts_streams_and_messages() {
    let app = app_server().await;
    let channel = Channel::connect(app.url()).await.unwrap();
    let echo = EchoClient::new(channel.clone());
    make_calls(&echo, 3, 2).await;

    let (_reader, client) = reader().await;
    let server = server_on(&client, app.addr.port()).await;
    let data = server.data.as_ref().unwrap();
    assert_eq!(
        (data.calls_started, data.calls_succeeded, data.calls_failed),
        (5, 3, 2),
        "{data:?}"
    );
    assert!(data.last_call_started_timestamp.is_some());
    assert_eq!(server.listen_socket.len(), 1);

    let id = server.r#ref.as_ref().unwrap().server_id;
    let sockets = client
        .get_server_sockets(pb::GetServerSocketsRequest {
            server_id: id,
            start_socket_id: 0,
            max_results: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(sockets.end);
    assert_eq!(sockets.socket_ref.len(), 1, "the channel's one connection");
    let socket_id = sockets.socket_ref[0].socket_id;
    let accepted = eventually(
        "the server's socket timestamps",
        || socket(&client, socket_id),
        |s| {
            let d = s.data.as_ref().unwrap();
            d.last_message_sent_timestamp.is_some() && d.last_remote_stream_created_timestamp.is_some()
        },
    )
    .await;
    let d = accepted.data.as_ref().unwrap();
    assert_eq!(
        (d.streams_started, d.streams_succeeded, d.streams_failed),
        (5, 5, 0),
        "every stream ended on both sides: {d:?}"
    );
    // One DATA frame per request; responses only for the calls that
    // succeeded (a failing call's status goes alone, in its headers).
    assert_eq!((d.messages_received, d.messages_sent), (5, 3), "{d:?}");
    assert!(d.last_message_received_timestamp.is_some());
    assert!(
        d.last_local_stream_created_timestamp.is_none(),
        "a server opens no streams"
    );
    assert!(d.local_flow_control_window.is_some() && d.remote_flow_control_window.is_some());
    assert_eq!(port_of(&accepted.local), Some(app.addr.port()));
    assert_eq!(ip_of(&accepted.local), Some(vec![127, 0, 0, 1]));
    assert!(port_of(&accepted.remote).is_some_and(|p| p != 0));
    assert!(accepted.security.is_none(), "plaintext");

    // The listening socket.
    let listening = socket(&client, server.listen_socket[0].socket_id).await;
    assert_eq!(port_of(&listening.local), Some(app.addr.port()));
    assert!(listening.remote.is_none());
    drop(channel);
}

#[tokio::test]
async fn channel_subchannel_and_client_socket_report_the_calls_made() {
    let app = app_server().await;
    let target = app.url();
    let channel = Channel::connect(&target).await.unwrap();
    let echo = EchoClient::new(channel.clone());
    make_calls(&echo, 2, 1).await;

    let (_reader, client) = reader().await;
    let found = channel_for(&client, &target).await;
    let data = found.data.as_ref().unwrap();
    assert_eq!(
        (data.calls_started, data.calls_succeeded, data.calls_failed),
        (3, 2, 1),
        "{data:?}"
    );
    assert!(data.last_call_started_timestamp.is_some());
    assert_eq!(
        data.state.as_ref().unwrap().state(),
        pb::channel_connectivity_state::State::Ready
    );
    let trace = data.trace.as_ref().unwrap();
    assert!(trace.num_events_logged >= 2, "created, then its states: {trace:?}");
    assert_eq!(trace.events[0].description, "Channel created");
    assert!(trace.creation_timestamp.is_some());

    // GetChannel answers the same channel.
    let id = found.r#ref.as_ref().unwrap().channel_id;
    let again = client
        .get_channel(pb::GetChannelRequest { channel_id: id })
        .await
        .unwrap()
        .into_inner()
        .channel
        .unwrap();
    assert_eq!(again.data.unwrap().target, target);

    assert_eq!(found.subchannel_ref.len(), 1, "pick_first over one address");
    let sub = first_subchannel(&client, &found).await;
    let sub_data = sub.data.as_ref().unwrap();
    assert_eq!(sub_data.target, app.addr.to_string());
    assert_eq!(
        (sub_data.calls_started, sub_data.calls_succeeded, sub_data.calls_failed),
        (3, 2, 1),
        "{sub_data:?}"
    );
    assert_eq!(
        sub_data.state.as_ref().unwrap().state(),
        pb::channel_connectivity_state::State::Ready
    );
    assert_eq!(sub.socket_ref.len(), 1);

    let conn = eventually(
        "the client's socket timestamps",
        || socket(&client, sub.socket_ref[0].socket_id),
        |s| {
            let d = s.data.as_ref().unwrap();
            d.last_message_received_timestamp.is_some() && d.last_local_stream_created_timestamp.is_some()
        },
    )
    .await;
    let d = conn.data.as_ref().unwrap();
    assert_eq!((d.streams_started, d.streams_failed), (3, 0), "{d:?}");
    assert_eq!((d.messages_sent, d.messages_received), (3, 2), "{d:?}");
    assert!(
        d.last_remote_stream_created_timestamp.is_none(),
        "a client accepts no streams"
    );
    assert_eq!(port_of(&conn.remote), Some(app.addr.port()));

    // The same connection, seen from the server's side.
    let server = server_on(&client, app.addr.port()).await;
    let refs = client
        .get_server_sockets(pb::GetServerSocketsRequest {
            server_id: server.r#ref.unwrap().server_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let accepted = socket(&client, refs.socket_ref[0].socket_id).await;
    assert_eq!(port_of(&accepted.remote), port_of(&conn.local));
    drop(channel);
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let (_reader, client) = reader().await;
    let missing = i64::MAX;
    let codes = [
        client
            .get_channel(pb::GetChannelRequest { channel_id: missing })
            .await
            .unwrap_err()
            .code(),
        client
            .get_subchannel(pb::GetSubchannelRequest { subchannel_id: missing })
            .await
            .unwrap_err()
            .code(),
        client
            .get_server(pb::GetServerRequest { server_id: missing })
            .await
            .unwrap_err()
            .code(),
        client
            .get_server_sockets(pb::GetServerSocketsRequest {
                server_id: missing,
                ..Default::default()
            })
            .await
            .unwrap_err()
            .code(),
        client
            .get_socket(pb::GetSocketRequest {
                socket_id: missing,
                summary: false,
            })
            .await
            .unwrap_err()
            .code(),
    ];
    assert_eq!(codes, [Code::NotFound; 5]);
}

#[tokio::test]
async fn servers_page_by_start_id_and_max_results() {
    // Three servers of this test, among whatever else runs alongside.
    let servers = [app_server().await, app_server().await, app_server().await];
    let (_reader, client) = reader().await;
    let whole = all_servers(&client, 0).await;
    let paged = all_servers(&client, 1).await;
    let ids = |list: &[pb::Server]| -> Vec<i64> { list.iter().map(|s| s.r#ref.as_ref().unwrap().server_id).collect() };
    // Servers of other tests may come and go between the two listings:
    // ours are in both, in the same order.
    let mut ours = Vec::new();
    for server in &servers {
        ours.push(server_on(&client, server.addr.port()).await.r#ref.unwrap().server_id);
    }
    for id in &ours {
        assert!(ids(&whole).contains(id) && ids(&paged).contains(id));
    }
    assert!(ours.windows(2).all(|w| w[0] < w[1]), "ids grow with creation: {ours:?}");

    // A page of two from our first server holds it and the next one.
    let reply = client
        .get_servers(pb::GetServersRequest {
            start_server_id: ours[0],
            max_results: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.server.len(), 2);
    assert_eq!(reply.server[0].r#ref.as_ref().unwrap().server_id, ours[0]);
    assert!(!reply.end, "our third server, and the reader, come after");
    // Past every id: an empty last page.
    let reply = client
        .get_servers(pb::GetServersRequest {
            start_server_id: i64::MAX,
            max_results: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.server.is_empty() && reply.end);
}

#[tokio::test]
async fn a_dropped_channel_leaves_the_registry() {
    let app = app_server().await;
    let target = app.url();
    let channel = Channel::connect(&target).await.unwrap();
    EchoClient::new(channel.clone()).unary(text("x")).await.unwrap();
    let (_reader, client) = reader().await;
    let id = channel_for(&client, &target).await.r#ref.unwrap().channel_id;
    drop(channel);
    // The channel's state goes once its last task has let go of it.
    let _ = eventually(
        "the dropped channel to leave",
        || client.get_channel(pb::GetChannelRequest { channel_id: id }),
        |reply| matches!(reply, Err(status) if status.code() == Code::NotFound),
    )
    .await;
}

#[tokio::test]
async fn with_admin_serves_health_reflection_and_channelz() {
    use courier::health::pb::HealthCheckRequest;
    use courier::health::pb::health_client::HealthClient;
    let app = app_server().await;
    let health = HealthClient::connect(app.url()).await.unwrap();
    let reply = health.check(HealthCheckRequest::default()).await.unwrap().into_inner();
    assert_eq!(reply.status(), courier::health::ServingStatus::Serving);

    // The app server's own channelz reports it, with the calls so far: the
    // health check and this call, which has started and not yet ended.
    let client = ChannelzClient::connect(app.url()).await.unwrap();
    let server = server_on(&client, app.addr.port()).await;
    let data = server.data.unwrap();
    assert!(
        data.calls_started > data.calls_succeeded + data.calls_failed,
        "{data:?}"
    );
    assert!(data.calls_succeeded >= 1, "the health check: {data:?}");

    // Reflection lists every service of the server.
    use courier::reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use courier::reflection::pb::v1::server_reflection_request::MessageRequest;
    use courier::reflection::pb::v1::server_reflection_response::MessageResponse;
    let reflection = ServerReflectionClient::connect(app.url()).await.unwrap();
    let request = courier::reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("{reply:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for name in [
        "courier.test.Echo",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.channelz.v1.Channelz",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
}

#[tokio::test]
async fn grpcio_channelz_client_reads_courier_servers_and_sockets() {
    let Some(python) = grpcio_python("grpc_channelz.v1.channelz_pb2_grpc") else {
        return;
    };
    let app = app_server().await;
    let channel = Channel::connect(app.url()).await.unwrap();
    let echo = EchoClient::new(channel.clone());
    make_calls(&echo, 3, 1).await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/channelz_client.py");
    let output = guard(
        "the grpcio channelz client",
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg(format!("--port={}", app.addr.port()))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "channelz_client.py failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));

    // The server grpcio found listening on the port, with our calls and the
    // script's own (its calls on this server, the one in progress included).
    let server = &report["server"];
    assert_eq!(server["listen_port"], app.addr.port());
    assert_eq!(server["calls_failed"], 1, "{report}");
    assert!(server["calls_succeeded"].as_i64().unwrap() >= 3, "{report}");
    assert!(server["calls_started"].as_i64().unwrap() >= 4, "{report}");
    // Among its connections, the channel's: four streams, four requests
    // received, three responses sent.
    let sockets = server["sockets"].as_array().unwrap();
    let ours = sockets
        .iter()
        .find(|s| s["streams_started"] == 4)
        .unwrap_or_else(|| panic!("no socket with the channel's four streams: {report}"));
    assert_eq!(ours["streams_succeeded"], 4, "{report}");
    assert_eq!(ours["messages_received"], 4, "{report}");
    assert_eq!(ours["messages_sent"], 3, "{report}");
    assert_eq!(ours["local_port"], app.addr.port());
    assert_eq!(ours["local_ip"], "127.0.0.1");
    // And the top channels include ours.
    let targets: Vec<&str> = report["channel_targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(targets.contains(&app.url().as_str()), "{targets:?}");
    drop(channel);
}

#[tokio::test]
async fn tls_sockets_report_the_cipher_suite_and_certificates() {
    use courier::credentials::{ClientTlsConfig, ServerTlsConfig};
    use rcgen::{CertificateParams, KeyPair};
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().to_vec();
    let tls = ServerTlsConfig::from_pem(cert.pem(), key.serialize_pem()).unwrap();
    let app = start_with_counters(|b, counters| b.tls(tls).unwrap().add_service(echo_with(counters))).await;
    let target = format!("https://127.0.0.1:{}", app.addr.port());
    let client_tls = ClientTlsConfig::new()
        .ca_pem(cert.pem())
        .unwrap()
        .server_name("localhost");
    let channel = Channel::builder(&target).tls(client_tls).connect().await.unwrap();
    EchoClient::new(channel.clone()).unary(text("x")).await.unwrap();

    let (_reader, client) = reader().await;
    let found = channel_for(&client, &target).await;
    let sub = first_subchannel(&client, &found).await;
    let tls_of = |socket: &pb::Socket| match socket.security.as_ref().and_then(|s| s.model.clone()) {
        Some(pb::security::Model::Tls(tls)) => tls,
        other => panic!("not TLS: {other:?}"),
    };
    let standard_name = |tls: &pb::security::Tls| match &tls.cipher_suite {
        Some(pb::security::tls::CipherSuite::StandardName(name)) => name.clone(),
        other => panic!("no standard name: {other:?}"),
    };
    let ours = tls_of(&socket(&client, sub.socket_ref[0].socket_id).await);
    assert!(standard_name(&ours).starts_with("TLS_"), "{ours:?}");
    assert_eq!(ours.remote_certificate, der, "the server's certificate");
    assert!(ours.local_certificate.is_empty(), "the channel has no certificate");

    let server = server_on(&client, app.addr.port()).await;
    let refs = client
        .get_server_sockets(pb::GetServerSocketsRequest {
            server_id: server.r#ref.unwrap().server_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let theirs = tls_of(&socket(&client, refs.socket_ref[0].socket_id).await);
    assert_eq!(standard_name(&theirs), standard_name(&ours));
    assert_eq!(theirs.local_certificate, der, "the server's own certificate");
    assert!(theirs.remote_certificate.is_empty(), "no client certificate");

    // A summary leaves the security out.
    let summary = client
        .get_socket(pb::GetSocketRequest {
            socket_id: refs.socket_ref[0].socket_id,
            summary: true,
        })
        .await
        .unwrap()
        .into_inner()
        .socket
        .unwrap();
    assert!(summary.security.is_none());
    drop(channel);
}
