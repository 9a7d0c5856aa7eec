-- SQLite twin of migrations/postgres/2026-11-28-000010_changes_subject/up.sql: same meaning
-- (one SQLite process writes no rows to the feed, but the schemas stay alike).
ALTER TABLE changes ADD COLUMN subject BIGINT;
CREATE INDEX changes_subject ON changes (subject) WHERE subject IS NOT NULL;
