-- SQLite twin of migrations/postgres/2026-11-28-000003_places/up.sql: same tables, same meaning.
-- Venues, check-ins and presence. Positions are WGS84 degrees in REAL (IEEE double); `cell` is
-- the H3 resolution-10 cell of the position as a BIGINT (H3 indexes fit in 63 bits), so a
-- radius search is a few range scans on an ordinary B-tree (DESIGN.md §6).

CREATE TABLE categories (
    id        TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES categories (id),
    name      TEXT NOT NULL
);
CREATE INDEX categories_parent_id ON categories (parent_id);

CREATE TABLE venues (
    id INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    category_id  TEXT NOT NULL REFERENCES categories (id),
    lat          REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng          REAL NOT NULL CHECK (lng BETWEEN -180 AND 180),
    cell         BIGINT NOT NULL,
    address      TEXT,
    locality     TEXT,
    region       TEXT,
    postal_code  TEXT,
    country_code TEXT,
    phone        TEXT,
    url          TEXT,
    -- venues are shared places: they outlive the account that added them
    created_by   BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX venues_cell ON venues (cell);
CREATE INDEX venues_category_id ON venues (category_id);
CREATE INDEX venues_created_by ON venues (created_by);

CREATE TABLE checkins (
    id INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    venue_id    BIGINT NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    lat         REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng         REAL NOT NULL CHECK (lng BETWEEN -180 AND 180),
    accuracy_m  REAL,
    shout       TEXT,
    visibility  TEXT NOT NULL CHECK (visibility IN ('public', 'friends', 'private')),
    -- when the person checked in (the client's time for offline-queued check-ins)
    created_at  BIGINT NOT NULL,
    -- when the server accepted it
    received_at BIGINT NOT NULL
);
CREATE INDEX checkins_user_created ON checkins (user_id, created_at);
CREATE INDEX checkins_venue_created ON checkins (venue_id, created_at);
CREATE INDEX checkins_created_at ON checkins (created_at);

-- A person's last known position; one row per person, expired rows are ignored and pruned.
CREATE TABLE presence (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    lat        REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lng        REAL NOT NULL CHECK (lng BETWEEN -180 AND 180),
    accuracy_m REAL,
    cell       BIGINT NOT NULL,
    venue_id   BIGINT REFERENCES venues (id) ON DELETE SET NULL,
    checkin_id BIGINT REFERENCES checkins (id) ON DELETE SET NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX presence_cell ON presence (cell);
CREATE INDEX presence_expires_at ON presence (expires_at);
