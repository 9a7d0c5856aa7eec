//! Every way an access token can be wrong gets 401 with an RFC 6750 challenge; a token
//! without the needed scope gets 403.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Session, TestApp, claims_of, error_code, sign_with_kid};
use crate::on_both_backends;

on_both_backends!(
    a_request_without_a_token_gets_a_bare_bearer_challenge,
    malformed_forged_and_misdirected_tokens_are_refused,
    a_token_without_the_needed_scope_gets_403,
);

/// Re-signs `claims` with the server's own key and key id, so only what is under test is wrong.
fn sign(app: &TestApp, claims: &Value, typ: &str) -> String {
    sign_with_kid(app, claims, typ, Some(&app.kid))
}

fn with(claims: &Value, name: &str, value: Value) -> Value {
    let mut claims = claims.clone();
    claims[name] = value;
    claims
}

async fn assert_unauthorized(app: &TestApp, token: &str, why: &str) -> String {
    let response = app.get("/v1/me", token).await;
    let challenge = response
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{why}: no challenge"))
        .to_str()
        .unwrap()
        .to_owned();
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "{why}"
    );
    assert!(
        challenge.starts_with("Bearer realm=\"vicinity\""),
        "{why}: {challenge}"
    );
    challenge
}

async fn a_request_without_a_token_gets_a_bare_bearer_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.client.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"vicinity\""
    );
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let response = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic YWRhOnNlY3JldA==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn malformed_forged_and_misdirected_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada: Session = app.register("ada").await;
    let grace = app.register("grace").await;
    let claims = claims_of(&ada.access_token);
    let now = chrono::Utc::now().timestamp();
    // The unmodified re-signed token is accepted: every case below differs in one thing.
    assert_eq!(
        app.get("/v1/me", &sign(&app, &claims, "at+jwt"))
            .await
            .status(),
        StatusCode::OK
    );

    let header_none =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": app.kid}).to_string());
    let payload = ada.access_token.split('.').nth(1).unwrap().to_owned();
    let public_x = {
        let jwks = app.get_public_json("/.well-known/jwks.json").await;
        URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["x"].as_str().unwrap())
            .unwrap()
    };
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header {
            typ: Some("at+jwt".into()),
            kid: Some(app.kid.clone()),
            ..Header::new(Algorithm::HS256)
        },
        &claims,
        &EncodingKey::from_secret(&public_x),
    )
    .unwrap();
    let other_key = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        vicinity_api::SigningKeys::load_or_create(&path, true).unwrap();
        std::fs::read_to_string(path).unwrap()
    };
    let foreign = jsonwebtoken::encode(
        &Header {
            typ: Some("at+jwt".into()),
            kid: Some(app.kid.clone()),
            ..Header::new(Algorithm::EdDSA)
        },
        &claims,
        &EncodingKey::from_ed_pem(other_key.as_bytes()).unwrap(),
    )
    .unwrap();

    let cases: Vec<(String, &str)> = vec![
        ("garbage".into(), "garbage"),
        (format!("{header_none}.{payload}."), "alg none"),
        (hs256_with_public_key, "HS256 keyed with the public key"),
        (foreign, "signed by another key"),
        (
            sign(&app, &with(&claims, "exp", json!(now - 7200)), "at+jwt"),
            "expired",
        ),
        (
            sign(&app, &with(&claims, "aud", json!("another-api")), "at+jwt"),
            "wrong audience",
        ),
        (
            sign(
                &app,
                &with(&claims, "iss", json!("https://evil.example")),
                "at+jwt",
            ),
            "wrong issuer",
        ),
        (
            sign(&app, &with(&claims, "nbf", json!(now + 3600)), "at+jwt"),
            "not valid yet",
        ),
        (
            sign(&app, &with(&claims, "iat", json!(now + 3600)), "at+jwt"),
            "issued in the future",
        ),
        (sign(&app, &claims, "JWT"), "not an access token type"),
        (sign_with_kid(&app, &claims, "at+jwt", None), "no key id"),
        (
            sign_with_kid(&app, &claims, "at+jwt", Some("another-key")),
            "unknown key id",
        ),
        (
            sign(&app, &with(&claims, "sub", json!(grace.user_id)), "at+jwt"),
            "subject swapped",
        ),
        (
            format!("{}{}", ada.access_token, "A".repeat(10_000)),
            "oversized",
        ),
        (
            ada.access_token[..ada.access_token.len() - 5].to_owned(),
            "truncated",
        ),
    ];
    for (token, why) in &cases {
        let challenge = assert_unauthorized(&app, token, why).await;
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{why}: {challenge}"
        );
    }
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_unauthorized(&app, &sign(&app, &no_exp, "at+jwt"), "no exp").await;
    let challenge = assert_unauthorized(
        &app,
        &sign(&app, &with(&claims, "exp", json!(now - 7200)), "at+jwt"),
        "expired",
    )
    .await;
    assert!(challenge.contains("expired"), "{challenge}");
}

async fn a_token_without_the_needed_scope_gets_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let claims = with(
        &claims_of(&ada.access_token),
        "scope",
        json!("checkins:read friends:read"),
    );
    let response = app.get("/v1/me", &sign(&app, &claims, "at+jwt")).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"vicinity\", error=\"insufficient_scope\", scope=\"profile\""
    );
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
}
