//! The caller's own account, other people's profiles, and account deletion.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, error_code, error_fields};
use crate::on_both_backends;

on_both_backends!(
    me_shows_the_private_account,
    patching_me_changes_profile_and_privacy_settings,
    patching_me_with_invalid_values_names_each_field_and_changes_nothing,
    another_person_is_seen_without_private_fields,
    a_malformed_user_id_is_400_and_an_unknown_one_404,
    deleting_the_account_removes_it_and_kills_its_tokens,
);

async fn patch_me(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .patch(app.url("/v1/me"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn me_shows_the_private_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let me: Value = app.get_json("/v1/me", &ada.access_token).await;
    assert_eq!(me["id"], ada.user_id.as_str());
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["location_precision"], "neighborhood");
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'));
}

async fn patching_me_changes_profile_and_privacy_settings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let body = json!({"display_name": "  Ada Lovelace ", "bio": "Engines.\nNumbers.",
        "location_precision": "city", "default_visibility": "private"});
    let response = patch_me(&app, &ada.access_token, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = app.get_json("/v1/me", &ada.access_token).await;
    assert_eq!(me["display_name"], "Ada Lovelace");
    assert_eq!(me["bio"], "Engines.\nNumbers.");
    assert_eq!(me["location_precision"], "city");
    assert_eq!(me["default_visibility"], "private");
    // A partial change leaves the rest alone.
    let response = patch_me(
        &app,
        &ada.access_token,
        &json!({"location_precision": "off"}),
    )
    .await;
    let me: Value = response.json().await.unwrap();
    assert_eq!(
        (me["location_precision"].as_str(), me["bio"].as_str()),
        (Some("off"), Some("Engines.\nNumbers."))
    );
}

async fn patching_me_with_invalid_values_names_each_field_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let body = json!({"display_name": "", "location_precision": "precise", "bio": "b".repeat(281)});
    let (status, code, body) = error_code(patch_me(&app, &ada.access_token, &body).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let fields = error_fields(&body);
    assert_eq!(fields, ["display_name", "bio", "location_precision"]);
    let (status, code, body) =
        error_code(patch_me(&app, &ada.access_token, &json!({"is_admin": true})).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is_admin")
    );
    let me: Value = app.get_json("/v1/me", &ada.access_token).await;
    assert_eq!(
        (
            me["display_name"].as_str(),
            me["location_precision"].as_str()
        ),
        (Some("ada"), Some("neighborhood"))
    );
}

async fn another_person_is_seen_without_private_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let grace = app.register("grace").await;
    let response = app
        .get(&format!("/v1/users/{}", grace.user_id), &ada.access_token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(
        seen,
        json!({"id": grace.user_id, "username": "grace", "display_name": "grace"})
    );
}

async fn a_malformed_user_id_is_400_and_an_unknown_one_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    for bad in [
        "42",
        "usr_",
        "ven_0000000000001",
        "usr_%00%00",
        "usr_zzzzzzzzzzzzz",
    ] {
        let (status, code, body) = error_code(
            app.get(&format!("/v1/users/{bad}"), &ada.access_token)
                .await,
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "malformed_request"),
            "{bad}"
        );
        assert_eq!(body["error"]["details"][0]["field"], "user_id");
    }
    let (status, code, _) = error_code(
        app.get("/v1/users/usr_0000000000001", &ada.access_token)
            .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

async fn deleting_the_account_removes_it_and_kills_its_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let grace = app.register("grace").await;
    let response = app
        .client
        .delete(app.url("/v1/me"))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&ada.refresh_token).await.status(),
        StatusCode::BAD_REQUEST
    );
    let login = app.login("ada", &ada.password).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    let seen = app
        .get(&format!("/v1/users/{}", ada.user_id), &grace.access_token)
        .await;
    assert_eq!(seen.status(), StatusCode::NOT_FOUND);
    // The name and the address are free again.
    app.register("ada").await;
}
