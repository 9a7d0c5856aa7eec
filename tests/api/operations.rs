//! Health, readiness and the API contract.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    health_and_readiness_answer_ok,
    the_served_openapi_document_is_the_committed_one
);

async fn health_and_readiness_answer_ok(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

/// The committed openapi.yaml is the contract; the code must generate exactly it. After an
/// intended API change, regenerate it with `cargo run -- openapi > openapi.yaml`.
async fn the_served_openapi_document_is_the_committed_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let served = response.text().await.unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml is committed at the repository root");
    assert!(
        served == committed,
        "openapi.yaml differs from what the code generates; if the API change is intended, run \
         `cargo run -- openapi > openapi.yaml` and commit it"
    );
    for route in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/me",
        "/v1/users/{user_id}",
        "/oauth/token",
        "/oauth/revoke",
        "/.well-known/jwks.json",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            served.contains(&format!("  {route}:")),
            "{route} is undocumented"
        );
    }
}

/// Without its database the server answers at once with 503 and `Retry-After` (never a 500,
/// never a hang), while liveness stays green.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_turns_readiness_and_queries_into_503() {
    if !crate::helpers::postgres_configured(
        "losing_the_database_turns_readiness_and_queries_into_503",
    ) {
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let ada = app.register("ada").await;
    app.lose_database();
    for response in [
        app.client.get(app.url("/readyz")).send().await.unwrap(),
        app.get("/v1/me", &ada.access_token).await,
    ] {
        assert_eq!(response.headers()["retry-after"], "1");
        let (status, code, _) = crate::helpers::error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
    }
    let response = app.refresh(&ada.refresh_token).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
}
