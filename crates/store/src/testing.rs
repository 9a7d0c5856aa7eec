//! Throwaway databases for tests: a SQLite file in a temporary directory, or a PostgreSQL
//! database created on the server named by `VICINITY_TEST_POSTGRES_URL` and dropped on `Drop`.

use diesel::{Connection, RunQueryDsl};

use crate::DatabaseUrl;

/// The variable naming a PostgreSQL server (any database on it) that tests may create
/// databases on, such as `postgres://postgres@127.0.0.1:5432/postgres`.
pub const POSTGRES_URL_VAR: &str = "VICINITY_TEST_POSTGRES_URL";

pub enum TestDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: DatabaseUrl,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: DatabaseUrl,
    },
}

impl TestDatabase {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let url = DatabaseUrl::Sqlite(dir.path().join("vicinity.db"));
        TestDatabase::Sqlite { _dir: dir, url }
    }

    /// A fresh PostgreSQL database, or `None` (after saying so on stderr, past the test
    /// harness's capture) when no server is configured. A configured server that cannot be
    /// reached is a test failure, never a silent skip.
    pub fn postgres(test_name: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED on PostgreSQL: {test_name} (set {POSTGRES_URL_VAR} to run it there)"
            );
            return None;
        };
        let name = format!("vicinity_test_{:016x}", rand::random::<u64>());
        let mut admin = diesel::PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unreachable: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = DatabaseUrl::Postgres(with_database(&admin_url, &name));
        Some(TestDatabase::Postgres {
            admin_url,
            name,
            url,
        })
    }

    /// The databases a test runs on: SQLite always, and PostgreSQL when configured.
    pub fn each(test_name: &str) -> Vec<Self> {
        let mut all = vec![TestDatabase::sqlite()];
        all.extend(TestDatabase::postgres(test_name));
        all
    }

    pub fn url(&self) -> &DatabaseUrl {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }
}

impl TestDatabase {
    /// Drops a PostgreSQL database now, cutting off every connection to it (to test how the
    /// application copes with losing its database). Returns false for SQLite.
    pub fn drop_now(&self) -> bool {
        let TestDatabase::Postgres {
            admin_url, name, ..
        } = self
        else {
            return false;
        };
        let mut admin = diesel::PgConnection::establish(admin_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} became unreachable: {e}"));
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .is_ok()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres {
            admin_url, name, ..
        } = self
            && let Ok(mut admin) = diesel::PgConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_keeping_everything_else() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "t"),
            "postgres://u@h:5432/t"
        );
        assert_eq!(with_database("postgres://h", "t"), "postgres://h/t");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "t"),
            "postgres://u@h/t?sslmode=disable"
        );
    }
}
