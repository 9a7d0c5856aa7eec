//! Request limits per login (the access token's family) and per client address (governor's
//! GCRA, in memory, per instance). Every limited answer says where the caller stands with
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`; an exhausted limit is
//! a 429 with `Retry-After`. Health probes and `/metrics` are never limited.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::app::AppState;
use crate::config::RateLimit;
use crate::error::ApiError;
use crate::request::current_request_id;

/// Where a caller stands with one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Standing {
    limit: u32,
    remaining: u32,
    /// Seconds until the bucket is full again (or, refused, until the next request may pass).
    reset_secs: u64,
    refused: bool,
}

/// `burst` requests per `period`, in bursts of up to `burst`.
struct Limiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K, StateInformationMiddleware>,
    burst: u32,
    interval: Duration,
    checks: AtomicU32,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(limit: RateLimit) -> Self {
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        let interval = (limit.period / burst.get()).max(Duration::from_micros(1));
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota).with_middleware(),
            burst: burst.get(),
            interval,
            checks: AtomicU32::new(0),
        }
    }

    fn check(&self, key: &K) -> Standing {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = self.burst.saturating_sub(remaining);
                Standing {
                    limit: self.burst,
                    remaining,
                    reset_secs: (self.interval * missing).as_secs_f64().ceil() as u64,
                    refused: false,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Standing {
                    limit: self.burst,
                    remaining: 0,
                    reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                    refused: true,
                }
            }
        }
    }
}

/// The server's request limits.
pub struct RequestLimits {
    per_login: Option<Limiter<i64>>,
    per_address: Option<Limiter<IpAddr>>,
}

impl RequestLimits {
    pub fn new(per_token: Option<RateLimit>, per_address: Option<RateLimit>) -> Self {
        Self {
            per_login: per_token.map(Limiter::new),
            per_address: per_address.map(Limiter::new),
        }
    }
}

/// Paths no limit applies to: what load balancers and Prometheus poll.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

pub async fn request_limits(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let limits = &state.limits;
    if exempt(req.path()) || (limits.per_login.is_none() && limits.per_address.is_none()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let mut standings: Vec<(&'static str, Standing)> = Vec::with_capacity(2);
    if let Some(limiter) = &limits.per_address {
        let address = crate::routes::accounts::client_address(
            req.request(),
            state.config.trust_forwarded_for,
        );
        if let Some(address) = address {
            standings.push(("address", limiter.check(&address)));
        }
    }
    if let Some(limiter) = &limits.per_login {
        // Only a token this server signed counts (a forged one is refused later anyway);
        // verification is cached, so the handler's own check costs nothing more.
        let grant = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| state.tokens.verify(token.trim()).ok());
        if let Some(grant) = grant {
            standings.push(("token", limiter.check(&grant.family_id.raw())));
        }
    }
    // The tightest limit is the one reported; a refused one wins.
    let Some(&(which, shown)) = standings
        .iter()
        .min_by_key(|(_, s)| (!s.refused, s.remaining))
    else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let mut res = if shown.refused {
        state.metrics.rate_limited.with_label_values(&[which]).inc();
        let what = if which == "token" {
            "requests with this token"
        } else {
            "requests from this address"
        };
        let response =
            ApiError::rate_limited(shown.reset_secs, what).to_response(current_request_id());
        req.into_response(response)
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    let headers = res.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", u64::from(shown.limit)),
        ("x-ratelimit-remaining", u64::from(shown.remaining)),
        ("x-ratelimit-reset", shown.reset_secs),
    ] {
        headers.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from(value),
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_steady_rate() {
        let limiter = Limiter::new(RateLimit {
            burst: 3,
            period: Duration::from_secs(60),
        });
        let first = limiter.check(&1_i64);
        assert_eq!((first.limit, first.remaining, first.refused), (3, 2, false));
        assert_eq!(first.reset_secs, 20);
        limiter.check(&1);
        let third = limiter.check(&1);
        assert_eq!((third.remaining, third.refused), (0, false));
        let fourth = limiter.check(&1);
        assert!(fourth.refused);
        assert!((1..=20).contains(&fourth.reset_secs), "{fourth:?}");
        // Another key has its own bucket.
        assert!(!limiter.check(&2).refused);
    }
}
