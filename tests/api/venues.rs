//! Venues: adding, reading, changing and removing them, duplicate detection, the category
//! tree, and radius search checked against a brute-force scan.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vicinity_domain::{NameMatch, name_key};
use vicinity_geo::Point;

use crate::helpers::{
    Backend, Session, TestApp, claims_of, error_code, error_fields, sign_with_kid,
};
use crate::on_both_backends;

on_both_backends!(
    a_venue_is_added_read_changed_and_removed,
    only_the_creator_or_an_admin_changes_a_venue,
    invalid_venues_name_each_field_and_write_nothing,
    a_similar_venue_nearby_is_a_409_with_the_candidates,
    the_category_tree_is_public_and_complete,
    search_refuses_bad_parameters_naming_each,
    search_ranks_name_matches_and_filters_by_category_tree,
    search_equals_a_brute_force_scan,
);

const TIMES_SQUARE: (f64, f64) = (40.7580, -73.9855);

/// The caller's token re-signed with `admin` added, as an administrator's token would read.
fn admin_token(app: &TestApp, session: &Session) -> String {
    let mut claims = claims_of(&session.access_token);
    let scope = format!("{} admin", claims["scope"].as_str().unwrap());
    claims["scope"] = json!(scope);
    sign_with_kid(app, &claims, "at+jwt", Some(&app.kid))
}

async fn send_json(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn create(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    send_json(app, reqwest::Method::POST, "/v1/venues", token, body).await
}

/// Adds a venue that must be accepted, skipping the duplicate check; returns it.
async fn add(app: &TestApp, token: &str, name: &str, category: &str, at: (f64, f64)) -> Value {
    let response = create(
        app,
        token,
        &json!({"name": name, "category_id": category,
            "location": {"lat": at.0, "lng": at.1}, "allow_duplicate": true}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED, "adding {name}");
    response.json().await.unwrap()
}

fn search_path(params: &[(&str, String)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap();
    format!("/v1/venues/search?{query}")
}

async fn a_venue_is_added_read_changed_and_removed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let response = create(
        &app,
        &ada.access_token,
        &json!({
            "name": "  Blue Bottle Coffee ",
            "category_id": "coffee",
            "location": {"lat": TIMES_SQUARE.0, "lng": TIMES_SQUARE.1},
            "address": {"street": "1535 Broadway", "locality": "New York", "region": "NY",
                "postal_code": "10036", "country_code": "us"},
            "phone": "+1 212-555-0100",
            "url": "https://bluebottlecoffee.com",
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let venue: Value = response.json().await.unwrap();
    let id = venue["id"].as_str().unwrap();
    assert!(id.starts_with("ven_"));
    assert_eq!(location, format!("/v1/venues/{id}"));
    assert_eq!(venue["name"], "Blue Bottle Coffee");
    assert_eq!(venue["category"]["id"], "coffee");
    assert!(
        venue["category"]["name"]
            .as_str()
            .unwrap()
            .contains("Coffee")
    );
    assert_eq!(
        venue["location"],
        json!({"lat": TIMES_SQUARE.0, "lng": TIMES_SQUARE.1})
    );
    assert_eq!(venue["address"]["country_code"], "US");
    assert_eq!(venue["address"]["street"], "1535 Broadway");
    assert_eq!(venue["phone"], "+1 212-555-0100");
    assert!(
        venue.get("created_by").is_none(),
        "who added a venue is not shown"
    );

    let read = app.get_json(&location, &ada.access_token).await;
    assert_eq!(read, venue);
    // An empty change changes nothing, not even `updated_at`.
    let response = send_json(
        &app,
        reqwest::Method::PATCH,
        &location,
        &ada.access_token,
        &json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), venue);

    let patch = json!({"name": "Blue Bottle Times Sq", "phone": null, "locality": "",
        "location": {"lat": 40.7581, "lng": -73.9856}, "category_id": "cafe"});
    let response = send_json(
        &app,
        reqwest::Method::PATCH,
        &location,
        &ada.access_token,
        &patch,
    )
    .await;
    let status = response.status();
    let changed: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "Blue Bottle Times Sq");
    assert!(changed.get("phone").is_none());
    assert!(changed["address"].get("locality").is_none());
    assert_eq!(changed["address"]["street"], "1535 Broadway");
    assert_eq!(changed["category"]["id"], "cafe");
    assert_eq!(changed["location"]["lat"], 40.7581);
    assert_eq!(changed["url"], venue["url"]);
    // The moved venue is found at its new place.
    let found = app
        .get_json(
            &search_path(&[("ll", "40.7581,-73.9856".into()), ("radius", "5".into())]),
            &ada.access_token,
        )
        .await;
    assert_eq!(found["items"][0]["id"], id);
    assert_eq!(found["items"][0]["distance_m"], 0);

    let admin = admin_token(&app, &ada);
    let response = app
        .client
        .delete(app.url(&location))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, code, _) = error_code(app.get(&location, &ada.access_token).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    // Ids that cannot exist and the wrong kind of id are not found either.
    for path in ["/v1/venues/ven_zzz", "/v1/venues/usr_0000000000001"] {
        let (status, _, _) = error_code(app.get(path, &ada.access_token).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

async fn only_the_creator_or_an_admin_changes_a_venue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    let venue = add(&app, &ada.access_token, "Corner Deli", "food", TIMES_SQUARE).await;
    let path = format!("/v1/venues/{}", venue["id"].as_str().unwrap());
    let rename = json!({"name": "Bob's Deli"});

    let response = send_json(
        &app,
        reqwest::Method::PATCH,
        &path,
        &bob.access_token,
        &rename,
    )
    .await;
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    // Deleting needs `admin`, even for the creator.
    let response = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&ada.access_token)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert_eq!(
        app.get_json(&path, &bob.access_token).await["name"],
        "Corner Deli"
    );

    let response = send_json(
        &app,
        reqwest::Method::PATCH,
        &path,
        &admin_token(&app, &bob),
        &rename,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.get_json(&path, &ada.access_token).await["name"],
        "Bob's Deli"
    );

    // Reading needs a token, but no particular scope; anonymous callers are refused.
    let response = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn invalid_venues_name_each_field_and_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let valid = json!({"name": "Cafe", "category_id": "coffee",
        "location": {"lat": 1.0, "lng": 2.0}});
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with("location", json!({"lat": 90.5, "lng": 0})),
            "location.lat",
        ),
        (
            with("location", json!({"lat": -91, "lng": 0})),
            "location.lat",
        ),
        (
            with("location", json!({"lat": 0, "lng": 180.01})),
            "location.lng",
        ),
        (
            with("location", json!({"lat": 0, "lng": -181})),
            "location.lng",
        ),
        (with("name", json!("")), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("x".repeat(10_000))), "name"),
        (
            with("category_id", json!("no-such-category")),
            "category_id",
        ),
        (with("category_id", json!("Food!")), "category_id"),
        (with("phone", json!("call me")), "phone"),
        (with("url", json!("javascript:alert(1)")), "url"),
        (
            with("address", json!({"country_code": "USA"})),
            "address.country_code",
        ),
    ];
    for (body, field) in cases {
        let (status, code, error) = error_code(create(&app, &ada.access_token, &body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {error}");
        assert_eq!(code, "validation_failed");
        assert_eq!(error_fields(&error), vec![field], "{error}");
    }
    // Shapes JSON cannot carry, wrong types and unknown fields are 400s naming the field.
    let malformed: Vec<(&str, Option<&str>)> = vec![
        (
            r#"{"name":"Cafe","category_id":"coffee","location":{"lat":NaN,"lng":0}}"#,
            None,
        ),
        (
            r#"{"name":"Cafe","category_id":"coffee","location":{"lat":1e999,"lng":0}}"#,
            None,
        ),
        (
            r#"{"name":"Cafe","category_id":"coffee","location":{"lat":"north","lng":0}}"#,
            Some("location.lat"),
        ),
        (
            r#"{"name":"Cafe","category_id":"coffee","location":{"lat":1,"lng":0},"stars":5}"#,
            Some("stars"),
        ),
        (r#"{"name":"Cafe","category_id":"coffee"}"#, None),
    ];
    for (body, field) in malformed {
        let response = app
            .client
            .post(app.url("/v1/venues"))
            .bearer_auth(&ada.access_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, code, error) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "malformed_request"),
            "{body}"
        );
        if let Some(field) = field {
            assert!(
                error["error"]["message"].as_str().unwrap().contains(field),
                "{error}"
            );
        }
    }
    // Several broken fields are reported together.
    let body = json!({"name": "", "category_id": "nope", "location": {"lat": 100, "lng": 0}});
    let (_, _, error) = error_code(create(&app, &ada.access_token, &body).await).await;
    assert_eq!(error_fields(&error), vec!["name", "location.lat"]);
    // Nothing was written.
    let found = app
        .get_json(
            &search_path(&[("ll", "1,2".into()), ("radius", "50000".into())]),
            &ada.access_token,
        )
        .await;
    assert_eq!(found["items"], json!([]));
}

async fn a_similar_venue_nearby_is_a_409_with_the_candidates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let origin = Point::new(TIMES_SQUARE.0, TIMES_SQUARE.1).unwrap();
    let at = |bearing: f64, metres: f64| {
        let p = origin.destination(bearing, metres);
        json!({"lat": p.lat(), "lng": p.lng()})
    };
    let first = create(
        &app,
        &ada.access_token,
        &json!({"name": "Blue Bottle Coffee",
        "category_id": "coffee", "location": at(0.0, 0.0)}),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();

    let again =
        json!({"name": "The Blue Bottle", "category_id": "coffee", "location": at(90.0, 60.0)});
    let response = create(&app, &ada.access_token, &again).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, code, body) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "possible_duplicate")
    );
    let candidates = body["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0]["id"], first["id"]);
    assert_eq!(candidates[0]["name"], "Blue Bottle Coffee");
    assert_eq!(candidates[0]["distance_m"], 60);

    // Insisting creates it; a different name nearby and the same name far away need no
    // insisting.
    let mut insist = again.clone();
    insist["allow_duplicate"] = json!(true);
    assert_eq!(
        create(&app, &ada.access_token, &insist).await.status(),
        StatusCode::CREATED
    );
    let other = json!({"name": "Joe's Pizza", "category_id": "pizza", "location": at(180.0, 40.0)});
    assert_eq!(
        create(&app, &ada.access_token, &other).await.status(),
        StatusCode::CREATED
    );
    let far = json!({"name": "Blue Bottle Coffee", "category_id": "coffee", "location": at(200.0, 400.0)});
    assert_eq!(
        create(&app, &ada.access_token, &far).await.status(),
        StatusCode::CREATED
    );
    // Now both earlier copies are candidates, nearest first.
    let third =
        json!({"name": "blue bottle coffee!", "category_id": "coffee", "location": at(90.0, 30.0)});
    let (status, _, body) = error_code(create(&app, &ada.access_token, &third).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let distances: Vec<u64> = body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["distance_m"].as_u64().unwrap())
        .collect();
    assert_eq!(distances, vec![30, 30]);
}

async fn the_category_tree_is_public_and_complete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/v1/categories"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let tree: Value = response.json().await.unwrap();
    let top: Vec<&str> = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for expected in [
        "food",
        "nightlife",
        "outdoors",
        "arts",
        "travel",
        "shops",
        "work",
        "home",
    ] {
        assert!(top.contains(&expected), "{expected} missing from {top:?}");
    }
    let mut ids = Vec::new();
    let mut stack: Vec<&Value> = tree["items"].as_array().unwrap().iter().collect();
    while let Some(node) = stack.pop() {
        ids.push(node["id"].as_str().unwrap().to_owned());
        assert!(!node["name"].as_str().unwrap().is_empty());
        stack.extend(node["children"].as_array().unwrap());
    }
    assert!(ids.len() >= 60, "a real tree, not a stub: {}", ids.len());
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    let food = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "food")
        .unwrap();
    assert!(food["children"].as_array().unwrap().len() >= 5);
}

async fn search_refuses_bad_parameters_naming_each(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    for i in 0..3 {
        add(
            &app,
            &ada.access_token,
            &format!("Venue {i}"),
            "food",
            TIMES_SQUARE,
        )
        .await;
    }
    let ok = "40.758,-73.9855";
    let cases: Vec<(&str, StatusCode, &str)> = vec![
        ("radius=100", StatusCode::UNPROCESSABLE_ENTITY, "ll"),
        ("ll=", StatusCode::UNPROCESSABLE_ENTITY, "ll"),
        ("ll=abc", StatusCode::BAD_REQUEST, "ll"),
        ("ll=40.7", StatusCode::BAD_REQUEST, "ll"),
        ("ll=40.7,-73.9,5", StatusCode::BAD_REQUEST, "ll"),
        ("ll=91,0", StatusCode::UNPROCESSABLE_ENTITY, "ll"),
        ("ll=0,181", StatusCode::UNPROCESSABLE_ENTITY, "ll"),
        ("ll=NaN,0", StatusCode::UNPROCESSABLE_ENTITY, "ll"),
        ("ll=0,inf", StatusCode::UNPROCESSABLE_ENTITY, "ll"),
        ("ll=0,0&ll=1,1", StatusCode::BAD_REQUEST, "ll"),
        (
            "ll=0,0&radius=-5",
            StatusCode::UNPROCESSABLE_ENTITY,
            "radius",
        ),
        (
            "ll=0,0&radius=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "radius",
        ),
        (
            "ll=0,0&radius=1e12",
            StatusCode::UNPROCESSABLE_ENTITY,
            "radius",
        ),
        (
            "ll=0,0&radius=NaN",
            StatusCode::UNPROCESSABLE_ENTITY,
            "radius",
        ),
        ("ll=0,0&radius=far", StatusCode::BAD_REQUEST, "radius"),
        ("ll=0,0&limit=0", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
        ("ll=0,0&limit=51", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
        ("ll=0,0&limit=-1", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
        (
            "ll=0,0&limit=99999999999999999999",
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            "ll=0,0&query=%21%21",
            StatusCode::UNPROCESSABLE_ENTITY,
            "query",
        ),
        (
            "ll=0,0&category=nope",
            StatusCode::UNPROCESSABLE_ENTITY,
            "category",
        ),
        (
            "ll=0,0&category=NOPE",
            StatusCode::UNPROCESSABLE_ENTITY,
            "category",
        ),
        ("ll=0,0&cursor=garbage", StatusCode::BAD_REQUEST, "cursor"),
        ("ll=0,0&sort=name", StatusCode::BAD_REQUEST, "sort"),
    ];
    for (query, expected, field) in cases {
        let response = app
            .get(&format!("/v1/venues/search?{query}"), &ada.access_token)
            .await;
        let (status, _, error) = error_code(response).await;
        assert_eq!(status, expected, "{query}: {error}");
        assert_eq!(error_fields(&error), vec![field], "{query}: {error}");
    }
    let long_query = "q".repeat(10_000);
    let response = app
        .get(
            &search_path(&[("ll", ok.into()), ("query", long_query)]),
            &ada.access_token,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A real cursor, tampered with or moved to another search, is refused.
    let first = app
        .get_json(
            &search_path(&[("ll", ok.into()), ("limit", "1".into())]),
            &ada.access_token,
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    let last = tampered.len() - 5;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (ll, radius, cursor) in [
        (ok, "1000", tampered.as_str()),
        (ok, "999", cursor.as_str()),
        ("40.7581,-73.9855", "1000", cursor.as_str()),
    ] {
        let path = search_path(&[
            ("ll", ll.into()),
            ("radius", radius.into()),
            ("limit", "1".into()),
            ("cursor", cursor.into()),
        ]);
        let (status, _, error) = error_code(app.get(&path, &ada.access_token).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error_fields(&error), vec!["cursor"]);
    }
    let path = search_path(&[
        ("ll", ok.into()),
        ("radius", "1000".into()),
        ("limit", "1".into()),
        ("cursor", cursor),
    ]);
    assert_eq!(
        app.get(&path, &ada.access_token).await.status(),
        StatusCode::OK
    );
}

async fn search_ranks_name_matches_and_filters_by_category_tree(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let origin = Point::new(TIMES_SQUARE.0, TIMES_SQUARE.1).unwrap();
    let at = |metres: f64| {
        let p = origin.destination(45.0, metres);
        (p.lat(), p.lng())
    };
    add(
        &app,
        &ada.access_token,
        "Espresso Bar Central",
        "coffee",
        at(10.0),
    )
    .await;
    add(&app, &ada.access_token, "The Bar Room", "bar", at(20.0)).await;
    add(&app, &ada.access_token, "Barista Lab", "cafe", at(30.0)).await;
    add(&app, &ada.access_token, "Crowbar", "pub", at(5.0)).await;
    add(
        &app,
        &ada.access_token,
        "Pizza 100% Real_Deal",
        "pizza",
        at(40.0),
    )
    .await;
    add(&app, &ada.access_token, "Far Bar", "bar", at(3_000.0)).await;

    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let ll = format!("{},{}", TIMES_SQUARE.0, TIMES_SQUARE.1);
    let page = app
        .get_json(
            &search_path(&[("ll", ll.clone()), ("query", "BAR".into())]),
            &ada.access_token,
        )
        .await;
    // Prefix first, then a word starting with it (nearest first), then inside a word.
    assert_eq!(
        names(&page),
        [
            "Barista Lab",
            "Espresso Bar Central",
            "The Bar Room",
            "Crowbar"
        ]
    );
    // Punctuation in a query is ignored as it is in names.
    let page = app
        .get_json(
            &search_path(&[("ll", ll.clone()), ("query", "100% real_".into())]),
            &ada.access_token,
        )
        .await;
    assert_eq!(names(&page), ["Pizza 100% Real_Deal"]);
    // A top-level category covers its sub-categories.
    let page = app
        .get_json(
            &search_path(&[("ll", ll.clone()), ("category", "nightlife".into())]),
            &ada.access_token,
        )
        .await;
    assert_eq!(names(&page), ["Crowbar", "The Bar Room"]);
    let page = app
        .get_json(
            &search_path(&[
                ("ll", ll.clone()),
                ("category", "bar".into()),
                ("radius", "5000".into()),
            ]),
            &ada.access_token,
        )
        .await;
    assert_eq!(names(&page), ["The Bar Room", "Far Bar"]);
    let distances: Vec<u64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["distance_m"].as_u64().unwrap())
        .collect();
    assert_eq!(distances, [20, 3000]);
}

/// A venue as the brute-force oracle knows it.
struct Known {
    id: String,
    point: Point,
    key: String,
    category: &'static str,
}

const WORDS: &[&str] = &[
    "blue", "bottle", "coffee", "pizza", "bar", "barn", "corner", "deli", "green", "park",
    "garden", "royal", "star", "lucky", "golden", "dragon", "harbor", "market",
];
const CATEGORIES: &[(&str, &str)] = &[
    ("coffee", "coffee"),
    ("cafe", "coffee"),
    ("pizza", "food"),
    ("bakery", "food"),
    ("bar", "nightlife"),
    ("pub", "nightlife"),
    ("park", "outdoors"),
];

async fn search_equals_a_brute_force_scan(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let mut rng = StdRng::seed_from_u64(0x5EED_0003);
    // Three clusters: a city, one astride the antimeridian, one by the north pole.
    let clusters = [(40.7580, -73.9855), (-16.5, 179.999), (89.995, 30.0)];
    let mut known = Vec::new();
    for (lat, lng) in clusters {
        let centre = Point::new(lat, lng).unwrap();
        for _ in 0..70 {
            let point = centre.destination(
                rng.random_range(0.0..360.0),
                3_000.0 * rng.random::<f64>().sqrt(),
            );
            let name = format!(
                "{} {}",
                WORDS[rng.random_range(0..WORDS.len())],
                WORDS[rng.random_range(0..WORDS.len())]
            );
            let (category, top) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            let venue = add(
                &app,
                &ada.access_token,
                &name,
                category,
                (point.lat(), point.lng()),
            )
            .await;
            let stored = Point::new(
                venue["location"]["lat"].as_f64().unwrap(),
                venue["location"]["lng"].as_f64().unwrap(),
            )
            .unwrap();
            assert_eq!(stored, point, "positions are stored exactly");
            known.push((
                Known {
                    id: venue["id"].as_str().unwrap().to_owned(),
                    point,
                    key: name_key(&name),
                    category,
                },
                top,
            ));
        }
    }
    for round in 0..40 {
        let (lat, lng) = clusters[round % clusters.len()];
        let centre = Point::new(lat, lng)
            .unwrap()
            .destination(rng.random_range(0.0..360.0), rng.random_range(0.0..2_500.0));
        let radius: f64 = [5.0, 80.0, 400.0, 1_000.0, 2_500.0, 6_000.0][rng.random_range(0..6)];
        let query = (rng.random_range(0..3) == 0)
            .then(|| WORDS[rng.random_range(0..WORDS.len())][..3].to_owned());
        let category = (rng.random_range(0..4) == 0).then(|| {
            let (leaf, top) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
            if rng.random() { leaf } else { top }
        });
        let limit = rng.random_range(1..=12usize);

        let mut expected: Vec<(u8, f64, &str)> = known
            .iter()
            .filter(|(v, top)| category.is_none_or(|c| v.category == c || *top == c))
            .filter_map(|(v, _)| {
                let distance = centre.distance_m(v.point);
                if distance > radius {
                    return None;
                }
                let rank = match &query {
                    Some(q) => NameMatch::of(&v.key, q)? as u8,
                    None => 0,
                };
                Some((rank, distance, v.id.as_str()))
            })
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(b.2)));
        let expected: Vec<&str> = expected.into_iter().map(|(_, _, id)| id).collect();

        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = vec![
                ("ll", format!("{},{}", centre.lat(), centre.lng())),
                ("radius", radius.to_string()),
                ("limit", limit.to_string()),
            ];
            if let Some(q) = &query {
                params.push(("query", q.clone()));
            }
            if let Some(c) = category {
                params.push(("category", c.to_owned()));
            }
            if let Some(c) = &cursor {
                params.push(("cursor", c.clone()));
            }
            let page = app.get_json(&search_path(&params), &ada.access_token).await;
            let items = page["items"].as_array().unwrap_or_else(|| panic!("{page}"));
            assert!(items.len() <= limit);
            for item in items {
                let id = item["id"].as_str().unwrap().to_owned();
                let venue = &known.iter().find(|(v, _)| v.id == id).unwrap().0;
                let distance = centre.distance_m(venue.point);
                assert_eq!(
                    item["distance_m"].as_u64().unwrap(),
                    distance.round() as u64
                );
                got.push(id);
            }
            match page["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(items.len(), limit, "only full pages have a successor");
                    cursor = Some(next.to_owned());
                }
                None => break,
            }
        }
        assert_eq!(
            got, expected,
            "round {round}: centre {centre}, radius {radius}, query {query:?}, category {category:?}"
        );
    }
}
