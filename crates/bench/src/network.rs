//! `vicinity-bench nearby`: `GET /v1/me/nearby` and `POST /v1/checkins` on the populated
//! database (see `population`), each beside its baseline in the same run (DESIGN.md §8):
//!
//! - nearby beside a bare actix-web JSON endpoint (`bare-server`), both driven by the same
//!   closed-loop client at the same concurrencies, alternating which goes first;
//! - check-ins beside pgbench inserting single rows, one transaction each, into a copy of the
//!   `checkins` table (same columns and indexes) on the same server, at the same concurrency.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use hyper::Method;
use hyper::body::Bytes;
use vicinity_domain::VenueId;

use crate::common::{Server, Timings, millis, run_command};
use crate::load::{self, Call, Outcome};
use crate::population::{self, execute};
use crate::tokens::{self, AUDIENCE, AtVenue, ISSUER};

const BARE_BANNER: &str = "bare actix listening on ";
/// Marks the check-ins a benchmark run writes, so the run can remove them afterwards.
const BENCH_SHOUT: &str = "benchmark";

#[derive(Debug, clap::Args)]
pub struct NearbyArgs {
    /// The populated PostgreSQL database (`vicinity-bench populate`).
    #[arg(long, env = "VICINITY_BENCH_DATABASE_URL")]
    pub database_url: String,
    /// The release binary of the server.
    #[arg(long, default_value = "target/release/vicinity")]
    pub vicinity: PathBuf,
    /// Distinct people asking "who is nearby" (active users, sampled).
    #[arg(long, default_value_t = 5_000)]
    pub viewers: i64,
    /// Nearby radius in metres.
    #[arg(long, default_value_t = 1_000)]
    pub radius: u32,
    /// Connections for the nearby comparison, one measurement each (`0`: skip it).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub concurrency: Vec<usize>,
    /// Connections for the check-in comparison (`0`: skip it). pgbench peaks at about 16
    /// to 32 on two cores and the server, which batches, at 64 or more: the list spans both.
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64")]
    pub checkin_concurrency: Vec<usize>,
    /// Measured seconds per target and concurrency (after a quarter as much warm-up).
    #[arg(long, default_value_t = 8)]
    pub seconds: u64,
    /// Rounds; each measures every target once, alternating which goes first.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// The server's database pool (`VICINITY_DB_POOL_SIZE`). Check-ins are written by at most
    /// two statements at a time whatever the concurrency; the rest of the pool serves reads.
    #[arg(long, default_value_t = 16)]
    pub pool_size: u32,
}

/// A bare actix-web server answering `GET /json` with a small serialized object: the ceiling
/// any JSON endpoint on this machine and framework can reach.
pub fn bare_server(bind: &str) -> Result<(), String> {
    #[derive(serde::Serialize)]
    struct Message {
        message: &'static str,
    }
    actix_web::rt::System::new().block_on(async move {
        let server = actix_web::HttpServer::new(|| {
            actix_web::App::new().route(
                "/json",
                actix_web::web::get().to(|| async {
                    actix_web::web::Json(Message {
                        message: "Hello, World!",
                    })
                }),
            )
        })
        .bind(bind)
        .map_err(|e| format!("bind {bind}: {e}"))?;
        for address in server.addrs() {
            println!("{BARE_BANNER}http://{address}");
        }
        server.run().await.map_err(|e| e.to_string())
    })
}

#[derive(QueryableByName)]
struct Person {
    #[diesel(sql_type = BigInt)]
    user_id: i64,
}

/// One measured target at one concurrency, pooled over rounds.
struct Measured {
    latencies: Vec<Duration>,
    throughputs: Vec<f64>,
    failures: u64,
}

impl Measured {
    fn new() -> Self {
        Self {
            latencies: Vec::new(),
            throughputs: Vec::new(),
            failures: 0,
        }
    }

    fn add(&mut self, outcome: Outcome, what: &str) {
        if let Some(failure) = &outcome.first_failure {
            eprintln!(
                "  {what}: {:?} failed ({} during warm-up); first: {failure}",
                outcome.failures, outcome.warm_up_failures
            );
        }
        self.failures += outcome.failures.values().sum::<u64>();
        self.latencies.extend(outcome.latencies);
        self.throughputs.push(outcome.throughput);
    }

    fn throughput(&self) -> f64 {
        self.throughputs.iter().sum::<f64>() / self.throughputs.len().max(1) as f64
    }
}

/// The highest throughput one side reached over the connection counts measured, and where.
#[derive(Default)]
struct Best {
    throughput: f64,
    connections: usize,
}

impl Best {
    fn offer(&mut self, connections: usize, throughput: f64) {
        if throughput > self.throughput {
            *self = Self {
                throughput,
                connections,
            };
        }
    }
}

/// Each side's capacity (its best throughput at any of the connection counts measured) and
/// their ratio: a server's throughput is what it can carry, and the two sides reach theirs at
/// different concurrencies, so comparing them at one count alone favours one of them.
fn print_capacity((ours_name, ours): (&str, &Best), (theirs_name, theirs): (&str, &Best)) {
    println!(
        "\ncapacity (each side's best over these connection counts): {theirs_name} {:.0}/s at \
         {}, {ours_name} {:.0}/s at {}: {ours_name} ÷ {theirs_name} = {:.1} %",
        theirs.throughput,
        theirs.connections,
        ours.throughput,
        ours.connections,
        ours.throughput / theirs.throughput.max(f64::MIN_POSITIVE) * 100.0,
    );
}

pub fn nearby(args: &NearbyArgs) -> Result<(), String> {
    let (mut conn, shape) = population::connect_refreshed(&args.database_url)?;

    let now = Utc::now().timestamp_micros();
    // Who asks: a fixed pseudo-random sample of the people active now who share their location
    // (the app offers nearby only to them; everyone else gets 409 location_sharing_off).
    let viewers: Vec<i64> = diesel::sql_query(format!(
        "SELECT p.user_id FROM presence p JOIN users u ON u.id = p.user_id \
         WHERE p.expires_at > {now} AND u.location_precision <> 'off' \
         ORDER BY md5(p.user_id::text) LIMIT {}",
        args.viewers
    ))
    .load::<Person>(&mut conn)
    .map_err(|e| e.to_string())?
    .into_iter()
    .map(|p| p.user_id)
    .collect();
    // Who checks in: other active people, at the venue they were last seen at (so the move is
    // plausible and the device is where the venue is).
    let checkers = tokens::at_venues(&mut conn, "checkin", args.viewers)?;
    let checkers: Vec<AtVenue> = {
        let viewing: std::collections::HashSet<i64> = viewers.iter().copied().collect();
        checkers
            .into_iter()
            .filter(|c| !viewing.contains(&c.user_id))
            .collect()
    };
    if viewers.is_empty() || checkers.is_empty() {
        return Err("nobody is active: populate with --active above 0".into());
    }
    if checkers.len() < 100 {
        eprintln!(
            "only {} people left to check in beside {} viewers: ask for fewer --viewers",
            checkers.len(),
            viewers.len()
        );
    }

    let data_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key_file = data_dir.path().join("signing-key.pem");
    let signer = tokens::signer(&key_file, Duration::from_secs(4 * 3600))?;
    eprint!(
        "signing tokens for {} viewers and {} checkers … ",
        viewers.len(),
        checkers.len()
    );
    let viewer_tokens = tokens::sign_for(&mut conn, &signer, &viewers)?;
    let checker_ids: Vec<i64> = checkers.iter().map(|c| c.user_id).collect();
    let checker_tokens = tokens::sign_for(&mut conn, &signer, &checker_ids)?;
    eprintln!("done");

    let nearby_calls: Vec<Call> = viewer_tokens
        .iter()
        .map(|t| Call::get(format!("/v1/me/nearby?radius={}", args.radius)).bearer(t))
        .collect::<Result<_, _>>()?;
    let checkin_calls: Vec<Call> = checkers
        .iter()
        .zip(&checker_tokens)
        .map(|(c, t)| {
            let body = serde_json::json!({
                "venue_id": VenueId::from_raw(c.venue_id).to_string(),
                "location": {"lat": c.lat, "lng": c.lng, "accuracy_m": 15.0},
                "shout": BENCH_SHOUT,
            });
            Ok(Call {
                method: Method::POST,
                json: Some(Bytes::from(body.to_string())),
                idempotency_key: true,
                ..Call::get("/v1/checkins").bearer(t)?
            })
        })
        .collect::<Result<_, String>>()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(compare(
        args,
        &shape,
        data_dir.path(),
        &key_file,
        Arc::new(nearby_calls),
        Arc::new(checkin_calls),
    ))
}

async fn compare(
    args: &NearbyArgs,
    shape: &population::Shape,
    data_dir: &Path,
    key_file: &Path,
    nearby_calls: Arc<Vec<Call>>,
    checkin_calls: Arc<Vec<Call>>,
) -> Result<(), String> {
    let mut command = tokio::process::Command::new(&args.vicinity);
    command
        .env("DATABASE_URL", &args.database_url)
        .env("VICINITY_BIND", "127.0.0.1:0")
        .env("VICINITY_DATA_DIR", data_dir)
        .env("VICINITY_SIGNING_KEY_FILE", key_file)
        .env("VICINITY_PUBLIC_URL", ISSUER)
        .env("VICINITY_TOKEN_AUDIENCE", AUDIENCE)
        .env("VICINITY_DB_POOL_SIZE", args.pool_size.to_string())
        // The per-person limits (a burst of 30, then one a second) would refuse most of the
        // load the benchmark puts on its 5,000 people; it measures the server, not them.
        .env("VICINITY_NEARBY_LIMIT", "1000000/1s")
        .env("VICINITY_LOCATION_LIMIT", "1000000/1s")
        .env("VICINITY_RATE_LIMIT_TOKEN", "off")
        .env("VICINITY_RATE_LIMIT_ADDRESS", "off")
        .env("RUST_LOG", "warn");
    let server = Server::start(command, "Vicinity listening on ").await?;
    let loading = Instant::now();
    server.wait_until_ready("/readyz").await?;
    println!(
        "server ready (read model loaded) {:.1} s after it began listening",
        loading.elapsed().as_secs_f64()
    );
    let own = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(own);
    command.args(["bare-server", "--bind", "127.0.0.1:0"]);
    let bare = Server::start(command, BARE_BANNER).await?;
    let (vicinity_at, bare_at) = (server.address()?, bare.address()?);
    let bare_calls = Arc::new(vec![Call::get("/json")]);

    let friends_seen = sample_nearby(&server.base, &nearby_calls).await?;
    let warm_up = Duration::from_secs(args.seconds.div_ceil(4).max(1));
    let measure = Duration::from_secs(args.seconds.max(1));

    let nearby_concurrency: Vec<usize> = args
        .concurrency
        .iter()
        .copied()
        .filter(|&c| c > 0)
        .collect();
    if !nearby_concurrency.is_empty() {
        println!(
            "\nnearby: {} users, {} friends each, {:.0} % active; {} viewers, radius {} m; \
             {friends_seen:.1} friends nearby per answer on average; {} s per measurement, \
             {} rounds\n",
            shape.users,
            shape.friends,
            shape.active * 100.0,
            nearby_calls.len(),
            args.radius,
            args.seconds,
            args.rounds,
        );
        println!(
            "| connections | bare actix req/s | nearby req/s | nearby ÷ bare | nearby median ms | \
             nearby p99 ms | bare p99 ms | failures |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        let (mut best_nearby, mut best_bare) = (Best::default(), Best::default());
        for &connections in &nearby_concurrency {
            let (mut ours, mut theirs) = (Measured::new(), Measured::new());
            for round in 0..args.rounds {
                for first in [round % 2 == 0, round % 2 == 1] {
                    if first {
                        let outcome = load::run(
                            bare_at,
                            Arc::clone(&bare_calls),
                            connections,
                            warm_up,
                            measure,
                        )
                        .await?;
                        theirs.add(outcome, "bare");
                    } else {
                        let outcome = load::run(
                            vicinity_at,
                            Arc::clone(&nearby_calls),
                            connections,
                            warm_up,
                            measure,
                        )
                        .await?;
                        ours.add(outcome, "nearby");
                    }
                }
            }
            best_nearby.offer(connections, ours.throughput());
            best_bare.offer(connections, theirs.throughput());
            let ratio = ours.throughput() / theirs.throughput().max(f64::MIN_POSITIVE);
            let (failures, ours_t, theirs_t) = (
                ours.failures + theirs.failures,
                Timings::new("nearby", std::mem::take(&mut ours.latencies)),
                Timings::new("bare", std::mem::take(&mut theirs.latencies)),
            );
            println!(
                "| {connections} | {:.0} | {:.0} | {:.1} % | {:.2} | {:.2} | {:.2} | {failures} |",
                theirs.throughput(),
                ours.throughput(),
                ratio * 100.0,
                millis(ours_t.median()),
                millis(ours_t.quantile(0.99)),
                millis(theirs_t.quantile(0.99)),
            );
        }
        print_capacity(("nearby", &best_nearby), ("bare actix", &best_bare));
    }
    bare.stop().await;

    if args.checkin_concurrency.iter().any(|&c| c > 0) {
        checkins(args, shape, vicinity_at, checkin_calls, warm_up, measure).await?;
    }
    if let Some(rss) = server.peak_rss_mib() {
        println!("\nserver peak RSS over the whole run: {rss:.0} MiB");
    }
    server.stop().await;
    Ok(())
}

/// Asks nearby once for up to 200 viewers; the mean number of friends in an answer.
async fn sample_nearby(base: &str, calls: &[Call]) -> Result<f64, String> {
    let client = reqwest::Client::new();
    let mut total = 0_usize;
    let sample = calls.get(..calls.len().min(200)).unwrap_or_default();
    for call in sample {
        let mut request = client.get(format!("{base}{}", call.path));
        if let Some(bearer) = &call.bearer {
            request = request.header("Authorization", bearer.as_bytes());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("nearby answered {status}: {body}"));
        }
        total += body
            .get("items")
            .and_then(serde_json::Value::as_array)
            .map_or(0, Vec::len);
    }
    Ok(total as f64 / sample.len().max(1) as f64)
}

/// `POST /v1/checkins` beside pgbench's single-row insert transactions.
async fn checkins(
    args: &NearbyArgs,
    shape: &population::Shape,
    vicinity_at: std::net::SocketAddr,
    calls: Arc<Vec<Call>>,
    warm_up: Duration,
    measure: Duration,
) -> Result<(), String> {
    let mut conn = PgConnection::establish(&args.database_url).map_err(|e| e.to_string())?;
    let venue_count = population::venue_count(&mut conn)?;
    let script = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    // The row a check-in writes (id, person, a real venue and its position, accuracy, shout,
    // visibility, two timestamps) into `checkins` itself, with its indexes, foreign keys and
    // millions of rows, committed on its own.
    std::fs::write(
        script.path(),
        format!(
            "\\set id random(1, 9000000000000000000)\n\
             \\set user random(1, {users})\n\
             \\set venue random(0, {last_venue})\n\
             INSERT INTO checkins (id, user_id, venue_id, lat, lng, accuracy_m, shout, \
             visibility, created_at, received_at) SELECT :id, :user, v.id, v.lat, v.lng, 15, \
             '{BENCH_SHOUT}', 'friends', {now}, {now} FROM bench_venue_order v \
             WHERE v.idx = :venue;\n",
            users = shape.users,
            last_venue = venue_count - 1,
            now = Utc::now().timestamp_micros(),
        ),
    )
    .map_err(|e| e.to_string())?;

    println!(
        "\ncheck-ins: POST /v1/checkins (with Idempotency-Key; answers include nearby friends) \
         beside pgbench single-row INSERT transactions into `checkins`; server pool {} \
         connections\n",
        args.pool_size
    );
    println!(
        "| connections | pgbench tx/s | check-ins/s | check-ins ÷ pgbench | check-in median ms | \
         check-in p99 ms | failures |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let (mut best_checkins, mut best_pgbench) = (Best::default(), Best::default());
    for &connections in args.checkin_concurrency.iter().filter(|&&c| c > 0) {
        let mut pgbench = Vec::new();
        let mut ours = Measured::new();
        for round in 0..args.rounds {
            for first in [round % 2 == 0, round % 2 == 1] {
                if first {
                    // Warm up as the HTTP side does, then measure.
                    run_pgbench(&args.database_url, script.path(), connections, warm_up)?;
                    pgbench.push(run_pgbench(
                        &args.database_url,
                        script.path(),
                        connections,
                        measure,
                    )?);
                } else {
                    let outcome = load::run(
                        vicinity_at,
                        Arc::clone(&calls),
                        connections,
                        warm_up,
                        measure,
                    )
                    .await?;
                    ours.add(outcome, "check-ins");
                }
            }
        }
        let baseline = pgbench.iter().sum::<f64>() / pgbench.len().max(1) as f64;
        best_checkins.offer(connections, ours.throughput());
        best_pgbench.offer(connections, baseline);
        let timings = Timings::new("check-ins", std::mem::take(&mut ours.latencies));
        println!(
            "| {connections} | {baseline:.0} | {:.0} | {:.1} % | {:.2} | {:.2} | {} |",
            ours.throughput(),
            ours.throughput() / baseline.max(f64::MIN_POSITIVE) * 100.0,
            millis(timings.median()),
            millis(timings.quantile(0.99)),
            ours.failures,
        );
    }
    print_capacity(("check-ins", &best_checkins), ("pgbench", &best_pgbench));
    // Leave the population as it was: no benchmark check-ins or keys for the next run.
    execute(
        &mut conn,
        &format!("DELETE FROM checkins WHERE shout = '{BENCH_SHOUT}'"),
    )?;
    execute(
        &mut conn,
        "DELETE FROM idempotency_keys WHERE key LIKE 'bench-%'",
    )?;
    Ok(())
}

/// pgbench's transactions per second (excluding connection set-up) for `script`.
fn run_pgbench(
    database_url: &str,
    script: &Path,
    connections: usize,
    measure: Duration,
) -> Result<f64, String> {
    let output = run_command(
        std::process::Command::new("pgbench")
            .args(["--no-vacuum", "--protocol=prepared", "--file"])
            .arg(script)
            .args(["--client", &connections.to_string()])
            .args(["--jobs", &connections.min(2).to_string()])
            .args(["--time", &measure.as_secs().to_string()])
            .arg(database_url),
        "pgbench",
    )?;
    output
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .ok_or_else(|| format!("no tps in pgbench's output:\n{output}"))
}
