//! Runs each example end to end: its server on a loopback port, and its
//! client logic against it, over real TCP connections.

use std::time::Duration;

use courier::Code;
use courier::server::Service;
use examples::helloworld::{self, MyGreeter};
use examples::pb::helloworld::greeter_client::GreeterClient;
use examples::pb::helloworld::greeter_server::GreeterServer;
use examples::pb::routeguide::route_guide_client::RouteGuideClient;
use examples::pb::routeguide::route_guide_server::RouteGuideServer;
use examples::pb::routeguide::{Point, Rectangle, RouteNote};
use examples::route_guide::client::{
    demo_area, demo_lookups, demo_notes, demo_route, get_feature, list_features, record_route, route_chat,
};
use examples::route_guide::{RouteGuideService, grid_point, haversine, in_rectangle};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running on an ephemeral loopback port.
struct Running {
    url: String,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Serves `service` on 127.0.0.1, on a port the system picks.
    async fn start(service: impl Service) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = courier::Server::builder().add_service(service);
        let task = tokio::spawn(server.serve_with_listener(listener, async {
            let _ = signal.await;
        }));
        Running { url, shutdown, task }
    }

    /// Shuts the server down gracefully and checks that it stopped cleanly.
    async fn stop(self) {
        self.shutdown.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server shut down in time")
            .unwrap()
            .unwrap();
    }
}

async fn route_guide() -> (Running, RouteGuideClient) {
    let server = Running::start(RouteGuideServer::new(RouteGuideService::new())).await;
    let client = RouteGuideClient::connect(&server.url).await.unwrap();
    (server, client)
}

#[tokio::test]
async fn helloworld_greets() {
    let server = Running::start(GreeterServer::new(MyGreeter)).await;
    let client = GreeterClient::connect(&server.url).await.unwrap();

    assert_eq!(helloworld::greet(&client, "Ada").await.unwrap(), "Hello, Ada!");
    let default = helloworld::greet(&client, helloworld::DEFAULT_NAME).await.unwrap();
    assert_eq!(default, "Hello, world!");
    assert_eq!(helloworld::greet(&client, "Zoë 🚲").await.unwrap(), "Hello, Zoë 🚲!");

    let err = helloworld::greet(&client, "").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "name must not be empty");

    server.stop().await;
}

#[tokio::test]
async fn route_guide_get_feature() {
    let (server, client) = route_guide().await;
    let lookups = demo_lookups();

    let found = get_feature(&client, lookups[0]).await.unwrap();
    assert_eq!(found.name, "Old Mill");
    assert_eq!(found.location, Some(lookups[0]));

    let missing = get_feature(&client, lookups[1]).await.unwrap();
    assert_eq!(missing.name, "");
    assert_eq!(missing.location, Some(lookups[1]));

    // Every point of the grid has a feature; points just off it have none.
    let corner = grid_point(3, 4);
    assert_eq!(get_feature(&client, corner).await.unwrap().name, "Upper Well");
    let beside = Point {
        longitude: corner.longitude + 1,
        ..corner
    };
    assert_eq!(get_feature(&client, beside).await.unwrap().name, "");

    server.stop().await;
}

#[tokio::test]
async fn route_guide_list_features() {
    let (server, client) = route_guide().await;

    let area = demo_area();
    let features = list_features(&client, area).await.unwrap();
    let names: Vec<_> = features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Old Mill",
            "Old Orchard",
            "Old Tower",
            "Windy Mill",
            "Windy Orchard",
            "Windy Tower"
        ]
    );
    assert!(features.iter().all(|f| in_rectangle(&f.location.unwrap(), &area)));

    // Corners in the other order give the same features.
    let flipped = Rectangle {
        lo: area.hi,
        hi: area.lo,
    };
    assert_eq!(list_features(&client, flipped).await.unwrap(), features);

    // The whole map, and an empty stretch of sea.
    let everything = Rectangle {
        lo: Some(grid_point(0, 0)),
        hi: Some(grid_point(3, 4)),
    };
    assert_eq!(list_features(&client, everything).await.unwrap().len(), 20);
    let nowhere = Rectangle {
        lo: Some(Point::default()),
        hi: Some(Point {
            latitude: 10,
            longitude: 10,
        }),
    };
    assert!(list_features(&client, nowhere).await.unwrap().is_empty());

    // A rectangle without both corners is refused.
    let err = list_features(&client, Rectangle { lo: area.lo, hi: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    server.stop().await;
}

#[tokio::test]
async fn route_guide_record_route() {
    let (server, client) = route_guide().await;

    let route = demo_route();
    let expected: f64 = route.windows(2).map(|w| haversine(&w[0], &w[1])).sum();
    let called = std::time::Instant::now();
    let summary = record_route(&client, route, Duration::ZERO).await.unwrap();
    let took = called.elapsed();
    assert_eq!(summary.point_count, 10);
    assert_eq!(summary.feature_count, 5);
    assert_eq!(summary.distance, expected.round() as i32);
    // Ten points a few kilometers apart.
    assert!((10_000..100_000).contains(&summary.distance), "{}", summary.distance);
    // Whole seconds the server measured, within the call as the client saw it.
    assert!(
        u64::try_from(summary.elapsed_time).unwrap() <= took.as_secs(),
        "{} s in a call of {took:?}",
        summary.elapsed_time
    );

    // Two points one grid step (0.04°, about 4448 m) apart, north to south.
    let short = vec![grid_point(1, 0), grid_point(0, 0)];
    let summary = record_route(&client, short, Duration::from_millis(10)).await.unwrap();
    assert_eq!((summary.point_count, summary.feature_count), (2, 2));
    assert!((4440..4460).contains(&summary.distance), "{}", summary.distance);

    // An empty route is a route too.
    let summary = record_route(&client, Vec::new(), Duration::ZERO).await.unwrap();
    assert_eq!(
        (summary.point_count, summary.feature_count, summary.distance),
        (0, 0, 0)
    );

    server.stop().await;
}

#[tokio::test]
async fn route_guide_route_chat() {
    let (server, client) = route_guide().await;

    let notes = demo_notes();
    let replies = route_chat(&client, notes.clone()).await.unwrap();
    // Notes 4, 5 and 6 find notes 1; 2; and 1 and 4 at their locations.
    assert_eq!(
        replies,
        [notes[0].clone(), notes[1].clone(), notes[0].clone(), notes[3].clone()]
    );

    // The server remembers notes across calls.
    let bridge = notes[0].location;
    let later = RouteNote {
        location: bridge,
        message: "Anyone here?".into(),
    };
    let replies = route_chat(&client, vec![later]).await.unwrap();
    let messages: Vec<_> = replies.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Is the bridge open?",
            "Yes, the bridge is open.",
            "Crossed it, all fine."
        ]
    );

    // A note without a location ends the call with INVALID_ARGUMENT.
    let nowhere = RouteNote {
        location: None,
        message: "lost".into(),
    };
    let err = route_chat(&client, vec![nowhere]).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    server.stop().await;
}

/// The route_guide client's whole sequence, as the example program runs it,
/// on one connection.
#[tokio::test]
async fn route_guide_client_sequence() {
    let (server, client) = route_guide().await;
    let lookups = demo_lookups();
    assert_eq!(get_feature(&client, lookups[0]).await.unwrap().name, "Old Mill");
    assert_eq!(get_feature(&client, lookups[1]).await.unwrap().name, "");
    assert_eq!(list_features(&client, demo_area()).await.unwrap().len(), 6);
    let summary = record_route(&client, demo_route(), Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!((summary.point_count, summary.feature_count), (10, 5));
    assert_eq!(route_chat(&client, demo_notes()).await.unwrap().len(), 4);
    assert!(client.channel().is_connected());
    server.stop().await;
}
