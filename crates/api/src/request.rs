//! Per-request context: the request id, the tracing span every log line of the request is
//! written in, and the guarantee that error responses from anywhere carry the envelope.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::RoutePattern;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task ("unknown" outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".into())
}

/// A caller-supplied id is kept (so a load balancer's id follows the request) when it is short
/// and plain; otherwise a fresh random one is made.
fn request_id_for(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            )
        })
}

/// Errors that did not come from our handlers (unknown route, wrong method, framework
/// extractors) arrive without the JSON envelope; HTML pages keep their own body.
fn needs_envelope(res: &ServiceResponse<BoxBody>) -> bool {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !(content_type.starts_with("application/json") || content_type.starts_with("text/html"))
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = request_id_for(&req);
    // The path only: query strings may carry coordinates, which never go to the logs.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        http.method = %req.method(),
        http.path = %req.path(),
    );
    // A probe's 503 is its answer ("not ready yet", while the read model loads), not a fault.
    let probe = matches!(req.path(), "/readyz" | "/healthz");
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let started = Instant::now();
    let outcome = REQUEST_ID
        .scope(request_id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    // Handlers' errors arrive as responses; an `Err` here can only come from a middleware
    // inside this one (there is none yet), and actix renders it further out. Holding a clone
    // of the request to render it here would stop actix from recycling the request.
    let mut res = outcome?.map_into_boxed_body();
    if needs_envelope(&res) {
        let replacement = ApiError::from_status(res.status()).to_response(request_id.clone());
        res = res.into_response(replacement);
    }
    if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(pattern) = res.request().app_data::<RoutePattern>().copied()
        && let Ok(allow) = HeaderValue::from_str(&crate::routes::allowed_methods(pattern.0))
    {
        res.headers_mut().insert(header::ALLOW, allow);
    }
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );

    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(state) = state {
        // The route's pattern, never the path: ids must not become label values.
        let route = res
            .request()
            .app_data::<RoutePattern>()
            .map_or("unmatched", |pattern| pattern.0);
        state
            .metrics
            .observe(method.as_str(), route, res.status().as_str(), elapsed);
    }
    let latency_ms = elapsed * 1000.0;
    let _entered = span.enter();
    if status >= 500 && !probe {
        tracing::error!(http.status = status, latency_ms, "request failed");
    } else {
        tracing::info!(http.status = status, latency_ms, "request finished");
    }
    Ok(res)
}
