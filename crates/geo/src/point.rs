//! A validated WGS84 position and the great-circle measures between two of them.

use std::fmt;

/// Mean Earth radius in metres, the one h3o measures with, so distances and covers agree.
pub const EARTH_RADIUS_M: f64 = h3o::EARTH_RADIUS_KM * 1000.0;

/// A position in degrees: latitude within ±90, longitude within ±180, both finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    lat: f64,
    lng: f64,
}

/// Which coordinate of a position is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPoint {
    #[error("latitude must be a finite number of degrees between -90 and 90")]
    Latitude,
    #[error("longitude must be a finite number of degrees between -180 and 180")]
    Longitude,
}

impl Point {
    pub fn new(lat: f64, lng: f64) -> Result<Self, InvalidPoint> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(InvalidPoint::Latitude);
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(InvalidPoint::Longitude);
        }
        Ok(Self { lat, lng })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lng(self) -> f64 {
        self.lng
    }

    pub(crate) fn lat_lng(self) -> h3o::LatLng {
        // In range and finite by construction, which is all h3o checks.
        h3o::LatLng::new(self.lat, self.lng).unwrap_or_default()
    }

    /// The great-circle (haversine) distance in metres on the mean-radius sphere.
    pub fn distance_m(self, other: Self) -> f64 {
        self.lat_lng().distance_m(other.lat_lng())
    }

    /// The initial bearing from `self` towards `other`, in degrees clockwise from true north,
    /// in `[0, 360)`. A point has no bearing to itself; that case answers 0.
    pub fn bearing_deg(self, other: Self) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let delta = (other.lng - self.lng).to_radians();
        let y = delta.sin() * phi2.cos();
        let x = phi1.cos() * phi2.sin() - phi1.sin() * phi2.cos() * delta.cos();
        let bearing = y.atan2(x).to_degrees().rem_euclid(360.0);
        // rem_euclid can round a tiny negative angle up to exactly 360.
        if bearing >= 360.0 { 0.0 } else { bearing }
    }

    /// The point reached by travelling `distance_m` metres along the great circle that starts
    /// at `self` with the initial bearing `bearing_deg`.
    pub fn destination(self, bearing_deg: f64, distance_m: f64) -> Self {
        let (phi1, lambda1) = (self.lat.to_radians(), self.lng.to_radians());
        let (theta, delta) = (bearing_deg.to_radians(), distance_m / EARTH_RADIUS_M);
        let sin_phi2 = phi1.sin() * delta.cos() + phi1.cos() * delta.sin() * theta.cos();
        let phi2 = sin_phi2.clamp(-1.0, 1.0).asin();
        let lambda2 = lambda1
            + (theta.sin() * delta.sin() * phi1.cos()).atan2(delta.cos() - phi1.sin() * sin_phi2);
        // Wrap into [-180, 180).
        let lng = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        Self {
            lat: phi2.to_degrees().clamp(-90.0, 90.0),
            lng: lng.clamp(-180.0, 180.0),
        }
    }
}

impl From<h3o::LatLng> for Point {
    fn from(value: h3o::LatLng) -> Self {
        // h3o normalises longitudes into ±180 and latitudes into ±90.
        Self {
            lat: value.lat().clamp(-90.0, 90.0),
            lng: value.lng().clamp(-180.0, 180.0),
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.lat, self.lng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lng: f64) -> Point {
        Point::new(lat, lng).unwrap()
    }

    #[test]
    fn rejects_out_of_range_and_non_finite_coordinates() {
        for lat in [
            90.000_001,
            -90.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert_eq!(Point::new(lat, 0.0), Err(InvalidPoint::Latitude), "{lat}");
        }
        for lng in [180.000_001, -181.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Point::new(0.0, lng), Err(InvalidPoint::Longitude), "{lng}");
        }
        for (lat, lng) in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)] {
            assert!(Point::new(lat, lng).is_ok());
        }
    }

    #[test]
    fn distances_match_known_values() {
        // One degree of latitude on the mean sphere.
        let degree = std::f64::consts::PI / 180.0 * EARTH_RADIUS_M;
        assert!((p(0.0, 0.0).distance_m(p(1.0, 0.0)) - degree).abs() < 1e-6);
        // Across the antimeridian the short way round.
        let across = p(0.0, 179.9995).distance_m(p(0.0, -179.9995));
        assert!((across - degree * 0.001).abs() < 1e-6, "{across}");
        // Pole to pole is half the circumference, whatever the longitudes.
        let poles = p(90.0, 17.0).distance_m(p(-90.0, -123.0));
        assert!((poles - std::f64::consts::PI * EARTH_RADIUS_M).abs() < 1e-3);
        // Paris to Shanghai, as published for the haversine formula on this sphere.
        let paris = p(48.864716, 2.349014);
        let shanghai = p(31.224361, 121.469170);
        assert!((paris.distance_m(shanghai) - 9_262_547.534).abs() < 1.0);
        assert_eq!(paris.distance_m(paris), 0.0);
    }

    #[test]
    fn destinations_travel_the_distance_and_bearing_asked() {
        for (start, bearing, distance) in [
            (p(40.7, -74.0), 37.0, 1_234.5),
            (p(-33.9, 151.2), 250.0, 80_000.0),
            (p(0.0, 179.9999), 90.0, 500.0),
            (p(89.9999, 12.0), 180.0, 30.0),
        ] {
            let end = start.destination(bearing, distance);
            assert!((start.distance_m(end) - distance).abs() < 1e-6 * distance.max(1.0));
            assert!((-180.0..=180.0).contains(&end.lng()));
        }
        // Crossing the antimeridian eastwards lands at a negative longitude.
        assert!(p(0.0, 179.9999).destination(90.0, 500.0).lng() < 0.0);
        let east = p(10.0, 20.0).destination(90.0, 1_000.0);
        assert!((p(10.0, 20.0).bearing_deg(east) - 90.0).abs() < 1e-6);
    }

    #[test]
    fn bearings_point_the_right_way() {
        let origin = p(0.0, 0.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(origin.bearing_deg(p(1.0, 0.0)), 0.0));
        assert!(close(origin.bearing_deg(p(0.0, 1.0)), 90.0));
        assert!(close(origin.bearing_deg(p(-1.0, 0.0)), 180.0));
        assert!(close(origin.bearing_deg(p(0.0, -1.0)), 270.0));
        // Eastwards across the antimeridian.
        assert!(close(p(0.0, 179.5).bearing_deg(p(0.0, -179.5)), 90.0));
        // From the pole (taken at longitude 0) the bearing is the longitude difference seen
        // from below: south along the 45° meridian is 180° − 45°.
        assert!((p(90.0, 0.0).bearing_deg(p(10.0, 45.0)) - 135.0).abs() < 1e-6);
        for (a, b) in [
            (p(51.5, -0.12), p(40.7, -74.0)),
            (p(-33.9, 151.2), p(35.7, 139.7)),
        ] {
            let bearing = a.bearing_deg(b);
            assert!((0.0..360.0).contains(&bearing));
        }
    }
}
