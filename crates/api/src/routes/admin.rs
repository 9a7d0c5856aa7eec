//! The admin API: registering third-party apps (what `vicinity admin create-client` does),
//! making administrators, and suspending, reinstating and deleting accounts.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::{Client, ClientId, ClientType, NewClient, UserId, ValidationErrors};
use vicinity_store::{DbConnection, StoreError, clients};

use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::json::JsonBody;

/// `POST /v1/admin/clients` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// Shown to people when the app asks for their approval.
    #[schema(example = "Trail Log")]
    pub name: String,
    /// `public` (a phone or browser app, PKCE alone) or `confidential` (keeps a secret).
    #[schema(example = "public", pattern = "^(public|confidential)$")]
    #[serde(rename = "type")]
    pub client_type: String,
    /// Exactly as the app will send them; at least one for a public client.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The most the app may ask for, space-separated; `admin` only for a confidential client.
    #[schema(example = "profile checkins:read")]
    pub scopes: String,
}

/// A registered app.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(example = "public")]
    pub client_type: &'static str,
    pub redirect_uris: Vec<String>,
    #[schema(example = "profile checkins:read")]
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    /// A confidential client's secret: in the answer to its creation only, never again (only
    /// its SHA-256 is stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ClientView {
    fn new(client: Client, secret: Option<String>) -> Self {
        Self {
            client_id: client.id.as_str().to_owned(),
            name: client.name,
            client_type: client.client_type.as_str(),
            redirect_uris: client
                .redirect_uris
                .iter()
                .map(|uri| uri.as_str().to_owned())
                .collect(),
            scopes: client.scopes.to_string(),
            created_at: client.created_at,
            client_secret: secret,
        }
    }
}

/// All registered apps.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub items: Vec<ClientView>,
    /// Always null: apps are registered by hand, so there are few.
    pub next_cursor: Option<String>,
}

/// Registers an app. A confidential client's secret is in this answer and nowhere else.
#[utoipa::path(
    post,
    path = "/v1/admin/clients",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    request_body = CreateClientRequest,
    responses(
        (status = 201, description = "Registered", body = ClientView),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 422, description = "Every invalid field, named", body = ErrorEnvelope),
    )
)]
pub async fn create_client(
    caller: AdminCaller,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<CreateClientRequest>,
) -> Result<HttpResponse, ApiError> {
    let client_type = ClientType::parse(&body.client_type);
    let new = match client_type {
        Ok(client_type) => NewClient::parse(
            &body.name,
            client_type,
            &body.redirect_uris,
            &body.scopes.replace(',', " "),
        ),
        Err(message) => Err(ValidationErrors::single("type", message)),
    }
    .map_err(ApiError::validation)?;
    let (client, secret) = state
        .store
        .run(move |conn| clients::create(conn, &new, Utc::now()))
        .await?;
    tracing::info!(client.id = %client.id, by = %caller.who, "client registered");
    let secret = secret.map(|s| s.expose().to_owned());
    Ok(crate::routes::no_store(HttpResponse::Created()).json(ClientView::new(client, secret)))
}

/// Lists the registered apps (never their secrets).
#[utoipa::path(
    get,
    path = "/v1/admin/clients",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    responses(
        (status = 200, description = "Registered apps, newest first", body = ClientList),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
    )
)]
pub async fn list_clients(
    _caller: AdminCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = state.store.run(clients::list).await?;
    Ok(HttpResponse::Ok().json(ClientList {
        items: all.into_iter().map(|c| ClientView::new(c, None)).collect(),
        next_cursor: None,
    }))
}

/// Deletes an app: every login made through it is revoked, its webhook removed.
#[utoipa::path(
    delete,
    path = "/v1/admin/clients/{client_id}",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such app", body = ErrorEnvelope),
    )
)]
pub async fn delete_client(
    caller: AdminCaller,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ClientId::from_trusted(client_id.into_inner().chars().take(100).collect());
    let logged = id.clone();
    let deleted = state
        .store
        .run(move |conn| clients::delete(conn, &id, Utc::now()))
        .await?;
    if !deleted {
        return Err(ApiError::not_found("no such app"));
    }
    tracing::info!(client.id = %logged, by = %caller.who, "client deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Makes a person an administrator (what `vicinity admin promote` does).
#[utoipa::path(
    put,
    path = "/v1/admin/users/{user_id}/admin",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(("user_id" = String, Path, description = "The person's id")),
    responses(
        (status = 204, description = "An administrator now"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such person", body = ErrorEnvelope),
    )
)]
pub async fn promote(
    caller: AdminCaller,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    on_account(
        &state,
        &caller,
        &user_id,
        "administrator promoted",
        |conn, id| vicinity_store::users::set_admin(conn, id, true),
    )
    .await
}

/// Makes an administrator an ordinary person again; every login of theirs that carries
/// `admin` is revoked at once.
#[utoipa::path(
    delete,
    path = "/v1/admin/users/{user_id}/admin",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(("user_id" = String, Path, description = "The person's id")),
    responses(
        (status = 204, description = "No longer an administrator"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such person", body = ErrorEnvelope),
    )
)]
pub async fn demote(
    caller: AdminCaller,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    on_account(
        &state,
        &caller,
        &user_id,
        "administrator demoted",
        |conn, id| {
            vicinity_store::transaction(conn, |conn| {
                vicinity_store::users::set_admin(conn, id, false)?;
                {
                    let which = vicinity_store::tokens::Logins {
                        user: Some(id),
                        carrying: Some(vicinity_domain::Scope::Admin),
                        ..Default::default()
                    };
                    vicinity_store::tokens::revoke_live(
                        conn,
                        which,
                        "administrator demoted",
                        Utc::now(),
                    )
                    .map(drop)
                }
            })
        },
    )
    .await
}

/// Does `work` to the account `user_id` names and answers 204, or 404 if there is none.
async fn on_account(
    state: &AppState,
    caller: &AdminCaller,
    user_id: &str,
    done: &'static str,
    work: impl FnOnce(&mut DbConnection, UserId) -> Result<(), StoreError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let id = UserId::parse(user_id).map_err(|_| ApiError::not_found("no such person"))?;
    state
        .store
        .run(move |conn| work(conn, id))
        .await
        .map_err(crate::error::not_found_as("no such person"))?;
    tracing::info!(user.id = %id, by = %caller.who, "{done}");
    Ok(HttpResponse::NoContent().finish())
}

/// Suspends a person at once: every login revoked, their position forgotten, nobody sees them
/// and they cannot sign in, until unsuspended.
#[utoipa::path(
    put,
    path = "/v1/admin/users/{user_id}/suspension",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(("user_id" = String, Path, description = "The person's id")),
    responses(
        (status = 204, description = "Suspended"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such person", body = ErrorEnvelope),
    )
)]
pub async fn suspend(
    caller: AdminCaller,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    on_account(
        &state,
        &caller,
        &user_id,
        "account suspended",
        |conn, id| vicinity_store::users::suspend(conn, id, Utc::now()),
    )
    .await
}

/// Lifts a suspension: the person may sign in again (old logins stay revoked).
#[utoipa::path(
    delete,
    path = "/v1/admin/users/{user_id}/suspension",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(("user_id" = String, Path, description = "The person's id")),
    responses(
        (status = 204, description = "No longer suspended"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such person", body = ErrorEnvelope),
    )
)]
pub async fn unsuspend(
    caller: AdminCaller,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    on_account(
        &state,
        &caller,
        &user_id,
        "suspension lifted",
        vicinity_store::users::unsuspend,
    )
    .await
}

/// Deletes a person's account and everything of theirs.
#[utoipa::path(
    delete,
    path = "/v1/admin/users/{user_id}",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(("user_id" = String, Path, description = "The person's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 404, description = "No such person", body = ErrorEnvelope),
    )
)]
pub async fn delete_user(
    caller: AdminCaller,
    state: web::Data<AppState>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    on_account(
        &state,
        &caller,
        &user_id,
        "account deleted by an administrator",
        vicinity_store::users::delete,
    )
    .await
}

/// An account as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    #[schema(example = "usr_0f3kz9w2m4q8r")]
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub is_admin: bool,
    /// When the account was suspended; null if it is not.
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserPage {
    pub items: Vec<AdminUserView>,
    pub next_cursor: Option<String>,
}

const USERS_DEFAULT_LIMIT: usize = 50;
const USERS_MAX_LIMIT: usize = 200;

/// Lists accounts, suspended ones included, by username; `q` keeps those whose username,
/// email or display name starts with it.
#[utoipa::path(
    get,
    path = "/v1/admin/users",
    tag = "admin",
    security(("bearer" = ["admin"]), ("app" = ["admin"])),
    params(
        ("q" = Option<String>, Query, description = "Start of a username, email or display name (case-insensitive)"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of accounts", body = AdminUserPage),
        (status = 400, description = "An unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `admin`", body = ErrorEnvelope),
        (status = 422, description = "`q` or `limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn list_users(
    _caller: AdminCaller,
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params = super::query::parse(request.query_string(), &["q", "limit", "cursor"])?;
    let mut errors = ValidationErrors::default();
    let q = params
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > 100 || q.chars().any(char::is_control))
    {
        errors.check::<()>(
            "q",
            Err("at most 100 characters, none of them control".into()),
        );
    }
    let limit = super::query::limit(&params, USERS_DEFAULT_LIMIT, USERS_MAX_LIMIT, &mut errors)?;
    let Some(limit) = limit.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    let fingerprint = format!("admin/users\0{}", q.as_deref().unwrap_or("")).into_bytes();
    let after = super::query::cursor(&params, &state.cursors, &fingerprint)?
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| {
            ApiError::malformed(Some("cursor".into()), "cursor: not a cursor of this list")
        })?;
    let mut users = state
        .store
        .run(move |conn| {
            vicinity_store::users::admin_list(conn, q.as_deref(), after.as_deref(), limit + 1)
        })
        .await?;
    let more = users.len() > limit;
    users.truncate(limit);
    let next_cursor = more.then(|| users.last()).flatten().map(|(last, _)| {
        state
            .cursors
            .seal(&fingerprint, last.username.key().as_bytes())
    });
    Ok(HttpResponse::Ok().json(AdminUserPage {
        items: users
            .into_iter()
            .map(|(user, suspended_at)| AdminUserView {
                id: user.id.to_string(),
                username: user.username.as_str().to_owned(),
                display_name: user.display_name.as_str().to_owned(),
                email: user.email.as_str().to_owned(),
                is_admin: user.is_admin,
                suspended_at,
                created_at: user.created_at,
            })
            .collect(),
        next_cursor,
    }))
}
