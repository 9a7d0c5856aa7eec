-- SQLite twin of migrations/postgres/2026-11-28-000007_location_access/up.sql: same meaning.
-- Who saw a person's location, so they can check (GET /v1/me/location/access-log): one row per
-- subject, viewer, channel (`nearby` or `here_now`) and UTC day, counting the views.
CREATE TABLE location_access (
    subject_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    viewer_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    via        TEXT NOT NULL CHECK (via IN ('nearby', 'here_now')),
    day        BIGINT NOT NULL,
    precision  TEXT NOT NULL CHECK (precision IN ('exact', 'neighborhood', 'city', 'venue')),
    views      BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    PRIMARY KEY (subject_id, viewer_id, via, day)
) WITHOUT ROWID;
CREATE INDEX location_access_subject_last ON location_access (subject_id, last_at);
CREATE INDEX location_access_viewer_id ON location_access (viewer_id);
