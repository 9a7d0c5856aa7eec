//! People as others see them.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use vicinity_domain::{User, UserId};
use vicinity_store::social;

use crate::app::AppState;
use crate::auth::{Scoped, scopes};
use crate::error::{ApiError, ErrorEnvelope};

/// A person as anyone else sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicUser {
    #[schema(example = "usr_0f3kz9w2m4q8r")]
    pub id: String,
    #[schema(example = "ada")]
    pub username: String,
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
}

impl From<&User> for PublicUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
        }
    }
}

/// A person's own account, with their private settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SelfUser {
    #[schema(example = "usr_0f3kz9w2m4q8r")]
    pub id: String,
    #[schema(example = "ada")]
    pub username: String,
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub bio: String,
    /// How precisely friends see this person: `exact`, `neighborhood`, `city` or `off`.
    #[schema(example = "neighborhood")]
    pub location_precision: &'static str,
    /// Visibility of new check-ins unless chosen per check-in: `public`, `friends`, `private`.
    #[schema(example = "friends")]
    pub default_visibility: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for SelfUser {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username.as_str().to_owned(),
            display_name: user.display_name.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            bio: user.bio.as_str().to_owned(),
            location_precision: user.location_precision.as_str(),
            default_visibility: user.default_visibility.as_str(),
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// Someone's public profile.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}",
    tag = "people",
    params(("user_id" = String, Path, description = "The person's id", example = "usr_0f3kz9w2m4q8r", pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$")),
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, description = "The person", body = PublicUser),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile`", body = ErrorEnvelope),
        (status = 404, description = "No such person", body = ErrorEnvelope),
    )
)]
pub async fn get_user(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId::parse(&path).map_err(|e| ApiError::bad_id("user_id", e))?;
    let viewer = caller.user_id;
    let user = state
        .store
        .run(move |conn| social::visible_user(conn, viewer, id))
        .await
        .map_err(|e| match e {
            vicinity_store::StoreError::NotFound => ApiError::not_found(format!("no user {id}")),
            other => other.into(),
        })?;
    Ok(HttpResponse::Ok().json(PublicUser::from(&user)))
}
