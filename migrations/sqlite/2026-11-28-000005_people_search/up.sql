-- SQLite twin of migrations/postgres/2026-11-28-000005_people_search/up.sql: same meaning.
-- Finding people (GET /v1/users/search): a lower-cased display name beside the lower-cased
-- username. The application writes the key (Unicode lower case); this back-fills existing rows.
ALTER TABLE users ADD COLUMN display_name_key TEXT NOT NULL DEFAULT '';
UPDATE users SET display_name_key = lower(display_name);
CREATE INDEX users_display_name_key ON users (display_name_key);
