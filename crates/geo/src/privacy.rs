//! What a person's location looks like to a friend at a precision level (DESIGN.md §5).
//!
//! A subject's position is replaced by the centre of their fixed H3 cell before anything is
//! computed from it, and distances are rounded to the level's bucket, so repeating queries
//! from spoofed origins can locate a subject no better than their cell: every position inside
//! one cell gives the same answers.

use vicinity_domain::PrecisionLevel;

use crate::cover::CIRCUMRADIUS_PER_EDGE;
use crate::{Point, SnapLevel, snap};

/// The point a subject is seen at, or `None` at `off`.
pub fn shared_point(point: Point, level: PrecisionLevel) -> Option<Point> {
    match level {
        PrecisionLevel::Exact => Some(point),
        PrecisionLevel::Neighborhood => Some(snap(point, SnapLevel::Neighborhood)),
        PrecisionLevel::City => Some(snap(point, SnapLevel::City)),
        PrecisionLevel::Off => None,
    }
}

/// The bucket distances are rounded to at a level, in metres.
pub fn distance_bucket_m(level: PrecisionLevel) -> u64 {
    match level {
        PrecisionLevel::Exact => 50,
        PrecisionLevel::Neighborhood => 100,
        PrecisionLevel::City | PrecisionLevel::Off => 1_000,
    }
}

/// A distance rounded to the nearest multiple of the level's bucket.
pub fn rounded_distance_m(distance_m: f64, level: PrecisionLevel) -> u64 {
    let bucket = distance_bucket_m(level) as f64;
    ((distance_m / bucket).round() * bucket) as u64
}

/// How far snapping can move a point at `level`: at most one circumradius of its cell.
pub fn max_snap_offset_m(level: PrecisionLevel) -> f64 {
    let resolution = match level {
        PrecisionLevel::Exact | PrecisionLevel::Off => return 0.0,
        PrecisionLevel::Neighborhood => h3o::Resolution::Eight,
        PrecisionLevel::City => h3o::Resolution::Six,
    };
    CIRCUMRADIUS_PER_EDGE * resolution.edge_length_m()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_hide_what_they_promise() {
        let home = Point::new(52.520_008, 13.404_954).unwrap();
        let next_door = home.destination(90.0, 30.0);
        assert_eq!(shared_point(home, PrecisionLevel::Exact), Some(home));
        assert_eq!(shared_point(home, PrecisionLevel::Off), None);
        for level in [PrecisionLevel::Neighborhood, PrecisionLevel::City] {
            let seen = shared_point(home, level).unwrap();
            assert!(home.distance_m(seen) <= max_snap_offset_m(level));
            // Neighbours in the same cell are indistinguishable.
            if seen == shared_point(next_door, level).unwrap() {
                assert_ne!(seen, home);
            }
        }
        assert!(
            max_snap_offset_m(PrecisionLevel::City)
                > max_snap_offset_m(PrecisionLevel::Neighborhood)
        );
    }

    #[test]
    fn distances_round_to_their_bucket() {
        assert_eq!(rounded_distance_m(24.0, PrecisionLevel::Exact), 0);
        assert_eq!(rounded_distance_m(26.0, PrecisionLevel::Exact), 50);
        assert_eq!(
            rounded_distance_m(1_234.0, PrecisionLevel::Neighborhood),
            1_200
        );
        assert_eq!(rounded_distance_m(1_501.0, PrecisionLevel::City), 2_000);
    }
}
