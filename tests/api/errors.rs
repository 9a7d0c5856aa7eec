//! Bad input of every kind gets the documented 4xx in the envelope, and never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, TestApp, error_code};
use crate::on_both_backends;

on_both_backends!(
    unreadable_bodies_get_400_with_a_precise_message,
    an_oversized_body_is_413_and_writes_nothing,
    a_body_that_is_not_json_is_415,
    unknown_routes_and_methods_get_the_envelope,
    every_response_carries_a_request_id,
);

async fn post_raw(app: &TestApp, body: Vec<u8>, content_type: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/auth/register"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn unreadable_bodies_get_400_with_a_precise_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"username\": \"ada\",".to_vec(), "EOF"),
        (b"".to_vec(), "empty"),
        (b"[1, 2]".to_vec(), "invalid type"),
        (
            br#"{"username": 5, "email": "a@b.co", "password": "xxxxxxxxxx"}"#.to_vec(),
            "username",
        ),
        (
            br#"{"username": "ada", "email": "a@b.co", "password": "xxxxxxxxxx", "role": "admin"}"#
                .to_vec(),
            "unknown field `role`",
        ),
        (
            br#"{"email": "a@b.co", "password": "xxxxxxxxxx"}"#.to_vec(),
            "missing field `username`",
        ),
        (
            b"{\"username\": \"ad\xff\xfe\", \"email\": \"a@b.co\", \"password\": \"xxxxxxxxxx\"}"
                .to_vec(),
            "username",
        ),
        (
            br#"{"username": "ada", "email": "a@b.co", "password": "xxxxxxxxxx"} x"#.to_vec(),
            "trailing characters",
        ),
    ];
    for (body, expected) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (status, code, envelope) =
            error_code(post_raw(&app, body, "application/json").await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "malformed_request"),
            "{shown}"
        );
        let message = envelope["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{shown}: {message}");
    }
}

async fn an_oversized_body_is_413_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.body_limit_bytes = 4096).await;
    let body = json!({"username": "ada", "email": "ada@example.com", "password": "a long passphrase",
        "display_name": "x".repeat(5000)});
    let (status, code, _) = error_code(app.post_json("/v1/auth/register", &body).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    app.register("ada").await;
}

async fn a_body_that_is_not_json_is_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, code, _) = error_code(
        post_raw(
            &app,
            b"username=ada".to_vec(),
            "application/x-www-form-urlencoded",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
}

async fn unknown_routes_and_methods_get_the_envelope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, code, _) =
        error_code(app.client.get(app.url("/v1/nothing")).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    // A 405 lists what the resource does answer (RFC 9110 §15.5.6), from the route table.
    let response = app.client.put(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, PATCH, DELETE");
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let response = app
        .client
        .request(reqwest::Method::TRACE, app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET");
    let response = app
        .client
        .get(app.url("/v1/auth/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.client.get(app.url("/healthz")).send().await.unwrap();
    let second = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id(&first), id(&second));
    assert!(id(&first).len() >= 16);
    // A sane id from a load balancer is kept; anything else is replaced.
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "lb-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(id(&kept), "lb-1234.abc");
    let replaced = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(id(&replaced), "<script>");
}
