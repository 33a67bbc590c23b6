//! The route_guide client: calls each of the four methods of the
//! `routeguide.RouteGuide` service in turn — unary, server streaming, client
//! streaming and bidirectional streaming — and prints what it gets back.
//!
//! Start the `route_guide-server` example, then run
//!
//! ```text
//! cargo run -p examples --example route_guide-client [-- [--addr] TARGET]
//! ```
//!
//! TARGET defaults to http://127.0.0.1:10000.

use std::process::ExitCode;
use std::time::Duration;

use examples::cli::{Args, exit_code};
use examples::pb::routeguide::route_guide_client::RouteGuideClient;
use examples::route_guide::DEFAULT_TARGET;
use examples::route_guide::client::{
    demo_area, demo_lookups, demo_notes, demo_route, get_feature, list_features, record_route, route_chat,
};

const USAGE: &str = "usage: route_guide-client [--addr TARGET | TARGET]   (default http://127.0.0.1:10000)";

/// How long the client waits between the points of the route it records.
const PACE: Duration = Duration::from_millis(150);

#[tokio::main]
async fn main() -> ExitCode {
    exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let target = Args::from_env(USAGE).addr_or_first(DEFAULT_TARGET);
    let client = RouteGuideClient::connect(&target)
        .await
        .map_err(|err| format!("cannot connect to {target}: {err}"))?;
    println!("Connected to {target}");

    println!("\n*** GetFeature (unary)");
    for point in demo_lookups() {
        let feature = get_feature(&client, point).await?;
        println!("Found {feature}");
    }

    let area = demo_area();
    println!("\n*** ListFeatures (server streaming) in {area}");
    let features = list_features(&client, area).await?;
    for feature in &features {
        println!("  {feature}");
    }
    println!("{} features", features.len());

    let route = demo_route();
    println!(
        "\n*** RecordRoute (client streaming): {} points, one every {PACE:?}",
        route.len()
    );
    let summary = record_route(&client, route, PACE).await?;
    println!(
        "Route summary: {} points, {} with a feature, {} m, {} s",
        summary.point_count, summary.feature_count, summary.distance, summary.elapsed_time
    );

    let notes = demo_notes();
    println!(
        "\n*** RouteChat (bidirectional streaming): sending {} notes",
        notes.len()
    );
    for note in &notes {
        println!("  Leaving {:?} at {}", note.message, note.location.unwrap_or_default());
    }
    let replies = route_chat(&client, notes).await?;
    for note in &replies {
        println!(
            "  Sent back: earlier note {:?} at {}",
            note.message,
            note.location.unwrap_or_default()
        );
    }
    println!("{} earlier notes sent back", replies.len());
    Ok(())
}
