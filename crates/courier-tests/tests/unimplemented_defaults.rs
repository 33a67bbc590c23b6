//! The server trait methods that courier-build generates answer UNIMPLEMENTED
//! by default, naming the method, so an implementation may leave some out.

use courier::{Channel, Code, Request, Response, Status};
use courier_tests::pb::partial_client::PartialClient;
use courier_tests::pb::partial_server::{Partial, PartialServer};
use courier_tests::*;

/// Implements one of the five methods; the stream types must still be named.
struct ServesOne;

impl Partial for ServesOne {
    async fn served(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        Ok(Response::new(EchoResponse {
            text: format!("served {}", request.get_ref().text),
            ..Default::default()
        }))
    }

    type LeftOutDownloadStream = ResponseStream;
    type LeftOutChatStream = ResponseStream;
}

/// Implements none of the methods.
struct ServesNone;

impl Partial for ServesNone {
    type LeftOutDownloadStream = ResponseStream;
    type LeftOutChatStream = ResponseStream;
}

fn expected(method: &str) -> String {
    format!("method {method} of service courier.test.Partial is not implemented")
}

fn assert_unimplemented(status: &Status, method: &str) {
    assert_eq!(status.code(), Code::Unimplemented, "{method}: {status}");
    assert_eq!(status.message(), expected(method), "{method}");
}

/// Calls each of the four methods left to the default and checks the answer.
async fn assert_left_out_methods_unimplemented(client: &PartialClient) {
    let err = client.left_out(text("a")).await.unwrap_err();
    assert_unimplemented(&err, "LeftOut");

    let err = client
        .left_out_upload(tokio_stream::iter([text("a"), text("b")]))
        .await
        .unwrap_err();
    assert_unimplemented(&err, "LeftOutUpload");

    // A streaming response may fail on the call or on its first message.
    let err = match client.left_out_download(text("a")).await {
        Err(err) => err,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_unimplemented(&err, "LeftOutDownload");

    let err = match client.left_out_chat(tokio_stream::iter([text("a")])).await {
        Err(err) => err,
        Ok(response) => response.into_inner().message().await.unwrap_err(),
    };
    assert_unimplemented(&err, "LeftOutChat");
}

#[tokio::test]
async fn methods_not_overridden_answer_unimplemented_and_others_are_served() {
    let server = start_with(|b| b.add_service(PartialServer::new(ServesOne))).await;
    let client = PartialClient::connect(server.url()).await.unwrap();

    let reply = client.served(text("x")).await.unwrap();
    assert_eq!(reply.get_ref().text, "served x");
    assert_left_out_methods_unimplemented(&client).await;

    // The connection is still fine after the refusals.
    let reply = client.served(text("y")).await.unwrap();
    assert_eq!(reply.get_ref().text, "served y");
}

#[tokio::test]
async fn an_implementation_of_no_methods_answers_unimplemented_for_each() {
    let server = start_with(|b| b.add_service(PartialServer::new(ServesNone))).await;
    let channel = Channel::connect(server.url()).await.unwrap();
    let client = PartialClient::new(channel);

    let err = client.served(text("x")).await.unwrap_err();
    assert_unimplemented(&err, "Served");
    assert_left_out_methods_unimplemented(&client).await;
}

#[tokio::test]
async fn a_default_answer_differs_from_an_unknown_method() {
    // The service is registered but the method is left to its default: the
    // message says it is not implemented, not that it is unknown.
    let server = start_with(|b| b.add_service(PartialServer::new(ServesNone))).await;
    let client = PartialClient::connect(server.url()).await.unwrap();
    let err = client.left_out(text("x")).await.unwrap_err();
    assert!(!err.message().contains("unknown"), "{err}");

    // Without the service, the runtime's own answer.
    let other = start_server().await;
    let client = PartialClient::connect(other.url()).await.unwrap();
    let err = client.left_out(text("x")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("unknown method LeftOut"), "{err}");
}
