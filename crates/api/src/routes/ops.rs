//! Operational endpoints: liveness, readiness and the API contract.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{ApiError, ErrorEnvelope};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The database answers and the in-memory read model is loaded (it follows every instance's
/// changes; until it is loaded, or while it reloads after losing the change feed, answers come
/// from the database: correct, but slower). Load balancers should only route here when this
/// is 200.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database is unreachable, or the read model is still loading", body = ErrorEnvelope,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.store.ping().await.map_err(|error| {
        tracing::warn!(error.detail = %error, "readiness check failed");
        ApiError::unavailable()
    })?;
    if !state.store.hot().is_ready() {
        return Err(ApiError::unavailable());
    }
    Ok(HttpResponse::Ok().json(Health { status: "ok" }))
}

/// This document.
#[utoipa::path(get, path = "/openapi.yaml", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/yaml",
        body = Object)))]
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(state.openapi_yaml.clone())
}

/// Prometheus metrics in the text exposition format 0.0.4: `vicinity_http_requests_total` and
/// `vicinity_http_request_duration_seconds` by method, route pattern and status; the database
/// pool (`vicinity_db_pool_connections{state}`, `vicinity_db_pool_max_connections`);
/// `vicinity_checkins_total`, `vicinity_nearby_queries_total`, `vicinity_live_streams` and
/// `vicinity_rate_limited_total{limit}`. Unauthenticated: expose it to the monitoring network
/// only.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4",
        body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state.metrics.render(&state.store).map_err(|error| {
        tracing::error!(%error, "cannot render the metrics");
        ApiError::internal()
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
