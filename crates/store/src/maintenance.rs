//! Housekeeping: data that has served its purpose is deleted, above all locations (DESIGN.md
//! §5: expired presence is pruned, not kept).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::schema::{
    changes, client_grants, idempotency_keys, location_access, oauth_codes, presence,
    refresh_tokens, web_sessions, webhook_deliveries,
};
use crate::time::to_micros;
use crate::{DbConnection, StoreError};

/// How long each kind of data is kept once it stops mattering.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Idempotency keys: long enough for any client's retries.
    pub idempotency_keys: Duration,
    /// Rows of the location-access log.
    pub access_log: Duration,
    /// Refresh tokens past their expiry (kept a little for clearer errors).
    pub expired_refresh_tokens: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            idempotency_keys: Duration::hours(24),
            access_log: Duration::days(90),
            expired_refresh_tokens: Duration::days(1),
        }
    }
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub presence: usize,
    pub idempotency_keys: usize,
    pub access_log: usize,
    pub refresh_tokens: usize,
    /// Rows of the change feed that every instance has long applied.
    pub changes: usize,
    /// Authorization codes past their expiry (kept as long as expired refresh tokens, so that
    /// a late replay is still recognised).
    pub authorization_codes: usize,
    /// Expired sessions of the authorization page.
    pub web_sessions: usize,
    /// Client credentials grants whose tokens have all expired.
    pub client_grants: usize,
    /// Webhook deliveries finished (delivered or given up) more than a week ago.
    pub webhook_deliveries: usize,
}

/// Deletes expired presence at once, and the rest after its retention.
pub fn prune(
    conn: &mut DbConnection,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<Pruned, StoreError> {
    let at = to_micros(now);
    Ok(Pruned {
        presence: diesel::delete(presence::table.filter(presence::expires_at.le(at)))
            .execute(conn)?,
        idempotency_keys: diesel::delete(
            idempotency_keys::table.filter(
                idempotency_keys::created_at.lt(to_micros(now - retention.idempotency_keys)),
            ),
        )
        .execute(conn)?,
        access_log: diesel::delete(
            location_access::table
                .filter(location_access::last_at.lt(to_micros(now - retention.access_log))),
        )
        .execute(conn)?,
        refresh_tokens: diesel::delete(refresh_tokens::table.filter(
            refresh_tokens::expires_at.lt(to_micros(now - retention.expired_refresh_tokens)),
        ))
        .execute(conn)?,
        changes: diesel::delete(
            changes::table.filter(changes::created_at.lt(to_micros(now - CHANGES_KEPT))),
        )
        .execute(conn)?,
        authorization_codes: diesel::delete(
            oauth_codes::table.filter(
                oauth_codes::expires_at.lt(to_micros(now - retention.expired_refresh_tokens)),
            ),
        )
        .execute(conn)?,
        web_sessions: diesel::delete(web_sessions::table.filter(web_sessions::expires_at.le(at)))
            .execute(conn)?,
        client_grants: diesel::delete(
            client_grants::table.filter(client_grants::expires_at.le(at)),
        )
        .execute(conn)?,
        webhook_deliveries: diesel::delete(
            webhook_deliveries::table
                .filter(webhook_deliveries::created_at.lt(to_micros(now - DELIVERIES_KEPT)))
                .filter(
                    webhook_deliveries::delivered_at
                        .is_not_null()
                        .or(webhook_deliveries::failed_at.is_not_null()),
                ),
        )
        .execute(conn)?,
    })
}

/// How long a finished webhook delivery stays in the app's delivery log.
const DELIVERIES_KEPT: chrono::Duration = chrono::Duration::days(7);

/// How long the change feed keeps a row: far longer than an instance takes to apply it.
const CHANGES_KEPT: chrono::Duration = chrono::Duration::hours(1);
