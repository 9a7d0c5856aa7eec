//! Settings of the HTTP layer; the binary fills them from the environment.

use std::time::Duration;
use vicinity_store::maintenance::Retention;
use vicinity_store::presence::PresenceRules;
use vicinity_store::social::SocialLimits;

/// The largest request body accepted unless configured otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Address to listen on, such as `127.0.0.1:8080` (port 0 picks a free one).
    pub bind: String,
    /// `iss` of issued tokens: this server's public base URL.
    pub issuer: String,
    /// `aud` of issued access tokens: the resource server they are meant for.
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    pub login_throttle: LoginThrottleConfig,
    /// Take the client address from `Forwarded`/`X-Forwarded-For` (only behind a proxy that
    /// sets them; otherwise clients could pick their own address for throttling).
    pub trust_forwarded_for: bool,
    /// HTTP worker threads; `None` uses one per core.
    pub workers: Option<usize>,
    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    pub shutdown_timeout: Duration,
    /// Caps on friends and pending friend requests per person.
    pub social_limits: SocialLimits,
    /// How long a position counts, and the fastest plausible travel.
    pub presence: PresenceRules,
    /// Position updates allowed per person.
    pub location_update_limit: RateLimit,
    /// Nearby queries allowed per person.
    pub nearby_limit: RateLimit,
    /// How often expired positions and stale records are deleted.
    pub maintenance_interval: Duration,
    pub retention: Retention,
    pub webhooks: WebhookConfig,
    /// Requests allowed per access token's login (token family); `None`: unlimited.
    pub request_limit_per_token: Option<RateLimit>,
    /// Requests allowed per client address; `None`: unlimited.
    pub request_limit_per_address: Option<RateLimit>,
    /// Area statistics leave out a cell with fewer distinct visitors than this.
    pub stats_min_visitors: u64,
}

/// How webhook deliveries are made and retried.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The wait before the first retry; each further retry waits twice as long (at most an
    /// hour).
    pub retry_base: Duration,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// The longest a receiver may take to answer.
    pub timeout: Duration,
    /// Tests only (never set from the environment): allow `http` to the loopback address, so
    /// that a test can receive deliveries. Every other internal address stays forbidden.
    pub allow_loopback_for_tests: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(10),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            allow_loopback_for_tests: false,
        }
    }
}

/// A per-person rate: a burst, refilled at one request per period.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub burst: u32,
    pub period: Duration,
}

/// Login attempts allowed before further attempts are refused with 429: a burst, refilled at
/// one attempt per period.
#[derive(Debug, Clone)]
pub struct LoginThrottleConfig {
    pub per_account_burst: u32,
    pub per_account_period: Duration,
    pub per_address_burst: u32,
    pub per_address_period: Duration,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            per_account_burst: 10,
            per_account_period: Duration::from_secs(60),
            per_address_burst: 30,
            per_address_period: Duration::from_secs(10),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            issuer: "http://127.0.0.1:8080".into(),
            audience: "vicinity-api".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            login_throttle: LoginThrottleConfig::default(),
            trust_forwarded_for: false,
            workers: None,
            shutdown_timeout: Duration::from_secs(30),
            social_limits: SocialLimits::default(),
            presence: PresenceRules::default(),
            location_update_limit: RateLimit {
                burst: 10,
                period: Duration::from_secs(5),
            },
            nearby_limit: RateLimit {
                burst: 30,
                period: Duration::from_secs(1),
            },
            maintenance_interval: Duration::from_secs(600),
            retention: Retention::default(),
            webhooks: WebhookConfig::default(),
            request_limit_per_token: Some(RateLimit {
                burst: 600,
                period: Duration::from_secs(60),
            }),
            request_limit_per_address: Some(RateLimit {
                burst: 3_000,
                period: Duration::from_secs(60),
            }),
            stats_min_visitors: 5,
        }
    }
}
