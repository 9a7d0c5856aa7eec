-- SQLite twin of migrations/postgres/2026-11-29-000012_oauth_authorization/up.sql: same meaning.
-- The authorization code grant (issue 5).
--
-- Codes (RFC 6749 §4.1) are single use, valid for minutes, and bound to the client, the
-- redirect URI and the PKCE challenge; only their SHA-256 is kept. `family_id` is the login a
-- code started: presenting the code again revokes it (RFC 6749 §4.1.2).
CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- as the authorization request named it; NULL when it named none (the only one registered)
    redirect_uri   TEXT,
    scope          TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    family_id      BIGINT REFERENCES token_families (id) ON DELETE SET NULL
);
CREATE INDEX oauth_codes_expires_at ON oauth_codes (expires_at);

-- What each person approved for each app: asked once, listed by GET /v1/me/apps.
CREATE TABLE oauth_consents (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Browser sessions of the authorization page (an HttpOnly cookie holds the token; only its
-- SHA-256 is kept), so a person signed in there is not asked for the password again.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user_id ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);
CREATE INDEX token_families_user_client ON token_families (user_id, client_id);
