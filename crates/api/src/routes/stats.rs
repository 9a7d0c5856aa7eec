//! Statistics for operators (scope `admin`): a venue's activity, the busiest venues in an
//! area, check-ins per H3 cell (GeoJSON, CSV or an SVG heat map) and an overview. Each
//! answers JSON, or CSV with `Accept: text/csv` or `?format=csv`. Visitors are counted,
//! never listed, and cells with fewer visitors than the configured minimum are left out.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;
use vicinity_domain::stats::{Bucket, VenueActivity, Window};
use vicinity_domain::venue::parse_category_id;
use vicinity_domain::{ValidationErrors, VenueId};
use vicinity_geo::hexagon::{
    BoundingBox, cell_centre, cell_name, cell_polygons, mean_cell_area_km2,
};
use vicinity_store::stats::{self as store_stats, CellCount, TopVenuesQuery, VenueRank};

use super::venues::VenueView;
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::error::{ApiError, ErrorEnvelope, not_found_as};
use crate::heatmap;
use crate::json::FormParams;

/// Days a window spans when `from` is not given.
const DEFAULT_WINDOW_DAYS: i64 = 30;
const TOP_DEFAULT_RADIUS_M: f64 = 5_000.0;
const TOP_MAX_RADIUS_M: f64 = 50_000.0;
const TOP_DEFAULT_LIMIT: usize = 20;
const TOP_MAX_LIMIT: usize = 100;
/// The most cells one density answer may cover (estimated from the box's area).
const MAX_CELLS: f64 = 20_000.0;
const OVERVIEW_DEFAULT_DAYS: i64 = 30;
const OVERVIEW_MAX_DAYS: i64 = 90;

/// A representation an endpoint can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Svg,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Svg => "svg",
        }
    }

    /// The media types that ask for it (the first is what it is served as).
    fn media_types(self) -> &'static [&'static str] {
        match self {
            Self::Json => &["application/json", "application/geo+json", "application/*"],
            Self::Csv => &["text/csv", "text/*"],
            Self::Svg => &["image/svg+xml", "image/*"],
        }
    }
}

/// The representation to answer in: `?format=` when given, else the most preferred of
/// `Accept` that `offered` holds (the first of `offered` for `*/*` or no `Accept`).
fn negotiate(
    params: &FormParams,
    request: &HttpRequest,
    offered: &[Format],
) -> Result<Format, ApiError> {
    let names: Vec<&str> = offered.iter().map(|f| f.name()).collect();
    let default = offered.first().copied().unwrap_or(Format::Json);
    if let Some(asked) = params.get("format") {
        return offered
            .iter()
            .copied()
            .find(|f| f.name() == asked.trim())
            .ok_or_else(|| {
                let mut errors = ValidationErrors::default();
                errors.check::<()>(
                    "format",
                    Err(format!("must be one of {}", names.join(", "))),
                );
                ApiError::from(errors)
            });
    }
    let Some(accept) = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(default);
    };
    // Media ranges by preference (`q`), the order written breaking ties.
    let mut ranges: Vec<(f64, usize, String)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, range)| {
            let mut parts = range.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, i, media))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, media) in &ranges {
        if media == "*/*" {
            return Ok(default);
        }
        if let Some(format) = offered
            .iter()
            .copied()
            .find(|f| f.media_types().contains(&media.as_str()))
        {
            return Ok(format);
        }
    }
    Err(ApiError::not_acceptable(
        &offered
            .iter()
            .filter_map(|f| f.media_types().first().copied())
            .collect::<Vec<_>>(),
    ))
}

/// `tz`: an IANA zone name, `UTC` when absent.
fn parse_tz(params: &FormParams, errors: &mut ValidationErrors) -> Option<Tz> {
    let Some(name) = params.get("tz") else {
        return Some(Tz::UTC);
    };
    errors.check(
        "tz",
        name.trim()
            .parse::<Tz>()
            .map_err(|_| "must be an IANA time zone such as `Europe/Paris` or `UTC`".to_owned()),
    )
}

/// `from` or `to`: an RFC 3339 time, or a date meaning its midnight in `tz`. Unreadable is a
/// 400.
fn parse_time(params: &FormParams, name: &str, tz: Tz) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(text) = params.get(name).map(str::trim) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        // A zone that skips midnight starts that day an hour later.
        let local = tz.from_local_datetime(&midnight).earliest().or_else(|| {
            tz.from_local_datetime(&(midnight + TimeDelta::hours(1)))
                .earliest()
        });
        if let Some(local) = local {
            return Ok(Some(local.with_timezone(&Utc)));
        }
    }
    Err(ApiError::malformed(
        Some(name.to_owned()),
        format!(
            "{name}: must be an RFC 3339 time (`2026-11-01T09:00:00Z`) or a date (`2026-11-01`)"
        ),
    ))
}

/// `from`, `to` and `tz` as a window: `to` defaults to now, `from` to 30 days before `to`.
fn parse_window(
    params: &FormParams,
    errors: &mut ValidationErrors,
) -> Result<Option<Window>, ApiError> {
    let Some(tz) = parse_tz(params, errors) else {
        return Ok(None);
    };
    let to = parse_time(params, "to", tz)?.unwrap_or_else(Utc::now);
    let from = parse_time(params, "from", tz)?
        .unwrap_or_else(|| to - TimeDelta::days(DEFAULT_WINDOW_DAYS));
    Ok(errors.check("from", Window::new(from, to, tz).map_err(|e| e.to_string())))
}

fn local_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn utc_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Rows as CSV (RFC 4180), header first.
fn csv_response(header: &[&str], rows: Vec<Vec<String>>) -> Result<HttpResponse, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written = std::iter::once(header.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows)
        .try_for_each(|row: Vec<String>| writer.write_record(&row));
    let bytes = written
        .map_err(|e| e.to_string())
        .and_then(|()| writer.into_inner().map_err(|e| e.to_string()))
        .map_err(|error| {
            tracing::error!(%error, "cannot write CSV");
            ApiError::internal()
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
        ))
        .body(bytes))
}

/// Check-ins by visibility.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisibilityMixView {
    pub public: u64,
    pub friends: u64,
    pub private: u64,
}

/// One bucket of a time series.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start, in the asked time zone.
    #[schema(example = "2026-11-01T00:00:00-04:00")]
    pub start: String,
    pub checkins: u64,
    pub unique_visitors: u64,
}

/// A venue's activity in a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct VenueStats {
    pub venue: VenueView,
    #[schema(example = "2026-10-01T00:00:00Z")]
    pub from: String,
    #[schema(example = "2026-11-01T00:00:00Z")]
    pub to: String,
    #[schema(example = "America/New_York")]
    pub tz: String,
    /// `hour`, `day` or `week`.
    #[schema(example = "day")]
    pub bucket: &'static str,
    pub checkins: u64,
    pub unique_visitors: u64,
    /// Visitors whose first check-in here ever is in the window.
    pub new_visitors: u64,
    /// Visitors who had checked in here before the window.
    pub returning_visitors: u64,
    pub visibility: VisibilityMixView,
    /// Every bucket overlapping the window, empty ones included.
    pub series: Vec<SeriesPoint>,
    /// Check-ins by local weekday (Monday first) × hour of day (0–23).
    pub by_weekday_hour: Vec<Vec<u64>>,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A venue's check-ins, unique visitors (new and returning), a time series, a weekday × hour
/// histogram and the visibility mix, for a window read in a time zone. Nobody is listed.
#[utoipa::path(
    get,
    path = "/v1/admin/venues/{venue_id}/stats",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(
        ("venue_id" = String, Path, description = "The venue's id"),
        ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, or a date meaning its midnight in `tz`; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "End (exclusive), as `from`; default now. At most 366 days after `from`"),
        ("bucket" = Option<String>, Query, description = "`hour`, `day` (default) or `week` (from Monday)"),
        ("tz" = Option<String>, Query, description = "IANA time zone for buckets, the histogram and dates; default `UTC`"),
        ("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "`json` (default) or `csv`; overrides `Accept`"),
    ),
    responses(
        (status = 200, description = "The venue's activity; as `text/csv`, rows of `metric,key,value`", body = VenueStats),
        (status = 400, description = "An unknown or repeated parameter, or an unreadable time", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such venue", body = ErrorEnvelope),
        (status = 406, description = "`Accept` allows neither JSON nor CSV", body = ErrorEnvelope),
        (status = 422, description = "An empty or too long window, too many buckets, an unknown zone, bucket or format", body = ErrorEnvelope),
    )
)]
pub async fn venue_stats(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = super::query::parse(
        request.query_string(),
        &["from", "to", "bucket", "tz", "format"],
    )?;
    let format = negotiate(&params, &request, &[Format::Json, Format::Csv])?;
    let venue = VenueId::parse(&path).map_err(|_| ApiError::not_found("no such venue"))?;
    let mut errors = ValidationErrors::default();
    let window = parse_window(&params, &mut errors)?;
    let bucket = match params.get("bucket") {
        None => Some(Bucket::Day),
        Some(text) => errors.check(
            "bucket",
            Bucket::parse(text.trim()).ok_or_else(|| "must be hour, day or week".to_owned()),
        ),
    };
    let (Some(window), Some(bucket)) = (window, bucket) else {
        return Err(errors.into());
    };
    // Refuse a window with too many buckets before touching the database.
    if let Err(error) = window.buckets(bucket) {
        errors.check::<()>("bucket", Err(error.to_string()));
        return Err(errors.into());
    }
    let (from, to) = (window.from(), window.to());
    let (found, visits, returning) = state
        .store
        .run(move |conn| {
            store_stats::analytic(conn, |conn| {
                let (found, visits) = store_stats::venue_visits(conn, venue, from, to)?;
                let returning = store_stats::returning_visitors(conn, venue, from, to)?;
                Ok((found, visits, returning))
            })
        })
        .await
        .map_err(not_found_as("no such venue"))?;
    let activity = VenueActivity::aggregate(&window, bucket, &visits, returning).map_err(|e| {
        let mut errors = ValidationErrors::default();
        errors.check::<()>("bucket", Err(e.to_string()));
        ApiError::from(errors)
    })?;
    let tz = window.tz();
    let stats = VenueStats {
        venue: found.into(),
        from: utc_time(from),
        to: utc_time(to),
        tz: tz.name().to_owned(),
        bucket: bucket.as_str(),
        checkins: activity.checkins,
        unique_visitors: activity.unique_visitors,
        new_visitors: activity.new_visitors,
        returning_visitors: activity.returning_visitors,
        visibility: VisibilityMixView {
            public: activity.visibility.public,
            friends: activity.visibility.friends,
            private: activity.visibility.private,
        },
        series: activity
            .series
            .iter()
            .map(|b| SeriesPoint {
                start: local_time(b.start, tz),
                checkins: b.checkins,
                unique_visitors: b.unique_visitors,
            })
            .collect(),
        by_weekday_hour: activity
            .by_weekday_hour
            .iter()
            .map(|hours| hours.to_vec())
            .collect(),
    };
    if format != Format::Csv {
        return Ok(HttpResponse::Ok().json(stats));
    }
    let row = |metric: &str, key: &str, value: u64| {
        vec![metric.to_owned(), key.to_owned(), value.to_string()]
    };
    let mut rows = vec![
        row("checkins", "total", stats.checkins),
        row("visitors", "unique", stats.unique_visitors),
        row("visitors", "new", stats.new_visitors),
        row("visitors", "returning", stats.returning_visitors),
        row("visibility", "public", stats.visibility.public),
        row("visibility", "friends", stats.visibility.friends),
        row("visibility", "private", stats.visibility.private),
    ];
    for point in &stats.series {
        rows.push(row("series_checkins", &point.start, point.checkins));
        rows.push(row(
            "series_unique_visitors",
            &point.start,
            point.unique_visitors,
        ));
    }
    for (day, hours) in WEEKDAYS.iter().zip(&stats.by_weekday_hour) {
        for (hour, count) in hours.iter().enumerate() {
            rows.push(row("weekday_hour", &format!("{day} {hour:02}"), *count));
        }
    }
    csv_response(&["metric", "key", "value"], rows)
}

/// One of the busiest venues.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopVenue {
    /// 1 for the busiest.
    pub rank: usize,
    pub venue: VenueView,
    /// From `ll`, rounded to the metre.
    pub distance_m: u64,
    pub checkins: u64,
    pub unique_visitors: u64,
}

/// The busiest venues in an area.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopVenues {
    #[schema(example = "2026-10-01T00:00:00Z")]
    pub from: String,
    #[schema(example = "2026-11-01T00:00:00Z")]
    pub to: String,
    pub items: Vec<TopVenue>,
}

/// The venues within `radius` of `ll` with the most check-ins in the window (ties: more
/// visitors, then nearer). Venues without a check-in in the window are left out.
#[utoipa::path(
    get,
    path = "/v1/admin/stats/top-venues",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(
        ("ll" = String, Query, description = "Centre, `lat,lng`"),
        ("radius" = Option<f64>, Query, minimum = 1, maximum = 50000, description = "Metres, 1–50000, default 5000"),
        ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, or a date meaning its midnight in `tz`; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "End (exclusive), as `from`; default now"),
        ("tz" = Option<String>, Query, description = "IANA time zone for date-only `from`/`to`; default `UTC`"),
        ("category" = Option<String>, Query, description = "A category id: it and every category below it"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 100, description = "1–100, default 20"),
        ("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "`json` (default) or `csv`; overrides `Accept`"),
    ),
    responses(
        (status = 200, description = "The busiest venues; as `text/csv`, one row per venue", body = TopVenues),
        (status = 400, description = "An unknown or repeated parameter, or an unreadable `ll`, number or time", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 406, description = "`Accept` allows neither JSON nor CSV", body = ErrorEnvelope),
        (status = 422, description = "A missing `ll`, a value out of range, an unknown category, zone or format, a bad window", body = ErrorEnvelope),
    )
)]
pub async fn top_venues(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = super::query::parse(
        request.query_string(),
        &[
            "ll", "radius", "from", "to", "tz", "category", "limit", "format",
        ],
    )?;
    let format = negotiate(&params, &request, &[Format::Json, Format::Csv])?;
    let mut errors = ValidationErrors::default();
    let centre = super::query::ll(&params, &mut errors)?;
    let radius_m =
        super::query::radius(&params, TOP_DEFAULT_RADIUS_M, TOP_MAX_RADIUS_M, &mut errors)?;
    let limit = super::query::limit(&params, TOP_DEFAULT_LIMIT, TOP_MAX_LIMIT, &mut errors)?;
    let category = params
        .get("category")
        .and_then(|c| errors.check("category", parse_category_id(c)));
    let window = parse_window(&params, &mut errors)?;
    let (Some(centre), Some(radius_m), Some(limit), Some(window)) =
        (centre, radius_m, limit, window)
    else {
        return Err(errors.into());
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let query = TopVenuesQuery {
        centre,
        radius_m,
        category,
        from: window.from(),
        to: window.to(),
        limit,
    };
    let ranked = state
        .store
        .run(move |conn| store_stats::analytic(conn, |conn| store_stats::top_venues(conn, &query)))
        .await?;
    let items: Vec<TopVenue> = ranked
        .into_iter()
        .enumerate()
        .map(|(i, rank): (usize, VenueRank)| TopVenue {
            rank: i + 1,
            venue: rank.venue.into(),
            distance_m: rank.distance_m.round() as u64,
            checkins: rank.checkins,
            unique_visitors: rank.unique_visitors,
        })
        .collect();
    if format == Format::Csv {
        let rows = items
            .iter()
            .map(|item| {
                vec![
                    item.rank.to_string(),
                    item.venue.id.clone(),
                    item.venue.name.clone(),
                    item.venue.category.id.clone(),
                    item.venue.location.lat.to_string(),
                    item.venue.location.lng.to_string(),
                    item.distance_m.to_string(),
                    item.checkins.to_string(),
                    item.unique_visitors.to_string(),
                ]
            })
            .collect();
        return csv_response(
            &[
                "rank",
                "venue_id",
                "name",
                "category_id",
                "lat",
                "lng",
                "distance_m",
                "checkins",
                "unique_visitors",
            ],
            rows,
        );
    }
    Ok(HttpResponse::Ok().json(TopVenues {
        from: utc_time(window.from()),
        to: utc_time(window.to()),
        items,
    }))
}

/// Check-ins per H3 cell in a box, as GeoJSON (a FeatureCollection of hexagons; RFC 7946:
/// closed counter-clockwise rings, split at the antimeridian), CSV of cell centres, or an SVG
/// heat map. Cells with fewer distinct visitors than the server's minimum are left out, so
/// an aggregate never points at one person; `suppressed_cells` says how many.
///
/// At resolutions 7–10 the visitors are counted one by one (`unique_visitors`). At 0–6, for
/// boxes up to the whole world, the counts come from a daily rollup per resolution-6 cell: the
/// window widens to whole UTC days (`from` and `to` in the answer say which), the box takes
/// the resolution-6 cells whose centre is inside it, `unique_visitors` is null
/// (`visitors_counted: false`), and a cell is shown only when a bitmap of its visitors proves
/// the minimum, which may hide a cell barely above it but never shows one below.
#[utoipa::path(
    get,
    path = "/v1/admin/stats/cells",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(
        ("bbox" = String, Query, description = "`minLng,minLat,maxLng,maxLat`; minLng > maxLng crosses the antimeridian"),
        ("res" = Option<u8>, Query, minimum = 0, maximum = 10, description = "H3 resolution 0–10, default 8; the box may span at most about 20000 cells of it"),
        ("from" = Option<String>, Query, description = "Start (inclusive): RFC 3339, or a date meaning its midnight in `tz`; default 30 days before `to`"),
        ("to" = Option<String>, Query, description = "End (exclusive), as `from`; default now"),
        ("tz" = Option<String>, Query, description = "IANA time zone for date-only `from`/`to`; default `UTC`"),
        ("format" = Option<String>, Query, pattern = "^(json|csv|svg)$", description = "`json` (GeoJSON, default), `csv` or `svg`; overrides `Accept`"),
    ),
    responses(
        (status = 200, description = "A GeoJSON FeatureCollection (`application/geo+json`); or `text/csv` rows of `cell,lat,lng,checkins,unique_visitors` (empty at res 0–6); or an `image/svg+xml` heat map", body = Object),
        (status = 400, description = "An unknown or repeated parameter, or an unreadable number or time", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 406, description = "`Accept` allows none of GeoJSON, CSV or SVG", body = ErrorEnvelope),
        (status = 422, description = "A missing or invalid `bbox`, a resolution out of range or too fine for the box, a bad window, zone or format", body = ErrorEnvelope),
    )
)]
pub async fn cells(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = super::query::parse(
        request.query_string(),
        &["bbox", "res", "from", "to", "tz", "format"],
    )?;
    let format = negotiate(&params, &request, &[Format::Json, Format::Csv, Format::Svg])?;
    let mut errors = ValidationErrors::default();
    let bbox = match params.get("bbox") {
        None => {
            errors.check::<()>(
                "bbox",
                Err("is required, as `minLng,minLat,maxLng,maxLat`".into()),
            );
            None
        }
        Some(text) => errors.check("bbox", BoundingBox::parse(text).map_err(|e| e.to_string())),
    };
    let resolution = match params.get("res") {
        None => Some(8),
        Some(text) => {
            let value: i64 = text.trim().parse().map_err(|_| {
                ApiError::malformed(Some("res".into()), "res: must be a whole number")
            })?;
            errors.check(
                "res",
                u8::try_from(value)
                    .ok()
                    .filter(|r| *r <= vicinity_geo::STORAGE_RESOLUTION)
                    .ok_or_else(|| "must be between 0 and 10".to_owned()),
            )
        }
    };
    let window = parse_window(&params, &mut errors)?;
    let (Some(bbox), Some(resolution), Some(window)) = (bbox, resolution, window) else {
        return Err(errors.into());
    };
    let cells_in_box =
        |res: u8| bbox.area_km2() / mean_cell_area_km2(res).unwrap_or(f64::MIN_POSITIVE);
    if cells_in_box(resolution) > MAX_CELLS {
        let coarser = (0..resolution)
            .rev()
            .find(|r| cells_in_box(*r) <= MAX_CELLS)
            .map_or_else(
                || "a smaller box".to_owned(),
                |r| format!("res={r} or a smaller box"),
            );
        errors.check::<()>(
            "res",
            Err(format!(
                "the box spans about {:.0} cells at resolution {resolution} (at most {MAX_CELLS}); use {coarser}",
                cells_in_box(resolution)
            )),
        );
        return Err(errors.into());
    }
    let query = store_stats::CellsQuery {
        resolution,
        bbox,
        from: window.from(),
        to: window.to(),
        min_visitors: state.config.stats_min_visitors,
    };
    let counts = state
        .store
        .run(move |conn| store_stats::analytic(conn, |conn| store_stats::cell_counts(conn, &query)))
        .await?;
    let (from, to, minimum) = (counts.from, counts.to, query.min_visitors);
    let named: Vec<(String, &CellCount)> = counts
        .shown
        .iter()
        .filter_map(|count| Some((cell_name(count.cell)?, count)))
        .collect();
    match format {
        Format::Csv => {
            let rows = named
                .iter()
                .filter_map(|(name, count)| {
                    let [lng, lat] = cell_centre(count.cell)?;
                    Some(vec![
                        name.clone(),
                        lat.to_string(),
                        lng.to_string(),
                        count.checkins.to_string(),
                        count
                            .unique_visitors
                            .map_or_else(String::new, |n| n.to_string()),
                    ])
                })
                .collect();
            csv_response(&["cell", "lat", "lng", "checkins", "unique_visitors"], rows)
        }
        Format::Svg => {
            let shapes: Vec<heatmap::Shape> = named
                .iter()
                .filter_map(|(name, count)| {
                    Some(heatmap::Shape {
                        name: name.clone(),
                        polygons: cell_polygons(count.cell)?,
                        checkins: count.checkins,
                    })
                })
                .collect();
            let caption = format!(
                "Check-ins per H3 cell (res {resolution}), {} to {}; cells with fewer than {minimum} visitors hidden ({})",
                utc_time(from),
                utc_time(to),
                counts.suppressed
            );
            Ok(HttpResponse::Ok()
                .insert_header((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("image/svg+xml"),
                ))
                .body(heatmap::render(&bbox, &shapes, &caption)))
        }
        Format::Json => {
            let features: Vec<serde_json::Value> = named
                .iter()
                .filter_map(|(name, count)| cell_feature(name, count, resolution))
                .collect();
            let body = serde_json::json!({
                "type": "FeatureCollection",
                "features": features,
                "suppressed_cells": counts.suppressed,
                "min_visitors": minimum,
                "visitors_counted": counts.visitors_counted,
                "resolution": resolution,
                "from": utc_time(from),
                "to": utc_time(to),
            });
            Ok(HttpResponse::Ok()
                .insert_header((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/geo+json"),
                ))
                .body(body.to_string()))
        }
    }
}

/// One cell as a GeoJSON Feature: its hexagon (a MultiPolygon when the antimeridian cuts it)
/// and its counts.
fn cell_feature(name: &str, count: &CellCount, resolution: u8) -> Option<serde_json::Value> {
    let polygons = cell_polygons(count.cell)?;
    let geometry = match polygons.as_slice() {
        [ring] => serde_json::json!({"type": "Polygon", "coordinates": [ring]}),
        rings => serde_json::json!({
            "type": "MultiPolygon",
            "coordinates": rings.iter().map(|ring| vec![ring]).collect::<Vec<_>>(),
        }),
    };
    Some(serde_json::json!({
        "type": "Feature",
        "id": name,
        "geometry": geometry,
        "properties": {
            "cell": name,
            "resolution": resolution,
            "checkins": count.checkins,
            "unique_visitors": count.unique_visitors,
        },
    }))
}

/// Account counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserCounts {
    pub total: u64,
    pub suspended: u64,
    pub admins: u64,
}

/// People with a check-in in the last 24 hours, 7 days and 30 days.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveUsers {
    pub last_day: u64,
    pub last_7_days: u64,
    pub last_30_days: u64,
}

/// Check-ins on one local day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayCount {
    #[schema(example = "2026-11-01")]
    pub date: String,
    pub checkins: u64,
}

/// Check-in totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinTotals {
    pub total: u64,
    /// The last `days` local days, oldest first; today so far last.
    pub per_day: Vec<DayCount>,
}

/// The service at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub generated_at: DateTime<Utc>,
    #[schema(example = "UTC")]
    pub tz: String,
    pub users: UserCounts,
    pub active_users: ActiveUsers,
    /// People whose shared position has not expired.
    pub present_now: u64,
    pub checkins: CheckinTotals,
}

/// Users (all, suspended, administrators), active users, people present now and check-ins
/// (in all, and per local day for the last `days` days).
#[utoipa::path(
    get,
    path = "/v1/admin/stats/overview",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(
        ("days" = Option<i64>, Query, minimum = 1, maximum = 90, description = "Days of check-ins per day, 1–90, default 30 (today counts as one)"),
        ("tz" = Option<String>, Query, description = "IANA time zone of the days; default `UTC`"),
        ("format" = Option<String>, Query, pattern = "^(json|csv)$", description = "`json` (default) or `csv`; overrides `Accept`"),
    ),
    responses(
        (status = 200, description = "The overview; as `text/csv`, rows of `metric,key,value`", body = Overview),
        (status = 400, description = "An unknown or repeated parameter, or an unreadable number", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 406, description = "`Accept` allows neither JSON nor CSV", body = ErrorEnvelope),
        (status = 422, description = "`days` out of range, an unknown zone or format", body = ErrorEnvelope),
    )
)]
pub async fn overview(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = super::query::parse(request.query_string(), &["days", "tz", "format"])?;
    let format = negotiate(&params, &request, &[Format::Json, Format::Csv])?;
    let mut errors = ValidationErrors::default();
    let days = match params.get("days") {
        None => Some(OVERVIEW_DEFAULT_DAYS),
        Some(text) => {
            let value: i64 = text.trim().parse().map_err(|_| {
                ApiError::malformed(Some("days".into()), "days: must be a whole number")
            })?;
            errors.check(
                "days",
                Some(value)
                    .filter(|d| (1..=OVERVIEW_MAX_DAYS).contains(d))
                    .ok_or_else(|| format!("must be between 1 and {OVERVIEW_MAX_DAYS}")),
            )
        }
    };
    let tz = parse_tz(&params, &mut errors);
    let (Some(days), Some(tz)) = (days, tz) else {
        return Err(errors.into());
    };
    let now = Utc::now();
    // The days: from the start of the day `days - 1` days ago, to now.
    let first = now.with_timezone(&tz).date_naive() - TimeDelta::days(days - 1);
    let start = tz
        .from_local_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or(now - TimeDelta::days(days), |at| at.with_timezone(&Utc));
    let window = Window::new(start, now, tz).map_err(|e| {
        let mut errors = ValidationErrors::default();
        errors.check::<()>("days", Err(e.to_string()));
        ApiError::from(errors)
    })?;
    let day_starts = window.buckets(Bucket::Day).unwrap_or_default();
    let (counts, slots) = state
        .store
        .run(move |conn| {
            store_stats::analytic(conn, |conn| {
                Ok((
                    store_stats::overview(conn, now)?,
                    store_stats::checkins_per_slot(conn, start, now)?,
                ))
            })
        })
        .await?;
    let mut per_day: Vec<u64> = vec![0; day_starts.len()];
    for (slot, count) in slots {
        let index = day_starts.partition_point(|day| *day <= slot);
        if let Some(total) = index.checked_sub(1).and_then(|i| per_day.get_mut(i)) {
            *total += count;
        }
    }
    let overview = Overview {
        generated_at: now,
        tz: tz.name().to_owned(),
        users: UserCounts {
            total: counts.users,
            suspended: counts.suspended_users,
            admins: counts.admins,
        },
        active_users: ActiveUsers {
            last_day: counts.active_day,
            last_7_days: counts.active_week,
            last_30_days: counts.active_month,
        },
        present_now: counts.present_now,
        checkins: CheckinTotals {
            total: counts.checkins,
            per_day: day_starts
                .iter()
                .zip(per_day)
                .map(|(day, checkins)| DayCount {
                    date: day.with_timezone(&tz).date_naive().to_string(),
                    checkins,
                })
                .collect(),
        },
    };
    if format != Format::Csv {
        return Ok(HttpResponse::Ok().json(overview));
    }
    let row = |metric: &str, key: &str, value: u64| {
        vec![metric.to_owned(), key.to_owned(), value.to_string()]
    };
    let mut rows = vec![
        row("users", "total", overview.users.total),
        row("users", "suspended", overview.users.suspended),
        row("users", "admins", overview.users.admins),
        row("active_users", "last_day", overview.active_users.last_day),
        row(
            "active_users",
            "last_7_days",
            overview.active_users.last_7_days,
        ),
        row(
            "active_users",
            "last_30_days",
            overview.active_users.last_30_days,
        ),
        row("present_now", "", overview.present_now),
        row("checkins", "total", overview.checkins.total),
    ];
    for day in &overview.checkins.per_day {
        rows.push(row("checkins_per_day", &day.date, day.checkins));
    }
    csv_response(&["metric", "key", "value"], rows)
}
