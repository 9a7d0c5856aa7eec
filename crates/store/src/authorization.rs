//! The authorization code grant: codes, remembered consent and the authorization page's
//! browser sessions. Codes and session tokens are stored as SHA-256 digests only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use vicinity_domain::{ClientId, CodeChallenge, CodeVerifier, ScopeSet, TokenFamilyId, UserId};

use crate::schema::{
    client_grants, oauth_clients, oauth_codes, oauth_consents, users, web_sessions,
};
use crate::time::{from_micros, to_micros};
use crate::tokens::{self, Grant, NewRefreshToken};
use crate::{DbConnection, StoreError, transaction};

/// A code to store, issued when a person approved a client's request.
pub struct NewCode<'a> {
    /// SHA-256 of the code handed to the client.
    pub hash: &'a str,
    pub client_id: &'a ClientId,
    pub user_id: UserId,
    /// The `redirect_uri` the authorization request named, if it named one.
    pub redirect_uri: Option<&'a str>,
    pub scope: ScopeSet,
    pub challenge: &'a CodeChallenge,
    pub expires_at: DateTime<Utc>,
}

pub fn issue_code(
    conn: &mut DbConnection,
    code: &NewCode<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(oauth_codes::table)
        .values((
            oauth_codes::code_hash.eq(code.hash),
            oauth_codes::client_id.eq(code.client_id.as_str()),
            oauth_codes::user_id.eq(code.user_id.raw()),
            oauth_codes::redirect_uri.eq(code.redirect_uri),
            oauth_codes::scope.eq(code.scope.to_string()),
            oauth_codes::code_challenge.eq(code.challenge.as_str()),
            oauth_codes::created_at.eq(to_micros(now)),
            oauth_codes::expires_at.eq(to_micros(code.expires_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// What the token request that presents a code says about itself.
pub struct CodeExchange<'a> {
    /// The authenticated (or, for a public client, identified) client.
    pub client_id: &'a ClientId,
    pub redirect_uri: Option<&'a str>,
    pub verifier: &'a CodeVerifier,
}

/// The outcome of presenting a code.
#[derive(Debug, PartialEq, Eq)]
pub enum Redemption {
    /// A new login (token family) started; the refresh token given is its first.
    Issued(Grant),
    /// The code had been presented before: whatever it issued is now revoked.
    Replayed(Option<TokenFamilyId>),
    /// Unknown, expired, or presented with the wrong client, redirect URI or verifier; the
    /// text says which, for the client's developer. A known code is spent all the same.
    Invalid(&'static str),
}

#[derive(Queryable)]
struct CodeRow {
    client_id: String,
    user_id: i64,
    redirect_uri: Option<String>,
    scope: String,
    code_challenge: String,
    expires_at: i64,
    used_at: Option<i64>,
    family_id: Option<i64>,
}

/// Spends the code whose hash is `hash` and, if everything about the exchange is right,
/// starts a login with `refresh` as its first refresh token.
///
/// A code is spent by its first presentation, right or wrong: a wrong verifier cannot be
/// retried, and a second presentation revokes the login the first one started.
pub fn redeem_code(
    conn: &mut DbConnection,
    hash: &str,
    exchange: &CodeExchange<'_>,
    refresh: &NewRefreshToken<'_>,
    now: DateTime<Utc>,
) -> Result<Redemption, StoreError> {
    let at = to_micros(now);
    transaction(conn, |conn| {
        let found = oauth_codes::table
            .inner_join(users::table)
            .filter(oauth_codes::code_hash.eq(hash))
            .select((
                (
                    oauth_codes::client_id,
                    oauth_codes::user_id,
                    oauth_codes::redirect_uri,
                    oauth_codes::scope,
                    oauth_codes::code_challenge,
                    oauth_codes::expires_at,
                    oauth_codes::used_at,
                    oauth_codes::family_id,
                ),
                users::suspended_at,
            ))
            .first::<(CodeRow, Option<i64>)>(conn)
            .optional()?;
        let Some((code, suspended_at)) = found else {
            return Ok(Redemption::Invalid("the authorization code is invalid"));
        };
        // The `used_at IS NULL` guard makes two concurrent presentations race safely: one
        // spends the code, the other is a replay.
        let spent = if code.used_at.is_none() {
            diesel::update(
                oauth_codes::table
                    .find(hash)
                    .filter(oauth_codes::used_at.is_null()),
            )
            .set(oauth_codes::used_at.eq(at))
            .execute(conn)?
        } else {
            0
        };
        if spent == 0 {
            let family = oauth_codes::table
                .find(hash)
                .select(oauth_codes::family_id)
                .first::<Option<i64>>(conn)?
                .or(code.family_id)
                .map(TokenFamilyId::from_raw);
            if let Some(family) = family {
                tokens::revoke_family(conn, family, "authorization code replayed", now)?;
            }
            return Ok(Redemption::Replayed(family));
        }
        if code.client_id != exchange.client_id.as_str() {
            return Ok(Redemption::Invalid(
                "the authorization code was issued to another client",
            ));
        }
        if code.redirect_uri.as_deref() != exchange.redirect_uri {
            return Ok(Redemption::Invalid(
                "`redirect_uri` must be the one the authorization request named (or absent if \
                 it named none)",
            ));
        }
        if code.expires_at <= at {
            return Ok(Redemption::Invalid("the authorization code has expired"));
        }
        if !CodeChallenge::from_trusted(code.code_challenge).is_answered_by(exchange.verifier) {
            return Ok(Redemption::Invalid(
                "the code_verifier does not match the code_challenge",
            ));
        }
        if suspended_at.is_some() {
            return Ok(Redemption::Invalid("the authorization code is invalid"));
        }
        let scope = ScopeSet::parse(&code.scope).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let grant = tokens::start_family(
            conn,
            UserId::from_raw(code.user_id),
            &code.client_id,
            scope,
            refresh,
            now,
        )?;
        diesel::update(oauth_codes::table.find(hash))
            .set(oauth_codes::family_id.eq(grant.family_id.raw()))
            .execute(conn)?;
        Ok(Redemption::Issued(grant))
    })
}

/// The scopes `user_id` has approved for `client_id`, if any.
pub fn consented_scope(
    conn: &mut DbConnection,
    user_id: UserId,
    client_id: &ClientId,
) -> Result<Option<ScopeSet>, StoreError> {
    oauth_consents::table
        .find((user_id.raw(), client_id.as_str()))
        .select(oauth_consents::scope)
        .first::<String>(conn)
        .optional()?
        .map(|scope| ScopeSet::parse(&scope).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// Records that `user_id` approved `scope` for `client_id`, on top of what they approved
/// before.
pub fn remember_consent(
    conn: &mut DbConnection,
    user_id: UserId,
    client_id: &ClientId,
    scope: ScopeSet,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    transaction(conn, |conn| {
        let before = consented_scope(conn, user_id, client_id)?.unwrap_or_default();
        let all: ScopeSet = before.iter().chain(scope.iter()).collect();
        diesel::delete(oauth_consents::table.find((user_id.raw(), client_id.as_str())))
            .execute(conn)?;
        diesel::insert_into(oauth_consents::table)
            .values((
                oauth_consents::user_id.eq(user_id.raw()),
                oauth_consents::client_id.eq(client_id.as_str()),
                oauth_consents::scope.eq(all.to_string()),
                oauth_consents::granted_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// An app a person has authorized, as `GET /v1/me/apps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedApp {
    pub client_id: ClientId,
    pub name: String,
    pub scope: ScopeSet,
    pub granted_at: DateTime<Utc>,
}

/// The apps `user_id` has authorized, most recently approved first.
pub fn authorized_apps(
    conn: &mut DbConnection,
    user_id: UserId,
) -> Result<Vec<AuthorizedApp>, StoreError> {
    oauth_consents::table
        .inner_join(oauth_clients::table)
        .filter(oauth_consents::user_id.eq(user_id.raw()))
        .order((oauth_consents::granted_at.desc(), oauth_consents::client_id))
        .select((
            oauth_consents::client_id,
            oauth_clients::name,
            oauth_consents::scope,
            oauth_consents::granted_at,
        ))
        .load::<(String, String, String, i64)>(conn)?
        .into_iter()
        .map(|(client_id, name, scope, granted_at)| {
            Ok(AuthorizedApp {
                client_id: ClientId::from_trusted(client_id),
                name,
                scope: ScopeSet::parse(&scope).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                granted_at: from_micros(granted_at)?,
            })
        })
        .collect()
}

/// Withdraws `user_id`'s authorization of `client_id`: the consent is forgotten and every
/// login of that app on their behalf is revoked. Returns false, revoking nothing, when the
/// person never consented to the app: Vicinity's own app, whose logins are the person's own
/// sign-ins, is no app they authorized.
pub fn revoke_app(
    conn: &mut DbConnection,
    user_id: UserId,
    client_id: &ClientId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    transaction(conn, |conn| {
        let forgotten =
            diesel::delete(oauth_consents::table.find((user_id.raw(), client_id.as_str())))
                .execute(conn)?;
        if forgotten == 0 {
            return Ok(false);
        }
        let which = tokens::Logins {
            user: Some(user_id),
            client: Some(client_id.as_str()),
            carrying: None,
        };
        tokens::revoke_live(conn, which, "app authorization withdrawn", now)?;
        Ok(true)
    })
}

/// Starts a browser session of the authorization page for `user_id`.
pub fn start_session(
    conn: &mut DbConnection,
    hash: &str,
    user_id: UserId,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::insert_into(web_sessions::table)
        .values((
            web_sessions::token_hash.eq(hash),
            web_sessions::user_id.eq(user_id.raw()),
            web_sessions::created_at.eq(to_micros(now)),
            web_sessions::expires_at.eq(to_micros(expires_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whose unexpired session `hash` is, unless the account has been suspended since.
pub fn session_user(
    conn: &mut DbConnection,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<UserId>, StoreError> {
    Ok(web_sessions::table
        .inner_join(users::table)
        .filter(web_sessions::token_hash.eq(hash))
        .filter(web_sessions::expires_at.gt(to_micros(now)))
        .filter(users::suspended_at.is_null())
        .select(web_sessions::user_id)
        .first::<i64>(conn)
        .optional()?
        .map(UserId::from_raw))
}

/// Ends a session (signing out of the authorization page).
pub fn end_session(conn: &mut DbConnection, hash: &str) -> Result<(), StoreError> {
    diesel::delete(web_sessions::table.find(hash)).execute(conn)?;
    Ok(())
}

/// Starts a client credentials grant of `client_id` for `scope`, whose tokens live until
/// `expires_at`. Returns its id, which the tokens name.
pub fn start_client_grant(
    conn: &mut DbConnection,
    client_id: &ClientId,
    scope: ScopeSet,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<TokenFamilyId, StoreError> {
    let id = crate::new_key();
    diesel::insert_into(client_grants::table)
        .values((
            client_grants::id.eq(id),
            client_grants::client_id.eq(client_id.as_str()),
            client_grants::scope.eq(scope.to_string()),
            client_grants::created_at.eq(to_micros(now)),
            client_grants::expires_at.eq(to_micros(expires_at)),
        ))
        .execute(conn)?;
    Ok(TokenFamilyId::from_raw(id))
}

/// Whether the client grant `id` of `client_id` still stands (not revoked, client not
/// deleted).
pub fn client_grant_is_active(
    conn: &mut DbConnection,
    id: TokenFamilyId,
    client_id: &str,
) -> Result<bool, StoreError> {
    Ok(client_grants::table
        .filter(client_grants::id.eq(id.raw()))
        .filter(client_grants::client_id.eq(client_id))
        .filter(client_grants::revoked_at.is_null())
        .select(client_grants::id)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

/// Revokes a client grant: its tokens stop working.
pub fn revoke_client_grant(
    conn: &mut DbConnection,
    id: TokenFamilyId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::update(
        client_grants::table
            .find(id.raw())
            .filter(client_grants::revoked_at.is_null()),
    )
    .set(client_grants::revoked_at.eq(to_micros(now)))
    .execute(conn)?;
    Ok(())
}
