//! Administrators suspending, reinstating and deleting accounts.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, befriend, client_credentials_token, put_location};
use crate::on_both_backends;

on_both_backends!(a_suspended_person_vanishes_at_once_and_returns_when_reinstated);

/// An administrator's token: an operator's tool registered with `admin`.
async fn admin_token(app: &TestApp) -> String {
    client_credentials_token(app, "admin").await
}

async fn nearby_names(app: &TestApp, token: &str) -> Vec<String> {
    app.get_json("/v1/me/nearby?radius=2000", token).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["user"]["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_suspended_person_vanishes_at_once_and_returns_when_reinstated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = admin_token(&app).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    befriend(&app, &ada, &bob).await;
    let here = vicinity_geo::Point::new(40.758, -73.9855).unwrap();
    for who in [&ada, &bob] {
        assert_eq!(put_location(&app, who, here).await.status(), StatusCode::OK);
    }
    assert_eq!(nearby_names(&app, &bob.access_token).await, ["ada"]);
    // Ada's check-in, which Bob sees in his feed.
    let venue: Value = crate::helpers::send(
        &app,
        Method::POST,
        "/v1/venues",
        &bob,
        Some(
            serde_json::json!({"name": "Blue Bottle", "category_id": "coffee",
            "location": {"lat": 40.758, "lng": -73.9855}}),
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    let created = crate::helpers::send(
        &app,
        Method::POST,
        "/v1/checkins",
        &ada,
        Some(
            serde_json::json!({"venue_id": venue["id"], "visibility": "public",
            "location": {"lat": 40.758, "lng": -73.9855, "accuracy_m": 10}}),
        ),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let checkin = created.json::<Value>().await.unwrap()["checkin"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let feed_size = |token: String| {
        let app = &app;
        async move {
            app.get_json("/v1/feed", &token).await["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(feed_size(bob.access_token.clone()).await, 1);

    let call = |method: Method, path: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.client
                .request(method, app.url(&path))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let suspension = format!("/v1/admin/users/{}/suspension", ada.user_id);
    assert_eq!(
        call(Method::PUT, suspension.clone()).await,
        StatusCode::NO_CONTENT
    );
    // Her tokens die, nobody sees her, she cannot sign in; suspending twice changes nothing.
    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(nearby_names(&app, &bob.access_token).await.is_empty());
    // Her check-ins are hidden too: not in feeds, not by id, not on her page.
    assert_eq!(feed_size(bob.access_token.clone()).await, 0);
    let by_id = format!("/v1/checkins/{checkin}");
    assert_eq!(
        app.get(&by_id, &bob.access_token).await.status(),
        StatusCode::NOT_FOUND
    );
    let theirs = app
        .get(
            &format!("/v1/users/{}/checkins", ada.user_id),
            &bob.access_token,
        )
        .await;
    assert!(
        theirs.status() == StatusCode::NOT_FOUND
            || theirs.json::<Value>().await.unwrap()["items"] == serde_json::json!([])
    );
    assert_eq!(
        app.login("ada", &ada.password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let refreshed = app.refresh(&ada.refresh_token).await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        call(Method::PUT, suspension.clone()).await,
        StatusCode::NO_CONTENT
    );

    // Administrators still find her, marked suspended; pages follow the cursor.
    let listed = app.get_json("/v1/admin/users?q=AD", &admin).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["items"][0]["username"], "ada");
    assert_eq!(listed["items"][0]["email"], "ada@example.com");
    assert!(listed["items"][0]["suspended_at"].is_string(), "{listed}");
    let first = app.get_json("/v1/admin/users?limit=1", &admin).await;
    assert_eq!(first["items"][0]["username"], "ada");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_json(&format!("/v1/admin/users?limit=1&cursor={cursor}"), &admin)
        .await;
    assert_eq!(second["items"][0]["username"], "bob");
    assert!(second["items"][0]["suspended_at"].is_null());
    assert_eq!(second["next_cursor"], Value::Null);
    let foreign = app
        .get(&format!("/v1/admin/users?q=b&cursor={cursor}"), &admin)
        .await;
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
    let bad = app.get("/v1/admin/users?limit=0", &admin).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Reinstated: she signs in again and can share a position; old tokens stay dead.
    assert_eq!(
        call(Method::DELETE, suspension).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let login: Value = app.login("ada", &ada.password).await.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap();
    let response = app
        .client
        .put(app.url("/v1/me/location"))
        .bearer_auth(token)
        .json(&serde_json::json!({"location": {"lat": 40.758, "lng": -73.9855, "accuracy_m": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(nearby_names(&app, &bob.access_token).await, ["ada"]);
    assert_eq!(feed_size(bob.access_token.clone()).await, 1);
    assert_eq!(
        app.get(&by_id, &bob.access_token).await.status(),
        StatusCode::OK
    );

    // Deleted: gone for good.
    let path = format!("/v1/admin/users/{}", bob.user_id);
    assert_eq!(
        call(Method::DELETE, path.clone()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/v1/me", &bob.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(Method::DELETE, path).await, StatusCode::NOT_FOUND);
    assert!(nearby_names(&app, token).await.is_empty());
    let unknown = "/v1/admin/users/usr_0000000000000/suspension".to_owned();
    assert_eq!(call(Method::PUT, unknown).await, StatusCode::NOT_FOUND);
}
