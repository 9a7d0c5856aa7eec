//! Health, readiness and the API contract.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, error_code};
use crate::on_both_backends;

on_both_backends!(
    health_and_readiness_answer_ok,
    the_served_openapi_document_is_the_committed_one,
    request_limits_say_where_a_caller_stands_and_refuse_with_429,
    metrics_count_requests_by_route_pattern,
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

async fn request_limits_say_where_a_caller_stands_and_refuse_with_429(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.trust_forwarded_for = true;
        config.request_limit_per_token = Some(vicinity_api::RateLimit {
            burst: 3,
            period: Duration::from_secs(60),
        });
        config.request_limit_per_address = Some(vicinity_api::RateLimit {
            burst: 6,
            period: Duration::from_secs(60),
        });
    })
    .await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let cyd = app.register("cyd").await;
    // Everything below comes from one address the proxy vouches for.
    let get = |path: &'static str, token: &str| {
        app.client
            .get(app.url(path))
            .header("x-forwarded-for", "203.0.113.7")
            .bearer_auth(token)
            .send()
    };
    let standing = |response: &reqwest::Response| {
        let number =
            |name: &str| -> u64 { response.headers()[name].to_str().unwrap().parse().unwrap() };
        (
            number("x-ratelimit-limit"),
            number("x-ratelimit-remaining"),
            number("x-ratelimit-reset"),
        )
    };
    // Ada's login allows 3: the token's limit is the tighter one.
    for remaining in [2, 1, 0] {
        let response = get("/v1/me", &ada.access_token).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let (limit, left, reset) = standing(&response);
        assert_eq!((limit, left), (3, remaining));
        assert!(reset <= 60, "{reset}");
    }
    let refused = get("/v1/me", &ada.access_token).await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(standing(&refused).1, 0);
    let (status, code, _) = error_code(refused).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    // Bob has his own login's allowance, but the address has used 4 of its 6.
    let response = get("/v1/me", &bob.access_token).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (limit, left, _) = standing(&response);
    assert_eq!((limit, left), (6, 1));
    assert_eq!(
        get("/v1/me", &bob.access_token).await.unwrap().status(),
        StatusCode::OK
    );
    let refused = get("/v1/me", &bob.access_token).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    // Probes and metrics are never limited; another address (and login) is unaffected.
    for _ in 0..10 {
        let response = app
            .client
            .get(app.url("/healthz"))
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
    }
    let elsewhere = app
        .client
        .get(app.url("/v1/me"))
        .header("x-forwarded-for", "198.51.100.1")
        .bearer_auth(&cyd.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::OK);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vicinity_rate_limited_total{limit=\"token\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vicinity_rate_limited_total{limit=\"address\"} 1"),
        "{metrics}"
    );
}

async fn metrics_count_requests_by_route_pattern(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    for _ in 0..3 {
        let path = format!("/v1/users/{}", ada.user_id);
        assert_eq!(
            app.get(&path, &ada.access_token).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.get("/v1/no/such/thing", &ada.access_token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let sample = |prefix: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        sample(
            r#"vicinity_http_requests_total{method="GET",route="/v1/users/{user_id}",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(
            r#"vicinity_http_request_duration_seconds_count{method="GET",route="/v1/users/{user_id}",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(r#"vicinity_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    // Route patterns only: no id ever becomes a label.
    assert!(!text.contains(&ada.user_id), "{text}");
    assert!(sample("vicinity_db_pool_max_connections") >= 1.0);
    assert!(text.contains("# TYPE vicinity_live_streams gauge"));
}
