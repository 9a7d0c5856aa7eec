//! The caller's own account: read, change settings, delete.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::{
    Bio, ClientId, DisplayName, PrecisionLevel, ProfileChanges, ValidationErrors, Visibility,
};
use vicinity_store::{authorization, export, users};

use super::checkins::CheckinView;
use super::friends::RelatedUser;
use super::presence::{AccessEntry, OwnPresence};
use super::users::SelfUser;
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
    let data = export::gather_now(&state.store, &state.recorder, me).await?;
    let export = Export {
        exported_at: Utc::now(),
        user: SelfUser::from(&data.user),
        checkins: data
            .checkins
            .into_iter()
            .map(|c| CheckinView::new(c, Some(me)))
            .collect(),
        friends: data.friends.into_iter().map(RelatedUser::from).collect(),
        friend_requests_received: data
            .requests_received
            .into_iter()
            .map(RelatedUser::from)
            .collect(),
        friend_requests_sent: data
            .requests_sent
            .into_iter()
            .map(RelatedUser::from)
            .collect(),
        blocked: data.blocked.into_iter().map(RelatedUser::from).collect(),
        presence: data.presence.map(OwnPresence::from),
        location_access_log: data.access_log.into_iter().map(AccessEntry::from).collect(),
        venues_added: data.venues_added.into_iter().map(VenueView::from).collect(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"vicinity-export.json\"",
        ))
        .json(export))
}

/// A third-party app the caller has authorized.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizedAppView {
    #[schema(example = "3mJ2pWq9T0yXcN4vB8rL1g")]
    pub client_id: String,
    #[schema(example = "Trail Log")]
    pub name: String,
    /// The scopes approved, space-separated.
    #[schema(example = "profile checkins:read")]
    pub scope: String,
    /// When the caller last approved it.
    pub granted_at: DateTime<Utc>,
}

/// The apps the caller authorized (a person has few; one page holds them all).
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizedAppList {
    pub items: Vec<AuthorizedAppView>,
    /// Always null: the list is never split.
    pub next_cursor: Option<String>,
}

/// Lists the third-party apps the caller authorized, most recently approved first. Only
/// Vicinity's own app may ask: an app has no business knowing which others you use.
#[utoipa::path(
    get,
    path = "/v1/me/apps",
    tag = "people",
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, description = "Authorized apps", body = AuthorizedAppList),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile` or belongs to a third-party app", body = ErrorEnvelope),
    )
)]
pub async fn list_apps(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_first_party() {
        return Err(ApiError::forbidden(
            "only Vicinity's own app can list the apps you authorized",
        ));
    }
    let me = caller.user_id;
    let apps = state
        .store
        .run(move |conn| authorization::authorized_apps(conn, me))
        .await?;
    Ok(HttpResponse::Ok().json(AuthorizedAppList {
        items: apps
            .into_iter()
            .map(|app| AuthorizedAppView {
                client_id: app.client_id.as_str().to_owned(),
                name: app.name,
                scope: app.scope.to_string(),
                granted_at: app.granted_at,
            })
            .collect(),
        next_cursor: None,
    }))
}

/// Withdraws the caller's authorization of an app: its approval is forgotten and every token
/// it holds for the caller stops working at once.
#[utoipa::path(
    delete,
    path = "/v1/me/apps/{client_id}",
    tag = "people",
    security(("bearer" = ["profile"])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 204, description = "Authorization withdrawn"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile` or belongs to a third-party app", body = ErrorEnvelope),
        (status = 404, description = "The caller never authorized this app (or it already was withdrawn)", body = ErrorEnvelope),
    )
)]
pub async fn revoke_app(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !caller.is_first_party() {
        return Err(ApiError::forbidden(
            "only Vicinity's own app can withdraw an app's authorization",
        ));
    }
    let me = caller.user_id;
    let client_id = ClientId::from_trusted(client_id.into_inner().chars().take(100).collect());
    let logged = client_id.clone();
    let withdrawn = state
        .store
        .run(move |conn| authorization::revoke_app(conn, me, &client_id, Utc::now()))
        .await?;
    if !withdrawn {
        return Err(ApiError::not_found("you have not authorized this app"));
    }
    tracing::info!(user.id = %me, client.id = %logged, "app authorization withdrawn");
    Ok(HttpResponse::NoContent().finish())
}
