//! Vicinity's spatial functions: the storage cell of a point, covers of circles as ranges of
//! cell ids, great-circle distance and bearing, and snapping points to cell centres.
//!
//! Everything is pure and allocation-light; the store turns a [`Cover`] into B-tree range scans
//! (DESIGN.md §6).

mod cover;
pub mod hexagon;
mod point;
pub mod privacy;

pub use cover::{CellRange, Cover, MAX_COVER_RADIUS_M, descendant_range, spill_radius_m};
pub use point::{InvalidPoint, Point};

use h3o::Resolution;

/// The H3 resolution at which every venue and presence cell is stored (~15 000 m² per cell).
pub const STORAGE_RESOLUTION: u8 = 10;

const STORAGE: Resolution = Resolution::Ten;

/// The storage-resolution cell of a point, as stored in the `cell` BIGINT columns.
pub fn storage_cell(point: Point) -> i64 {
    cell_id(point.lat_lng().to_cell(STORAGE))
}

/// A cell index as the database stores it. H3 indexes keep their top bit clear, so the
/// conversion is lossless and the integer order is the index order.
fn cell_id(cell: h3o::CellIndex) -> i64 {
    (u64::from(cell) & i64::MAX as u64) as i64
}

/// The resolutions Vicinity snaps points to, coarsest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapLevel {
    /// H3 resolution 8 (~0.7 km² cells).
    Neighborhood,
    /// H3 resolution 6 (~36 km² cells).
    City,
}

impl SnapLevel {
    /// The H3 resolution of this level.
    pub fn resolution(self) -> u8 {
        match self {
            Self::Neighborhood => 8,
            Self::City => 6,
        }
    }
}

/// The centre of the cell containing `point` at the resolution of `level`: every point of one
/// cell snaps to the same centre, so nothing finer than the cell can be learned from it.
pub fn snap(point: Point, level: SnapLevel) -> Point {
    let resolution = match level {
        SnapLevel::Neighborhood => Resolution::Eight,
        SnapLevel::City => Resolution::Six,
    };
    Point::from(h3o::LatLng::from(point.lat_lng().to_cell(resolution)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_cells_are_resolution_ten_and_positive() {
        let point = Point::new(40.7128, -74.006).unwrap();
        let id = storage_cell(point);
        assert!(id > 0);
        let cell = h3o::CellIndex::try_from(id as u64).unwrap();
        assert_eq!(u8::from(cell.resolution()), STORAGE_RESOLUTION);
        assert_eq!(cell, point.lat_lng().to_cell(Resolution::Ten));
    }

    #[test]
    fn snapping_maps_a_whole_cell_to_one_point() {
        // Two points a few metres apart in one neighbourhood cell, one far away.
        let a = Point::new(48.85837, 2.294481).unwrap();
        let b = Point::new(48.85840, 2.294500).unwrap();
        let far = Point::new(48.8738, 2.2950).unwrap();
        assert_eq!(
            snap(a, SnapLevel::Neighborhood),
            snap(b, SnapLevel::Neighborhood)
        );
        assert_ne!(
            snap(a, SnapLevel::Neighborhood),
            snap(far, SnapLevel::Neighborhood)
        );
        // The snapped point is the centre of the cell, so it snaps to itself.
        let snapped = snap(a, SnapLevel::City);
        assert_eq!(snap(snapped, SnapLevel::City), snapped);
        assert!(a.distance_m(snapped) < 4_000.0);
        assert_eq!(SnapLevel::Neighborhood.resolution(), 8);
        assert_eq!(SnapLevel::City.resolution(), 6);
    }
}
