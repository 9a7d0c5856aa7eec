//! What can go wrong in the store, in terms its callers can act on.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique value (named by the field it belongs to) is already used by another row.
    #[error("{0} is already taken")]
    Taken(&'static str),
    /// Well-formed input the rules refuse; `code` names the rule (e.g. `too_far_from_venue`).
    #[error("{1}")]
    Refused(&'static str, String),
    /// A reference in the input (named by its field) points at nothing, e.g. an unknown
    /// category id.
    #[error("{0} refers to nothing")]
    Unknown(&'static str),
    /// The request contradicts the state of things; `code` names how (e.g. `blocked`,
    /// `friend_limit_reached`) and the message says what to do.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// The database cannot be reached or is overloaded; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not satisfy the domain's rules (a bug or a manual edit).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(DieselError),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            // SQLite answers "database is locked" when busy_timeout ran out.
            DieselError::DatabaseError(_, ref info) if info.message().contains("is locked") => {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

/// Turns a unique violation on one of `keys` (column names) into [`StoreError::Taken`].
///
/// PostgreSQL names the violated constraint and SQLite names the column in its message; the
/// migrations name constraints after their column so one check serves both.
pub(crate) fn taken_or(error: DieselError, keys: &[(&str, &'static str)]) -> StoreError {
    if let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &error {
        let haystack = format!(
            "{} {}",
            info.constraint_name().unwrap_or(""),
            info.message()
        );
        if let Some((_, field)) = keys.iter().find(|(column, _)| haystack.contains(column)) {
            return StoreError::Taken(field);
        }
    }
    StoreError::from(error)
}
