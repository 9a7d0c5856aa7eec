//! Check-ins: creating them (idempotently, with friends nearby), who may read them, deleting,
//! and the input they refuse.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vicinity_geo::Point;

use crate::helpers::{
    Backend, Session, TestApp, add_venue, befriend, error_code, error_fields, put_location, send,
};
use crate::on_both_backends;

on_both_backends!(
    a_check_in_answers_with_friends_nearby_and_sets_presence,
    each_visibility_shows_to_exactly_the_right_people,
    an_idempotency_key_makes_retries_safe_even_when_concurrent,
    bad_check_ins_are_refused_and_write_nothing,
    offline_check_ins_are_kept_without_moving_presence,
    only_the_owner_deletes_a_check_in,
    feeds_lists_here_now_and_nearby_honour_visibility_and_blocks,
    the_access_log_and_the_export_tell_a_person_everything,
    one_answer_logs_every_friend_it_shows,
    people_checking_in_at_once_each_get_their_own_answer,
);

const VENUE_AT: (f64, f64) = (40.7580, -73.9855);

fn venue_point() -> Point {
    Point::new(VENUE_AT.0, VENUE_AT.1).unwrap()
}

fn checkin_body(venue: &str, visibility: &str) -> Value {
    json!({"venue_id": venue, "location": {"lat": VENUE_AT.0 + 0.0003, "lng": VENUE_AT.1, "accuracy_m": 20},
        "shout": "Flat white", "visibility": visibility})
}

async fn check_in(app: &TestApp, who: &Session, venue: &str, visibility: &str) -> Value {
    let response = send(
        app,
        Method::POST,
        "/v1/checkins",
        who,
        Some(checkin_body(venue, visibility)),
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn my_checkin_count(app: &TestApp, who: &Session) -> usize {
    app.get_json("/v1/me/checkins", &who.access_token).await["items"]
        .as_array()
        .unwrap()
        .len()
}

async fn a_check_in_answers_with_friends_nearby_and_sets_presence(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    befriend(&app, &ada, &bob).await;
    let venue = add_venue(&app, &ada, "Blue Bottle", VENUE_AT).await;
    let near = venue_point().destination(180.0, 300.0);
    let body = json!({"location": {"lat": near.lat(), "lng": near.lng()}});
    assert_eq!(
        send(&app, Method::PUT, "/v1/me/location", &bob, Some(body))
            .await
            .status(),
        StatusCode::OK
    );

    let response = send(
        &app,
        Method::POST,
        "/v1/checkins",
        &ada,
        Some(checkin_body(&venue, "friends")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let checkin = &created["checkin"];
    assert_eq!(
        location,
        format!("/v1/checkins/{}", checkin["id"].as_str().unwrap())
    );
    assert_eq!(checkin["venue"]["id"], venue.as_str());
    assert_eq!(checkin["user"]["username"], "ada");
    assert_eq!(checkin["shout"], "Flat white");
    assert_eq!(checkin["visibility"], "friends");
    assert_eq!(
        checkin["location"]["accuracy_m"], 20.0,
        "the owner sees the device position"
    );
    let nearby = created["nearby_friends"].as_array().unwrap();
    assert_eq!(nearby.len(), 1);
    assert_eq!(nearby[0]["user"]["username"], "bob");
    assert_eq!(nearby[0]["precision"], "neighborhood");
    // The check-in is Ada's presence now: Bob sees her.
    let seen = app.get_json("/v1/me/nearby", &bob.access_token).await;
    assert_eq!(seen["items"][0]["user"]["username"], "ada");
    // Her own list has it; a friend reading it sees no device position.
    let mine = app.get_json("/v1/me/checkins", &ada.access_token).await;
    assert_eq!(mine["items"][0]["id"], checkin["id"]);
    let read = app.get_json(&location, &bob.access_token).await;
    assert_eq!(read["id"], checkin["id"]);
    assert!(read.get("location").is_none(), "{read}");
    // The default visibility is the owner's setting.
    let body = json!({"default_visibility": "private"});
    assert_eq!(
        send(&app, Method::PATCH, "/v1/me", &ada, Some(body))
            .await
            .status(),
        StatusCode::OK
    );
    let mut request = checkin_body(&venue, "public");
    request.as_object_mut().unwrap().remove("visibility");
    let created: Value = send(&app, Method::POST, "/v1/checkins", &ada, Some(request))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["checkin"]["visibility"], "private");
}

async fn each_visibility_shows_to_exactly_the_right_people(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let friend = app.register("friend").await;
    let stranger = app.register("stranger").await;
    let blocked = app.register("blocked").await;
    let blocker = app.register("blocker").await;
    befriend(&app, &owner, &friend).await;
    // A friend who is then blocked, and a stranger who blocks the owner.
    befriend(&app, &owner, &blocked).await;
    let path = format!("/v1/me/blocks/{}", blocked.user_id);
    assert_eq!(
        send(&app, Method::PUT, &path, &owner, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let path = format!("/v1/me/blocks/{}", owner.user_id);
    assert_eq!(
        send(&app, Method::PUT, &path, &blocker, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let venue = add_venue(&app, &owner, "Blue Bottle", VENUE_AT).await;

    for visibility in ["public", "friends", "private"] {
        let created = check_in(&app, &owner, &venue, visibility).await;
        let path = format!(
            "/v1/checkins/{}",
            created["checkin"]["id"].as_str().unwrap()
        );
        for (who, name) in [
            (&owner, "self"),
            (&friend, "friend"),
            (&stranger, "stranger"),
            (&blocked, "blocked"),
            (&blocker, "blocker"),
        ] {
            let expected = match (visibility, name) {
                (_, "self") => StatusCode::OK,
                ("public", "friend" | "stranger") => StatusCode::OK,
                ("friends", "friend") => StatusCode::OK,
                _ => StatusCode::NOT_FOUND,
            };
            let response = send(&app, Method::GET, &path, who, None).await;
            assert_eq!(
                response.status(),
                expected,
                "{visibility} check-in read by {name}"
            );
        }
    }
    // A missing check-in looks the same as a hidden one.
    let (status, code, _) = error_code(
        send(
            &app,
            Method::GET,
            "/v1/checkins/chk_0000000000001",
            &friend,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

async fn an_idempotency_key_makes_retries_safe_even_when_concurrent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let venue = add_venue(&app, &ada, "Blue Bottle", VENUE_AT).await;
    let post = |key: &str, body: Value| {
        app.client
            .post(app.url("/v1/checkins"))
            .bearer_auth(&ada.access_token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = post("key-1", checkin_body(&venue, "friends"))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().await.unwrap();
    let again = post("key-1", checkin_body(&venue, "friends"))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.text().await.unwrap(),
        first_body,
        "the first answer, byte for byte"
    );
    assert_eq!(my_checkin_count(&app, &ada).await, 1);
    // The same key with another body is refused, and writes nothing.
    let (status, code, _) =
        error_code(post("key-1", checkin_body(&venue, "public")).await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    assert_eq!(my_checkin_count(&app, &ada).await, 1);
    // Eight concurrent requests with one new key: one check-in, one answer.
    let responses = futures_util::future::join_all(
        (0..8).map(|_| post("key-2", checkin_body(&venue, "friends"))),
    )
    .await;
    let mut bodies = Vec::new();
    for response in responses {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        bodies.push(response.text().await.unwrap());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert_eq!(my_checkin_count(&app, &ada).await, 2);
    // A malformed key is named.
    let (status, _, body) = error_code(
        post(&"k".repeat(300), checkin_body(&venue, "friends"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_fields(&body), ["Idempotency-Key"]);
}

async fn bad_check_ins_are_refused_and_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let venue = add_venue(&app, &ada, "Blue Bottle", VENUE_AT).await;
    let with = |field: &str, value: Value| {
        let mut body = checkin_body(&venue, "friends");
        body[field] = value;
        body
    };
    let far = venue_point().destination(0.0, 2_000.0);
    let now = chrono::Utc::now();
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            with("venue_id", json!("ven_0000000000001")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            with("venue_id", json!("usr_0000000000001")),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            with("venue_id", json!("'; DROP TABLE venues; --")),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            with(
                "location",
                json!({"lat": far.lat(), "lng": far.lng(), "accuracy_m": 50}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_far_from_venue",
        ),
        (
            with("location", json!({"lat": 95, "lng": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            with("shout", json!("x".repeat(141))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            with("visibility", json!("secret")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            with(
                "created_at",
                json!((now + chrono::Duration::hours(1)).to_rfc3339()),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            with(
                "created_at",
                json!((now - chrono::Duration::days(8)).to_rfc3339()),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            with("created_at", json!("yesterday")),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
    ];
    for (body, status, code) in cases {
        let response = send(&app, Method::POST, "/v1/checkins", &ada, Some(body.clone())).await;
        let (got, got_code, error) = error_code(response).await;
        assert_eq!((got, got_code.as_str()), (status, code), "{body}: {error}");
    }
    // A huge accuracy does not excuse a distant device.
    let body = with(
        "location",
        json!({"lat": far.lat(), "lng": far.lng(), "accuracy_m": 9_000}),
    );
    let (status, code, _) =
        error_code(send(&app, Method::POST, "/v1/checkins", &ada, Some(body)).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_far_from_venue")
    );
    assert_eq!(my_checkin_count(&app, &ada).await, 0);
    let response = send(&app, Method::GET, "/v1/me/nearby", &ada, None).await;
    assert_eq!(
        response.status(),
        StatusCode::CONFLICT,
        "no presence was set either"
    );
}

async fn offline_check_ins_are_kept_without_moving_presence(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let venue = add_venue(&app, &ada, "Blue Bottle", VENUE_AT).await;
    let mut body = checkin_body(&venue, "friends");
    let two_days_ago = chrono::Utc::now() - chrono::Duration::days(2);
    body["created_at"] = json!(two_days_ago.to_rfc3339());
    let created: Value = send(&app, Method::POST, "/v1/checkins", &ada, Some(body))
        .await
        .json()
        .await
        .unwrap();
    let at: chrono::DateTime<chrono::Utc> = created["checkin"]["created_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((at - two_days_ago).num_milliseconds().abs() < 1);
    let (status, code, _) =
        error_code(send(&app, Method::GET, "/v1/me/nearby", &ada, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "location_unknown"),
        "an old check-in is not a presence"
    );
    // Newest first: a check-in now comes before it.
    check_in(&app, &ada, &venue, "friends").await;
    let mine = app.get_json("/v1/me/checkins", &ada.access_token).await;
    assert_eq!(mine["items"][1]["id"], created["checkin"]["id"]);
}

async fn only_the_owner_deletes_a_check_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let venue = add_venue(&app, &ada, "Blue Bottle", VENUE_AT).await;
    let created = check_in(&app, &ada, &venue, "public").await;
    let path = format!(
        "/v1/checkins/{}",
        created["checkin"]["id"].as_str().unwrap()
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, &bob, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::GET, &path, &bob, None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, &ada, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, Method::GET, &path, &ada, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, &ada, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(my_checkin_count(&app, &ada).await, 0);
}

async fn feeds_lists_here_now_and_nearby_honour_visibility_and_blocks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let friend = app.register("friend").await;
    let stranger = app.register("stranger").await;
    let blocked = app.register("blocked").await;
    let blocker = app.register("blocker").await;
    befriend(&app, &owner, &friend).await;
    befriend(&app, &owner, &blocked).await;
    let path = format!("/v1/me/blocks/{}", blocked.user_id);
    assert_eq!(
        send(&app, Method::PUT, &path, &owner, None).await.status(),
        StatusCode::NO_CONTENT
    );
    let path = format!("/v1/me/blocks/{}", owner.user_id);
    assert_eq!(
        send(&app, Method::PUT, &path, &blocker, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let venue = add_venue(&app, &owner, "Blue Bottle", VENUE_AT).await;
    let near = venue_point().destination(90.0, 150.0);
    for who in [&friend, &stranger, &blocked, &blocker] {
        let body = json!({"location": {"lat": near.lat(), "lng": near.lng()}});
        assert_eq!(
            send(&app, Method::PUT, "/v1/me/location", who, Some(body))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let everyone = [
        (&owner, "self"),
        (&friend, "friend"),
        (&stranger, "stranger"),
        (&blocked, "blocked"),
        (&blocker, "blocker"),
    ];
    let shouts = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["visibility"].as_str().unwrap().to_owned())
            .collect()
    };

    for visibility in ["public", "friends", "private"] {
        check_in(&app, &owner, &venue, visibility).await;
        // Here-now and nearby follow the check-in that set the owner's presence: this one.
        for (who, name) in everyone {
            let visible = matches!(
                (visibility, name),
                (_, "self") | ("public", "friend" | "stranger") | ("friends", "friend")
            );
            let here = app
                .get_json(&format!("/v1/venues/{venue}/here-now"), &who.access_token)
                .await;
            let names: Vec<&str> = here["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["user"]["username"].as_str().unwrap())
                .collect();
            assert_eq!(
                names.contains(&"owner"),
                visible,
                "here-now of a {visibility} check-in for {name}: {here}"
            );
        }
        let seen = app.get_json("/v1/me/nearby", &friend.access_token).await;
        assert_eq!(seen["items"][0]["user"]["username"], "owner");
        assert_eq!(
            seen["items"][0].get("venue").is_some(),
            visibility != "private",
            "nearby venue of a {visibility} check-in: {seen}"
        );
    }
    // Presence the other way: everyone stands near the owner, the owner sees only the friend
    // (not the stranger, nor anyone across a block), in the list and in the stream.
    let page = app.get_json("/v1/me/nearby", &owner.access_token).await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["friend"], "{page}");
    for (who, name) in everyone.iter().skip(2) {
        let page = app.get_json("/v1/me/nearby", &who.access_token).await;
        assert_eq!(
            page["items"],
            json!([]),
            "{name} sees nobody nearby: {page}"
        );
    }
    // Lists: the owner's page, and the feed.
    let user_path = format!("/v1/users/{}/checkins", owner.user_id);
    for (who, name) in everyone {
        let response = send(&app, Method::GET, &user_path, who, None).await;
        let expected: &[&str] = match name {
            "self" => &["private", "friends", "public"],
            "friend" => &["friends", "public"],
            "stranger" => &["public"],
            _ => {
                assert_eq!(
                    response.status(),
                    StatusCode::NOT_FOUND,
                    "{name} reads the owner's list"
                );
                continue;
            }
        };
        let page: Value = response.json().await.unwrap();
        assert_eq!(shouts(&page), expected, "{name} reads the owner's list");
        let feed = app.get_json("/v1/feed", &who.access_token).await;
        let expected_feed: &[&str] = if name == "friend" {
            &["friends", "public"]
        } else {
            &[]
        };
        assert_eq!(shouts(&feed), expected_feed, "{name}'s feed");
    }
    for who in [&blocked, &blocker] {
        assert_eq!(
            shouts(&app.get_json("/v1/feed", &who.access_token).await),
            Vec::<String>::new()
        );
    }
    // Paging the feed one at a time gives the same two, and a cursor is bound to its reader.
    let first = app.get_json("/v1/feed?limit=1", &friend.access_token).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get_json(
            &format!("/v1/feed?limit=1&cursor={cursor}"),
            &friend.access_token,
        )
        .await;
    assert_eq!(
        [shouts(&first), shouts(&second)].concat(),
        ["friends", "public"]
    );
    assert_eq!(second["next_cursor"], Value::Null);
    let response = send(
        &app,
        Method::GET,
        &format!("/v1/feed?limit=1&cursor={cursor}"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A venue that does not exist has no here-now.
    assert_eq!(
        send(
            &app,
            Method::GET,
            "/v1/venues/ven_0000000000001/here-now",
            &friend,
            None
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

async fn the_access_log_and_the_export_tell_a_person_everything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    befriend(&app, &ada, &bob).await;
    let venue = add_venue(&app, &ada, "Blue Bottle", VENUE_AT).await;
    let near = venue_point().destination(0.0, 250.0);
    let body = json!({"location": {"lat": near.lat(), "lng": near.lng()}});
    assert_eq!(
        send(&app, Method::PUT, "/v1/me/location", &bob, Some(body))
            .await
            .status(),
        StatusCode::OK
    );
    check_in(&app, &ada, &venue, "public").await;
    for _ in 0..2 {
        let seen = app.get_json("/v1/me/nearby", &bob.access_token).await;
        assert_eq!(seen["items"][0]["user"]["username"], "ada");
    }
    let here = app
        .get_json(&format!("/v1/venues/{venue}/here-now"), &bob.access_token)
        .await;
    assert_eq!(here["items"][0]["user"]["username"], "ada");

    let log = app
        .get_json("/v1/me/location/access-log", &ada.access_token)
        .await;
    let entries = log["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    let by_channel = |via: &str| {
        entries
            .iter()
            .find(|e| e["via"] == via)
            .unwrap_or_else(|| panic!("{via}: {log}"))
    };
    assert_eq!(by_channel("nearby")["viewer"]["username"], "bob");
    assert_eq!(by_channel("nearby")["views"], 2);
    assert_eq!(by_channel("nearby")["precision"], "neighborhood");
    assert_eq!(by_channel("here_now")["precision"], "venue");
    // Ada's check-in answer listed Bob nearby: that is in Bob's log.
    let bobs = app
        .get_json("/v1/me/location/access-log", &bob.access_token)
        .await;
    assert_eq!(bobs["items"][0]["viewer"]["username"], "ada");
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);

    let response = send(&app, Method::GET, "/v1/me/export", &ada, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let export: Value = response.json().await.unwrap();
    assert_eq!(export["user"]["email"], "ada@example.com");
    assert_eq!(export["checkins"].as_array().unwrap().len(), 1);
    assert!(
        export["checkins"][0]["location"]["lat"].is_number(),
        "her own device positions"
    );
    assert_eq!(export["friends"][0]["user"]["username"], "bob");
    assert!(export["presence"]["location"]["lat"].is_number());
    assert_eq!(export["location_access_log"].as_array().unwrap().len(), 2);
    assert_eq!(export["venues_added"][0]["id"], venue.as_str());
    assert_eq!(export["blocked"], json!([]));
    // Deleting the account takes the log rows that name her with it.
    assert_eq!(
        send(&app, Method::DELETE, "/v1/me", &ada, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let bobs = app
        .get_json("/v1/me/location/access-log", &bob.access_token)
        .await;
    assert_eq!(bobs["items"], json!([]));
}

/// An answer that shows several friends records a view in each one's log (one upsert for all
/// of them), and asking again counts again.
async fn one_answer_logs_every_friend_it_shows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let viewer = app.register("viewer").await;
    let mut friends = Vec::new();
    for (i, name) in ["ada", "bob", "cyd"].into_iter().enumerate() {
        let friend = app.register(name).await;
        befriend(&app, &viewer, &friend).await;
        let at = venue_point().destination(120.0 * i as f64, 100.0 + 50.0 * i as f64);
        let body = json!({"location": {"lat": at.lat(), "lng": at.lng()}});
        let response = send(&app, Method::PUT, "/v1/me/location", &friend, Some(body)).await;
        assert_eq!(response.status(), StatusCode::OK);
        friends.push(friend);
    }
    let body = json!({"location": {"lat": VENUE_AT.0, "lng": VENUE_AT.1}});
    let response = send(&app, Method::PUT, "/v1/me/location", &viewer, Some(body)).await;
    assert_eq!(response.status(), StatusCode::OK);
    for _ in 0..3 {
        let seen = app.get_json("/v1/me/nearby", &viewer.access_token).await;
        assert_eq!(seen["items"].as_array().unwrap().len(), 3, "{seen}");
    }
    for friend in &friends {
        let log = app
            .get_json("/v1/me/location/access-log", &friend.access_token)
            .await;
        assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
        assert_eq!(log["items"][0]["viewer"]["username"], "viewer");
        assert_eq!(log["items"][0]["via"], "nearby");
        assert_eq!(log["items"][0]["views"], 3, "{log}");
    }
}

/// Check-ins arriving together are written together on PostgreSQL (one statement for all of
/// them): each person still gets their own check-in, their own answer with their own friends
/// nearby, and exactly one row.
async fn people_checking_in_at_once_each_get_their_own_answer(backend: Backend) {
    const CROWD: usize = 12;
    let app = TestApp::spawn(backend).await;
    let mut people = Vec::new();
    for i in 0..CROWD {
        people.push(app.register(&format!("crowd{i}")).await);
    }
    // A chain of friends, everyone already near the venue: each answer shows exactly the
    // person's neighbours in the chain, whatever order the check-ins are written in.
    for pair in people.windows(2) {
        befriend(&app, &pair[0], &pair[1]).await;
    }
    let venue = add_venue(&app, &people[0], "Blue Bottle", VENUE_AT).await;
    for who in &people {
        assert_eq!(
            put_location(&app, who, venue_point()).await.status(),
            StatusCode::OK
        );
    }
    let responses = futures_util::future::join_all(people.iter().enumerate().map(|(i, who)| {
        let mut body = checkin_body(&venue, "friends");
        body["shout"] = json!(format!("shout {i}"));
        app.client
            .post(app.url("/v1/checkins"))
            .bearer_auth(&who.access_token)
            .header("Idempotency-Key", format!("crowd-{i}"))
            .json(&body)
            .send()
    }))
    .await;
    let mut ids = std::collections::HashSet::new();
    for (i, (response, who)) in responses.into_iter().zip(&people).enumerate() {
        let response = response.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["checkin"]["user"]["username"], format!("crowd{i}"));
        assert_eq!(body["checkin"]["shout"], format!("shout {i}"));
        let id = body["checkin"]["id"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "{id} answered twice");
        let mut nearby: Vec<&str> = body["nearby_friends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["user"]["username"].as_str().unwrap())
            .collect();
        nearby.sort_unstable();
        let mut neighbours: Vec<String> = [i.checked_sub(1), (i + 1 < CROWD).then_some(i + 1)]
            .into_iter()
            .flatten()
            .map(|j| format!("crowd{j}"))
            .collect();
        neighbours.sort_unstable();
        assert_eq!(nearby, neighbours, "crowd{i}'s friends nearby");
        let mine = app.get_json("/v1/me/checkins", &who.access_token).await;
        let mine = mine["items"].as_array().unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["id"], id.as_str());
    }
}
