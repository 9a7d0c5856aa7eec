//! The authorization matrix: every route the server answers, called by every kind of caller,
//! and the status each one gets. A route added to the server without a row here fails the test,
//! and so does a row for a route that no longer exists.
//!
//! The callers stand in a small world around Ada, whose resources the paths name: her user id,
//! her friends-only check-in, a venue she added and the app she let in. Bob is her friend,
//! Carol a stranger with a friend request from her, Dave someone she blocked. Three tokens of
//! that app act for Ada with one scope set each, the app also holds a token of its own (a
//! person-less client-credentials grant), an administrator signs in with `admin`, and an
//! operator's tool holds an `admin` client-credentials token.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vicinity_domain::ClientType;

use crate::authorization::{REDIRECT, app_tokens};
use crate::helpers::{
    Backend, Session, TestApp, add_venue, befriend, claims_of, client_credentials_token,
    put_location, register_app, send, sign_with_kid,
};
use crate::on_both_backends;

on_both_backends!(every_route_answers_every_kind_of_caller_as_the_matrix_says);

/// Who calls, in the matrix's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// Ada herself, signed in to Vicinity (a first-party login).
    Owner,
    Friend,
    Stranger,
    /// Dave, whom Ada blocked.
    Blocked,
    /// The app Ada let in, acting for her with `profile` only.
    AppProfile,
    /// The app with the read scopes: profile, check-ins, friends, location.
    AppRead,
    /// The app with the write scopes: check-ins, friends, location, venues.
    AppWrite,
    /// The app's own client-credentials token: no person behind it.
    AppItself,
    /// A person the operator made an administrator, with a token scoped `admin`.
    Admin,
    /// An operator's tool: a client-credentials token with `admin`.
    Operator,
}

const CALLERS: [Caller; 11] = [
    Caller::Anonymous,
    Caller::Owner,
    Caller::Friend,
    Caller::Stranger,
    Caller::Blocked,
    Caller::AppProfile,
    Caller::AppRead,
    Caller::AppWrite,
    Caller::AppItself,
    Caller::Admin,
    Caller::Operator,
];

const ALL_PERSON_SCOPES: &str = "profile checkins:read checkins:write friends:read \
    friends:write location:read location:write venues:write";
const APP_SCOPE_SETS: [&str; 3] = [
    "profile",
    "profile checkins:read friends:read location:read",
    "checkins:write friends:write location:write venues:write",
];
const HERE: (f64, f64) = (40.758, -73.9855);

/// Ada's world, made afresh so that no row sees what another one did.
struct World {
    ada: Session,
    ada_name: String,
    bob: Session,
    carol: Session,
    dave: Session,
    venue: String,
    checkin: String,
    client_id: String,
    /// The app's tokens for Ada, one per `APP_SCOPE_SETS` entry.
    app_for_ada: Vec<String>,
    app_itself: String,
    admin: String,
}

static WORLDS: AtomicUsize = AtomicUsize::new(0);

impl World {
    async fn make(app: &TestApp, operator: &str) -> World {
        let n = WORLDS.fetch_add(1, Ordering::Relaxed);
        let ada_name = format!("ada{n}");
        let ada = app.register(&ada_name).await;
        let bob = app.register(&format!("bob{n}")).await;
        let carol = app.register(&format!("carol{n}")).await;
        let dave = app.register(&format!("dave{n}")).await;
        let root = app.register(&format!("root{n}")).await;
        befriend(app, &ada, &bob).await;
        let asked = send(
            app,
            Method::POST,
            "/v1/me/friend-requests",
            &ada,
            Some(json!({"user_id": carol.user_id})),
        )
        .await;
        assert_eq!(asked.status(), StatusCode::CREATED);
        let path = format!("/v1/me/blocks/{}", dave.user_id);
        let blocked = send(app, Method::PUT, &path, &ada, None).await;
        assert_eq!(blocked.status(), StatusCode::NO_CONTENT);
        let here = vicinity_geo::Point::new(HERE.0, HERE.1).unwrap();
        for who in [&ada, &bob, &carol, &dave] {
            assert_eq!(put_location(app, who, here).await.status(), StatusCode::OK);
        }
        let venue = add_venue(app, &ada, "Blue Bottle", HERE).await;
        let created = send(
            app,
            Method::POST,
            "/v1/checkins",
            &ada,
            Some(json!({"venue_id": venue, "visibility": "friends",
                "location": {"lat": HERE.0, "lng": HERE.1, "accuracy_m": 10}})),
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let checkin = created.json::<Value>().await.unwrap()["checkin"]["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let (client_id, _) = register_app(app, ClientType::Public, &[REDIRECT], ALL_PERSON_SCOPES);
        let granted = app_tokens(app, &ada, &ada_name, &client_id, ALL_PERSON_SCOPES).await;
        // Narrower access tokens of the same grant, one refresh per scope set.
        let mut refresh_token = granted["refresh_token"].as_str().unwrap().to_owned();
        let mut app_for_ada = Vec::new();
        for scope in APP_SCOPE_SETS {
            let response = app
                .post_form(
                    "/oauth/token",
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &refresh_token),
                        ("client_id", &client_id),
                        ("scope", scope),
                    ],
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "narrowing to {scope}");
            let tokens: Value = response.json().await.unwrap();
            assert_eq!(tokens["scope"], scope);
            app_for_ada.push(tokens["access_token"].as_str().unwrap().to_owned());
            refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
        }
        let app_itself = client_credentials_token(app, ALL_PERSON_SCOPES).await;

        let path = format!("/v1/admin/users/{}/admin", root.user_id);
        let promoted = app
            .client
            .put(app.url(&path))
            .bearer_auth(operator)
            .send()
            .await
            .unwrap();
        assert_eq!(promoted.status(), StatusCode::NO_CONTENT);
        // What `vicinity admin token --scope admin` hands an administrator: their login's
        // claims with `admin` as the scope.
        let mut claims = claims_of(&root.access_token);
        claims["scope"] = "admin".into();
        let admin = sign_with_kid(app, &claims, "at+jwt", Some(&app.kid));

        World {
            ada,
            ada_name,
            bob,
            carol,
            dave,
            venue,
            checkin,
            client_id,
            app_for_ada,
            app_itself,
            admin,
        }
    }

    /// Makes `fresh` anew as Ada (or, for an app nobody let in, as the operator would): its id.
    async fn renew(&self, app: &TestApp, fresh: Fresh) -> String {
        let ada = &self.ada;
        match fresh {
            Fresh::Nothing | Fresh::World => String::new(),
            Fresh::RequestToCarol => {
                let body = json!({"user_id": self.carol.user_id});
                let response =
                    send(app, Method::POST, "/v1/me/friend-requests", ada, Some(body)).await;
                assert!(
                    [StatusCode::CREATED, StatusCode::OK].contains(&response.status()),
                    "{}",
                    response.text().await.unwrap()
                );
                self.carol.user_id.clone()
            }
            Fresh::BlockOnDave => {
                let path = format!("/v1/me/blocks/{}", self.dave.user_id);
                let response = send(app, Method::PUT, &path, ada, None).await;
                assert_eq!(response.status(), StatusCode::NO_CONTENT);
                self.dave.user_id.clone()
            }
            Fresh::CheckIn => {
                let body = json!({"venue_id": self.venue, "visibility": "friends",
                    "location": {"lat": HERE.0, "lng": HERE.1, "accuracy_m": 10}});
                let response = send(app, Method::POST, "/v1/checkins", ada, Some(body)).await;
                assert_eq!(response.status(), StatusCode::CREATED);
                response.json::<Value>().await.unwrap()["checkin"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
            Fresh::Venue => add_venue(app, ada, "Joe's", HERE).await,
            Fresh::ConsentedApp => {
                let (id, _) = register_app(app, ClientType::Public, &[REDIRECT], ALL_PERSON_SCOPES);
                app_tokens(app, ada, &self.ada_name, &id, "profile").await;
                id
            }
            Fresh::App => register_app(app, ClientType::Public, &[REDIRECT], "profile").0,
            Fresh::Person => app.register(&fresh_name()).await.user_id,
        }
    }

    fn token(&self, caller: Caller, operator: &str) -> Option<String> {
        let token: &str = match caller {
            Caller::Anonymous => return None,
            Caller::Owner => &self.ada.access_token,
            Caller::Friend => &self.bob.access_token,
            Caller::Stranger => &self.carol.access_token,
            Caller::Blocked => &self.dave.access_token,
            Caller::AppProfile => &self.app_for_ada[0],
            Caller::AppRead => &self.app_for_ada[1],
            Caller::AppWrite => &self.app_for_ada[2],
            Caller::AppItself => &self.app_itself,
            Caller::Admin => &self.admin,
            Caller::Operator => operator,
        };
        Some(token.to_owned())
    }
}

/// A request body.
enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

/// What a row needs made afresh before each caller's call, because a caller that succeeds
/// would use it up for the next; its id is handed to the row's call. Reads share one world;
/// every other row gets a world of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Nothing,
    /// Ada's pending friend request to Carol (sent again if it was cancelled).
    RequestToCarol,
    /// Ada's block on Dave (put again if it was lifted).
    BlockOnDave,
    /// A friends-only check-in of Ada's.
    CheckIn,
    /// A venue Ada added.
    Venue,
    /// An app Ada let in, with the full person scopes.
    ConsentedApp,
    /// An app that nobody let in.
    App,
    /// A person with no ties to anyone.
    Person,
    /// A whole new world, for callers that delete themselves.
    World,
}

/// One route: how to call it (the path with its query, and the body, given the world and the
/// fresh target's id), and the status each caller gets, in `CALLERS` order.
struct Row {
    method: &'static str,
    path: &'static str,
    fresh: Fresh,
    call: fn(&World, &str) -> (String, Body),
    expect: [u16; 11],
}

const fn row(
    method: &'static str,
    path: &'static str,
    fresh: Fresh,
    call: fn(&World, &str) -> (String, Body),
    expect: [u16; 11],
) -> Row {
    Row {
        method,
        path,
        fresh,
        call,
        expect,
    }
}

fn get(path: &str) -> (String, Body) {
    (path.to_owned(), Body::None)
}

fn fresh_name() -> String {
    format!("new{}", WORLDS.fetch_add(1, Ordering::Relaxed))
}

/// Every route, and the status each caller gets, in `CALLERS` order: anonymous, Ada herself, her
/// friend, a stranger, the person she blocked, her app with `profile`, with the read scopes and
/// with the write scopes, the app's own token, an administrator, an operator's tool.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    row("post", "/v1/auth/register", Fresh::Nothing, |_, _| {
        let name = fresh_name();
        ("/v1/auth/register".into(), Body::Json(json!({"username": name,
            "email": format!("{name}@example.com"), "password": "correct horse battery"})))
    },                  [201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 201]),
    row("post", "/v1/auth/login", Fresh::Nothing, |w, _| ("/v1/auth/login".into(),
        Body::Json(json!({"username": w.ada_name, "password": w.ada.password}))),
                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    row("get", "/v1/me", Fresh::Nothing, |_, _| get("/v1/me"),
                        [401, 200, 200, 200, 200, 200, 200, 403, 403, 403, 403]),
    row("patch", "/v1/me", Fresh::Nothing, |_, _| ("/v1/me".into(), Body::Json(json!({"bio": "Coffee."}))),
                        [401, 200, 200, 200, 200, 200, 200, 403, 403, 403, 403]),
    row("delete", "/v1/me", Fresh::World, |_, _| get("/v1/me"),
                        [401, 204, 204, 204, 204, 403, 403, 403, 403, 403, 403]),
    row("get", "/v1/users/search", Fresh::Nothing, |w, _| get(&format!("/v1/users/search?q={}", w.ada_name)),
                        [401, 200, 200, 200, 200, 200, 200, 403, 403, 403, 403]),
    row("get", "/v1/users/{user_id}", Fresh::Nothing, |w, _| get(&format!("/v1/users/{}", w.ada.user_id)),
                        [401, 200, 200, 200, 404, 200, 200, 403, 403, 403, 403]),
    row("post", "/v1/me/friend-requests", Fresh::Nothing, |w, _| ("/v1/me/friend-requests".into(),
        Body::Json(json!({"user_id": w.ada.user_id}))),
                        [401, 422, 200, 200, 404, 403, 403, 422, 403, 403, 403]),
    row("get", "/v1/me/friend-requests", Fresh::Nothing, |_, _| get("/v1/me/friend-requests"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("post", "/v1/me/friend-requests/{user_id}/accept", Fresh::Nothing,
        |w, _| (format!("/v1/me/friend-requests/{}/accept", w.ada.user_id), Body::None),
                        [401, 404, 404, 204, 404, 403, 403, 404, 403, 403, 403]),
    row("post", "/v1/me/friend-requests/{user_id}/decline", Fresh::Nothing,
        |w, _| (format!("/v1/me/friend-requests/{}/decline", w.ada.user_id), Body::None),
                        [401, 404, 404, 204, 404, 403, 403, 404, 403, 403, 403]),
    // Cancelling the request Ada sent to Carol: only Ada (and her app with friends:write) has it.
    row("delete", "/v1/me/friend-requests/{user_id}", Fresh::RequestToCarol,
        |w, _| get(&format!("/v1/me/friend-requests/{}", w.carol.user_id)),
                        [401, 204, 404, 404, 404, 403, 403, 204, 403, 403, 403]),
    row("put", "/v1/me/location", Fresh::Nothing, |_, _| ("/v1/me/location".into(),
        Body::Json(json!({"location": {"lat": HERE.0, "lng": HERE.1, "accuracy_m": 10}}))),
                        [401, 200, 200, 200, 200, 403, 403, 200, 403, 403, 403]),
    row("delete", "/v1/me/location", Fresh::Nothing, |_, _| get("/v1/me/location"),
                        [401, 204, 204, 204, 204, 403, 403, 204, 403, 403, 403]),
    row("get", "/v1/me/nearby", Fresh::Nothing, |_, _| get("/v1/me/nearby?radius=2000"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("get", "/v1/me/nearby/stream", Fresh::Nothing, |_, _| get("/v1/me/nearby/stream?radius=2000"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("get", "/v1/me/location/access-log", Fresh::Nothing, |_, _| get("/v1/me/location/access-log"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("get", "/v1/me/export", Fresh::Nothing, |_, _| get("/v1/me/export"),
                        [401, 200, 200, 200, 200, 403, 403, 403, 403, 403, 403]),
    row("get", "/v1/me/apps", Fresh::Nothing, |_, _| get("/v1/me/apps"),
                        [401, 200, 200, 200, 200, 403, 403, 403, 403, 403, 403]),
    row("delete", "/v1/me/apps/{client_id}", Fresh::ConsentedApp,
        |_, app| get(&format!("/v1/me/apps/{app}")),
                        [401, 204, 404, 404, 404, 403, 403, 403, 403, 403, 403]),
    row("put", "/v1/app/webhook", Fresh::Nothing, |_, _| ("/v1/app/webhook".into(),
        Body::Json(json!({"url": "https://hooks.example.com/vicinity"}))),
                        [401, 403, 403, 403, 403, 403, 403, 403, 200, 403, 403]),
    row("get", "/v1/app/webhook", Fresh::Nothing, |_, _| get("/v1/app/webhook"),
                        [401, 403, 403, 403, 403, 403, 403, 403, 404, 403, 404]),
    row("delete", "/v1/app/webhook", Fresh::Nothing, |_, _| get("/v1/app/webhook"),
                        [401, 403, 403, 403, 403, 403, 403, 403, 404, 403, 404]),
    row("get", "/v1/app/webhook/deliveries", Fresh::Nothing, |_, _| get("/v1/app/webhook/deliveries"),
                        [401, 403, 403, 403, 403, 403, 403, 403, 200, 403, 200]),
    row("post", "/v1/admin/clients", Fresh::Nothing, |_, _| ("/v1/admin/clients".into(),
        Body::Json(json!({"name": "Night Owl", "type": "confidential", "scopes": "profile"}))),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 201, 201]),
    row("get", "/v1/admin/clients", Fresh::Nothing, |_, _| get("/v1/admin/clients"),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200]),
    row("delete", "/v1/admin/clients/{client_id}", Fresh::App,
        |_, app| get(&format!("/v1/admin/clients/{app}")),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 204, 204]),
    row("get", "/v1/admin/users", Fresh::Nothing, |_, _| get("/v1/admin/users"),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200]),
    row("put", "/v1/admin/users/{user_id}/admin", Fresh::Nothing,
        |w, _| get(&format!("/v1/admin/users/{}/admin", w.ada.user_id)),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 204, 204]),
    row("delete", "/v1/admin/users/{user_id}/admin", Fresh::Nothing,
        |w, _| get(&format!("/v1/admin/users/{}/admin", w.ada.user_id)),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 204, 204]),
    row("put", "/v1/admin/users/{user_id}/suspension", Fresh::Nothing,
        |w, _| get(&format!("/v1/admin/users/{}/suspension", w.ada.user_id)),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 204, 204]),
    row("delete", "/v1/admin/users/{user_id}/suspension", Fresh::Nothing,
        |w, _| get(&format!("/v1/admin/users/{}/suspension", w.ada.user_id)),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 204, 204]),
    row("delete", "/v1/admin/users/{user_id}", Fresh::Person,
        |_, person| get(&format!("/v1/admin/users/{person}")),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 204, 204]),
    row("get", "/v1/admin/venues/{venue_id}/stats", Fresh::Nothing,
        |w, _| get(&format!("/v1/admin/venues/{}/stats", w.venue)),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200]),
    row("get", "/v1/admin/stats/top-venues", Fresh::Nothing,
        |_, _| get(&format!("/v1/admin/stats/top-venues?ll={},{}", HERE.0, HERE.1)),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200]),
    row("get", "/v1/admin/stats/cells", Fresh::Nothing,
        |_, _| get("/v1/admin/stats/cells?bbox=40.7,-74.0,40.8,-73.9"),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200]),
    row("get", "/v1/admin/stats/overview", Fresh::Nothing, |_, _| get("/v1/admin/stats/overview"),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 200, 200]),
    row("post", "/v1/checkins", Fresh::Nothing, |w, _| ("/v1/checkins".into(), Body::Json(json!({
        "venue_id": w.venue, "location": {"lat": HERE.0, "lng": HERE.1, "accuracy_m": 10}}))),
                        [401, 201, 201, 201, 201, 403, 403, 201, 403, 403, 403]),
    row("get", "/v1/checkins/{checkin_id}", Fresh::Nothing,
        |w, _| get(&format!("/v1/checkins/{}", w.checkin)),
                        [401, 200, 200, 404, 404, 403, 200, 403, 403, 403, 403]),
    row("delete", "/v1/checkins/{checkin_id}", Fresh::CheckIn,
        |_, checkin| get(&format!("/v1/checkins/{checkin}")),
                        [401, 204, 404, 404, 404, 403, 403, 204, 403, 403, 403]),
    row("get", "/v1/me/checkins", Fresh::Nothing, |_, _| get("/v1/me/checkins"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("get", "/v1/feed", Fresh::Nothing, |_, _| get("/v1/feed"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("get", "/v1/users/{user_id}/checkins", Fresh::Nothing,
        |w, _| get(&format!("/v1/users/{}/checkins", w.ada.user_id)),
                        [401, 200, 200, 200, 404, 403, 200, 403, 403, 403, 403]),
    row("get", "/v1/me/friends", Fresh::Nothing, |_, _| get("/v1/me/friends"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("delete", "/v1/me/friends/{user_id}", Fresh::Nothing,
        |w, _| get(&format!("/v1/me/friends/{}", w.ada.user_id)),
                        [401, 404, 204, 404, 404, 403, 403, 404, 403, 403, 403]),
    row("get", "/v1/me/blocks", Fresh::Nothing, |_, _| get("/v1/me/blocks"),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("put", "/v1/me/blocks/{user_id}", Fresh::Nothing,
        |w, _| get(&format!("/v1/me/blocks/{}", w.ada.user_id)),
                        [401, 422, 204, 204, 204, 403, 403, 422, 403, 403, 403]),
    // Lifting the block Ada put on Dave.
    row("delete", "/v1/me/blocks/{user_id}", Fresh::BlockOnDave,
        |w, _| get(&format!("/v1/me/blocks/{}", w.dave.user_id)),
                        [401, 204, 404, 404, 404, 403, 403, 204, 403, 403, 403]),
    row("get", "/v1/categories", Fresh::Nothing, |_, _| get("/v1/categories"),
                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    row("post", "/v1/venues", Fresh::Nothing, |_, _| ("/v1/venues".into(), Body::Json(json!({
        "name": "Joe's", "category_id": "coffee", "allow_duplicate": true,
        "location": {"lat": HERE.0, "lng": HERE.1}}))),
                        [401, 201, 201, 201, 201, 403, 403, 201, 403, 403, 403]),
    row("get", "/v1/venues/search", Fresh::Nothing,
        |_, _| get(&format!("/v1/venues/search?ll={},{}", HERE.0, HERE.1)),
                        [401, 200, 200, 200, 200, 200, 200, 200, 403, 200, 403]),
    row("get", "/v1/venues/{venue_id}/here-now", Fresh::Nothing,
        |w, _| get(&format!("/v1/venues/{}/here-now", w.venue)),
                        [401, 200, 200, 200, 200, 403, 200, 403, 403, 403, 403]),
    row("get", "/v1/venues/{venue_id}", Fresh::Nothing, |w, _| get(&format!("/v1/venues/{}", w.venue)),
                        [401, 200, 200, 200, 200, 200, 200, 200, 403, 200, 403]),
    row("patch", "/v1/venues/{venue_id}", Fresh::Nothing,
        |w, _| (format!("/v1/venues/{}", w.venue), Body::Json(json!({"phone": "+1 212 555 0100"}))),
                        [401, 200, 403, 403, 403, 403, 403, 200, 403, 403, 403]),
    row("delete", "/v1/venues/{venue_id}", Fresh::Venue,
        |_, venue| get(&format!("/v1/venues/{venue}")),
                        [401, 403, 403, 403, 403, 403, 403, 403, 403, 204, 204]),
    row("get", "/oauth/authorize", Fresh::Nothing, |w, _| get(&format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
         &scope=profile&state=s", w.client_id)),
                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    // A form without the page's anti-forgery token.
    row("post", "/oauth/authorize", Fresh::Nothing, |w, _| ("/oauth/authorize".into(), Body::Form(vec![
        ("action", "approve".into()), ("client_id", w.client_id.clone())])),
                        [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 403]),
    // A bearer token is no client authentication: the token endpoint wants the client's own.
    row("post", "/oauth/token", Fresh::Nothing, |_, _| ("/oauth/token".into(),
        Body::Form(vec![("grant_type", "client_credentials".into())])),
                        [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    row("post", "/oauth/revoke", Fresh::Nothing, |w, _| ("/oauth/revoke".into(),
        Body::Form(vec![("token", w.app_for_ada[1].clone())])),
                        [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    row("post", "/oauth/introspect", Fresh::Nothing, |w, _| ("/oauth/introspect".into(),
        Body::Form(vec![("token", w.ada.access_token.clone())])),
                        [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    row("get", "/.well-known/jwks.json", Fresh::Nothing, |_, _| get("/.well-known/jwks.json"),
                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    row("get", "/.well-known/oauth-authorization-server", Fresh::Nothing,
        |_, _| get("/.well-known/oauth-authorization-server"),
                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    row("get", "/healthz", Fresh::Nothing, |_, _| get("/healthz"), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    row("get", "/readyz", Fresh::Nothing, |_, _| get("/readyz"), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    row("get", "/metrics", Fresh::Nothing, |_, _| get("/metrics"), [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    row("get", "/openapi.yaml", Fresh::Nothing, |_, _| get("/openapi.yaml"),
                        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
];

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Body,
    token: Option<String>,
) -> StatusCode {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request = match body {
        Body::None => request,
        Body::Json(value) => request.json(&value),
        Body::Form(fields) => request.form(&fields),
    };
    // The stream's status arrives with its headers; its body never ends, so it is not read.
    request.send().await.unwrap().status()
}

async fn every_route_answers_every_kind_of_caller_as_the_matrix_says(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        // Hundreds of sign-ups, sign-ins and requests from one address within a minute.
        config.login_throttle.per_address_burst = 100_000;
        config.login_throttle.per_account_burst = 100;
        config.request_limit_per_address = None;
        config.request_limit_per_token = None;
    })
    .await;
    let operator = client_credentials_token(&app, "admin").await;

    // Every route has exactly one row, and every row a route.
    let routes: Vec<(&str, &str)> = vicinity_api::ROUTES.to_vec();
    for (method, path) in &routes {
        let rows = MATRIX
            .iter()
            .filter(|row| (row.method, row.path) == (*method, *path))
            .count();
        assert_eq!(
            rows, 1,
            "{method} {path}: {rows} rows in the matrix, not one"
        );
    }
    for row in MATRIX {
        assert!(
            routes.contains(&(row.method, row.path)),
            "{} {}: no such route",
            row.method,
            row.path
        );
    }

    let reads = World::make(&app, &operator).await;
    let mut wrong = Vec::new();
    for row in MATRIX {
        let own;
        let world = if row.method == "get" {
            &reads
        } else {
            own = World::make(&app, &operator).await;
            &own
        };
        let mut got = [0u16; 11];
        for (column, caller) in CALLERS.into_iter().enumerate() {
            let renewed;
            let (world, target) = match row.fresh {
                Fresh::World => {
                    renewed = World::make(&app, &operator).await;
                    (&renewed, String::new())
                }
                fresh => (world, world.renew(&app, fresh).await),
            };
            let (path, body) = (row.call)(world, &target);
            got[column] = call(
                &app,
                row.method,
                &path,
                body,
                world.token(caller, &operator),
            )
            .await
            .as_u16();
        }
        if got != row.expect {
            wrong.push(format!(
                "{} {}\n    expected {:?}\n    got      {:?}",
                row.method, row.path, row.expect, got
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} routes answer otherwise than the matrix says (columns: {CALLERS:?}):\n{}",
        wrong.len(),
        MATRIX.len(),
        wrong.join("\n")
    );
}
