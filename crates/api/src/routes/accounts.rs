//! First-party accounts: registration and password login, answering an OAuth token pair.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

use vicinity_domain::{NewUser, ScopeSet, User, UserId};
use vicinity_store::tokens::{self, Grant};
use vicinity_store::{DbConnection, StoreError, transaction, users};

use super::no_store;
use super::users::SelfUser;
use crate::FIRST_PARTY_CLIENT_ID;
use crate::app::AppState;
use crate::auth::refresh::FreshToken;
use crate::error::{ApiError, ErrorEnvelope};
use crate::json::JsonBody;

/// No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–30 ASCII letters, digits, `_` or `.`; unique ignoring case.
    #[schema(example = "ada", pattern = "^[A-Za-z0-9_.]{3,30}$")]
    pub username: String,
    #[schema(example = "ada@example.com", format = Email)]
    pub email: String,
    /// 8–128 characters, not containing the username.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 128
    )]
    pub password: String,
    /// 1–50 characters; defaults to the username.
    #[schema(
        example = "Ada Lovelace",
        min_length = 1,
        max_length = 50,
        pattern = r"\S"
    )]
    pub display_name: Option<String>,
}

/// No `Debug`: it holds a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The username or the email address.
    #[schema(example = "ada")]
    pub username: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// An OAuth 2.0 token response (RFC 6749 §5.1), with the account on login and registration.
/// No `Debug`: it holds tokens.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// A signed JWT (RFC 9068) to send as `Authorization: Bearer …`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Opaque; exchange at `POST /oauth/token` (grant_type=refresh_token). Single use. Absent
    /// for the client credentials grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
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
            refresh_token: Some(refresh_token),
            scope: scope.to_string(),
            user: None,
        })
    }
}

/// Stores `fresh` as the first refresh token of a new first-party login of `user_id`.
fn start_login(
    conn: &mut DbConnection,
    user_id: UserId,
    fresh: &FreshToken,
) -> Result<Grant, StoreError> {
    let scope = ScopeSet::first_party();
    let now = Utc::now();
    tokens::start_family(
        conn,
        user_id,
        FIRST_PARTY_CLIENT_ID,
        scope,
        &fresh.to_store(),
        now,
    )
}

/// The token pair of a login just started, with the account.
fn signed_in(
    state: &AppState,
    grant: &Grant,
    fresh: FreshToken,
    user: &User,
) -> Result<TokenResponse, ApiError> {
    let mut response = TokenResponse::for_grant(state, grant, grant.scope, fresh.token)?;
    response.user = Some(SelfUser::from(user));
    Ok(response)
}

/// Creates an account and signs it in.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    security(()),
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; tokens for it", body = TokenResponse),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 409, description = "Username or email already taken", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Body is not JSON", body = ErrorEnvelope),
        (status = 422, description = "A field breaks its rules", body = ErrorEnvelope),
        (status = 429, description = "Too many sign-ups and logins from this address", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    request: HttpRequest,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let new_user = NewUser::parse(
        &body.username,
        &body.email,
        &body.password,
        body.display_name.as_deref(),
    )?;
    state
        .throttle
        .attempt_from(client_address(&request, state.config.trust_forwarded_for))
        .map_err(|wait| ApiError::rate_limited(wait, "sign-ups and logins from this address"))?;
    let password_hash = state
        .passwords
        .hash(new_user.password.expose().to_owned())
        .await?;
    let fresh = FreshToken::new(state.config.refresh_token_ttl);
    // The account and its first login are written together: a client that sees an error can
    // simply retry, and never finds its name taken by a half-finished registration.
    let (user, grant, fresh) = state
        .store
        .run(move |conn| {
            transaction(conn, |conn| {
                let user = users::create(conn, &new_user, &password_hash, Utc::now())?;
                let grant = start_login(conn, user.id, &fresh)?;
                Ok((user, grant, fresh))
            })
        })
        .await?;
    tracing::info!(user.id = %user.id, "account registered");
    let response = signed_in(&state, &grant, fresh, &user)?;
    Ok(no_store(HttpResponse::Created())
        .insert_header((header::LOCATION, format!("/v1/users/{}", user.id)))
        .json(response))
}

/// The address sign-ups and logins are counted against. Behind a proxy every request comes
/// from the proxy; when the operator says it can be trusted, the client is the last address in
/// `X-Forwarded-For` (the one the proxy itself appended; earlier entries are the client's word).
pub(crate) fn client_address(request: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    let forwarded = trust_forwarded_for
        .then(|| {
            request
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .filter(|entry| !entry.trim().is_empty())
                .last()
                .and_then(|entry| entry.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    forwarded.or_else(|| request.peer_addr().map(|a| a.ip()))
}

/// Signs in with a username (or email) and password.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    security(()),
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
    let too_many = |wait| ApiError::rate_limited(wait, "login attempts");
    state
        .throttle
        .attempt_from(client_address(&request, state.config.trust_forwarded_for))
        .map_err(too_many)?;
    let login_name = body.username.chars().take(254).collect::<String>();
    let lookup_name = login_name.clone();
    let found = state
        .store
        .run(move |conn| users::find_for_login(conn, &lookup_name))
        .await?;
    let account_key = found
        .as_ref()
        .map_or(login_name, |(user, _)| user.id.to_string());
    state.throttle.attempt_on(&account_key).map_err(too_many)?;
    let (user, stored_hash) = found.unzip();
    if !state.passwords.verify(body.password, stored_hash).await? {
        tracing::info!("login refused");
        return Err(ApiError::invalid_credentials());
    }
    let Some(user) = user else {
        return Err(ApiError::invalid_credentials());
    };
    let fresh = FreshToken::new(state.config.refresh_token_ttl);
    let user_id = user.id;
    let (grant, fresh) = state
        .store
        .run(move |conn| Ok((start_login(conn, user_id, &fresh)?, fresh)))
        .await?;
    tracing::info!(user.id = %user.id, "login succeeded");
    Ok(no_store(HttpResponse::Ok()).json(signed_in(&state, &grant, fresh, &user)?))
}
