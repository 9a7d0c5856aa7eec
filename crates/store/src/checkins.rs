//! Check-ins, who may see them, and idempotent creation.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use vicinity_domain::{CheckInId, User, UserId, VenueId, Visibility};
use vicinity_geo::Point;

use crate::presence::{self, PresenceRules};
use crate::schema::{checkins, friendships, idempotency_keys, presence as presence_table};
use crate::social::{are_friends, blocked_either_way};
use crate::time::{from_micros, to_micros};
use crate::venues::{self, Venue};
use crate::{DbConnection, StoreError, new_key, transaction};

/// How far from a venue a device may be, beyond its reported accuracy (capped at 1 km).
pub const CHECKIN_REACH_M: f64 = 200.0;

#[derive(Debug, Clone, PartialEq)]
pub struct CheckIn {
    pub id: CheckInId,
    pub user_id: UserId,
    pub venue: Venue,
    /// The device's position: only ever shown to the owner.
    pub location: Point,
    pub accuracy_m: Option<f64>,
    pub shout: Option<String>,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = checkins)]
struct CheckInRow {
    id: i64,
    user_id: i64,
    venue_id: i64,
    lat: f64,
    lng: f64,
    accuracy_m: Option<f64>,
    shout: Option<String>,
    visibility: String,
    created_at: i64,
    received_at: i64,
}

impl CheckInRow {
    fn into_checkin(self, venue: Venue) -> Result<CheckIn, StoreError> {
        Ok(CheckIn {
            id: CheckInId::from_raw(self.id),
            user_id: UserId::from_raw(self.user_id),
            venue,
            location: Point::new(self.lat, self.lng)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            accuracy_m: self.accuracy_m,
            shout: self.shout,
            visibility: Visibility::parse(&self.visibility).map_err(StoreError::Corrupt)?,
            created_at: from_micros(self.created_at)?,
            received_at: from_micros(self.received_at)?,
        })
    }
}

/// A check-in as submitted (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewCheckIn {
    pub venue_id: VenueId,
    pub location: Point,
    pub accuracy_m: Option<f64>,
    pub shout: Option<String>,
    pub visibility: Visibility,
    /// When it happened (earlier than now for a check-in queued offline).
    pub created_at: DateTime<Utc>,
}

/// What became of a check-in.
#[derive(Debug, Clone)]
pub enum Created {
    CheckIn(Box<CheckIn>),
    /// The device was further from the venue than its accuracy allows.
    TooFar {
        distance_m: f64,
        allowed_m: f64,
    },
    /// Reaching the venue from the person's previous position needs this speed.
    ImpossibleTravel {
        speed_mps: f64,
    },
}

/// Records a check-in and, when it is recent, makes it the person's presence.
pub fn create(
    conn: &mut DbConnection,
    user: UserId,
    new: &NewCheckIn,
    rules: PresenceRules,
    now: DateTime<Utc>,
) -> Result<Created, StoreError> {
    transaction(conn, |conn| {
        let venue = venues::find(conn, new.venue_id)?;
        let distance_m = venue.location.distance_m(new.location);
        let allowed_m = CHECKIN_REACH_M + new.accuracy_m.unwrap_or(0.0).min(1_000.0);
        if distance_m > allowed_m {
            return Ok(Created::TooFar {
                distance_m,
                allowed_m,
            });
        }
        // A check-in queued offline long ago says nothing about where the person is now.
        let current = presence::current(conn, user, now)?;
        let sets_presence = new.created_at + rules.ttl > now
            && current.is_none_or(|p| p.updated_at < new.created_at);
        if sets_presence
            && let Some(speed_mps) = presence::travel_speed(
                conn,
                user,
                new.location,
                new.accuracy_m,
                new.created_at,
                rules,
            )?
        {
            return Ok(Created::ImpossibleTravel { speed_mps });
        }
        let id = new_key();
        diesel::insert_into(checkins::table)
            .values((
                checkins::id.eq(id),
                checkins::user_id.eq(user.raw()),
                checkins::venue_id.eq(venue.id.raw()),
                checkins::lat.eq(new.location.lat()),
                checkins::lng.eq(new.location.lng()),
                checkins::accuracy_m.eq(new.accuracy_m),
                checkins::shout.eq(new.shout.as_deref()),
                checkins::visibility.eq(new.visibility.as_str()),
                checkins::created_at.eq(to_micros(new.created_at)),
                checkins::received_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        if sets_presence {
            let linked = Some((venue.id.raw(), id));
            presence::update(
                conn,
                user,
                new.location,
                new.accuracy_m,
                linked,
                rules,
                new.created_at,
            )?;
        }
        find(conn, CheckInId::from_raw(id)).map(|c| Created::CheckIn(Box::new(c)))
    })
}

pub fn find(conn: &mut DbConnection, id: CheckInId) -> Result<CheckIn, StoreError> {
    let row = checkins::table
        .find(id.raw())
        .select(CheckInRow::as_select())
        .first::<CheckInRow>(conn)?;
    let venue = venues::find(conn, VenueId::from_raw(row.venue_id))?;
    row.into_checkin(venue)
}

/// Whether `viewer` may see `checkin`: its owner always; nobody else a private one; friends a
/// friends-only one; anyone a public one; and never across a block.
pub fn visible_to(
    conn: &mut DbConnection,
    checkin: &CheckIn,
    viewer: UserId,
) -> Result<bool, StoreError> {
    if checkin.user_id == viewer {
        return Ok(true);
    }
    if checkin.visibility == Visibility::Private
        || blocked_either_way(conn, checkin.user_id, viewer)?
    {
        return Ok(false);
    }
    Ok(match checkin.visibility {
        Visibility::Public => true,
        Visibility::Friends => are_friends(conn, checkin.user_id, viewer)?,
        Visibility::Private => false,
    })
}

/// A check-in `viewer` may see; `NotFound` for one they may not (its existence stays hidden).
pub fn find_visible(
    conn: &mut DbConnection,
    id: CheckInId,
    viewer: UserId,
) -> Result<CheckIn, StoreError> {
    let checkin = find(conn, id)?;
    if visible_to(conn, &checkin, viewer)? {
        Ok(checkin)
    } else {
        Err(StoreError::NotFound)
    }
}

/// Deletes the owner's check-in (and the presence it set, which pointed at it).
pub fn delete(conn: &mut DbConnection, id: CheckInId, owner: UserId) -> Result<(), StoreError> {
    let deleted = diesel::delete(
        checkins::table
            .filter(checkins::id.eq(id.raw()))
            .filter(checkins::user_id.eq(owner.raw())),
    )
    .execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A position in a newest-first list of check-ins: (created_at µs, id).
pub type CheckInKey = (i64, i64);

/// A person's own check-ins, newest first, continuing after a [`CheckInKey`].
pub fn mine(
    conn: &mut DbConnection,
    owner: &User,
    after: Option<CheckInKey>,
    limit: usize,
) -> Result<Vec<(CheckInKey, CheckIn)>, StoreError> {
    let mut query = checkins::table
        .filter(checkins::user_id.eq(owner.id.raw()))
        .select(CheckInRow::as_select())
        .order((checkins::created_at.desc(), checkins::id.desc()))
        .limit(limit as i64)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            checkins::created_at
                .lt(at)
                .or(checkins::created_at.eq(at).and(checkins::id.lt(id))),
        );
    }
    let rows = query.load::<CheckInRow>(conn)?;
    with_venues(conn, rows)
}

/// The stored outcome of an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// New key: go ahead, then [`complete`] it in the same transaction.
    Fresh,
    /// Seen with the same request: the first response, to send again.
    Replay { status: u16, response: String },
    /// Seen with a different request.
    Mismatch,
}

/// Claims `key` for `user` with the request's hash. Run inside the transaction that does the
/// work: a concurrent request with the same key waits for it and then replays its response.
pub fn claim_key(
    conn: &mut DbConnection,
    user: UserId,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<Idempotent, StoreError> {
    // A savepoint, so that a duplicate key does not abort the surrounding transaction.
    let inserted = transaction(conn, |conn| {
        diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(user.raw()),
                idempotency_keys::key.eq(key),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::status.eq(0),
                idempotency_keys::response.eq(""),
                idempotency_keys::created_at.eq(to_micros(now)),
            ))
            .execute(conn)
            .map_err(StoreError::from)
    });
    match inserted {
        Ok(_) => Ok(Idempotent::Fresh),
        Err(StoreError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _,
        ))) => {
            let (hash, status, response): (String, i32, String) = idempotency_keys::table
                .find((user.raw(), key))
                .select((
                    idempotency_keys::request_hash,
                    idempotency_keys::status,
                    idempotency_keys::response,
                ))
                .first(conn)?;
            if hash != request_hash {
                return Ok(Idempotent::Mismatch);
            }
            Ok(Idempotent::Replay {
                status: u16::try_from(status).unwrap_or(500),
                response,
            })
        }
        Err(other) => Err(other),
    }
}

/// Stores the response of a claimed key.
pub fn complete_key(
    conn: &mut DbConnection,
    user: UserId,
    key: &str,
    status: u16,
    response: &str,
) -> Result<(), StoreError> {
    diesel::update(idempotency_keys::table.find((user.raw(), key)))
        .set((
            idempotency_keys::status.eq(i32::from(status)),
            idempotency_keys::response.eq(response),
        ))
        .execute(conn)?;
    Ok(())
}

/// Loads rows' venues and turns them into check-ins with their list keys.
fn with_venues(
    conn: &mut DbConnection,
    rows: Vec<CheckInRow>,
) -> Result<Vec<(CheckInKey, CheckIn)>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let key = (row.created_at, row.id);
            let venue = venues::find(conn, VenueId::from_raw(row.venue_id))?;
            Ok((key, row.into_checkin(venue)?))
        })
        .collect()
}

/// The check-ins of the viewer's friends that friends may see, newest first.
pub fn feed(
    conn: &mut DbConnection,
    viewer: UserId,
    after: Option<CheckInKey>,
    limit: usize,
) -> Result<Vec<(CheckInKey, CheckIn)>, StoreError> {
    let mut query = checkins::table
        .inner_join(friendships::table.on(friendships::friend_id.eq(checkins::user_id)))
        .filter(friendships::user_id.eq(viewer.raw()))
        .filter(checkins::visibility.ne(Visibility::Private.as_str()))
        .select(CheckInRow::as_select())
        .order((checkins::created_at.desc(), checkins::id.desc()))
        .limit(limit as i64)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            checkins::created_at
                .lt(at)
                .or(checkins::created_at.eq(at).and(checkins::id.lt(id))),
        );
    }
    let rows = query.load::<CheckInRow>(conn)?;
    with_venues(conn, rows)
}

/// `owner`'s check-ins that `viewer` may see, newest first; `NotFound` when the viewer may not
/// see the owner at all (a block either way, or no such account).
pub fn of_user(
    conn: &mut DbConnection,
    viewer: UserId,
    owner: UserId,
    after: Option<CheckInKey>,
    limit: usize,
) -> Result<Vec<(CheckInKey, CheckIn)>, StoreError> {
    crate::social::visible_user(conn, viewer, owner)?;
    let shown: &[&str] = if viewer == owner {
        &["public", "friends", "private"]
    } else if are_friends(conn, viewer, owner)? {
        &["public", "friends"]
    } else {
        &["public"]
    };
    let mut query = checkins::table
        .filter(checkins::user_id.eq(owner.raw()))
        .filter(checkins::visibility.eq_any(shown))
        .select(CheckInRow::as_select())
        .order((checkins::created_at.desc(), checkins::id.desc()))
        .limit(limit as i64)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            checkins::created_at
                .lt(at)
                .or(checkins::created_at.eq(at).and(checkins::id.lt(id))),
        );
    }
    let rows = query.load::<CheckInRow>(conn)?;
    with_venues(conn, rows)
}

/// The people whose current presence comes from a check-in at `venue` that `viewer` may see,
/// most recent first (at most `limit`).
pub fn here_now(
    conn: &mut DbConnection,
    viewer: UserId,
    venue: VenueId,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(User, CheckIn)>, StoreError> {
    venues::find(conn, venue)?;
    let ids: Vec<i64> = presence_table::table
        .filter(presence_table::venue_id.eq(venue.raw()))
        .filter(presence_table::expires_at.gt(to_micros(now)))
        .filter(presence_table::checkin_id.is_not_null())
        .order(presence_table::updated_at.desc())
        .select(presence_table::checkin_id.assume_not_null())
        .load(conn)?;
    let mut here = Vec::new();
    for id in ids {
        let checkin = find(conn, CheckInId::from_raw(id))?;
        if visible_to(conn, &checkin, viewer)? {
            let user = crate::users::find(conn, checkin.user_id)?;
            here.push((user, checkin));
            if here.len() == limit {
                break;
            }
        }
    }
    Ok(here)
}
