//! Venues: add, read, change, remove, radius search; and the category tree.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use vicinity_domain::venue::{
    AddressInput, optional_text, parse_category_id, parse_country_code, parse_phone,
    parse_postal_code, parse_url,
};
use vicinity_domain::{Scope, ValidationErrors, VenueDetails, VenueId, VenueName, name_key};
use vicinity_geo::Point;
use vicinity_store::venues::{
    self, Category, Created, Found, SearchKey, Venue, VenueChanges, VenueSearch,
};

use crate::app::AppState;
use crate::auth::{AdminCaller, Caller, Scoped, scopes};
use crate::error::{ApiError, ErrorBody, ErrorEnvelope, not_found_as};
use crate::json::JsonBody;
use crate::request::current_request_id;

/// The largest search radius, in metres.
pub const MAX_SEARCH_RADIUS_M: f64 = 50_000.0;
/// The radius used when a search names none, in metres.
pub const DEFAULT_SEARCH_RADIUS_M: f64 = 1_000.0;
/// The most results one page holds.
pub const MAX_SEARCH_LIMIT: usize = 50;
const DEFAULT_SEARCH_LIMIT: usize = 20;

/// A position: latitude within ±90, longitude within ±180, in degrees (WGS84).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatLng {
    #[schema(example = 40.7580, minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(example = -73.9855, minimum = -180, maximum = 180)]
    pub lng: f64,
}

impl LatLng {
    fn parse(self, field: &str, errors: &mut ValidationErrors) -> Option<Point> {
        parse_point(self.lat, self.lng, field, errors)
    }
}

/// A position from a body, with an out-of-range coordinate recorded as `<field>.lat` or
/// `<field>.lng`.
pub(crate) fn parse_point(
    lat: f64,
    lng: f64,
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<Point> {
    match Point::new(lat, lng) {
        Ok(point) => Some(point),
        Err(error) => {
            let part = match error {
                vicinity_geo::InvalidPoint::Latitude => "lat",
                vicinity_geo::InvalidPoint::Longitude => "lng",
            };
            errors.check::<()>(&format!("{field}.{part}"), Err(error.to_string()));
            None
        }
    }
}

impl From<Point> for LatLng {
    fn from(point: Point) -> Self {
        Self {
            lat: point.lat(),
            lng: point.lng(),
        }
    }
}

/// A venue's category.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    #[schema(example = "coffee")]
    pub id: String,
    #[schema(example = "Coffee & Tea")]
    pub name: String,
}

/// Where a venue is, in words; absent parts are omitted.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressView {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "1535 Broadway")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "New York")]
    pub locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "NY")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "10036")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "US")]
    pub country_code: Option<String>,
}

/// A venue.
#[derive(Debug, Serialize, ToSchema)]
pub struct VenueView {
    #[schema(example = "ven_0f3kz9w2m4q8r")]
    pub id: String,
    #[schema(example = "Blue Bottle Coffee")]
    pub name: String,
    pub category: CategoryView,
    pub location: LatLng,
    pub address: AddressView,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "+1 212-555-0100")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://bluebottlecoffee.com")]
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Venue> for VenueView {
    fn from(venue: Venue) -> Self {
        Self {
            id: venue.id.to_string(),
            name: venue.name.as_str().to_owned(),
            category: CategoryView {
                id: venue.category.id,
                name: venue.category.name,
            },
            location: venue.location.into(),
            address: AddressView {
                street: venue.address.street,
                locality: venue.address.locality,
                region: venue.address.region,
                postal_code: venue.address.postal_code,
                country_code: venue.address.country_code,
            },
            phone: venue.phone,
            url: venue.url,
            created_at: venue.created_at,
            updated_at: venue.updated_at,
        }
    }
}

/// A venue in search results, with its distance from the search centre.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundVenue {
    #[serde(flatten)]
    pub venue: VenueView,
    /// Great-circle distance from `ll`, in whole metres.
    #[schema(example = 212)]
    pub distance_m: u64,
}

impl From<Found> for FoundVenue {
    fn from(found: Found) -> Self {
        Self {
            venue: found.venue.into(),
            distance_m: found.distance_m.round() as u64,
        }
    }
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct VenuePage {
    pub items: Vec<FoundVenue>,
    /// Pass as `cursor` (with the same other parameters) for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// A 409 when similar venues already exist nearby: the usual error envelope plus the
/// candidates, nearest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PossibleDuplicates {
    pub error: ErrorBody,
    pub candidates: Vec<FoundVenue>,
}

/// A new venue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVenueRequest {
    /// 1–100 characters.
    #[schema(example = "Blue Bottle Coffee")]
    pub name: String,
    /// A category id from `GET /v1/categories`.
    #[schema(example = "coffee", pattern = "^[a-z0-9-]{1,64}$")]
    pub category_id: String,
    pub location: LatLng,
    pub address: Option<AddressView>,
    /// Up to 32 characters: digits, spaces and `+ - ( ) .`.
    #[schema(example = "+1 212-555-0100")]
    pub phone: Option<String>,
    /// An http(s) address, up to 2048 characters.
    #[schema(example = "https://bluebottlecoffee.com")]
    pub url: Option<String>,
    /// Create the venue even though similar venues exist nearby (after a 409 showed them).
    #[serde(default)]
    pub allow_duplicate: bool,
}

impl CreateVenueRequest {
    fn parse(&self) -> Result<(VenueDetails, Point), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = errors.check("name", VenueName::parse(&self.name));
        let category_id = errors.check("category_id", parse_category_id(&self.category_id));
        let location = self.location.parse("location", &mut errors);
        let address = self
            .address
            .as_ref()
            .map(|a| {
                AddressInput {
                    street: a.street.as_deref(),
                    locality: a.locality.as_deref(),
                    region: a.region.as_deref(),
                    postal_code: a.postal_code.as_deref(),
                    country_code: a.country_code.as_deref(),
                }
                .parse(&mut errors)
            })
            .unwrap_or_default();
        let phone = self
            .phone
            .as_deref()
            .and_then(|p| errors.check("phone", parse_phone(p)))
            .flatten();
        let url = self
            .url
            .as_deref()
            .and_then(|u| errors.check("url", parse_url(u)))
            .flatten();
        errors.finish(|| {
            Some((
                VenueDetails {
                    name: name?,
                    category_id: category_id?,
                    address,
                    phone,
                    url,
                },
                location?,
            ))
        })
    }
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn nullable<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Fields to change; omitted fields stay. For the optional text fields, `null` or `""`
/// removes the value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVenueRequest {
    #[schema(example = "Blue Bottle Coffee Times Square")]
    pub name: Option<String>,
    /// A category id from `GET /v1/categories`.
    #[schema(example = "coffee", pattern = "^[a-z0-9-]{1,64}$")]
    pub category_id: Option<String>,
    pub location: Option<LatLng>,
    #[serde(default, deserialize_with = "nullable")]
    pub street: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub locality: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub region: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub postal_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub country_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub url: Option<Option<String>>,
}

impl UpdateVenueRequest {
    fn parse(&self) -> Result<VenueChanges, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        type Rule = fn(&str) -> Result<Option<String>, String>;
        let mut part = |field: &str, value: &Option<Option<String>>, rule: Rule| {
            value.as_ref().and_then(|v| match v {
                None => Some(None),
                Some(text) => errors.check(field, rule(text)),
            })
        };
        let street = part("street", &self.street, |v| optional_text(v, 200));
        let locality = part("locality", &self.locality, |v| optional_text(v, 100));
        let region = part("region", &self.region, |v| optional_text(v, 100));
        let postal_code = part("postal_code", &self.postal_code, parse_postal_code);
        let country_code = part("country_code", &self.country_code, parse_country_code);
        let phone = part("phone", &self.phone, parse_phone);
        let url = part("url", &self.url, parse_url);
        let changes = VenueChanges {
            name: self
                .name
                .as_deref()
                .and_then(|n| errors.check("name", VenueName::parse(n))),
            category_id: self
                .category_id
                .as_deref()
                .and_then(|c| errors.check("category_id", parse_category_id(c))),
            location: self.location.and_then(|l| l.parse("location", &mut errors)),
            street,
            locality,
            region,
            postal_code,
            country_code,
            phone,
            url,
        };
        errors.finish(|| Some(changes))
    }
}

fn venue_id(path: &str) -> Result<VenueId, ApiError> {
    // An id that cannot exist is simply not found, like any other unknown venue.
    VenueId::parse(path).map_err(|_| ApiError::not_found("no such venue"))
}

/// Adds a venue. When venues of a similar name already exist within 150 m, nothing is
/// written and the answer is 409 with those candidates; resubmit with
/// `"allow_duplicate": true` if the new venue really is a different place.
#[utoipa::path(
    post,
    path = "/v1/venues",
    tag = "venues",
    security(("bearer" = ["venues:write"])),
    request_body = CreateVenueRequest,
    responses(
        (status = 201, description = "The new venue", body = VenueView,
            headers(("Location" = String, description = "The venue's URL"))),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `venues:write`", body = ErrorEnvelope),
        (status = 409, description = "Similar venues exist nearby (code `possible_duplicate`)", body = PossibleDuplicates),
        (status = 422, description = "A field breaks its rules, or the category does not exist", body = ErrorEnvelope),
    )
)]
pub async fn create_venue(
    caller: Scoped<scopes::VenuesWrite>,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<CreateVenueRequest>,
) -> Result<HttpResponse, ApiError> {
    let (details, location) = body.parse()?;
    let (creator, allow) = (caller.user_id, body.allow_duplicate);
    let created = state
        .store
        .run(move |conn| venues::create(conn, &details, location, Some(creator), allow, Utc::now()))
        .await?;
    match created {
        Created::Venue(venue) => {
            tracing::info!(venue.id = %venue.id, "venue created");
            Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, format!("/v1/venues/{}", venue.id)))
                .json(VenueView::from(*venue)))
        }
        Created::PossibleDuplicates(found) => {
            let error = ApiError::conflict(
                "possible_duplicate",
                "venues of a similar name already exist within 150 m; use one of them, or \
                 send the request again with \"allow_duplicate\": true",
            );
            Ok(HttpResponse::Conflict()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(PossibleDuplicates {
                    error: error.envelope(current_request_id()).error,
                    candidates: found.into_iter().map(FoundVenue::from).collect(),
                }))
        }
    }
}

/// One venue.
#[utoipa::path(
    get,
    path = "/v1/venues/{venue_id}",
    tag = "venues",
    params(("venue_id" = String, Path, description = "The venue's id", example = "ven_0f3kz9w2m4q8r")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The venue", body = VenueView),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 404, description = "No such venue", body = ErrorEnvelope),
    )
)]
pub async fn get_venue(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = venue_id(&path)?;
    let venue = state
        .store
        .run(move |conn| venues::find(conn, id))
        .await
        .map_err(not_found_as("no such venue"))?;
    Ok(HttpResponse::Ok().json(VenueView::from(venue)))
}

/// Changes a venue. Only the person who added it, or an administrator, may.
#[utoipa::path(
    patch,
    path = "/v1/venues/{venue_id}",
    tag = "venues",
    params(("venue_id" = String, Path, description = "The venue's id", example = "ven_0f3kz9w2m4q8r")),
    security(("bearer" = ["venues:write"])),
    request_body = UpdateVenueRequest,
    responses(
        (status = 200, description = "The updated venue", body = VenueView),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `venues:write`, or the caller neither added the venue nor administers", body = ErrorEnvelope),
        (status = 404, description = "No such venue", body = ErrorEnvelope),
        (status = 422, description = "A field breaks its rules, or the category does not exist", body = ErrorEnvelope),
    )
)]
pub async fn update_venue(
    caller: Scoped<scopes::VenuesWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateVenueRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = venue_id(&path)?;
    let changes = body.parse()?;
    let (user, admin) = (caller.user_id, caller.scope.contains(Scope::Admin));
    let venue = state
        .store
        .run(move |conn| venues::update_as(conn, id, &changes, user, admin, Utc::now()))
        .await
        .map_err(not_found_as("no such venue"))?
        .ok_or_else(|| {
            ApiError::forbidden(
                "only the person who added this venue or an administrator may change it",
            )
        })?;
    Ok(HttpResponse::Ok().json(VenueView::from(venue)))
}

/// Removes a venue and the check-ins made there (administrators only).
#[utoipa::path(
    delete,
    path = "/v1/venues/{venue_id}",
    tag = "venues",
    params(("venue_id" = String, Path, description = "The venue's id", example = "ven_0f3kz9w2m4q8r")),
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    responses(
        (status = 204, description = "Venue removed"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such venue", body = ErrorEnvelope),
    )
)]
pub async fn delete_venue(
    caller: AdminCaller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = venue_id(&path)?;
    state
        .store
        .run(move |conn| venues::delete(conn, id))
        .await
        .map_err(not_found_as("no such venue"))?;
    tracing::info!(venue.id = %id, by = %caller.who, "venue deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Query parameters of a venue search, for the document; [`SearchRequest`] parses them (it
/// refuses repeated and unknown parameters, which a derived extractor would not).
#[derive(Debug, IntoParams)]
#[expect(dead_code, reason = "describes the parameters in openapi.yaml only")]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The search centre as `lat,lng` in degrees.
    #[param(example = "40.7580,-73.9855")]
    pub ll: String,
    /// Metres, 1 to 50000 (default 1000).
    #[param(example = 1000)]
    pub radius: Option<f64>,
    /// Keep venues whose name contains this (any case); names starting with it come first,
    /// then names with a word starting with it. 1–100 characters.
    #[param(example = "coffee")]
    pub query: Option<String>,
    /// Keep venues of this category or any category below it.
    #[param(example = "food")]
    pub category: Option<String>,
    /// Results per page, 1 to 50 (default 20).
    #[param(example = 20, minimum = 1, maximum = 50)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A search request, validated.
struct SearchRequest {
    centre: Point,
    radius_m: f64,
    query: Option<String>,
    category: Option<String>,
    limit: usize,
    cursor: Option<String>,
}

impl SearchRequest {
    fn parse(query_string: &str) -> Result<Self, ApiError> {
        let params = super::query::parse(
            query_string,
            &["ll", "radius", "query", "category", "limit", "cursor"],
        )?;
        let mut errors = ValidationErrors::default();
        let centre = super::query::ll(&params, &mut errors)?;
        let radius_m = super::query::radius(
            &params,
            DEFAULT_SEARCH_RADIUS_M,
            MAX_SEARCH_RADIUS_M,
            &mut errors,
        )?;
        let limit =
            super::query::limit(&params, DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT, &mut errors)?;
        let query = params.get("query").and_then(|text| {
            let key = name_key(text);
            let valid = if text.chars().count() > 100 {
                Err("must be at most 100 characters long".to_owned())
            } else if key.is_empty() {
                Err("must contain at least one letter or digit".to_owned())
            } else {
                Ok(key)
            };
            errors.check("query", valid)
        });
        let category = params
            .get("category")
            .and_then(|c| errors.check("category", parse_category_id(c)));
        let cursor = params.get("cursor").map(str::to_owned);
        errors
            .finish(|| {
                Some(Self {
                    centre: centre?,
                    radius_m: radius_m?,
                    query,
                    category,
                    limit: limit?,
                    cursor,
                })
            })
            .map_err(ApiError::from)
    }

    /// What a cursor is bound to: everything that decides the order and the membership.
    fn fingerprint(&self) -> Vec<u8> {
        format!(
            "venues/search\0{}\0{}\0{}\0{}\0{}",
            self.centre.lat().to_bits(),
            self.centre.lng().to_bits(),
            self.radius_m.to_bits(),
            self.query.as_deref().unwrap_or(""),
            self.category.as_deref().unwrap_or(""),
        )
        .into_bytes()
    }
}

fn encode_key(key: &SearchKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(17);
    bytes.push(key.rank);
    bytes.extend_from_slice(&key.distance_m.to_bits().to_be_bytes());
    bytes.extend_from_slice(&key.id.to_be_bytes());
    bytes
}

fn decode_key(bytes: &[u8]) -> Option<SearchKey> {
    let (&rank, rest) = bytes.split_first()?;
    let (distance, id) = rest.split_at_checked(8)?;
    let distance_m = f64::from_bits(u64::from_be_bytes(distance.try_into().ok()?));
    let id = i64::from_be_bytes(id.try_into().ok()?);
    Some(SearchKey {
        rank,
        distance_m,
        id,
    })
}

/// Venues within a radius, nearest first (with `query`: best name match first, then nearest),
/// each with its distance. Pages are stable: a cursor continues exactly after the last item.
#[utoipa::path(
    get,
    path = "/v1/venues/search",
    tag = "venues",
    params(SearchParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page of venues", body = VenuePage),
        (status = 400, description = "A parameter cannot be read, is repeated or unknown, or the cursor is not one this search returned", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 422, description = "A parameter is out of range, or the category does not exist", body = ErrorEnvelope),
    )
)]
pub async fn search_venues(
    _caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let search = SearchRequest::parse(request.query_string())?;
    let fingerprint = search.fingerprint();
    let after = match &search.cursor {
        None => None,
        Some(cursor) => {
            let position = state.cursors.open(&fingerprint, cursor)?;
            Some(decode_key(&position).ok_or_else(|| {
                ApiError::malformed(
                    Some("cursor".into()),
                    "cursor: not a cursor this search returned",
                )
            })?)
        }
    };
    let (centre, radius_m, query, category, limit) = (
        search.centre,
        search.radius_m,
        search.query.clone(),
        search.category.clone(),
        search.limit,
    );
    let (found, more) = state
        .store
        .run(move |conn| {
            venues::search(
                conn,
                &VenueSearch {
                    centre,
                    radius_m,
                    query,
                    category,
                    after,
                    limit,
                },
            )
        })
        .await?;
    let next_cursor = more
        .then(|| {
            found
                .last()
                .map(|last| state.cursors.seal(&fingerprint, &encode_key(&last.key)))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(VenuePage {
        items: found.into_iter().map(FoundVenue::from).collect(),
        next_cursor,
    }))
}

/// One node of the category tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryNode {
    #[schema(example = "coffee")]
    pub id: String,
    #[schema(example = "Coffee & Tea")]
    pub name: String,
    /// Sub-categories, in the same shape.
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

/// The category tree.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryTree {
    /// The top-level categories, each with its sub-categories.
    pub items: Vec<CategoryNode>,
}

fn build_tree(all: &[Category], parent: Option<&str>) -> Vec<CategoryNode> {
    all.iter()
        .filter(|c| c.parent_id.as_deref() == parent)
        .map(|c| CategoryNode {
            id: c.id.clone(),
            name: c.name.clone(),
            children: build_tree(all, Some(&c.id)),
        })
        .collect()
}

/// Every venue category, as a tree. Ids are stable; needs no token.
#[utoipa::path(
    get,
    path = "/v1/categories",
    tag = "venues",
    security(()),
    responses(
        (status = 200, description = "The category tree, siblings by name", body = CategoryTree),
    )
)]
pub async fn list_categories(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state.store.run(venues::categories).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(CategoryTree {
            items: build_tree(&all, None),
        }))
}
