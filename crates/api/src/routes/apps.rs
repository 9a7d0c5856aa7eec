//! What an app manages for itself with a client credentials token: its webhook, and the log
//! of deliveries made to it.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vicinity_domain::secret::random_base64url;
use vicinity_domain::webhook::WebhookUrl;
use vicinity_domain::{ClientId, Scope, ValidationErrors};
use vicinity_store::{clients, webhooks};

use crate::app::AppState;
use crate::auth::AppCaller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::json::JsonBody;

/// `PUT /v1/app/webhook` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhookRequest {
    /// An https URL on a public host; deliveries are POSTed to it.
    #[schema(example = "https://hooks.trail.example/vicinity")]
    pub url: String,
}

/// The webhook as set: the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    pub url: String,
    /// Signs every delivery: `Vicinity-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
    /// "<t>.<body>">`. Check it in constant time and refuse old timestamps.
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// The webhook as shown later (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub created_at: DateTime<Utc>,
}

/// One delivery, as the app's delivery log shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `id` in the delivered body and the `Vicinity-Delivery` header.
    #[schema(example = "whd_0123456789abcdef")]
    pub id: String,
    #[schema(example = "checkin.created")]
    pub event: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    /// `pending`, `delivered` or `failed` (retries exhausted).
    #[schema(example = "delivered")]
    pub status: &'static str,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The latest deliveries (at most 100), newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
    /// Always null: only the latest deliveries are kept here.
    pub next_cursor: Option<String>,
}

fn not_webhook_ready(client: &vicinity_domain::Client) -> Option<ApiError> {
    (!client.scopes.contains(Scope::CheckinsRead)).then(|| {
        ApiError::forbidden(
            "webhooks deliver check-ins: the app must be registered with `checkins:read`",
        )
    })
}

/// Sets the app's webhook (replacing any earlier one, with a new secret). It receives a
/// `checkin.created` delivery whenever a person who granted the app `checkins:read` checks in.
#[utoipa::path(
    put,
    path = "/v1/app/webhook",
    tag = "apps",
    security(("app" = [])),
    request_body = SetWebhookRequest,
    responses(
        (status = 200, description = "Set; the signing secret is shown this once", body = WebhookCreated),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Not a client credentials token, or the app lacks `checkins:read`", body = ErrorEnvelope),
        (status = 422, description = "Not an https URL on a public host", body = ErrorEnvelope),
    )
)]
pub async fn set_webhook(
    caller: AppCaller,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<SetWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let url = parse_url(&state, &body.url)
        .map_err(|message| ApiError::validation(ValidationErrors::single("url", message)))?;
    let client_id = ClientId::from_trusted(caller.client_id.clone());
    let lookup = client_id.clone();
    let client = state
        .store
        .run(move |conn| clients::find(conn, &lookup))
        .await?;
    if let Some(refusal) = not_webhook_ready(&client) {
        return Err(refusal);
    }
    let secret = format!("whsec_{}", random_base64url::<32>());
    let now = Utc::now();
    let (stored_url, stored_secret) = (url.clone(), secret.clone());
    state
        .store
        .run(move |conn| webhooks::set(conn, &client_id, &stored_url, &stored_secret, now))
        .await?;
    state.webhooks.changed();
    tracing::info!(client.id = %caller.client_id, "webhook set");
    Ok(
        crate::routes::no_store(HttpResponse::Ok()).json(WebhookCreated {
            url: url.as_str().to_owned(),
            secret,
            created_at: now,
        }),
    )
}

/// A webhook URL under the rules, or (tests only) an `http` loopback one.
fn parse_url(state: &AppState, text: &str) -> Result<WebhookUrl, String> {
    if state.config.webhooks.allow_loopback_for_tests
        && let Some(url) = WebhookUrl::from_trusted(text)
        && url.url().scheme() == "http"
        && url
            .url()
            .host_str()
            .is_some_and(|host| host == "127.0.0.1" || host == "[::1]")
    {
        return Ok(url);
    }
    WebhookUrl::parse(text)
}

/// The app's webhook.
#[utoipa::path(
    get,
    path = "/v1/app/webhook",
    tag = "apps",
    security(("app" = [])),
    responses(
        (status = 200, description = "The webhook (without its secret)", body = WebhookView),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Not a client credentials token", body = ErrorEnvelope),
        (status = 404, description = "No webhook is set", body = ErrorEnvelope),
    )
)]
pub async fn get_webhook(
    caller: AppCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client_id = ClientId::from_trusted(caller.client_id);
    let found = state
        .store
        .run(move |conn| webhooks::find(conn, &client_id))
        .await?
        .ok_or_else(|| ApiError::not_found("no webhook is set"))?;
    Ok(HttpResponse::Ok().json(WebhookView {
        url: found.url,
        created_at: found.created_at,
    }))
}

/// Removes the app's webhook; deliveries not yet made are dropped.
#[utoipa::path(
    delete,
    path = "/v1/app/webhook",
    tag = "apps",
    security(("app" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Not a client credentials token", body = ErrorEnvelope),
        (status = 404, description = "No webhook is set", body = ErrorEnvelope),
    )
)]
pub async fn delete_webhook(
    caller: AppCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client_id = ClientId::from_trusted(caller.client_id);
    let removed = state
        .store
        .run(move |conn| webhooks::remove(conn, &client_id))
        .await?;
    if !removed {
        return Err(ApiError::not_found("no webhook is set"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The app's latest deliveries, to see what arrived and why something did not.
#[utoipa::path(
    get,
    path = "/v1/app/webhook/deliveries",
    tag = "apps",
    security(("app" = [])),
    responses(
        (status = 200, description = "Latest deliveries, newest first", body = DeliveryList),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Not a client credentials token", body = ErrorEnvelope),
    )
)]
pub async fn list_deliveries(
    caller: AppCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client_id = ClientId::from_trusted(caller.client_id);
    let deliveries = state
        .store
        .run(move |conn| webhooks::recent(conn, &client_id, 100))
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryList {
        items: deliveries
            .into_iter()
            .map(|d| DeliveryView {
                id: format!("whd_{:016x}", d.id),
                event: d.event,
                created_at: d.created_at,
                attempts: d.attempts,
                status: match (d.delivered_at, d.failed_at) {
                    (Some(_), _) => "delivered",
                    (None, Some(_)) => "failed",
                    (None, None) => "pending",
                },
                delivered_at: d.delivered_at,
                last_error: d.last_error,
            })
            .collect(),
        next_cursor: None,
    }))
}
