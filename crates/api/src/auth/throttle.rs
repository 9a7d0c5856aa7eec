//! Login throttling per account and per client address (governor's GCRA, in memory).
//!
//! Each instance keeps its own counters; behind a load balancer an attacker gets at most the
//! configured rate per instance, which is still bounded. Attempts count whether or not they
//! succeed, so guessing is bounded even when interleaved with a valid login.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use vicinity_domain::UserId;

use crate::config::{LoginThrottleConfig, RateLimit};

pub struct LoginThrottle {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU32,
}

fn quota(burst: u32, period: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period.max(Duration::from_millis(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl LoginThrottle {
    pub fn new(config: &LoginThrottleConfig) -> Self {
        Self {
            per_account: DefaultKeyedRateLimiter::keyed(quota(
                config.per_account_burst,
                config.per_account_period,
            )),
            per_address: DefaultKeyedRateLimiter::keyed(quota(
                config.per_address_burst,
                config.per_address_period,
            )),
            checks: AtomicU32::new(0),
        }
    }

    /// Records an attempt (a login or a registration) from a client address; `Err(seconds)`
    /// says how long the caller must wait.
    pub fn attempt_from(&self, address: Option<IpAddr>) -> Result<(), u64> {
        self.forget_idle_keys();
        let Some(address) = address else {
            return Ok(());
        };
        let now = DefaultClock::default().now();
        self.per_address
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(now).as_secs().max(1))
    }

    /// Records a login attempt on an account, keyed by the account itself when it exists (so
    /// its username and email share one budget) or by the name tried otherwise.
    pub fn attempt_on(&self, account: &str) -> Result<(), u64> {
        let now = DefaultClock::default().now();
        self.per_account
            .check_key(&account.trim().to_lowercase())
            .map_err(|not_until| not_until.wait_time_from(now).as_secs().max(1))
    }

    /// Keys whose bucket has refilled carry no information; drop them now and then so that
    /// attempts on random names cannot grow memory without bound.
    fn forget_idle_keys(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.per_account.retain_recent();
            self.per_address.retain_recent();
        }
    }
}

/// Failed client authentications per client id: after `limit` failures within `window`, every
/// attempt (right or wrong) is refused until the window has passed, so secrets cannot be
/// guessed at speed. Only failures count, so a busy client that authenticates correctly is
/// never slowed; the price is that someone sending wrong secrets can lock a client out for a
/// window, which is the usual trade of lockouts.
pub struct FailureThrottle {
    failures: std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
    limit: u32,
    window: Duration,
}

impl FailureThrottle {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            failures: std::sync::Mutex::default(),
            limit: limit.max(1),
            window,
        }
    }

    /// `Err(seconds)` while `key` is locked out.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match failures.get(key) {
            Some((count, since)) if *count >= self.limit && since.elapsed() < self.window => {
                Err((self.window - since.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key`.
    pub fn failed(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= 10_000 {
            failures.retain(|_, (_, since)| since.elapsed() < self.window);
        }
        let entry = failures
            .entry(key.chars().take(100).collect())
            .or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, std::time::Instant::now());
        }
        entry.0 += 1;
    }
}

/// A rate per person (position updates, nearby queries), keyed by user id.
pub struct PerUser {
    limiter: DefaultKeyedRateLimiter<i64>,
    checks: AtomicU32,
}

impl PerUser {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota(limit.burst, limit.period)),
            checks: AtomicU32::new(0),
        }
    }

    /// Counts one request of `user`; `Err(seconds)` says how long they must wait.
    pub fn check(&self, user: UserId) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        // The limiter's own clock: making a new one reads the CPU's features every time.
        self.limiter.check_key(&user.raw()).map_err(|not_until| {
            let now = self.limiter.clock().now();
            not_until.wait_time_from(now).as_secs().max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(&LoginThrottleConfig {
            per_account_burst: 3,
            per_account_period: Duration::from_secs(60),
            per_address_burst: 5,
            per_address_period: Duration::from_secs(60),
        })
    }

    #[test]
    fn an_account_is_throttled_after_its_burst_whatever_the_case() {
        let throttle = throttle();
        for name in ["ada", "ADA", "Ada"] {
            assert!(throttle.attempt_on(name).is_ok());
        }
        let wait = throttle.attempt_on("ada").unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(throttle.attempt_on("grace").is_ok());
    }

    #[test]
    fn failures_lock_a_key_out_for_the_window() {
        let throttle = FailureThrottle::new(2, Duration::from_millis(200));
        assert!(throttle.check("app").is_ok());
        throttle.failed("app");
        assert!(throttle.check("app").is_ok());
        throttle.failed("app");
        assert!(throttle.check("app").is_err());
        assert!(throttle.check("other").is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(throttle.check("app").is_ok());
        throttle.failed("app");
        assert!(
            throttle.check("app").is_ok(),
            "a new window starts from zero"
        );
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let throttle = throttle();
        let address: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..5 {
            assert!(throttle.attempt_from(Some(address)).is_ok());
        }
        assert!(throttle.attempt_from(Some(address)).is_err());
        assert!(throttle.attempt_from(Some([127, 0, 0, 2].into())).is_ok());
    }
}
