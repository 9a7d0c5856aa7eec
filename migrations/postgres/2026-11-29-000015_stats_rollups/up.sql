-- Rollups for the admin overview, kept exact by triggers on every write path (the check-in
-- writers, deletions, cascades from deleted accounts and venues, bulk loads): counting
-- millions of check-ins, or their distinct people, on each request took seconds.

-- Check-ins per 15-minute slot of `created_at` (microseconds / 900,000,000; every time
-- zone's days are whole slots). Each connection adds to its own shard row, so concurrent
-- check-in transactions never wait on one another's counter; readers sum the shards.
CREATE TABLE checkin_slots (
    slot     BIGINT NOT NULL,
    shard    INTEGER NOT NULL,
    checkins BIGINT NOT NULL,
    PRIMARY KEY (slot, shard)
);

-- When each person last checked in (deleting a check-in does not undo the activity).
CREATE TABLE user_activity (
    user_id         BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_checkin_at BIGINT NOT NULL
);

CREATE FUNCTION checkins_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO checkin_slots (slot, shard, checkins)
    SELECT created_at / 900000000, pg_backend_pid() % 16, count(*) FROM new_rows GROUP BY 1
    ON CONFLICT (slot, shard) DO UPDATE SET checkins = checkin_slots.checkins + EXCLUDED.checkins;
    INSERT INTO user_activity (user_id, last_checkin_at)
    SELECT user_id, max(created_at) FROM new_rows GROUP BY user_id
    ON CONFLICT (user_id) DO UPDATE
        SET last_checkin_at = GREATEST(user_activity.last_checkin_at, EXCLUDED.last_checkin_at);
    RETURN NULL;
END $$;

CREATE FUNCTION checkins_uncounted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO checkin_slots (slot, shard, checkins)
    SELECT created_at / 900000000, pg_backend_pid() % 16, -count(*) FROM old_rows GROUP BY 1
    ON CONFLICT (slot, shard) DO UPDATE SET checkins = checkin_slots.checkins + EXCLUDED.checkins;
    RETURN NULL;
END $$;

-- A check-in's time changes only in bulk maintenance (the benchmark's loader): move its count
-- and recompute the people's last check-in.
CREATE FUNCTION checkins_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO checkin_slots (slot, shard, checkins)
    SELECT slot, pg_backend_pid() % 16, sum(n) FROM (
        SELECT created_at / 900000000 AS slot, -1 AS n FROM old_rows
        UNION ALL
        SELECT created_at / 900000000, 1 FROM new_rows
    ) moved GROUP BY slot
    ON CONFLICT (slot, shard) DO UPDATE SET checkins = checkin_slots.checkins + EXCLUDED.checkins;
    INSERT INTO user_activity (user_id, last_checkin_at)
    SELECT c.user_id, max(c.created_at) FROM checkins c
    WHERE c.user_id IN (SELECT user_id FROM new_rows) GROUP BY c.user_id
    ON CONFLICT (user_id) DO UPDATE SET last_checkin_at = EXCLUDED.last_checkin_at;
    RETURN NULL;
END $$;

CREATE TRIGGER checkins_counted AFTER INSERT ON checkins
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION checkins_counted();
CREATE TRIGGER checkins_uncounted AFTER DELETE ON checkins
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION checkins_uncounted();
CREATE TRIGGER checkins_moved AFTER UPDATE ON checkins
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION checkins_moved();

INSERT INTO checkin_slots (slot, shard, checkins)
SELECT created_at / 900000000, 0, count(*) FROM checkins GROUP BY 1;
INSERT INTO user_activity (user_id, last_checkin_at)
SELECT user_id, max(created_at) FROM checkins GROUP BY user_id;
