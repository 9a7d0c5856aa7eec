//! `vicinity-bench venue-search`: radius search over seeded venues on PostgreSQL, through the
//! store (cover + B-tree range scans + exact filter) and through the HTTP endpoint, beside the
//! same search done by PostGIS (`ST_DWithin` on a GiST index over the same rows). Run it with
//! `bench/venue-search.sh`, which builds everything in release mode and installs PostGIS.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vicinity_geo::{Cover, Point};
use vicinity_store::schema::venues;
use vicinity_store::venues::{VenueSearch, search};
use vicinity_store::{DatabaseUrl, DbConnection, PoolOptions, Store};

use crate::common::{Server, Timings, micros, run_command};

/// One PostGIS result row: the same columns the store reads, plus the category's name.
#[derive(QueryableByName)]
#[expect(
    dead_code,
    reason = "read to make the baseline do the same work as the store"
)]
struct PostgisRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    category_id: String,
    #[diesel(sql_type = Text)]
    category_name: String,
    #[diesel(sql_type = Double)]
    lat: f64,
    #[diesel(sql_type = Double)]
    lng: f64,
    #[diesel(sql_type = Nullable<Text>)]
    address: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    locality: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    country_code: Option<String>,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = Double)]
    distance_m: f64,
}

const POSTGIS_SEARCH: &str = "\
    SELECT v.id, v.name, v.category_id, c.name AS category_name, v.lat, v.lng, v.address, \
           v.locality, v.country_code, v.created_at, \
           ST_Distance(v.geog, q.g, false) AS distance_m \
    FROM venues v JOIN categories c ON c.id = v.category_id, \
         (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS g) q \
    WHERE ST_DWithin(v.geog, q.g, $3, false) \
    ORDER BY distance_m, v.id \
    LIMIT $4";

/// Adds a PostGIS geography column with a GiST index over the same rows; `Err` explains why
/// the baseline cannot run.
fn prepare_postgis(conn: &mut DbConnection) -> Result<(), String> {
    let DbConnection::Pg(pg) = conn else {
        return Err("PostGIS needs PostgreSQL".into());
    };
    for statement in [
        "CREATE EXTENSION IF NOT EXISTS postgis",
        "ALTER TABLE venues ADD COLUMN IF NOT EXISTS geog geography(Point, 4326)",
        "UPDATE venues SET geog = ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography \
         WHERE geog IS NULL",
        "CREATE INDEX IF NOT EXISTS venues_geog ON venues USING GIST (geog)",
        "VACUUM ANALYZE venues",
    ] {
        diesel::sql_query(statement)
            .execute(pg)
            .map_err(|e| format!("{statement}: {e}"))?;
    }
    Ok(())
}

/// The floor: the cheapest query there is, through the same pool (checkout + round trip).
fn floor_query(store: &Store) -> Result<(), String> {
    store
        .run_blocking(|conn| {
            diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
                .get_result::<i32>(conn)
                .map_err(Into::into)
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The baseline, through the same pool as the store's search.
fn postgis_search(
    store: &Store,
    centre: Point,
    radius: f64,
    limit: usize,
) -> Result<Vec<i64>, String> {
    let rows: Result<Vec<PostgisRow>, String> = store
        .run_blocking(|conn| {
            let DbConnection::Pg(pg) = conn else {
                return Ok(Err("PostGIS needs PostgreSQL".into()));
            };
            Ok(diesel::sql_query(POSTGIS_SEARCH)
                .bind::<Double, _>(centre.lat())
                .bind::<Double, _>(centre.lng())
                .bind::<Double, _>(radius)
                .bind::<BigInt, _>(limit as i64)
                .load(pg)
                .map_err(|e| e.to_string()))
        })
        .map_err(|e| e.to_string())?;
    Ok(rows?.into_iter().map(|r| r.id).collect())
}

fn store_search(
    store: &Store,
    centre: Point,
    radius: f64,
    limit: usize,
) -> Result<Vec<i64>, String> {
    let request = VenueSearch {
        centre,
        radius_m: radius,
        query: None,
        category: None,
        after: None,
        limit,
    };
    let (found, _) = store
        .run_blocking(|conn| search(conn, &request))
        .map_err(|e| e.to_string())?;
    Ok(found.into_iter().map(|f| f.venue.id.raw()).collect())
}

pub fn venue_search(
    database_url: &str,
    vicinity: &PathBuf,
    venue_count: u64,
    radius: f64,
    limit: usize,
    queries: usize,
) -> Result<(), String> {
    let url = DatabaseUrl::parse(database_url)?;
    if !matches!(url, DatabaseUrl::Postgres(_)) {
        return Err("the venue-search benchmark runs on PostgreSQL (the PostGIS baseline)".into());
    }
    // Seed through the CLI, as an operator would.
    let seeded = run_command(
        std::process::Command::new(vicinity)
            .args(["--database-url", database_url, "seed", "--venues"])
            .arg(venue_count.to_string())
            .stdin(Stdio::null()),
        "vicinity seed",
    )?;
    eprintln!("{}", seeded.trim());
    let store = Store::connect(&url, &PoolOptions::default()).map_err(|e| e.to_string())?;
    let total: i64 = store
        .run_blocking(vicinity_store::venues::count)
        .map_err(|e| e.to_string())?;

    // Searches start near venues (where people search), up to 500 m away from one.
    let positions: Vec<(f64, f64)> = store
        .run_blocking(|conn| {
            Ok(venues::table
                .select((venues::lat, venues::lng))
                .order(venues::id)
                .load::<(f64, f64)>(conn)?)
        })
        .map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(2026);
    let centres: Vec<Point> = (0..queries * 2)
        .filter_map(|_| {
            let (lat, lng) = positions.get(rng.random_range(0..positions.len().max(1)))?;
            Some(
                Point::new(*lat, *lng)
                    .ok()?
                    .destination(rng.random_range(0.0..360.0), rng.random_range(0.0..500.0)),
            )
        })
        .collect();
    let (warm_up, measured) = centres.split_at(queries.min(centres.len()));
    let covers: Vec<Cover> = measured
        .iter()
        .filter_map(|c| Cover::circle(*c, radius).ok())
        .collect();
    let ranges =
        covers.iter().map(|c| c.ranges().len()).sum::<usize>() as f64 / covers.len().max(1) as f64;

    let postgis = store
        .run_blocking(|conn| Ok(prepare_postgis(conn)))
        .map_err(|e| e.to_string())?;
    if let Err(why) = &postgis {
        eprintln!("PostGIS baseline SKIPPED: {why} (install postgresql-<version>-postgis-3)");
    }

    // Store and PostGIS, interleaved so both see the same machine conditions.
    for centre in warm_up {
        store_search(&store, *centre, radius, limit)?;
        if postgis.is_ok() {
            postgis_search(&store, *centre, radius, limit)?;
        }
    }
    let (mut ours, mut theirs, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let (mut results, mut disagreements) = (0usize, 0usize);
    for (i, centre) in measured.iter().enumerate() {
        let mut run_ours = || -> Result<Vec<i64>, String> {
            let started = Instant::now();
            let ids = store_search(&store, *centre, radius, limit)?;
            ours.push(started.elapsed());
            Ok(ids)
        };
        let mut run_theirs = || -> Result<Vec<i64>, String> {
            let started = Instant::now();
            let ids = postgis_search(&store, *centre, radius, limit)?;
            theirs.push(started.elapsed());
            Ok(ids)
        };
        let (a, b) = if postgis.is_err() {
            (run_ours()?, None)
        } else if i % 2 == 0 {
            let a = run_ours()?;
            (a, Some(run_theirs()?))
        } else {
            let b = run_theirs()?;
            (run_ours()?, Some(b))
        };
        let started = Instant::now();
        floor_query(&store)?;
        floor.push(started.elapsed());
        results += a.len();
        if b.is_some_and(|b| b != a) {
            disagreements += 1;
        }
    }

    // The HTTP endpoint, on a release server over loopback with keep-alive.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let http = runtime.block_on(http_search(
        vicinity,
        database_url,
        warm_up,
        measured,
        radius,
        limit,
    ))?;

    let ours = Timings::new("store search (cover + range scans + exact filter)", ours);
    let theirs = Timings::new("PostGIS ST_DWithin + ORDER BY ST_Distance, GiST", theirs);
    let http = Timings::new("GET /v1/venues/search (HTTP, 1 connection)", http);
    let floor = Timings::new("floor: SELECT 1 through the same pool", floor);
    let baseline = theirs.median();
    println!(
        "\nvenue search: {total} venues, radius {radius} m, limit {limit}, {} measured searches \
         per path ({} results on average, {ranges:.1} cell ranges per cover)\n",
        measured.len(),
        results / measured.len().max(1),
    );
    println!("| path | median µs | p99 µs | median vs PostGIS |");
    println!("|---|---:|---:|---:|");
    for timings in [&ours, &http, &theirs, &floor] {
        if timings.is_empty() {
            println!("| {} | skipped | skipped | |", timings.name);
            continue;
        }
        let ratio = if baseline.is_zero() {
            "n/a".to_owned()
        } else {
            format!(
                "{:.2}×",
                timings.median().as_secs_f64() / baseline.as_secs_f64()
            )
        };
        println!(
            "| {} | {:.0} | {:.0} | {ratio} |",
            timings.name,
            micros(timings.median()),
            micros(timings.quantile(0.99)),
        );
    }
    if postgis.is_ok() {
        println!(
            "\nresult sets that differ from PostGIS's: {disagreements} of {}",
            measured.len()
        );
    }
    store.close(Duration::from_secs(5));
    Ok(())
}

async fn http_search(
    vicinity: &PathBuf,
    database_url: &str,
    warm_up: &[Point],
    measured: &[Point],
    radius: f64,
    limit: usize,
) -> Result<Vec<Duration>, String> {
    let data_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(vicinity);
    command
        .env("DATABASE_URL", database_url)
        .env("VICINITY_BIND", "127.0.0.1:0")
        .env("VICINITY_DATA_DIR", data_dir.path())
        .env("VICINITY_RATE_LIMIT_TOKEN", "off")
        .env("VICINITY_RATE_LIMIT_ADDRESS", "off")
        .env("RUST_LOG", "warn");
    let server = Server::start(command, "Vicinity listening on ").await?;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let username = format!("bench{}", rand::random::<u32>());
    let registered: serde_json::Value = client
        .post(format!("{base}/v1/auth/register"))
        .json(&serde_json::json!({"username": username,
            "email": format!("{username}@example.com"), "password": "benchmark passphrase"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = registered
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("registration failed: {registered}"))?
        .to_owned();
    let mut timings = Vec::with_capacity(measured.len());
    for (i, centre) in warm_up.iter().chain(measured).enumerate() {
        let url = format!(
            "{base}/v1/venues/search?ll={},{}&radius={radius}&limit={limit}",
            centre.lat(),
            centre.lng()
        );
        let started = Instant::now();
        let response = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        if !status.is_success() {
            return Err(format!(
                "{url}: {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        if i >= warm_up.len() {
            timings.push(elapsed);
        }
    }
    server.stop().await;
    Ok(timings)
}
