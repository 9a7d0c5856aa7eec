-- SQLite twin of migrations/postgres/2026-11-28-000001_accounts/up.sql: same tables, same meaning.
-- People, their password credentials and their token families.
-- Conventions shared by every table (and by the SQLite twin of this file):
--   ids are random positive BIGINTs (public form: prefix + base32, see vicinity-domain::id);
--   timestamps are BIGINT microseconds since the Unix epoch, UTC;
--   anything a person owns references users(id) ON DELETE CASCADE, so deleting an account
--   deletes its data in the same statement.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username           TEXT NOT NULL,
    -- lower-cased username; prefix searches should use a range (>= 'ab' AND < 'ac'), which
    -- this index serves under SQLite's default BINARY collation
    username_key       TEXT NOT NULL,
    email              TEXT NOT NULL,
    email_key          TEXT NOT NULL,
    display_name       TEXT NOT NULL,
    bio                TEXT NOT NULL DEFAULT '',
    location_precision TEXT NOT NULL DEFAULT 'neighborhood'
        CHECK (location_precision IN ('exact', 'neighborhood', 'city', 'off')),
    default_visibility TEXT NOT NULL DEFAULT 'friends'
        CHECK (default_visibility IN ('public', 'friends', 'private')),
    is_admin           BOOLEAN NOT NULL DEFAULT FALSE,
    suspended_at       BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    CONSTRAINT users_username_key_unique UNIQUE (username_key),
    CONSTRAINT users_email_key_unique UNIQUE (email_key)
);

CREATE TABLE credentials (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- One family per login (or authorization); every refresh token it ever issued belongs to it,
-- so reuse of a rotated token can revoke all of them at once.
CREATE TABLE token_families (
    id INTEGER PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id      TEXT NOT NULL,
    scope          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX token_families_user_id ON token_families (user_id);

CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY,
    family_id   BIGINT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the opaque token, hex; the token itself is never stored
    token_hash  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    CONSTRAINT refresh_tokens_token_hash_unique UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
