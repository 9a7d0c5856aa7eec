//! `vicinity-bench populate`: the benchmark population on PostgreSQL (DESIGN.md §8): users
//! living where the seeded venues are, each with the same number of friends, check-ins at
//! venues near home, and presence for the active share of them.
//!
//! Bulk SQL does the volume (hundreds of millions of friendship rows would take hours through
//! the API); Rust adds what SQL cannot compute, the H3 cell of every presence. The rows obey
//! the rules the API enforces (symmetric friendships, visibility values, presence expiring
//! after the default TTL of 3 h), so the server treats them as grown data.
//!
//! Where people live: venues are ordered by H3 cell, which keeps neighbours in space close in
//! the order, and user `i` lives near venue `i × venues / users`. Venues follow population, so
//! users do too. Friends are id neighbours at a stride (`i ± k·stride`, k = 1..friends/2):
//! mostly in the same region, some across town, a few in the next city over, and every
//! friendship is mutual by construction.

use std::time::Instant;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable};
use vicinity_geo::{Point, storage_cell};

use crate::common::run_command;

/// The shape of the population.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct Shape {
    /// Users to create.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: i64,
    /// Friends per user (even: friendships come in ± pairs).
    #[arg(long, default_value_t = 200)]
    pub friends: i64,
    /// Distance in user ids between consecutive friends; larger spreads friends further.
    #[arg(long, default_value_t = 25)]
    pub stride: i64,
    /// Check-ins per user, at venues near home.
    #[arg(long, default_value_t = 5)]
    pub checkins_per_user: i64,
    /// Share of users with presence (seen within the last hour).
    #[arg(long, default_value_t = 0.5)]
    pub active: f64,
    /// Venues to seed first (`vicinity seed`), if fewer are present.
    #[arg(long, default_value_t = 200_000)]
    pub venues: u64,
}

impl Shape {
    fn check(&self) -> Result<(), String> {
        if self.friends < 2 || self.friends % 2 != 0 {
            return Err("--friends must be even and at least 2".into());
        }
        if self.stride < 1 || self.users <= self.friends * self.stride {
            return Err(format!(
                "--users must exceed friends × stride ({}) so every friend is someone else, once",
                self.friends * self.stride
            ));
        }
        if self.checkins_per_user < 1 {
            return Err("--checkins-per-user must be at least 1".into());
        }
        if !(0.0..=0.8).contains(&self.active) {
            return Err("--active must be within 0..0.8".into());
        }
        Ok(())
    }
}

/// What `bench_population` records about a populated database.
#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = BigInt)]
    users: i64,
    #[diesel(sql_type = BigInt)]
    friends: i64,
    #[diesel(sql_type = BigInt)]
    stride: i64,
    #[diesel(sql_type = BigInt)]
    checkins_per_user: i64,
    #[diesel(sql_type = Double)]
    active: f64,
    #[diesel(sql_type = BigInt)]
    populated_at: i64,
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn execute(conn: &mut PgConnection, sql: &str) -> Result<usize, String> {
    diesel::sql_query(sql).execute(conn).map_err(|e| {
        let head: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("{}…: {e}", head.chars().take(120).collect::<String>())
    })
}

/// Runs a step and reports how long it took.
fn step<T>(what: &str, run: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let started = Instant::now();
    eprint!("{what} … ");
    let result = run();
    eprintln!("{:.1} s", started.elapsed().as_secs_f64());
    result
}

fn recorded(conn: &mut PgConnection) -> Result<Option<Recorded>, String> {
    execute(
        conn,
        "CREATE TABLE IF NOT EXISTS bench_population (users BIGINT NOT NULL, friends BIGINT NOT \
         NULL, stride BIGINT NOT NULL, checkins_per_user BIGINT NOT NULL, active DOUBLE \
         PRECISION NOT NULL, populated_at BIGINT NOT NULL)",
    )?;
    let mut rows: Vec<Recorded> = diesel::sql_query(
        "SELECT users, friends, stride, checkins_per_user, active, populated_at \
         FROM bench_population",
    )
    .load(conn)
    .map_err(|e| e.to_string())?;
    Ok(rows.pop())
}

/// The population already in the database, if any; what benchmarks read before they run.
pub fn current(conn: &mut PgConnection) -> Result<Option<(Shape, i64)>, String> {
    Ok(recorded(conn)?.map(|r| {
        (
            Shape {
                users: r.users,
                friends: r.friends,
                stride: r.stride,
                checkins_per_user: r.checkins_per_user,
                active: r.active,
                venues: 0,
            },
            r.populated_at,
        )
    }))
}

/// Fills a database (migrated and seeded with venues by the `vicinity` binary first) with
/// `shape`; does nothing when it already holds that population.
pub fn populate(
    database_url: &str,
    vicinity: &std::path::Path,
    shape: &Shape,
) -> Result<(), String> {
    shape.check()?;
    let seeded = step("venues (vicinity seed)", || {
        run_command(
            std::process::Command::new(vicinity)
                .args(["--database-url", database_url, "seed", "--venues"])
                .arg(shape.venues.to_string())
                .stdin(std::process::Stdio::null()),
            "vicinity seed",
        )
    })?;
    eprintln!("  {}", seeded.trim());
    let mut conn = PgConnection::establish(database_url).map_err(|e| e.to_string())?;
    if let Some((existing, _)) = current(&mut conn)? {
        let same = Shape {
            venues: 0,
            ..shape.clone()
        };
        if existing == same {
            eprintln!("already populated with {existing:?}");
            return Ok(());
        }
        return Err(format!(
            "the database holds another population ({existing:?}); use a fresh database"
        ));
    }
    let users_present: i64 =
        diesel::select(diesel::dsl::sql::<BigInt>("(SELECT count(*) FROM users)"))
            .get_result(&mut conn)
            .map_err(|e| e.to_string())?;
    if users_present > 0 {
        return Err("the database already has users; populate a fresh one".into());
    }
    let started = Instant::now();
    let now = now_micros();
    // Bulk load: no per-row foreign-key triggers (the generator guarantees the references),
    // indexes built once at the end, big sorts in memory, one fixed random sequence.
    for setting in [
        "SET session_replication_role = replica",
        "SET maintenance_work_mem = '2GB'",
        "SET work_mem = '256MB'",
        "SET synchronous_commit = off",
        "SELECT setseed(0.2026)",
    ] {
        execute(&mut conn, setting)?;
    }
    let (n, friends, stride, per_user, active) = (
        shape.users,
        shape.friends,
        shape.stride,
        shape.checkins_per_user,
        shape.active,
    );
    step("venue order", || {
        execute(&mut conn, "DROP TABLE IF EXISTS bench_venue_order")?;
        execute(
            &mut conn,
            "CREATE UNLOGGED TABLE bench_venue_order AS SELECT (row_number() OVER (ORDER BY \
             cell, id) - 1) AS idx, id, lat, lng FROM venues",
        )?;
        execute(
            &mut conn,
            "ALTER TABLE bench_venue_order ADD PRIMARY KEY (idx)",
        )
    })?;
    let venue_count = venue_count(&mut conn)?;
    if venue_count == 0 {
        return Err("no venues to live near".into());
    }
    // The venue (by cell order) user i lives near.
    let home = format!("floor((i - 1)::float8 * {venue_count} / {n})::bigint");

    step(&format!("{n} users"), || {
        execute(
            &mut conn,
            &format!(
                "INSERT INTO users (id, username, username_key, email, email_key, display_name, \
                 display_name_key, location_precision, default_visibility, created_at, \
                 updated_at) \
                 SELECT i, 'bench' || i, 'bench' || i, 'bench' || i || '@example.com', \
                 'bench' || i || '@example.com', 'Bench User ' || i, 'bench user ' || i, \
                 CASE WHEN p < 0.2 THEN 'exact' WHEN p < 0.8 THEN 'neighborhood' \
                      WHEN p < 0.95 THEN 'city' ELSE 'off' END, \
                 CASE WHEN v < 0.3 THEN 'public' WHEN v < 0.9 THEN 'friends' ELSE 'private' END, \
                 {now} - 86400000000 * 400, {now} - 86400000000 * 400 \
                 FROM (SELECT i, random() AS p, random() AS v FROM generate_series(1::bigint, {n}) i) s"
            ),
        )
    })?;

    step(&format!("{} friendships", n * friends), || {
        execute(
            &mut conn,
            "ALTER TABLE friendships DROP CONSTRAINT friendships_pkey",
        )?;
        execute(&mut conn, "DROP INDEX friendships_friend_id")?;
        let half = friends / 2;
        execute(
            &mut conn,
            &format!(
                "INSERT INTO friendships (user_id, friend_id, created_at) \
                 SELECT i, ((i - 1 + k * {stride}) % {n} + {n}) % {n} + 1, {now} - 86400000000 * 300 \
                 FROM generate_series(1::bigint, {n}) i, generate_series(-{half}, {half}) k WHERE k <> 0"
            ),
        )?;
        execute(
            &mut conn,
            "ALTER TABLE friendships ADD CONSTRAINT friendships_pkey PRIMARY KEY (user_id, friend_id)",
        )?;
        execute(
            &mut conn,
            "CREATE INDEX friendships_friend_id ON friendships (friend_id)",
        )
    })?;

    step(&format!("{} check-ins", n * per_user), || {
        execute(&mut conn, "DROP INDEX checkins_user_created")?;
        execute(&mut conn, "DROP INDEX checkins_venue_created")?;
        // Check-in j of user i happened (per_user - j) × 6 days ago, give or take a day, at
        // one of the 21 venues around home.
        execute(
            &mut conn,
            &format!(
                "INSERT INTO checkins (id, user_id, venue_id, lat, lng, accuracy_m, shout, \
                 visibility, created_at, received_at) \
                 SELECT (s.i - 1) * {per_user} + s.j, s.i, v.id, \
                 LEAST(90, GREATEST(-90, v.lat + (s.dy - 0.5) * 0.0006)), \
                 LEAST(180, GREATEST(-180, v.lng + (s.dx - 0.5) * 0.0006)), 10 + s.a * 40, \
                 CASE WHEN s.t < 0.3 THEN 'Bench shout ' || s.j END, \
                 CASE WHEN s.w < 0.3 THEN 'public' WHEN s.w < 0.9 THEN 'friends' ELSE 'private' END, \
                 s.at, s.at \
                 FROM (SELECT i, j, \
                         LEAST({venue_count} - 1, GREATEST(0, {home} + floor(random() * 21)::bigint - 10)) AS vidx, \
                         random() AS dx, random() AS dy, random() AS a, random() AS t, random() AS w, \
                         {now} - (({per_user} - j) * 6 + random()) * 86400000000 AS at \
                       FROM generate_series(1::bigint, {n}) i, generate_series(1, {per_user}) j) s \
                 JOIN bench_venue_order v ON v.idx = s.vidx"
            ),
        )?;
        execute(
            &mut conn,
            "CREATE INDEX checkins_user_created ON checkins (user_id, created_at)",
        )?;
        execute(
            &mut conn,
            "CREATE INDEX checkins_venue_created ON checkins (venue_id, created_at)",
        )
    })?;

    step("presence", || {
        // Active users were seen within the last hour, half of them at their latest check-in,
        // the others around home. No expired rows: the server's maintenance pass deletes
        // those within minutes of starting.
        execute(&mut conn, "DROP TABLE IF EXISTS bench_presence_source")?;
        execute(
            &mut conn,
            &format!(
                "CREATE UNLOGGED TABLE bench_presence_source AS \
                 SELECT s.i AS user_id, \
                   CASE WHEN s.at_venue THEN c.lat \
                        ELSE LEAST(89.9, GREATEST(-89.9, hv.lat + (s.dy - 0.5) * 0.03)) END AS lat, \
                   CASE WHEN s.at_venue THEN c.lng \
                        ELSE hv.lng + (s.dx - 0.5) * 0.03 / cos(radians(LEAST(89.9, abs(hv.lat)))) END AS lng, \
                   CASE WHEN s.at_venue THEN c.accuracy_m ELSE 10 + s.a * 90 END AS accuracy_m, \
                   CASE WHEN s.at_venue THEN c.venue_id END AS venue_id, \
                   CASE WHEN s.at_venue THEN c.id END AS checkin_id, \
                   {now} - (s.dt * 3600000000)::bigint AS updated_at \
                 FROM (SELECT s0.*, (s0.r < {active} AND s0.rv < 0.5) AS at_venue \
                       FROM (SELECT i, random() AS r, random() AS rv, random() AS dx, \
                               random() AS dy, random() AS dt, random() AS a, {home} AS h \
                             FROM generate_series(1::bigint, {n}) i) s0) s \
                 JOIN bench_venue_order hv ON hv.idx = s.h \
                 JOIN checkins c ON c.id = (s.i - 1) * {per_user} + {per_user} \
                 WHERE s.r < {active}"
            ),
        )?;
        execute(&mut conn, "DROP INDEX presence_cell")?;
        load_presence(&mut conn)?;
        execute(&mut conn, "CREATE INDEX presence_cell ON presence (cell)")?;
        // The check-in behind a presence happened when the presence was set.
        execute(
            &mut conn,
            "UPDATE checkins c SET created_at = p.updated_at, received_at = p.updated_at \
             FROM presence p WHERE p.checkin_id = c.id",
        )?;
        execute(&mut conn, "DROP TABLE bench_presence_source")
    })?;

    step("statistics rollups", || {
        // The load ran without the triggers that keep them.
        execute(&mut conn, "RESET session_replication_role")?;
        execute(&mut conn, "SELECT stats_rollups_rebuild()")
    })?;

    step("vacuum and analyze", || {
        execute(
            &mut conn,
            "VACUUM (ANALYZE) users, friendships, checkins, presence, venues, checkin_cells, \
             checkin_slots, user_activity",
        )
    })?;
    execute(
        &mut conn,
        &format!(
            "INSERT INTO bench_population (users, friends, stride, checkins_per_user, active, \
             populated_at) VALUES ({n}, {friends}, {stride}, {per_user}, {active}, {now})"
        ),
    )?;
    eprintln!("populated in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The venues people live near and check in at, numbered 0.. in H3 cell order
/// (`bench_venue_order`, made by [`populate`]).
pub fn venue_count(conn: &mut PgConnection) -> Result<i64, String> {
    diesel::select(diesel::dsl::sql::<BigInt>(
        "(SELECT count(*) FROM bench_venue_order)",
    ))
    .get_result(conn)
    .map_err(|e| e.to_string())
}

#[derive(QueryableByName)]
struct Source {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = Double)]
    lat: f64,
    #[diesel(sql_type = Double)]
    lng: f64,
    #[diesel(sql_type = Double)]
    accuracy_m: f64,
    #[diesel(sql_type = Nullable<BigInt>)]
    venue_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    checkin_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    updated_at: i64,
}

/// Copies `bench_presence_source` into `presence`, adding each position's H3 cell and the
/// expiry the default TTL (3 h) gives it.
fn load_presence(conn: &mut PgConnection) -> Result<(), String> {
    const TTL_MICROS: i64 = 3 * 3_600_000_000;
    let mut after = 0_i64;
    loop {
        let rows: Vec<Source> = diesel::sql_query(format!(
            "SELECT user_id, lat, lng, accuracy_m, venue_id, checkin_id, updated_at \
             FROM bench_presence_source WHERE user_id > {after} ORDER BY user_id LIMIT 5000"
        ))
        .load(conn)
        .map_err(|e| e.to_string())?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.user_id;
        let mut values = Vec::with_capacity(rows.len());
        for row in &rows {
            // Wrap longitudes pushed past the antimeridian by the offset from home.
            let lng = (row.lng + 540.0).rem_euclid(360.0) - 180.0;
            let point = Point::new(row.lat, lng).map_err(|e| format!("{e:?}"))?;
            let optional = |v: Option<i64>| v.map_or("NULL".to_owned(), |v| v.to_string());
            values.push(format!(
                "({}, {:?}, {:?}, {:?}, {}, {}, {}, {}, {})",
                row.user_id,
                point.lat(),
                point.lng(),
                row.accuracy_m,
                storage_cell(point),
                optional(row.venue_id),
                optional(row.checkin_id),
                row.updated_at,
                row.updated_at + TTL_MICROS,
            ));
        }
        execute(
            conn,
            &format!(
                "INSERT INTO presence (user_id, lat, lng, accuracy_m, cell, venue_id, checkin_id, \
                 updated_at, expires_at) VALUES {}",
                values.join(", ")
            ),
        )?;
    }
}

/// A connection to the benchmark database at `url` and the shape of its population, after
/// moving that population's presence to now, as every benchmark does before it runs.
pub fn connect_refreshed(url: &str) -> Result<(PgConnection, Shape), String> {
    let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
    let (shape, _) = current(&mut conn)?
        .ok_or("the database has no benchmark population: run `vicinity-bench populate` first")?;
    eprintln!("population: {shape:?}");
    eprint!("moving presence to now … ");
    refresh(&mut conn)?;
    eprintln!("done");
    Ok((conn, shape))
}

/// Moves every presence and the check-in behind it forward, so that the newest is now, and
/// the same people are active whenever a benchmark runs. Shifting by the newest row rather than
/// by the time since populating keeps positions a benchmark run set later in the past.
pub fn refresh(conn: &mut PgConnection) -> Result<(), String> {
    let now = now_micros();
    execute(conn, "BEGIN")?;
    let shifted = (|| {
        let newest: i64 = diesel::select(diesel::dsl::sql::<BigInt>(&format!(
            "(SELECT COALESCE(max(updated_at), {now}) FROM presence)"
        )))
        .get_result(conn)
        .map_err(|e| e.to_string())?;
        let shift = (now - newest).max(0);
        execute(
            conn,
            &format!(
                "UPDATE presence SET updated_at = updated_at + {shift}, \
                 expires_at = expires_at + {shift}"
            ),
        )?;
        execute(
            conn,
            &format!(
                "UPDATE checkins c SET created_at = c.created_at + {shift}, received_at = \
                 c.received_at + {shift} FROM presence p WHERE p.checkin_id = c.id"
            ),
        )?;
        // What the server's maintenance pass would have removed by now.
        execute(
            conn,
            &format!("DELETE FROM presence WHERE expires_at <= {now}"),
        )?;
        execute(
            conn,
            &format!("UPDATE bench_population SET populated_at = {now}"),
        )
    })();
    match shifted {
        Ok(_) => execute(conn, "COMMIT")?,
        Err(error) => {
            execute(conn, "ROLLBACK")?;
            return Err(error);
        }
    };
    // Index-only scans of the friend lists need the visibility map set; a vacuum that ran
    // beside an auto-analyze during populating may have left pages unmarked. Pages already
    // all-visible are skipped, so this is cheap after the first time.
    execute(
        conn,
        "VACUUM (ANALYZE) presence, checkins, friendships, users",
    )?;
    // The shift rewrote hundreds of thousands of rows: write those pages out now, or the
    // checkpoint that would follow competes with whatever is measured first (both sides of a
    // comparison alike, but unevenly, depending on which runs first).
    execute(conn, "CHECKPOINT").map(|_| ())
}
