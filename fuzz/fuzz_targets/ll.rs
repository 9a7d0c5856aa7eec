//! The query string of the search and nearby routes: `ll`, `radius` and `limit`, as
//! `routes/query.rs` reads them. A position that parses is on the globe and reads back the
//! same; every refusal is a 400 `malformed_request` or a 422 `validation_failed` naming the
//! parameter.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vicinity_api::ApiError;
use vicinity_api::fuzzing::{FormParams, limit, ll, parse_query, radius};
use vicinity_domain::ValidationErrors;

const KNOWN: &[&str] = &["ll", "radius", "limit", "query", "category", "cursor"];
const DEFAULT_RADIUS_M: f64 = 1_000.0;
const MAX_RADIUS_M: f64 = 50_000.0;
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 50;

fn names(errors: &ValidationErrors, field: &str) -> bool {
    errors.0.iter().any(|error| error.field == field)
}

fuzz_target!(|data: &[u8]| {
    // actix hands handlers the query string as text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = match parse_query(text, KNOWN) {
        Ok(params) => params,
        Err(error) => {
            assert_eq!(error.code(), "malformed_request", "{error}");
            return;
        }
    };
    assert!(params.names().all(|name| KNOWN.contains(&name)));

    let mut errors = ValidationErrors::default();
    match ll(&params, &mut errors) {
        Ok(Some(point)) => {
            let (lat, lng) = (point.lat(), point.lng());
            assert!(
                lat.is_finite() && (-90.0..=90.0).contains(&lat),
                "lat {lat}"
            );
            assert!(
                lng.is_finite() && (-180.0..=180.0).contains(&lng),
                "lng {lng}"
            );
            assert!(!names(&errors, "ll"));
            // The position written back as `lat,lng` (as a client would) reads the same.
            let again = FormParams::parse(format!("ll={lat},{lng}").as_bytes())
                .expect("a written position is a readable query");
            let mut none = ValidationErrors::default();
            let reread = ll(&again, &mut none).expect("a written position has the right shape");
            assert_eq!(reread, Some(point));
            assert!(none.is_empty());
        }
        Ok(None) => assert!(names(&errors, "ll"), "a missing or bad ll is explained"),
        Err(error) => assert_eq!(error.code(), "malformed_request", "{error}"),
    }
    match radius(&params, DEFAULT_RADIUS_M, MAX_RADIUS_M, &mut errors) {
        Ok(Some(radius_m)) => {
            assert!(radius_m.is_finite() && (1.0..=MAX_RADIUS_M).contains(&radius_m));
            assert!(params.get("radius").is_some() || radius_m == DEFAULT_RADIUS_M);
        }
        Ok(None) => assert!(names(&errors, "radius")),
        Err(error) => assert_eq!(error.code(), "malformed_request", "{error}"),
    }
    match limit(&params, DEFAULT_LIMIT, MAX_LIMIT, &mut errors) {
        Ok(Some(limit)) => assert!((1..=MAX_LIMIT).contains(&limit)),
        Ok(None) => assert!(names(&errors, "limit")),
        Err(error) => assert_eq!(error.code(), "malformed_request", "{error}"),
    }
    if !errors.is_empty() {
        assert_eq!(ApiError::from(errors).code(), "validation_failed");
    }
});
