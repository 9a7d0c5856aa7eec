//! Query-string parameters: refused when repeated or unknown, each error naming its parameter,
//! and the `limit` / `cursor` pair every list shares.

use vicinity_domain::ValidationErrors;
use vicinity_geo::Point;

use crate::cursor::Cursors;
use crate::error::ApiError;
use crate::json::{FormError, FormParams};

/// Parses a query string, refusing parameters given twice and any not in `known`.
pub fn parse(query_string: &str, known: &[&str]) -> Result<FormParams, ApiError> {
    let params = FormParams::parse(query_string.as_bytes()).map_err(|error| match error {
        FormError::Repeated(name) => {
            ApiError::malformed(Some(name.clone()), format!("{name}: given more than once"))
        }
        _ => ApiError::malformed(None, "the query string cannot be read"),
    })?;
    if let Some(unknown) = params.names().find(|name| !known.contains(name)) {
        return Err(ApiError::malformed(
            Some(unknown.to_owned()),
            format!("{unknown}: unknown parameter (known: {})", known.join(", ")),
        ));
    }
    Ok(params)
}

/// `limit`: a whole number from 1 to `max`, `default` when absent. Out of range is recorded in
/// `errors` (422); not a number at all is a 400.
pub fn limit(
    params: &FormParams,
    default: usize,
    max: usize,
    errors: &mut ValidationErrors,
) -> Result<Option<usize>, ApiError> {
    let Some(text) = params.get("limit") else {
        return Ok(Some(default));
    };
    let limit: i64 = text
        .trim()
        .parse()
        .map_err(|_| ApiError::malformed(Some("limit".into()), "limit: must be a whole number"))?;
    Ok(errors.check(
        "limit",
        usize::try_from(limit)
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| format!("must be between 1 and {max}")),
    ))
}

/// `radius` in metres: from 1 to `max`, `default` when absent. Out of range is recorded in
/// `errors` (422); not a number at all is a 400.
pub fn radius(
    params: &FormParams,
    default: f64,
    max: f64,
    errors: &mut ValidationErrors,
) -> Result<Option<f64>, ApiError> {
    let Some(text) = params.get("radius") else {
        return Ok(Some(default));
    };
    let radius: f64 = text.trim().parse().map_err(|_| {
        ApiError::malformed(Some("radius".into()), "radius: must be a number of metres")
    })?;
    Ok(errors.check(
        "radius",
        if radius.is_finite() && (1.0..=max).contains(&radius) {
            Ok(radius)
        } else {
            Err(format!("must be between 1 and {max} metres"))
        },
    ))
}

/// The position a `cursor` parameter holds, checked against the list it must come from.
pub fn cursor(
    params: &FormParams,
    cursors: &Cursors,
    list: &[u8],
) -> Result<Option<Vec<u8>>, ApiError> {
    params
        .get("cursor")
        .map(|cursor| cursors.open(list, cursor))
        .transpose()
}

/// The `limit` and `cursor` of a newest-first list, with the identity of the list (its kind and
/// whose it is) that the cursor is bound to.
pub struct Page {
    pub limit: usize,
    pub after: Option<(i64, i64)>,
    list: Vec<u8>,
}

impl Page {
    pub fn parse(
        params: &FormParams,
        cursors: &Cursors,
        list: String,
        default: usize,
        max: usize,
    ) -> Result<Self, ApiError> {
        let mut errors = ValidationErrors::default();
        let Some(limit) = limit(params, default, max, &mut errors)? else {
            return Err(errors.into());
        };
        let list = list.into_bytes();
        let after = cursor(params, cursors, &list)?
            .map(|bytes| decode_pair(&bytes))
            .transpose()?;
        Ok(Self { limit, after, list })
    }

    /// Trims `rows` (fetched with `limit + 1`) to the page; the cursor of the next page, if any.
    pub fn finish<T>(
        &self,
        cursors: &Cursors,
        rows: &mut Vec<T>,
        key: impl Fn(&T) -> (i64, i64),
    ) -> Option<String> {
        let more = rows.len() > self.limit;
        rows.truncate(self.limit);
        more.then(|| rows.last())
            .flatten()
            .map(|last| cursors.seal(&self.list, &encode_pair(key(last))))
    }
}

/// A (time, id) list position as cursor bytes, and back.
fn encode_pair((at, id): (i64, i64)) -> Vec<u8> {
    let mut bytes = at.to_be_bytes().to_vec();
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes
}

fn decode_pair(bytes: &[u8]) -> Result<(i64, i64), ApiError> {
    let invalid =
        || ApiError::malformed(Some("cursor".into()), "cursor: not a cursor of this list");
    let (at, id) = bytes.split_at_checked(8).ok_or_else(invalid)?;
    Ok((
        i64::from_be_bytes(at.try_into().map_err(|_| invalid())?),
        i64::from_be_bytes(id.try_into().map_err(|_| invalid())?),
    ))
}

/// `ll`, required: `lat,lng` in degrees. Missing or out of range is recorded in `errors`
/// (422); a shape that cannot be read is a 400.
pub fn ll(params: &FormParams, errors: &mut ValidationErrors) -> Result<Option<Point>, ApiError> {
    match params.get("ll") {
        None => {
            errors.check::<()>("ll", Err("is required, as `lat,lng`".into()));
            Ok(None)
        }
        Some(ll) => parse_ll(ll, errors),
    }
}

/// Parses `lat,lng`; a shape error is a 400, a coordinate out of range a 422.
fn parse_ll(text: &str, errors: &mut ValidationErrors) -> Result<Option<Point>, ApiError> {
    let malformed = || {
        ApiError::malformed(
            Some("ll".into()),
            "ll: must be `lat,lng` in degrees, such as `40.7580,-73.9855`",
        )
    };
    let (lat, lng) = text.split_once(',').ok_or_else(malformed)?;
    let lat: f64 = lat.trim().parse().map_err(|_| malformed())?;
    let lng: f64 = lng.trim().parse().map_err(|_| malformed())?;
    Ok(errors.check(
        "ll",
        Point::new(lat, lng).map_err(|error| error.to_string()),
    ))
}
