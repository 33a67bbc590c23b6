//! `courier demo`: serves the demo service on an ephemeral loopback port and
//! calls it once with each of the four kinds of call.

use std::pin::Pin;
use std::time::Instant;

use courier::codegen::Stream;
use courier::{Request, Response, Status, Streaming};
use tokio_stream::StreamExt;

mod pb {
    courier::include_proto!("courier.demo");
}

use pb::demo_client::DemoClient;
use pb::demo_server::{Demo, DemoServer};
use pb::{Number, Text};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

struct DemoService;

impl Demo for DemoService {
    async fn greet(&self, request: Request<Text>) -> Result<Response<Text>, Status> {
        Ok(Response::new(Text {
            text: format!("Hello, {}!", request.get_ref().text),
        }))
    }

    type CountToStream = BoxStream<Number>;

    async fn count_to(&self, request: Request<Number>) -> Result<Response<Self::CountToStream>, Status> {
        let n = request.get_ref().value;
        if !(0..=1000).contains(&n) {
            return Err(Status::invalid_argument("count must be between 0 and 1000"));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(
            (1..=n).map(|value| Ok(Number { value })),
        ))))
    }

    async fn sum(&self, request: Request<Streaming<Number>>) -> Result<Response<Number>, Status> {
        let mut numbers = request.into_inner();
        let mut total = 0i64;
        while let Some(n) = numbers.message().await? {
            total = total.saturating_add(n.value);
        }
        Ok(Response::new(Number { value: total }))
    }

    type ShoutStream = BoxStream<Text>;

    async fn shout(&self, request: Request<Streaming<Text>>) -> Result<Response<Self::ShoutStream>, Status> {
        let lines = request.into_inner();
        Ok(Response::new(Box::pin(lines.map(|line| {
            line.map(|t| Text {
                text: t.text.to_uppercase(),
            })
        }))))
    }
}

/// Runs the demo, printing what happens.
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        courier::Server::builder()
            .add_service(DemoServer::new(DemoService))
            .serve_with_listener(listener, async {
                let _ = stopped.await;
            }),
    );
    println!("server  listening on {addr}");

    let client = DemoClient::connect(format!("http://{addr}")).await?;

    let t = Instant::now();
    let reply = client.greet(Text { text: "Courier".into() }).await?;
    println!(
        "{:<18}{:<28}-> {:?}  ({:.1?})",
        "unary",
        "Greet(\"Courier\")",
        reply.get_ref().text,
        t.elapsed()
    );

    let t = Instant::now();
    let mut counted = Vec::new();
    let mut stream = client.count_to(Number { value: 5 }).await?.into_inner();
    while let Some(n) = stream.message().await? {
        counted.push(n.value);
    }
    println!(
        "{:<18}{:<28}-> {counted:?}  ({:.1?})",
        "server streaming",
        "CountTo(5)",
        t.elapsed()
    );

    let t = Instant::now();
    let numbers = tokio_stream::iter([10, 20, 12].map(|value| Number { value }));
    let total = client.sum(numbers).await?;
    println!(
        "{:<18}{:<28}-> {}  ({:.1?})",
        "client streaming",
        "Sum([10, 20, 12])",
        total.get_ref().value,
        t.elapsed()
    );

    let t = Instant::now();
    let lines = tokio_stream::iter(["hello", "grpc"].map(|s| Text { text: s.into() }));
    let mut shouted = Vec::new();
    let mut stream = client.shout(lines).await?.into_inner();
    while let Some(line) = stream.message().await? {
        shouted.push(line.text);
    }
    println!(
        "{:<18}{:<28}-> {shouted:?}  ({:.1?})",
        "bidirectional",
        "Shout([\"hello\", \"grpc\"])",
        t.elapsed()
    );

    let err = client
        .count_to(Number { value: -1 })
        .await
        .err()
        .ok_or("expected an error for CountTo(-1)")?;
    println!("{:<18}{:<28}-> {err}", "error status", "CountTo(-1)");

    let _ = stop.send(());
    server.await??;
    println!("server  shut down gracefully; all four kinds of call worked");
    Ok(())
}
