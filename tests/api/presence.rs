//! Presence and nearby: who sees whom, at what precision, and what an attacker who spoofs
//! positions can learn (no more than the subject's cell).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vicinity_geo::Point;

use crate::helpers::{
    Backend, Session, TestApp, befriend, error_code, error_fields, put_location, send,
};
use crate::on_both_backends;

on_both_backends!(
    friends_nearby_are_listed_nearest_first_at_their_precision,
    precision_is_reciprocal_and_off_hides,
    nearby_needs_a_current_position_and_forgets_a_cleared_one,
    bad_positions_and_radii_are_refused_naming_the_field,
    impossible_travel_and_floods_are_refused,
    spoofing_positions_cannot_locate_a_friend_inside_their_cell,
);

const TIMES_SQUARE: (f64, f64) = (40.7580, -73.9855);

fn origin() -> Point {
    Point::new(TIMES_SQUARE.0, TIMES_SQUARE.1).unwrap()
}

async fn set_precision(app: &TestApp, who: &Session, level: &str) {
    let body = json!({"location_precision": level});
    assert_eq!(
        send(app, Method::PATCH, "/v1/me", who, Some(body))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn nearby(app: &TestApp, who: &Session, radius: u32) -> Value {
    let response = send(
        app,
        Method::GET,
        &format!("/v1/me/nearby?radius={radius}"),
        who,
        None,
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn usernames(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["user"]["username"].as_str().unwrap())
        .collect()
}

async fn friends_nearby_are_listed_nearest_first_at_their_precision(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let me = app.register("ada").await;
    let near = app.register("bob").await;
    let far = app.register("cyd").await;
    let stranger = app.register("dan").await;
    befriend(&app, &me, &near).await;
    befriend(&app, &me, &far).await;
    for (who, metres) in [
        (&me, 0.0),
        (&near, 400.0),
        (&far, 3_000.0),
        (&stranger, 100.0),
    ] {
        set_precision(&app, who, "exact").await;
        let response = put_location(&app, who, origin().destination(90.0, metres)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let own: Value = put_location(&app, &me, origin())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["location"]["lat"], TIMES_SQUARE.0);
    assert!(own["expires_at"].as_str().is_some());

    let page = nearby(&app, &me, 5_000).await;
    assert_eq!(
        usernames(&page),
        ["bob", "cyd"],
        "nearest first; strangers never"
    );
    assert_eq!(page["items"][0]["distance_m"], 400);
    assert_eq!(page["items"][0]["precision"], "exact");
    assert_eq!(page["items"][1]["distance_m"], 3_000);
    assert!(
        page["items"][0]["last_seen_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(usernames(&nearby(&app, &me, 1_000).await), ["bob"]);
    // The default radius is 1 km.
    let page: Value = send(&app, Method::GET, "/v1/me/nearby", &me, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usernames(&page), ["bob"]);
    // Entries never carry coordinates.
    assert!(
        page["items"][0].get("location").is_none()
            && page["items"][0]["user"].get("location").is_none()
    );
}

async fn precision_is_reciprocal_and_off_hides(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let cyd = app.register("cyd").await;
    befriend(&app, &ada, &bob).await;
    befriend(&app, &ada, &cyd).await;
    set_precision(&app, &ada, "exact").await;
    set_precision(&app, &bob, "city").await;
    set_precision(&app, &cyd, "off").await;
    put_location(&app, &ada, origin()).await;
    put_location(&app, &bob, origin().destination(45.0, 1_234.0)).await;
    put_location(&app, &cyd, origin().destination(45.0, 50.0)).await;

    // Ada is exact, Bob city: each sees the other at city precision, in whole kilometres.
    let seen_by_ada = nearby(&app, &ada, 50_000).await;
    assert_eq!(usernames(&seen_by_ada), ["bob"], "Cyd shares with nobody");
    assert_eq!(seen_by_ada["items"][0]["precision"], "city");
    assert_eq!(
        seen_by_ada["items"][0]["distance_m"].as_u64().unwrap() % 1_000,
        0
    );
    let seen_by_bob = nearby(&app, &bob, 50_000).await;
    assert_eq!(usernames(&seen_by_bob), ["ada"]);
    assert_eq!(seen_by_bob["items"][0]["precision"], "city");
    // Cyd sees nobody, and is told why.
    let response = send(&app, Method::GET, "/v1/me/nearby", &cyd, None).await;
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "location_sharing_off")
    );
    // At neighborhood the distance is in hundreds of metres.
    set_precision(&app, &bob, "neighborhood").await;
    let seen = nearby(&app, &ada, 50_000).await;
    assert_eq!(seen["items"][0]["precision"], "neighborhood");
    assert_eq!(seen["items"][0]["distance_m"].as_u64().unwrap() % 100, 0);
}

async fn nearby_needs_a_current_position_and_forgets_a_cleared_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    befriend(&app, &ada, &bob).await;
    let (status, code, _) =
        error_code(send(&app, Method::GET, "/v1/me/nearby", &ada, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "location_unknown")
    );
    put_location(&app, &ada, origin()).await;
    put_location(&app, &bob, origin().destination(0.0, 200.0)).await;
    assert_eq!(usernames(&nearby(&app, &ada, 1_000).await), ["bob"]);
    // Bob goes invisible at once; clearing twice is fine.
    assert_eq!(
        send(&app, Method::DELETE, "/v1/me/location", &bob, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, Method::DELETE, "/v1/me/location", &bob, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(usernames(&nearby(&app, &ada, 1_000).await).is_empty());
    // Unfriending hides too.
    put_location(&app, &bob, origin().destination(0.0, 200.0)).await;
    let path = format!("/v1/me/friends/{}", bob.user_id);
    assert_eq!(
        send(&app, Method::DELETE, &path, &ada, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(usernames(&nearby(&app, &ada, 1_000).await).is_empty());
}

async fn bad_positions_and_radii_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    for (location, field) in [
        (json!({"lat": 90.01, "lng": 0}), "location.lat"),
        (json!({"lat": 0, "lng": -180.5}), "location.lng"),
        (
            json!({"lat": 0, "lng": 0, "accuracy_m": -1}),
            "location.accuracy_m",
        ),
        (
            json!({"lat": 0, "lng": 0, "accuracy_m": 1e9}),
            "location.accuracy_m",
        ),
    ] {
        let response = send(
            &app,
            Method::PUT,
            "/v1/me/location",
            &ada,
            Some(json!({"location": location})),
        )
        .await;
        let (status, _, body) = error_code(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_fields(&body), [field]);
    }
    for body in [
        r#"{"location":{"lat":NaN,"lng":0}}"#,
        r#"{"location":{"lat":1,"lng":2,"alt":3}}"#,
        "{}",
    ] {
        let response = app
            .client
            .put(app.url("/v1/me/location"))
            .bearer_auth(&ada.access_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    put_location(&app, &ada, origin()).await;
    for (query, status) in [
        ("radius=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("radius=50001", StatusCode::UNPROCESSABLE_ENTITY),
        ("radius=-3", StatusCode::UNPROCESSABLE_ENTITY),
        ("radius=near", StatusCode::BAD_REQUEST),
        ("radius=1&radius=2", StatusCode::BAD_REQUEST),
        ("ll=40.7,-73.9", StatusCode::BAD_REQUEST),
    ] {
        let response = send(
            &app,
            Method::GET,
            &format!("/v1/me/nearby?{query}"),
            &ada,
            None,
        )
        .await;
        let (got, _, body) = error_code(response).await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(error_fields(&body).len(), 1, "{query}: {body}");
    }
}

async fn impossible_travel_and_floods_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.location_update_limit = vicinity_api::RateLimit {
            burst: 3,
            period: Duration::from_secs(60),
        };
        config.nearby_limit = vicinity_api::RateLimit {
            burst: 2,
            period: Duration::from_secs(60),
        };
    })
    .await;
    let ada = app.register("ada").await;
    assert_eq!(
        put_location(&app, &ada, origin()).await.status(),
        StatusCode::OK
    );
    // New York to London in a second.
    let london = Point::new(51.5074, -0.1278).unwrap();
    let (status, code, _) = error_code(put_location(&app, &ada, london).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "impossible_travel")
    );
    // A walk is fine; then the flood gate closes.
    assert_eq!(
        put_location(&app, &ada, origin().destination(0.0, 20.0))
            .await
            .status(),
        StatusCode::OK
    );
    let response = put_location(&app, &ada, origin()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        send(&app, Method::GET, "/v1/me/nearby", &ada, None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::GET, "/v1/me/nearby", &ada, None)
            .await
            .status(),
        StatusCode::OK
    );
    let response = send(&app, Method::GET, "/v1/me/nearby", &ada, None).await;
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

/// The attacker is a friend who may put themselves anywhere, as often as they like (the rate
/// limits and the speed check are lifted to make the attacker as strong as possible), and who
/// asks "how far is my friend" from a grid of 121 positions around them. Whatever estimator
/// they use, it can only use the answers; the answers for two victim positions in the same
/// neighborhood cell are identical, so no estimator can tell those positions apart. Moving the
/// victim to another cell changes the answers (the attack has power).
async fn spoofing_positions_cannot_locate_a_friend_inside_their_cell(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        let unlimited = vicinity_api::RateLimit {
            burst: 100_000,
            period: Duration::from_millis(1),
        };
        config.location_update_limit = unlimited;
        config.nearby_limit = unlimited;
        // The cells must protect the victim even from an attacker no limit stops.
        config.request_limit_per_token = None;
        config.request_limit_per_address = None;
        config.presence.max_speed_mps = f64::MAX;
    })
    .await;
    let victim = app.register("victim").await;
    let attacker = app.register("mallory").await;
    befriend(&app, &attacker, &victim).await;
    set_precision(&app, &attacker, "exact").await;

    let transcript = |victim_at: Point| {
        let (app, victim, attacker) = (&app, &victim, &attacker);
        async move {
            assert_eq!(
                put_location(app, victim, victim_at).await.status(),
                StatusCode::OK
            );
            let mut answers = Vec::new();
            for i in -5..=5 {
                for j in -5..=5 {
                    let spoof = origin()
                        .destination(0.0, 150.0 * f64::from(i))
                        .destination(90.0, 150.0 * f64::from(j));
                    assert_eq!(
                        put_location(app, attacker, spoof).await.status(),
                        StatusCode::OK
                    );
                    let page = nearby(app, attacker, 5_000).await;
                    answers.push(page["items"][0]["distance_m"].clone());
                    assert_eq!(page["items"][0]["precision"], "neighborhood");
                }
            }
            answers
        }
    };
    // Two positions ~60 m apart inside one res-8 cell (the cell of the origin's centre).
    let cell_centre = vicinity_geo::snap(origin(), vicinity_geo::SnapLevel::Neighborhood);
    let a = cell_centre.destination(10.0, 30.0);
    let b = cell_centre.destination(200.0, 30.0);
    assert_eq!(
        vicinity_geo::snap(a, vicinity_geo::SnapLevel::Neighborhood),
        vicinity_geo::snap(b, vicinity_geo::SnapLevel::Neighborhood)
    );
    let first = transcript(a).await;
    let second = transcript(b).await;
    assert_eq!(first.len(), 121);
    assert_eq!(
        first, second,
        "the answers cannot tell two points of one cell apart"
    );
    // In the neighbouring cell 1.5 km away the answers differ: the attack is real.
    let elsewhere = transcript(cell_centre.destination(90.0, 1_500.0)).await;
    assert_ne!(first, elsewhere);
}
