//! Presence and "which friends are nearby right now" (DESIGN.md §5).
//!
//! The origin of a nearby query is always the caller's own last position on the server, never
//! a parameter: a free origin would turn the feature into a location oracle. What a friend's
//! entry reveals is computed from their snapped point at the coarser of the two people's
//! levels, so nothing finer than that level leaves the server.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vicinity_domain::{TokenFamilyId, UserId, ValidationErrors};
use vicinity_geo::Point;
use vicinity_store::access_log;
use vicinity_store::presence::{self, Nearby, NearbyFriend, Update};

use super::query::{self, Page};
use super::users::PublicUser;
use crate::app::AppState;
use crate::auth::{Scoped, scopes};
use crate::error::{ApiError, ErrorEnvelope};
use crate::json::JsonBody;

/// The largest nearby radius, in metres.
pub const MAX_NEARBY_RADIUS_M: f64 = 50_000.0;
const DEFAULT_NEARBY_RADIUS_M: f64 = 1_000.0;
/// The largest accuracy a device may report, in metres.
const MAX_ACCURACY_M: f64 = 10_000.0;

/// A device's position: latitude and longitude in degrees, and the accuracy it reports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceLocation {
    #[schema(example = 40.7580, minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(example = -73.9855, minimum = -180, maximum = 180)]
    pub lng: f64,
    /// Radius of uncertainty in metres, as the device reports it (0–10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 15, minimum = 0, maximum = 10000)]
    pub accuracy_m: Option<f64>,
}

impl DeviceLocation {
    /// The position and accuracy, or the fields at fault under `field`.
    pub(crate) fn parse(
        self,
        field: &str,
        errors: &mut ValidationErrors,
    ) -> Option<(Point, Option<f64>)> {
        let point = super::venues::parse_point(self.lat, self.lng, field, errors);
        let accuracy = match self.accuracy_m {
            None => Some(None),
            Some(a) if a.is_finite() && (0.0..=MAX_ACCURACY_M).contains(&a) => Some(Some(a)),
            Some(_) => {
                errors.check::<()>(
                    &format!("{field}.accuracy_m"),
                    Err(format!("must be between 0 and {MAX_ACCURACY_M} metres")),
                );
                None
            }
        };
        Some((point?, accuracy?))
    }
}

/// A position update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationUpdate {
    pub location: DeviceLocation,
}

/// The caller's own position as the server holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnPresence {
    pub location: DeviceLocation,
    pub updated_at: DateTime<Utc>,
    /// After this the position no longer counts for nearby.
    pub expires_at: DateTime<Utc>,
}

impl From<presence::Presence> for OwnPresence {
    fn from(own: presence::Presence) -> Self {
        Self {
            location: DeviceLocation {
                lat: own.location.lat(),
                lng: own.location.lng(),
                accuracy_m: own.accuracy_m,
            },
            updated_at: own.updated_at,
            expires_at: own.expires_at,
        }
    }
}

/// A friend nearby.
#[derive(Debug, Serialize, ToSchema)]
pub struct NearbyItem {
    pub user: PublicUser,
    /// From the caller to the friend's shared point, rounded to 50 m (exact), 100 m
    /// (neighborhood) or 1000 m (city).
    #[schema(example = 300)]
    pub distance_m: u64,
    /// The coarser of the two people's levels: `exact`, `neighborhood` or `city`.
    #[schema(example = "neighborhood")]
    pub precision: &'static str,
    pub last_seen_at: DateTime<Utc>,
    /// Where they checked in, when that check-in is visible to the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<super::venues::VenueView>,
}

impl From<NearbyFriend> for NearbyItem {
    fn from(friend: NearbyFriend) -> Self {
        Self {
            user: PublicUser::from(&friend.user),
            distance_m: friend.distance_m,
            precision: friend.precision.as_str(),
            last_seen_at: friend.last_seen_at,
            venue: friend.venue.map(Into::into),
        }
    }
}

/// Friends nearby, nearest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NearbyList {
    pub items: Vec<NearbyItem>,
}

/// Query parameters of a nearby query, for the document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the parameters in openapi.yaml only")]
pub struct NearbyParams {
    /// Metres, 1 to 50000 (default 1000).
    #[param(example = 1000, minimum = 1, maximum = 50000)]
    pub radius: Option<f64>,
}

/// The `radius` of a nearby query, once the caller's rate allows another query.
fn nearby_request(
    state: &AppState,
    request: &HttpRequest,
    caller: vicinity_domain::UserId,
) -> Result<f64, ApiError> {
    let params = query::parse(request.query_string(), &["radius"])?;
    let mut errors = ValidationErrors::default();
    let radius = query::radius(
        &params,
        DEFAULT_NEARBY_RADIUS_M,
        MAX_NEARBY_RADIUS_M,
        &mut errors,
    )?;
    let Some(radius) = radius else {
        return Err(errors.into());
    };
    rate_limited(state.nearby_queries.check(caller), "nearby queries")?;
    Ok(radius)
}

fn rate_limited(result: Result<(), u64>, what: &str) -> Result<(), ApiError> {
    result.map_err(|seconds| ApiError::rate_limited(seconds, what))
}

/// Sets the caller's position (without checking in). A position that could not have been
/// reached from the previous one at a plausible speed is refused.
#[utoipa::path(
    put,
    path = "/v1/me/location",
    tag = "presence",
    security(("bearer" = ["location:write"])),
    request_body = LocationUpdate,
    responses(
        (status = 200, description = "The position as stored", body = OwnPresence),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `location:write`", body = ErrorEnvelope),
        (status = 422, description = "A coordinate or the accuracy is out of range, or `impossible_travel`", body = ErrorEnvelope),
        (status = 429, description = "Too many updates; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn put_location(
    caller: Scoped<scopes::LocationWrite>,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<LocationUpdate>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = ValidationErrors::default();
    let parsed = body.location.parse("location", &mut errors);
    let Some((point, accuracy)) = parsed else {
        return Err(errors.into());
    };
    rate_limited(
        state.location_updates.check(caller.user_id),
        "location updates",
    )?;
    let (me, rules) = (caller.user_id, state.config.presence);
    let now = Utc::now();
    let update = state
        .store
        .run(move |conn| presence::update(conn, me, point, accuracy, None, rules, now))
        .await?;
    if let Update::ImpossibleTravel { speed_mps } = update {
        return Err(ApiError::unprocessable(
            "impossible_travel",
            format!(
                "reaching this position from your previous one needs {:.0} km/h; it was not stored",
                speed_mps * 3.6
            ),
        ));
    }
    Ok(HttpResponse::Ok().json(OwnPresence {
        location: DeviceLocation {
            lat: point.lat(),
            lng: point.lng(),
            accuracy_m: accuracy,
        },
        updated_at: now,
        expires_at: now + rules.ttl,
    }))
}

/// Forgets the caller's position at once: friends stop seeing them nearby.
#[utoipa::path(
    delete,
    path = "/v1/me/location",
    tag = "presence",
    security(("bearer" = ["location:write"])),
    responses(
        (status = 204, description = "Forgotten (or there was nothing to forget)"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `location:write`", body = ErrorEnvelope),
    )
)]
pub async fn delete_location(
    caller: Scoped<scopes::LocationWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    state
        .store
        .run(move |conn| presence::clear(conn, me))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Friends whose current position lies within `radius` of the caller's own, nearest first,
/// each at the coarser of the two people's precision levels.
#[utoipa::path(
    get,
    path = "/v1/me/nearby",
    tag = "presence",
    params(NearbyParams),
    security(("bearer" = ["location:read"])),
    responses(
        (status = 200, description = "Friends nearby", body = NearbyList),
        (status = 400, description = "A parameter cannot be read, is repeated or unknown", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `location:read`", body = ErrorEnvelope),
        (status = 409, description = "`location_unknown` (no current position: PUT /v1/me/location or check in) or `location_sharing_off` (the caller shares with nobody, so sees nobody)", body = ErrorEnvelope),
        (status = 422, description = "`radius` out of range", body = ErrorEnvelope),
        (status = 429, description = "Too many queries; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn nearby(
    caller: Scoped<scopes::LocationRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let radius = nearby_request(&state, &request, caller.user_id)?;
    state.metrics.nearby_queries.inc();
    let me = caller.user_id;
    let now = Utc::now();
    match presence::nearby_now(&state.store, &state.recorder, me, radius, now).await? {
        Nearby::Friends(friends) => Ok(HttpResponse::Ok().json(NearbyList {
            items: friends.into_iter().map(NearbyItem::from).collect(),
        })),
        Nearby::NoPresence => Err(ApiError::conflict(
            "location_unknown",
            "your position is unknown or has expired; share it (PUT /v1/me/location) or check in",
        )),
        Nearby::SharingOff => Err(ApiError::conflict(
            "location_sharing_off",
            "you share your location with nobody, so you see nobody; change location_precision",
        )),
    }
}

/// Someone who saw the caller's location.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    pub viewer: PublicUser,
    /// `nearby` or `here_now`.
    #[schema(example = "nearby")]
    pub via: &'static str,
    /// What they saw: `exact`, `neighborhood`, `city`, or `venue` (a check-in, in here-now).
    #[schema(example = "neighborhood")]
    pub precision: String,
    /// How many times that day.
    pub views: i64,
    pub last_seen_at: DateTime<Utc>,
}

impl From<access_log::Entry> for AccessEntry {
    fn from(entry: access_log::Entry) -> Self {
        Self {
            viewer: PublicUser::from(&entry.viewer),
            via: entry.via,
            precision: entry.precision,
            views: entry.views,
            last_seen_at: entry.last_at,
        }
    }
}

/// A page of the access log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessPage {
    pub items: Vec<AccessEntry>,
    pub next_cursor: Option<String>,
}

/// Who saw the caller's location through nearby or here-now, when, and at what precision
/// (one entry per viewer, channel and day), most recent first.
#[utoipa::path(
    get,
    path = "/v1/me/location/access-log",
    tag = "presence",
    params(super::friends::ListParams),
    security(("bearer" = ["location:read"])),
    responses(
        (status = 200, description = "A page of the log", body = AccessPage),
        (status = 400, description = "Unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `location:read`", body = ErrorEnvelope),
        (status = 422, description = "`limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn access_log(
    caller: Scoped<scopes::LocationRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    let params = query::parse(request.query_string(), &["limit", "cursor"])?;
    let page = Page::parse(
        &params,
        &state.cursors,
        format!("access-log\0{me}"),
        50,
        100,
    )?;
    let mut entries = access_log::entries_now(
        &state.store,
        &state.recorder,
        me,
        page.after,
        page.limit + 1,
    )
    .await?;
    let next_cursor = page.finish(&state.cursors, &mut entries, |entry| entry.key);
    Ok(HttpResponse::Ok().json(AccessPage {
        items: entries.into_iter().map(AccessEntry::from).collect(),
        next_cursor,
    }))
}

/// How far beyond the radius a friend must go before `faraway` (so that someone standing at
/// the edge does not flicker in and out).
fn leave_radius(radius: f64) -> f64 {
    radius * 1.2 + 100.0
}

/// How often a stream re-checks (for expired positions) and sends a keep-alive comment.
const STREAM_TICK: std::time::Duration = std::time::Duration::from_secs(15);

/// A friend who left.
#[derive(Debug, Serialize, ToSchema)]
pub struct FarawayEvent {
    pub user: PublicUser,
}

/// One event of the nearby stream as a server-sent-events parser reads it: its `event` name
/// and its `data`, one line of JSON, a [`NearbyItem`] for `nearby` and a [`FarawayEvent`] for
/// `faraway`. Keep-alive comments are not events. For the document only.
pub struct NearbyStreamEvent;

impl NearbyStreamEvent {
    fn variant(event: &str, data: &str) -> utoipa::openapi::Schema {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        // `contentSchema` (JSON Schema 2020-12) says what the JSON in `data` holds; utoipa has
        // no builder for it, and extensions are written as given.
        let mut content = utoipa::openapi::extensions::Extensions::default();
        content.insert(
            "contentSchema".to_owned(),
            serde_json::json!({ "$ref": format!("#/components/schemas/{data}") }),
        );
        ObjectBuilder::new()
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([event])),
            )
            .required("event")
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .extensions(Some(content)),
            )
            .required("data")
            .build()
            .into()
    }
}

impl utoipa::PartialSchema for NearbyStreamEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .description(Some(
                "One server-sent event: `event` names it, `data` is one line of JSON (a \
                 `NearbyItem` for `nearby`, a `FarawayEvent` for `faraway`).",
            ))
            .item(Self::variant("nearby", "NearbyItem"))
            .item(Self::variant("faraway", "FarawayEvent"))
            .into()
    }
}

impl ToSchema for NearbyStreamEvent {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        for (name, schema) in [
            (NearbyItem::name(), NearbyItem::schema()),
            (FarawayEvent::name(), FarawayEvent::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
        NearbyItem::schemas(schemas);
        FarawayEvent::schemas(schemas);
    }
}

fn sse(event: &str, data: &impl Serialize) -> actix_web::web::Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    actix_web::web::Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The stream's view of who is near: recomputes, and says who came and who left.
struct Watch {
    viewer: vicinity_domain::UserId,
    radius: f64,
    near: std::collections::HashMap<i64, vicinity_domain::User>,
    /// The viewer's friends as of the last update: only their changes (and the viewer's own)
    /// wake the stream, so streams cost nothing when strangers move.
    friends: std::collections::HashSet<i64>,
}

impl Watch {
    fn cares_about(&self, user: vicinity_domain::UserId) -> bool {
        user == self.viewer || self.friends.contains(&user.raw())
    }
}

impl Watch {
    fn update(
        &mut self,
        conn: &mut vicinity_store::DbConnection,
    ) -> Result<Vec<actix_web::web::Bytes>, vicinity_store::StoreError> {
        self.friends = vicinity_store::social::friend_ids(conn, self.viewer)?
            .into_iter()
            .collect();
        let now = Utc::now();
        let candidates =
            match presence::nearby(conn, self.viewer, leave_radius(self.radius), None, now)? {
                Nearby::Friends(friends) => friends,
                Nearby::NoPresence | Nearby::SharingOff => Vec::new(),
            };
        let mut events = Vec::new();
        let mut still = std::collections::HashMap::new();
        let mut arrived = Vec::new();
        for friend in candidates {
            let id = friend.user.id.raw();
            let was_near = self.near.contains_key(&id);
            if was_near || friend.distance_m as f64 <= self.radius {
                still.insert(id, friend.user.clone());
                if !was_near {
                    arrived.push(friend);
                }
            }
        }
        for (id, user) in &self.near {
            if !still.contains_key(id) {
                events.push(sse(
                    "faraway",
                    &FarawayEvent {
                        user: PublicUser::from(user),
                    },
                ));
            }
        }
        access_log::record_nearby(conn, self.viewer, &arrived, now)?;
        events.extend(
            arrived
                .into_iter()
                .map(|f| sse("nearby", &NearbyItem::from(f))),
        );
        self.near = still;
        Ok(events)
    }
}

/// Whether the stream's token is unexpired and its login `(family, person, expiry)` still
/// live: the read model knows live logins; the database answers for the rest. An error ends
/// the stream too (the client reconnects and is checked afresh).
async fn login_live(
    store: &vicinity_store::Store,
    (family, user, expires_at): (TokenFamilyId, UserId, i64),
) -> bool {
    if Utc::now().timestamp() >= expires_at {
        return false;
    }
    if store.hot().family_owner(family.raw()) == Some(user.raw()) {
        return true;
    }
    store
        .run(move |conn| vicinity_store::tokens::family_is_active(conn, family, user))
        .await
        .unwrap_or(false)
}

/// Server-sent events about friends: `nearby` (with the same item as `GET /v1/me/nearby`)
/// when one comes within `radius` of the caller, `faraway` when one leaves (beyond 1.2 ×
/// radius + 100 m, or their position ends), once each, driven by position changes on any
/// instance. The stream starts with a `nearby` event for each friend already near.
#[utoipa::path(
    get,
    path = "/v1/me/nearby/stream",
    tag = "presence",
    params(NearbyParams),
    security(("bearer" = ["location:read"])),
    responses(
        (status = 200, description = "`text/event-stream` of `nearby` and `faraway` events; the schema is one event's", content_type = "text/event-stream", body = NearbyStreamEvent),
        (status = 400, description = "A parameter cannot be read, is repeated or unknown", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `location:read`", body = ErrorEnvelope),
        (status = 422, description = "`radius` out of range", body = ErrorEnvelope),
        (status = 429, description = "Too many queries; see Retry-After", body = ErrorEnvelope),
    )
)]
pub async fn nearby_stream(
    caller: Scoped<scopes::LocationRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let radius = nearby_request(&state, &request, caller.user_id)?;
    let me = caller.user_id;
    let mut events = state.store.hot().subscribe();
    let (sender, receiver) = tokio::sync::mpsc::channel::<actix_web::web::Bytes>(64);
    let store = state.store.clone();
    let mut closing = state.closing.clone();
    let login = (caller.family_id, me, caller.expires_at);
    let open = crate::metrics::StreamGauge::open(&state.metrics.live_streams);
    actix_web::rt::spawn(async move {
        let _open = open;
        let mut watch = Watch {
            viewer: me,
            radius,
            near: Default::default(),
            friends: Default::default(),
        };
        let mut ticker = tokio::time::interval(STREAM_TICK);
        let mut changed = true;
        loop {
            // A stream lives no longer than its token and its login: after a logout, a
            // revocation or a suspension, the next wake-up (at most a tick away) ends it.
            if changed && !login_live(&store, login).await {
                return;
            }
            if changed {
                let (updated, out) = match store
                    .run(move |conn| {
                        let out = watch.update(conn);
                        Ok((watch, out))
                    })
                    .await
                {
                    Ok(pair) => pair,
                    Err(_) => return,
                };
                watch = updated;
                match out {
                    Ok(out) => {
                        for chunk in out {
                            if sender.send(chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "nearby stream ends");
                        return;
                    }
                }
            }
            tokio::select! {
                event = events.recv() => {
                    changed = match event {
                        Ok(user) => watch.cares_about(user),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                }
                _ = ticker.tick() => {
                    if sender.send(actix_web::web::Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                    changed = true;
                }
                () = sender.closed() => return,
                _ = closing.wait_for(|closing| *closing) => return,
            }
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), receiver))
    });
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
