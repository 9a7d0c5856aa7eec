//! `vicinity-bench stats`: the admin statistics endpoints on the populated database (5 M
//! check-ins, see `population`), each case beside the SQL aggregate it needs run directly on
//! PostgreSQL in the same run, against the target of an answer within a second.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use serde_json::Value;
use vicinity_api::SigningKeys;
use vicinity_domain::VenueId;
use vicinity_geo::hexagon::{BoundingBox, parent_masks};
use vicinity_geo::{Cover, Point};
use vicinity_store::stats::ROLLUP_RESOLUTION;

use crate::common::{Server, Timings, millis, run_command};
use crate::population;
use crate::tokens::{AUDIENCE, ISSUER};

const ADMIN: &str = "benchadmin";
const TARGET: Duration = Duration::from_secs(1);
const WINDOW_DAYS: i64 = 30;
const TOP_LIMIT: usize = 20;
const TZ: &str = "America/New_York";
/// Europe, from the Azores to the Urals: a continent at resolution 4 stays under the
/// server's cap of 20,000 cells.
const CONTINENT: &str = "-25,34,45,72";
const WORLD: &str = "-180,-85,180,85";
/// Mean Earth radius, as `vicinity_geo` measures distances.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The populated PostgreSQL database (`vicinity-bench populate`).
    #[arg(long, env = "VICINITY_BENCH_DATABASE_URL")]
    pub database_url: String,
    /// The release binary of the server.
    #[arg(long, default_value = "target/release/vicinity")]
    pub vicinity: PathBuf,
    /// Warm-up requests per case (and as many SQL runs), not measured.
    #[arg(long, default_value_t = 3)]
    pub warm_up: usize,
    /// Measured requests per case, one at a time, alternating with as many SQL runs.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Print EXPLAIN (ANALYZE, BUFFERS) of the SQL baseline of every case whose p95 is over 1 s.
    #[arg(long)]
    pub explain: bool,
    /// Run only the cases whose name contains this text (e.g. `overview`, `cells`).
    #[arg(long)]
    pub only: Option<String>,
}

/// What the cases ask about, read from the population.
struct Scene {
    /// The 30 days up to just after the newest check-in: the same rows whenever the
    /// benchmark runs, however long ago the database was populated.
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    venue: Busiest,
    centre: Point,
    place: String,
    users: u64,
    checkins: u64,
}

#[derive(QueryableByName)]
struct Newest {
    #[diesel(sql_type = BigInt)]
    micros: i64,
}

#[derive(QueryableByName)]
struct Busiest {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    checkins: i64,
}

#[derive(QueryableByName)]
struct Centre {
    #[diesel(sql_type = Double)]
    lat: f64,
    #[diesel(sql_type = Double)]
    lng: f64,
    #[diesel(sql_type = Text)]
    place: String,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn one<T: diesel::deserialize::QueryableByName<diesel::pg::Pg> + 'static>(
    conn: &mut PgConnection,
    sql: &str,
) -> Result<T, String> {
    diesel::sql_query(sql)
        .load::<T>(conn)
        .map_err(|e| format!("{sql}: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no row from {sql}"))
}

/// The window, the busiest venue in it, and the densest city centre: the mean position of
/// the venues in the 0.1° square holding the most of them.
fn scene(conn: &mut PgConnection, shape: &population::Shape) -> Result<Scene, String> {
    let newest: Newest = one(conn, "SELECT max(created_at) AS micros FROM checkins")?;
    let to = DateTime::from_timestamp(newest.micros / 1_000_000 + 1, 0)
        .ok_or("the newest check-in has no valid time")?;
    let from = to - TimeDelta::days(WINDOW_DAYS);
    let venue: Busiest = one(
        conn,
        &format!(
            "SELECT v.id, v.name, b.checkins FROM venues v JOIN (SELECT venue_id, count(*) AS \
             checkins FROM checkins WHERE created_at >= {} AND created_at < {} GROUP BY venue_id \
             ORDER BY checkins DESC, venue_id LIMIT 1) b ON b.venue_id = v.id",
            micros(from),
            micros(to)
        ),
    )?;
    let centre: Centre = one(
        conn,
        "WITH square AS (SELECT round(lat::numeric, 1) AS la, round(lng::numeric, 1) AS lo \
         FROM venues GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1) \
         SELECT avg(v.lat) AS lat, avg(v.lng) AS lng, \
         mode() WITHIN GROUP (ORDER BY coalesce(v.locality, '?')) || ', ' || \
         mode() WITHIN GROUP (ORDER BY coalesce(v.country_code, '?')) AS place \
         FROM venues v, square s \
         WHERE round(v.lat::numeric, 1) = s.la AND round(v.lng::numeric, 1) = s.lo",
    )?;
    Ok(Scene {
        from,
        to,
        venue,
        centre: Point::new(centre.lat, centre.lng).map_err(|e| format!("{e:?}"))?,
        place: centre.place,
        users: u64::try_from(shape.users).unwrap_or(0),
        checkins: u64::try_from(shape.users * shape.checkins_per_user).unwrap_or(0),
    })
}

/// One HTTP answer and how long it took, body included.
struct Answer {
    elapsed: Duration,
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("not JSON: {e}"))
    }
}

fn number(value: &Value, pointer: &str) -> Result<u64, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("no number at {pointer}"))
}

fn length(value: &Value, pointer: &str) -> Result<usize, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or_else(|| format!("no list at {pointer}"))
}

/// Whether an answer is a real one, given the rows its SQL baseline returned; what it holds.
type Check = Box<dyn Fn(&Answer, usize) -> Result<String, String>>;

/// One measured request and its baseline.
struct Case {
    name: String,
    path: String,
    check: Check,
    /// The statements of the baseline, made anew for each run (the overview's "now").
    sql: Box<dyn Fn() -> Vec<String>>,
}

fn venue_case(scene: &Scene, bucket: &str) -> Case {
    let (v, from, to) = (scene.venue.id, micros(scene.from), micros(scene.to));
    let series = format!(
        "SELECT date_trunc('{bucket}', to_timestamp(created_at / 1e6) AT TIME ZONE '{TZ}') AS \
         bucket, count(*), count(DISTINCT user_id) FROM checkins WHERE venue_id = {v} AND \
         created_at >= {from} AND created_at < {to} GROUP BY 1"
    );
    let returning = format!(
        "SELECT count(DISTINCT user_id) FROM checkins WHERE venue_id = {v} AND created_at < \
         {from} AND user_id IN (SELECT user_id FROM checkins WHERE venue_id = {v} AND \
         created_at >= {from} AND created_at < {to})"
    );
    Case {
        name: format!("venue stats, busiest venue, 30 days, bucket={bucket}, tz={TZ}"),
        path: format!(
            "/v1/admin/venues/{}/stats?from={}&to={}&bucket={bucket}&tz={TZ}",
            VenueId::from_raw(v),
            rfc3339(scene.from),
            rfc3339(scene.to)
        ),
        check: Box::new(|answer, rows| {
            let body = answer.json()?;
            let (checkins, series) = (number(&body, "/checkins")?, length(&body, "/series")?);
            if checkins == 0 || series < rows {
                return Err(format!("{checkins} check-ins in {series} buckets"));
            }
            Ok(format!("{checkins} check-ins, {series} buckets"))
        }),
        sql: Box::new(move || vec![series.clone(), returning.clone()]),
    }
}

fn top_case(scene: &Scene, radius_m: f64) -> Result<Case, String> {
    let (lat, lng) = (scene.centre.lat(), scene.centre.lng());
    let cover = Cover::circle(scene.centre, radius_m).map_err(|e| format!("{e:?}"))?;
    let ranges: Vec<String> = cover
        .ranges()
        .iter()
        .map(|r| format!("v.cell BETWEEN {} AND {}", r.first, r.last))
        .collect();
    // The same cover over the venues' cell index as the store, and the exact distance in SQL.
    let sql = format!(
        "SELECT v.id, count(*) AS checkins, count(DISTINCT c.user_id) AS visitors \
         FROM venues v JOIN checkins c ON c.venue_id = v.id WHERE ({}) AND 2 * {EARTH_RADIUS_M} \
         * asin(sqrt(power(sin(radians(v.lat - {lat}) / 2), 2) + cos(radians({lat})) * \
         cos(radians(v.lat)) * power(sin(radians(v.lng - {lng}) / 2), 2))) <= {radius_m} \
         AND c.created_at >= {} AND c.created_at < {} \
         GROUP BY v.id ORDER BY checkins DESC, visitors DESC, v.id LIMIT {TOP_LIMIT}",
        ranges.join(" OR "),
        micros(scene.from),
        micros(scene.to)
    );
    Ok(Case {
        name: format!("top venues, {:.0} km, 30 days", radius_m / 1_000.0),
        path: format!(
            "/v1/admin/stats/top-venues?ll={lat},{lng}&radius={radius_m}&from={}&to={}&limit={TOP_LIMIT}",
            rfc3339(scene.from),
            rfc3339(scene.to)
        ),
        check: Box::new(|answer, rows| {
            let body = answer.json()?;
            let items = length(&body, "/items")?;
            if items == 0 || items != rows.min(TOP_LIMIT) {
                return Err(format!("{items} venues where SQL found {rows}"));
            }
            Ok(format!(
                "{items} venues, busiest {} check-ins",
                number(&body, "/items/0/checkins")?
            ))
        }),
        sql: Box::new(move || vec![sql.clone()]),
    })
}

/// Check-ins joined to their venues in the box, grouped by the parent cell computed with H3
/// bit masks: the store's own statement at resolutions 7–10, what its rollup replaces at 0–6.
fn cells_sql(scene: &Scene, bbox: &str, res: u8) -> Result<String, String> {
    let area = BoundingBox::parse(bbox).map_err(|e| format!("{bbox}: {e}"))?;
    let (clear, set) = parent_masks(res).ok_or_else(|| format!("no resolution {res}"))?;
    let lng = match area.lng_spans().as_slice() {
        [(w, e)] => format!("v.lng BETWEEN {w} AND {e}"),
        [(w1, e1), (w2, e2)] => {
            format!("(v.lng BETWEEN {w1} AND {e1} OR v.lng BETWEEN {w2} AND {e2})")
        }
        _ => return Err(format!("{bbox}: no longitudes")),
    };
    Ok(format!(
        "SELECT ((v.cell & ({clear})) | ({set})) AS cell, count(*), count(DISTINCT c.user_id) \
         FROM checkins c JOIN venues v ON v.id = c.venue_id WHERE c.created_at >= {} AND \
         c.created_at < {} AND v.lat BETWEEN {} AND {} AND {lng} GROUP BY 1",
        micros(scene.from),
        micros(scene.to),
        area.min_lat,
        area.max_lat,
    ))
}

fn cells_path(scene: &Scene, bbox: &str, res: u8, format: &str) -> String {
    format!(
        "/v1/admin/stats/cells?res={res}&bbox={bbox}&from={}&to={}&format={format}",
        rfc3339(scene.from),
        rfc3339(scene.to)
    )
}

fn cells_case(
    scene: &Scene,
    area: &str,
    bbox: &str,
    res: u8,
    format: &str,
) -> Result<Case, String> {
    let sql = cells_sql(scene, bbox, res)?;
    let check: Check = match format {
        "csv" => Box::new(|answer, rows| {
            let lines = answer
                .body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            let cells = lines.saturating_sub(1);
            if !answer.content_type.starts_with("text/csv") || cells == 0 || cells > rows {
                return Err(format!("{} with {cells} cells", answer.content_type));
            }
            Ok(format!("{cells} rows"))
        }),
        "svg" => Box::new(|answer, _| {
            let text = String::from_utf8_lossy(&answer.body);
            let cells = text.matches("<path").count();
            if !answer.content_type.starts_with("image/svg+xml") || cells == 0 {
                return Err(format!("{} with {cells} paths", answer.content_type));
            }
            Ok(format!("{cells} hexagons"))
        }),
        // At the rollup's resolution or coarser the box takes whole resolution-6 cells by
        // their centre, where the SQL takes venues: cells along the edge may differ.
        _ => Box::new(move |answer, rows| {
            let body = answer.json()?;
            let shown = length(&body, "/features")?;
            let hidden = number(&body, "/suppressed_cells")?;
            let found = shown as u64 + hidden;
            let leeway = if res > ROLLUP_RESOLUTION {
                0
            } else {
                rows as u64 / 50
            };
            if shown == 0 || found.abs_diff(rows as u64) > leeway {
                return Err(format!(
                    "{shown} cells + {hidden} hidden where SQL found {rows}"
                ));
            }
            Ok(format!("{shown} cells, {hidden} hidden"))
        }),
    };
    Ok(Case {
        name: format!("cells res={res}, {area}, 30 days, {format}"),
        path: cells_path(scene, bbox, res, format),
        check,
        sql: Box::new(move || vec![sql.clone()]),
    })
}

fn overview_case(scene: &Scene) -> Case {
    let (users, checkins) = (scene.users, scene.checkins);
    Case {
        name: "overview, 30 days, UTC".into(),
        path: "/v1/admin/stats/overview".into(),
        check: Box::new(move |answer, _| {
            let body = answer.json()?;
            let total = number(&body, "/users/total")?;
            let all = number(&body, "/checkins/total")?;
            let days = length(&body, "/checkins/per_day")?;
            if total < users || all < checkins || days != WINDOW_DAYS as usize {
                return Err(format!("{total} users, {all} check-ins, {days} days"));
            }
            Ok(format!("{total} users, {all} check-ins"))
        }),
        sql: Box::new(|| {
            let now = Utc::now();
            let today = now.timestamp_micros() / 86_400_000_000 * 86_400_000_000;
            let active = |days: i64| {
                format!(
                    "(SELECT count(DISTINCT user_id) FROM checkins WHERE created_at >= {})",
                    micros(now - TimeDelta::days(days))
                )
            };
            vec![
                format!(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM users WHERE \
                     suspended_at IS NOT NULL), (SELECT count(*) FROM users WHERE is_admin), \
                     {}, {}, {}, (SELECT count(*) FROM presence WHERE expires_at > {}), \
                     (SELECT count(*) FROM checkins)",
                    active(1),
                    active(7),
                    active(WINDOW_DAYS),
                    micros(now)
                ),
                format!(
                    "SELECT created_at / 86400000000 AS day, count(*) FROM checkins WHERE \
                     created_at >= {} AND created_at < {} GROUP BY 1",
                    today - (WINDOW_DAYS - 1) * 86_400_000_000,
                    micros(now)
                ),
            ]
        }),
    }
}

/// Runs the statements in order on one connection: the time they took, and the rows the
/// first returned.
fn run_sql(conn: &mut PgConnection, statements: &[String]) -> Result<(Duration, usize), String> {
    let started = Instant::now();
    let mut rows = None;
    for statement in statements {
        let n = diesel::sql_query(statement)
            .execute(conn)
            .map_err(|e| format!("{statement}: {e}"))?;
        rows.get_or_insert(n);
    }
    Ok((started.elapsed(), rows.unwrap_or(0)))
}

/// Where requests go, and how.
struct Client {
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// `GET {path}` with the admin token, timed until the whole body has arrived.
    fn get(&self, path: &str) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let started = Instant::now();
            let response = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
            Ok(Answer {
                elapsed: started.elapsed(),
                status,
                content_type,
                body: body.to_vec(),
            })
        })
    }

    /// The finest resolution up to `res` at which the server agrees to count the cells of
    /// `bbox` (it refuses a box spanning too many cells with 422).
    fn finest_accepted(&self, scene: &Scene, bbox: &str, res: u8) -> Result<u8, String> {
        for r in (0..=res).rev() {
            let answer = self.get(&cells_path(scene, bbox, r, "json"))?;
            match answer.status {
                200 => return Ok(r),
                422 => eprintln!(
                    "cells over {bbox}: res={r} refused (422), trying res={}",
                    r.saturating_sub(1)
                ),
                status => return Err(format!("cells over {bbox}: {status}")),
            }
        }
        Err(format!("cells over {bbox}: refused at every resolution"))
    }
}

/// A case measured: what the last answer held, and both sides' latencies.
struct Measured {
    answer: String,
    endpoint: Timings,
    sql: Timings,
}

fn measure(
    case: &Case,
    client: &Client,
    conn: &mut PgConnection,
    args: &StatsArgs,
) -> Result<Measured, String> {
    let (mut ours, mut theirs, mut held) = (Vec::new(), Vec::new(), String::new());
    for i in 0..args.warm_up + args.runs {
        let statements = (case.sql)();
        // Alternate which goes first, so both see the same caches on average.
        let ((sql_time, rows), answer) = if i % 2 == 0 {
            let sql = run_sql(conn, &statements)?;
            (sql, client.get(&case.path)?)
        } else {
            let answer = client.get(&case.path)?;
            (run_sql(conn, &statements)?, answer)
        };
        if answer.status != 200 {
            let text = String::from_utf8_lossy(&answer.body);
            return Err(format!(
                "{}: {}: {}",
                case.path,
                answer.status,
                text.chars().take(400).collect::<String>()
            ));
        }
        let what = (case.check)(&answer, rows).map_err(|e| format!("{}: {e}", case.name))?;
        held = format!("{what}; {:.0} kB", answer.body.len() as f64 / 1024.0);
        if i >= args.warm_up {
            ours.push(answer.elapsed);
            theirs.push(sql_time);
        }
    }
    Ok(Measured {
        answer: held,
        endpoint: Timings::new("endpoint", ours),
        sql: Timings::new("sql", theirs),
    })
}

/// An administrator's token from the CLI, as an operator would make one, signed with the
/// server's key for its issuer and audience. The account stays for later runs.
fn admin_token(vicinity: &Path, env: &[(&str, OsString)]) -> Result<String, String> {
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(vicinity);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    };
    let mut child = cli(&[
        "admin",
        "create-user",
        "--username",
        ADMIN,
        "--email",
        "benchadmin@example.com",
        "--admin",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .map_err(|e| format!("vicinity admin create-user: {e}"))?;
    let password = format!("bench {:032x}", rand::random::<u128>());
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(format!("{password}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let created = child.wait_with_output().map_err(|e| e.to_string())?;
    if !created.status.success() {
        let why = String::from_utf8_lossy(&created.stderr);
        if !why.contains("already taken") {
            return Err(format!("vicinity admin create-user failed: {why}"));
        }
        // Made by an earlier run: make sure it is still an administrator.
        run_command(
            &mut cli(&["admin", "promote", ADMIN]),
            "vicinity admin promote",
        )?;
    }
    // Long enough for a run with many --runs.
    let printed = run_command(
        &mut cli(&[
            "admin", "token", "--user", ADMIN, "--scope", "admin", "--ttl", "6h",
        ]),
        "vicinity admin token",
    )?;
    printed
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "vicinity admin token printed nothing".into())
}

fn explain(database_url: &str, statements: &[String]) -> Result<(), String> {
    for statement in statements {
        let plan = run_command(
            std::process::Command::new("psql")
                .args([database_url, "-X", "-c"])
                .arg(format!("EXPLAIN (ANALYZE, BUFFERS) {statement}")),
            "psql EXPLAIN",
        )?;
        println!(
            "\n```sql\n{statement}\n```\n\n```\n{}\n```",
            plan.trim_end()
        );
    }
    Ok(())
}

/// Starts the release server on the database, with an administrator's token from the CLI;
/// the directory holds its signing key and must outlive it.
fn serve(args: &StatsArgs) -> Result<(Client, Server, tempfile::TempDir), String> {
    let data_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key_file = data_dir.path().join("signing-key.pem");
    SigningKeys::generate()
        .write_new(&key_file)
        .map_err(|e| e.to_string())?;
    let env: Vec<(&str, OsString)> = vec![
        ("DATABASE_URL", args.database_url.clone().into()),
        ("VICINITY_DATA_DIR", data_dir.path().into()),
        ("VICINITY_SIGNING_KEY_FILE", key_file.into()),
        ("VICINITY_PUBLIC_URL", ISSUER.into()),
        ("VICINITY_TOKEN_AUDIENCE", AUDIENCE.into()),
        ("VICINITY_RATE_LIMIT_TOKEN", "off".into()),
        ("VICINITY_RATE_LIMIT_ADDRESS", "off".into()),
        ("RUST_LOG", "warn".into()),
    ];
    let token = admin_token(&args.vicinity, &env)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(&args.vicinity);
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("VICINITY_BIND", "127.0.0.1:0");
    let server = runtime.block_on(Server::start(command, "Vicinity listening on "))?;
    runtime.block_on(server.wait_until_ready("/readyz"))?;
    let client = Client {
        base: server.base.clone(),
        runtime,
        http: reqwest::Client::new(),
        token,
    };
    Ok((client, server, data_dir))
}

/// The cases, in the order of the table. The world box at resolution 3 may span more cells
/// than the server counts; then the finest resolution it accepts stands in, and says so.
fn cases(scene: &Scene, client: &Client) -> Result<Vec<Case>, String> {
    let [north, east, south, west] =
        [0.0, 90.0, 180.0, 270.0].map(|bearing| scene.centre.destination(bearing, 15_000.0));
    let city = format!(
        "{},{},{},{}",
        west.lng(),
        south.lat(),
        east.lng(),
        north.lat()
    );
    let world_res = client.finest_accepted(scene, WORLD, 3)?;
    let world = if world_res == 3 {
        "world".to_owned()
    } else {
        "world (res=3 refused: 422)".to_owned()
    };
    Ok(vec![
        venue_case(scene, "day"),
        venue_case(scene, "hour"),
        top_case(scene, 5_000.0)?,
        top_case(scene, 50_000.0)?,
        cells_case(scene, "30×30 km around the centre", &city, 8, "json")?,
        cells_case(scene, "Europe", CONTINENT, 4, "json")?,
        cells_case(scene, "Europe", CONTINENT, 4, "svg")?,
        cells_case(scene, &world, WORLD, world_res, "json")?,
        cells_case(scene, &world, WORLD, world_res, "csv")?,
        overview_case(scene),
    ])
}

fn print_heading(scene: &Scene, args: &StatsArgs) {
    println!(
        "\nstats: {} users, {} check-ins; window {} to {} (the {WINDOW_DAYS} days up to the \
         newest check-in); busiest venue {} \"{}\" ({} check-ins); densest centre {:.4},{:.4} \
         ({}); {} warm-up + {} measured requests per case, one at a time, alternating with the \
         SQL\n",
        scene.users,
        scene.checkins,
        rfc3339(scene.from),
        rfc3339(scene.to),
        VenueId::from_raw(scene.venue.id),
        scene.venue.name,
        scene.venue.checkins,
        scene.centre.lat(),
        scene.centre.lng(),
        scene.place,
        args.warm_up,
        args.runs,
    );
    println!(
        "| case | answer | endpoint p50 ms | p95 ms | max ms | SQL p50 ms | endpoint ÷ SQL | \
         p50 ÷ 1 s | within 1 s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|:---:|");
}

/// Prints a case's row; whether its p95 misses the target.
fn print_row(case: &Case, m: &Measured) -> bool {
    let (p50, p95) = (m.endpoint.median(), m.endpoint.quantile(0.95));
    let ratio = p50.as_secs_f64() / m.sql.median().as_secs_f64().max(f64::MIN_POSITIVE);
    println!(
        "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {ratio:.2}× | {:.1} % | {} |",
        case.name,
        m.answer,
        millis(p50),
        millis(p95),
        millis(m.endpoint.quantile(1.0)),
        millis(m.sql.median()),
        p50.as_secs_f64() / TARGET.as_secs_f64() * 100.0,
        if p95 <= TARGET { "yes" } else { "no" },
    );
    p95 > TARGET
}

pub fn stats(args: &StatsArgs) -> Result<(), String> {
    let mut conn = PgConnection::establish(&args.database_url).map_err(|e| e.to_string())?;
    let (shape, _) = population::current(&mut conn)?
        .ok_or("the database has no benchmark population: run `vicinity-bench populate` first")?;
    let scene = scene(&mut conn, &shape)?;
    let (client, server, _data_dir) = serve(args)?;
    let mut cases = cases(&scene, &client)?;
    if let Some(only) = &args.only {
        cases.retain(|case| case.name.contains(only.as_str()));
    }
    print_heading(&scene, args);
    let mut slow = Vec::new();
    for case in &cases {
        let measured = measure(case, &client, &mut conn, args)?;
        if print_row(case, &measured) {
            slow.push(case);
        }
    }
    println!(
        "\nSQL baselines, run directly on PostgreSQL over one plain connection with the same \
         parameters, interleaved with the requests: venue stats, check-ins and visitors per \
         bucket (date_trunc in the zone) and the returning visitors; top venues, the store's \
         cell cover with the distance in SQL, grouped per venue, first {TOP_LIMIT}; cells, the \
         check-ins joined to their venues per cell (the store's statement at res 7-10, what the \
         rollup replaces at 0-6); overview, the same counts computed from the raw check-ins in \
         one statement and check-ins per UTC day (what the server's rollups replace). Within \
         1 s: p95."
    );
    if let Some(rss) = server.peak_rss_mib() {
        println!("server peak RSS over the whole run: {rss:.0} MiB");
    }
    if args.explain {
        for case in slow {
            println!("\n#### {} (over 1 s)", case.name);
            explain(&args.database_url, &(case.sql)())?;
        }
    }
    client.runtime.block_on(server.stop());
    Ok(())
}
