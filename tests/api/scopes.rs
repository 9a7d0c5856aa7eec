//! Walks the server's route table: every route's documented scope decision (openapi.yaml's
//! `security`) is what the server enforces. A token lacking a route's scope gets 403
//! `insufficient_scope`, no token gets 401, and a public route needs none.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vicinity_api::{Access, route_access};

use crate::helpers::{Backend, Session, TestApp, claims_of, error_code, send, sign_with_kid};
use crate::on_both_backends;

on_both_backends!(every_route_enforces_the_scope_it_documents);

/// Ada's own login, re-signed with exactly `scope` (the server's key; her live login).
fn token_with_scope(app: &TestApp, who: &Session, scope: &str) -> String {
    let mut claims = claims_of(&who.access_token);
    claims["scope"] = scope.into();
    sign_with_kid(app, &claims, "at+jwt", Some(&app.kid))
}

async fn every_route_enforces_the_scope_it_documents(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let venue = send(
        &app,
        Method::POST,
        "/v1/venues",
        &ada,
        Some(json!({"name": "Blue Bottle", "category_id": "coffee",
            "location": {"lat": 40.758, "lng": -73.9855}})),
    )
    .await
    .json::<Value>()
    .await
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let checkin = send(
        &app,
        Method::POST,
        "/v1/checkins",
        &ada,
        Some(json!({"venue_id": venue, "location": {"lat": 40.758, "lng": -73.9855, "accuracy_m": 10}})),
    )
    .await
    .json::<Value>()
    .await
    .unwrap()["checkin"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let all_scopes = "profile checkins:read checkins:write friends:read friends:write \
        location:read location:write venues:write admin";

    let routes = route_access();
    assert!(
        routes.len() >= 40,
        "the route table looks truncated: {routes:?}"
    );
    let mut checked = 0;
    for (method, path, access) in routes {
        let access = access.unwrap_or_else(|| panic!("{method} {path} has no scope decision"));
        let url = path
            .replace("{user_id}", &bob.user_id)
            .replace("{venue_id}", &venue)
            .replace("{checkin_id}", &checkin)
            .replace("{client_id}", "some-app");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let call = |token: Option<String>| {
            let mut request = app.client.request(method.clone(), app.url(&url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
                request = request.json(&json!({}));
            }
            request.send()
        };
        let described = format!("{method} {path}");
        match access {
            Access::Public => {
                let response = call(None).await.unwrap();
                assert_ne!(response.status(), StatusCode::UNAUTHORIZED, "{described}");
                assert_ne!(response.status(), StatusCode::FORBIDDEN, "{described}");
            }
            Access::App => {
                let response = call(None).await.unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{described}");
                // A person's token, whatever its scopes, is not an app's own.
                let response = call(Some(token_with_scope(&app, &ada, all_scopes)))
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::FORBIDDEN, "{described}");
            }
            Access::Client => {
                let response = app
                    .client
                    .request(method.clone(), app.url(&url))
                    .form(&[("token", "any")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{described}");
            }
            Access::Bearer(scopes) => {
                let response = call(None).await.unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{described}");
                assert!(
                    response.headers().contains_key("www-authenticate"),
                    "{described}"
                );
                for scope in &scopes {
                    let without: String = all_scopes
                        .split(' ')
                        .filter(|s| s != scope)
                        .collect::<Vec<_>>()
                        .join(" ");
                    let response = call(Some(token_with_scope(&app, &ada, &without)))
                        .await
                        .unwrap();
                    let (status, code, _) = error_code(response).await;
                    assert_eq!(
                        (status, code.as_str()),
                        (StatusCode::FORBIDDEN, "insufficient_scope"),
                        "{described} without {scope}"
                    );
                }
                if scopes.is_empty() {
                    // Any valid token will do, even one without scopes.
                    let response = call(Some(token_with_scope(&app, &ada, ""))).await.unwrap();
                    assert_ne!(response.status(), StatusCode::UNAUTHORIZED, "{described}");
                    assert_ne!(response.status(), StatusCode::FORBIDDEN, "{described}");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 40);
}
