-- OAuth clients (issue 5): the third-party apps an operator registers. A confidential client
-- holds a secret, of which only the SHA-256 is kept (the secret is shown once, at creation);
-- a public client has none and proves itself with PKCE alone.
CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    client_type   TEXT NOT NULL CHECK (client_type IN ('public', 'confidential')),
    secret_hash   TEXT,
    -- the registered redirect URIs, exactly as given, one per line
    redirect_uris TEXT NOT NULL,
    -- the most the client may ask for, space-separated (RFC 6749 §3.3)
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    CHECK ((client_type = 'confidential') = (secret_hash IS NOT NULL))
);
