//! Webhooks: which app wants the check-ins of the people who authorized it, and the queue of
//! deliveries, each retried with backoff until delivered or given up.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use vicinity_domain::webhook::WebhookUrl;
use vicinity_domain::{ClientId, Scope, ScopeSet, UserId};

use crate::schema::{oauth_consents, webhook_deliveries, webhooks};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, StoreError, new_key};

/// An app's webhook as it is shown back (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub created_at: DateTime<Utc>,
}

/// Sets (or replaces) the webhook of `client_id`, with a new signing secret.
pub fn set(
    conn: &mut DbConnection,
    client_id: &ClientId,
    url: &WebhookUrl,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    crate::transaction(conn, |conn| {
        diesel::delete(webhooks::table.find(client_id.as_str())).execute(conn)?;
        diesel::insert_into(webhooks::table)
            .values((
                webhooks::client_id.eq(client_id.as_str()),
                webhooks::url.eq(url.as_str()),
                webhooks::secret.eq(secret),
                webhooks::created_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

pub fn find(conn: &mut DbConnection, client_id: &ClientId) -> Result<Option<Webhook>, StoreError> {
    webhooks::table
        .find(client_id.as_str())
        .select((webhooks::url, webhooks::created_at))
        .first::<(String, i64)>(conn)
        .optional()?
        .map(|(url, created_at)| {
            Ok(Webhook {
                url,
                created_at: from_micros(created_at)?,
            })
        })
        .transpose()
}

/// Removes the webhook of `client_id` and its pending deliveries; false if it had none.
pub fn remove(conn: &mut DbConnection, client_id: &ClientId) -> Result<bool, StoreError> {
    crate::transaction(conn, |conn| {
        diesel::delete(
            webhook_deliveries::table
                .filter(webhook_deliveries::client_id.eq(client_id.as_str()))
                .filter(webhook_deliveries::delivered_at.is_null())
                .filter(webhook_deliveries::failed_at.is_null()),
        )
        .execute(conn)?;
        Ok(diesel::delete(webhooks::table.find(client_id.as_str())).execute(conn)? > 0)
    })
}

/// Whether any app has a webhook at all (when none has, check-ins skip the lookup).
pub fn any(conn: &mut DbConnection) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        webhooks::table.select(webhooks::client_id),
    ))
    .get_result::<bool>(conn)?)
}

/// Queues `payload(delivery_id, granted)` for every app with a webhook that `user_id` has
/// authorized to read their check-ins, `granted` being what the person granted that app.
/// Returns how many deliveries were queued.
pub fn enqueue_checkin(
    conn: &mut DbConnection,
    user_id: UserId,
    event: &str,
    payload: impl Fn(i64, ScopeSet) -> String,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let apps = oauth_consents::table
        .inner_join(webhooks::table.on(webhooks::client_id.eq(oauth_consents::client_id)))
        .filter(oauth_consents::user_id.eq(user_id.raw()))
        .select((oauth_consents::client_id, oauth_consents::scope))
        .load::<(String, String)>(conn)?;
    let mut queued = 0;
    for (client_id, scope) in apps {
        let granted = ScopeSet::parse(&scope).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if !granted.contains(Scope::CheckinsRead) {
            continue;
        }
        let id = new_key();
        diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::id.eq(id),
                webhook_deliveries::client_id.eq(&client_id),
                webhook_deliveries::event.eq(event),
                webhook_deliveries::payload.eq(payload(id, granted)),
                webhook_deliveries::created_at.eq(to_micros(now)),
                webhook_deliveries::next_attempt_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        queued += 1;
    }
    Ok(queued)
}

/// A delivery taken by a worker: where to send what, signed with which secret.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub client_id: String,
    pub url: String,
    pub secret: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// Takes up to `limit` deliveries that are due, moving each one's next attempt `lease` ahead
/// so that no other worker (in this or another instance) takes it meanwhile.
pub fn take_due(
    conn: &mut DbConnection,
    limit: i64,
    lease: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Vec<Due>, StoreError> {
    let at = to_micros(now);
    let candidates = webhook_deliveries::table
        .inner_join(webhooks::table.on(webhooks::client_id.eq(webhook_deliveries::client_id)))
        .filter(webhook_deliveries::delivered_at.is_null())
        .filter(webhook_deliveries::failed_at.is_null())
        .filter(webhook_deliveries::next_attempt_at.le(at))
        .order(webhook_deliveries::next_attempt_at)
        .limit(limit)
        .select((
            webhook_deliveries::id,
            webhook_deliveries::client_id,
            webhooks::url,
            webhooks::secret,
            webhook_deliveries::payload,
            webhook_deliveries::attempts,
            webhook_deliveries::next_attempt_at,
        ))
        .load::<(i64, String, String, String, String, i32, i64)>(conn)?;
    let mut taken = Vec::new();
    for (id, client_id, url, secret, payload, attempts, next_attempt_at) in candidates {
        let won = diesel::update(
            webhook_deliveries::table
                .find(id)
                .filter(webhook_deliveries::next_attempt_at.eq(next_attempt_at)),
        )
        .set(webhook_deliveries::next_attempt_at.eq(to_micros(now + lease)))
        .execute(conn)?;
        if won == 1 {
            taken.push(Due {
                id,
                client_id,
                url,
                secret,
                payload,
                attempts,
            });
        }
    }
    Ok(taken)
}

/// Records a successful delivery.
pub fn delivered(conn: &mut DbConnection, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::delivered_at.eq(to_micros(now)),
            webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
            webhook_deliveries::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a failed attempt: tried again at `retry_at`, or given up when that is `None`.
pub fn attempt_failed(
    conn: &mut DbConnection,
    id: i64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let error: String = error.chars().take(500).collect();
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
            webhook_deliveries::last_error.eq(error),
            webhook_deliveries::next_attempt_at.eq(to_micros(retry_at.unwrap_or(now))),
            webhook_deliveries::failed_at.eq(retry_at.is_none().then(|| to_micros(now))),
        ))
        .execute(conn)?;
    Ok(())
}

/// A delivery as an app sees it in its delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub event: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub delivered_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The most recent deliveries of `client_id`, newest first.
pub fn recent(
    conn: &mut DbConnection,
    client_id: &ClientId,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    webhook_deliveries::table
        .filter(webhook_deliveries::client_id.eq(client_id.as_str()))
        .order((
            webhook_deliveries::created_at.desc(),
            webhook_deliveries::id.desc(),
        ))
        .limit(limit)
        .select((
            webhook_deliveries::id,
            webhook_deliveries::event,
            webhook_deliveries::created_at,
            webhook_deliveries::attempts,
            webhook_deliveries::delivered_at,
            webhook_deliveries::failed_at,
            webhook_deliveries::last_error,
        ))
        .load::<(
            i64,
            String,
            i64,
            i32,
            Option<i64>,
            Option<i64>,
            Option<String>,
        )>(conn)?
        .into_iter()
        .map(
            |(id, event, created_at, attempts, delivered_at, failed_at, last_error)| {
                Ok(Delivery {
                    id,
                    event,
                    created_at: from_micros(created_at)?,
                    attempts,
                    delivered_at: delivered_at.map(from_micros).transpose()?,
                    failed_at: failed_at.map(from_micros).transpose()?,
                    last_error,
                })
            },
        )
        .collect()
}
