//! OAuth 2.0 endpoints: the token endpoint (refresh grant), revocation (RFC 7009) and the
//! JWKS. Errors here follow RFC 6749 §5.2 (`{"error", "error_description"}`), not the envelope.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine as _;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::secret::sha256_hex;
use vicinity_domain::{Client, ClientId, ClientType, CodeVerifier, ScopeSet, TokenFamilyId};
use vicinity_store::authorization::{self, CodeExchange, Redemption};
use vicinity_store::tokens::{self, Grant, Rotation, RotationRequest};
use vicinity_store::{StoreError, clients};

use super::accounts::TokenResponse;
use super::no_store;
use crate::FIRST_PARTY_CLIENT_ID;
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
    /// `WWW-Authenticate` for a failed HTTP Basic client authentication (RFC 6749 §5.2).
    challenge: bool,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            body: OAuthErrorBody {
                error,
                error_description: description.into(),
            },
            challenge: false,
            retry_after: None,
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
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.challenge {
            response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"vicinity\""));
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

/// `POST /oauth/token` parameters (form-encoded). A confidential client authenticates with
/// HTTP Basic (`client_secret_basic`) or `client_secret` here (`client_secret_post`), never
/// both; a public client sends its `client_id`. No `Debug`: it holds credentials.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    #[schema(
        example = "authorization_code",
        pattern = "^(authorization_code|refresh_token|client_credentials)$"
    )]
    pub grant_type: String,
    /// `authorization_code`: the code from the redirect.
    pub code: Option<String>,
    /// `authorization_code`: the PKCE verifier whose S256 challenge the request carried.
    pub code_verifier: Option<String>,
    /// `authorization_code`: required exactly when the authorization request named one.
    pub redirect_uri: Option<String>,
    /// `refresh_token`: the refresh token to spend.
    pub refresh_token: Option<String>,
    /// `refresh_token`: narrower scopes for the new access token (never wider than granted);
    /// `client_credentials`: the scopes wanted (default: all the client was registered with).
    pub scope: Option<String>,
    /// The calling client (the first-party app may omit it).
    #[schema(example = "vicinity")]
    pub client_id: Option<String>,
    /// `client_secret_post` authentication of a confidential client.
    pub client_secret: Option<String>,
}

/// `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662) parameters,
/// form-encoded. No `Debug`: it holds a token.
#[derive(Deserialize, ToSchema)]
pub struct TokenQuery {
    /// A refresh token or an access token (revoking either revokes its whole login).
    #[schema(min_length = 1)]
    pub token: String,
    /// `refresh_token` or `access_token`; optional, the server recognises both kinds.
    #[expect(
        dead_code,
        reason = "accepted per RFC 7009 and 7662; tokens are recognised by their form"
    )]
    pub token_type_hint: Option<String>,
    /// The calling client (the first-party app may omit it); a confidential client
    /// authenticates as at the token endpoint.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl TokenRequest {
    fn from_form(form: &FormParams) -> Result<Self, OAuthError> {
        let text = |name: &str| form.get(name).map(str::to_owned);
        Ok(Self {
            grant_type: text("grant_type").ok_or_else(|| {
                OAuthError::invalid_request("the `grant_type` parameter is required")
            })?,
            code: text("code"),
            code_verifier: text("code_verifier"),
            redirect_uri: text("redirect_uri"),
            refresh_token: text("refresh_token"),
            scope: text("scope"),
            client_id: text("client_id"),
            client_secret: text("client_secret"),
        })
    }
}

impl TokenQuery {
    /// The caller, authenticated as at the token endpoint, and the token it asks about. The
    /// caller is settled first (RFC 7009 §2.1, RFC 7662 §2.1): a client whose authentication
    /// fails hears only that, whatever else its form lacks.
    async fn authenticated(
        state: &AppState,
        http: &HttpRequest,
        form: &FormParams,
    ) -> Result<(Caller, String), OAuthError> {
        let query = Self::from_form(form);
        let caller = authenticate(
            state,
            http,
            query.client_id.as_deref(),
            query.client_secret.as_deref(),
        )
        .await?;
        Ok((caller, query.token()?))
    }

    /// The form's fields; a missing `token` is empty here, refused by [`Self::token`].
    fn from_form(form: &FormParams) -> Self {
        let text = |name: &str| form.get(name).map(str::to_owned);
        Self {
            token: text("token").unwrap_or_default(),
            token_type_hint: text("token_type_hint"),
            client_id: text("client_id"),
            client_secret: text("client_secret"),
        }
    }

    /// The token asked about (a form field sent empty counts as missing, RFC 6749 §3.1).
    fn token(self) -> Result<String, OAuthError> {
        if self.token.is_empty() {
            return Err(OAuthError::invalid_request(
                "the `token` parameter is required",
            ));
        }
        Ok(self.token)
    }
}

/// Issues tokens: for an authorization code (with its PKCE verifier), for a refresh token
/// (which is spent; a replayed one revokes its login), or to a confidential client for itself
/// (`client_credentials`: no refresh token, and no person, so person routes refuse it).
#[utoipa::path(
    post,
    path = "/oauth/token",
    security((), ("client" = [])),
    tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 400, description = "RFC 6749 §5.2 error (`invalid_grant` on a replayed code or refresh token: what it issued is revoked)", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: unknown client or wrong secret", body = OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic` when HTTP Basic was tried"))),
        (status = 429, description = "Too many failed client authentications", body = OAuthErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn token(
    state: web::Data<AppState>,
    http: HttpRequest,
    form: FormParams,
) -> Result<HttpResponse, OAuthError> {
    let request = TokenRequest::from_form(&form)?;
    let caller = authenticate(
        &state,
        &http,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )
    .await?;
    match request.grant_type.as_str() {
        "authorization_code" => code_grant(&state, &caller, request).await,
        "refresh_token" => refresh_grant(&state, &caller, request).await,
        "client_credentials" => client_credentials_grant(&state, &caller, request).await,
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

/// Who is calling a token endpoint.
pub(crate) enum Caller {
    /// Vicinity's own app, which has no secret (its refresh tokens are bound to it).
    FirstParty,
    /// A registered client: authenticated by its secret if confidential, named if public.
    Client(Client),
}

impl Caller {
    fn client_id(&self) -> &str {
        match self {
            Caller::FirstParty => FIRST_PARTY_CLIENT_ID,
            Caller::Client(client) => client.id.as_str(),
        }
    }
}

/// `client_id:client_secret` from HTTP Basic, each form-urlencoded (RFC 6749 §2.3.1).
fn basic_credentials(http: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = http.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        let mut error = OAuthError::invalid_client("malformed HTTP Basic client credentials");
        error.challenge = true;
        error
    };
    let credentials = value.to_str().ok().and_then(parse_basic);
    credentials.ok_or_else(malformed).map(Some)
}

/// The client id and secret of an `Authorization: Basic …` header value.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    let (id, secret) = decoded.split_once(':')?;
    // Each part is form-urlencoded, so a raw `&` cannot be in it: read as a form, it would
    // start another parameter, and the value after it would be taken for the whole part.
    let unescape = |part: &str| {
        if part.contains('&') {
            return None;
        }
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={part}"))
            .ok()
            .and_then(|mut pairs| pairs.pop())
            .map(|(_, value)| value)
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Authenticates the caller of a token endpoint (RFC 6749 §2.3, §3.2.1).
pub(crate) async fn authenticate(
    state: &AppState,
    http: &HttpRequest,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Result<Caller, OAuthError> {
    let basic = basic_credentials(http)?;
    let (id, secret, by_basic) = match (basic, client_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: HTTP Basic or client_secret, not both",
            ));
        }
        (Some((id, secret)), None) => {
            if client_id.is_some_and(|named| named != id) {
                return Err(OAuthError::invalid_request(
                    "`client_id` differs from the client authenticated by HTTP Basic",
                ));
            }
            (id, Some(secret), true)
        }
        (None, Some(secret)) => {
            let id = client_id.ok_or_else(|| {
                OAuthError::invalid_request("`client_secret` needs `client_id` beside it")
            })?;
            (id.to_owned(), Some(secret.to_owned()), false)
        }
        (None, None) => match client_id {
            None | Some(FIRST_PARTY_CLIENT_ID) => return Ok(Caller::FirstParty),
            Some(id) => (id.to_owned(), None, false),
        },
    };
    let refuse = |description: &str| {
        let mut error = OAuthError::invalid_client(description.to_owned());
        error.challenge = by_basic;
        error
    };
    let key: String = id.chars().take(100).collect();
    if let Err(wait) = state.client_failures.check(&key) {
        let mut error = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_client",
            format!("too many failed authentications of this client; try again in {wait} s"),
        );
        error.retry_after = Some(wait);
        return Err(error);
    }
    let client_id = ClientId::from_trusted(key.clone());
    let found = state
        .store
        .run(move |conn| {
            let client = clients::find(conn, &client_id)?;
            let hash = clients::secret_hash(conn, &client_id)?;
            Ok((client, hash))
        })
        .await;
    let (client, stored_hash) = match found {
        Ok(found) => found,
        Err(StoreError::NotFound) => {
            state.client_failures.failed(&key);
            return Err(refuse("unknown client"));
        }
        Err(other) => return Err(other.into()),
    };
    match (secret, stored_hash) {
        (None, None) => Ok(Caller::Client(client)),
        (None, Some(_)) => Err(refuse(
            "a confidential client must authenticate (HTTP Basic or client_secret)",
        )),
        (Some(_), None) => Err(refuse(
            "a public client has no secret; send only its client_id",
        )),
        (Some(secret), Some(hash)) => {
            let presented = sha256_hex(&secret);
            let equal = presented.len() == hash.len()
                && presented
                    .bytes()
                    .zip(hash.bytes())
                    .fold(0u8, |d, (a, b)| d | (a ^ b))
                    == 0;
            if equal {
                Ok(Caller::Client(client))
            } else {
                state.client_failures.failed(&key);
                tracing::info!(client.id = %client.id, "client authentication failed");
                Err(refuse("client authentication failed"))
            }
        }
    }
}

/// The client credentials grant (RFC 6749 §4.4): a confidential client's token for itself,
/// with at most the scopes it was registered with (`admin` only if an operator gave it), and
/// no refresh token.
async fn client_credentials_grant(
    state: &AppState,
    caller: &Caller,
    request: TokenRequest,
) -> Result<HttpResponse, OAuthError> {
    let client = match caller {
        Caller::Client(client) if client.client_type == ClientType::Confidential => client,
        Caller::Client(_) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "only a confidential client may use the client_credentials grant",
            ));
        }
        Caller::FirstParty => {
            return Err(OAuthError::invalid_client(
                "the client_credentials grant needs an authenticated confidential client",
            ));
        }
    };
    let invalid_scope = |description: String| {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    };
    let scope = match request.scope.as_deref() {
        None => client.scopes,
        Some(text) => {
            let asked = ScopeSet::parse(text).map_err(|e| invalid_scope(e.to_string()))?;
            if !asked.is_subset_of(client.scopes) {
                return Err(invalid_scope(format!(
                    "this client may ask for at most `{}`",
                    client.scopes
                )));
            }
            asked
        }
    };
    if scope.is_empty() {
        return Err(invalid_scope("no scope to grant".into()));
    }
    let now = Utc::now();
    let ttl =
        chrono::Duration::from_std(state.tokens.ttl()).unwrap_or(chrono::Duration::minutes(15));
    let client_id = client.id.clone();
    let grant_id = state
        .store
        .run(move |conn| authorization::start_client_grant(conn, &client_id, scope, now + ttl, now))
        .await?;
    let access_token = state
        .tokens
        .issue_for_client(grant_id, client.id.as_str(), scope, now)
        .map_err(|error| {
            tracing::error!(error.detail = %error, "signing an access token failed");
            OAuthError::server_error()
        })?;
    tracing::info!(client.id = %client.id, scope = %scope, "client credentials token issued");
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().as_secs(),
        refresh_token: None,
        scope: scope.to_string(),
        user: None,
    }))
}

async fn code_grant(
    state: &AppState,
    caller: &Caller,
    request: TokenRequest,
) -> Result<HttpResponse, OAuthError> {
    let Caller::Client(client) = caller else {
        return Err(OAuthError::invalid_request(
            "`client_id` is required with the authorization_code grant",
        ));
    };
    let code = request
        .code
        .ok_or_else(|| OAuthError::invalid_request("the `code` parameter is required"))?;
    let verifier = request.code_verifier.ok_or_else(|| {
        OAuthError::invalid_request("PKCE is required: the `code_verifier` parameter is missing")
    })?;
    let verifier =
        CodeVerifier::parse(&verifier).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let hash = sha256_hex(&code);
    let fresh = FreshToken::new(state.config.refresh_token_ttl);
    let client_id = client.id.clone();
    let redirect_uri = request.redirect_uri;
    let (outcome, fresh) = state
        .store
        .run(move |conn| {
            let exchange = CodeExchange {
                client_id: &client_id,
                redirect_uri: redirect_uri.as_deref(),
                verifier: &verifier,
            };
            let outcome =
                authorization::redeem_code(conn, &hash, &exchange, &fresh.to_store(), Utc::now())?;
            Ok((outcome, fresh))
        })
        .await?;
    match outcome {
        Redemption::Issued(grant) => {
            tracing::info!(client.id = %client.id, user.id = %grant.user_id, "authorization code exchanged");
            let response = TokenResponse::for_grant(state, &grant, grant.scope, fresh.token)?;
            Ok(no_store(HttpResponse::Ok()).json(response))
        }
        Redemption::Replayed(family) => {
            tracing::warn!(client.id = %client.id, token_family.id = ?family, "authorization code replayed: its tokens are revoked");
            Err(OAuthError::invalid_grant(
                "the authorization code was already used; the tokens it issued are now revoked",
            ))
        }
        Redemption::Invalid(why) => Err(OAuthError::invalid_grant(why)),
    }
}

async fn refresh_grant(
    state: &AppState,
    caller: &Caller,
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
    // A refresh token is bound to its client (RFC 6749 §6): the first-party app's to it, an
    // app's to that app, authenticated if it is confidential.
    let client_id = caller.client_id().to_owned();
    let presented_hash = refresh::hash(&presented);
    let fresh = FreshToken::new(state.config.refresh_token_ttl);

    let (outcome, fresh) = state
        .store
        .run(move |conn| {
            let request = RotationRequest {
                client_id: Some(&client_id),
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
    security((), ("client" = [])),
    tag = "oauth",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked (or was not a valid token)"),
        (status = 400, description = "`token` missing", body = OAuthErrorBody),
        (status = 401, description = "The token belongs to another client", body = OAuthErrorBody),
    )
)]
pub async fn revoke(
    state: web::Data<AppState>,
    http: HttpRequest,
    form: FormParams,
) -> Result<HttpResponse, OAuthError> {
    let (caller, token) = TokenQuery::authenticated(&state, &http, &form).await?;
    if let Some(owner) = token_owner(&state, &token).await? {
        if owner.client_id() != caller.client_id() {
            return Err(OAuthError::invalid_client(
                "the token was not issued to this client",
            ));
        }
        match owner {
            TokenOwner::Login(grant) => {
                let family_id = grant.family_id;
                state
                    .store
                    .run(move |conn| {
                        tokens::revoke_family(conn, family_id, "revoked by client", Utc::now())
                    })
                    .await?;
                tracing::info!(token_family.id = %family_id, "login revoked");
            }
            TokenOwner::ClientGrant(grant_id, _) => {
                state
                    .store
                    .run(move |conn| authorization::revoke_client_grant(conn, grant_id, Utc::now()))
                    .await?;
                tracing::info!(client_grant.id = %grant_id, "client grant revoked");
            }
        }
    }
    Ok(no_store(HttpResponse::Ok()).finish())
}

/// What a token belongs to.
enum TokenOwner {
    /// A person's login through a client.
    Login(Grant),
    /// A client acting for itself (client credentials): the grant, and the client.
    ClientGrant(TokenFamilyId, String),
}

impl TokenOwner {
    fn client_id(&self) -> &str {
        match self {
            TokenOwner::Login(grant) => &grant.client_id,
            TokenOwner::ClientGrant(_, client_id) => client_id,
        }
    }
}

/// What a token (refresh or access) belongs to, if the token is known, whatever its state.
async fn token_owner(state: &AppState, token: &str) -> Result<Option<TokenOwner>, OAuthError> {
    if token.starts_with(refresh::PREFIX) {
        let hash = refresh::hash(token);
        Ok(state
            .store
            .run(move |conn| tokens::family_of_refresh_token(conn, &hash))
            .await?
            .map(TokenOwner::Login))
    } else {
        Ok(state
            .tokens
            .verify(token)
            .ok()
            .map(|grant| match grant.user_id {
                Some(user_id) => TokenOwner::Login(Grant {
                    family_id: grant.family_id,
                    user_id,
                    client_id: grant.client_id,
                    scope: grant.scope,
                }),
                None => TokenOwner::ClientGrant(grant.family_id, grant.client_id),
            }))
    }
}

/// What introspection says about a token (RFC 7662 §2.2). An inactive token is only
/// `{"active": false}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user's public id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

impl IntrospectionResponse {
    fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            sub: None,
            token_type: None,
            exp: None,
            iss: None,
        }
    }
}

/// Tells a confidential client whether a token is active and what it grants (RFC 7662). A
/// client learns only about tokens issued to itself; about any other token the answer is
/// `{"active": false}`, as for an unknown one.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    security(("client" = [])),
    tag = "oauth",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's state", body = IntrospectionResponse),
        (status = 400, description = "`token` missing", body = OAuthErrorBody),
        (status = 401, description = "The caller is not an authenticated confidential client (decided before the form is read)", body = OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic` when no client credentials came, or HTTP Basic was tried"))),
    )
)]
pub async fn introspect(
    state: web::Data<AppState>,
    http: HttpRequest,
    form: FormParams,
) -> Result<HttpResponse, OAuthError> {
    // Only an authenticated confidential client may ask (RFC 7662 §2.1), so a request without
    // its credentials is refused as unauthenticated before anything else is read from it: 401
    // with the challenge that says how to authenticate (RFC 6749 §5.2, RFC 9110 §15.5.2).
    let query = TokenQuery::from_form(&form);
    let caller = authenticate(
        &state,
        &http,
        query.client_id.as_deref(),
        query.client_secret.as_deref(),
    )
    .await?;
    let client = match caller {
        Caller::Client(client) if client.client_type == ClientType::Confidential => client,
        _ => {
            let mut error = OAuthError::invalid_client(
                "introspection needs an authenticated confidential client",
            );
            error.challenge = true;
            return Err(error);
        }
    };
    let token = query.token()?;
    // (what it grants, through which client, for whom, until when, which kind)
    let answer = if token.starts_with(refresh::PREFIX) {
        let hash = refresh::hash(&token);
        state
            .store
            .run(move |conn| tokens::live_refresh_token(conn, &hash, Utc::now()))
            .await?
            .map(|(grant, expires_at)| {
                (
                    grant.scope,
                    grant.client_id,
                    grant.user_id.to_string(),
                    expires_at.timestamp(),
                    "refresh_token",
                )
            })
    } else {
        match state.tokens.verify(&token) {
            Ok(verified) => {
                let (family_id, user_id) = (verified.family_id, verified.user_id);
                let client_id = verified.client_id.clone();
                let active = state
                    .store
                    .run(move |conn| match user_id {
                        Some(user_id) => tokens::family_is_active(conn, family_id, user_id),
                        None => authorization::client_grant_is_active(conn, family_id, &client_id),
                    })
                    .await?;
                let subject = user_id.map_or_else(|| verified.client_id.clone(), |u| u.to_string());
                active.then_some((
                    verified.scope,
                    verified.client_id,
                    subject,
                    verified.expires_at,
                    "access_token",
                ))
            }
            Err(_) => None,
        }
    };
    let response = match answer {
        Some((scope, client_id, sub, exp, token_type)) if client_id == client.id.as_str() => {
            IntrospectionResponse {
                active: true,
                scope: Some(scope.to_string()),
                client_id: Some(client_id),
                sub: Some(sub),
                token_type: Some(token_type),
                exp: Some(exp),
                iss: Some(state.config.issuer.clone()),
            }
        }
        _ => IntrospectionResponse::inactive(),
    };
    Ok(no_store(HttpResponse::Ok()).json(response))
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    security(()),
    tag = "oauth",
    responses((status = 200, description = "JSON Web Key Set", content_type = "application/json",
        body = Object))
)]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.keys().jwks())
}

/// The authorization server's metadata (RFC 8414): endpoints, grant types, PKCE methods,
/// scopes and client authentication methods, for standard client libraries to discover.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    security(()),
    tag = "oauth",
    responses((status = 200, description = "Authorization server metadata (RFC 8414)",
        content_type = "application/json", body = Object))
)]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = state.config.issuer.trim_end_matches('/');
    let endpoint = |path: &str| format!("{issuer}{path}");
    let scopes: Vec<&str> = ScopeSet::first_party().iter().map(|s| s.as_str()).collect();
    let client_auth = ["client_secret_basic", "client_secret_post", "none"];
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(serde_json::json!({
            "issuer": state.config.issuer,
            "authorization_endpoint": endpoint("/oauth/authorize"),
            "token_endpoint": endpoint("/oauth/token"),
            "revocation_endpoint": endpoint("/oauth/revoke"),
            "introspection_endpoint": endpoint("/oauth/introspect"),
            "jwks_uri": endpoint("/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": scopes,
            "token_endpoint_auth_methods_supported": client_auth,
            "revocation_endpoint_auth_methods_supported": client_auth,
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": true,
        }))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::parse_basic;

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    fn pair(id: &str, secret: &str) -> Option<(String, String)> {
        Some((id.to_owned(), secret.to_owned()))
    }

    #[test]
    fn basic_credentials_decode_each_part_on_its_own() {
        assert_eq!(parse_basic(&basic("app_1:s3cret")), pair("app_1", "s3cret"));
        assert_eq!(
            parse_basic(&basic("app%3A1:s%26cret+%2B=")),
            pair("app:1", "s&cret +=")
        );
        assert_eq!(parse_basic(&basic("app_1")), None);
        assert_eq!(parse_basic("Bearer abc"), None);
    }

    /// Found by the `oauth_form` fuzz target: `a&v=b` was read as the client id `b`.
    #[test]
    fn a_raw_ampersand_in_basic_credentials_is_malformed() {
        assert_eq!(parse_basic(&basic("a&v=b:s3cret")), None);
        assert_eq!(parse_basic(&basic("app_1:x&v=y")), None);
        assert_eq!(
            parse_basic(&basic("app_1:x%26v%3Dy")),
            pair("app_1", "x&v=y")
        );
    }
}
