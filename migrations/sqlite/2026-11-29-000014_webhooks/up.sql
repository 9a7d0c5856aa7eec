-- SQLite twin of migrations/postgres/2026-11-29-000014_webhooks/up.sql: same meaning.
-- Webhooks (issue 5): an app's URL for the check-ins of the people who authorized it, and a
-- durable queue of deliveries, retried with backoff until delivered or given up.
--
-- The secret signs deliveries (HMAC-SHA256), so it is kept as it is, not hashed; it is shown
-- to the app once, when the webhook is set.
CREATE TABLE webhooks (
    client_id  TEXT PRIMARY KEY REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              BIGINT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    -- the JSON body, exactly as signed and sent
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- when to try next; a worker that takes a delivery moves it ahead (its lease)
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    -- set when the retries are exhausted
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_client ON webhook_deliveries (client_id, created_at);
