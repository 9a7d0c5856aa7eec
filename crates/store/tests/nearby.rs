//! "Who is nearby": both query plans give the same answer, which equals a brute-force scan,
//! on both backends; and a subject's shared position never says more than their level allows.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly at the first surprise"
)]

use chrono::{Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vicinity_domain::{
    Address, NewUser, PrecisionLevel, ProfileChanges, User, VenueDetails, VenueName, Visibility,
};
use vicinity_geo::Point;
use vicinity_geo::privacy::{rounded_distance_m, shared_point};
use vicinity_store::checkins::{self, NewCheckIn};
use vicinity_store::presence::{self, Nearby, Plan, PresenceRules, Update};
use vicinity_store::social::{self, SocialLimits};
use vicinity_store::testing::TestDatabase;
use vicinity_store::venues::{self, Venue};
use vicinity_store::{DbConnection, PoolOptions, Store, users};

/// Runs `work` on a fresh, migrated SQLite database and, when configured, a PostgreSQL one.
fn on_each_database(
    test: &str,
    work: impl Fn(&mut DbConnection) -> Result<(), vicinity_store::StoreError>,
) {
    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres(test));
    for db in databases {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        store.run_blocking(&work).unwrap();
        store.close(std::time::Duration::from_secs(5));
    }
}

const LEVELS: [PrecisionLevel; 4] = [
    PrecisionLevel::Exact,
    PrecisionLevel::Neighborhood,
    PrecisionLevel::City,
    PrecisionLevel::Off,
];

fn person(conn: &mut DbConnection, name: &str, level: PrecisionLevel) -> User {
    let new = NewUser::parse(
        name,
        &format!("{name}@example.com"),
        "a long passphrase",
        None,
    )
    .unwrap();
    let user = users::create(conn, &new, "not-a-real-hash", Utc::now()).unwrap();
    let changes = ProfileChanges {
        location_precision: Some(level),
        ..ProfileChanges::default()
    };
    users::update_profile(conn, user.id, &changes, Utc::now()).unwrap()
}

#[test]
fn both_plans_equal_a_brute_force_scan() {
    on_each_database("both_plans_equal_a_brute_force_scan", |conn| {
        let mut rng = StdRng::seed_from_u64(4);
        let now = Utc::now();
        let rules = PresenceRules::default();
        let centre = Point::new(48.8566, 2.3522).unwrap();
        let people: Vec<User> = (0..60)
            .map(|i| person(conn, &format!("person{i}"), LEVELS[rng.random_range(0..4)]))
            .collect();
        // Random friendships, random positions up to 30 km out; some expired.
        for (i, a) in people.iter().enumerate() {
            for b in people.iter().skip(i + 1) {
                if rng.random_bool(0.3) {
                    social::send_request(conn, a.id, b.id, SocialLimits::default(), now).unwrap();
                    social::accept(conn, b.id, a.id, SocialLimits::default(), now).unwrap();
                }
            }
            let at = centre.destination(
                rng.random_range(0.0..360.0),
                30_000.0 * rng.random::<f64>().powi(2),
            );
            let when = if rng.random_bool(0.15) {
                now - Duration::hours(4)
            } else {
                now
            };
            let update = presence::update(conn, a.id, at, Some(10.0), None, rules, when).unwrap();
            assert_eq!(update, Update::Accepted);
        }
        let mut checked = 0;
        for viewer in &people {
            for radius in [300.0, 1_000.0, 5_000.0, 20_000.0] {
                let walk = presence::nearby(conn, viewer.id, radius, Some(Plan::WalkFriends), now)
                    .unwrap();
                let scan =
                    presence::nearby(conn, viewer.id, radius, Some(Plan::ScanCells), now).unwrap();
                let chosen = presence::nearby(conn, viewer.id, radius, None, now).unwrap();
                assert_eq!(
                    walk,
                    scan,
                    "viewer {} radius {radius}",
                    viewer.username.as_str()
                );
                assert_eq!(walk, chosen);
                // Brute force over everyone.
                let origin = presence::current(conn, viewer.id, now).unwrap();
                let expected: Vec<(String, u64)> = match (&walk, origin) {
                    (Nearby::SharingOff, _) => {
                        assert_eq!(viewer.location_precision, PrecisionLevel::Off);
                        continue;
                    }
                    (Nearby::NoPresence, None) => continue,
                    (Nearby::Friends(_), Some(origin)) => {
                        let mut all: Vec<(f64, i64, String, u64)> = people
                            .iter()
                            .filter_map(|p| {
                                if !social::are_friends(conn, viewer.id, p.id).unwrap() {
                                    return None;
                                }
                                let seen = presence::current(conn, p.id, now).unwrap()?;
                                let level = viewer.location_precision.coarser(p.location_precision);
                                let point = shared_point(seen.location, level)?;
                                let d = origin.location.distance_m(point);
                                (d <= radius).then(|| {
                                    (
                                        d,
                                        p.id.raw(),
                                        p.id.to_string(),
                                        rounded_distance_m(d, level),
                                    )
                                })
                            })
                            .collect();
                        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                        all.into_iter().map(|(_, _, id, d)| (id, d)).collect()
                    }
                    other => panic!("inconsistent: {other:?}"),
                };
                let Nearby::Friends(found) = walk else {
                    unreachable!()
                };
                let got: Vec<(String, u64)> = found
                    .iter()
                    .map(|f| (f.user.id.to_string(), f.distance_m))
                    .collect();
                assert_eq!(got, expected);
                checked += got.len();
            }
        }
        assert!(checked > 50, "the scenario must find people: {checked}");
        Ok(())
    });
}

#[test]
fn impossible_travel_is_refused_and_clearing_forgets() {
    on_each_database("impossible_travel_is_refused", |conn| {
        let ada = person(conn, "ada", PrecisionLevel::Exact);
        let rules = PresenceRules::default();
        let now = Utc::now();
        let paris = Point::new(48.8566, 2.3522).unwrap();
        let london = Point::new(51.5074, -0.1278).unwrap();
        assert_eq!(
            presence::update(conn, ada.id, paris, Some(5.0), None, rules, now).unwrap(),
            Update::Accepted
        );
        // Paris to London (344 km) in a minute is not a flight.
        let update = presence::update(
            conn,
            ada.id,
            london,
            Some(5.0),
            None,
            rules,
            now + Duration::minutes(1),
        )
        .unwrap();
        assert!(
            matches!(update, Update::ImpossibleTravel { speed_mps } if speed_mps > 5_000.0),
            "{update:?}"
        );
        assert_eq!(
            presence::current(conn, ada.id, now)
                .unwrap()
                .unwrap()
                .location,
            paris,
            "nothing changed"
        );
        // In two hours it is.
        assert_eq!(
            presence::update(
                conn,
                ada.id,
                london,
                Some(5.0),
                None,
                rules,
                now + Duration::hours(2)
            )
            .unwrap(),
            Update::Accepted
        );
        // Presence expires, and clearing forgets it at once.
        assert!(
            presence::current(conn, ada.id, now + Duration::hours(6))
                .unwrap()
                .is_none()
        );
        assert!(presence::clear(conn, ada.id).unwrap());
        assert!(!presence::clear(conn, ada.id).unwrap());
        assert!(
            presence::current(conn, ada.id, now + Duration::hours(2))
                .unwrap()
                .is_none()
        );
        Ok(())
    });
}

#[test]
fn expired_presence_and_stale_records_are_pruned() {
    use vicinity_store::maintenance::{Pruned, Retention, prune};
    on_each_database("expired_presence_is_pruned", |conn| {
        let ada = person(conn, "ada", PrecisionLevel::Exact);
        let bob = person(conn, "bob", PrecisionLevel::Exact);
        let rules = PresenceRules::default();
        let now = Utc::now();
        let here = Point::new(1.0, 2.0).unwrap();
        presence::update(
            conn,
            ada.id,
            here,
            None,
            None,
            rules,
            now - Duration::hours(4),
        )
        .unwrap();
        presence::update(conn, bob.id, here, None, None, rules, now).unwrap();
        vicinity_store::checkins::claim_key(conn, ada.id, "old", "h", now - Duration::hours(25))
            .unwrap();
        vicinity_store::checkins::claim_key(conn, ada.id, "new", "h", now).unwrap();
        let pruned = prune(conn, Retention::default(), now).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                presence: 1,
                idempotency_keys: 1,
                access_log: 0,
                refresh_tokens: 0,
                changes: 0,
            }
        );
        // Ada's expired position is gone, not merely hidden; Bob's current one stays.
        assert!(
            presence::current(conn, ada.id, chrono::DateTime::<Utc>::MIN_UTC)
                .unwrap()
                .is_none()
        );
        assert!(presence::current(conn, bob.id, now).unwrap().is_some());
        assert_eq!(
            prune(conn, Retention::default(), now).unwrap(),
            Pruned::default()
        );
        Ok(())
    });
}

/// Asks the read model (both plans) and the database the same questions; they must agree.
fn model_agrees(store: &Store, people: &[User], now: chrono::DateTime<Utc>) -> usize {
    let hot = std::sync::Arc::clone(store.hot());
    store
        .run_blocking(|conn| {
            let mut found = 0;
            for viewer in people {
                for radius in [500.0, 2_000.0, 10_000.0] {
                    let database = presence::nearby(conn, viewer.id, radius, None, now)?;
                    for plan in [Plan::WalkFriends, Plan::ScanCells] {
                        let model = hot.nearby(conn, viewer.id, radius, Some(plan), now)?;
                        assert_eq!(
                            model.as_ref(),
                            Some(&database),
                            "viewer {} radius {radius} plan {plan:?}",
                            viewer.username.as_str()
                        );
                    }
                    if let Nearby::Friends(friends) = &database {
                        found += friends.len();
                    }
                }
            }
            Ok(found)
        })
        .unwrap()
}

#[test]
fn the_read_model_answers_as_the_database_does_through_every_change() {
    let test = "the_read_model_answers_as_the_database_does_through_every_change";
    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres(test));
    for db in databases {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let now = Utc::now();
        let rules = PresenceRules::default();
        let centre = Point::new(52.52, 13.405).unwrap();
        let (people, venues) = store
            .run_blocking(|conn| {
                let people: Vec<User> = (0..40)
                    .map(|i| person(conn, &format!("member{i}"), LEVELS[rng.random_range(0..4)]))
                    .collect();
                for (i, a) in people.iter().enumerate() {
                    for b in people.iter().skip(i + 1) {
                        if rng.random_bool(0.35) {
                            let limits = SocialLimits::default();
                            social::send_request(conn, a.id, b.id, limits, now)?;
                            social::accept(conn, b.id, a.id, limits, now)?;
                        }
                    }
                }
                let venues: Vec<Venue> = (0..6)
                    .map(|i| {
                        let at = centre.destination(60.0 * f64::from(i), 1_500.0 * f64::from(i));
                        let details = VenueDetails {
                            name: VenueName::parse(&format!("Place {i}")).unwrap(),
                            category_id: "coffee".into(),
                            address: Address::default(),
                            phone: None,
                            url: None,
                        };
                        match venues::create(conn, &details, at, None, true, now).unwrap() {
                            venues::Created::Venue(venue) => *venue,
                            other => panic!("{other:?}"),
                        }
                    })
                    .collect();
                Ok((people, venues))
            })
            .unwrap();
        // Half the positions come from check-ins (some private), the rest from updates.
        for person in &people {
            let venue = &venues[rng.random_range(0..venues.len())];
            let near_venue = venue
                .location
                .destination(rng.random_range(0.0..360.0), 40.0);
            let visibility = [Visibility::Public, Visibility::Friends, Visibility::Private]
                [rng.random_range(0..3)];
            let far = centre.destination(rng.random_range(0.0..360.0), rng.random_range(0.0..9e3));
            let checks_in = rng.random_bool(0.5);
            store
                .run_blocking(|conn| {
                    if checks_in {
                        let new = NewCheckIn {
                            venue_id: venue.id,
                            location: near_venue,
                            accuracy_m: Some(10.0),
                            shout: None,
                            visibility: Some(visibility),
                            created_at: now,
                        };
                        checkins::create(conn, person.id, &new, rules, now)?;
                    } else {
                        presence::update(conn, person.id, far, None, None, rules, now)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        // Loaded after the fact, it agrees; then every kind of change keeps it agreeing.
        store.start_read_model().unwrap();
        let ready_by = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !store.hot().is_ready() {
            assert!(
                std::time::Instant::now() < ready_by,
                "the model never loaded"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(model_agrees(&store, &people, now) > 20);
        for step in 0..60 {
            let (a, b) = (
                &people[rng.random_range(0..people.len())],
                &people[rng.random_range(0..people.len())],
            );
            let level = LEVELS[rng.random_range(0..4)];
            let to = centre.destination(rng.random_range(0.0..360.0), rng.random_range(0.0..9e3));
            let kind = step % 6;
            store
                .run_blocking(|conn| {
                    let limits = SocialLimits::default();
                    match kind {
                        0 => {
                            let changes = ProfileChanges {
                                location_precision: Some(level),
                                ..ProfileChanges::default()
                            };
                            users::update_profile(conn, a.id, &changes, now)?;
                        }
                        1 if a.id != b.id => {
                            if social::are_friends(conn, a.id, b.id)? {
                                social::unfriend(conn, a.id, b.id)?;
                            } else if social::send_request(conn, a.id, b.id, limits, now).is_ok() {
                                let _ = social::accept(conn, b.id, a.id, limits, now);
                            }
                        }
                        2 => {
                            presence::clear(conn, a.id)?;
                        }
                        3 => {
                            // Slow enough to be plausible from anywhere in the 9 km disc.
                            let later = now + Duration::minutes(2);
                            presence::update(conn, a.id, to, None, None, rules, later)?;
                        }
                        4 => {
                            let theirs =
                                checkins::list(conn, checkins::Scope::Own(a.id), None, 10)?;
                            if let Some(first) = theirs.first() {
                                checkins::delete(conn, first.checkin.id, a.id)?;
                            }
                        }
                        _ if a.id != b.id => {
                            social::block(conn, a.id, b.id, now)?;
                        }
                        _ => {}
                    }
                    Ok(())
                })
                .unwrap();
            model_agrees(&store, &people, now + Duration::minutes(2));
        }
        // A venue's deletion takes its check-ins, and the venues shown, with it.
        store
            .run_blocking(|conn| venues::delete(conn, venues[0].id))
            .unwrap();
        model_agrees(&store, &people, now + Duration::minutes(2));
        store.close(std::time::Duration::from_secs(5));
    }
}

/// The change feed (PostgreSQL only: one SQLite process writes none) holds exact positions
/// for an hour; deleting an account or clearing one's location must delete them at once.
#[test]
fn the_change_feed_forgets_the_positions_of_a_cleared_or_deleted_person() {
    use diesel::RunQueryDsl;
    use diesel::sql_types::{BigInt, Text};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    fn rows(conn: &mut DbConnection, pattern: &str) -> i64 {
        let DbConnection::Pg(pg) = conn else {
            unreachable!("the feed is a PostgreSQL table")
        };
        diesel::sql_query("SELECT count(*) AS n FROM changes WHERE payload LIKE $1")
            .bind::<Text, _>(pattern)
            .get_result::<Count>(pg)
            .unwrap()
            .n
    }

    let Some(db) = TestDatabase::postgres("the_change_feed_forgets_the_positions") else {
        return;
    };
    let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
    store.migrate().unwrap();
    store
        .run_blocking(|conn| {
            let rules = PresenceRules::default();
            let now = Utc::now();
            let paris = Point::new(48.8566, 2.3522).unwrap();
            let people: Vec<User> = ["ada", "bob", "cyd"]
                .iter()
                .map(|name| person(conn, name, PrecisionLevel::Exact))
                .collect();
            for (i, someone) in people.iter().enumerate() {
                for minute in 0..3 {
                    let at = paris.destination(100.0 * (i + minute) as f64, 90.0);
                    let when = now + Duration::minutes(minute as i64);
                    presence::update(conn, someone.id, at, Some(5.0), None, rules, when).unwrap();
                }
            }
            let [ada, bob, cyd] = [0, 1, 2].map(|i| people[i].id.raw());
            for id in [ada, bob, cyd] {
                assert_eq!(
                    rows(conn, &format!("P {id} %")),
                    3,
                    "three positions of {id}"
                );
            }
            // Ada deletes her account: her positions go, the feed says she is gone.
            users::delete(conn, people[0].id).unwrap();
            assert_eq!(rows(conn, &format!("P {ada} %")), 0);
            assert_eq!(rows(conn, &format!("X {ada}")), 1);
            // Bob clears his location: his positions go, the feed says so.
            assert!(presence::clear(conn, people[1].id).unwrap());
            assert_eq!(rows(conn, &format!("P {bob} %")), 0);
            assert_eq!(rows(conn, &format!("C {bob}")), 1);
            // Cyd's are untouched.
            assert_eq!(rows(conn, &format!("P {cyd} %")), 3);
            Ok(())
        })
        .unwrap();
    store.close(std::time::Duration::from_secs(5));
}

/// The access-log recorder commits queued views in batches; a flush returns once everything
/// queued before it is committed, merged per subject, viewer, channel and day.
#[test]
fn queued_access_log_views_are_committed_by_a_flush() {
    use vicinity_store::access_log::{self, Recorder, Via, View};

    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres("queued_access_log_views"));
    for db in databases {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        let (ada, bob) = store
            .run_blocking(|conn| {
                Ok((
                    person(conn, "ada", PrecisionLevel::Exact),
                    person(conn, "bob", PrecisionLevel::Neighborhood),
                ))
            })
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let recorder = Recorder::start(store.clone());
            let view = View {
                subject: bob.id,
                viewer: ada.id,
                via: Via::Nearby,
                precision: "neighborhood",
            };
            for _ in 0..3 {
                recorder.record(vec![view], Utc::now()).unwrap();
            }
            recorder.flush().await.unwrap();
            let bob_id = bob.id;
            let entries = store
                .run(move |conn| access_log::entries(conn, bob_id, None, 10))
                .await
                .unwrap();
            assert_eq!(entries.len(), 1, "one line per viewer and day");
            assert_eq!(entries[0].viewer.id, ada.id);
            assert_eq!(entries[0].views, 3);
            assert_eq!(entries[0].precision, "neighborhood");
            // Nobody saw Ada.
            let ada_id = ada.id;
            let none = store
                .run(move |conn| access_log::entries(conn, ada_id, None, 10))
                .await
                .unwrap();
            assert!(none.is_empty());
            // While the database refuses the rows, they wait; nothing is lost once it takes
            // them again.
            let rename = |from: &'static str, to: &'static str| {
                store
                    .run_blocking(move |conn| {
                        use diesel::connection::SimpleConnection;
                        Ok(conn.batch_execute(&format!("ALTER TABLE {from} RENAME TO {to}"))?)
                    })
                    .unwrap();
            };
            rename("location_access", "location_access_away");
            recorder.record(vec![view, view], Utc::now()).unwrap();
            assert!(recorder.flush().await.is_err(), "the table is away");
            rename("location_access_away", "location_access");
            recorder.record(vec![view], Utc::now()).unwrap();
            recorder.flush().await.unwrap();
            let entries = store
                .run(move |conn| access_log::entries(conn, bob_id, None, 10))
                .await
                .unwrap();
            assert_eq!(entries[0].views, 6, "the refused views were written later");
        });
        drop(runtime);
        store.close(std::time::Duration::from_secs(5));
    }
}
