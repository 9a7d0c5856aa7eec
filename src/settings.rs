//! Configuration: every setting is a flag and an environment variable, with a default that
//! runs a laptop instance out of the box.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    /// Generates a missing signing key in the data directory.
    Development,
    /// Refuses to start without an existing signing key.
    Production,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address and port to listen on.
    #[arg(
        long,
        global = true,
        env = "VICINITY_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: String,

    /// Directory for the embedded database and the generated signing key.
    #[arg(
        long,
        global = true,
        env = "VICINITY_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// `postgres://…` or `sqlite://PATH`; default: SQLite file `vicinity.db` in the data dir.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Maximum database connections per instance.
    #[arg(
        long,
        global = true,
        env = "VICINITY_DB_POOL_SIZE",
        default_value_t = 10
    )]
    pub db_pool_size: u32,

    /// `development` generates a missing signing key; `production` requires one.
    #[arg(
        long,
        global = true,
        env = "VICINITY_ENV",
        value_enum,
        default_value = "development"
    )]
    pub environment: Environment,

    /// Ed25519 private key (PKCS#8 PEM) that signs access tokens; default: in the data dir.
    #[arg(long, global = true, env = "VICINITY_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,

    /// Public base URL of this server: the `iss` of its tokens. Default: `http://BIND`.
    #[arg(long, global = true, env = "VICINITY_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The `aud` of access tokens.
    #[arg(
        long,
        global = true,
        env = "VICINITY_TOKEN_AUDIENCE",
        default_value = "vicinity-api"
    )]
    pub token_audience: String,

    /// Access-token lifetime (`900s`, `15m`, `1h`).
    #[arg(long, global = true, env = "VICINITY_ACCESS_TOKEN_TTL", default_value = "15m",
        value_parser = parse_duration)]
    pub access_token_ttl: Duration,

    /// Refresh-token lifetime; each use issues a new one with a fresh lifetime.
    #[arg(long, global = true, env = "VICINITY_REFRESH_TOKEN_TTL", default_value = "30d",
        value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,

    /// Login attempts per account: burst, then one more per period (`10/1m`).
    #[arg(long, global = true, env = "VICINITY_LOGIN_LIMIT_ACCOUNT", default_value = "10/1m",
        value_parser = parse_rate)]
    pub login_limit_account: (u32, Duration),

    /// Login attempts per client address: burst, then one more per period (`30/10s`).
    #[arg(long, global = true, env = "VICINITY_LOGIN_LIMIT_ADDRESS", default_value = "30/10s",
        value_parser = parse_rate)]
    pub login_limit_address: (u32, Duration),

    /// Count login attempts per address from `X-Forwarded-For`/`Forwarded` (set this only
    /// behind a reverse proxy that overwrites those headers).
    #[arg(
        long,
        global = true,
        env = "VICINITY_TRUST_FORWARDED_FOR",
        default_value_t = false
    )]
    pub trust_forwarded_for: bool,

    /// Largest accepted request body in bytes.
    #[arg(
        long,
        global = true,
        env = "VICINITY_BODY_LIMIT",
        default_value_t = 65536
    )]
    pub body_limit: usize,

    /// HTTP worker threads (default: one per core).
    #[arg(long, global = true, env = "VICINITY_WORKERS")]
    pub workers: Option<usize>,

    /// Time in-flight requests get to finish after SIGINT/SIGTERM.
    #[arg(long, global = true, env = "VICINITY_SHUTDOWN_TIMEOUT", default_value = "30s",
        value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// How long a shared position counts for "nearby" (`3h`).
    #[arg(long, global = true, env = "VICINITY_PRESENCE_TTL", default_value = "3h",
        value_parser = parse_duration)]
    pub presence_ttl: Duration,

    /// Fastest plausible travel between two positions, in km/h; faster moves are refused.
    #[arg(long, global = true, env = "VICINITY_MAX_SPEED_KMH", default_value_t = 1_080.0,
        value_parser = parse_speed)]
    pub max_speed_kmh: f64,

    /// Position updates per person: burst, then one more per period (`10/5s`).
    #[arg(long, global = true, env = "VICINITY_LOCATION_LIMIT", default_value = "10/5s",
        value_parser = parse_rate)]
    pub location_limit: (u32, Duration),

    /// Nearby queries per person (streams count one each): burst, then one per period.
    #[arg(long, global = true, env = "VICINITY_NEARBY_LIMIT", default_value = "30/1s",
        value_parser = parse_rate)]
    pub nearby_limit: (u32, Duration),

    /// Requests per access token's login (token family): `600/1m` is 600 a minute in bursts of
    /// up to 600; `off` for none.
    #[arg(long, global = true, env = "VICINITY_RATE_LIMIT_TOKEN", default_value = "600/1m",
        value_parser = parse_optional_rate)]
    pub rate_limit_token: OptionalRate,

    /// Requests per client address, read as the token's limit; `off` for none.
    #[arg(long, global = true, env = "VICINITY_RATE_LIMIT_ADDRESS", default_value = "3000/1m",
        value_parser = parse_optional_rate)]
    pub rate_limit_address: OptionalRate,

    /// Area statistics leave out cells with fewer distinct visitors than this (1–100).
    #[arg(long, global = true, env = "VICINITY_STATS_MIN_VISITORS", default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(1..=100))]
    pub stats_min_visitors: u64,

    /// Log format.
    #[arg(
        long,
        global = true,
        env = "VICINITY_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
}

impl Settings {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("vicinity.db").display()))
    }

    pub fn signing_key_file(&self) -> PathBuf {
        self.signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing-key.pem"))
    }

    pub fn api_config(&self) -> vicinity_api::ApiConfig {
        vicinity_api::ApiConfig {
            bind: self.bind.clone(),
            issuer: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.bind)),
            audience: self.token_audience.clone(),
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            body_limit_bytes: self.body_limit,
            login_throttle: vicinity_api::LoginThrottleConfig {
                per_account_burst: self.login_limit_account.0,
                per_account_period: self.login_limit_account.1,
                per_address_burst: self.login_limit_address.0,
                per_address_period: self.login_limit_address.1,
            },
            trust_forwarded_for: self.trust_forwarded_for,
            workers: self.workers,
            shutdown_timeout: self.shutdown_timeout,
            presence: vicinity_store::presence::PresenceRules {
                ttl: chrono::Duration::from_std(self.presence_ttl)
                    .unwrap_or_else(|_| chrono::Duration::hours(3)),
                max_speed_mps: self.max_speed_kmh / 3.6,
            },
            location_update_limit: vicinity_api::RateLimit {
                burst: self.location_limit.0,
                period: self.location_limit.1,
            },
            nearby_limit: vicinity_api::RateLimit {
                burst: self.nearby_limit.0,
                period: self.nearby_limit.1,
            },
            request_limit_per_token: self
                .rate_limit_token
                .0
                .map(|(burst, period)| vicinity_api::RateLimit { burst, period }),
            request_limit_per_address: self
                .rate_limit_address
                .0
                .map(|(burst, period)| vicinity_api::RateLimit { burst, period }),
            stats_min_visitors: self.stats_min_visitors,
            ..vicinity_api::ApiConfig::default()
        }
    }
}

const MAX_DURATION_SECS: u64 = 366 * 86_400;

/// A speed in km/h, from 1 to 30000.
pub fn parse_speed(text: &str) -> Result<f64, String> {
    let speed: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of km/h"))?;
    if speed.is_finite() && (1.0..=30_000.0).contains(&speed) {
        Ok(speed)
    } else {
        Err(format!(
            "`{text}`: a speed must be between 1 and 30000 km/h"
        ))
    }
}

/// `90`, `90s`, `15m`, `2h`, `30d`; at most 366 days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 15m"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in `{text}`: use s, m, h or d")),
    };
    if number == 0 {
        return Err("a duration must be positive".into());
    }
    // Beyond a year no setting makes sense, and timestamp arithmetic stays far from overflow.
    match number.checked_mul(seconds) {
        Some(total) if total <= MAX_DURATION_SECS => Ok(Duration::from_secs(total)),
        _ => Err(format!("`{text}` is too long: at most 366d")),
    }
}

/// `BURST/PERIOD`, such as `10/1m`.
pub fn parse_rate(text: &str) -> Result<(u32, Duration), String> {
    let (burst, period) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not a rate such as 10/1m"))?;
    let burst: u32 = burst
        .trim()
        .parse()
        .map_err(|_| format!("`{burst}` is not a count"))?;
    if burst == 0 {
        return Err("the burst must be at least 1".into());
    }
    Ok((burst, parse_duration(period)?))
}

/// A rate, or none at all (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalRate(pub Option<(u32, Duration)>);

/// `off`, or a rate as [`parse_rate`] reads it.
pub fn parse_optional_rate(text: &str) -> Result<OptionalRate, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(OptionalRate(None));
    }
    parse_rate(text).map(|rate| OptionalRate(Some(rate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_can_be_switched_off() {
        assert_eq!(parse_optional_rate("off"), Ok(OptionalRate(None)));
        assert_eq!(
            parse_optional_rate("600/1m"),
            Ok(OptionalRate(Some((600, Duration::from_secs(60)))))
        );
        assert!(parse_optional_rate("0/1m").is_err());
        assert!(parse_optional_rate("of").is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("367d").is_err());
        assert!(parse_duration("100000000000000000000d").is_err());
    }

    #[test]
    fn rates_parse_as_burst_and_period() {
        assert_eq!(parse_rate("10/1m"), Ok((10, Duration::from_secs(60))));
        assert!(parse_rate("0/1m").is_err());
        assert!(parse_rate("10").is_err());
    }

    #[test]
    fn speeds_are_bounded_km_per_hour() {
        assert_eq!(parse_speed("1080"), Ok(1080.0));
        for bad in ["0", "-5", "NaN", "inf", "30001", "fast"] {
            assert!(parse_speed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_defaults_reach_the_api_config() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["vicinity"]).unwrap();
        let config = cli.settings.api_config();
        assert_eq!(config.presence.ttl, chrono::Duration::hours(3));
        assert!((config.presence.max_speed_mps - 300.0).abs() < 1e-9);
        assert_eq!(config.location_update_limit.burst, 10);
        assert_eq!(config.nearby_limit.period, Duration::from_secs(1));
    }
}
