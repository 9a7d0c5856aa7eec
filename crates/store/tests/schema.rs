//! The schema on both backends: migrations undo cleanly, and deleting an account leaves
//! nothing of it behind.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly at the first surprise"
)]

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use vicinity_domain::{NewUser, ScopeSet};
use vicinity_store::testing::TestDatabase;
use vicinity_store::tokens::{self, NewRefreshToken};
use vicinity_store::{
    DbConnection, PoolOptions, Store, StoreError, revert_all_migrations, transaction, users,
};

/// Every table's columns (with type and nullability) and every index, sorted: what a schema
/// dump would compare.
fn schema_dump(conn: &mut DbConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }
    let queries: &[&str] = match conn {
        DbConnection::Pg(_) => &[
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
             AS line FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name <> '__diesel_schema_migrations'",
            "SELECT 'index ' || indexname || ': ' || indexdef AS line FROM pg_indexes \
             WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'",
        ],
        DbConnection::Sqlite(_) => &[
            "SELECT m.name || '.' || p.name || ' ' || p.type || ' ' || p.\"notnull\" AS line \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND m.name <> '__diesel_schema_migrations'",
            "SELECT 'index ' || name || ': ' || COALESCE(sql, '') AS line FROM sqlite_master \
             WHERE type = 'index' AND tbl_name <> '__diesel_schema_migrations'",
        ],
    };
    let mut lines: Vec<String> = queries
        .iter()
        .flat_map(|query| diesel::sql_query(*query).load::<Line>(conn).unwrap())
        .map(|l| l.line)
        .collect();
    lines.sort();
    lines
}

/// How many migrations the repository holds (both backends have the same list).
fn migration_count() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/postgres");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().join("up.sql").exists())
        .count()
}

#[test]
fn migrations_apply_revert_and_reapply_on_both_backends() {
    for db in TestDatabase::each("migrations_apply_revert_and_reapply") {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        let applied = store.migrate().unwrap();
        let expected = migration_count();
        assert_eq!(applied.len(), expected, "{:?}", db.url().backend());
        let schema = store.run_blocking(|c| Ok(schema_dump(c))).unwrap();
        for expected in ["users.username_key", "presence.cell", "index venues_cell"] {
            assert!(
                schema.iter().any(|l| l.starts_with(expected)),
                "{expected} missing: {schema:#?}"
            );
        }

        let reverted = revert_all_migrations(db.url()).unwrap();
        assert_eq!(reverted.len(), expected);
        let after_revert = store.run_blocking(|c| Ok(schema_dump(c))).unwrap();
        assert!(
            after_revert.is_empty(),
            "left after reverting: {after_revert:?}"
        );

        assert_eq!(store.migrate().unwrap().len(), expected);
        assert_eq!(store.run_blocking(|c| Ok(schema_dump(c))).unwrap(), schema);
        assert!(
            store.migrate().unwrap().is_empty(),
            "a second run applies nothing"
        );
    }
}

fn count_rows_mentioning(conn: &mut DbConnection, user: i64) -> Vec<(String, i64)> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let checks = [
        ("users", "id"),
        ("credentials", "user_id"),
        ("token_families", "user_id"),
        ("refresh_tokens", "user_id"),
        ("friend_requests", "from_user_id"),
        ("friend_requests", "to_user_id"),
        ("friendships", "user_id"),
        ("friendships", "friend_id"),
        ("blocks", "blocker_id"),
        ("blocks", "blocked_id"),
        ("checkins", "user_id"),
        ("presence", "user_id"),
        ("venues", "created_by"),
    ];
    checks
        .iter()
        .map(|(table, column)| {
            let n = diesel::sql_query(format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {column} = $1"
            ))
            .bind::<BigInt, _>(user)
            .get_result::<Count>(conn)
            .unwrap()
            .n;
            (format!("{table}.{column}"), n)
        })
        .collect()
}

fn seed_everything(conn: &mut DbConnection, ada: i64, grace: i64) {
    let now = Utc::now().timestamp_micros();
    let statements = [
        format!(
            "INSERT INTO friend_requests VALUES ({ada}, {grace}, {now}), ({grace}, {ada}, {now})"
        ),
        format!("INSERT INTO friendships VALUES ({ada}, {grace}, {now}), ({grace}, {ada}, {now})"),
        format!("INSERT INTO blocks VALUES ({grace}, {ada}, {now}), ({ada}, {grace}, {now})"),
        format!(
            "INSERT INTO venues (id, name, name_key, category_id, lat, lng, cell, created_by, \
             created_at, updated_at) VALUES (5, 'Cafe', 'cafe', 'food', 1.0, 2.0, 3, {ada}, \
             {now}, {now})"
        ),
        format!(
            "INSERT INTO checkins (id, user_id, venue_id, lat, lng, visibility, created_at, \
             received_at) VALUES (6, {ada}, 5, 1.0, 2.0, 'friends', {now}, {now})"
        ),
        format!(
            "INSERT INTO presence (user_id, lat, lng, cell, venue_id, checkin_id, updated_at, \
             expires_at) VALUES ({ada}, 1.0, 2.0, 3, 5, 6, {now}, {now})"
        ),
    ];
    for statement in statements {
        diesel::sql_query(statement).execute(conn).unwrap();
    }
}

#[test]
fn deleting_an_account_removes_everything_it_owns_on_both_backends() {
    for db in TestDatabase::each("deleting_an_account_removes_everything_it_owns") {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        store
            .run_blocking(|conn| {
                let now = Utc::now();
                let register = |conn: &mut DbConnection, name: &str| {
                    let new = NewUser::parse(
                        name,
                        &format!("{name}@example.com"),
                        "a long passphrase",
                        None,
                    )
                    .unwrap();
                    users::create(conn, &new, "hash", now).unwrap()
                };
                let ada = register(conn, "ada");
                let grace = register(conn, "grace");
                let token = NewRefreshToken {
                    hash: "h1",
                    expires_at: now,
                };
                tokens::start_family(
                    conn,
                    ada.id,
                    "vicinity",
                    ScopeSet::first_party(),
                    &token,
                    now,
                )
                .unwrap();
                seed_everything(conn, ada.id.raw(), grace.id.raw());
                let seeded = count_rows_mentioning(conn, ada.id.raw());
                assert!(
                    seeded.iter().all(|(_, n)| *n > 0),
                    "seeding missed a table: {seeded:?}"
                );

                users::delete(conn, ada.id)?;

                let left: Vec<_> = count_rows_mentioning(conn, ada.id.raw())
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect();
                assert!(left.is_empty(), "rows left behind: {left:?}");
                // Shared things survive: the venue stays, only its creator is forgotten.
                assert!(users::find(conn, grace.id).is_ok());
                assert!(matches!(
                    users::delete(conn, ada.id),
                    Err(StoreError::NotFound)
                ));
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn a_failed_inner_transaction_rolls_back_only_its_own_work_on_both_backends() {
    for db in TestDatabase::each("a_failed_inner_transaction_rolls_back_only_its_own_work") {
        let store = Store::connect(db.url(), &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        let new_user = |name: &str| {
            NewUser::parse(
                name,
                &format!("{name}@example.com"),
                "a long passphrase",
                None,
            )
            .unwrap()
        };
        let (ada, grace) = (new_user("ada"), new_user("grace"));
        store
            .run_blocking(|conn| {
                transaction(conn, |conn| {
                    users::create(conn, &ada, "hash", Utc::now())?;
                    let inner = transaction(conn, |conn| {
                        users::create(conn, &grace, "hash", Utc::now())?;
                        // A duplicate inside the inner transaction fails it…
                        users::create(conn, &grace, "hash", Utc::now())
                    });
                    assert!(
                        matches!(inner, Err(StoreError::Taken("username" | "email"))),
                        "{inner:?} on {:?}",
                        db.url().backend()
                    );
                    Ok(())
                })
            })
            .unwrap();
        // …and undoes grace alone; ada, written by the outer transaction, is kept.
        let found = |login: &str| {
            let login = login.to_owned();
            store
                .run_blocking(move |conn| users::find_for_login(conn, &login))
                .unwrap()
                .is_some()
        };
        assert!(found("ada"), "{:?}", db.url().backend());
        assert!(!found("grace"), "{:?}", db.url().backend());
    }
}
