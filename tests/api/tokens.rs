//! The OAuth token endpoint (refresh grant), revocation and the published keys.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use vicinity_domain::ClientType;

use crate::helpers::{Backend, TestApp, claims_of, register_app};
use crate::on_both_backends;

on_both_backends!(
    a_refresh_token_yields_a_new_pair_and_is_spent,
    reusing_a_spent_refresh_token_revokes_the_whole_login,
    refresh_may_narrow_the_scope_but_never_widen_it,
    revoking_a_refresh_token_ends_the_login,
    revoking_an_access_token_ends_the_login,
    revoking_an_unknown_token_still_answers_200,
    token_endpoint_errors_follow_rfc_6749,
    published_keys_verify_issued_access_tokens,
    two_concurrent_refreshes_of_one_token_cannot_both_succeed,
    a_replayed_refresh_token_revokes_the_login_whatever_it_is_sent_with,
    a_rotated_key_signs_new_tokens_and_still_verifies_old_ones,
);

async fn oauth_error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    (status, body["error"].as_str().unwrap().to_owned())
}

async fn a_refresh_token_yields_a_new_pair_and_is_spent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let response = app.refresh(&ada.refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let new_refresh = body["refresh_token"].as_str().unwrap();
    let new_access = body["access_token"].as_str().unwrap();
    assert_ne!(new_refresh, ada.refresh_token);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(app.get("/v1/me", new_access).await.status(), StatusCode::OK);
    // The new refresh token works in turn.
    assert_eq!(app.refresh(new_refresh).await.status(), StatusCode::OK);
}

async fn reusing_a_spent_refresh_token_revokes_the_whole_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let rotated: Value = app.refresh(&ada.refresh_token).await.json().await.unwrap();
    let newest_refresh = rotated["refresh_token"].as_str().unwrap();
    let newest_access = rotated["access_token"].as_str().unwrap();

    // An attacker replays the stolen, already-spent token.
    let (status, error) = oauth_error(app.refresh(&ada.refresh_token).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    // Every token of that login is dead, including the legitimate newest ones.
    let (_, error) = oauth_error(app.refresh(newest_refresh).await).await;
    assert_eq!(error, "invalid_grant");
    assert_eq!(
        app.get("/v1/me", newest_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Other logins of the same person are unaffected.
    let login = app
        .post_json(
            "/v1/auth/login",
            &serde_json::json!({"username": "ada", "password": ada.password}),
        )
        .await;
    let other: Value = login.json().await.unwrap();
    let other_access = other["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/v1/me", other_access).await.status(),
        StatusCode::OK
    );
}

async fn refresh_may_narrow_the_scope_but_never_widen_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let response = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &ada.refresh_token),
                ("scope", "checkins:read"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "checkins:read");
    let narrow_access = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(narrow_access)["scope"], "checkins:read");
    let (status, code, _) =
        crate::helpers::error_code(app.get("/v1/me", narrow_access).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );

    // The login keeps its full scope: the next refresh may ask for profile again…
    let next_refresh = body["refresh_token"].as_str().unwrap();
    let response = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", next_refresh),
                ("scope", "admin"),
            ],
        )
        .await;
    // …but never for more than was granted, and a refused request spends nothing.
    let (status, error) = oauth_error(response).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    let response = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", next_refresh),
                ("scope", "profile"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn revoking_a_refresh_token_ends_the_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let response = app
        .post_form(
            "/oauth/revoke",
            &[
                ("token", &ada.refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, error) = oauth_error(app.refresh(&ada.refresh_token).await).await;
    assert_eq!(error, "invalid_grant");
}

async fn revoking_an_access_token_ends_the_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let response = app
        .post_form("/oauth/revoke", &[("token", &ada.access_token)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.get("/v1/me", &ada.access_token).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("revoked"), "{challenge}");
    let (_, error) = oauth_error(app.refresh(&ada.refresh_token).await).await;
    assert_eq!(error, "invalid_grant");
}

async fn revoking_an_unknown_token_still_answers_200(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for token in ["vrt_unknown", "not.a.jwt", "eyJhbGciOiJub25lIn0.e30."] {
        let response = app.post_form("/oauth/revoke", &[("token", token)]).await;
        assert_eq!(response.status(), StatusCode::OK, "{token}");
    }
    let (status, error) = oauth_error(app.post_form("/oauth/revoke", &[]).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
}

async fn token_endpoint_errors_follow_rfc_6749(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    type Params<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Params, StatusCode, &str)> = vec![
        (vec![], StatusCode::BAD_REQUEST, "invalid_request"),
        (
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "refresh_token")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "vrt_forged"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &ada.refresh_token),
                ("scope", "profile superpowers"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &ada.refresh_token),
                ("client_id", "someone-else"),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token"),
                ("refresh_token", &ada.refresh_token),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (params, status, error) in cases {
        let response = app.post_form("/oauth/token", &params).await;
        assert_eq!(
            oauth_error(response).await,
            (status, error.to_owned()),
            "{params:?}"
        );
    }
    // JSON is not what RFC 6749 specifies for this endpoint.
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .json(&serde_json::json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await.1, "invalid_request");
    // None of the refused requests spent the token.
    assert_eq!(
        app.refresh(&ada.refresh_token).await.status(),
        StatusCode::OK
    );
}

async fn published_keys_verify_issued_access_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let jwks = app.get_public_json("/.well-known/jwks.json").await;
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert!(
        key.get("d").is_none(),
        "the private key must never be published"
    );
    let header = jsonwebtoken::decode_header(&ada.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());

    let decoding = DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[app.config.audience.as_str()]);
    validation.set_issuer(&[app.config.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(&ada.access_token, &decoding, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], ada.user_id.as_str());
    assert_eq!(claims["client_id"], "vicinity");
    for claim in ["exp", "iat", "jti", "scope"] {
        assert!(claims.get(claim).is_some(), "missing {claim}");
    }
}

async fn two_concurrent_refreshes_of_one_token_cannot_both_succeed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (first, second) = tokio::join!(
        app.refresh(&ada.refresh_token),
        app.refresh(&ada.refresh_token)
    );
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);
}

async fn a_replayed_refresh_token_revokes_the_login_whatever_it_is_sent_with(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let rotated: Value = app.refresh(&ada.refresh_token).await.json().await.unwrap();
    // Replayed by another app, asking for more than the login had.
    let (other_app, _) = register_app(
        &app,
        ClientType::Public,
        &["https://other.example/cb"],
        "profile",
    );
    let response = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &ada.refresh_token),
                ("client_id", &other_app),
                ("scope", "admin"),
            ],
        )
        .await;
    assert_eq!(oauth_error(response).await.1, "invalid_grant");
    let newest = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(
        oauth_error(app.refresh(newest).await).await.1,
        "invalid_grant"
    );
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// `vicinity keys rotate` under a running server: within seconds it signs with the new key,
/// still accepts the old key's tokens and publishes both; revoking a key ends its tokens.
async fn a_rotated_key_signs_new_tokens_and_still_verifies_old_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    assert_eq!(kid_of(&ada.access_token), app.kid);
    let lifetime = std::time::Duration::from_secs(16 * 60);
    let (second, old) = vicinity_api::SigningKeys::rotate(&app.key_path, lifetime, false).unwrap();
    assert_eq!(old, app.kid);
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;

    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::OK
    );
    let bob = app.register("bob").await;
    assert_eq!(kid_of(&bob.access_token), second.kid());
    assert_eq!(
        app.get("/v1/me", &bob.access_token).await.status(),
        StatusCode::OK
    );
    let jwks = app.get_public_json("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [second.kid(), app.kid.as_str()]);

    // The second key turns out compromised: its tokens die, the first key's live on, and a
    // refresh (which needs no key) gets a token of the third.
    let (third, _) = vicinity_api::SigningKeys::rotate(&app.key_path, lifetime, true).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    assert_eq!(
        app.get("/v1/me", &bob.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::OK
    );
    let refreshed: Value = app.refresh(&bob.refresh_token).await.json().await.unwrap();
    let token = refreshed["access_token"].as_str().unwrap();
    assert_eq!(kid_of(token), third.kid());
    assert_eq!(app.get("/v1/me", token).await.status(), StatusCode::OK);
}
