//! The route_guide example: a `RouteGuide` service with all four kinds of
//! call.
//!
//! - [`RouteGuideService`] is the server side. It knows the features of a
//!   small map made up in code ([`features`]).
//! - [`client`] has what the client does, one function per method, and the
//!   inputs the example client sends.
//!
//! Positions are [`Point`]s in degrees × 10⁷; distances are great-circle
//! distances from the [`haversine`] formula, in meters.

pub mod client;
mod server;

use std::fmt;

pub use server::RouteGuideService;

use crate::pb::routeguide::{Feature, Point, Rectangle};

/// Where the server listens unless told otherwise.
pub const DEFAULT_SERVER_ADDR: &str = "127.0.0.1:10000";

/// The server the client calls unless told otherwise.
pub const DEFAULT_TARGET: &str = "http://127.0.0.1:10000";

/// The factor between degrees and the integers in a [`Point`].
pub const COORD_FACTOR: f64 = 1e7;

/// The mean radius of the Earth, in meters.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// The number of rows, south to north, of the grid the map's features lie on.
pub const GRID_ROWS: usize = 4;

/// The number of columns, west to east, of the grid the map's features lie on.
pub const GRID_COLS: usize = 5;

/// The latitude of the grid's southernmost row, in degrees × 10⁷ (46.5°).
const GRID_SOUTH: i32 = 465_000_000;
/// The longitude of the grid's westernmost column, in degrees × 10⁷ (7.6°).
const GRID_WEST: i32 = 76_000_000;
/// The spacing of the grid, in degrees × 10⁷ (0.04°, a few kilometers).
const GRID_STEP: i32 = 400_000;

/// The first word of a feature's name, by row.
const ROW_WORDS: [&str; GRID_ROWS] = ["Lower", "Old", "Windy", "Upper"];
/// The second word of a feature's name, by column.
const COL_WORDS: [&str; GRID_COLS] = ["Bridge", "Mill", "Orchard", "Tower", "Well"];

/// The point at `row` and `col` of the feature grid. Rows and columns past
/// the grid's edge continue its spacing; there are no features there.
pub fn grid_point(row: usize, col: usize) -> Point {
    let offset = |i: usize| i32::try_from(i).expect("grid index fits in i32") * GRID_STEP;
    Point {
        latitude: GRID_SOUTH + offset(row),
        longitude: GRID_WEST + offset(col),
    }
}

/// The features the server knows: one on every point of a
/// [`GRID_ROWS`] × [`GRID_COLS`] grid, named after its row and column (for
/// example "Old Mill").
pub fn features() -> Vec<Feature> {
    let mut features = Vec::with_capacity(GRID_ROWS * GRID_COLS);
    for (row, row_word) in ROW_WORDS.iter().enumerate() {
        for (col, col_word) in COL_WORDS.iter().enumerate() {
            features.push(Feature {
                name: format!("{row_word} {col_word}"),
                location: Some(grid_point(row, col)),
            });
        }
    }
    features
}

/// The great-circle distance between two points, in meters, by the
/// haversine formula on a sphere of radius [`EARTH_RADIUS_M`].
pub fn haversine(from: &Point, to: &Point) -> f64 {
    let radians = |e7: i32| (f64::from(e7) / COORD_FACTOR).to_radians();
    let (lat1, lat2) = (radians(from.latitude), radians(to.latitude));
    let d_lat = lat2 - lat1;
    let d_lon = radians(to.longitude) - radians(from.longitude);
    let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// Whether `point` lies inside `rect`, edges included. The corners may be
/// given in any order.
pub fn in_rectangle(point: &Point, rect: &Rectangle) -> bool {
    let lo = rect.lo.unwrap_or_default();
    let hi = rect.hi.unwrap_or_default();
    let (south, north) = (lo.latitude.min(hi.latitude), lo.latitude.max(hi.latitude));
    let (west, east) = (lo.longitude.min(hi.longitude), lo.longitude.max(hi.longitude));
    (south..=north).contains(&point.latitude) && (west..=east).contains(&point.longitude)
}

/// Shows a point in degrees: `(46.54000, 7.64000)`.
impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let degrees = |e7: i32| f64::from(e7) / COORD_FACTOR;
        write!(f, "({:.5}, {:.5})", degrees(self.latitude), degrees(self.longitude))
    }
}

/// Shows a rectangle by its corners.
impl fmt::Display for Rectangle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", self.lo.unwrap_or_default(), self.hi.unwrap_or_default())
    }
}

/// Shows a feature by name and place, or says there is none.
impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = self.location.unwrap_or_default();
        if self.name.is_empty() {
            write!(f, "no feature at {location}")
        } else {
            write!(f, "{:?} at {location}", self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_features_are_distinct() {
        let features = features();
        assert_eq!(features.len(), GRID_ROWS * GRID_COLS);
        assert_eq!(features[GRID_COLS + 1].name, "Old Mill");
        assert_eq!(features[GRID_COLS + 1].location, Some(grid_point(1, 1)));
        let mut names: Vec<_> = features.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), features.len());
    }

    #[test]
    fn haversine_known_distances() {
        let p = grid_point(0, 0);
        assert_eq!(haversine(&p, &p), 0.0);
        // One degree of latitude is about 111.2 km on this sphere.
        let north = Point {
            latitude: p.latitude + 10_000_000,
            ..p
        };
        assert!((haversine(&p, &north) - 111_195.0).abs() < 1.0);
        // A quarter of the equator.
        let zero = Point::default();
        let east = Point {
            latitude: 0,
            longitude: 900_000_000,
        };
        let quarter = std::f64::consts::FRAC_PI_2 * EARTH_RADIUS_M;
        assert!((haversine(&zero, &east) - quarter).abs() < 1e-6);
        assert_eq!(haversine(&zero, &east), haversine(&east, &zero));
    }

    #[test]
    fn rectangle_corners_in_any_order() {
        let rect = Rectangle {
            lo: Some(grid_point(2, 3)),
            hi: Some(grid_point(1, 1)),
        };
        assert!(in_rectangle(&grid_point(1, 1), &rect));
        assert!(in_rectangle(&grid_point(2, 2), &rect));
        assert!(!in_rectangle(&grid_point(0, 2), &rect));
        assert!(!in_rectangle(&grid_point(1, 4), &rect));
    }

    #[test]
    fn display() {
        assert_eq!(grid_point(1, 1).to_string(), "(46.54000, 7.64000)");
        assert_eq!(features()[0].to_string(), "\"Lower Bridge\" at (46.50000, 7.60000)");
        let none = Feature {
            name: String::new(),
            location: Some(Point::default()),
        };
        assert_eq!(none.to_string(), "no feature at (0.00000, 0.00000)");
    }
}
