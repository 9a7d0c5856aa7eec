//! Black-box tests: the real application on a random port, spoken to over HTTP (and the
//! binary, for start-up and shutdown), on SQLite and, when configured, on PostgreSQL.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails loudly at the first surprise"
)]

mod helpers;

mod access_matrix;
mod accounts;
mod admin_cli;
mod admin_users;
mod area_stats;
mod auth_failures;
mod authorization;
mod binary;
mod checkins;
mod errors;
mod faults;
mod friends;
mod me;
mod operations;
mod presence;
mod scopes;
mod slow_clients;
mod stats;
mod stream;
mod tokens;
mod venues;
mod webhooks;
