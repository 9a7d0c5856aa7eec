//! A store that loses its PostgreSQL database: it says so at once, rather than after its
//! acquire timeout, and finds the database again by itself when it is back.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use vicinity_store::testing::TestDatabase;
use vicinity_store::{PoolOptions, Store, StoreError};

/// A hang bound, well below the acquire timeout below: only a store that notices the outage
/// answers within it.
const HANG: Duration = Duration::from_secs(10);

fn select_one(store: &Store) -> Result<(), StoreError> {
    store.run_blocking(|conn| Ok(conn.batch_execute("SELECT 1")?))
}

#[test]
fn a_lost_database_is_reported_at_once_and_found_again_by_itself() {
    let Some(db) = TestDatabase::postgres("a_lost_database_is_reported_at_once") else {
        return;
    };
    let options = PoolOptions {
        acquire_timeout: HANG * 2,
        ..PoolOptions::default()
    };
    let store = Store::connect(db.url(), &options).unwrap();
    select_one(&store).unwrap();
    assert!(db.drop_now());
    // The first request may meet the cut connection; the ones after it find none, and the
    // pool's attempts to open one refused.
    for attempt in 0..3 {
        let started = Instant::now();
        let outcome = select_one(&store);
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "attempt {attempt}: {outcome:?}"
        );
        assert!(
            started.elapsed() < HANG,
            "attempt {attempt} waited {:?} to hear that the database is gone",
            started.elapsed()
        );
    }

    let TestDatabase::Postgres {
        admin_url, name, ..
    } = &db
    else {
        unreachable!("a PostgreSQL test database");
    };
    let mut admin = diesel::PgConnection::establish(admin_url).unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .unwrap();
    let back_by = Instant::now() + HANG;
    while let Err(error) = select_one(&store) {
        assert!(
            Instant::now() < back_by,
            "the store did not find its database again: {error}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(store.close(Duration::from_secs(5)));
}
