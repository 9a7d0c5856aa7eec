//! Refresh-token families: rotation on every use, and reuse detection that revokes a family.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use vicinity_domain::{ScopeSet, TokenFamilyId, UserId};

use crate::schema::{refresh_tokens, token_families, users};
use crate::time::to_micros;
use crate::{DbConnection, StoreError, new_key, transaction};

/// What a family of tokens grants: whose it is, to which client, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub family_id: TokenFamilyId,
    pub user_id: UserId,
    pub client_id: String,
    pub scope: ScopeSet,
}

/// A refresh token to store: only its hash and expiry are ever written.
pub struct NewRefreshToken<'a> {
    pub hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// What the client presenting a refresh token asks for, checked before the token is spent.
#[derive(Debug, Clone, Copy, Default)]
pub struct RotationRequest<'a> {
    /// The client that must own the family, when the client identified itself.
    pub client_id: Option<&'a str>,
    /// A narrower scope for the new access token; never more than the family's.
    pub scope: Option<ScopeSet>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid; it is now spent and the new one belongs to the same family.
    Rotated(Grant),
    /// The token had already been used: the whole family has just been revoked.
    ReuseDetected(TokenFamilyId),
    /// The token is valid but the requested scope exceeds the family's; nothing was spent.
    ScopeExceeded,
    /// Unknown, expired, from a revoked family, or owned by another client.
    Invalid,
}

#[derive(Queryable)]
struct FamilyRow {
    id: i64,
    user_id: i64,
    client_id: String,
    scope: String,
}

impl TryFrom<FamilyRow> for Grant {
    type Error = StoreError;

    fn try_from(row: FamilyRow) -> Result<Self, StoreError> {
        Ok(Grant {
            family_id: TokenFamilyId::from_raw(row.id),
            user_id: UserId::from_raw(row.user_id),
            client_id: row.client_id,
            scope: ScopeSet::parse(&row.scope).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        })
    }
}

const FAMILY_COLUMNS: (
    token_families::id,
    token_families::user_id,
    token_families::client_id,
    token_families::scope,
) = (
    token_families::id,
    token_families::user_id,
    token_families::client_id,
    token_families::scope,
);

/// Starts a family (a login) with its first refresh token.
pub fn start_family(
    conn: &mut DbConnection,
    user_id: UserId,
    client_id: &str,
    scope: ScopeSet,
    token: &NewRefreshToken<'_>,
    now: DateTime<Utc>,
) -> Result<Grant, StoreError> {
    transaction(conn, |conn| {
        let grant = open_family(conn, user_id, client_id, scope, now)?;
        insert_token(conn, grant.family_id.raw(), user_id.raw(), token, now)?;
        Ok(grant)
    })
}

/// Starts a family with no refresh token: for access tokens minted outside a login, such as
/// `vicinity admin token`, which can be revoked like any login but never refreshed.
pub fn open_family(
    conn: &mut DbConnection,
    user_id: UserId,
    client_id: &str,
    scope: ScopeSet,
    now: DateTime<Utc>,
) -> Result<Grant, StoreError> {
    let family_id = new_key();
    diesel::insert_into(token_families::table)
        .values((
            token_families::id.eq(family_id),
            token_families::user_id.eq(user_id.raw()),
            token_families::client_id.eq(client_id),
            token_families::scope.eq(scope.to_string()),
            token_families::created_at.eq(to_micros(now)),
        ))
        .execute(conn)?;
    Ok(Grant {
        family_id: TokenFamilyId::from_raw(family_id),
        user_id,
        client_id: client_id.to_owned(),
        scope,
    })
}

fn insert_token(
    conn: &mut DbConnection,
    family_id: i64,
    user_id: i64,
    token: &NewRefreshToken<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(new_key()),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::token_hash.eq(token.hash),
            refresh_tokens::created_at.eq(to_micros(now)),
            refresh_tokens::expires_at.eq(to_micros(token.expires_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Spends the refresh token whose hash is `presented` and stores `replacement` in its family.
///
/// Presenting a token a second time (a stolen copy, or a replay) revokes the family, so both
/// the thief and the victim must log in again (RFC 9700 §4.14.2).
pub fn rotate(
    conn: &mut DbConnection,
    presented: &str,
    request: RotationRequest<'_>,
    replacement: &NewRefreshToken<'_>,
    now: DateTime<Utc>,
) -> Result<Rotation, StoreError> {
    let at = to_micros(now);
    transaction(conn, |conn| {
        let found = refresh_tokens::table
            .inner_join(token_families::table.inner_join(users::table))
            .filter(refresh_tokens::token_hash.eq(presented))
            .select((
                refresh_tokens::id,
                refresh_tokens::expires_at,
                refresh_tokens::used_at,
                token_families::revoked_at,
                users::suspended_at,
                FAMILY_COLUMNS,
            ))
            .first::<(i64, i64, Option<i64>, Option<i64>, Option<i64>, FamilyRow)>(conn)
            .optional()?;
        let Some((token_id, expires_at, used_at, revoked_at, suspended_at, family)) = found else {
            return Ok(Rotation::Invalid);
        };
        if revoked_at.is_some() || suspended_at.is_some() {
            return Ok(Rotation::Invalid);
        }
        let grant = Grant::try_from(family)?;
        let family_id = grant.family_id.raw();
        if used_at.is_some() {
            revoke_family_row(conn, family_id, "refresh token reused", at)?;
            return Ok(Rotation::ReuseDetected(grant.family_id));
        }
        // Reuse is detected before anything else about the request is judged: a replayed
        // token revokes its family whatever it was sent with.
        if expires_at <= at || request.client_id.is_some_and(|id| id != grant.client_id) {
            return Ok(Rotation::Invalid);
        }
        if request
            .scope
            .is_some_and(|scope| !scope.is_subset_of(grant.scope))
        {
            return Ok(Rotation::ScopeExceeded);
        }
        // The `used_at IS NULL` guard makes two concurrent uses of one token race safely on
        // PostgreSQL too: exactly one update wins, the other is treated as reuse.
        let spent = diesel::update(
            refresh_tokens::table
                .find(token_id)
                .filter(refresh_tokens::used_at.is_null()),
        )
        .set(refresh_tokens::used_at.eq(at))
        .execute(conn)?;
        if spent == 0 {
            revoke_family_row(conn, family_id, "refresh token reused", at)?;
            return Ok(Rotation::ReuseDetected(grant.family_id));
        }
        insert_token(conn, family_id, grant.user_id.raw(), replacement, now)?;
        Ok(Rotation::Rotated(grant))
    })
}

fn revoke_family_row(
    conn: &mut DbConnection,
    family_id: i64,
    reason: &str,
    at: i64,
) -> Result<(), StoreError> {
    diesel::update(
        token_families::table
            .find(family_id)
            .filter(token_families::revoked_at.is_null()),
    )
    .set((
        token_families::revoked_at.eq(at),
        token_families::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    crate::events::announce(conn, crate::events::Change::FamilyRevoked(family_id))
}

/// Revokes a whole family (logout, or revocation of any of its tokens).
pub fn revoke_family(
    conn: &mut DbConnection,
    family_id: TokenFamilyId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    revoke_family_row(conn, family_id.raw(), reason, to_micros(now))
}

/// The family a refresh token belongs to, if the token is known (used or not).
pub fn family_of_refresh_token(
    conn: &mut DbConnection,
    presented: &str,
) -> Result<Option<Grant>, StoreError> {
    refresh_tokens::table
        .inner_join(token_families::table)
        .filter(refresh_tokens::token_hash.eq(presented))
        .select(FAMILY_COLUMNS)
        .first::<FamilyRow>(conn)
        .optional()?
        .map(Grant::try_from)
        .transpose()
}

/// Whether access tokens of this family may still be honoured: the family is not revoked and
/// its account exists and is not suspended.
pub fn family_is_active(
    conn: &mut DbConnection,
    family_id: TokenFamilyId,
    user_id: UserId,
) -> Result<bool, StoreError> {
    let found = token_families::table
        .inner_join(users::table)
        .filter(token_families::id.eq(family_id.raw()))
        .filter(token_families::user_id.eq(user_id.raw()))
        .filter(token_families::revoked_at.is_null())
        .filter(users::suspended_at.is_null())
        .select(token_families::id)
        .first::<i64>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Whether a refresh token (by hash) is live: known, unspent, unexpired, its family not
/// revoked and its account not suspended. The grant it belongs to, and when it expires.
pub fn live_refresh_token(
    conn: &mut DbConnection,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Grant, DateTime<Utc>)>, StoreError> {
    let found = refresh_tokens::table
        .inner_join(token_families::table.inner_join(users::table))
        .filter(refresh_tokens::token_hash.eq(presented))
        .filter(refresh_tokens::used_at.is_null())
        .filter(refresh_tokens::expires_at.gt(to_micros(now)))
        .filter(token_families::revoked_at.is_null())
        .filter(users::suspended_at.is_null())
        .select((refresh_tokens::expires_at, FAMILY_COLUMNS))
        .first::<(i64, FamilyRow)>(conn)
        .optional()?;
    found
        .map(|(expires_at, family)| {
            Ok((
                Grant::try_from(family)?,
                crate::time::from_micros(expires_at)?,
            ))
        })
        .transpose()
}

/// Which live logins (token families) [`revoke_live`] revokes: those matching every filter
/// given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logins<'a> {
    pub user: Option<UserId>,
    pub client: Option<&'a str>,
    /// Only those whose scope holds this one.
    pub carrying: Option<vicinity_domain::Scope>,
}

/// Revokes every live login matching `which`, telling every instance; returns how many.
pub fn revoke_live(
    conn: &mut DbConnection,
    which: Logins<'_>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut query = token_families::table
        .filter(token_families::revoked_at.is_null())
        .select((token_families::id, token_families::scope))
        .into_boxed();
    if let Some(user) = which.user {
        query = query.filter(token_families::user_id.eq(user.raw()));
    }
    if let Some(client) = which.client {
        query = query.filter(token_families::client_id.eq(client.to_owned()));
    }
    let mut revoked = 0;
    for (family, scope) in query.load::<(i64, String)>(conn)? {
        if let Some(required) = which.carrying {
            let scope = ScopeSet::parse(&scope).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if !scope.contains(required) {
                continue;
            }
        }
        revoke_family_row(conn, family, reason, to_micros(now))?;
        revoked += 1;
    }
    Ok(revoked)
}
