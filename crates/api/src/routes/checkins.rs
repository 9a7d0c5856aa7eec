//! Check-ins: create (idempotently, with the friends nearby in the answer), read, delete, and
//! the caller's own history.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::checkin::{parse_checkin_time, parse_shout};
use vicinity_domain::secret::sha256_hex;
use vicinity_domain::{CheckInId, PrecisionLevel, UserId, ValidationErrors, VenueId, Visibility};
use vicinity_store::checkins::{
    self, Answer, CheckInKey, IdempotencyKey, Listed, NewCheckIn, Scope,
};
use vicinity_store::presence::NearbyFriend;
use vicinity_store::{DbConnection, StoreError};

use super::friends::ListParams;
use super::presence::{DeviceLocation, NearbyItem};
use super::query::{self, Page};
use super::users::PublicUser;
use super::venues::VenueView;
use crate::app::AppState;
use crate::auth::{Scoped, scopes};
use crate::error::{ApiError, ErrorEnvelope, not_found_as};
use crate::json::JsonBody;

/// The radius of the "friends nearby" that come with a new check-in, in metres.
const CHECKIN_NEARBY_RADIUS_M: f64 = 1_000.0;
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 50;
/// The header a client sets to make a retried check-in safe.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// A check-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinView {
    #[schema(example = "chk_0f3kz9w2m4q8r")]
    pub id: String,
    pub user: PublicUser,
    pub venue: VenueView,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Best flat white in town")]
    pub shout: Option<String>,
    /// `public`, `friends` or `private`.
    #[schema(example = "friends")]
    pub visibility: &'static str,
    /// When it happened (the client's time for a check-in queued offline).
    pub created_at: DateTime<Utc>,
    /// The device's position: shown to its owner only (to an app of theirs only with
    /// `location:read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<DeviceLocation>,
}

impl CheckinView {
    /// A check-in with the device position shown only to `position_reader` (see
    /// [`Caller::position_reader`](crate::auth::Caller::position_reader)) when it is theirs.
    pub(crate) fn new(listed: Listed, position_reader: Option<UserId>) -> Self {
        let Listed { checkin, owner, .. } = listed;
        let location = (Some(checkin.user_id) == position_reader).then_some(DeviceLocation {
            lat: checkin.location.lat(),
            lng: checkin.location.lng(),
            accuracy_m: checkin.accuracy_m,
        });
        Self {
            id: checkin.id.to_string(),
            user: PublicUser::from(&owner),
            venue: checkin.venue.into(),
            shout: checkin.shout,
            visibility: checkin.visibility.as_str(),
            created_at: checkin.created_at,
            location,
        }
    }
}

/// A new check-in and the friends nearby right now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinCreated {
    pub checkin: CheckinView,
    /// Friends within 1 km of the check-in, as `GET /v1/me/nearby` shows them.
    pub nearby_friends: Vec<NearbyItem>,
}

/// A page of check-ins.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinPage {
    pub items: Vec<CheckinView>,
    pub next_cursor: Option<String>,
}

/// A check-in to record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCheckinRequest {
    #[schema(
        example = "ven_0f3kz9w2m4q8r",
        pattern = "^ven_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$"
    )]
    pub venue_id: String,
    /// Where the device is: it must be within 200 m of the venue plus its accuracy (at most
    /// 1 km of it).
    pub location: DeviceLocation,
    /// Up to 140 characters.
    #[schema(example = "Best flat white in town")]
    pub shout: Option<String>,
    /// `public`, `friends` or `private`; the caller's `default_visibility` when omitted.
    #[schema(example = "friends")]
    pub visibility: Option<String>,
    /// For a check-in queued offline: when it happened (at most 7 days ago, never in the
    /// future).
    pub created_at: Option<DateTime<Utc>>,
}

impl CreateCheckinRequest {
    fn parse(&self, now: DateTime<Utc>) -> Result<NewCheckIn, ApiError> {
        let venue_id =
            VenueId::parse(&self.venue_id).map_err(|e| ApiError::bad_id("venue_id", e))?;
        let mut errors = ValidationErrors::default();
        let location = self.location.parse("location", &mut errors);
        let shout = self
            .shout
            .as_deref()
            .and_then(|s| errors.check("shout", parse_shout(s)))
            .flatten();
        let visibility = self
            .visibility
            .as_deref()
            .map(|v| errors.check("visibility", Visibility::parse(v)));
        let created_at = errors.check("created_at", parse_checkin_time(self.created_at, now));
        let (Some((location, accuracy_m)), Some(created_at), true) =
            (location, created_at, errors.is_empty())
        else {
            return Err(errors.into());
        };
        Ok(NewCheckIn {
            venue_id,
            location,
            accuracy_m,
            shout,
            visibility: visibility.flatten(),
            created_at,
        })
    }

    /// What identifies "the same request" for an idempotency key.
    fn fingerprint(&self) -> String {
        let body = serde_json::to_string(self).unwrap_or_default();
        sha256_hex(&format!("POST /v1/checkins\n{body}"))
    }
}

/// The Idempotency-Key header: 1–255 visible ASCII characters.
fn idempotency_key(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let refuse = || {
        ApiError::malformed(
            Some(IDEMPOTENCY_KEY.into()),
            "Idempotency-Key: must be 1 to 255 visible ASCII characters, such as a UUID",
        )
    };
    let key = value.to_str().map_err(|_| refuse())?;
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refuse());
    }
    Ok(Some(key.to_owned()))
}

/// Checks in at a venue. The answer holds the check-in and the friends nearby right now. With
/// an `Idempotency-Key`, a retry with the same key and body gets the first answer again (with
/// `Idempotent-Replayed: true`) and creates nothing; the same key with another body is a 422.
#[utoipa::path(
    post,
    path = "/v1/checkins",
    tag = "checkins",
    security(("bearer" = ["checkins:write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1–255 visible ASCII characters, unique per check-in")),
    request_body = CreateCheckinRequest,
    responses(
        (status = 201, description = "Checked in", body = CheckinCreated,
            headers(("Location" = String, description = "The check-in's URL"))),
        (status = 400, description = "Malformed JSON, ids or Idempotency-Key", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `checkins:write`", body = ErrorEnvelope),
        (status = 404, description = "No such venue", body = ErrorEnvelope),
        (status = 422, description = "A field breaks its rules, `too_far_from_venue`, `impossible_travel`, or `idempotency_key_reused`", body = ErrorEnvelope),
    )
)]
pub async fn create_checkin(
    caller: Scoped<scopes::CheckinsWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonBody(body): JsonBody<CreateCheckinRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let new = body.parse(now)?;
    let key = idempotency_key(&request)?.map(|key| IdempotencyKey {
        key,
        request_hash: body.fingerprint(),
    });
    let (me, rules) = (caller.user_id, state.config.presence);
    let reader = caller.position_reader();
    // An app the person did not grant `location:read` learns where friends are no more
    // finely than the city, whatever both of them share.
    let cap = if caller.scope.contains(vicinity_domain::Scope::LocationRead) {
        PrecisionLevel::Exact
    } else {
        PrecisionLevel::City
    };
    let render = move |listed: Listed, friends: Vec<NearbyFriend>| {
        let created = CheckinCreated {
            checkin: CheckinView::new(listed, reader),
            nearby_friends: friends.into_iter().map(NearbyItem::from).collect(),
        };
        serde_json::to_string(&created).map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    let answer = checkins::check_in(
        &state.store,
        &state.checkin_writer,
        &state.recorder,
        me,
        new,
        key,
        rules,
        now,
        CHECKIN_NEARBY_RADIUS_M,
        cap,
        render,
    )
    .await
    .map_err(not_found_as("no such venue"))?;
    let json = HeaderValue::from_static("application/json");
    Ok(match answer {
        Answer::Created { id, response } => {
            state.metrics.checkins.inc();
            // Apps the person authorized hear of it: the check-in only, never the friends
            // nearby that its answer holds.
            state.webhooks.checkin_created(me, &response).await;
            HttpResponse::Created()
                .insert_header((header::CONTENT_TYPE, json))
                .insert_header((header::LOCATION, format!("/v1/checkins/{id}")))
                .body(response)
        }
        Answer::Replay { status, response } => {
            let status = actix_web::http::StatusCode::from_u16(status)
                .unwrap_or(actix_web::http::StatusCode::CREATED);
            HttpResponse::build(status)
                .insert_header((header::CONTENT_TYPE, json))
                .insert_header(("Idempotent-Replayed", "true"))
                .body(response)
        }
    })
}

fn checkin_id(path: &str) -> Result<CheckInId, ApiError> {
    CheckInId::parse(path).map_err(|_| ApiError::not_found("no such check-in"))
}

/// One check-in, if the caller may see it: its owner always, friends a `friends` one, anyone
/// a `public` one, nobody across a block. Otherwise 404: its existence stays hidden.
#[utoipa::path(
    get,
    path = "/v1/checkins/{checkin_id}",
    tag = "checkins",
    params(("checkin_id" = String, Path, description = "The check-in's id")),
    security(("bearer" = ["checkins:read"])),
    responses(
        (status = 200, description = "The check-in", body = CheckinView),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `checkins:read`", body = ErrorEnvelope),
        (status = 404, description = "No such check-in, or not one the caller may see", body = ErrorEnvelope),
    )
)]
pub async fn get_checkin(
    caller: Scoped<scopes::CheckinsRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = checkin_id(&path)?;
    let me = caller.user_id;
    let view = state
        .store
        .run(move |conn| checkins::find_visible(conn, id, me))
        .await
        .map_err(not_found_as("no such check-in"))?;
    let view = CheckinView::new(view, caller.position_reader());
    Ok(HttpResponse::Ok().json(view))
}

/// Deletes one of the caller's check-ins.
#[utoipa::path(
    delete,
    path = "/v1/checkins/{checkin_id}",
    tag = "checkins",
    params(("checkin_id" = String, Path, description = "The check-in's id")),
    security(("bearer" = ["checkins:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `checkins:write`", body = ErrorEnvelope),
        (status = 404, description = "No such check-in of the caller's", body = ErrorEnvelope),
    )
)]
pub async fn delete_checkin(
    caller: Scoped<scopes::CheckinsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = checkin_id(&path)?;
    let me = caller.user_id;
    state
        .store
        .run(move |conn| checkins::delete(conn, id, me))
        .await
        .map_err(not_found_as("no such check-in"))?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's own check-ins, newest first, whatever their visibility.
#[utoipa::path(
    get,
    path = "/v1/me/checkins",
    tag = "checkins",
    params(ListParams),
    security(("bearer" = ["checkins:read"])),
    responses(
        (status = 200, description = "A page of check-ins", body = CheckinPage),
        (status = 400, description = "Unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `checkins:read`", body = ErrorEnvelope),
        (status = 422, description = "`limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn my_checkins(
    caller: Scoped<scopes::CheckinsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    checkin_list(
        &state,
        &request,
        format!("me/checkins\0{me}"),
        caller.position_reader(),
        move |conn, after, limit| checkins::list(conn, Scope::Own(me), after, limit),
    )
    .await
}

/// One page of a check-in list: parses `limit` and `cursor`, fetches with `fetch`, and seals
/// the cursor of the next page.
async fn checkin_list(
    state: &AppState,
    request: &HttpRequest,
    list: String,
    reader: Option<UserId>,
    fetch: impl FnOnce(&mut DbConnection, Option<CheckInKey>, usize) -> Result<Vec<Listed>, StoreError>
    + Send
    + 'static,
) -> Result<HttpResponse, ApiError> {
    let params = query::parse(request.query_string(), &["limit", "cursor"])?;
    let page = Page::parse(&params, &state.cursors, list, DEFAULT_LIMIT, MAX_LIMIT)?;
    let (after, limit) = (page.after, page.limit);
    let mut rows = state
        .store
        .run(move |conn| fetch(conn, after, limit + 1))
        .await
        .map_err(not_found_as("no such user"))?;
    let next_cursor = page.finish(&state.cursors, &mut rows, |row| row.key);
    Ok(HttpResponse::Ok().json(CheckinPage {
        items: rows
            .into_iter()
            .map(|row| CheckinView::new(row, reader))
            .collect(),
        next_cursor,
    }))
}

/// Friends' recent check-ins (those visible to friends), newest first.
#[utoipa::path(
    get,
    path = "/v1/feed",
    tag = "checkins",
    params(ListParams),
    security(("bearer" = ["checkins:read"])),
    responses(
        (status = 200, description = "A page of friends' check-ins", body = CheckinPage),
        (status = 400, description = "Unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `checkins:read`", body = ErrorEnvelope),
        (status = 422, description = "`limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn feed(
    caller: Scoped<scopes::CheckinsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    checkin_list(
        &state,
        &request,
        format!("feed\0{me}"),
        caller.position_reader(),
        move |conn, after, limit| checkins::list(conn, Scope::Feed(me), after, limit),
    )
    .await
}

/// Someone's check-ins that the caller may see (all for oneself, public and friends-only for
/// a friend, public for anyone else), newest first.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/checkins",
    tag = "checkins",
    params(("user_id" = String, Path, pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$", description = "Whose check-ins"), ListParams),
    security(("bearer" = ["checkins:read"])),
    responses(
        (status = 200, description = "A page of check-ins", body = CheckinPage),
        (status = 400, description = "Malformed id, unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `checkins:read`", body = ErrorEnvelope),
        (status = 404, description = "No such person (or one on the other side of a block)", body = ErrorEnvelope),
        (status = 422, description = "`limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn user_checkins(
    caller: Scoped<scopes::CheckinsRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let owner = UserId::parse(&path).map_err(|e| ApiError::bad_id("user_id", e))?;
    let me = caller.user_id;
    let list = format!("users/checkins\0{me}\0{owner}");
    let reader = caller.position_reader();
    checkin_list(&state, &request, list, reader, move |conn, after, limit| {
        checkins::of_user(conn, me, owner, after, limit)
    })
    .await
}

/// Someone at a venue now.
#[derive(Debug, Serialize, ToSchema)]
pub struct HereNowItem {
    pub user: PublicUser,
    /// The check-in that put them here.
    pub checkin: CheckinView,
}

/// Who is at a venue now.
#[derive(Debug, Serialize, ToSchema)]
pub struct HereNow {
    pub items: Vec<HereNowItem>,
}

/// People whose current presence is a check-in at this venue that the caller may see, most
/// recent first (at most 100).
#[utoipa::path(
    get,
    path = "/v1/venues/{venue_id}/here-now",
    tag = "venues",
    params(("venue_id" = String, Path, description = "The venue's id")),
    security(("bearer" = ["checkins:read"])),
    responses(
        (status = 200, description = "Who is here now", body = HereNow),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `checkins:read`", body = ErrorEnvelope),
        (status = 404, description = "No such venue", body = ErrorEnvelope),
    )
)]
pub async fn here_now(
    caller: Scoped<scopes::CheckinsRead>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let venue = VenueId::parse(&path).map_err(|_| ApiError::not_found("no such venue"))?;
    let (me, reader) = (caller.user_id, caller.position_reader());
    let here = state
        .store
        .run(move |conn| checkins::here_now(conn, me, venue, Utc::now(), 100))
        .await
        .map_err(not_found_as("no such venue"))?;
    Ok(HttpResponse::Ok().json(HereNow {
        items: here
            .into_iter()
            .map(|listed| HereNowItem {
                user: PublicUser::from(&listed.owner),
                checkin: CheckinView::new(listed, reader),
            })
            .collect(),
    }))
}
