-- Check-ins per UTC day and resolution-6 H3 cell of the venue, for the area statistics at
-- resolutions 0–6: over a continent or the world, joining millions of check-ins to their
-- venues and counting distinct people per cell took seconds to tens of seconds.
--
-- A row knows its check-ins exactly, and its visitors as a 256-bit bitmap (visitors0..3, bit
-- `b` of word `b / 64`): each person sets one bit, chosen by a multiplicative hash of the
-- user id. Bitmaps of days and cells merge by OR; the number of bits set never exceeds the
-- number of distinct people (two people may share a bit, one person never sets two), so a
-- cell shown because it has at least k bits set has at least k visitors.
--
-- A bitmap cannot forget a person, so deleting a check-in, moving it or moving its venue
-- recounts the (day, cell) rows it touched from the check-ins themselves.
--
-- Constants: a resolution-10 venue cell's resolution-6 parent is (cell & -67553994410557441)
-- | 27021597898440703; the resolution-10 cells under parent p lie between
-- ((p & -67553994410557441) | 45035996273704960) & -134184961 and
-- (p & -67553994410557441) | 45035996273704960. A person's bit is
-- (user_id % 2147483648) * 2654435761 % 4294967296 / 16777216 (0–255). The store's tests
-- hold these to vicinity_geo's masks and to the store's own copy of the hash.
CREATE TABLE checkin_cells (
    day       BIGINT NOT NULL,
    cell      BIGINT NOT NULL,
    shard     INTEGER NOT NULL,
    checkins  BIGINT NOT NULL,
    visitors0 BIGINT NOT NULL,
    visitors1 BIGINT NOT NULL,
    visitors2 BIGINT NOT NULL,
    visitors3 BIGINT NOT NULL,
    PRIMARY KEY (day, cell, shard)
);

-- Replaces the rows of the (day, cell) keys with counts from the check-ins.
CREATE FUNCTION checkin_cells_recount(days BIGINT[], cells BIGINT[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM checkin_cells c USING unnest(days, cells) AS k(day, cell)
    WHERE c.day = k.day AND c.cell = k.cell;
    INSERT INTO checkin_cells
        (day, cell, shard, checkins, visitors0, visitors1, visitors2, visitors3)
    SELECT k.day, k.cell, 0, count(*),
        bit_or(CASE h.b / 64 WHEN 0 THEN 1::bigint << (h.b % 64)::int ELSE 0 END),
        bit_or(CASE h.b / 64 WHEN 1 THEN 1::bigint << (h.b % 64)::int ELSE 0 END),
        bit_or(CASE h.b / 64 WHEN 2 THEN 1::bigint << (h.b % 64)::int ELSE 0 END),
        bit_or(CASE h.b / 64 WHEN 3 THEN 1::bigint << (h.b % 64)::int ELSE 0 END)
    FROM (SELECT DISTINCT day, cell FROM unnest(days, cells) AS u(day, cell)) k
    JOIN venues v ON v.cell BETWEEN
        ((k.cell & -67553994410557441) | 45035996273704960) & -134184961
        AND (k.cell & -67553994410557441) | 45035996273704960
    JOIN checkins c ON c.venue_id = v.id
        AND c.created_at >= k.day * 86400000000 AND c.created_at < (k.day + 1) * 86400000000
    CROSS JOIN LATERAL
        (SELECT (c.user_id % 2147483648) * 2654435761 % 4294967296 / 16777216 AS b) h
    GROUP BY k.day, k.cell;
END $$;

-- New check-ins add to their connection's shard row (see checkin_slots): concurrent check-ins
-- in one city never wait on one another.
CREATE FUNCTION checkin_cells_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO checkin_cells
        (day, cell, shard, checkins, visitors0, visitors1, visitors2, visitors3)
    SELECT n.created_at / 86400000000, (v.cell & -67553994410557441) | 27021597898440703,
        pg_backend_pid() % 16, count(*),
        bit_or(CASE n.b / 64 WHEN 0 THEN 1::bigint << (n.b % 64)::int ELSE 0 END),
        bit_or(CASE n.b / 64 WHEN 1 THEN 1::bigint << (n.b % 64)::int ELSE 0 END),
        bit_or(CASE n.b / 64 WHEN 2 THEN 1::bigint << (n.b % 64)::int ELSE 0 END),
        bit_or(CASE n.b / 64 WHEN 3 THEN 1::bigint << (n.b % 64)::int ELSE 0 END)
    FROM (SELECT venue_id, created_at,
              (user_id % 2147483648) * 2654435761 % 4294967296 / 16777216 AS b
          FROM new_rows) n
    JOIN venues v ON v.id = n.venue_id
    GROUP BY 1, 2
    ON CONFLICT (day, cell, shard) DO UPDATE SET
        checkins = checkin_cells.checkins + EXCLUDED.checkins,
        visitors0 = checkin_cells.visitors0 | EXCLUDED.visitors0,
        visitors1 = checkin_cells.visitors1 | EXCLUDED.visitors1,
        visitors2 = checkin_cells.visitors2 | EXCLUDED.visitors2,
        visitors3 = checkin_cells.visitors3 | EXCLUDED.visitors3;
    RETURN NULL;
END $$;

CREATE FUNCTION checkin_cells_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM checkin_cells_recount(array_agg(k.day), array_agg(k.cell))
    FROM (SELECT DISTINCT o.created_at / 86400000000 AS day,
              (v.cell & -67553994410557441) | 27021597898440703 AS cell
          FROM old_rows o JOIN venues v ON v.id = o.venue_id) k;
    RETURN NULL;
END $$;

-- Only a change of time, venue or person moves a check-in between rows or bits.
CREATE FUNCTION checkin_cells_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM checkin_cells_recount(array_agg(k.day), array_agg(k.cell))
    FROM (SELECT DISTINCT m.created_at / 86400000000 AS day,
              (v.cell & -67553994410557441) | 27021597898440703 AS cell
          FROM (SELECT o.created_at, o.venue_id FROM old_rows o JOIN new_rows n ON n.id = o.id
                WHERE (o.created_at, o.venue_id, o.user_id)
                      IS DISTINCT FROM (n.created_at, n.venue_id, n.user_id)
                UNION ALL
                SELECT n.created_at, n.venue_id FROM old_rows o JOIN new_rows n ON n.id = o.id
                WHERE (o.created_at, o.venue_id, o.user_id)
                      IS DISTINCT FROM (n.created_at, n.venue_id, n.user_id)) m
          JOIN venues v ON v.id = m.venue_id) k;
    RETURN NULL;
END $$;

-- A venue that moves to another resolution-6 cell takes its check-ins along.
CREATE FUNCTION checkin_cells_venue_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM checkin_cells_recount(array_agg(k.day), array_agg(k.cell))
    FROM (SELECT DISTINCT c.created_at / 86400000000 AS day, p.cell
          FROM checkins c
          CROSS JOIN (VALUES ((OLD.cell & -67553994410557441) | 27021597898440703),
                             ((NEW.cell & -67553994410557441) | 27021597898440703)) p(cell)
          WHERE c.venue_id = NEW.id) k;
    RETURN NULL;
END $$;

-- A venue's check-ins go before the venue does, while their cell can still be read (the
-- foreign key's cascade would delete them after it).
CREATE FUNCTION checkin_cells_venue_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM checkins WHERE venue_id = OLD.id;
    RETURN OLD;
END $$;

CREATE TRIGGER checkin_cells_added AFTER INSERT ON checkins
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION checkin_cells_added();
CREATE TRIGGER checkin_cells_removed AFTER DELETE ON checkins
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION checkin_cells_removed();
CREATE TRIGGER checkin_cells_moved AFTER UPDATE ON checkins
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION checkin_cells_moved();
CREATE TRIGGER checkin_cells_venue_moved AFTER UPDATE OF cell ON venues
    FOR EACH ROW
    WHEN (((OLD.cell & -67553994410557441) | 27021597898440703)
          IS DISTINCT FROM ((NEW.cell & -67553994410557441) | 27021597898440703))
    EXECUTE FUNCTION checkin_cells_venue_moved();
CREATE TRIGGER checkin_cells_venue_deleted BEFORE DELETE ON venues
    FOR EACH ROW EXECUTE FUNCTION checkin_cells_venue_deleted();

-- Rebuilds every statistics rollup from the check-ins: after a bulk load that ran without
-- triggers (session_replication_role = replica), as the benchmark's loader does.
CREATE FUNCTION stats_rollups_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE checkin_slots, user_activity, checkin_cells;
    INSERT INTO checkin_slots (slot, shard, checkins)
    SELECT created_at / 900000000, 0, count(*) FROM checkins GROUP BY 1;
    INSERT INTO user_activity (user_id, last_checkin_at)
    SELECT user_id, max(created_at) FROM checkins GROUP BY user_id;
    INSERT INTO checkin_cells
        (day, cell, shard, checkins, visitors0, visitors1, visitors2, visitors3)
    SELECT c.created_at / 86400000000, (v.cell & -67553994410557441) | 27021597898440703, 0,
        count(*),
        bit_or(CASE h.b / 64 WHEN 0 THEN 1::bigint << (h.b % 64)::int ELSE 0 END),
        bit_or(CASE h.b / 64 WHEN 1 THEN 1::bigint << (h.b % 64)::int ELSE 0 END),
        bit_or(CASE h.b / 64 WHEN 2 THEN 1::bigint << (h.b % 64)::int ELSE 0 END),
        bit_or(CASE h.b / 64 WHEN 3 THEN 1::bigint << (h.b % 64)::int ELSE 0 END)
    FROM checkins c
    JOIN venues v ON v.id = c.venue_id
    CROSS JOIN LATERAL
        (SELECT (c.user_id % 2147483648) * 2654435761 % 4294967296 / 16777216 AS b) h
    GROUP BY 1, 2;
END $$;

SELECT stats_rollups_rebuild();
