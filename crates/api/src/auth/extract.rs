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

use super::access::TokenRejection;
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
}

impl Caller {
    /// Whether the token was issued to Vicinity's own app rather than a third party.
    pub fn is_first_party(&self) -> bool {
        self.client_id == FIRST_PARTY_CLIENT_ID
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

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            let grant = state
                .tokens
                .verify(&token?)
                .map_err(|rejection| ApiError::invalid_token(&rejection.to_string()))?;
            let family_id = grant.family_id;
            let Some(user_id) = grant.user_id else {
                return Err(ApiError::forbidden(
                    "this route acts for a person; a client credentials token acts for no one",
                ));
            };
            // Signed tokens outlive logouts and deleted accounts unless checked. The read model
            // remembers live families and forgets one the moment any instance revokes it; the
            // database answers for the rest.
            let hot = state.store.hot();
            let active = if hot.family_owner(family_id.raw()) == Some(user_id.raw()) {
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
            };
            if !active {
                return Err(ApiError::invalid_token(
                    &TokenRejection::Revoked.to_string(),
                ));
            }
            Ok(Caller {
                user_id,
                family_id,
                client_id: grant.client_id,
                scope: grant.scope,
            })
        })
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
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(ApiError::internal)?;
            let grant = state
                .tokens
                .verify(&token?)
                .map_err(|rejection| ApiError::invalid_token(&rejection.to_string()))?;
            if grant.user_id.is_some() {
                return Err(ApiError::forbidden(
                    "this route is for an app acting for itself: use a token from the \
                     client_credentials grant",
                ));
            }
            let (grant_id, client_id) = (grant.family_id, grant.client_id.clone());
            let active = state
                .store
                .run(move |conn| authorization::client_grant_is_active(conn, grant_id, &client_id))
                .await?;
            if !active {
                return Err(ApiError::invalid_token(
                    &TokenRejection::Revoked.to_string(),
                ));
            }
            Ok(AppCaller {
                client_id: grant.client_id,
                scope: grant.scope,
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

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload);
        Box::pin(async move {
            let caller = caller.await?;
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
