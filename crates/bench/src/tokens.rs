//! First-party access tokens for people of the benchmark population, as a login would give
//! them: each in a token family of its own (the server checks the family on every request),
//! signed with a key made for the run, which the server under test is started with.
//!
//! `vicinity-bench tokens` writes them with where each person is, for load generators outside
//! this tool (bench/load.sh and its wrk script).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};
use vicinity_api::SigningKeys;
use vicinity_api::auth::access::AccessTokens;
use vicinity_domain::{ScopeSet, TokenFamilyId, UserId, VenueId};

use crate::population::{self, execute};

/// The issuer and audience benchmark tokens carry; the server must be started with them
/// (`VICINITY_PUBLIC_URL`, `VICINITY_TOKEN_AUDIENCE`).
pub const ISSUER: &str = "http://vicinity-bench.invalid";
pub const AUDIENCE: &str = "vicinity-api";

/// A fresh signing key, written to `key_file` (which must not exist yet) for the server, and
/// what signs access tokens with it that live for `ttl`.
pub fn signer(key_file: &Path, ttl: Duration) -> Result<AccessTokens, String> {
    let keys = SigningKeys::generate();
    keys.write_new(key_file).map_err(|e| e.to_string())?;
    Ok(AccessTokens::new(keys, ISSUER.into(), AUDIENCE.into(), ttl))
}

/// Signs one first-party access token per user, each in a token family of its own as a login
/// would create. Families these people had before are removed.
pub fn sign_for(
    conn: &mut PgConnection,
    tokens: &AccessTokens,
    users: &[i64],
) -> Result<Vec<String>, String> {
    let scope = ScopeSet::first_party();
    let now = Utc::now();
    let mut signed = Vec::with_capacity(users.len());
    for chunk in users.chunks(1_000) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        execute(
            conn,
            &format!(
                "DELETE FROM token_families WHERE user_id IN ({})",
                list.join(",")
            ),
        )?;
        let mut rows = Vec::with_capacity(chunk.len());
        for user in chunk {
            let family = (rand::random::<u64>() >> 1).max(1) as i64;
            rows.push(format!(
                "({family}, {user}, '{}', '{scope}', {})",
                vicinity_api::FIRST_PARTY_CLIENT_ID,
                now.timestamp_micros()
            ));
            signed.push(
                tokens
                    .issue(
                        UserId::from_raw(*user),
                        TokenFamilyId::from_raw(family),
                        vicinity_api::FIRST_PARTY_CLIENT_ID,
                        scope,
                        now,
                    )
                    .map_err(|e| e.to_string())?,
            );
        }
        execute(
            conn,
            &format!(
                "INSERT INTO token_families (id, user_id, client_id, scope, created_at) VALUES {}",
                rows.join(", ")
            ),
        )?;
    }
    Ok(signed)
}

#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    /// The populated PostgreSQL database (`vicinity-bench populate`).
    #[arg(long, env = "VICINITY_BENCH_DATABASE_URL")]
    pub database_url: String,
    /// People to sign tokens for: a fixed pseudo-random sample of those active now, sharing
    /// their location, and last seen at a venue.
    #[arg(long, default_value_t = 10_000)]
    pub users: i64,
    /// Where to write the new signing key (must not exist); start the server with it, with
    /// `VICINITY_PUBLIC_URL=http://vicinity-bench.invalid` and
    /// `VICINITY_TOKEN_AUDIENCE=vicinity-api`.
    #[arg(long)]
    pub key_file: PathBuf,
    /// Where to write the people, one a line, tab-separated: access token, latitude,
    /// longitude (their current position), and the venue they are at (`ven_…`).
    #[arg(long)]
    pub out: PathBuf,
    /// How long the tokens stay valid, in minutes.
    #[arg(long, default_value_t = 240)]
    pub ttl_minutes: u64,
}

/// An active person at the venue they were last seen at, with their position.
#[derive(QueryableByName)]
pub struct AtVenue {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = BigInt)]
    pub venue_id: i64,
    #[diesel(sql_type = Double)]
    pub lat: f64,
    #[diesel(sql_type = Double)]
    pub lng: f64,
}

/// Up to `limit` people who are active now at a venue, share their location and are not
/// suspended: a fixed sample for a given `salt` (so runs are comparable), different per salt.
pub fn at_venues(conn: &mut PgConnection, salt: &str, limit: i64) -> Result<Vec<AtVenue>, String> {
    let now = Utc::now().timestamp_micros();
    diesel::sql_query(format!(
        "SELECT p.user_id, p.venue_id, p.lat, p.lng FROM presence p \
         JOIN users u ON u.id = p.user_id \
         WHERE p.expires_at > {now} AND p.venue_id IS NOT NULL \
         AND u.location_precision <> 'off' AND u.suspended_at IS NULL \
         ORDER BY md5(p.user_id::text || '{salt}') LIMIT {limit}"
    ))
    .load(conn)
    .map_err(|e| e.to_string())
}

/// `vicinity-bench tokens`: moves the population's presence to now (as every benchmark does
/// before it runs), samples people who can use every endpoint of a load mix without a refusal
/// (nearby needs a current position and sharing on; a check-in needs a venue within reach),
/// and writes their tokens and positions.
pub fn tokens(args: &TokensArgs) -> Result<(), String> {
    let (mut conn, _) = population::connect_refreshed(&args.database_url)?;
    let people = at_venues(&mut conn, "load", args.users)?;
    if people.is_empty() {
        return Err("nobody is active at a venue: populate with --active above 0".into());
    }
    let signer = signer(
        &args.key_file,
        Duration::from_secs(args.ttl_minutes.saturating_mul(60)),
    )?;
    let ids: Vec<i64> = people.iter().map(|p| p.user_id).collect();
    let signed = sign_for(&mut conn, &signer, &ids)?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?,
    );
    for (person, token) in people.iter().zip(&signed) {
        writeln!(
            out,
            "{token}\t{:.7}\t{:.7}\t{}",
            person.lat,
            person.lng,
            VenueId::from_raw(person.venue_id)
        )
        .map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    eprintln!(
        "signed tokens for {} people into {}",
        signed.len(),
        args.out.display()
    );
    Ok(())
}
