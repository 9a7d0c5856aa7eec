-- Rollups for the admin overview, kept exact by triggers on every write path (see the
-- PostgreSQL twin). SQLite has one writer at a time, so one shard is enough.

CREATE TABLE checkin_slots (
    slot     BIGINT NOT NULL,
    shard    INTEGER NOT NULL,
    checkins BIGINT NOT NULL,
    PRIMARY KEY (slot, shard)
);

CREATE TABLE user_activity (
    user_id         BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_checkin_at BIGINT NOT NULL
);

CREATE TRIGGER checkins_counted AFTER INSERT ON checkins BEGIN
    INSERT INTO checkin_slots (slot, shard, checkins) VALUES (NEW.created_at / 900000000, 0, 1)
    ON CONFLICT (slot, shard) DO UPDATE SET checkins = checkins + 1;
    INSERT INTO user_activity (user_id, last_checkin_at) VALUES (NEW.user_id, NEW.created_at)
    ON CONFLICT (user_id) DO UPDATE SET last_checkin_at = max(last_checkin_at, excluded.last_checkin_at);
END;

CREATE TRIGGER checkins_uncounted AFTER DELETE ON checkins BEGIN
    INSERT INTO checkin_slots (slot, shard, checkins) VALUES (OLD.created_at / 900000000, 0, -1)
    ON CONFLICT (slot, shard) DO UPDATE SET checkins = checkins - 1;
END;

CREATE TRIGGER checkins_moved AFTER UPDATE OF created_at ON checkins BEGIN
    INSERT INTO checkin_slots (slot, shard, checkins) VALUES (OLD.created_at / 900000000, 0, -1)
    ON CONFLICT (slot, shard) DO UPDATE SET checkins = checkins - 1;
    INSERT INTO checkin_slots (slot, shard, checkins) VALUES (NEW.created_at / 900000000, 0, 1)
    ON CONFLICT (slot, shard) DO UPDATE SET checkins = checkins + 1;
    INSERT INTO user_activity (user_id, last_checkin_at)
    SELECT NEW.user_id, max(created_at) FROM checkins WHERE user_id = NEW.user_id
    ON CONFLICT (user_id) DO UPDATE SET last_checkin_at = excluded.last_checkin_at;
END;

INSERT INTO checkin_slots (slot, shard, checkins)
SELECT created_at / 900000000, 0, count(*) FROM checkins GROUP BY 1;
INSERT INTO user_activity (user_id, last_checkin_at)
SELECT user_id, max(created_at) FROM checkins WHERE true GROUP BY user_id;
