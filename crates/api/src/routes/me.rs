//! The caller's own account: read, change settings, delete.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::{
    Bio, DisplayName, PrecisionLevel, ProfileChanges, ValidationErrors, Visibility,
};
use vicinity_store::{StoreError, access_log, checkins, presence, social, users, venues};

use super::checkins::CheckinView;
use super::friends::RelatedUser;
use super::presence::{AccessEntry, DeviceLocation, OwnPresence};
use super::users::{PublicUser, SelfUser};
use super::venues::VenueView;
use crate::app::AppState;
use crate::auth::{Scoped, scopes};
use crate::error::{ApiError, ErrorEnvelope};
use crate::json::JsonBody;

/// Fields to change; omitted fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// 1–50 characters.
    #[schema(example = "Ada L.")]
    pub display_name: Option<String>,
    /// Up to 280 characters; `""` clears it.
    #[schema(example = "Counting engines since 1843")]
    pub bio: Option<String>,
    /// `exact`, `neighborhood`, `city` or `off`.
    #[schema(example = "city")]
    pub location_precision: Option<String>,
    /// `public`, `friends` or `private`.
    #[schema(example = "friends")]
    pub default_visibility: Option<String>,
}

impl UpdateMeRequest {
    fn parse(&self) -> Result<ProfileChanges, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let changes = ProfileChanges {
            display_name: self
                .display_name
                .as_deref()
                .and_then(|v| errors.check("display_name", DisplayName::parse(v))),
            bio: self
                .bio
                .as_deref()
                .and_then(|v| errors.check("bio", Bio::parse(v))),
            location_precision: self
                .location_precision
                .as_deref()
                .and_then(|v| errors.check("location_precision", PrecisionLevel::parse(v))),
            default_visibility: self
                .default_visibility
                .as_deref()
                .and_then(|v| errors.check("default_visibility", Visibility::parse(v))),
        };
        errors.finish(|| Some(changes))
    }
}

/// The caller's own account.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "people",
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, description = "The caller's account", body = SelfUser),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile`", body = ErrorEnvelope),
    )
)]
pub async fn get_me(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = caller.user_id;
    let user = state.store.run(move |conn| users::find(conn, id)).await?;
    Ok(HttpResponse::Ok().json(SelfUser::from(&user)))
}

/// Changes the caller's profile and privacy defaults.
#[utoipa::path(
    patch,
    path = "/v1/me",
    tag = "people",
    security(("bearer" = ["profile"])),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The updated account", body = SelfUser),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile`", body = ErrorEnvelope),
        (status = 422, description = "A field breaks its rules", body = ErrorEnvelope),
    )
)]
pub async fn update_me(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.parse()?;
    let id = caller.user_id;
    let user = state
        .store
        .run(move |conn| {
            if changes.is_empty() {
                users::find(conn, id)
            } else {
                users::update_profile(conn, id, &changes, Utc::now())
            }
        })
        .await?;
    Ok(HttpResponse::Ok().json(SelfUser::from(&user)))
}

/// Deletes the caller's account and everything it owns: check-ins, presence, friendships,
/// requests, blocks and tokens. Only Vicinity's own app may do this, never a third party.
#[utoipa::path(
    delete,
    path = "/v1/me",
    tag = "people",
    security(("bearer" = ["profile"])),
    responses(
        (status = 204, description = "Account deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile` or belongs to a third-party app", body = ErrorEnvelope),
    )
)]
pub async fn delete_me(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_first_party() {
        return Err(ApiError::forbidden(
            "only Vicinity's own app can delete an account",
        ));
    }
    let id = caller.user_id;
    state.store.run(move |conn| users::delete(conn, id)).await?;
    tracing::info!(user.id = %id, "account deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Everything Vicinity holds about the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub user: SelfUser,
    /// Every check-in, newest first, with the device positions.
    pub checkins: Vec<CheckinView>,
    pub friends: Vec<RelatedUser>,
    pub friend_requests_received: Vec<RelatedUser>,
    pub friend_requests_sent: Vec<RelatedUser>,
    pub blocked: Vec<RelatedUser>,
    /// The last position shared, if the server still holds one (even expired).
    pub presence: Option<OwnPresence>,
    /// Who saw the caller's location.
    pub location_access_log: Vec<AccessEntry>,
    /// Venues the caller added.
    pub venues_added: Vec<VenueView>,
}

/// Pages through a newest-first list until it ends.
fn all_pages<T>(
    mut fetch: impl FnMut(Option<(i64, i64)>) -> Result<Vec<T>, StoreError>,
    key: impl Fn(&T) -> (i64, i64),
) -> Result<Vec<T>, StoreError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after)?;
        let Some(last) = page.last() else {
            return Ok(all);
        };
        after = Some(key(last));
        all.extend(page);
    }
}

const EXPORT_PAGE: usize = 1_000;

/// All of the caller's data as one JSON document (only Vicinity's own app may ask).
#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "people",
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, description = "Everything about the caller", body = Export),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile` or belongs to a third-party app", body = ErrorEnvelope),
    )
)]
pub async fn export(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_first_party() {
        return Err(ApiError::forbidden(
            "only Vicinity's own app can export an account",
        ));
    }
    let me = caller.user_id;
    let export = state
        .store
        .run(move |conn| {
            let user = users::find(conn, me)?;
            let checkins = all_pages(
                |after| checkins::mine(conn, &user, after, EXPORT_PAGE),
                |(k, _)| *k,
            )?
            .into_iter()
            .map(|(_, c)| CheckinView::new(c, &user, me))
            .collect();
            let related = |rows: Vec<social::Related>| -> Vec<RelatedUser> {
                rows.into_iter()
                    .map(|r| RelatedUser {
                        user: PublicUser::from(&r.user),
                        since: r.since,
                    })
                    .collect()
            };
            let key = |r: &social::Related| r.key;
            let friends = all_pages(|after| social::friends(conn, me, after, EXPORT_PAGE), key)?;
            let received = all_pages(
                |after| social::requests(conn, me, social::Direction::Incoming, after, EXPORT_PAGE),
                key,
            )?;
            let sent = all_pages(
                |after| social::requests(conn, me, social::Direction::Outgoing, after, EXPORT_PAGE),
                key,
            )?;
            let blocked = all_pages(|after| social::blocked(conn, me, after, EXPORT_PAGE), key)?;
            let presence =
                presence::current(conn, me, DateTime::<Utc>::MIN_UTC)?.map(|p| OwnPresence {
                    location: DeviceLocation {
                        lat: p.location.lat(),
                        lng: p.location.lng(),
                        accuracy_m: p.accuracy_m,
                    },
                    updated_at: p.updated_at,
                    expires_at: p.expires_at,
                });
            let log = all_pages(
                |after| access_log::entries(conn, me, after, EXPORT_PAGE),
                |e| e.key,
            )?
            .into_iter()
            .map(AccessEntry::from)
            .collect();
            let venues_added = venues::added_by(conn, me)?
                .into_iter()
                .map(VenueView::from)
                .collect();
            Ok(Export {
                exported_at: Utc::now(),
                user: SelfUser::from(&user),
                checkins,
                friends: related(friends),
                friend_requests_received: related(received),
                friend_requests_sent: related(sent),
                blocked: related(blocked),
                presence,
                location_access_log: log,
                venues_added,
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"vicinity-export.json\"",
        ))
        .json(export))
}
