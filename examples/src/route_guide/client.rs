//! The client side of the route_guide example: one function per method of
//! the service, and the inputs the example client sends.

use std::time::Duration;

use courier::Status;
use tokio_stream::StreamExt as _;

use super::{GRID_COLS, GRID_ROWS, grid_point};
use crate::pb::routeguide::route_guide_client::RouteGuideClient;
use crate::pb::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// Unary: the feature at `point`. Its name is empty when there is none.
///
/// # Errors
///
/// The status of the failed call.
pub async fn get_feature(client: &RouteGuideClient, point: Point) -> Result<Feature, Status> {
    Ok(client.get_feature(point).await?.into_inner())
}

/// Server streaming: every feature inside `area`, in the order the server
/// sent them.
///
/// # Errors
///
/// The status of the failed call, which may come after some features.
pub async fn list_features(client: &RouteGuideClient, area: Rectangle) -> Result<Vec<Feature>, Status> {
    let mut stream = client.list_features(area).await?.into_inner();
    let mut features = Vec::new();
    // Each message is read as soon as it arrives; `None` is the end.
    while let Some(feature) = stream.message().await? {
        features.push(feature);
    }
    Ok(features)
}

/// Client streaming: sends the points of `route`, waiting `pace` between
/// one and the next as if travelling, and returns the server's summary.
///
/// # Errors
///
/// The status of the failed call.
pub async fn record_route(
    client: &RouteGuideClient,
    route: Vec<Point>,
    pace: Duration,
) -> Result<RouteSummary, Status> {
    let points = tokio_stream::iter(route).throttle(pace);
    Ok(client.record_route(points).await?.into_inner())
}

/// Bidirectional streaming: sends `notes` and returns the notes the server
/// sent back, the earlier notes at the same locations, in order.
///
/// Sending and receiving overlap: the server's replies are read while the
/// notes are still being sent.
///
/// # Errors
///
/// The status of the failed call.
pub async fn route_chat(client: &RouteGuideClient, notes: Vec<RouteNote>) -> Result<Vec<RouteNote>, Status> {
    let mut replies = client.route_chat(tokio_stream::iter(notes)).await?.into_inner();
    let mut received = Vec::new();
    while let Some(note) = replies.message().await? {
        received.push(note);
    }
    Ok(received)
}

/// The points the example client looks up: one with a feature ("Old Mill")
/// and one in the middle of nowhere.
pub fn demo_lookups() -> Vec<Point> {
    vec![
        grid_point(1, 1),
        Point {
            latitude: 0,
            longitude: 0,
        },
    ]
}

/// The area the example client lists features in: rows 1 to 2 and columns
/// 1 to 3 of the feature grid, edges included, so 6 features.
pub fn demo_area() -> Rectangle {
    Rectangle {
        lo: Some(grid_point(1, 1)),
        hi: Some(grid_point(2, 3)),
    }
}

/// The route the example client records: 10 points, alternating between
/// one with a feature and one off the grid between features, so 5 of them
/// have a feature.
pub fn demo_route() -> Vec<Point> {
    let mut route = Vec::new();
    for col in 0..GRID_COLS {
        let on_grid = grid_point(col % GRID_ROWS, col);
        // Part of the way towards the next grid point: no feature there.
        let off_grid = Point {
            latitude: on_grid.latitude + 123_456,
            longitude: on_grid.longitude + 234_567,
        };
        route.push(on_grid);
        route.push(off_grid);
    }
    route
}

/// The notes the example client leaves: six, at three locations. The
/// fourth, fifth and sixth are left where notes already are, so (on a server
/// that has not seen them before) they bring back four earlier notes.
pub fn demo_notes() -> Vec<RouteNote> {
    let bridge = grid_point(0, 0);
    let mill = grid_point(1, 1);
    let meadow = Point {
        latitude: 465_200_000,
        longitude: 76_200_000,
    };
    [
        (bridge, "Is the bridge open?"),
        (mill, "The mill is closed today."),
        (meadow, "Good place for a picnic."),
        (bridge, "Yes, the bridge is open."),
        (mill, "It reopens tomorrow."),
        (bridge, "Crossed it, all fine."),
    ]
    .into_iter()
    .map(|(location, message)| RouteNote {
        location: Some(location),
        message: message.to_string(),
    })
    .collect()
}
