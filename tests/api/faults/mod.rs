//! Fault tests (issue 7): the server killed with SIGKILL in the middle of a burst of check-ins,
//! and PostgreSQL going away and coming back under load. Whatever happens, every check-in a
//! client was told about (201) is kept, and a client retrying with its `Idempotency-Key`
//! creates nothing twice.

mod ledger;
mod postgres_restart;
mod private_cluster;
mod server_killed;
