//! The friend graph: requests, friendships (stored once per direction), blocks, and finding
//! people. Blocking works both ways: it ends a friendship, drops requests either way, and
//! hides each person from the other.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use vicinity_domain::{User, UserId};

use crate::events::{Change, announce};
use crate::schema::{blocks, friend_requests, friendships, users};
use crate::time::{from_micros, to_micros};
use crate::users::{USER_COLUMNS, UserRow};
use crate::{DbConnection, StoreError, transaction};

/// How many friends and pending requests a person may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocialLimits {
    pub friends: i64,
    /// Pending requests, counted separately for those sent and those received.
    pub pending_requests: i64,
}

impl Default for SocialLimits {
    fn default() -> Self {
        Self {
            friends: 1_000,
            pending_requests: 500,
        }
    }
}

/// What a friend request led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The request waits for the other person.
    Pending,
    /// The other person had already asked: now friends.
    Friends,
    /// Already asked before; nothing changed.
    AlreadyPending,
    /// Already friends; nothing changed.
    AlreadyFriends,
}

/// Whether either person blocks the other.
pub fn blocked_either_way(
    conn: &mut DbConnection,
    a: UserId,
    b: UserId,
) -> Result<bool, StoreError> {
    let found = blocks::table
        .filter(
            (blocks::blocker_id
                .eq(a.raw())
                .and(blocks::blocked_id.eq(b.raw())))
            .or(blocks::blocker_id
                .eq(b.raw())
                .and(blocks::blocked_id.eq(a.raw()))),
        )
        .count()
        .get_result::<i64>(conn)?;
    Ok(found > 0)
}

fn blocks_other(
    conn: &mut DbConnection,
    blocker: UserId,
    blocked: UserId,
) -> Result<bool, StoreError> {
    let found = blocks::table
        .find((blocker.raw(), blocked.raw()))
        .count()
        .get_result::<i64>(conn)?;
    Ok(found > 0)
}

/// The ids of `user`'s friends.
pub fn friend_ids(conn: &mut DbConnection, user: UserId) -> Result<Vec<i64>, StoreError> {
    Ok(friendships::table
        .filter(friendships::user_id.eq(user.raw()))
        .select(friendships::friend_id)
        .load(conn)?)
}

/// The ids of everyone `user` blocks or is blocked by.
pub fn blocked_ids_either_way(
    conn: &mut DbConnection,
    user: UserId,
) -> Result<Vec<i64>, StoreError> {
    let mut ids: Vec<i64> = blocks::table
        .filter(blocks::blocker_id.eq(user.raw()))
        .select(blocks::blocked_id)
        .load(conn)?;
    ids.extend(
        blocks::table
            .filter(blocks::blocked_id.eq(user.raw()))
            .select(blocks::blocker_id)
            .load::<i64>(conn)?,
    );
    Ok(ids)
}

pub fn are_friends(conn: &mut DbConnection, a: UserId, b: UserId) -> Result<bool, StoreError> {
    let found = friendships::table
        .find((a.raw(), b.raw()))
        .count()
        .get_result::<i64>(conn)?;
    Ok(found > 0)
}

fn request_exists(conn: &mut DbConnection, from: UserId, to: UserId) -> Result<bool, StoreError> {
    let found = friend_requests::table
        .find((from.raw(), to.raw()))
        .count()
        .get_result::<i64>(conn)?;
    Ok(found > 0)
}

fn friend_count(conn: &mut DbConnection, user: UserId) -> Result<i64, StoreError> {
    Ok(friendships::table
        .filter(friendships::user_id.eq(user.raw()))
        .count()
        .get_result(conn)?)
}

/// An active account that `viewer` may see (neither blocks the other); `NotFound` otherwise,
/// so a blocked person cannot tell a block from a missing account.
pub fn visible_user(
    conn: &mut DbConnection,
    viewer: UserId,
    id: UserId,
) -> Result<User, StoreError> {
    if viewer != id && blocked_either_way(conn, viewer, id)? {
        return Err(StoreError::NotFound);
    }
    crate::users::find(conn, id)
}

/// `from` asks `to` to be friends; if `to` had already asked `from`, they become friends.
pub fn send_request(
    conn: &mut DbConnection,
    from: UserId,
    to: UserId,
    limits: SocialLimits,
    now: DateTime<Utc>,
) -> Result<RequestOutcome, StoreError> {
    transaction(conn, |conn| {
        // The caller knows whom they blocked; a person who blocked the caller is "nobody".
        if blocks_other(conn, from, to)? {
            return Err(StoreError::Conflict(
                "blocked",
                "you have blocked this person; unblock them first".into(),
            ));
        }
        visible_user(conn, from, to)?;
        if are_friends(conn, from, to)? {
            return Ok(RequestOutcome::AlreadyFriends);
        }
        if request_exists(conn, to, from)? {
            befriend(conn, to, from, limits, now)?;
            return Ok(RequestOutcome::Friends);
        }
        if request_exists(conn, from, to)? {
            return Ok(RequestOutcome::AlreadyPending);
        }
        let sent = friend_requests::table
            .filter(friend_requests::from_user_id.eq(from.raw()))
            .count()
            .get_result::<i64>(conn)?;
        if sent >= limits.pending_requests {
            return Err(StoreError::Conflict(
                "request_limit_reached",
                format!(
                    "you have {sent} pending friend requests, the most allowed; cancel some first"
                ),
            ));
        }
        let received = friend_requests::table
            .filter(friend_requests::to_user_id.eq(to.raw()))
            .count()
            .get_result::<i64>(conn)?;
        if received >= limits.pending_requests {
            return Err(StoreError::Conflict(
                "request_limit_reached",
                "this person has too many pending friend requests; try again later".into(),
            ));
        }
        diesel::insert_into(friend_requests::table)
            .values((
                friend_requests::from_user_id.eq(from.raw()),
                friend_requests::to_user_id.eq(to.raw()),
                friend_requests::created_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        Ok(RequestOutcome::Pending)
    })
}

/// Turns the request of `requester` to `accepter` into a friendship, within the limits.
fn befriend(
    conn: &mut DbConnection,
    requester: UserId,
    accepter: UserId,
    limits: SocialLimits,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if friend_count(conn, accepter)? >= limits.friends {
        return Err(StoreError::Conflict(
            "friend_limit_reached",
            format!("you have {} friends, the most allowed", limits.friends),
        ));
    }
    if friend_count(conn, requester)? >= limits.friends {
        return Err(StoreError::Conflict(
            "friend_limit_reached",
            "this person has as many friends as allowed".into(),
        ));
    }
    delete_requests_between(conn, requester, accepter)?;
    let at = to_micros(now);
    for (user, friend) in [(requester, accepter), (accepter, requester)] {
        diesel::insert_into(friendships::table)
            .values((
                friendships::user_id.eq(user.raw()),
                friendships::friend_id.eq(friend.raw()),
                friendships::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    announce(conn, Change::Friendship(requester.raw(), accepter.raw()))
}

fn delete_requests_between(
    conn: &mut DbConnection,
    a: UserId,
    b: UserId,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        friend_requests::table.filter(
            (friend_requests::from_user_id
                .eq(a.raw())
                .and(friend_requests::to_user_id.eq(b.raw())))
            .or(friend_requests::from_user_id
                .eq(b.raw())
                .and(friend_requests::to_user_id.eq(a.raw()))),
        ),
    )
    .execute(conn)?)
}

/// `me` accepts the request `from` sent; `NotFound` when there is none.
pub fn accept(
    conn: &mut DbConnection,
    me: UserId,
    from: UserId,
    limits: SocialLimits,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    transaction(conn, |conn| {
        if !request_exists(conn, from, me)? {
            return Err(StoreError::NotFound);
        }
        befriend(conn, from, me, limits, now)
    })
}

/// `me` declines the request `from` sent.
pub fn decline(conn: &mut DbConnection, me: UserId, from: UserId) -> Result<(), StoreError> {
    let deleted =
        diesel::delete(friend_requests::table.find((from.raw(), me.raw()))).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// `me` withdraws the request sent to `to`.
pub fn cancel(conn: &mut DbConnection, me: UserId, to: UserId) -> Result<(), StoreError> {
    let deleted =
        diesel::delete(friend_requests::table.find((me.raw(), to.raw()))).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn delete_friendship(conn: &mut DbConnection, a: UserId, b: UserId) -> Result<usize, StoreError> {
    announce(conn, Change::Friendship(a.raw(), b.raw()))?;
    Ok(diesel::delete(
        friendships::table.filter(
            (friendships::user_id
                .eq(a.raw())
                .and(friendships::friend_id.eq(b.raw())))
            .or(friendships::user_id
                .eq(b.raw())
                .and(friendships::friend_id.eq(a.raw()))),
        ),
    )
    .execute(conn)?)
}

/// Ends a friendship (both directions); `NotFound` when they were not friends.
pub fn unfriend(conn: &mut DbConnection, me: UserId, other: UserId) -> Result<(), StoreError> {
    transaction(conn, |conn| {
        if delete_friendship(conn, me, other)? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    })
}

/// `me` blocks `other`: any friendship and request between them ends. Blocking twice is fine.
pub fn block(
    conn: &mut DbConnection,
    me: UserId,
    other: UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    transaction(conn, |conn| {
        // Someone who blocked `me` can still be blocked back (both blocks then stand).
        crate::users::find(conn, other)?;
        delete_friendship(conn, me, other)?;
        delete_requests_between(conn, me, other)?;
        if !blocks_other(conn, me, other)? {
            diesel::insert_into(blocks::table)
                .values((
                    blocks::blocker_id.eq(me.raw()),
                    blocks::blocked_id.eq(other.raw()),
                    blocks::created_at.eq(to_micros(now)),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

pub fn unblock(conn: &mut DbConnection, me: UserId, other: UserId) -> Result<(), StoreError> {
    let deleted = diesel::delete(blocks::table.find((me.raw(), other.raw()))).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A position in a list ordered newest first: (time in µs, the other person's id).
pub type ListKey = (i64, i64);

/// One person in a list, with when the relation began.
#[derive(Debug, Clone)]
pub struct Related {
    pub user: User,
    pub since: DateTime<Utc>,
    pub key: ListKey,
}

/// Which friend requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

fn related(rows: Vec<(UserRow, i64)>) -> Result<Vec<Related>, StoreError> {
    rows.into_iter()
        .map(|(row, at)| {
            let user = User::try_from(row)?;
            Ok(Related {
                key: (at, user.id.raw()),
                since: from_micros(at)?,
                user,
            })
        })
        .collect()
}

/// The caller's friends, newest friendship first; `limit + 1` rows tell whether more follow.
pub fn friends(
    conn: &mut DbConnection,
    me: UserId,
    after: Option<ListKey>,
    limit: usize,
) -> Result<Vec<Related>, StoreError> {
    let mut query = friendships::table
        .inner_join(users::table.on(users::id.eq(friendships::friend_id)))
        .filter(friendships::user_id.eq(me.raw()))
        .filter(users::suspended_at.is_null())
        .select((USER_COLUMNS, friendships::created_at))
        .order((
            friendships::created_at.desc(),
            friendships::friend_id.desc(),
        ))
        .limit(limit as i64)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            friendships::created_at.lt(at).or(friendships::created_at
                .eq(at)
                .and(friendships::friend_id.lt(id))),
        );
    }
    related(query.load::<(UserRow, i64)>(conn)?)
}

/// Pending requests to or from the caller, newest first.
pub fn requests(
    conn: &mut DbConnection,
    me: UserId,
    direction: Direction,
    after: Option<ListKey>,
    limit: usize,
) -> Result<Vec<Related>, StoreError> {
    let query = friend_requests::table.inner_join(
        users::table.on(users::id
            .eq(friend_requests::from_user_id)
            .or(users::id.eq(friend_requests::to_user_id))),
    );
    // Both directions as one boxed query type: the filters pick the side.
    let mut query = match direction {
        Direction::Incoming => query
            .filter(friend_requests::to_user_id.eq(me.raw()))
            .filter(users::id.eq(friend_requests::from_user_id))
            .into_boxed(),
        Direction::Outgoing => query
            .filter(friend_requests::from_user_id.eq(me.raw()))
            .filter(users::id.eq(friend_requests::to_user_id))
            .into_boxed(),
    }
    .filter(users::suspended_at.is_null())
    .select((USER_COLUMNS, friend_requests::created_at))
    .order((friend_requests::created_at.desc(), users::id.desc()))
    .limit(limit as i64);
    if let Some((at, id)) = after {
        query = query.filter(
            friend_requests::created_at
                .lt(at)
                .or(friend_requests::created_at.eq(at).and(users::id.lt(id))),
        );
    }
    related(query.load::<(UserRow, i64)>(conn)?)
}

/// The people the caller blocks, newest block first.
pub fn blocked(
    conn: &mut DbConnection,
    me: UserId,
    after: Option<ListKey>,
    limit: usize,
) -> Result<Vec<Related>, StoreError> {
    let mut query = blocks::table
        .inner_join(users::table.on(users::id.eq(blocks::blocked_id)))
        .filter(blocks::blocker_id.eq(me.raw()))
        .select((USER_COLUMNS, blocks::created_at))
        .order((blocks::created_at.desc(), blocks::blocked_id.desc()))
        .limit(limit as i64)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            blocks::created_at
                .lt(at)
                .or(blocks::created_at.eq(at).and(blocks::blocked_id.lt(id))),
        );
    }
    related(query.load::<(UserRow, i64)>(conn)?)
}

/// People whose username or display name (or a word of it) starts with `query` (lower case),
/// by username; never anyone either side blocks, nor suspended accounts.
pub fn search_users(
    conn: &mut DbConnection,
    me: UserId,
    query: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<User>, StoreError> {
    let escaped = crate::like_escape(query);
    let prefix = format!("{escaped}%");
    let word = format!("% {escaped}%");
    let mut sql = users::table
        .filter(
            users::username_key
                .like(&prefix)
                .escape('\\')
                .or(users::display_name_key.like(&prefix).escape('\\'))
                .or(users::display_name_key.like(&word).escape('\\')),
        )
        .filter(users::suspended_at.is_null())
        .filter(not(exists(
            blocks::table.filter(
                (blocks::blocker_id
                    .eq(me.raw())
                    .and(blocks::blocked_id.eq(users::id)))
                .or(blocks::blocked_id
                    .eq(me.raw())
                    .and(blocks::blocker_id.eq(users::id))),
            ),
        )))
        .select(USER_COLUMNS)
        .order(users::username_key.asc())
        .limit(limit as i64)
        .into_boxed();
    if let Some(after) = after {
        sql = sql.filter(users::username_key.gt(after.to_owned()));
    }
    sql.load::<UserRow>(conn)?
        .into_iter()
        .map(User::try_from)
        .collect()
}
