-- Grants of the client credentials grant (RFC 6749 §4.4): a confidential client acting for
-- itself, with no person behind it. Each grant's access tokens name it (`sid`), so that
-- revoking it (RFC 7009) or deleting the client ends them at once. No refresh tokens.
CREATE TABLE client_grants (
    id         BIGINT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX client_grants_expires_at ON client_grants (expires_at);
