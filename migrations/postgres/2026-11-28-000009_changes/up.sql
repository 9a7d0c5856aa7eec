-- The change feed that keeps every instance's in-memory read model current (crates/store/src/
-- events.rs). A transaction that changes presence, a profile, a friendship, a token family or
-- a venue appends a row here; each instance polls for rows past the last it applied. It
-- replaces LISTEN/NOTIFY, whose commits serialize on one global lock (measured with pgbench on
-- this machine: single-row inserts 11,377 tx/s alone, 2,721 tx/s with a pg_notify in each).
-- Rows are deleted by the maintenance pass after an hour.
CREATE TABLE changes (
    seq        BIGSERIAL PRIMARY KEY,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX changes_created_at ON changes (created_at);
