//! The friend graph: requests, friends, blocks, and finding people.
//!
//! Everything is keyed by the other person's user id. Blocking works both ways and everywhere:
//! a person who blocked the caller, or whom the caller blocked, is "not found" to the caller's
//! profile lookups, searches and friend requests.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vicinity_domain::{UserId, ValidationErrors};
use vicinity_store::social::{self, Direction, Related, RequestOutcome};
use vicinity_store::{DbConnection, StoreError};

use super::query::{self, Page};
use super::users::PublicUser;
use crate::app::AppState;
use crate::auth::{Scoped, scopes};
use crate::error::{ApiError, ErrorEnvelope, not_found_as};
use crate::json::{FormParams, JsonBody};

/// Most items a page of these lists holds.
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 50;

/// A person in a list, with when the relation (friendship, request, block) began.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedUser {
    pub user: PublicUser,
    pub since: DateTime<Utc>,
}

impl From<Related> for RelatedUser {
    fn from(related: Related) -> Self {
        Self {
            user: PublicUser::from(&related.user),
            since: related.since,
        }
    }
}

/// A page of people.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedPage {
    pub items: Vec<RelatedUser>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// A page of people found by a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<PublicUser>,
    pub next_cursor: Option<String>,
}

/// Ask someone to be friends.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FriendRequestBody {
    #[schema(
        example = "usr_0f3kz9w2m4q8r",
        pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$"
    )]
    pub user_id: String,
}

/// Where a friend request stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct FriendRequestStatus {
    /// `pending` (waiting for them) or `friends` (they had asked you too, or you already were).
    #[schema(example = "pending")]
    pub status: &'static str,
    pub user: PublicUser,
}

/// Query parameters of the lists, for the document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the parameters in openapi.yaml only")]
pub struct ListParams {
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Query parameters of the friend-request list, for the document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the parameters in openapi.yaml only")]
pub struct RequestListParams {
    /// `incoming` (default: requests others sent you) or `outgoing` (requests you sent).
    #[param(pattern = "^(incoming|outgoing)?$")]
    pub direction: Option<String>,
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Query parameters of the people search, for the document.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the parameters in openapi.yaml only")]
pub struct UserSearchParams {
    /// The start of a username, a display name, or a word of a display name (1–50
    /// characters, any case).
    #[param(example = "ada", min_length = 1, max_length = 50, pattern = r"\S")]
    pub q: String,
    /// 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn other_user(path: &str) -> Result<UserId, ApiError> {
    UserId::parse(path).map_err(|e| ApiError::bad_id("user_id", e))
}

/// Runs `action(caller, person in the path)`: 204 when it is done, 404 saying `missing` when
/// the store found nothing to act on.
async fn between(
    state: &AppState,
    me: UserId,
    path: &str,
    missing: &'static str,
    action: impl FnOnce(&mut DbConnection, UserId, UserId) -> Result<(), StoreError> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let other = other_user(path)?;
    state
        .store
        .run(move |conn| action(conn, me, other))
        .await
        .map_err(not_found_as(missing))?;
    Ok(HttpResponse::NoContent().finish())
}

fn list_page(state: &AppState, params: &FormParams, list: String) -> Result<Page, ApiError> {
    Page::parse(params, &state.cursors, list, DEFAULT_LIMIT, MAX_LIMIT)
}

/// One page of `rows` (fetched with `limit + 1`), with the cursor to the next.
fn related_page(state: &AppState, page: &Page, mut rows: Vec<Related>) -> RelatedPage {
    let next_cursor = page.finish(&state.cursors, &mut rows, |row| row.key);
    RelatedPage {
        items: rows.into_iter().map(RelatedUser::from).collect(),
        next_cursor,
    }
}

/// Asks someone to be friends. If they had already asked the caller, the two become friends
/// at once. Asking again, or asking a friend, changes nothing.
#[utoipa::path(
    post,
    path = "/v1/me/friend-requests",
    tag = "friends",
    security(("bearer" = ["friends:write"])),
    request_body = FriendRequestBody,
    responses(
        (status = 201, description = "Request sent", body = FriendRequestStatus),
        (status = 200, description = "Now friends (they had asked too), or nothing to do", body = FriendRequestStatus),
        (status = 400, description = "Malformed body or user id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:write`", body = ErrorEnvelope),
        (status = 404, description = "No such person (or a person who blocked the caller)", body = ErrorEnvelope),
        (status = 409, description = "`blocked` (the caller blocks them), `request_limit_reached` or `friend_limit_reached`", body = ErrorEnvelope),
        (status = 422, description = "Asking oneself", body = ErrorEnvelope),
    )
)]
pub async fn send_request(
    caller: Scoped<scopes::FriendsWrite>,
    state: web::Data<AppState>,
    JsonBody(body): JsonBody<FriendRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let to = UserId::parse(&body.user_id).map_err(|e| ApiError::bad_id("user_id", e))?;
    let me = caller.user_id;
    if to == me {
        return Err(ValidationErrors::single("user_id", "you cannot befriend yourself").into());
    }
    let limits = state.config.social_limits;
    let (outcome, user) = state
        .store
        .run(move |conn| {
            let outcome = social::send_request(conn, me, to, limits, Utc::now())?;
            Ok((outcome, vicinity_store::users::find(conn, to)?))
        })
        .await
        .map_err(not_found_as("no such user"))?;
    let (status, created) = match outcome {
        RequestOutcome::Pending => ("pending", true),
        RequestOutcome::AlreadyPending => ("pending", false),
        RequestOutcome::Friends | RequestOutcome::AlreadyFriends => ("friends", false),
    };
    let body = FriendRequestStatus {
        status,
        user: PublicUser::from(&user),
    };
    Ok(if created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}

/// Pending friend requests: sent to the caller (`incoming`) or by the caller (`outgoing`),
/// newest first.
#[utoipa::path(
    get,
    path = "/v1/me/friend-requests",
    tag = "friends",
    params(RequestListParams),
    security(("bearer" = ["friends:read"])),
    responses(
        (status = 200, description = "A page of requests", body = RelatedPage),
        (status = 400, description = "Unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:read`", body = ErrorEnvelope),
        (status = 422, description = "`direction` or `limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn list_requests(
    caller: Scoped<scopes::FriendsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    let params = query::parse(request.query_string(), &["direction", "limit", "cursor"])?;
    let direction = match params.get("direction").unwrap_or("incoming") {
        "incoming" => Direction::Incoming,
        "outgoing" => Direction::Outgoing,
        _ => {
            return Err(
                ValidationErrors::single("direction", "must be `incoming` or `outgoing`").into(),
            );
        }
    };
    let list = format!("friend-requests\0{me}\0{direction:?}");
    let list = list_page(&state, &params, list)?;
    let (after, limit) = (list.after, list.limit);
    let rows = state
        .store
        .run(move |conn| social::requests(conn, me, direction, after, limit + 1))
        .await?;
    Ok(HttpResponse::Ok().json(related_page(&state, &list, rows)))
}

/// Accepts a friend request the person `user_id` sent the caller.
#[utoipa::path(
    post,
    path = "/v1/me/friend-requests/{user_id}/accept",
    tag = "friends",
    params(("user_id" = String, Path, pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$", description = "Who sent the request")),
    security(("bearer" = ["friends:write"])),
    responses(
        (status = 204, description = "Now friends"),
        (status = 400, description = "Malformed user id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:write`", body = ErrorEnvelope),
        (status = 404, description = "That person has no request pending to the caller", body = ErrorEnvelope),
        (status = 409, description = "`friend_limit_reached`", body = ErrorEnvelope),
    )
)]
pub async fn accept_request(
    caller: Scoped<scopes::FriendsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let limits = state.config.social_limits;
    between(
        &state,
        caller.user_id,
        &path,
        "no friend request from that user",
        move |conn, me, from| social::accept(conn, me, from, limits, Utc::now()),
    )
    .await
}

/// Declines a friend request the person `user_id` sent the caller (they are not told).
#[utoipa::path(
    post,
    path = "/v1/me/friend-requests/{user_id}/decline",
    tag = "friends",
    params(("user_id" = String, Path, pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$", description = "Who sent the request")),
    security(("bearer" = ["friends:write"])),
    responses(
        (status = 204, description = "Declined"),
        (status = 400, description = "Malformed user id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:write`", body = ErrorEnvelope),
        (status = 404, description = "That person has no request pending to the caller", body = ErrorEnvelope),
    )
)]
pub async fn decline_request(
    caller: Scoped<scopes::FriendsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    between(
        &state,
        caller.user_id,
        &path,
        "no friend request from that user",
        social::decline,
    )
    .await
}

/// Withdraws the caller's friend request to `user_id`.
#[utoipa::path(
    delete,
    path = "/v1/me/friend-requests/{user_id}",
    tag = "friends",
    params(("user_id" = String, Path, pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$", description = "Whom the request was sent to")),
    security(("bearer" = ["friends:write"])),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 400, description = "Malformed user id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:write`", body = ErrorEnvelope),
        (status = 404, description = "The caller has no request pending to that person", body = ErrorEnvelope),
    )
)]
pub async fn cancel_request(
    caller: Scoped<scopes::FriendsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    between(
        &state,
        caller.user_id,
        &path,
        "no friend request to that user",
        social::cancel,
    )
    .await
}

/// The caller's friends, most recent friendship first.
#[utoipa::path(
    get,
    path = "/v1/me/friends",
    tag = "friends",
    params(ListParams),
    security(("bearer" = ["friends:read"])),
    responses(
        (status = 200, description = "A page of friends", body = RelatedPage),
        (status = 400, description = "Unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:read`", body = ErrorEnvelope),
        (status = 422, description = "`limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn list_friends(
    caller: Scoped<scopes::FriendsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    let params = query::parse(request.query_string(), &["limit", "cursor"])?;
    let list = list_page(&state, &params, format!("friends\0{me}"))?;
    let (after, limit) = (list.after, list.limit);
    let rows = state
        .store
        .run(move |conn| social::friends(conn, me, after, limit + 1))
        .await?;
    Ok(HttpResponse::Ok().json(related_page(&state, &list, rows)))
}

/// Ends a friendship, for both people.
#[utoipa::path(
    delete,
    path = "/v1/me/friends/{user_id}",
    tag = "friends",
    params(("user_id" = String, Path, pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$", description = "The friend")),
    security(("bearer" = ["friends:write"])),
    responses(
        (status = 204, description = "No longer friends"),
        (status = 400, description = "Malformed user id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:write`", body = ErrorEnvelope),
        (status = 404, description = "Not a friend", body = ErrorEnvelope),
    )
)]
pub async fn unfriend(
    caller: Scoped<scopes::FriendsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    between(
        &state,
        caller.user_id,
        &path,
        "not a friend",
        social::unfriend,
    )
    .await
}

/// Blocks someone: any friendship or request between the two ends, and each disappears from
/// the other's view. Blocking someone already blocked changes nothing.
#[utoipa::path(
    put,
    path = "/v1/me/blocks/{user_id}",
    tag = "friends",
    params(("user_id" = String, Path, pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$", description = "Whom to block")),
    security(("bearer" = ["friends:write"])),
    responses(
        (status = 204, description = "Blocked"),
        (status = 400, description = "Malformed user id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:write`", body = ErrorEnvelope),
        (status = 404, description = "No such person", body = ErrorEnvelope),
        (status = 422, description = "Blocking oneself", body = ErrorEnvelope),
    )
)]
pub async fn block(
    caller: Scoped<scopes::FriendsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let other = other_user(&path)?;
    let me = caller.user_id;
    if other == me {
        return Err(ValidationErrors::single("user_id", "you cannot block yourself").into());
    }
    state
        .store
        .run(move |conn| social::block(conn, me, other, Utc::now()))
        .await
        .map_err(not_found_as("no such user"))?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lifts a block the caller placed.
#[utoipa::path(
    delete,
    path = "/v1/me/blocks/{user_id}",
    tag = "friends",
    params(("user_id" = String, Path, pattern = "^usr_(?!0{13}$)[0-7][0-9a-hjkmnp-tv-z]{12}$", description = "Whom to unblock")),
    security(("bearer" = ["friends:write"])),
    responses(
        (status = 204, description = "Unblocked"),
        (status = 400, description = "Malformed user id", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:write`", body = ErrorEnvelope),
        (status = 404, description = "The caller does not block that person", body = ErrorEnvelope),
    )
)]
pub async fn unblock(
    caller: Scoped<scopes::FriendsWrite>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    between(
        &state,
        caller.user_id,
        &path,
        "that user is not blocked",
        social::unblock,
    )
    .await
}

/// The people the caller blocks, most recent first.
#[utoipa::path(
    get,
    path = "/v1/me/blocks",
    tag = "friends",
    params(ListParams),
    security(("bearer" = ["friends:read"])),
    responses(
        (status = 200, description = "A page of blocked people", body = RelatedPage),
        (status = 400, description = "Unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `friends:read`", body = ErrorEnvelope),
        (status = 422, description = "`limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn list_blocks(
    caller: Scoped<scopes::FriendsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    let params = query::parse(request.query_string(), &["limit", "cursor"])?;
    let list = list_page(&state, &params, format!("blocks\0{me}"))?;
    let (after, limit) = (list.after, list.limit);
    let rows = state
        .store
        .run(move |conn| social::blocked(conn, me, after, limit + 1))
        .await?;
    Ok(HttpResponse::Ok().json(related_page(&state, &list, rows)))
}

/// Finds people by the start of their username or display name (or of a word in it), ordered
/// by username. People either side blocks never appear.
#[utoipa::path(
    get,
    path = "/v1/users/search",
    tag = "people",
    params(UserSearchParams),
    security(("bearer" = ["profile"])),
    responses(
        (status = 200, description = "A page of people", body = UserPage),
        (status = 400, description = "Unknown or repeated parameter, or a foreign cursor", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = ErrorEnvelope),
        (status = 403, description = "Token lacks `profile`", body = ErrorEnvelope),
        (status = 422, description = "`q` missing or too long, or `limit` out of range", body = ErrorEnvelope),
    )
)]
pub async fn search_users(
    caller: Scoped<scopes::Profile>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let me = caller.user_id;
    let params = query::parse(request.query_string(), &["q", "limit", "cursor"])?;
    let mut errors = ValidationErrors::default();
    let text = params.get("q").map(|q| q.trim().to_lowercase());
    let q = errors.check(
        "q",
        match text {
            None => Err("is required: the start of a name".to_owned()),
            Some(q) if q.is_empty() => Err("must not be empty".to_owned()),
            Some(q) if q.chars().count() > 50 => Err("must be at most 50 characters".to_owned()),
            Some(q) if q.chars().any(char::is_control) => {
                Err("must not contain control characters".to_owned())
            }
            Some(q) => Ok(q),
        },
    );
    let limit = query::limit(&params, DEFAULT_LIMIT, MAX_LIMIT, &mut errors)?;
    let (Some(q), Some(limit)) = (q, limit) else {
        return Err(errors.into());
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let fingerprint = format!("users/search\0{me}\0{q}").into_bytes();
    let after = query::cursor(&params, &state.cursors, &fingerprint)?
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| {
            ApiError::malformed(Some("cursor".into()), "cursor: not a cursor of this search")
        })?;
    let mut users = state
        .store
        .run(move |conn| social::search_users(conn, me, &q, after.as_deref(), limit + 1))
        .await?;
    let more = users.len() > limit;
    users.truncate(limit);
    let next_cursor = more.then(|| users.last()).flatten().map(|last| {
        state
            .cursors
            .seal(&fingerprint, last.username.key().as_bytes())
    });
    Ok(HttpResponse::Ok().json(UserPage {
        items: users.iter().map(PublicUser::from).collect(),
        next_cursor,
    }))
}
