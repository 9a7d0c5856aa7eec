-- SQLite twin of migrations/postgres/2026-11-28-000006_idempotency/up.sql: same meaning.
-- Idempotency-Key (DESIGN.md §3): the first successful response to a key is kept, so a retry
-- with the same key and body gets it again and creates nothing. `request_hash` is the SHA-256
-- of the request as parsed, so the same key with another body can be refused.
CREATE TABLE idempotency_keys (
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
