//! Registration and password login.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, error_code, error_fields};
use crate::on_both_backends;

on_both_backends!(
    registering_returns_a_token_pair_and_the_account,
    registration_reports_every_invalid_field_at_once,
    a_username_differing_only_in_case_is_taken,
    a_taken_email_is_refused_whatever_its_case,
    concurrent_registrations_of_one_username_leave_exactly_one_account,
    login_accepts_the_username_or_the_email_in_any_case,
    login_failures_do_not_say_which_part_was_wrong,
    repeated_login_attempts_on_one_account_are_throttled,
    login_attempts_are_throttled_per_client_address,
    a_login_name_with_control_characters_is_simply_unknown,
);

async fn registering_returns_a_token_pair_and_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_json(
            "/v1/auth/register",
            &json!({"username": "Ada_L", "email": "ada@example.com",
                "password": "correct horse battery", "display_name": "Ada Lovelace"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("vrt_"));
    assert!(!body["scope"].as_str().unwrap().contains("admin"));
    let user = &body["user"];
    assert_eq!(user["username"], "Ada_L");
    assert_eq!(user["display_name"], "Ada Lovelace");
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["location_precision"], "neighborhood");
    assert_eq!(user["default_visibility"], "friends");
    assert_eq!(
        location,
        format!("/v1/users/{}", user["id"].as_str().unwrap())
    );
    assert!(body.get("password").is_none() && user.get("password").is_none());
}

async fn registration_reports_every_invalid_field_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_json(
            "/v1/auth/register",
            &json!({"username": "a", "email": "not-an-email", "password": "short",
                "display_name": "x".repeat(10_000)}),
        )
        .await;
    let (status, code, body) = error_code(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code, "validation_failed");
    let fields = error_fields(&body);
    assert_eq!(fields, ["username", "email", "password", "display_name"]);
    // A refused registration writes nothing: with only the email wrong, the name stays free.
    let response = app
        .post_json(
            "/v1/auth/register",
            &json!({"username": "ada", "email": "ada@", "password": "a long passphrase"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.register("ada").await;
}

async fn a_username_differing_only_in_case_is_taken(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada").await;
    let response = app
        .post_json(
            "/v1/auth/register",
            &json!({"username": "ADA", "email": "other@example.com", "password": "a long passphrase"}),
        )
        .await;
    let (status, code, body) = error_code(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(body["error"]["details"][0]["field"], "username");
}

async fn a_taken_email_is_refused_whatever_its_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ada").await;
    let response = app
        .post_json(
            "/v1/auth/register",
            &json!({"username": "grace", "email": "ADA@Example.com", "password": "a long passphrase"}),
        )
        .await;
    let (status, _, body) = error_code(response).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["details"][0]["field"], "email");
}

async fn concurrent_registrations_of_one_username_leave_exactly_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bodies: Vec<Value> = (0..6)
        .map(|i| {
            json!({"username": "racer", "email": format!("racer{i}@example.com"),
                "password": "a long passphrase"})
        })
        .collect();
    let attempts = bodies
        .iter()
        .map(|body| app.post_json("/v1/auth/register", body));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 5), "{statuses:?}");
}

async fn login_accepts_the_username_or_the_email_in_any_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    for login in ["ada", "ADA", "ada@example.com", "Ada@Example.COM"] {
        let response = app.login(login, &ada.password).await;
        assert_eq!(response.status(), StatusCode::OK, "login as {login}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["id"], ada.user_id.as_str());
        assert_ne!(body["refresh_token"], ada.refresh_token.as_str());
    }
}

async fn login_failures_do_not_say_which_part_was_wrong(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let mut bodies = Vec::new();
    for (login, password) in [("ada", "wrong password"), ("nobody", ada.password.as_str())] {
        let response = app.login(login, password).await;
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let (status, code, mut body) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
        body["error"]["request_id"] = Value::Null;
        bodies.push(body);
    }
    assert_eq!(
        bodies[0], bodies[1],
        "an unknown account must look like a wrong password"
    );
}

async fn repeated_login_attempts_on_one_account_are_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.login_throttle.per_account_burst = 3;
    })
    .await;
    let ada = app.register("ada").await;
    for _ in 0..3 {
        let response = app.login("ada", "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now: the account is throttled, not the guess.
    let response = app.login("ADA", &ada.password).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    // Another account is unaffected.
    let grace = app.register("grace").await;
    let response = app.login("grace", &grace.password).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn login_attempts_are_throttled_per_client_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.login_throttle.per_address_burst = 2;
        config.trust_forwarded_for = true;
    })
    .await;
    let attempt = |client_address: &'static str, username: &'static str| {
        app.client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", client_address)
            .json(&json!({"username": username, "password": "guess"}))
            .send()
    };
    // Spread over different accounts, so only the address limit can bite.
    for name in ["ada", "grace"] {
        assert_eq!(
            attempt("192.0.2.1", name).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Only the address the proxy appended counts; what the client wrote before it does not.
    let spoofed = attempt("203.0.113.9, 192.0.2.1", "edsger").await.unwrap();
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
    let throttled = attempt("192.0.2.1", "edsger").await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        attempt("198.51.100.7", "edsger").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn a_login_name_with_control_characters_is_simply_unknown(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    for name in ["ada\u{0}", "\u{0}", "ada\u{7}", " "] {
        let response = app.login(name, &ada.password).await;
        let (status, code, _) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            "{name:?}"
        );
    }
}
