//! Vicinity's persistence: the only crate that speaks SQL.
//!
//! One diesel code path serves PostgreSQL and SQLite through [`DbConnection`]. Repository
//! functions (in `users`, `tokens`, …) take `&mut DbConnection`, so the caller owns the
//! transaction; [`Store::run`] moves blocking database work off the async executor.

/// Runs one diesel statement on whichever backend `conn` holds, for the statements the
/// multi-backend connection cannot pass (multi-row INSERT, ON CONFLICT): the body is written
/// once and compiled for each backend.
macro_rules! on_each_backend {
    ($conn:expr, |$backend:ident| $body:expr) => {
        match $conn {
            $crate::DbConnection::Pg($backend) => $body,
            $crate::DbConnection::Sqlite($backend) => $body,
        }
    };
}

pub mod access_log;
pub mod authorization;
pub mod checkins;
pub mod clients;
mod connection;
mod error;
pub mod events;
pub mod export;
pub mod fast_checkin;
pub mod hot;
pub mod maintenance;
mod migrations;
mod prepared;
pub mod presence;
pub mod schema;
pub mod social;
pub mod stats;
pub mod testing;
pub mod time;
pub mod tokens;
pub mod users;
pub mod venues;
pub mod webhooks;

pub use connection::{Backend, DatabaseUrl, DbConnection, PoolOptions, Store, transaction};
pub use error::StoreError;
pub use migrations::{MigrationDirection, revert_all_migrations};

/// An always-true condition that makes PostgreSQL plan a query for its actual parameters.
///
/// Diesel keeps a prepared statement per query shape, and after five executions PostgreSQL may
/// switch such a statement to a generic plan made without the values. For a disjunction of
/// H3 cell ranges the generic plan is a sequential scan of the whole table (measured: 2 ms
/// instead of 0.2 ms at 10k present people, and growing with the table). Diesel does not keep
/// a statement that holds a SQL literal, so a query with this condition is sent unnamed and
/// planned with its ranges every time. SQLite plans every statement anyway.
pub(crate) fn plan_for_actual_values() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql("TRUE")
}

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character (`\`) escaped, for
/// patterns used with `.escape('\\')`.
pub(crate) fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A fresh random row key for a new entity.
pub(crate) fn new_key() -> i64 {
    let bits: u64 = rand::random();
    (bits >> 1).max(1) as i64
}
