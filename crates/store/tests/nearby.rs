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
    for db in TestDatabase::each(test) {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        store.run_blocking(&work).unwrap();
        store.close(std::time::Duration::from_secs(5));
    }
}

/// Runs `work` on a fresh, migrated store of each database (SQLite, and PostgreSQL when
/// configured) inside a tokio runtime, for what starts background tasks (the recorder).
fn on_each_store<F: std::future::Future<Output = ()>>(test: &str, work: impl Fn(Store) -> F) {
    for db in TestDatabase::each(test) {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(work(store.clone()));
        drop(runtime);
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

/// A new coffee place named `name` at `at`.
fn coffee_place(conn: &mut DbConnection, name: &str, at: Point) -> Venue {
    let details = VenueDetails {
        name: VenueName::parse(name).unwrap(),
        category_id: "coffee".into(),
        address: Address::default(),
        phone: None,
        url: None,
    };
    match venues::create(conn, &details, at, None, true, Utc::now()).unwrap() {
        venues::Created::Venue(venue) => *venue,
        other => panic!("{other:?}"),
    }
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
                authorization_codes: 0,
                web_sessions: 0,
                client_grants: 0,
                webhook_deliveries: 0,
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
    for db in TestDatabase::each(test) {
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
                        coffee_place(conn, &format!("Place {i}"), at)
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

    on_each_store("queued_access_log_views", |store| async move {
        let (ada, bob) = store
            .run_blocking(|conn| {
                Ok((
                    person(conn, "ada", PrecisionLevel::Exact),
                    person(conn, "bob", PrecisionLevel::Neighborhood),
                ))
            })
            .unwrap();
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
}

/// Reads the access-log line of `viewer` in `subject`'s log, waiting up to five seconds for
/// `ready` to hold: the recorder commits on its own schedule.
async fn access_line_when(
    store: &Store,
    subject: vicinity_domain::UserId,
    viewer: vicinity_domain::UserId,
    ready: impl Fn(Option<&vicinity_store::access_log::Entry>) -> bool,
) -> Option<vicinity_store::access_log::Entry> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let entries = store
            .run(move |conn| vicinity_store::access_log::entries(conn, subject, None, 1_000))
            .await
            .unwrap();
        let line = entries.into_iter().find(|e| e.viewer.id == viewer);
        if ready(line.as_ref()) || std::time::Instant::now() > deadline {
            return line;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// News in the access log (a first view that day, or a view at another precision) is
/// committed without being asked; a repeat, which only adds to a committed count, waits for
/// the repeat linger, a flush or the recorder's end, and is then counted exactly once.
#[test]
fn the_access_log_commits_news_at_once_and_repeats_later() {
    use vicinity_store::access_log::{Recorder, Via, View};

    on_each_store("access_log_news_and_repeats", |store| async move {
        let (ada, bob, cy) = store
            .run_blocking(|conn| {
                Ok((
                    person(conn, "ada", PrecisionLevel::Exact),
                    person(conn, "bob", PrecisionLevel::Neighborhood),
                    person(conn, "cyd", PrecisionLevel::Exact),
                ))
            })
            .unwrap();
        // Repeats would wait an hour: only a flush or the end writes them.
        let recorder = Recorder::with_lingers(
            store.clone(),
            std::time::Duration::from_millis(10),
            std::time::Duration::from_secs(3_600),
        );
        let seen = |viewer: &User, precision: &'static str| View {
            subject: bob.id,
            viewer: viewer.id,
            via: Via::Nearby,
            precision,
        };
        recorder
            .record(vec![seen(&ada, "neighborhood")], Utc::now())
            .unwrap();
        let line = access_line_when(&store, bob.id, ada.id, |l| l.is_some()).await;
        assert_eq!(line.unwrap().views, 1, "a first view is committed unasked");

        // Two repeats by Ada, then news: Cy's first view.
        for _ in 0..2 {
            recorder
                .record(vec![seen(&ada, "neighborhood")], Utc::now())
                .unwrap();
        }
        recorder
            .record(vec![seen(&cy, "neighborhood")], Utc::now())
            .unwrap();
        let cy_line = access_line_when(&store, bob.id, cy.id, |l| l.is_some()).await;
        assert_eq!(cy_line.unwrap().views, 1);
        let line = access_line_when(&store, bob.id, ada.id, |_| true).await;
        assert_eq!(line.unwrap().views, 1, "repeats wait while news goes");

        // A view at another precision is news, and carries the repeats waiting with it.
        recorder
            .record(vec![seen(&ada, "exact")], Utc::now())
            .unwrap();
        let line = access_line_when(&store, bob.id, ada.id, |l| {
            l.is_some_and(|l| l.precision == "exact")
        })
        .await
        .unwrap();
        assert_eq!((line.views, line.precision.as_str()), (4, "exact"));

        // A flush writes a waiting repeat; so does the recorder's end.
        recorder
            .record(vec![seen(&ada, "exact")], Utc::now())
            .unwrap();
        recorder.flush().await.unwrap();
        let line = access_line_when(&store, bob.id, ada.id, |_| true).await;
        assert_eq!(line.unwrap().views, 5);
        recorder
            .record(vec![seen(&ada, "exact")], Utc::now())
            .unwrap();
        drop(recorder);
        let line =
            access_line_when(&store, bob.id, ada.id, |l| l.is_some_and(|l| l.views == 6)).await;
        assert_eq!(
            line.unwrap().views,
            6,
            "the last repeat is written at the end"
        );
    });
}

/// One flush of the access log may hold more rows than one statement can bind as values
/// (PostgreSQL takes 65,535 values, SQLite 32,766; a row has seven); and views of someone
/// deleted meanwhile are dropped without holding up the others.
#[test]
fn the_access_log_takes_large_batches_and_outlives_deleted_people() {
    use vicinity_store::access_log::{Recorder, Via, View};

    on_each_store("access_log_large_batches", |store| async move {
        let people: Vec<User> = store
            .run_blocking(|conn| {
                Ok((0..110)
                    .map(|n| person(conn, &format!("person{n}"), PrecisionLevel::Exact))
                    .collect())
            })
            .unwrap();
        let count = |store: &Store| {
            store
                .run_blocking(|conn| {
                    use diesel::prelude::*;
                    use vicinity_store::schema::location_access;
                    Ok(location_access::table
                        .count()
                        .get_result::<i64>(conn)
                        .unwrap())
                })
                .unwrap()
        };
        let every_pair = |people: &[User]| -> Vec<Vec<View>> {
            people
                .iter()
                .map(|viewer| {
                    people
                        .iter()
                        .filter(|subject| subject.id != viewer.id)
                        .map(|subject| View {
                            subject: subject.id,
                            viewer: viewer.id,
                            via: Via::Nearby,
                            precision: "exact",
                        })
                        .collect()
                })
                .collect()
        };
        let recorder = Recorder::with_lingers(
            store.clone(),
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(3_600),
        );
        let now = Utc::now();
        for views in every_pair(&people) {
            recorder.record(views, now).unwrap();
        }
        recorder.flush().await.unwrap();
        assert_eq!(count(&store), 110 * 109, "11,990 rows of seven values");

        // The first person is deleted (their rows go with them) while views that show
        // them, and views between others, wait.
        let gone = people[0].id;
        for views in every_pair(&people) {
            recorder.record(views, now).unwrap();
        }
        store
            .run_blocking(move |conn| users::delete(conn, gone))
            .unwrap();
        recorder.flush().await.unwrap();
        assert_eq!(
            count(&store),
            109 * 108,
            "only the gone person's rows are missing"
        );
        let (subject, viewer) = (people[1].id, people[2].id);
        let line = access_line_when(&store, subject, viewer, |_| true).await;
        assert_eq!(line.unwrap().views, 2, "the others' views were counted");
    });
}

/// Check-ins decided by the read model and written together (PostgreSQL only: on SQLite the
/// read model does not decide check-ins): one statement settles each check-in on its own,
/// created, replayed under its key, refused for a reused key or gone with its person; a batch
/// the database refuses as a whole (a venue deleted meanwhile) is written one by one, so only
/// that check-in fails; and the writer keeps a person's check-ins apart and in order.
#[test]
fn check_ins_written_together_are_settled_one_by_one() {
    use vicinity_store::checkins::{Answer, IdempotencyKey};
    use vicinity_store::fast_checkin::{self, Decided, Writer};
    use vicinity_store::schema::{changes, checkins as checkin_rows, presence as presence_rows};

    let Some(db) = TestDatabase::postgres("check_ins_written_together") else {
        return;
    };
    let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
    store.migrate().unwrap();
    let now = Utc::now();
    let rules = PresenceRules::default();
    let centre = Point::new(45.4642, 9.19).unwrap();
    let (people, venue, doomed) = store
        .run_blocking(|conn| {
            let people: Vec<User> = (0..8)
                .map(|i| person(conn, &format!("walker{i}"), PrecisionLevel::Exact))
                .collect();
            let venue = coffee_place(conn, "Bar Luce", centre);
            let doomed = coffee_place(conn, "Closing Down", centre.destination(90.0, 300.0));
            Ok((people, venue, doomed))
        })
        .unwrap();
    store.start_read_model().unwrap();
    let ready_by = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !store.hot().is_ready() {
        assert!(
            std::time::Instant::now() < ready_by,
            "the model never loaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let decide = |who: &User, at: &Venue, key: Option<(&str, &str)>, shout: &str| -> Decided {
        let new = NewCheckIn {
            venue_id: at.id,
            location: at.location.destination(0.0, 20.0),
            accuracy_m: Some(10.0),
            shout: Some(shout.to_owned()),
            visibility: Some(Visibility::Friends),
            created_at: now,
        };
        let key = key.map(|(key, hash)| IdempotencyKey {
            key: key.into(),
            request_hash: hash.into(),
        });
        let hot = std::sync::Arc::clone(store.hot());
        store
            .run_blocking(|conn| {
                fast_checkin::decide(
                    Some(conn),
                    &hot,
                    who.id,
                    &new,
                    key,
                    rules,
                    now,
                    1_000.0,
                    vicinity_domain::PrecisionLevel::Exact,
                    |l, _| {
                        Ok(format!(
                            "answer for {}",
                            l.checkin.shout.unwrap_or_default()
                        ))
                    },
                )
            })
            .unwrap()
            .expect("the read model decides on PostgreSQL")
    };
    let write = |decided: Vec<Decided>| {
        store
            .run_blocking(|conn| Ok(fast_checkin::write(conn, decided)))
            .unwrap()
    };
    let created = |answer: &Result<(Answer, _), _>| match answer {
        Ok((Answer::Created { response, .. }, _)) => response.clone(),
        other => panic!("expected a new check-in, got {other:?}"),
    };
    let rows_of = |who: &User| -> Vec<String> {
        store
            .run_blocking(|conn| {
                use diesel::prelude::*;
                Ok(checkin_rows::table
                    .filter(checkin_rows::user_id.eq(who.id.raw()))
                    .select(checkin_rows::shout.assume_not_null())
                    .order(checkin_rows::shout)
                    .load::<String>(conn)?)
            })
            .unwrap()
    };

    // Earlier requests under the keys "b" and "c".
    let first = write(vec![decide(
        &people[1],
        &venue,
        Some(("b", "hash-b")),
        "first b",
    )]);
    assert!(!first.together, "one check-in is written alone");
    assert_eq!(created(&first.answers[0]), "answer for first b");
    let first_c = write(vec![decide(
        &people[2],
        &venue,
        Some(("c", "hash-c")),
        "first c",
    )]);
    created(&first_c.answers[0]);

    // Together: a new key, a retry of "b", "c" reused for another check-in, a person deleted
    // after the decision, and no key at all.
    let batch = vec![
        decide(&people[0], &venue, Some(("a", "hash-a")), "zero"),
        decide(&people[1], &venue, Some(("b", "hash-b")), "retry b"),
        decide(&people[2], &venue, Some(("c", "hash-other")), "another c"),
        decide(&people[3], &venue, Some(("d", "hash-d")), "three"),
        decide(&people[4], &venue, None, "four"),
    ];
    store
        .run_blocking(|conn| users::delete(conn, people[3].id))
        .unwrap();
    let outcomes = write(batch);
    assert!(
        outcomes.together,
        "distinct people are written in one statement"
    );
    let answers = &outcomes.answers;
    assert_eq!(created(&answers[0]), "answer for zero");
    match &answers[1] {
        Ok((Answer::Replay { status, response }, seen)) => {
            assert_eq!((*status, response.as_str()), (201, "answer for first b"));
            assert!(seen.is_empty());
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    assert!(
        matches!(
            &answers[2],
            Err(vicinity_store::StoreError::Refused(
                "idempotency_key_reused",
                _
            ))
        ),
        "{:?}",
        answers[2]
    );
    assert!(
        matches!(&answers[3], Err(vicinity_store::StoreError::NotFound)),
        "{:?}",
        answers[3]
    );
    assert_eq!(created(&answers[4]), "answer for four");
    assert_eq!(rows_of(&people[0]), ["zero"]);
    assert_eq!(rows_of(&people[1]), ["first b"]);
    assert_eq!(rows_of(&people[2]), ["first c"]);
    assert_eq!(rows_of(&people[3]), Vec::<String>::new());
    assert_eq!(rows_of(&people[4]), ["four"]);
    // Each new check-in moved its person, in the database and (through the change it wrote)
    // in this instance's read model, and the feed tells the other instances.
    for who in [&people[0], &people[4]] {
        let id = match &answers[if who.id == people[0].id { 0 } else { 4 }] {
            Ok((Answer::Created { id, .. }, _)) => id.raw(),
            other => panic!("{other:?}"),
        };
        let located = store
            .hot()
            .presence_of(who.id)
            .expect("present in the model");
        assert_eq!(located.checkin, Some(id));
        assert_eq!(located.venue, Some(venue.id.raw()));
        let (stored, announced): (Option<i64>, i64) = store
            .run_blocking(|conn| {
                use diesel::prelude::*;
                let stored = presence_rows::table
                    .find(who.id.raw())
                    .select(presence_rows::checkin_id)
                    .first::<Option<i64>>(conn)?;
                let announced = changes::table
                    .filter(changes::subject.eq(who.id.raw()))
                    .filter(changes::payload.like(format!("P {} %", who.id.raw())))
                    .count()
                    .get_result(conn)?;
                Ok((stored, announced))
            })
            .unwrap();
        assert_eq!(stored, Some(id));
        assert_eq!(announced, 1);
    }

    // A venue deleted between decision and write fails the statement for all; each is then
    // written on its own and only that check-in fails.
    let batch = vec![
        decide(&people[5], &venue, Some(("e", "hash-e")), "five"),
        decide(&people[6], &doomed, Some(("f", "hash-f")), "six"),
    ];
    store
        .run_blocking(|conn| venues::delete(conn, doomed.id))
        .unwrap();
    let outcomes = write(batch);
    assert!(!outcomes.together);
    assert_eq!(created(&outcomes.answers[0]), "answer for five");
    assert!(
        matches!(
            &outcomes.answers[1],
            Err(vicinity_store::StoreError::NotFound)
        ),
        "{:?}",
        outcomes.answers[1]
    );
    assert_eq!(rows_of(&people[6]), Vec::<String>::new());

    // Through the writer, concurrently: a person's two check-ins are both written, in order,
    // and eight requests with one key make one check-in.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let writer = Writer::start(store.clone());
        let mut pending = Vec::new();
        for (i, who) in [&people[0], &people[4], &people[0]].into_iter().enumerate() {
            let decided = decide(
                who,
                &venue,
                Some((&format!("w{i}"), "hash")),
                &format!("w{i}"),
            );
            pending.push(tokio::spawn({
                let writer = writer.clone();
                async move { writer.write(decided).await }
            }));
        }
        for _ in 0..8 {
            let decided = decide(&people[7], &venue, Some(("same", "hash-same")), "seven");
            pending.push(tokio::spawn({
                let writer = writer.clone();
                async move { writer.write(decided).await }
            }));
        }
        let mut replays = 0;
        for task in pending {
            match task.await.unwrap() {
                Ok((Answer::Created { .. }, _)) => {}
                Ok((Answer::Replay { response, .. }, _)) => {
                    assert_eq!(response, "answer for seven");
                    replays += 1;
                }
                Err(error) => panic!("{error}"),
            }
        }
        assert_eq!(replays, 7);
    });
    assert_eq!(rows_of(&people[0]), ["w0", "w2", "zero"]);
    assert_eq!(rows_of(&people[4]), ["four", "w1"]);
    assert_eq!(rows_of(&people[7]), ["seven"]);
    drop(runtime);
    store.close(std::time::Duration::from_secs(5));
}
