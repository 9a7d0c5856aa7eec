//! Embedded migrations, one folder per backend with the same meaning.

use diesel::RunQueryDsl;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;
use crate::connection::{DatabaseUrl, DbConnection};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// An arbitrary constant that names Vicinity's migration lock among PostgreSQL advisory locks,
/// so instances starting together do not race to create the same tables.
const MIGRATION_LOCK: i64 = 0x7669_6369_6e69;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationDirection {
    Up,
    Down,
}

fn migration_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Migration(error.to_string())
}

impl crate::Store {
    /// Applies every pending migration; returns the names of those applied now.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.url().establish()?;
        run_migrations(&mut conn)
    }
}

pub(crate) fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let applied = match conn {
        DbConnection::Pg(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(pg)?;
            let result = pg
                .run_pending_migrations(POSTGRES)
                .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(migration_error);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .execute(pg)?;
            result?
        }
        // SQLite has no advisory lock: the write lock, taken before looking for pending
        // migrations, keeps two processes opening a new file from both applying them.
        DbConnection::Sqlite(_) => crate::transaction(conn, |conn| {
            let DbConnection::Sqlite(sqlite) = conn else {
                return Err(StoreError::Corrupt("connection changed backend".into()));
            };
            Ok(sqlite
                .run_pending_migrations(SQLITE)
                .map_err(migration_error)?
                .iter()
                .map(ToString::to_string)
                .collect())
        })?,
    };
    Ok(applied)
}

/// Reverts every applied migration, newest first (used to prove each `down.sql` works).
pub fn revert_all_migrations(url: &DatabaseUrl) -> Result<Vec<String>, StoreError> {
    let mut conn = url.establish()?;
    let reverted = match &mut conn {
        DbConnection::Pg(pg) => pg
            .revert_all_migrations(POSTGRES)
            .map_err(migration_error)?,
        DbConnection::Sqlite(sqlite) => sqlite
            .revert_all_migrations(SQLITE)
            .map_err(migration_error)?,
    };
    Ok(reverted.iter().map(ToString::to_string).collect())
}
