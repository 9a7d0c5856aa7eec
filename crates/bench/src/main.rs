//! Vicinity's benchmarks. Each compares Vicinity with a baseline measured in the same run on
//! the same machine, because the machine is shared and absolute figures drift. The scripts in
//! `bench/` build everything in release mode and run these; docs/benchmarks.md has the results.

mod common;
mod load;
mod network;
mod population;
mod stats;
mod tokens;
mod venue_search;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "vicinity-bench",
    about = "Vicinity's benchmarks, each beside a baseline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Venue radius search: store and HTTP endpoint vs PostGIS ST_DWithin.
    VenueSearch {
        /// A PostgreSQL database the benchmark may fill and alter (it adds a PostGIS column).
        #[arg(long, env = "VICINITY_BENCH_DATABASE_URL")]
        database_url: String,
        /// The release binary of the server.
        #[arg(long, default_value = "target/release/vicinity")]
        vicinity: PathBuf,
        /// Venues to seed (if fewer are present).
        #[arg(long, default_value_t = 200_000)]
        venues: u64,
        /// Search radius in metres.
        #[arg(long, default_value_t = 1_000.0)]
        radius: f64,
        /// Results per search.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Measured searches per path (after as many warm-up searches).
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Fills a PostgreSQL database with the benchmark population (users, friendships,
    /// check-ins, presence); does nothing if it already holds that population.
    Populate {
        #[arg(long, env = "VICINITY_BENCH_DATABASE_URL")]
        database_url: String,
        /// The release binary of the server (it migrates and seeds the venues).
        #[arg(long, default_value = "target/release/vicinity")]
        vicinity: PathBuf,
        #[command(flatten)]
        shape: population::Shape,
    },
    /// `GET /v1/me/nearby` vs a bare actix JSON endpoint, and `POST /v1/checkins` vs pgbench.
    Nearby(network::NearbyArgs),
    /// The admin statistics endpoints on the populated database vs their SQL aggregates run
    /// directly on PostgreSQL, against an answer within a second.
    Stats(stats::StatsArgs),
    /// Signs first-party access tokens for a sample of the population's active people and
    /// writes them with their positions, for a load generator (bench/load.sh).
    Tokens(tokens::TokensArgs),
    /// The bare actix-web JSON endpoint the nearby benchmark compares against.
    #[command(hide = true)]
    BareServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: String,
    },
}

fn main() -> Result<(), String> {
    match Cli::parse().command {
        Command::VenueSearch {
            database_url,
            vicinity,
            venues,
            radius,
            limit,
            queries,
        } => venue_search::venue_search(&database_url, &vicinity, venues, radius, limit, queries),
        Command::Populate {
            database_url,
            vicinity,
            shape,
        } => population::populate(&database_url, &vicinity, &shape),
        Command::Nearby(args) => network::nearby(&args),
        Command::Stats(args) => stats::stats(&args),
        Command::Tokens(args) => tokens::tokens(&args),
        Command::BareServer { bind } => network::bare_server(&bind),
    }
}
