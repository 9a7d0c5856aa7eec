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
pub mod checkins;
mod connection;
mod error;
pub mod events;
pub mod export;
pub mod maintenance;
mod migrations;
pub mod presence;
pub mod schema;
pub mod social;
pub mod testing;
pub mod time;
pub mod tokens;
pub mod users;
pub mod venues;

pub use connection::{Backend, DatabaseUrl, DbConnection, PoolOptions, Store, transaction};
pub use error::StoreError;
pub use migrations::{MigrationDirection, revert_all_migrations};

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
