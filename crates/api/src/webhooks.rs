//! Webhook deliveries: queued when a person who authorized an app checks in, sent by a worker
//! in every instance (each delivery leased to one), signed, retried with exponential backoff,
//! and never sent to an internal address, however the receiver's name resolves.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use vicinity_domain::webhook::{is_forbidden_address, signature};
use vicinity_domain::{Scope, ScopeSet, UserId};
use vicinity_store::{Store, webhooks};

use crate::config::WebhookConfig;

/// How long a taken delivery is reserved for the worker that took it.
const LEASE: chrono::Duration = chrono::Duration::minutes(2);
/// Deliveries taken per pass.
const BATCH: i64 = 16;
/// How often the worker looks for due deliveries when nothing wakes it.
const POLL: Duration = Duration::from_secs(1);
/// How long "no app has a webhook" is trusted before asking the database again.
const ANY_TTL_SECS: i64 = 10;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Queues deliveries and wakes the worker.
#[derive(Clone)]
pub struct Webhooks {
    store: Store,
    wake: Arc<Notify>,
    /// Whether any webhook existed when last asked, and when that was (seconds).
    any: Arc<(AtomicBool, AtomicI64)>,
}

impl Webhooks {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
            any: Arc::new((AtomicBool::new(true), AtomicI64::new(i64::MIN))),
        }
    }

    /// Tells the check-in path to look again (a webhook was just set here).
    pub fn changed(&self) {
        self.any.1.store(i64::MIN, Ordering::Relaxed);
    }

    /// Queues a `checkin.created` delivery for every app with a webhook that `user` authorized
    /// to read check-ins: the `checkin` of `answer` (the check-in endpoint's JSON), never its
    /// friends nearby. Nothing is parsed while no app has a webhook. Failing to queue is
    /// logged, not returned: the check-in itself is already stored.
    pub async fn checkin_created(&self, user: UserId, answer: &str) {
        let now = Utc::now();
        let (any, checked) = (&self.any.0, &self.any.1);
        let fresh = now
            .timestamp()
            .saturating_sub(checked.load(Ordering::Relaxed))
            < ANY_TTL_SECS;
        if fresh && !any.load(Ordering::Relaxed) {
            return;
        }
        let Some(checkin) = serde_json::from_str::<serde_json::Value>(answer)
            .ok()
            .as_mut()
            .and_then(|created| created.get_mut("checkin"))
            .map(serde_json::Value::take)
        else {
            tracing::error!("a check-in answer without its check-in: no webhook queued");
            return;
        };
        let queued = self
            .store
            .run(move |conn| {
                let exists = webhooks::any(conn)?;
                if !exists {
                    return Ok((false, 0));
                }
                // The device's position goes only to apps granted `location:read`.
                let without_position = without_position(&checkin);
                let payload = |id: i64, granted: ScopeSet| {
                    let checkin = if granted.contains(Scope::LocationRead) {
                        &checkin
                    } else {
                        &without_position
                    };
                    serde_json::json!({
                        "id": format!("whd_{id:016x}"),
                        "event": "checkin.created",
                        "created_at": now,
                        "data": {"checkin": checkin},
                    })
                    .to_string()
                };
                Ok((
                    true,
                    webhooks::enqueue_checkin(conn, user, "checkin.created", payload, now)?,
                ))
            })
            .await;
        match queued {
            Ok((exists, count)) => {
                any.store(exists, Ordering::Relaxed);
                checked.store(now.timestamp(), Ordering::Relaxed);
                if count > 0 {
                    self.wake.notify_one();
                }
            }
            Err(error) => tracing::error!(%error, "cannot queue webhook deliveries"),
        }
    }
}

/// A check-in's JSON without the device's `location`.
fn without_position(checkin: &serde_json::Value) -> serde_json::Value {
    let mut checkin = checkin.clone();
    if let Some(fields) = checkin.as_object_mut() {
        fields.remove("location");
    }
    checkin
}

/// Runs the delivery worker until `closing` turns true.
pub fn spawn_worker(hooks: Webhooks, config: WebhookConfig, mut closing: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let due = hooks
                .store
                .run(move |conn| webhooks::take_due(conn, BATCH, LEASE, Utc::now()))
                .await;
            let due = match due {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "cannot read due webhook deliveries");
                    Vec::new()
                }
            };
            let busy = due.len() as i64 == BATCH;
            for delivery in due {
                let outcome = deliver(&delivery, &config).await;
                let now = Utc::now();
                let id = delivery.id;
                let recorded = match outcome {
                    Ok(()) => {
                        tracing::info!(delivery.id = id, client.id = %delivery.client_id, "webhook delivered");
                        hooks
                            .store
                            .run(move |conn| webhooks::delivered(conn, id, now))
                            .await
                    }
                    Err(error) => {
                        let retry_at = retry_at(&config, delivery.attempts, now);
                        tracing::info!(delivery.id = id, client.id = %delivery.client_id, %error, will_retry = retry_at.is_some(), "webhook delivery failed");
                        hooks
                            .store
                            .run(move |conn| {
                                webhooks::attempt_failed(conn, id, &error, retry_at, now)
                            })
                            .await
                    }
                };
                if let Err(error) = recorded {
                    tracing::warn!(%error, "cannot record a webhook delivery's outcome");
                }
            }
            if busy {
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = hooks.wake.notified() => {}
                _ = closing.wait_for(|closing| *closing) => return,
            }
        }
    });
}

/// When to try again after `attempts_before` earlier failures and this one; `None` gives up.
fn retry_at(
    config: &WebhookConfig,
    attempts_before: i32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let made = u32::try_from(attempts_before)
        .unwrap_or(0)
        .saturating_add(1);
    if made >= config.max_attempts {
        return None;
    }
    let wait = config
        .retry_base
        .saturating_mul(1u32.checked_shl(made - 1).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF);
    Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)))
}

/// Sends one delivery. The receiver's name is resolved here and every address checked, and the
/// connection goes to the checked address: a name that resolves elsewhere a moment later (DNS
/// rebinding) cannot redirect it. Redirects are not followed.
async fn deliver(delivery: &webhooks::Due, config: &WebhookConfig) -> Result<(), String> {
    let url = reqwest::Url::parse(&delivery.url).map_err(|e| format!("bad URL: {e}"))?;
    let host = url.host_str().ok_or("the URL has no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let allowed = |ip: IpAddr| {
        !is_forbidden_address(ip) || (config.allow_loopback_for_tests && ip.is_loopback())
    };
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if let Some(bad) = addresses.iter().find(|a| !allowed(a.ip())) {
        return Err(format!(
            "{host} resolves to {}, an internal address: not delivered",
            bad.ip()
        ));
    }
    if url.scheme() != "https"
        && !(config.allow_loopback_for_tests && addresses.iter().all(|a| a.ip().is_loopback()))
    {
        return Err("only https is delivered to".into());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .resolve_to_addrs(&lookup_host, &addresses)
        .user_agent("Vicinity-Webhooks/1")
        .build()
        .map_err(|e| format!("cannot prepare a client: {e}"))?;
    let timestamp = Utc::now().timestamp();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("vicinity-event", "checkin.created")
        .header("vicinity-delivery", format!("whd_{:016x}", delivery.id))
        .header(
            "vicinity-signature",
            signature(&delivery.secret, timestamp, delivery.payload.as_bytes()),
        )
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(|e| format!("cannot deliver: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the receiver answered {}",
            response.status().as_u16()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_limit() {
        let config = WebhookConfig {
            retry_base: Duration::from_secs(10),
            max_attempts: 4,
            ..WebhookConfig::default()
        };
        let now = Utc::now();
        let waits: Vec<Option<i64>> = (0..4)
            .map(|before| retry_at(&config, before, now).map(|at| (at - now).num_seconds()))
            .collect();
        assert_eq!(waits, [Some(10), Some(20), Some(40), None]);
        let patient = WebhookConfig {
            max_attempts: 100,
            ..config
        };
        let last = retry_at(&patient, 60, now).unwrap();
        assert_eq!((last - now).num_seconds(), 3600);
    }
}
