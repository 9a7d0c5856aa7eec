//! OAuth 2.0 endpoints: the token endpoint (refresh grant), revocation (RFC 7009) and the
//! JWKS. Errors here follow RFC 6749 §5.2 (`{"error", "error_description"}`), not the envelope.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::ScopeSet;
use vicinity_store::StoreError;
use vicinity_store::tokens::{self, Rotation, RotationRequest};

use super::accounts::TokenResponse;
use super::no_store;
use crate::app::AppState;
use crate::auth::refresh::{self, FreshToken};
use crate::json::{FormError, FormParams};

/// An RFC 6749 §5.2 error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`,
    /// `invalid_scope`, `temporarily_unavailable` or `server_error`.
    #[schema(example = "invalid_grant")]
    pub error: &'static str,
    #[schema(example = "the refresh token is invalid, expired or revoked")]
    pub error_description: String,
}

#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    body: OAuthErrorBody,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            body: OAuthErrorBody {
                error,
                error_description: description.into(),
            },
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal server error",
        )
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.body.error, self.body.error_description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = no_store(HttpResponse::build(self.status));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        response.json(&self.body)
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error.detail = %detail, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the service is temporarily unavailable; retry shortly",
                )
            }
            other => {
                tracing::error!(error.detail = %other, "store failure");
                Self::server_error()
            }
        }
    }
}

impl From<crate::error::ApiError> for OAuthError {
    fn from(_: crate::error::ApiError) -> Self {
        Self::server_error()
    }
}

impl ResponseError for FormError {
    fn status_code(&self) -> StatusCode {
        match self {
            FormError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        OAuthError::new(self.status_code(), "invalid_request", self.to_string()).error_response()
    }
}

/// `POST /oauth/token` parameters (form-encoded). Only the refresh grant exists so far.
/// No `Debug`: it holds a token.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    #[schema(example = "refresh_token")]
    pub grant_type: String,
    pub refresh_token: Option<String>,
    /// Narrower scopes for the new access token (never wider than the login's).
    pub scope: Option<String>,
    /// The client the token was issued to; checked when given.
    #[schema(example = "vicinity")]
    pub client_id: Option<String>,
}

/// `POST /oauth/revoke` parameters (RFC 7009, form-encoded).
/// No `Debug`: it holds a token.
#[derive(Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// A refresh token or an access token; either revokes its whole login.
    pub token: String,
    /// `refresh_token` or `access_token`; optional, the server recognises both kinds.
    #[expect(
        dead_code,
        reason = "accepted per RFC 7009; tokens are recognised by their form"
    )]
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
}

impl TokenRequest {
    fn from_form(form: &FormParams) -> Result<Self, OAuthError> {
        let text = |name: &str| form.get(name).map(str::to_owned);
        Ok(Self {
            grant_type: text("grant_type").ok_or_else(|| {
                OAuthError::invalid_request("the `grant_type` parameter is required")
            })?,
            refresh_token: text("refresh_token"),
            scope: text("scope"),
            client_id: text("client_id"),
        })
    }
}

impl RevokeRequest {
    fn from_form(form: &FormParams) -> Result<Self, OAuthError> {
        let text = |name: &str| form.get(name).map(str::to_owned);
        Ok(Self {
            token: text("token")
                .ok_or_else(|| OAuthError::invalid_request("the `token` parameter is required"))?,
            token_type_hint: text("token_type_hint"),
            client_id: text("client_id"),
        })
    }
}

/// Exchanges a refresh token for a new token pair (the old refresh token is spent).
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 400, description = "RFC 6749 §5.2 error (`invalid_grant` on reuse: the whole login is revoked)", body = OAuthErrorBody),
    )
)]
pub async fn token(
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, OAuthError> {
    let request = TokenRequest::from_form(&form)?;
    match request.grant_type.as_str() {
        "refresh_token" => refresh_grant(&state, request).await,
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant type `{}` is not supported",
                other.chars().take(40).collect::<String>()
            ),
        )),
    }
}

async fn refresh_grant(
    state: &AppState,
    request: TokenRequest,
) -> Result<HttpResponse, OAuthError> {
    let presented = request
        .refresh_token
        .ok_or_else(|| OAuthError::invalid_request("the `refresh_token` parameter is required"))?;
    let requested = request
        .scope
        .as_deref()
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e.to_string()))?;
    let client_id = request.client_id;
    let presented_hash = refresh::hash(&presented);
    let fresh = FreshToken::new(state.config.refresh_token_ttl);

    let (outcome, fresh) = state
        .store
        .run(move |conn| {
            let request = RotationRequest {
                client_id: client_id.as_deref(),
                scope: requested,
            };
            let rotation = tokens::rotate(
                conn,
                &presented_hash,
                request,
                &fresh.to_store(),
                Utc::now(),
            )?;
            Ok((rotation, fresh))
        })
        .await?;

    match outcome {
        Rotation::Rotated(grant) => {
            let scope = requested.unwrap_or(grant.scope);
            let response = TokenResponse::for_grant(state, &grant, scope, fresh.token)?;
            Ok(no_store(HttpResponse::Ok()).json(response))
        }
        Rotation::ReuseDetected(family_id) => {
            tracing::warn!(token_family.id = %family_id, "refresh token reuse: login revoked");
            Err(OAuthError::invalid_grant(
                "the refresh token was already used; every token of this login is now revoked",
            ))
        }
        Rotation::ScopeExceeded => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the requested scope exceeds the scope originally granted",
        )),
        Rotation::Invalid => Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        )),
    }
}

/// Revokes a token and every token of the same login (RFC 7009). Unknown tokens are not an
/// error: the answer is 200 either way, so it reveals nothing.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked (or was not a valid token)"),
        (status = 400, description = "`token` missing", body = OAuthErrorBody),
        (status = 401, description = "The token belongs to another client", body = OAuthErrorBody),
    )
)]
pub async fn revoke(
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, OAuthError> {
    let RevokeRequest {
        token, client_id, ..
    } = RevokeRequest::from_form(&form)?;
    let target = if token.starts_with(refresh::PREFIX) {
        let hash = refresh::hash(&token);
        state
            .store
            .run(move |conn| tokens::family_of_refresh_token(conn, &hash))
            .await?
            .map(|grant| (grant.family_id, grant.client_id))
    } else {
        state
            .tokens
            .verify(&token)
            .ok()
            .map(|grant| (grant.family_id, grant.client_id))
    };
    if let Some((family_id, owner)) = target {
        if client_id.is_some_and(|id| id != owner) {
            return Err(OAuthError::invalid_client(
                "the token was not issued to this client",
            ));
        }
        state
            .store
            .run(move |conn| {
                tokens::revoke_family(conn, family_id, "revoked by client", Utc::now())
            })
            .await?;
        tracing::info!(token_family.id = %family_id, "login revoked");
    }
    Ok(no_store(HttpResponse::Ok()).finish())
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "oauth",
    responses((status = 200, description = "JSON Web Key Set", content_type = "application/json",
        body = Object))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.keys().jwks())
}
