//! Handler parameters that authenticate the caller. A handler that takes `Scoped<S>` cannot
//! run without a valid token carrying scope `S`; the scope decision is part of its signature.

use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use vicinity_domain::{Scope, ScopeSet, TokenFamilyId, UserId};
use vicinity_store::{authorization, tokens};

use super::access::{AccessGrant, TokenRejection};
use crate::FIRST_PARTY_CLIENT_ID;
use crate::app::AppState;
use crate::error::ApiError;

/// The authenticated caller: whose token it is, from which client, with which scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub family_id: TokenFamilyId,
    pub client_id: String,
    pub scope: ScopeSet,
    /// When the access token expires (seconds since the epoch).
    pub expires_at: i64,
}

impl Caller {
    /// Whether the token was issued to Vicinity's own app rather than a third party.
    pub fn is_first_party(&self) -> bool {
        self.client_id == FIRST_PARTY_CLIENT_ID
    }

    /// Whose device positions this caller may read: the person's own, and only with
    /// `location:read` (an app without it learns nothing finer than the venue).
    pub fn position_reader(&self) -> Option<UserId> {
        self.scope
            .contains(vicinity_domain::Scope::LocationRead)
            .then_some(self.user_id)
    }
}

/// The bearer token of the request (RFC 6750 §2.1); tokens in query strings are not accepted.
fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::missing_token());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_token("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::missing_token());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::invalid_token("the bearer token is empty"));
    }
    Ok(token.to_owned())
}

/// The synchronous part of authenticating a request: the token is present, signed by this
/// server and unexpired. Done before anything else of the request is looked at: actix polls a
/// handler's extractors together, so a check that waits (for the database) would let a
/// malformed body answer before a missing token or scope does.
fn verified(req: &HttpRequest) -> Result<(web::Data<AppState>, AccessGrant), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(ApiError::internal)?;
    let grant = state
        .tokens
        .verify(&bearer_token(req)?)
        .map_err(|rejection| ApiError::invalid_token(&rejection.to_string()))?;
    Ok((state, grant))
}

/// The asynchronous part: the login (or client grant) has not been revoked since. Signed
/// tokens outlive logouts and deleted accounts unless checked. The read model remembers live
/// families and forgets one the moment any instance revokes it; the database answers for the
/// rest.
async fn still_active(state: &AppState, grant: &AccessGrant) -> Result<(), ApiError> {
    let family_id = grant.family_id;
    let active = match grant.user_id {
        Some(user_id) => {
            let hot = state.store.hot();
            if hot.family_owner(family_id.raw()) == Some(user_id.raw()) {
                true
            } else {
                let epoch = hot.families_epoch();
                let active = state
                    .store
                    .run(move |conn| tokens::family_is_active(conn, family_id, user_id))
                    .await?;
                if active {
                    hot.remember_family(epoch, family_id.raw(), user_id.raw());
                }
                active
            }
        }
        None => {
            let client_id = grant.client_id.clone();
            state
                .store
                .run(move |conn| authorization::client_grant_is_active(conn, family_id, &client_id))
                .await?
        }
    };
    if active {
        Ok(())
    } else {
        Err(ApiError::invalid_token(
            &TokenRejection::Revoked.to_string(),
        ))
    }
}

/// A person's caller from a verified grant, or 403 for a client acting for itself.
fn person(grant: &AccessGrant) -> Result<Caller, ApiError> {
    let Some(user_id) = grant.user_id else {
        return Err(ApiError::forbidden(
            "this route acts for a person; a client credentials token acts for no one",
        ));
    };
    Ok(Caller {
        user_id,
        family_id: grant.family_id,
        client_id: grant.client_id.clone(),
        scope: grant.scope,
        expires_at: grant.expires_at,
    })
}

/// Checks `decide` on the verified grant at once, then that it is still active.
fn authenticate<T: 'static>(
    req: &HttpRequest,
    decide: impl FnOnce(&AccessGrant) -> Result<T, ApiError>,
) -> LocalBoxFuture<'static, Result<T, ApiError>> {
    let decided = verified(req).and_then(|(state, grant)| Ok((decide(&grant)?, state, grant)));
    Box::pin(async move {
        let (value, state, grant) = decided?;
        still_active(&state, &grant).await?;
        Ok(value)
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        authenticate(req, person)
    }
}

/// A client acting for itself, authenticated by a client credentials token.
#[derive(Debug, Clone)]
pub struct AppCaller {
    pub client_id: String,
    pub scope: ScopeSet,
}

impl FromRequest for AppCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        authenticate(req, |grant| {
            if grant.user_id.is_some() {
                return Err(ApiError::forbidden(
                    "this route is for an app acting for itself: use a token from the \
                     client_credentials grant",
                ));
            }
            Ok(AppCaller {
                client_id: grant.client_id.clone(),
                scope: grant.scope,
            })
        })
    }
}

/// An administrator: a person's token or an app's own token, either carrying `admin` (only
/// an operator can give an app `admin`, when registering it).
#[derive(Debug, Clone)]
pub struct AdminCaller {
    /// Who, for the logs: a user id, or `client:<id>`.
    pub who: String,
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        authenticate(req, |grant| {
            if !grant.scope.contains(Scope::Admin) {
                return Err(ApiError::insufficient_scope(Scope::Admin));
            }
            Ok(AdminCaller {
                who: grant
                    .user_id
                    .map_or_else(|| format!("client:{}", grant.client_id), |u| u.to_string()),
            })
        })
    }
}

/// A scope a handler requires, as a type.
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// Marker types for [`Scoped`], one per scope.
pub mod scopes {
    use super::{RequiredScope, Scope};

    macro_rules! scope_markers {
        ($($marker:ident => $scope:ident),+ $(,)?) => {
            $(
                #[derive(Debug)]
                pub struct $marker;
                impl RequiredScope for $marker {
                    const SCOPE: Scope = Scope::$scope;
                }
            )+
        };
    }

    scope_markers!(
        Profile => Profile,
        CheckinsRead => CheckinsRead,
        CheckinsWrite => CheckinsWrite,
        FriendsRead => FriendsRead,
        FriendsWrite => FriendsWrite,
        LocationRead => LocationRead,
        LocationWrite => LocationWrite,
        VenuesWrite => VenuesWrite,
        Admin => Admin,
    );
}

/// An authenticated caller whose token carries scope `S` (403 `insufficient_scope` if not).
#[derive(Debug)]
pub struct Scoped<S> {
    caller: Caller,
    scope: PhantomData<S>,
}

impl<S> Deref for Scoped<S> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<S: RequiredScope + 'static> FromRequest for Scoped<S> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        authenticate(req, |grant| {
            let caller = person(grant)?;
            if !caller.scope.contains(S::SCOPE) {
                return Err(ApiError::insufficient_scope(S::SCOPE));
            }
            Ok(Scoped {
                caller,
                scope: PhantomData,
            })
        })
    }
}
