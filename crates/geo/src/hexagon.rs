//! Aggregating by H3 cell: the parent of a stored cell computed with two integer masks (so a
//! database can group by it), a cell's outline as GeoJSON-ready polygons, and bounding boxes.

use std::fmt;

use h3o::{CellIndex, Resolution};

use crate::STORAGE_RESOLUTION;

/// Mean Earth radius in kilometres (IUGG).
const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// `(clear, set)` such that `(cell & clear) | set` is the parent at `resolution` of any stored
/// (resolution-10) cell: the resolution field (bits 52–55) is rewritten and the digits below
/// `resolution` become 7, as H3 writes unused digits. `None` above the storage resolution.
pub fn parent_masks(resolution: u8) -> Option<(i64, i64)> {
    if resolution > STORAGE_RESOLUTION {
        return None;
    }
    let resolution_field = 0xF_i64 << 52;
    let unused_digits = (1_i64 << (3 * (15 - i64::from(resolution)))) - 1;
    Some((
        !resolution_field,
        (i64::from(resolution) << 52) | unused_digits,
    ))
}

/// A cell id as H3 writes it (`8a2a1072b59ffff`), or `None` for a number that is no cell.
pub fn cell_name(cell: i64) -> Option<String> {
    let cell = CellIndex::try_from(u64::try_from(cell).ok()?).ok()?;
    Some(cell.to_string())
}

/// The centre of `cell` as `[lng, lat]`.
pub fn cell_centre(cell: i64) -> Option<Position> {
    let index = CellIndex::try_from(u64::try_from(cell).ok()?).ok()?;
    let centre = h3o::LatLng::from(index);
    Some([centre.lng(), centre.lat()])
}

/// The mean area of a cell at `resolution`, in km².
pub fn mean_cell_area_km2(resolution: u8) -> Option<f64> {
    Resolution::try_from(resolution)
        .ok()
        .map(Resolution::area_km2)
}

/// A position as GeoJSON writes it: `[lng, lat]`.
pub type Position = [f64; 2];

/// The outline of `cell` as GeoJSON polygons, each one closed ring wound counter-clockwise
/// with longitudes in [-180, 180]: one polygon, or two for a cell the antimeridian cuts, or
/// one that runs along the antimeridian to the pole for a cell holding a pole (RFC 7946
/// §3.1.9). `None` for a number that is no cell.
pub fn cell_polygons(cell: i64) -> Option<Vec<Vec<Position>>> {
    let index = CellIndex::try_from(u64::try_from(cell).ok()?).ok()?;
    let raw: Vec<Position> = index
        .boundary()
        .iter()
        .map(|vertex| [vertex.lng(), vertex.lat()])
        .collect();
    let centre_lat = h3o::LatLng::from(index).lat();
    Some(outline(&raw, centre_lat))
}

/// Polygons for a ring of `[lng, lat]` vertices (not closed) around a centre at `centre_lat`.
fn outline(raw: &[Position], centre_lat: f64) -> Vec<Vec<Position>> {
    let Some(&first) = raw.first() else {
        return Vec::new();
    };
    // Unwrap the longitudes so that consecutive vertices are less than 180° apart.
    let mut unwrapped = vec![first];
    let mut turned = 0.0;
    let mut previous = first;
    for &vertex in raw.iter().skip(1).chain(std::iter::once(&first)) {
        let delta = wrap(vertex[0] - previous[0]);
        turned += delta;
        previous = vertex;
        if let Some(last) = unwrapped.last().copied() {
            unwrapped.push([last[0] + delta, vertex[1]]);
        }
    }
    unwrapped.pop();
    let rings = if turned.abs() > 180.0 {
        vec![around_pole(&unwrapped, centre_lat)]
    } else {
        let (low, high) = unwrapped
            .iter()
            .fold((f64::MAX, f64::MIN), |(low, high), v| {
                (low.min(v[0]), high.max(v[0]))
            });
        if low >= -180.0 && high <= 180.0 {
            vec![unwrapped]
        } else {
            // Move it so the cut is at +180°, then split there.
            let shift = if low < -180.0 { 360.0 } else { 0.0 };
            let moved: Vec<Position> = unwrapped.iter().map(|v| [v[0] + shift, v[1]]).collect();
            let west = clip(&moved, 180.0, true);
            let east: Vec<Position> = clip(&moved, 180.0, false)
                .into_iter()
                .map(|v| [v[0] - 360.0, v[1]])
                .collect();
            vec![west, east]
        }
    };
    rings
        .into_iter()
        .filter(|ring| ring.len() >= 3)
        .map(close_counter_clockwise)
        .collect()
}

/// `degrees` brought into (-180, 180].
fn wrap(degrees: f64) -> f64 {
    let mut d = degrees % 360.0;
    if d > 180.0 {
        d -= 360.0;
    } else if d <= -180.0 {
        d += 360.0;
    }
    d
}

/// The part of `ring` with longitude ≤ `at` (`keep_west`) or ≥ `at` (Sutherland–Hodgman
/// against one meridian; edges are straight in longitude and latitude).
fn clip(ring: &[Position], at: f64, keep_west: bool) -> Vec<Position> {
    let inside = |v: &Position| if keep_west { v[0] <= at } else { v[0] >= at };
    let mut out = Vec::new();
    for (i, current) in ring.iter().enumerate() {
        let Some(next) = ring.get((i + 1) % ring.len()) else {
            continue;
        };
        let crossing = || {
            let t = (at - current[0]) / (next[0] - current[0]);
            [at, current[1] + t * (next[1] - current[1])]
        };
        match (inside(current), inside(next)) {
            (true, true) => out.push(*next),
            (true, false) => out.push(crossing()),
            (false, true) => {
                out.push(crossing());
                out.push(*next);
            }
            (false, false) => {}
        }
    }
    out
}

/// A ring that winds once around a pole, unwrapped, as a polygon in [-180, 180] that runs
/// along the antimeridian to the pole and back.
fn around_pole(unwrapped: &[Position], centre_lat: f64) -> Vec<Position> {
    // Bring every vertex into [-180, 180] and start just after the antimeridian crossing.
    let wrapped: Vec<Position> = unwrapped.iter().map(|v| [wrap(v[0]), v[1]]).collect();
    let n = wrapped.len();
    let Some(cut) = (0..n).find(|&i| {
        let (a, b) = (wrapped.get(i), wrapped.get((i + 1) % n));
        matches!((a, b), (Some(a), Some(b)) if (b[0] - a[0]).abs() > 180.0)
    }) else {
        return wrapped;
    };
    let ordered: Vec<Position> = (1..=n)
        .filter_map(|k| wrapped.get((cut + k) % n).copied())
        .collect();
    let (Some(&start), Some(&end)) = (ordered.first(), ordered.last()) else {
        return wrapped;
    };
    // The crossing edge runs from `end` to `start` across ±180°.
    let side = if end[0] > 0.0 { 180.0 } else { -180.0 };
    let span = (side - end[0]) + (start[0] + side);
    let t = if span.abs() < f64::EPSILON {
        0.5
    } else {
        (side - end[0]) / span
    };
    let lat_at_cut = end[1] + t * (start[1] - end[1]);
    let pole = if centre_lat >= 0.0 { 90.0 } else { -90.0 };
    let mut ring = vec![[-side, lat_at_cut]];
    ring.extend(ordered);
    ring.extend([[side, lat_at_cut], [side, pole], [-side, pole]]);
    ring
}

/// `ring` wound counter-clockwise (positive shoelace area) and closed.
fn close_counter_clockwise(mut ring: Vec<Position>) -> Vec<Position> {
    if signed_area(&ring) < 0.0 {
        ring.reverse();
    }
    if let Some(&first) = ring.first() {
        ring.push(first);
    }
    ring
}

/// Twice the signed planar area of an unclosed ring: positive when counter-clockwise.
pub fn signed_area(ring: &[Position]) -> f64 {
    let n = ring.len();
    (0..n)
        .filter_map(|i| Some((ring.get(i)?, ring.get((i + 1) % n)?)))
        .map(|(a, b)| a[0] * b[1] - b[0] * a[1])
        .sum()
}

/// `minLng,minLat,maxLng,maxLat` (GeoJSON's order). `min_lng > max_lng` crosses the
/// antimeridian.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lng: f64,
    pub min_lat: f64,
    pub max_lng: f64,
    pub max_lat: f64,
}

/// Why a bounding box was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBoundingBox {
    #[error("expected four numbers: minLng,minLat,maxLng,maxLat")]
    Shape,
    #[error("longitudes must be within [-180, 180] and latitudes within [-90, 90]")]
    OutOfRange,
    #[error("minLat must be below maxLat")]
    Empty,
}

impl BoundingBox {
    pub fn parse(text: &str) -> Result<Self, InvalidBoundingBox> {
        let numbers: Vec<f64> = text
            .split(',')
            .map(|part| part.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| InvalidBoundingBox::Shape)?;
        let [min_lng, min_lat, max_lng, max_lat] = numbers[..] else {
            return Err(InvalidBoundingBox::Shape);
        };
        let lng_ok = |x: f64| x.is_finite() && (-180.0..=180.0).contains(&x);
        let lat_ok = |y: f64| y.is_finite() && (-90.0..=90.0).contains(&y);
        if !(lng_ok(min_lng) && lng_ok(max_lng) && lat_ok(min_lat) && lat_ok(max_lat)) {
            return Err(InvalidBoundingBox::OutOfRange);
        }
        if min_lat >= max_lat || min_lng == max_lng {
            return Err(InvalidBoundingBox::Empty);
        }
        Ok(Self {
            min_lng,
            min_lat,
            max_lng,
            max_lat,
        })
    }

    /// The longitude spans it covers: one, or two across the antimeridian.
    pub fn lng_spans(&self) -> Vec<(f64, f64)> {
        if self.min_lng <= self.max_lng {
            vec![(self.min_lng, self.max_lng)]
        } else {
            vec![(self.min_lng, 180.0), (-180.0, self.max_lng)]
        }
    }

    /// Its area on the sphere, in km².
    pub fn area_km2(&self) -> f64 {
        let width: f64 = self.lng_spans().iter().map(|(w, e)| e - w).sum();
        EARTH_RADIUS_KM.powi(2)
            * width.to_radians()
            * (self.max_lat.to_radians().sin() - self.min_lat.to_radians().sin()).abs()
    }

    pub fn contains(&self, lng: f64, lat: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat)
            && self
                .lng_spans()
                .iter()
                .any(|(west, east)| (*west..=*east).contains(&lng))
    }
}

impl fmt::Display for BoundingBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.min_lng, self.min_lat, self.max_lng, self.max_lat
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Point, storage_cell};

    fn valid(polygons: &[Vec<Position>]) {
        assert!(!polygons.is_empty());
        for ring in polygons {
            assert!(ring.len() >= 4, "{ring:?}");
            assert_eq!(ring.first(), ring.last(), "closed: {ring:?}");
            let open = &ring[..ring.len() - 1];
            assert!(signed_area(open) > 0.0, "counter-clockwise: {ring:?}");
            for [lng, lat] in ring {
                assert!((-180.0..=180.0).contains(lng) && (-90.0..=90.0).contains(lat));
            }
        }
    }

    #[test]
    fn masks_give_h3_parents() {
        for (lat, lng) in [
            (40.758, -73.9855),
            (-33.86, 151.2),
            (64.1, -21.9),
            (0.0, 0.0),
        ] {
            let cell = storage_cell(Point::new(lat, lng).unwrap());
            let index = CellIndex::try_from(cell as u64).unwrap();
            for resolution in 0..=STORAGE_RESOLUTION {
                let (clear, set) = parent_masks(resolution).unwrap();
                let parent = index
                    .parent(Resolution::try_from(resolution).unwrap())
                    .unwrap();
                assert_eq!((cell & clear) | set, u64::from(parent) as i64);
            }
        }
        assert_eq!(parent_masks(11), None);
    }

    #[test]
    fn ordinary_cells_are_one_counter_clockwise_closed_ring() {
        let cell = storage_cell(Point::new(40.758, -73.9855).unwrap());
        let polygons = cell_polygons(cell).unwrap();
        assert_eq!(polygons.len(), 1);
        assert_eq!(polygons[0].len(), 7);
        valid(&polygons);
        assert_eq!(cell_name(cell).unwrap().len(), 15);
    }

    #[test]
    fn cells_on_the_antimeridian_are_split_in_two() {
        let cell = storage_cell(Point::new(-17.0, 179.99999).unwrap());
        let index = CellIndex::try_from(cell as u64).unwrap();
        let coarse = u64::from(index.parent(Resolution::Three).unwrap()) as i64;
        for cell in [cell, coarse] {
            let polygons = cell_polygons(cell).unwrap();
            valid(&polygons);
            assert_eq!(polygons.len(), 2, "{polygons:?}");
            let sides: Vec<bool> = polygons
                .iter()
                .map(|ring| ring.iter().all(|p| p[0] >= 0.0))
                .collect();
            assert_eq!(sides.iter().filter(|east| **east).count(), 1);
        }
    }

    #[test]
    fn cells_holding_a_pole_run_to_it() {
        for lat in [90.0, -90.0] {
            for resolution in [0, 2, 5, 10] {
                let cell = h3o::LatLng::new(lat, 0.0)
                    .unwrap()
                    .to_cell(Resolution::try_from(resolution).unwrap());
                let polygons = cell_polygons(u64::from(cell) as i64).unwrap();
                valid(&polygons);
                assert!(polygons[0].iter().any(|p| p[1] == lat), "{polygons:?}");
            }
        }
    }

    #[test]
    fn every_coarse_cell_has_a_valid_outline() {
        for cell in CellIndex::base_cells().flat_map(|base| base.children(Resolution::One)) {
            valid(&cell_polygons(u64::from(cell) as i64).unwrap());
        }
    }

    #[test]
    fn bounding_boxes_parse_and_measure() {
        let nyc = BoundingBox::parse("-74.1,40.6,-73.8,40.9").unwrap();
        assert!(nyc.contains(-73.9855, 40.758));
        assert!((nyc.area_km2() - 845.0).abs() < 20.0, "{}", nyc.area_km2());
        let fiji = BoundingBox::parse("177,-19,-178,-16").unwrap();
        assert_eq!(fiji.lng_spans().len(), 2);
        assert!(fiji.contains(179.9, -17.0) && fiji.contains(-179.9, -17.0));
        assert!(!fiji.contains(0.0, -17.0));
        assert_eq!(BoundingBox::parse("1,2,3"), Err(InvalidBoundingBox::Shape));
        assert_eq!(
            BoundingBox::parse("1,2,3,x"),
            Err(InvalidBoundingBox::Shape)
        );
        assert_eq!(
            BoundingBox::parse("-181,2,3,4"),
            Err(InvalidBoundingBox::OutOfRange)
        );
        assert_eq!(
            BoundingBox::parse("1,4,3,2"),
            Err(InvalidBoundingBox::Empty)
        );
        assert_eq!(
            BoundingBox::parse("NaN,1,2,3"),
            Err(InvalidBoundingBox::OutOfRange)
        );
    }
}
