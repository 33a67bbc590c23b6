//! The health and reflection services: through Courier's own clients, and
//! through grpcio's health and reflection clients (PyPI's
//! grpcio-health-checking and grpcio-reflection) run from
//! `peers/health_reflection_client.py`.
//!
//! The grpcio test needs the venv that `scripts/interop/install-python.sh`
//! makes. Without it the test prints a note and passes, unless
//! `COURIER_REQUIRE_PEERS=1` is set, which makes a missing venv a failure;
//! `COURIER_PYTHON` names another interpreter to use.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use courier::health::pb::health_client::HealthClient;
use courier::health::pb::{HealthCheckRequest, HealthListRequest};
use courier::health::{HealthReporter, ServingStatus};
use courier::reflection::pb::v1::server_reflection_request::MessageRequest;
use courier::reflection::pb::v1::server_reflection_response::MessageResponse;
use courier::reflection::pb::v1::{ExtensionRequest, ServerReflectionRequest, ServerReflectionResponse};
use courier::reflection::pb::{v1, v1alpha};
use courier::{Code, Request, Response, Status, Streaming};
use courier_tests::{EchoService, TestServer, grpcio_python, start_with};
use prost::Message as _;
use prost_types::FileDescriptorProto;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

mod pb {
    pub use courier_tests::pb::*;

    /// Generated from `proto/reflect.proto`; the tests need only some of it.
    pub mod reflect {
        #![allow(dead_code)]
        courier::include_proto!("courier.test.reflect");
    }
}

use pb::reflect::Item;
use pb::reflect::inventory_server::{Inventory, InventoryServer};

/// The service of `proto/reflect.proto`.
struct Shop;

impl Inventory for Shop {
    async fn get(&self, request: Request<pb::EchoRequest>) -> Result<Response<Item>, Status> {
        Ok(Response::new(Item {
            name: Some(request.into_inner().text),
            ..Default::default()
        }))
    }
}

const ECHO: &str = "courier.test.Echo";
const INVENTORY: &str = "courier.test.reflect.Inventory";
const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A server with Echo, reflection (added before Inventory and health, which
/// it must describe all the same), Inventory and health.
async fn server(health: &HealthReporter) -> TestServer {
    server_with_grace(health, Duration::from_secs(30)).await
}

/// [`server`] with this shutdown grace period.
async fn server_with_grace(health: &HealthReporter, grace: Duration) -> TestServer {
    let health = health.clone();
    start_with(move |builder| {
        builder
            .shutdown_grace_period(grace)
            .add_service(courier_tests::EchoServer::new(EchoService::default()))
            .with_reflection()
            .add_service(InventoryServer::new(Shop))
            .with_health(health)
    })
    .await
}

fn ask(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

async fn check(client: &HealthClient, service: &str) -> Result<ServingStatus, Status> {
    Ok(client.check(ask(service)).await?.into_inner().status())
}

/// How long a step may take before the test calls it a hang: generous, for
/// loaded machines; it bounds a failure and times no success.
const LIMIT: Duration = Duration::from_secs(30);

/// The next status on `watch`. Watches send in order, so when this is the
/// status a change just set, nothing else (no repeat of an unchanged
/// status) came before it.
async fn next_status(watch: &mut Streaming<courier::health::pb::HealthCheckResponse>) -> ServingStatus {
    let next = tokio::time::timeout(LIMIT, watch.message())
        .await
        .expect("a status within the limit")
        .unwrap()
        .expect("the watch ended");
    next.status()
}

#[tokio::test]
async fn health_check_and_list() {
    let health = HealthReporter::new();
    let server = server(&health).await;
    let client = HealthClient::connect(server.url()).await.unwrap();

    // The server as a whole serves from the start; nothing else has a status.
    assert_eq!(check(&client, "").await.unwrap(), ServingStatus::Serving);
    let err = check(&client, ECHO).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    health.set_serving(ECHO);
    // A clone reports to the same service.
    health.clone().set_not_serving(INVENTORY);
    assert_eq!(check(&client, ECHO).await.unwrap(), ServingStatus::Serving);
    assert_eq!(check(&client, INVENTORY).await.unwrap(), ServingStatus::NotServing);
    health.set_status(INVENTORY, ServingStatus::Serving);
    assert_eq!(check(&client, INVENTORY).await.unwrap(), ServingStatus::Serving);
    health.set_not_serving("");
    assert_eq!(check(&client, "").await.unwrap(), ServingStatus::NotServing);

    let list = client.list(HealthListRequest {}).await.unwrap().into_inner();
    let statuses: BTreeMap<&str, ServingStatus> = list
        .statuses
        .iter()
        .map(|(name, response)| (name.as_str(), response.status()))
        .collect();
    assert_eq!(
        statuses,
        BTreeMap::from([
            ("", ServingStatus::NotServing),
            (ECHO, ServingStatus::Serving),
            (INVENTORY, ServingStatus::Serving),
        ])
    );

    // SERVICE_UNKNOWN forgets a service.
    health.set_status(ECHO, ServingStatus::ServiceUnknown);
    assert_eq!(check(&client, ECHO).await.unwrap_err().code(), Code::NotFound);
    let list = client.list(HealthListRequest {}).await.unwrap().into_inner();
    assert!(!list.statuses.contains_key(ECHO), "{list:?}");
    assert_eq!(list.statuses.len(), 2);
}

#[tokio::test]
async fn health_list_has_a_limit() {
    let health = HealthReporter::new();
    for i in 0..courier::health::LIST_LIMIT {
        health.set_serving(format!("svc.S{i}"));
    }
    let server = server(&health).await;
    let client = HealthClient::connect(server.url()).await.unwrap();
    let err = client.list(HealthListRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    health.set_status("svc.S0", ServingStatus::ServiceUnknown);
    let list = client.list(HealthListRequest {}).await.unwrap().into_inner();
    assert_eq!(list.statuses.len(), courier::health::LIST_LIMIT);
}

#[tokio::test]
async fn health_watch_sends_the_status_then_each_change() {
    let health = HealthReporter::new();
    health.set_serving(ECHO);
    let server = server(&health).await;
    let client = HealthClient::connect(server.url()).await.unwrap();

    let mut watch = client.watch(ask(ECHO)).await.unwrap().into_inner();
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);
    health.set_not_serving(ECHO);
    assert_eq!(next_status(&mut watch).await, ServingStatus::NotServing);
    // Setting the same status again is not a change: the next status on
    // the watch is the one after it.
    health.set_not_serving(ECHO);
    health.set_serving(ECHO);
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);
    // Forgetting the service is a change too, and the watch stays open.
    health.set_status(ECHO, ServingStatus::ServiceUnknown);
    assert_eq!(next_status(&mut watch).await, ServingStatus::ServiceUnknown);
    assert_eq!(check(&client, ECHO).await.unwrap_err().code(), Code::NotFound);
    health.set_serving(ECHO);
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);
}

#[tokio::test]
async fn health_watch_of_an_unknown_service_waits_for_it() {
    let health = HealthReporter::new();
    let server = server(&health).await;
    let client = HealthClient::connect(server.url()).await.unwrap();

    let mut watch = client.watch(ask("later.Service")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut watch).await, ServingStatus::ServiceUnknown);
    // Being watched does not make a service known.
    assert_eq!(
        check(&client, "later.Service").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(health.status("later.Service"), None);
    let list = client.list(HealthListRequest {}).await.unwrap().into_inner();
    assert_eq!(list.statuses.len(), 1, "{list:?}");

    health.set_serving("later.Service");
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);

    // A second watcher of another unknown service; both ends go away cleanly.
    let mut other = client.watch(ask("other.Service")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut other).await, ServingStatus::ServiceUnknown);
    drop(other);
    drop(watch);
    // Over the wire, after the watchers went: the watched service that got
    // a status keeps it, the one that never did is still unknown, and List
    // shows only the first besides the server.
    assert_eq!(check(&client, "later.Service").await.unwrap(), ServingStatus::Serving);
    assert_eq!(
        check(&client, "other.Service").await.unwrap_err().code(),
        Code::NotFound
    );
    let list = client.list(HealthListRequest {}).await.unwrap().into_inner();
    let names: BTreeSet<&str> = list.statuses.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["", "later.Service"]), "{list:?}");
    // Forgetting it with no watcher left makes it unknown again.
    health.set_status("later.Service", ServingStatus::ServiceUnknown);
    assert_eq!(
        check(&client, "later.Service").await.unwrap_err().code(),
        Code::NotFound
    );
    let list = client.list(HealthListRequest {}).await.unwrap().into_inner();
    assert_eq!(list.statuses.len(), 1, "{list:?}");
    // A new watcher of the other service starts from unknown and sees its
    // first status.
    let mut again = client.watch(ask("other.Service")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut again).await, ServingStatus::ServiceUnknown);
    health.set_not_serving("other.Service");
    assert_eq!(next_status(&mut again).await, ServingStatus::NotServing);
}

#[tokio::test]
async fn health_graceful_shutdown_sets_not_serving_for_good() {
    let health = HealthReporter::new();
    health.set_serving(ECHO);
    health.set_not_serving(INVENTORY);
    // A grace period far beyond LIMIT: shutting down within LIMIT is not
    // waiting it out.
    let server = server_with_grace(&health, Duration::from_secs(3600)).await;
    let client = HealthClient::connect(server.url()).await.unwrap();
    let mut whole = client.watch(ask("")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut whole).await, ServingStatus::Serving);
    let mut inventory = client.watch(ask(INVENTORY)).await.unwrap().into_inner();
    assert_eq!(next_status(&mut inventory).await, ServingStatus::NotServing);
    let mut unknown = client.watch(ask("unknown.Service")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut unknown).await, ServingStatus::ServiceUnknown);
    // A watch the client leaves open and unread.
    let mut held = client.watch(ask(ECHO)).await.unwrap().into_inner();
    assert_eq!(next_status(&mut held).await, ServingStatus::Serving);

    health.enter_graceful_shutdown();
    // Watchers get the final status, if it is a change, and their calls end
    // with OK, so that they do not hold up the server's shutdown.
    assert_eq!(next_status(&mut whole).await, ServingStatus::NotServing);
    for watch in [&mut whole, &mut inventory, &mut unknown] {
        let end = tokio::time::timeout(LIMIT, watch.message()).await.unwrap();
        assert!(matches!(end, Ok(None)), "{end:?}");
    }
    // Later changes are ignored.
    health.set_serving(ECHO);
    health.set_serving("new.Service");
    assert_eq!(check(&client, "").await.unwrap(), ServingStatus::NotServing);
    assert_eq!(check(&client, ECHO).await.unwrap(), ServingStatus::NotServing);
    assert_eq!(check(&client, "new.Service").await.unwrap_err().code(), Code::NotFound);
    // A watch that starts now gets the final status and ends.
    let mut late = client.watch(ask(ECHO)).await.unwrap().into_inner();
    assert_eq!(next_status(&mut late).await, ServingStatus::NotServing);
    assert!(late.message().await.unwrap().is_none());

    // So the server shuts down without waiting out its grace period (an
    // hour), though the client still holds a watch it has not read to the end.
    tokio::time::timeout(LIMIT, server.shutdown())
        .await
        .expect("graceful shutdown waited for health watchers");
    drop(held);
}

/// One reflection stream, asked one question at a time.
struct Reflector {
    tx: mpsc::Sender<ServerReflectionRequest>,
    rx: Streaming<ServerReflectionResponse>,
}

impl Reflector {
    async fn v1(server: &TestServer) -> Reflector {
        let client = v1::server_reflection_client::ServerReflectionClient::connect(server.url())
            .await
            .unwrap();
        let (tx, requests) = mpsc::channel(4);
        let stream = tokio_stream::wrappers::ReceiverStream::new(requests);
        let rx = client.server_reflection_info(stream).await.unwrap().into_inner();
        Reflector { tx, rx }
    }

    async fn v1alpha(server: &TestServer) -> Reflector {
        let client = v1alpha::server_reflection_client::ServerReflectionClient::connect(server.url())
            .await
            .unwrap();
        let (tx, requests) = mpsc::channel(4);
        let stream = tokio_stream::wrappers::ReceiverStream::new(requests);
        let rx = client.server_reflection_info(stream).await.unwrap().into_inner();
        Reflector { tx, rx }
    }

    async fn ask(&mut self, question: MessageRequest) -> MessageResponse {
        let request = ServerReflectionRequest {
            host: "localhost".into(),
            message_request: Some(question),
        };
        self.tx.send(request.clone()).await.unwrap();
        let response = tokio::time::timeout(LIMIT, self.rx.message())
            .await
            .expect("an answer within the limit")
            .unwrap()
            .expect("the stream ended");
        assert_eq!(response.valid_host, "localhost");
        assert_eq!(response.original_request.as_ref(), Some(&request));
        response.message_response.expect("an empty answer")
    }

    /// The names of the files answering `question`, in order.
    async fn files(&mut self, question: MessageRequest) -> Vec<String> {
        match self.ask(question.clone()).await {
            MessageResponse::FileDescriptorResponse(files) => files
                .file_descriptor_proto
                .iter()
                .map(|bytes| FileDescriptorProto::decode(bytes.as_ref()).unwrap().name().to_owned())
                .collect(),
            other => panic!("{question:?} answered {other:?}"),
        }
    }

    /// The error code answering `question`.
    async fn error(&mut self, question: MessageRequest) -> Code {
        match self.ask(question.clone()).await {
            MessageResponse::ErrorResponse(error) => {
                assert!(!error.error_message.is_empty());
                Code::from_i32(error.error_code)
            }
            other => panic!("{question:?} answered {other:?}"),
        }
    }
}

fn symbol(name: &str) -> MessageRequest {
    MessageRequest::FileContainingSymbol(name.to_owned())
}

fn extension(message: &str, number: i32) -> MessageRequest {
    MessageRequest::FileContainingExtension(ExtensionRequest {
        containing_type: message.to_owned(),
        extension_number: number,
    })
}

async fn reflection_answers_every_kind_of_request(mut reflector: Reflector) {
    // Services, those added after `with_reflection` included.
    let MessageResponse::ListServicesResponse(list) = reflector.ask(MessageRequest::ListServices(String::new())).await
    else {
        panic!("list_services answered something else");
    };
    let names: BTreeSet<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from([ECHO, INVENTORY, HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA])
    );
    assert_eq!(list.service.len(), 5);

    // A file comes first, followed by its transitive imports...
    let files = reflector.files(symbol(INVENTORY)).await;
    assert_eq!(files[0], "reflect.proto");
    assert_eq!(
        files.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["reflect.proto", "echo.proto", "google/protobuf/timestamp.proto"])
    );
    assert_eq!(files.len(), 3);
    // ... each sent once per stream; the file asked for always comes.
    assert_eq!(
        reflector.files(symbol("courier.test.EchoRequest")).await,
        ["echo.proto"]
    );
    for name in [
        "courier.test.reflect.Inventory.Get",
        ".courier.test.reflect.Item",
        "courier.test.reflect.Item.name",
        "courier.test.reflect.Item.price",
        "courier.test.reflect.Item.Tag",
        "courier.test.reflect.Item.Tag.color",
        "courier.test.reflect.Item.Tag.Color",
        "courier.test.reflect.Item.Tag.BLUE",
        "courier.test.reflect.Kind",
        "courier.test.reflect.BOOK",
        "courier.test.reflect.note",
        "courier.test.reflect.Extras.featured",
    ] {
        assert_eq!(reflector.files(symbol(name)).await, ["reflect.proto"], "{name}");
    }
    assert_eq!(
        reflector.files(symbol("google.protobuf.Timestamp")).await,
        ["google/protobuf/timestamp.proto"]
    );
    // The health and reflection services describe themselves.
    assert_eq!(
        reflector.files(symbol("grpc.health.v1.Health.List")).await,
        ["grpc/health/v1/health.proto"]
    );
    assert_eq!(
        reflector
            .files(symbol("grpc.reflection.v1alpha.ServerReflection"))
            .await,
        ["grpc/reflection/v1alpha/reflection.proto"]
    );

    // Files by name.
    assert_eq!(
        reflector
            .files(MessageRequest::FileByFilename("google/protobuf/timestamp.proto".into()))
            .await,
        ["google/protobuf/timestamp.proto"]
    );
    assert_eq!(
        reflector
            .files(MessageRequest::FileByFilename(
                "grpc/reflection/v1/reflection.proto".into()
            ))
            .await,
        ["grpc/reflection/v1/reflection.proto"]
    );

    // Extensions.
    for number in [100, 101, 150] {
        assert_eq!(
            reflector.files(extension("courier.test.reflect.Item", number)).await,
            ["reflect.proto"]
        );
    }
    match reflector
        .ask(MessageRequest::AllExtensionNumbersOfType(
            "courier.test.reflect.Item".into(),
        ))
        .await
    {
        MessageResponse::AllExtensionNumbersResponse(numbers) => {
            assert_eq!(numbers.base_type_name, "courier.test.reflect.Item");
            assert_eq!(numbers.extension_number, [100, 101, 150]);
        }
        other => panic!("all_extension_numbers_of_type answered {other:?}"),
    }
    match reflector
        .ask(MessageRequest::AllExtensionNumbersOfType(
            "courier.test.EchoRequest".into(),
        ))
        .await
    {
        MessageResponse::AllExtensionNumbersResponse(numbers) => assert!(numbers.extension_number.is_empty()),
        other => panic!("all_extension_numbers_of_type answered {other:?}"),
    }

    // What is unknown is NOT_FOUND, as an answer; the stream goes on.
    assert_eq!(reflector.error(symbol("courier.test.Nope")).await, Code::NotFound);
    assert_eq!(reflector.error(symbol("courier.test.Echo.Nope")).await, Code::NotFound);
    assert_eq!(
        reflector
            .error(MessageRequest::FileByFilename("nope.proto".into()))
            .await,
        Code::NotFound
    );
    assert_eq!(
        reflector.error(extension("courier.test.reflect.Item", 199)).await,
        Code::NotFound
    );
    assert_eq!(
        reflector
            .error(MessageRequest::AllExtensionNumbersOfType("courier.test.Nope".into()))
            .await,
        Code::NotFound
    );
    // A request that asks for nothing.
    reflector.tx.send(ServerReflectionRequest::default()).await.unwrap();
    let response = reflector.rx.message().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ErrorResponse(error)) => assert_eq!(error.error_code, Code::InvalidArgument as i32),
        other => panic!("an empty request answered {other:?}"),
    }
    assert_eq!(reflector.files(symbol(ECHO)).await, ["echo.proto"]);

    // The stream ends when the client's does.
    let Reflector { tx, mut rx } = reflector;
    drop(tx);
    assert!(rx.message().await.unwrap().is_none());
}

#[tokio::test]
async fn reflection_v1() {
    let server = server(&HealthReporter::new()).await;
    reflection_answers_every_kind_of_request(Reflector::v1(&server).await).await;
}

#[tokio::test]
async fn reflection_v1alpha() {
    let server = server(&HealthReporter::new()).await;
    reflection_answers_every_kind_of_request(Reflector::v1alpha(&server).await).await;
}

#[tokio::test]
async fn reflection_files_are_complete_descriptors() {
    // Every file reflection sends decodes, and together the files of one
    // stream resolve every import of every file: a client can rebuild the
    // types from them.
    let server = server(&HealthReporter::new()).await;
    let mut reflector = Reflector::v1(&server).await;
    let mut files: Vec<FileDescriptorProto> = Vec::new();
    for name in [INVENTORY, ECHO, HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA] {
        let MessageResponse::FileDescriptorResponse(response) = reflector.ask(symbol(name)).await else {
            panic!("no files for {name}");
        };
        let answer: Vec<FileDescriptorProto> = response
            .file_descriptor_proto
            .iter()
            .map(|bytes| FileDescriptorProto::decode(bytes.as_ref()).unwrap())
            .collect();
        // After the file asked for, only files the stream has not carried.
        for file in &answer[1..] {
            assert!(
                files.iter().all(|sent| sent.name() != file.name()),
                "{} sent twice",
                file.name()
            );
        }
        for file in answer {
            if files.iter().all(|sent| sent.name() != file.name()) {
                files.push(file);
            }
        }
    }
    let names: HashSet<&str> = files.iter().map(|f| f.name()).collect();
    for file in &files {
        for dependency in &file.dependency {
            assert!(
                names.contains(dependency.as_str()),
                "{} imports {dependency}",
                file.name()
            );
        }
    }
    let inventory = files.iter().find(|f| f.name() == "reflect.proto").unwrap();
    assert_eq!(inventory.package(), "courier.test.reflect");
    let get = &inventory.service[0].method[0];
    assert_eq!(get.input_type(), ".courier.test.EchoRequest");
    assert_eq!(get.output_type(), ".courier.test.reflect.Item");
    let health = files
        .iter()
        .find(|f| f.name() == "grpc/health/v1/health.proto")
        .unwrap();
    let methods: Vec<&str> = health.service[0].method.iter().map(|m| m.name()).collect();
    assert_eq!(methods, ["Check", "List", "Watch"]);
}

#[tokio::test]
async fn reflection_added_on_its_own() {
    // The services, added one by one, describe the server they are on.
    let server = start_with(|builder| {
        builder
            .add_service(courier::reflection::ReflectionService::new())
            .add_service(InventoryServer::new(Shop))
    })
    .await;
    let mut reflector = Reflector::v1(&server).await;
    let MessageResponse::ListServicesResponse(list) = reflector.ask(MessageRequest::ListServices(String::new())).await
    else {
        panic!("list_services answered something else");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, [REFLECTION_V1, INVENTORY]);
    assert_eq!(reflector.files(symbol(INVENTORY)).await[0], "reflect.proto");
    // v1alpha is not there.
    let alpha = v1alpha::server_reflection_client::ServerReflectionClient::connect(server.url())
        .await
        .unwrap();
    let mut stream = alpha
        .server_reflection_info(tokio_stream::iter([ServerReflectionRequest::default()]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Unimplemented);
}

#[tokio::test]
async fn grpcio_health_and_reflection_clients() {
    let Some(python) =
        grpcio_python("grpc_health.v1.health_pb2_grpc, grpc_reflection.v1alpha.proto_reflection_descriptor_database")
    else {
        return;
    };
    let health = HealthReporter::new();
    health.set_serving(ECHO);
    health.set_not_serving(INVENTORY);
    let server = server(&health).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/health_reflection_client.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(format!("--port={}", server.addr.port()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    // The script says when its watches are open; the test then changes the
    // statuses they watch.
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut transcript = Vec::new();
    let run = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            match line.as_str() {
                "watching courier.test.Echo" => health.set_not_serving(ECHO),
                "watching courier.test.Later" => health.set_serving("courier.test.Later"),
                _ => {}
            }
            transcript.push(line);
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the grpcio client did not finish within 60 s");
    let stderr = stderr.await.unwrap();
    assert!(
        status.success() && transcript.last().map(String::as_str) == Some("ok"),
        "the grpcio client failed ({status}).\nstdout:\n{}\nstderr:\n{stderr}",
        transcript.join("\n")
    );
}
