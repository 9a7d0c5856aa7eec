-- Check-ins per UTC day and resolution-6 H3 cell of the venue, with a 256-bit bitmap of their
-- visitors: see the PostgreSQL twin for the layout and the constants. SQLite has one writer
-- at a time, so one shard is enough; it has no bit_or aggregate, so a recount ORs the bits
-- with SUM(DISTINCT …) of powers of two.
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

-- A (day, cell) key written here is recounted from the check-ins at once, then forgotten.
CREATE TABLE checkin_cells_stale (
    day  BIGINT NOT NULL,
    cell BIGINT NOT NULL
);

CREATE TRIGGER checkin_cells_recount AFTER INSERT ON checkin_cells_stale BEGIN
    DELETE FROM checkin_cells WHERE day = NEW.day AND cell = NEW.cell;
    INSERT INTO checkin_cells
        (day, cell, shard, checkins, visitors0, visitors1, visitors2, visitors3)
    SELECT NEW.day, NEW.cell, 0, n, v0, v1, v2, v3
    FROM (SELECT count(*) AS n,
              COALESCE(SUM(DISTINCT CASE b / 64 WHEN 0 THEN 1 << (b % 64) END), 0) AS v0,
              COALESCE(SUM(DISTINCT CASE b / 64 WHEN 1 THEN 1 << (b % 64) END), 0) AS v1,
              COALESCE(SUM(DISTINCT CASE b / 64 WHEN 2 THEN 1 << (b % 64) END), 0) AS v2,
              COALESCE(SUM(DISTINCT CASE b / 64 WHEN 3 THEN 1 << (b % 64) END), 0) AS v3
          FROM (SELECT (c.user_id % 2147483648) * 2654435761 % 4294967296 / 16777216 AS b
                FROM venues v JOIN checkins c ON c.venue_id = v.id
                WHERE v.cell
                      BETWEEN ((NEW.cell & -67553994410557441) | 45035996273704960) & -134184961
                          AND (NEW.cell & -67553994410557441) | 45035996273704960
                  AND c.created_at >= NEW.day * 86400000000
                  AND c.created_at < (NEW.day + 1) * 86400000000))
    WHERE n > 0;
    DELETE FROM checkin_cells_stale;
END;

CREATE TRIGGER checkin_cells_added AFTER INSERT ON checkins BEGIN
    INSERT INTO checkin_cells
        (day, cell, shard, checkins, visitors0, visitors1, visitors2, visitors3)
    SELECT NEW.created_at / 86400000000, (v.cell & -67553994410557441) | 27021597898440703, 0, 1,
        CASE h.b / 64 WHEN 0 THEN 1 << (h.b % 64) ELSE 0 END,
        CASE h.b / 64 WHEN 1 THEN 1 << (h.b % 64) ELSE 0 END,
        CASE h.b / 64 WHEN 2 THEN 1 << (h.b % 64) ELSE 0 END,
        CASE h.b / 64 WHEN 3 THEN 1 << (h.b % 64) ELSE 0 END
    FROM venues v,
        (SELECT (NEW.user_id % 2147483648) * 2654435761 % 4294967296 / 16777216 AS b) h
    WHERE v.id = NEW.venue_id
    ON CONFLICT (day, cell, shard) DO UPDATE SET
        checkins = checkins + excluded.checkins,
        visitors0 = visitors0 | excluded.visitors0,
        visitors1 = visitors1 | excluded.visitors1,
        visitors2 = visitors2 | excluded.visitors2,
        visitors3 = visitors3 | excluded.visitors3;
END;

CREATE TRIGGER checkin_cells_removed AFTER DELETE ON checkins BEGIN
    INSERT INTO checkin_cells_stale (day, cell)
    SELECT OLD.created_at / 86400000000, (cell & -67553994410557441) | 27021597898440703
    FROM venues WHERE id = OLD.venue_id;
END;

CREATE TRIGGER checkin_cells_moved AFTER UPDATE OF created_at, venue_id, user_id ON checkins
BEGIN
    INSERT INTO checkin_cells_stale (day, cell)
    SELECT OLD.created_at / 86400000000, (cell & -67553994410557441) | 27021597898440703
    FROM venues WHERE id = OLD.venue_id;
    INSERT INTO checkin_cells_stale (day, cell)
    SELECT NEW.created_at / 86400000000, (cell & -67553994410557441) | 27021597898440703
    FROM venues WHERE id = NEW.venue_id;
END;

CREATE TRIGGER checkin_cells_venue_moved AFTER UPDATE OF cell ON venues
WHEN ((OLD.cell & -67553994410557441) | 27021597898440703)
     IS NOT ((NEW.cell & -67553994410557441) | 27021597898440703)
BEGIN
    INSERT INTO checkin_cells_stale (day, cell)
    SELECT DISTINCT c.created_at / 86400000000, p.cell
    FROM checkins c,
        (SELECT (OLD.cell & -67553994410557441) | 27021597898440703 AS cell
         UNION SELECT (NEW.cell & -67553994410557441) | 27021597898440703) p
    WHERE c.venue_id = NEW.id;
END;

-- A venue's check-ins go before the venue does, while their cell can still be read.
CREATE TRIGGER checkin_cells_venue_deleted BEFORE DELETE ON venues BEGIN
    DELETE FROM checkins WHERE venue_id = OLD.id;
END;

INSERT INTO checkin_cells
    (day, cell, shard, checkins, visitors0, visitors1, visitors2, visitors3)
SELECT day, cell, 0, count(*),
    COALESCE(SUM(DISTINCT CASE b / 64 WHEN 0 THEN 1 << (b % 64) END), 0),
    COALESCE(SUM(DISTINCT CASE b / 64 WHEN 1 THEN 1 << (b % 64) END), 0),
    COALESCE(SUM(DISTINCT CASE b / 64 WHEN 2 THEN 1 << (b % 64) END), 0),
    COALESCE(SUM(DISTINCT CASE b / 64 WHEN 3 THEN 1 << (b % 64) END), 0)
FROM (SELECT c.created_at / 86400000000 AS day,
          (v.cell & -67553994410557441) | 27021597898440703 AS cell,
          (c.user_id % 2147483648) * 2654435761 % 4294967296 / 16777216 AS b
      FROM checkins c JOIN venues v ON v.id = c.venue_id) t
WHERE true
GROUP BY day, cell;
