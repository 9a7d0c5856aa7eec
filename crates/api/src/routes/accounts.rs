//! First-party accounts: registration and password login, answering an OAuth token pair.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::{NewUser, ScopeSet, User};
use vicinity_store::tokens::{self, Grant, NewRefreshToken};
use vicinity_store::users;

use super::users::SelfUser;
use crate::FIRST_PARTY_CLIENT_ID;
use crate::app::AppState;
use crate::auth::{password, refresh};
use crate::error::{ApiError, ErrorEnvelope};
use crate::json::JsonBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–30 ASCII letters, digits, `_` or `.`; unique ignoring case.
    #[schema(example = "ada")]
    pub username: String,
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8–128 characters, not containing the username.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
    /// 1–50 characters; defaults to the username.
    #[schema(example = "Ada Lovelace")]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The username or the email address.
    #[schema(example = "ada")]
    pub username: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// An OAuth 2.0 token response (RFC 6749 §5.1), with the account on login and registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A signed JWT (RFC 9068) to send as `Authorization: Bearer …`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Opaque; exchange at `POST /oauth/token` (grant_type=refresh_token). Single use.
    pub refresh_token: String,
    #[schema(example = "profile checkins:read checkins:write")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<SelfUser>,
}

impl TokenResponse {
    /// Builds the response for a grant whose refresh token was just stored.
    pub(crate) fn for_grant(
        state: &AppState,
        grant: &Grant,
        scope: ScopeSet,
        refresh_token: String,
    ) -> Result<Self, ApiError> {
        let access_token = state
            .tokens
            .issue(
                grant.user_id,
                grant.family_id,
                &grant.client_id,
                scope,
                Utc::now(),
            )
            .map_err(|error| {
                tracing::error!(error.detail = %error, "signing an access token failed");
                ApiError::internal()
            })?;
        Ok(Self {
            access_token,
            token_type: "Bearer",
            expires_in: state.tokens.ttl().as_secs(),
            refresh_token,
            scope: scope.to_string(),
            user: None,
        })
    }
}

/// Starts a new login (token family) for `user` and answers its token pair.
async fn start_session(state: &AppState, user: &User) -> Result<TokenResponse, ApiError> {
    let refresh_token = refresh::generate();
    let hash = refresh::hash(&refresh_token);
    let expires_at = Utc::now() + state.config.refresh_token_ttl;
    let user_id = user.id;
    let grant = state
        .store
        .run(move |conn| {
            let token = NewRefreshToken {
                hash: &hash,
                expires_at,
            };
            let scope = ScopeSet::first_party();
            tokens::start_family(
                conn,
                user_id,
                FIRST_PARTY_CLIENT_ID,
                scope,
                &token,
                Utc::now(),
            )
        })
        .await?;
    let mut response = TokenResponse::for_grant(state, &grant, grant.scope, refresh_token)?;
    response.user = Some(SelfUser::from(user));
    Ok(response)
}

fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::PRAGMA, "no-cache"));
    response
}

/// Creates an account and signs it in.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; tokens for it", body = TokenResponse),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 409, description = "Username or email already taken", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Body is not JSON", body = ErrorEnvelope),
        (status = 422, description = "A field breaks its rules", body = ErrorEnvelope),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let new_user = NewUser::parse(
        &body.username,
        &body.email,
        &body.password,
        body.display_name.as_deref(),
    )?;
    let password_hash = password::hash(new_user.password.expose().to_owned()).await?;
    let user = state
        .store
        .run(move |conn| users::create(conn, &new_user, &password_hash, Utc::now()))
        .await?;
    tracing::info!(user.id = %user.id, "account registered");
    let response = start_session(&state, &user).await?;
    Ok(no_store(HttpResponse::Created())
        .insert_header((header::LOCATION, format!("/v1/users/{}", user.id)))
        .json(response))
}

/// Signs in with a username (or email) and password.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 401, description = "Wrong username/email or password (never says which)", body = ErrorEnvelope),
        (status = 429, description = "Too many attempts for this account or address", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = request.peer_addr().map(|a| a.ip());
    state
        .throttle
        .attempt(&body.username, address)
        .map_err(|wait| ApiError::rate_limited(wait, "login attempts"))?;
    let login_name = body.username.chars().take(254).collect::<String>();
    let found = state
        .store
        .run(move |conn| users::find_for_login(conn, &login_name))
        .await?;
    let (user, stored_hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, state.decoy_hash.clone()),
    };
    let matches = password::verify(body.password, stored_hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!("login refused");
        return Err(ApiError::invalid_credentials());
    };
    tracing::info!(user.id = %user.id, "login succeeded");
    let response = start_session(&state, &user).await?;
    Ok(no_store(HttpResponse::Ok()).json(response))
}
