-- SQLite twin of migrations/postgres/2026-11-28-000009_changes/up.sql: same meaning. One
-- process owns a SQLite database and applies its changes itself, so it writes no rows here.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX changes_created_at ON changes (created_at);
