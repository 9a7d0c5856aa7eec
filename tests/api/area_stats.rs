//! Check-ins per cell at continent and world scale (resolutions 0–6), which come from the
//! database's daily rollup per resolution-6 cell: equal to what the test computes from the
//! check-ins it made over the window widened to whole UTC days, and still equal after a
//! check-in, an account and a venue are deleted and a venue moves.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vicinity_domain::UserId;
use vicinity_store::stats::{ROLLUP_RESOLUTION, visitor_bit};

use crate::helpers::{
    Backend, TestApp, add_venue, claims_of, client_credentials_token, send, sign_with_kid,
};
use crate::on_both_backends;

on_both_backends!(coarse_cells_follow_check_ins_deletions_and_moved_venues);

const MIN_VISITORS: u64 = 3;

/// A check-in the test made: who, where (the venue's position) and when.
#[derive(Debug, Clone)]
struct Made {
    id: String,
    user: i64,
    venue: usize,
    at: DateTime<Utc>,
}

/// A cell's check-ins and the visitor bits its people set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Expected {
    checkins: u64,
    bits: BTreeSet<usize>,
    people: BTreeSet<i64>,
}

/// What `cells?res=…&bbox=…` must answer: per cell at `resolution`, the check-ins in the
/// whole UTC days of the window at venues whose resolution-6 cell has its centre in the box; shown when the visitors' bits
/// reach the minimum, as the rollup proves it.
fn expected(
    made: &[Made],
    places: &[(f64, f64)],
    resolution: h3o::Resolution,
    bbox: [f64; 4],
    window: (DateTime<Utc>, DateTime<Utc>),
) -> (BTreeMap<String, u64>, usize) {
    let mut cells: BTreeMap<String, Expected> = BTreeMap::new();
    let (from, to) = whole_days(window);
    for m in made.iter().filter(|m| m.at >= from && m.at < to) {
        let (lat, lng) = places[m.venue];
        let venue_cell = h3o::LatLng::new(lat, lng)
            .unwrap()
            .to_cell(h3o::Resolution::Ten);
        let rollup_cell = venue_cell
            .parent(h3o::Resolution::try_from(ROLLUP_RESOLUTION).unwrap())
            .unwrap();
        let centre = h3o::LatLng::from(rollup_cell);
        let [west, south, east, north] = bbox;
        if !(west..=east).contains(&centre.lng()) || !(south..=north).contains(&centre.lat()) {
            continue;
        }
        let entry = cells
            .entry(venue_cell.parent(resolution).unwrap().to_string())
            .or_default();
        entry.checkins += 1;
        entry.bits.insert(visitor_bit(m.user));
        entry.people.insert(m.user);
    }
    let shown: BTreeMap<String, u64> = cells
        .iter()
        .filter(|(_, e)| e.bits.len() as u64 >= MIN_VISITORS)
        .map(|(cell, e)| (cell.clone(), e.checkins))
        .collect();
    for e in cells
        .values()
        .filter(|e| e.bits.len() as u64 >= MIN_VISITORS)
    {
        assert!(e.people.len() >= e.bits.len(), "bits never exceed people");
    }
    (shown.clone(), cells.len() - shown.len())
}

async fn answered(
    app: &TestApp,
    admin: &str,
    resolution: u8,
    bbox: [f64; 4],
    window: (DateTime<Utc>, DateTime<Utc>),
) -> (BTreeMap<String, u64>, usize) {
    let [west, south, east, north] = bbox;
    let path = format!(
        "/v1/admin/stats/cells?res={resolution}&bbox={west},{south},{east},{north}&from={}&to={}",
        rfc3339(window.0),
        rfc3339(window.1)
    );
    let body = app.get_json(&path, admin).await;
    assert_eq!(body["visitors_counted"], false, "{body}");
    let (from, to) = whole_days(window);
    assert_eq!(
        body["from"],
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "{body}"
    );
    assert_eq!(
        body["to"],
        to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "{body}"
    );
    let shown = body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = &f["properties"];
            assert!(p["unique_visitors"].is_null(), "{f}");
            (
                p["cell"].as_str().unwrap().to_owned(),
                p["checkins"].as_u64().unwrap(),
            )
        })
        .collect();
    (shown, body["suppressed_cells"].as_u64().unwrap() as usize)
}

/// The window widened to whole UTC days, as answers at resolutions 0–6 count.
fn whole_days((from, to): (DateTime<Utc>, DateTime<Utc>)) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |at: DateTime<Utc>| at.date_naive().and_time(NaiveTime::MIN).and_utc();
    let end = if midnight(to) == to {
        to
    } else {
        midnight(to) + TimeDelta::days(1)
    };
    (midnight(from), end)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn coarse_cells_follow_check_ins_deletions_and_moved_venues(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.stats_min_visitors = MIN_VISITORS;
    })
    .await;
    let admin = client_credentials_token(&app, "admin").await;
    let mut people = Vec::new();
    for name in ["ann", "ben", "cat", "dan", "eli"] {
        people.push(app.register(name).await);
    }
    let ids: Vec<i64> = people
        .iter()
        .map(|p| UserId::parse(&p.user_id).unwrap().raw())
        .collect();
    // Midtown and Harlem (different resolution-6 cells), Brooklyn, London, and Paris.
    let mut places = vec![
        (40.7580, -73.9855),
        (40.8116, -73.9465),
        (40.6782, -73.9442),
        (51.5074, -0.1278),
        (48.8566, 2.3522),
    ];
    let mut venues = Vec::new();
    for (i, place) in places.iter().enumerate() {
        venues.push(add_venue(&app, &people[0], &format!("Place {i}"), *place).await);
    }

    // Four check-ins each over the last five days (queued offline, oldest first) at the first
    // four places; three people also at Paris.
    let now = Utc::now();
    let mut made = Vec::new();
    for (i, who) in people.iter().enumerate() {
        let mut plan: Vec<(usize, i64)> = (0..4)
            .map(|j| {
                (
                    (i + j) % 4,
                    ((i * 13 + j * 29) % 110 + 1) as i64 * 3_600 + i as i64 * 60,
                )
            })
            .collect();
        if i < 3 {
            plan.push((4, (i as i64 + 1) * 20 * 3_600));
        }
        plan.sort_by_key(|(_, ago)| -ago);
        for (place, ago) in plan {
            let (lat, lng) = places[place];
            let response = send(
                &app,
                Method::POST,
                "/v1/checkins",
                who,
                Some(json!({"venue_id": venues[place], "visibility": "public",
                    "created_at": now - TimeDelta::seconds(ago),
                    "location": {"lat": lat, "lng": lng, "accuracy_m": 10}})),
            )
            .await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            made.push(Made {
                id: body["checkin"]["id"].as_str().unwrap().to_owned(),
                user: ids[i],
                venue: place,
                at: body["checkin"]["created_at"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            });
        }
    }

    // A window from inside a day three days ago to inside today, and the views over it.
    let window = (now - TimeDelta::hours(75), now - TimeDelta::minutes(30));
    let new_york = [-74.3, 40.5, -73.7, 40.95];
    let europe = [-10.0, 40.0, 10.0, 55.0];
    let world = [-180.0, -85.0, 180.0, 85.0];
    let views = [
        (6, h3o::Resolution::Six, new_york),
        (5, h3o::Resolution::Five, new_york),
        (4, h3o::Resolution::Four, europe),
        (2, h3o::Resolution::Two, world),
    ];
    let check = |made: Vec<Made>, places: Vec<(f64, f64)>, when: &'static str| {
        let app = &app;
        let admin = &admin;
        async move {
            for (res, resolution, bbox) in views {
                for window in [
                    window,
                    (now - TimeDelta::days(6), now + TimeDelta::hours(1)),
                ] {
                    let want = expected(&made, &places, resolution, bbox, window);
                    let got = answered(app, admin, res, bbox, window).await;
                    assert_eq!(got, want, "res {res} over {bbox:?}, {window:?}, {when}");
                }
            }
        }
    };
    check(made.clone(), places.clone(), "as made").await;
    let (shown, _) = expected(&made, &places, h3o::Resolution::Four, europe, window);
    assert!(
        !shown.is_empty(),
        "the test shows at least one cell: {shown:?}"
    );

    // Deleting a check-in.
    let gone = made.remove(0);
    let owner = &people[ids.iter().position(|id| *id == gone.user).unwrap()];
    let response = send(
        &app,
        Method::DELETE,
        &format!("/v1/checkins/{}", gone.id),
        owner,
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    check(made.clone(), places.clone(), "after a check-in was deleted").await;

    // Deleting an account: Cat's check-ins go, Paris keeps two visitors and is hidden.
    let response = send(&app, Method::DELETE, "/v1/me", &people[2], None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    made.retain(|m| m.user != ids[2]);
    check(made.clone(), places.clone(), "after an account was deleted").await;

    // Moving Harlem's venue to Paris takes its check-ins along.
    let mut claims = claims_of(&people[0].access_token);
    claims["scope"] = json!(format!("{} admin", claims["scope"].as_str().unwrap()));
    let person_admin = sign_with_kid(&app, &claims, "at+jwt", Some(&app.kid));
    let moved = app
        .client
        .patch(app.url(&format!("/v1/venues/{}", venues[1])))
        .bearer_auth(&person_admin)
        .json(&json!({"location": {"lat": 48.8606, "lng": 2.3376}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        moved.status(),
        StatusCode::OK,
        "{}",
        moved.text().await.unwrap()
    );
    places[1] = (48.8606, 2.3376);
    check(made.clone(), places.clone(), "after a venue moved").await;

    // Deleting Brooklyn's venue removes its check-ins.
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/venues/{}", venues[2])))
        .bearer_auth(&person_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    made.retain(|m| m.venue != 2);
    check(made, places, "after a venue was deleted").await;

    // CSV leaves the visitors empty where they are not counted.
    let response = app
        .get(
            &format!(
                "/v1/admin/stats/cells?res=4&bbox=-10,40,10,55&format=csv&from={}",
                rfc3339(now - TimeDelta::days(6))
            ),
            &admin,
        )
        .await;
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(!rows.is_empty(), "{text}");
    assert!(rows.iter().all(|row| row.get(4) == Some("")), "{text}");
}
