//! Admin statistics: every figure equals what the test computes itself from the check-ins it
//! made; CSV parses, GeoJSON is valid (closed counter-clockwise rings, real coordinates), the
//! SVG is well-formed; and every admin route refuses non-admins and expired admin tokens.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, add_venue, claims_of, client_credentials_token, error_code, send,
    sign_with_kid,
};
use crate::on_both_backends;

on_both_backends!(
    stats_equal_counts_computed_from_the_raw_check_ins,
    admin_routes_refuse_everyone_but_a_live_admin,
);

/// One check-in the test made, as it knows it.
#[derive(Debug, Clone)]
struct Made {
    id: String,
    user: String,
    venue: String,
    at: DateTime<Utc>,
    visibility: String,
}

async fn csv_rows(app: &TestApp, path: &str, token: &str) -> Vec<HashMap<String, String>> {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn metric<'a>(rows: &'a [HashMap<String, String>], metric: &str, key: &str) -> &'a str {
    rows.iter()
        .find(|row| row["metric"] == metric && row["key"] == key)
        .map(|row| row["value"].as_str())
        .unwrap_or_else(|| panic!("no {metric},{key} in {rows:?}"))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Checks RFC 7946's rules on a polygon's rings: closed, at least four positions, real
/// coordinates, exterior ring counter-clockwise.
fn assert_valid_polygon(rings: &[Value]) {
    for (i, ring) in rings.iter().enumerate() {
        let points: Vec<(f64, f64)> = ring
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        assert!(points.len() >= 4, "{ring}");
        assert_eq!(points.first(), points.last(), "not closed: {ring}");
        for (lng, lat) in &points {
            assert!((-180.0..=180.0).contains(lng) && (-90.0..=90.0).contains(lat));
        }
        let twice_area: f64 = points
            .windows(2)
            .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
            .sum();
        if i == 0 {
            assert!(twice_area > 0.0, "exterior ring is clockwise: {ring}");
        }
    }
}

async fn stats_equal_counts_computed_from_the_raw_check_ins(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.stats_min_visitors = 2;
    })
    .await;
    let admin = client_credentials_token(&app, "admin").await;
    let mut people = Vec::new();
    for name in ["ada", "bob", "cyd", "dee", "eve"] {
        people.push(app.register(name).await);
    }
    let founder = &people[0];
    // Three venues in Midtown (A and B in one resolution-8 cell, C about 1 km south) and one
    // on Liberty Island that only one person visits.
    let places = [
        (40.7580, -73.9855),
        (40.7582, -73.9852),
        (40.7484, -73.9857),
        (40.6892, -74.0445),
    ];
    let mut venues = Vec::new();
    for (i, (lat, lng)) in places.iter().enumerate() {
        venues.push(add_venue(&app, founder, &format!("Venue {i}"), (*lat, *lng)).await);
    }

    // Each person checks in four times in Midtown over the last six days (queued offline,
    // oldest first), and Ada once on Liberty Island.
    let now = Utc::now();
    let visibilities = ["public", "friends", "private"];
    let mut made = Vec::new();
    for (i, who) in people.iter().enumerate() {
        let mut plan: Vec<(usize, i64)> = (0..4)
            .map(|j| {
                (
                    (i + j) % 3,
                    6 * 86_400
                        - ((i * 7 + j * 31) as i64 % 6) * 86_400
                        - j as i64 * 3_700
                        - i as i64 * 600,
                )
            })
            .collect();
        if i == 0 {
            plan.push((3, 3_600));
        }
        plan.sort_by_key(|(_, ago)| -ago);
        for (k, (place, ago)) in plan.into_iter().enumerate() {
            let (lat, lng) = places[place];
            let at = now - TimeDelta::seconds(ago);
            let visibility = visibilities[(i + k) % 3];
            let response = send(
                &app,
                Method::POST,
                "/v1/checkins",
                who,
                Some(json!({"venue_id": venues[place], "visibility": visibility,
                    "created_at": at, "location": {"lat": lat, "lng": lng, "accuracy_m": 10}})),
            )
            .await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            made.push(Made {
                id: body["checkin"]["id"].as_str().unwrap().to_owned(),
                user: who.user_id.clone(),
                venue: venues[place].clone(),
                at: body["checkin"]["created_at"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
                visibility: visibility.to_owned(),
            });
        }
    }

    // --- A venue's statistics, in New York time, by day, from three days ago.
    let tz = chrono_tz::America::New_York;
    let (from, to) = (now - TimeDelta::days(3), now + TimeDelta::hours(1));
    let a = &venues[0];
    let path = format!(
        "/v1/admin/venues/{a}/stats?from={}&to={}&tz=America/New_York&bucket=day",
        rfc3339(from),
        rfc3339(to)
    );
    let stats = app.get_json(&path, &admin).await;
    let in_window: Vec<&Made> = made
        .iter()
        .filter(|m| &m.venue == a && m.at >= from && m.at < to)
        .collect();
    assert!(
        in_window.len() >= 3,
        "the plan should put visits in the window"
    );
    let visitors: HashSet<&str> = in_window.iter().map(|m| m.user.as_str()).collect();
    let returning = visitors
        .iter()
        .filter(|user| {
            made.iter()
                .any(|m| &m.venue == a && m.user == **user && m.at < from)
        })
        .count();
    assert_eq!(stats["checkins"], in_window.len(), "{stats}");
    assert_eq!(stats["unique_visitors"], visitors.len());
    assert_eq!(stats["returning_visitors"], returning);
    assert_eq!(stats["new_visitors"], visitors.len() - returning);
    for visibility in visibilities {
        let expected = in_window
            .iter()
            .filter(|m| m.visibility == visibility)
            .count();
        assert_eq!(stats["visibility"][visibility], expected, "{visibility}");
    }
    // Each day's bucket holds exactly the check-ins of that New York day.
    let series = stats["series"].as_array().unwrap();
    assert!(series.len() == 4 || series.len() == 5, "{series:?}");
    let starts: Vec<DateTime<Utc>> = series
        .iter()
        .map(|p| p["start"].as_str().unwrap().parse().unwrap())
        .collect();
    for (i, point) in series.iter().enumerate() {
        let start = starts[i];
        let local = start.with_timezone(&tz);
        assert_eq!((local.hour(), local.minute()), (0, 0), "{point}");
        let end = starts.get(i + 1).copied().unwrap_or(to);
        let expected = in_window
            .iter()
            .filter(|m| m.at >= start && m.at < end)
            .count();
        assert_eq!(point["checkins"], expected, "{point}");
    }
    let mut histogram = [[0_u64; 24]; 7];
    for m in &in_window {
        let local = m.at.with_timezone(&tz);
        histogram[local.weekday().num_days_from_monday() as usize][local.hour() as usize] += 1;
    }
    assert_eq!(stats["by_weekday_hour"], json!(histogram));
    assert!(
        !stats.to_string().contains(&people[1].user_id),
        "no visitor is listed"
    );
    // The same as CSV.
    let rows = csv_rows(&app, &format!("{path}&format=csv"), &admin).await;
    assert_eq!(
        metric(&rows, "checkins", "total"),
        in_window.len().to_string()
    );
    assert_eq!(
        metric(&rows, "visitors", "returning"),
        returning.to_string()
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r["metric"] == "weekday_hour")
            .count(),
        7 * 24
    );
    // Hourly buckets: every hour of the window.
    let hourly = app
        .get_json(&path.replace("bucket=day", "bucket=hour"), &admin)
        .await;
    let hours = hourly["series"].as_array().unwrap();
    assert!((73..=75).contains(&hours.len()), "{}", hours.len());
    let total: u64 = hours.iter().map(|h| h["checkins"].as_u64().unwrap()).sum();
    assert_eq!(total, in_window.len() as u64);

    // --- The busiest venues within 2 km of Midtown, all time in the last 30 days.
    let top = app
        .get_json(
            "/v1/admin/stats/top-venues?ll=40.758,-73.9855&radius=2000",
            &admin,
        )
        .await;
    let mut expected: Vec<(usize, usize, &String)> = venues[..3]
        .iter()
        .map(|v| {
            let visits: Vec<&Made> = made.iter().filter(|m| &m.venue == v).collect();
            let people: HashSet<&str> = visits.iter().map(|m| m.user.as_str()).collect();
            (visits.len(), people.len(), v)
        })
        .collect();
    expected.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)));
    let items = top["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "Liberty Island is 8 km away: {top}");
    for (item, (checkins, visitors, _)) in items.iter().zip(&expected) {
        assert_eq!(item["checkins"], *checkins, "{top}");
        assert_eq!(item["unique_visitors"], *visitors, "{top}");
    }
    let ranked: Vec<u64> = items
        .iter()
        .map(|i| i["checkins"].as_u64().unwrap())
        .collect();
    assert!(ranked.windows(2).all(|w| w[0] >= w[1]), "{ranked:?}");
    let rows = csv_rows(
        &app,
        "/v1/admin/stats/top-venues?ll=40.758,-73.9855&radius=2000&format=csv",
        &admin,
    )
    .await;
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0]["venue_id"],
        items[0]["venue"]["id"].as_str().unwrap()
    );
    assert_eq!(rows[0]["checkins"], items[0]["checkins"].to_string());

    // --- Check-ins per resolution-8 cell over New York: each cell's count is the sum over
    // its venues; Liberty Island's single visitor is below the minimum of 2 and left out.
    let bbox = "-74.3,40.5,-73.7,40.95";
    let geojson = app
        .client
        .get(app.url(&format!("/v1/admin/stats/cells?res=8&bbox={bbox}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(geojson.headers()["content-type"], "application/geo+json");
    let geojson: Value = geojson.json().await.unwrap();
    let mut per_cell: BTreeMap<String, (usize, HashSet<&str>)> = BTreeMap::new();
    for m in &made {
        let place = venues.iter().position(|v| v == &m.venue).unwrap();
        let (lat, lng) = places[place];
        let cell = h3o::LatLng::new(lat, lng)
            .unwrap()
            .to_cell(h3o::Resolution::Eight)
            .to_string();
        let entry = per_cell.entry(cell).or_default();
        entry.0 += 1;
        entry.1.insert(&m.user);
    }
    let shown: BTreeMap<String, (usize, usize)> = per_cell
        .iter()
        .filter(|(_, (_, people))| people.len() >= 2)
        .map(|(cell, (n, people))| (cell.clone(), (*n, people.len())))
        .collect();
    assert_eq!(geojson["type"], "FeatureCollection");
    assert_eq!(geojson["suppressed_cells"], per_cell.len() - shown.len());
    assert_eq!(per_cell.len() - shown.len(), 1, "Liberty Island alone");
    let features = geojson["features"].as_array().unwrap();
    let got: BTreeMap<String, (usize, usize)> = features
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (
                p["cell"].as_str().unwrap().to_owned(),
                (
                    p["checkins"].as_u64().unwrap() as usize,
                    p["unique_visitors"].as_u64().unwrap() as usize,
                ),
            )
        })
        .collect();
    assert_eq!(got, shown);
    for feature in features {
        assert_eq!(feature["type"], "Feature");
        assert_eq!(feature["geometry"]["type"], "Polygon");
        assert_valid_polygon(feature["geometry"]["coordinates"].as_array().unwrap());
    }
    // CSV, and the SVG heat map: well-formed, one path per shown cell.
    let rows = csv_rows(
        &app,
        &format!("/v1/admin/stats/cells?res=8&bbox={bbox}&format=csv"),
        &admin,
    )
    .await;
    assert_eq!(rows.len(), shown.len());
    let svg = app
        .client
        .get(app.url(&format!("/v1/admin/stats/cells?res=8&bbox={bbox}")))
        .header("accept", "image/svg+xml")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().await.unwrap();
    let document = roxmltree::Document::parse(&svg).unwrap();
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let paths = root
        .descendants()
        .filter(|n| n.has_tag_name("path"))
        .count();
    assert_eq!(paths, shown.len());

    // --- The overview, after one check-in is deleted (the counts follow deletions).
    let gone = made.remove(0);
    let owner = people.iter().find(|p| p.user_id == gone.user).unwrap();
    let deleted = send(
        &app,
        Method::DELETE,
        &format!("/v1/checkins/{}", gone.id),
        owner,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let overview = app
        .get_json(
            "/v1/admin/stats/overview?days=7&tz=America/New_York",
            &admin,
        )
        .await;
    assert_eq!(overview["users"]["total"], people.len());
    assert_eq!(overview["checkins"]["total"], made.len());
    // Activity stays even when a check-in is deleted.
    let active = |days: i64| {
        made.iter()
            .chain(std::iter::once(&gone))
            .filter(|m| m.at >= now - TimeDelta::days(days))
            .map(|m| m.user.as_str())
            .collect::<HashSet<_>>()
            .len()
    };
    assert_eq!(
        overview["active_users"]["last_day"],
        active(1),
        "{overview}"
    );
    assert_eq!(overview["active_users"]["last_7_days"], active(7));
    let per_day = overview["checkins"]["per_day"].as_array().unwrap();
    assert_eq!(per_day.len(), 7);
    for day in per_day {
        let date = day["date"].as_str().unwrap();
        let expected = made
            .iter()
            .filter(|m| m.at.with_timezone(&tz).date_naive().to_string() == date)
            .count();
        assert_eq!(day["checkins"], expected, "{date}");
    }
    let rows = csv_rows(&app, "/v1/admin/stats/overview?format=csv", &admin).await;
    assert_eq!(metric(&rows, "users", "total"), people.len().to_string());

    // --- Bad input: clear 4xx errors in the envelope.
    for (path, status, field) in [
        (
            format!("/v1/admin/venues/{a}/stats?bucket=minute"),
            422,
            "bucket",
        ),
        (
            format!("/v1/admin/venues/{a}/stats?tz=Mars/Olympus"),
            422,
            "tz",
        ),
        (
            format!("/v1/admin/venues/{a}/stats?from=yesterday"),
            400,
            "from",
        ),
        (
            format!("/v1/admin/venues/{a}/stats?from=2026-01-01&to=2025-01-01"),
            422,
            "from",
        ),
        (
            format!("/v1/admin/venues/{a}/stats?from=2020-01-01&to=2026-01-01"),
            422,
            "from",
        ),
        (
            format!("/v1/admin/venues/{a}/stats?format=xml"),
            422,
            "format",
        ),
        (
            format!("/v1/admin/venues/{a}/stats?bucket=day&bucket=week"),
            400,
            "bucket",
        ),
        ("/v1/admin/stats/top-venues".to_owned(), 422, "ll"),
        ("/v1/admin/stats/top-venues?ll=91,0".to_owned(), 422, "ll"),
        (
            "/v1/admin/stats/top-venues?ll=40,-73&radius=60000".to_owned(),
            422,
            "radius",
        ),
        (
            "/v1/admin/stats/top-venues?ll=40,-73&category=nope".to_owned(),
            422,
            "category",
        ),
        ("/v1/admin/stats/cells?res=8".to_owned(), 422, "bbox"),
        ("/v1/admin/stats/cells?bbox=1,2,3".to_owned(), 422, "bbox"),
        (
            "/v1/admin/stats/cells?bbox=-180,-85,180,85&res=8".to_owned(),
            422,
            "res",
        ),
        (
            "/v1/admin/stats/cells?bbox=0,0,1,1&res=11".to_owned(),
            422,
            "res",
        ),
        (
            "/v1/admin/stats/cells?bbox=0,0,1,1&res=x".to_owned(),
            400,
            "res",
        ),
        ("/v1/admin/stats/overview?days=0".to_owned(), 422, "days"),
        ("/v1/admin/stats/overview?when=now".to_owned(), 400, "when"),
    ] {
        let (got, _, body) = error_code(app.get(&path, &admin).await).await;
        assert_eq!(got.as_u16(), status, "{path}: {body}");
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{path}: {body}");
    }
    let (got, code, _) = error_code(
        app.get("/v1/admin/venues/ven_0000000000000/stats", &admin)
            .await,
    )
    .await;
    assert_eq!((got, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let refused = app
        .client
        .get(app.url("/v1/admin/stats/overview"))
        .header("accept", "application/xml")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (got, code, _) = error_code(refused).await;
    assert_eq!(
        (got, code.as_str()),
        (StatusCode::NOT_ACCEPTABLE, "not_acceptable")
    );
}

async fn admin_routes_refuse_everyone_but_a_live_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let person = app.register("ada").await;
    // The accounts the admin routes act on: someone else, so Ada's token stays live.
    let target = app.register("bob").await;
    let app_without_admin = client_credentials_token(&app, "venues:write").await;
    let admin = client_credentials_token(&app, "admin").await;
    // The admin's own token, expired an hour ago (signed with the server's key).
    let mut claims = claims_of(&admin);
    let past = (Utc::now() - TimeDelta::hours(1)).timestamp();
    claims["exp"] = past.into();
    claims["iat"] = (past - 900).into();
    let expired = sign_with_kid(&app, &claims, "at+jwt", Some(&app.kid));
    let routes: Vec<(String, String)> = vicinity_api::route_access()
        .into_iter()
        .filter(|(_, path, _)| path.starts_with("/v1/admin/"))
        .map(|(method, path, _)| (method.to_owned(), path.to_owned()))
        .collect();
    assert!(routes.len() >= 13, "{routes:?}");
    for (method, path) in routes {
        let url = path
            .replace("{user_id}", &target.user_id)
            .replace("{venue_id}", "ven_0000000000000")
            .replace("{client_id}", "some-app");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let call = |token: String| {
            let mut request = app
                .client
                .request(method.clone(), app.url(&url))
                .bearer_auth(token);
            if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
                request = request.json(&json!({}));
            }
            request.send()
        };
        for (who, token, status) in [
            (
                "a person's token",
                person.access_token.clone(),
                StatusCode::FORBIDDEN,
            ),
            (
                "an app without admin",
                app_without_admin.clone(),
                StatusCode::FORBIDDEN,
            ),
            (
                "an expired admin token",
                expired.clone(),
                StatusCode::UNAUTHORIZED,
            ),
        ] {
            let response = call(token).await.unwrap();
            assert_eq!(response.status(), status, "{method} {path} with {who}");
        }
        let response = call(admin.clone()).await.unwrap();
        assert!(
            ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&response.status()),
            "{method} {path} with the admin's token: {}",
            response.status()
        );
    }
}
