//! The server side of the route_guide example.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use courier::{Request, Response, Status, Streaming};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{features, haversine, in_rectangle};
use crate::pb::routeguide::route_guide_server::RouteGuide;
use crate::pb::routeguide::{Feature, Point, Rectangle, RouteNote, RouteSummary};

/// The notes left so far, by location (latitude, longitude).
type Notes = HashMap<(i32, i32), Vec<RouteNote>>;

/// The `RouteGuide` service.
///
/// It answers from a fixed list of features, and keeps the notes sent to
/// `RouteChat` for as long as it runs, shared by all calls: a note is sent
/// back to whoever later leaves a note at the same location, on any call.
#[derive(Clone, Debug)]
pub struct RouteGuideService {
    features: Arc<[Feature]>,
    notes: Arc<Mutex<Notes>>,
}

impl RouteGuideService {
    /// A service that knows the example map's [`features`].
    pub fn new() -> RouteGuideService {
        RouteGuideService::with_features(features())
    }

    /// A service that knows `features`.
    pub fn with_features(features: Vec<Feature>) -> RouteGuideService {
        RouteGuideService {
            features: features.into(),
            notes: Arc::default(),
        }
    }

    /// The named feature at exactly `point`, if any.
    fn feature_at(&self, point: &Point) -> Option<&Feature> {
        self.features
            .iter()
            .find(|f| !f.name.is_empty() && f.location.as_ref() == Some(point))
    }
}

impl Default for RouteGuideService {
    fn default() -> Self {
        RouteGuideService::new()
    }
}

/// Takes a required message field, failing the call with INVALID_ARGUMENT
/// when it is missing.
fn required<T>(field: Option<T>, name: &str) -> Result<T, Status> {
    field.ok_or_else(|| Status::invalid_argument(format!("{name} is required")))
}

impl RouteGuide for RouteGuideService {
    async fn get_feature(&self, request: Request<Point>) -> Result<Response<Feature>, Status> {
        let point = request.into_inner();
        let feature = match self.feature_at(&point) {
            Some(feature) => feature.clone(),
            // Nothing there: a feature without a name, as the proto says.
            None => Feature {
                name: String::new(),
                location: Some(point),
            },
        };
        Ok(Response::new(feature))
    }

    type ListFeaturesStream = tokio_stream::Iter<std::vec::IntoIter<Result<Feature, Status>>>;

    async fn list_features(&self, request: Request<Rectangle>) -> Result<Response<Self::ListFeaturesStream>, Status> {
        let rect = request.into_inner();
        required(rect.lo.as_ref(), "lo")?;
        required(rect.hi.as_ref(), "hi")?;
        // The features are in memory, so the whole answer is known at once;
        // each one still goes to the client as its own message.
        let found: Vec<_> = self
            .features
            .iter()
            .filter(|f| f.location.as_ref().is_some_and(|p| in_rectangle(p, &rect)))
            .map(|f| Ok(f.clone()))
            .collect();
        Ok(Response::new(tokio_stream::iter(found)))
    }

    async fn record_route(&self, request: Request<Streaming<Point>>) -> Result<Response<RouteSummary>, Status> {
        let mut points = request.into_inner();
        let start = Instant::now();
        let mut summary = RouteSummary::default();
        let mut distance = 0.0;
        let mut previous: Option<Point> = None;
        // The client's points arrive one by one; `None` means the route ended.
        while let Some(point) = points.message().await? {
            summary.point_count += 1;
            if self.feature_at(&point).is_some() {
                summary.feature_count += 1;
            }
            if let Some(previous) = &previous {
                distance += haversine(previous, &point);
            }
            previous = Some(point);
        }
        // Float-to-int `as` saturates, which is what a summary wants.
        summary.distance = distance.round() as i32;
        summary.elapsed_time = i32::try_from(start.elapsed().as_secs()).unwrap_or(i32::MAX);
        Ok(Response::new(summary))
    }

    type RouteChatStream = ReceiverStream<Result<RouteNote, Status>>;

    async fn route_chat(
        &self,
        request: Request<Streaming<RouteNote>>,
    ) -> Result<Response<Self::RouteChatStream>, Status> {
        let mut incoming = request.into_inner();
        let notes = self.notes.clone();
        let (tx, rx) = mpsc::channel(16);
        // Reads notes and answers each one as it arrives, while the client
        // may still be sending: the replies flow back through `tx`.
        tokio::spawn(async move {
            loop {
                let note = match incoming.message().await {
                    Ok(Some(note)) => note,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                let location = match required(note.location.as_ref(), "location") {
                    Ok(point) => (point.latitude, point.longitude),
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                let earlier = {
                    let mut notes = notes.lock().unwrap_or_else(PoisonError::into_inner);
                    let here = notes.entry(location).or_default();
                    let earlier = here.clone();
                    here.push(note);
                    earlier
                };
                for reply in earlier {
                    if tx.send(Ok(reply)).await.is_err() {
                        return; // The client has gone.
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
