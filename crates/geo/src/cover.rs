//! Covers: the storage cells a circle may touch, as a few contiguous ranges of cell ids.
//!
//! A coarse cell's resolution-10 descendants have ids that differ only in the digits below the
//! coarse resolution, so they form one integer range (digits all 0 … digits all 6). A circle is
//! covered by the coarse cells that can own a stored cell inside it; their ranges, sorted and
//! merged, become B-tree range scans.
//!
//! H3 is not a strict hierarchy: the descendants of a cell spill a little over its boundary, so
//! the coarse cell that *contains* a point need not be the ancestor of the point's stored cell.
//! The cover therefore never asks "which coarse cells touch the circle" but "which coarse cells
//! have descendants that can reach the circle", using [`spill_radius_m`], a bound on how far
//! from its centre a coarse cell's descendants reach.

use h3o::{CellIndex, LatLng, Resolution};

use crate::{Point, STORAGE, cell_id};

/// The largest radius a cover is built for (100 km); searches bound their radius below it.
pub const MAX_COVER_RADIUS_M: f64 = 100_000.0;

/// Upper bound of (distance from a cell's centre to its farthest vertex) / (the average edge
/// length of its resolution), anywhere on Earth. Measured over every cell of resolutions 0–5
/// (maximum 1.0998, the same to four places from resolution 2 on, because finer cells are
/// planar copies of the same gnomonic distortion); rounded up. A test re-measures it.
pub(crate) const CIRCUMRADIUS_PER_EDGE: f64 = 1.11;

/// Upper bound of (distance from a cell's centre to its parent's centre) / (the average edge
/// length of the cell's resolution). Measured the same way (maximum 1.9049, ≈ √3 × 1.1);
/// rounded up. A test re-measures it.
const PARENT_OFFSET_PER_EDGE: f64 = 1.92;

/// A cover is built from the finest resolution whose disk of candidate cells is expected to
/// hold at most this many cells. Fewer, coarser cells mean fewer range scans but more rows
/// outside the circle; this keeps both small (see the bound in [`Cover::circle`]).
const TARGET_COARSE_CELLS: f64 = 32.0;

/// An inclusive range of storage-resolution cell ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CellRange {
    pub first: i64,
    pub last: i64,
}

impl CellRange {
    pub fn contains(self, cell: i64) -> bool {
        (self.first..=self.last).contains(&cell)
    }
}

/// Why a circle cannot be covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the radius must be a finite number of metres between 0 and 100000")]
pub struct InvalidRadius;

/// The storage cell ids that a circle may contain, as sorted, disjoint, merged ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    resolution: u8,
    cells: Vec<i64>,
    ranges: Vec<CellRange>,
}

/// How far from the centre of a cell of `resolution` the points of its resolution-10
/// descendants can lie, in metres (an upper bound valid anywhere on Earth).
///
/// A point of a stored cell is within one circumradius of that cell's centre, and each step up
/// the hierarchy moves the centre by at most one parent offset, so the bound is the stored
/// cell's circumradius plus the offsets of every level between.
pub fn spill_radius_m(resolution: u8) -> f64 {
    let circumradius = CIRCUMRADIUS_PER_EDGE * STORAGE.edge_length_m();
    Resolution::range(resolution_at(resolution), STORAGE)
        .skip(1)
        .map(|level| PARENT_OFFSET_PER_EDGE * level.edge_length_m())
        .sum::<f64>()
        + circumradius
}

/// The storage-resolution descendants of `cell`, whose resolution is at most 10, as one id
/// range: the centre child (all lower digits 0) to the last child (all lower digits 6).
pub fn descendant_range(cell: CellIndex) -> CellRange {
    let first = cell.center_child(STORAGE).unwrap_or(cell);
    let coarse = u8::from(cell.resolution());
    // Digit d (1-based) of an index sits 3 × (15 − d) bits up; 0b110 is direction 6.
    let last = ((coarse + 1)..=crate::STORAGE_RESOLUTION).fold(u64::from(first), |bits, digit| {
        bits | (0b110 << (3 * (15 - u32::from(digit))))
    });
    CellRange {
        first: cell_id(first),
        last: (last & i64::MAX as u64) as i64,
    }
}

fn resolution_at(resolution: u8) -> Resolution {
    Resolution::try_from(resolution.min(crate::STORAGE_RESOLUTION)).unwrap_or(STORAGE)
}

impl Cover {
    /// Covers the circle of `radius_m` metres around `centre`: every point within the radius
    /// has its storage cell in one of the ranges.
    ///
    /// The cover holds the coarse cells whose centre lies within `radius + spill` of the
    /// centre, so everything it covers lies within `radius + 2 × spill`. The resolution is the
    /// finest whose cover is expected to need at most 32 cells (at most 64 in fact, near
    /// pentagons); whenever that is coarser than the storage resolution the spill is at most
    /// 0.8 × the radius, so the area scanned is at most 6.76 times the circle's (2.25 times on
    /// average, measured by the property tests).
    pub fn circle(centre: Point, radius_m: f64) -> Result<Self, InvalidRadius> {
        if !radius_m.is_finite() || !(0.0..=MAX_COVER_RADIUS_M).contains(&radius_m) {
            return Err(InvalidRadius);
        }
        let resolution = (0..=crate::STORAGE_RESOLUTION)
            .rev()
            .map(resolution_at)
            .find(|&level| {
                let reach = radius_m + spill_radius_m(u8::from(level));
                std::f64::consts::PI * reach * reach / level.area_m2() <= TARGET_COARSE_CELLS
            })
            .unwrap_or(Resolution::Zero);
        let cells = coarse_cells(centre.lat_lng(), radius_m, resolution);
        let mut ranges: Vec<CellRange> = cells.iter().copied().map(descendant_range).collect();
        ranges.sort_unstable();
        Ok(Self {
            resolution: u8::from(resolution),
            cells: cells.into_iter().map(cell_id).collect(),
            ranges: merge(ranges),
        })
    }

    /// The resolution of the coarse cells the cover was built from.
    pub fn resolution(&self) -> u8 {
        self.resolution
    }

    /// The ids of the coarse cells the cover was built from.
    pub fn coarse_cells(&self) -> &[i64] {
        &self.cells
    }

    /// Sorted, disjoint ranges; no valid storage cell lies between two consecutive ones.
    pub fn ranges(&self) -> &[CellRange] {
        &self.ranges
    }

    pub fn contains(&self, cell: i64) -> bool {
        let after = self.ranges.partition_point(|range| range.last < cell);
        self.ranges
            .get(after)
            .is_some_and(|range| range.contains(cell))
    }
}

/// The cells of `resolution` whose descendants can reach within `radius_m` of `centre`.
///
/// A cell qualifies when its centre is within `reach = radius + spill`. To enumerate them, take
/// grid disks around the centre's cell until the outermost ring holds no cell whose centre is
/// within `reach + circumradius`: the great-circle path from the centre to a qualifying cell's
/// centre runs through neighbouring cells whose centres are all that close, so it cannot cross
/// such a ring, and every qualifying cell lies inside it.
fn coarse_cells(centre: LatLng, radius_m: f64, resolution: Resolution) -> Vec<CellIndex> {
    let edge = resolution.edge_length_m();
    let reach = radius_m + spill_radius_m(u8::from(resolution));
    let fringe = reach + CIRCUMRADIUS_PER_EDGE * edge;
    let origin = centre.to_cell(resolution);
    // Neighbouring centres are about √3 edges apart; start there and widen if the ring says so.
    let mut k = (fringe / (1.5 * edge)).ceil().max(1.0) as u32;
    loop {
        let disk: Vec<(CellIndex, u32)> = origin.grid_disk_distances(k);
        let ring_reaches = disk
            .iter()
            .filter(|(_, distance)| *distance == k)
            .any(|(cell, _)| centre.distance_m(LatLng::from(*cell)) <= fringe);
        // A disk that wraps around the whole globe has no outer ring left to check.
        if !ring_reaches || disk.len() as u64 >= resolution.cell_count() {
            return disk
                .into_iter()
                .map(|(cell, _)| cell)
                .filter(|cell| centre.distance_m(LatLng::from(*cell)) <= reach)
                .collect();
        }
        k += 1;
    }
}

/// Merges sorted ranges that overlap or that no valid storage cell separates.
fn merge(sorted: Vec<CellRange>) -> Vec<CellRange> {
    let mut merged: Vec<CellRange> = Vec::with_capacity(sorted.len());
    for range in sorted {
        if let Some(previous) = merged.last_mut()
            && range.first <= next_cell(previous.last)
        {
            previous.last = previous.last.max(range.last);
            continue;
        }
        merged.push(range);
    }
    merged
}

/// The smallest valid storage cell id after `cell` (or `cell` itself when it is the last).
fn next_cell(cell: i64) -> i64 {
    CellIndex::try_from(cell as u64)
        .ok()
        .and_then(CellIndex::succ)
        .map_or(cell, cell_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(lat: f64, lng: f64) -> Point {
        Point::new(lat, lng).unwrap()
    }

    #[test]
    fn descendant_ranges_span_exactly_the_storage_children() {
        for (lat, lng) in [(40.7, -74.0), (-33.9, 151.2), (64.7, 10.5), (0.0, 0.0)] {
            let at = LatLng::new(lat, lng).unwrap();
            for level in Resolution::range(Resolution::Four, STORAGE) {
                let cell = at.to_cell(level);
                let range = descendant_range(cell);
                let children: Vec<i64> = cell.children(STORAGE).map(cell_id).collect();
                assert_eq!(range.first, *children.first().unwrap());
                assert_eq!(range.last, *children.last().unwrap());
                assert!(children.iter().all(|child| range.contains(*child)));
            }
        }
        // A pentagon's range skips its deleted sub-sequence but still spans its children.
        let pentagon = Resolution::Five.pentagons().next().unwrap();
        let range = descendant_range(pentagon);
        assert!(
            pentagon
                .children(STORAGE)
                .all(|c| range.contains(cell_id(c)))
        );
    }

    #[test]
    fn sibling_ranges_merge_into_their_parents() {
        let parent = LatLng::new(52.52, 13.405)
            .unwrap()
            .to_cell(Resolution::Seven);
        let mut ranges: Vec<CellRange> = parent
            .children(Resolution::Eight)
            .map(descendant_range)
            .collect();
        ranges.sort_unstable();
        assert_eq!(ranges.len(), 7);
        assert_eq!(merge(ranges), vec![descendant_range(parent)]);
        // Two cells that are not consecutive stay apart.
        let children: Vec<CellIndex> = parent.children(Resolution::Eight).collect();
        let apart = vec![descendant_range(children[0]), descendant_range(children[2])];
        assert_eq!(merge(apart.clone()), apart);
    }

    #[test]
    fn the_geometry_constants_bound_every_cell_of_coarse_resolutions() {
        // Re-measure the constants over every cell of resolutions 0–3 (41 162 cells).
        for level in Resolution::range(Resolution::Zero, Resolution::Three) {
            let edge = level.edge_length_m();
            for cell in CellIndex::base_cells().flat_map(|base| base.children(level)) {
                let centre = LatLng::from(cell);
                for vertex in cell.boundary().iter() {
                    assert!(centre.distance_m(*vertex) <= CIRCUMRADIUS_PER_EDGE * edge);
                }
                if let Some(parent) = level.pred().and_then(|up| cell.parent(up)) {
                    let offset = centre.distance_m(LatLng::from(parent));
                    assert!(offset <= PARENT_OFFSET_PER_EDGE * edge, "{cell} {offset}");
                }
            }
        }
    }

    #[test]
    fn spill_bounds_every_descendant_vertex() {
        // Every vertex of every resolution-3+d descendant of sampled coarse cells lies within
        // the spill radius computed for the storage chain (which is larger still).
        for level in [Resolution::One, Resolution::Two] {
            let fine = Resolution::try_from(u8::from(level) + 3).unwrap();
            let bound = spill_radius_m(u8::from(level));
            for cell in CellIndex::base_cells()
                .flat_map(|base| base.children(level))
                .step_by(7)
            {
                let centre = LatLng::from(cell);
                for child in cell.children(fine) {
                    for vertex in child.boundary().iter() {
                        assert!(centre.distance_m(*vertex) <= bound);
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_bad_radii() {
        let centre = point(1.0, 2.0);
        for radius in [-1.0, f64::NAN, f64::INFINITY, MAX_COVER_RADIUS_M + 1.0] {
            assert_eq!(Cover::circle(centre, radius), Err(InvalidRadius));
        }
        assert!(Cover::circle(centre, 0.0).is_ok());
        assert!(Cover::circle(centre, MAX_COVER_RADIUS_M).is_ok());
    }

    #[test]
    fn resolution_follows_the_radius() {
        let centre = point(40.7, -74.0);
        let resolution = |radius| Cover::circle(centre, radius).unwrap().resolution();
        assert_eq!(resolution(1.0), 10);
        assert!(resolution(1_000.0) < 10);
        assert!(resolution(50_000.0) < resolution(1_000.0));
        let cover = Cover::circle(centre, 1_000.0).unwrap();
        assert!(cover.contains(crate::storage_cell(centre)));
        assert!(cover.ranges().len() <= cover.coarse_cells().len());
        assert!(cover.coarse_cells().len() <= 64);
    }
}
