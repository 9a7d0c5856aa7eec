//! Check-ins, who may see them, and idempotent creation.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use vicinity_domain::{CheckInId, PrecisionLevel, User, UserId, VenueId, Visibility};
use vicinity_geo::Point;

use crate::access_log::{self, Via, View};
use crate::presence::{self, Presence, PresenceRules};
use crate::schema::{
    categories, checkins, friendships, idempotency_keys, presence as presence_table, users,
    venues as venues_table,
};
use crate::social::{self, are_friends, blocked_either_way};
use crate::time::{from_micros, to_micros};
use crate::users::{USER_COLUMNS, UserRow};
use crate::venues::{self, Venue, VenueRow};
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
    /// `None`: the person's default visibility.
    pub visibility: Option<Visibility>,
    /// When it happened (earlier than now for a check-in queued offline).
    pub created_at: DateTime<Utc>,
}

/// Records a check-in and, when it is recent, makes it the person's presence. A refusal
/// (`too_far_from_venue`, `impossible_travel`) is an error.
pub fn create(
    conn: &mut DbConnection,
    user: UserId,
    new: &NewCheckIn,
    rules: PresenceRules,
    now: DateTime<Utc>,
) -> Result<Listed, StoreError> {
    transaction(conn, |conn| create_in(conn, user, new, rules, now))
}

/// The checks every check-in passes, refusing it as `too_far_from_venue` or
/// `impossible_travel` (from `previous`, the person's stored presence); `Ok` says whether it
/// moves the person: a check-in queued offline long ago says nothing about where they are now.
pub(crate) fn plausible(
    venue: &Venue,
    new: &NewCheckIn,
    previous: Option<&Presence>,
    rules: PresenceRules,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let distance_m = venue.location.distance_m(new.location);
    let allowed_m = CHECKIN_REACH_M + new.accuracy_m.unwrap_or(0.0).min(1_000.0);
    if distance_m > allowed_m {
        return Err(too_far(distance_m, allowed_m));
    }
    let current = previous.filter(|p| p.expires_at > now);
    let sets_presence =
        new.created_at + rules.ttl > now && current.is_none_or(|p| p.updated_at < new.created_at);
    if sets_presence
        && let Some(speed_mps) = presence::speed_from(
            previous,
            new.location,
            new.accuracy_m,
            new.created_at,
            rules,
        )
    {
        return Err(impossible_travel(speed_mps));
    }
    Ok(sets_presence)
}

/// [`create`] inside the caller's transaction.
fn create_in(
    conn: &mut DbConnection,
    user: UserId,
    new: &NewCheckIn,
    rules: PresenceRules,
    now: DateTime<Utc>,
) -> Result<Listed, StoreError> {
    let venue = venues::find(conn, new.venue_id)?;
    let person = crate::users::find_locked(conn, user)?;
    let visibility = new.visibility.unwrap_or(person.default_visibility);
    let previous = presence::stored(conn, user)?;
    let sets_presence = plausible(&venue, new, previous.as_ref(), rules, now)?;
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
            checkins::visibility.eq(visibility.as_str()),
            checkins::created_at.eq(to_micros(new.created_at)),
            checkins::received_at.eq(to_micros(now)),
        ))
        .execute(conn)?;
    if sets_presence {
        let linked = Some(presence::Source {
            checkin: id,
            venue: venue.id.raw(),
            shown_to_friends: visibility != Visibility::Private,
        });
        presence::set(
            conn,
            &person,
            new.location,
            new.accuracy_m,
            linked,
            rules,
            new.created_at,
        )?;
    }
    Listed::written(id, new, venue, visibility, person, now)
}

/// A check-in request's `Idempotency-Key` and the hash of what it asked for.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// The answer to a check-in request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Checked in now; `response` is what `respond` rendered.
    Created { id: CheckInId, response: String },
    /// A retry: the first answer, to send again.
    Replay { status: u16, response: String },
}

/// A check-in as the endpoint makes it: on PostgreSQL, decided by the read model when it can
/// and written by `writer` together with the others waiting ([`crate::fast_checkin`]); in a
/// transaction otherwise ([`create_once`]); both answer alike. `respond`
/// renders the answer from the check-in and the friends nearby (within `radius_m`, seen at no
/// finer a level than `cap`: an app without `location:read` sees them at city level); the
/// views it reveals are queued in `recorder` for the friends' access logs.
#[expect(clippy::too_many_arguments, reason = "a check-in's parameters")]
pub async fn check_in(
    store: &crate::Store,
    writer: &crate::fast_checkin::Writer,
    recorder: &crate::access_log::Recorder,
    user: UserId,
    new: NewCheckIn,
    key: Option<IdempotencyKey>,
    rules: PresenceRules,
    now: DateTime<Utc>,
    radius_m: f64,
    cap: PrecisionLevel,
    respond: impl Fn(Listed, Vec<presence::NearbyFriend>) -> Result<String, StoreError>
    + Copy
    + Send
    + 'static,
) -> Result<Answer, StoreError> {
    let hot = std::sync::Arc::clone(store.hot());
    let in_memory = match store.backend() {
        crate::Backend::Postgres => crate::fast_checkin::decide(
            None,
            &hot,
            user,
            &new,
            key.clone(),
            rules,
            now,
            radius_m,
            cap,
            respond,
        )?,
        crate::Backend::Sqlite => None,
    };
    let decided = match in_memory {
        Some(decided) => Some(decided),
        None => {
            let (hot, new, key) = (std::sync::Arc::clone(&hot), new.clone(), key.clone());
            store
                .run(move |conn| {
                    crate::fast_checkin::decide(
                        Some(conn),
                        &hot,
                        user,
                        &new,
                        key,
                        rules,
                        now,
                        radius_m,
                        cap,
                        respond,
                    )
                })
                .await?
        }
    };
    let (answer, seen) = match decided {
        Some(decided) => writer.write(decided).await?,
        None => {
            store
                .run(move |conn| {
                    create_once(
                        conn,
                        user,
                        &new,
                        key.as_ref(),
                        rules,
                        now,
                        |conn, listed| {
                            let friends = match presence::nearby_seen_now(
                                conn,
                                &hot,
                                &listed.owner,
                                radius_m,
                                cap,
                                now,
                            )? {
                                presence::Nearby::Friends(friends) => friends,
                                presence::Nearby::NoPresence | presence::Nearby::SharingOff => {
                                    Vec::new()
                                }
                            };
                            respond(listed, friends)
                        },
                    )
                    .map(|answer| (answer, Vec::new()))
                })
                .await?
        }
    };
    recorder.record(seen, now)?;
    Ok(answer)
}

/// Checks in once per idempotency key, in one transaction: claims the key (a concurrent
/// retry waits, then replays), records the check-in, renders the answer with `respond` (which
/// may read more, such as the friends nearby) and stores it under the key. A refusal
/// (`too_far_from_venue`, `impossible_travel`, `idempotency_key_reused`) is an error, so the
/// transaction and the claimed key roll back and a corrected retry is accepted.
pub fn create_once(
    conn: &mut DbConnection,
    user: UserId,
    new: &NewCheckIn,
    key: Option<&IdempotencyKey>,
    rules: PresenceRules,
    now: DateTime<Utc>,
    respond: impl FnOnce(&mut DbConnection, Listed) -> Result<String, StoreError>,
) -> Result<Answer, StoreError> {
    transaction(conn, |conn| {
        if let Some(key) = key {
            match claim_key(conn, user, &key.key, &key.request_hash, now)? {
                Idempotent::Fresh => {}
                Idempotent::Replay { status, response } => {
                    return Ok(Answer::Replay { status, response });
                }
                Idempotent::Mismatch => return Err(key_reused()),
            }
        }
        let listed = create_in(conn, user, new, rules, now)?;
        let id = listed.checkin.id;
        let response = respond(conn, listed)?;
        if let Some(key) = key {
            complete_key(conn, user, &key.key, 201, &response)?;
        }
        Ok(Answer::Created { id, response })
    })
}

pub(crate) fn too_far(distance_m: f64, allowed_m: f64) -> StoreError {
    StoreError::Refused(
        "too_far_from_venue",
        format!(
            "the device is {distance_m:.0} m from the venue; at most {allowed_m:.0} m is \
             plausible for its accuracy"
        ),
    )
}

pub(crate) fn impossible_travel(speed_mps: f64) -> StoreError {
    StoreError::Refused(
        "impossible_travel",
        format!(
            "reaching this venue from your previous position needs {:.0} km/h",
            speed_mps * 3.6
        ),
    )
}

pub(crate) fn key_reused() -> StoreError {
    StoreError::Refused(
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different check-in; use a new key for a new \
         check-in"
            .into(),
    )
}

/// A check-in with its owner, as every read returns it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its place in a newest-first list.
    pub key: CheckInKey,
    pub checkin: CheckIn,
    pub owner: User,
}

/// Check-ins joined to their venue, the venue's category and their owner, leaving out those of
/// suspended people: one query for everything a read shows.
macro_rules! joined {
    () => {
        checkins::table
            .inner_join(venues_table::table.inner_join(categories::table))
            .inner_join(users::table.on(users::id.eq(checkins::user_id)))
            // A suspended person's check-ins are hidden with them, until reinstated.
            .filter(users::suspended_at.is_null())
            .select((
                CheckInRow::as_select(),
                VenueRow::as_select(),
                categories::name,
                USER_COLUMNS,
            ))
    };
}

type JoinedRow = (CheckInRow, VenueRow, String, UserRow);

impl Listed {
    /// A check-in just written with id `id`, as a read of its row would return it (times as
    /// stored: whole microseconds).
    pub(crate) fn written(
        id: i64,
        new: &NewCheckIn,
        venue: Venue,
        visibility: Visibility,
        owner: User,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let created_at = to_micros(new.created_at);
        Ok(Listed {
            key: (created_at, id),
            checkin: CheckIn {
                id: CheckInId::from_raw(id),
                user_id: owner.id,
                venue,
                location: new.location,
                accuracy_m: new.accuracy_m,
                shout: new.shout.clone(),
                visibility,
                created_at: from_micros(created_at)?,
                received_at: from_micros(to_micros(now))?,
            },
            owner,
        })
    }
}

fn listed(row: JoinedRow) -> Result<Listed, StoreError> {
    let (checkin, venue, category, owner) = row;
    Ok(Listed {
        key: (checkin.created_at, checkin.id),
        checkin: checkin.into_checkin(venue.into_venue(category)?)?,
        owner: User::try_from(owner)?,
    })
}

pub fn find(conn: &mut DbConnection, id: CheckInId) -> Result<Listed, StoreError> {
    listed(
        joined!()
            .filter(checkins::id.eq(id.raw()))
            .first::<JoinedRow>(conn)?,
    )
}

/// The people a viewer is related to, for deciding visibility of many check-ins at once.
#[derive(Debug, Default)]
pub struct Relations {
    pub friends: HashSet<i64>,
    /// Blocked either way.
    pub blocked: HashSet<i64>,
}

impl Relations {
    pub fn of(conn: &mut DbConnection, viewer: UserId) -> Result<Self, StoreError> {
        Ok(Self {
            friends: social::friend_ids(conn, viewer)?.into_iter().collect(),
            blocked: social::blocked_ids_either_way(conn, viewer)?
                .into_iter()
                .collect(),
        })
    }
}

/// Whether `viewer` may see `checkin`: its owner always; nobody else a private one; friends a
/// friends-only one; anyone a public one; and never across a block.
pub fn visible(checkin: &CheckIn, viewer: UserId, relations: &Relations) -> bool {
    let owner = checkin.user_id.raw();
    if checkin.user_id == viewer {
        return true;
    }
    if relations.blocked.contains(&owner) {
        return false;
    }
    match checkin.visibility {
        Visibility::Public => true,
        Visibility::Friends => relations.friends.contains(&owner),
        Visibility::Private => false,
    }
}

/// A check-in `viewer` may see; `NotFound` for one they may not (its existence stays hidden).
pub fn find_visible(
    conn: &mut DbConnection,
    id: CheckInId,
    viewer: UserId,
) -> Result<Listed, StoreError> {
    let found = find(conn, id)?;
    let owner = found.checkin.user_id;
    let relations = Relations {
        friends: are_friends(conn, owner, viewer)?
            .then_some(owner.raw())
            .into_iter()
            .collect(),
        blocked: blocked_either_way(conn, owner, viewer)?
            .then_some(owner.raw())
            .into_iter()
            .collect(),
    };
    if visible(&found.checkin, viewer, &relations) {
        Ok(found)
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
    crate::events::announce(
        conn,
        crate::events::Change::CheckinGone {
            user: owner.raw(),
            checkin: id.raw(),
        },
    )
}

/// A position in a newest-first list of check-ins: (created_at µs, id).
pub type CheckInKey = (i64, i64);

/// Which check-ins a list holds.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// All of a person's own.
    Own(UserId),
    /// Those of the viewer's friends that friends may see.
    Feed(UserId),
    /// Those of `owner` that `viewer` may see (checked by [`of_user`]).
    OfUser {
        owner: UserId,
        shown: &'static [&'static str],
    },
}

/// One newest-first page of a list, continuing after a [`CheckInKey`].
pub fn list(
    conn: &mut DbConnection,
    scope: Scope,
    after: Option<CheckInKey>,
    limit: usize,
) -> Result<Vec<Listed>, StoreError> {
    let mut query = joined!()
        .order((checkins::created_at.desc(), checkins::id.desc()))
        .limit(limit as i64)
        .into_boxed();
    query = match scope {
        Scope::Own(owner) => query.filter(checkins::user_id.eq(owner.raw())),
        Scope::Feed(viewer) => query
            .filter(
                checkins::user_id.eq_any(
                    friendships::table
                        .filter(friendships::user_id.eq(viewer.raw()))
                        .select(friendships::friend_id),
                ),
            )
            .filter(checkins::visibility.ne(Visibility::Private.as_str())),
        Scope::OfUser { owner, shown } => query
            .filter(checkins::user_id.eq(owner.raw()))
            .filter(checkins::visibility.eq_any(shown)),
    };
    if let Some((at, id)) = after {
        query = query.filter(
            checkins::created_at
                .lt(at)
                .or(checkins::created_at.eq(at).and(checkins::id.lt(id))),
        );
    }
    query
        .load::<JoinedRow>(conn)?
        .into_iter()
        .map(listed)
        .collect()
}

/// `owner`'s check-ins that `viewer` may see, newest first; `NotFound` when the viewer may not
/// see the owner at all (a block either way, or no such account).
pub fn of_user(
    conn: &mut DbConnection,
    viewer: UserId,
    owner: UserId,
    after: Option<CheckInKey>,
    limit: usize,
) -> Result<Vec<Listed>, StoreError> {
    social::visible_user(conn, viewer, owner)?;
    let shown: &'static [&'static str] = if viewer == owner {
        &["public", "friends", "private"]
    } else if are_friends(conn, viewer, owner)? {
        &["public", "friends"]
    } else {
        &["public"]
    };
    list(conn, Scope::OfUser { owner, shown }, after, limit)
}

/// The people whose current presence comes from a check-in at `venue` that `viewer` may see,
/// most recent first (at most `limit`). Each listing is recorded in their access log.
pub fn here_now(
    conn: &mut DbConnection,
    viewer: UserId,
    venue: VenueId,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Listed>, StoreError> {
    venues::find(conn, venue)?;
    let rows: Vec<JoinedRow> = joined!()
        .filter(
            checkins::id.eq_any(
                presence_table::table
                    .filter(presence_table::venue_id.eq(venue.raw()))
                    .filter(presence_table::expires_at.gt(to_micros(now)))
                    .select(presence_table::checkin_id.assume_not_null()),
            ),
        )
        .order((checkins::created_at.desc(), checkins::id.desc()))
        .load(conn)?;
    let relations = Relations::of(conn, viewer)?;
    let mut here = Vec::new();
    for row in rows {
        let found = listed(row)?;
        if visible(&found.checkin, viewer, &relations) {
            here.push(found);
            if here.len() == limit {
                break;
            }
        }
    }
    let views: Vec<View> = here
        .iter()
        .filter(|found| found.owner.id != viewer)
        .map(|found| View {
            subject: found.owner.id,
            viewer,
            via: Via::HereNow,
            precision: "venue",
        })
        .collect();
    access_log::record(conn, &views, now)?;
    Ok(here)
}

/// The venues of check-ins as a friend of their owners sees them (friends see all but private
/// ones), by check-in id: one query for a whole nearby answer.
pub(crate) fn venues_seen_by_friends(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Venue>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    joined!()
        .filter(checkins::id.eq_any(ids))
        .filter(checkins::visibility.ne(Visibility::Private.as_str()))
        .load::<JoinedRow>(conn)?
        .into_iter()
        .map(|row| listed(row).map(|found| (found.checkin.id.raw(), found.checkin.venue)))
        .collect()
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
    let row = (
        idempotency_keys::user_id.eq(user.raw()),
        idempotency_keys::key.eq(key),
        idempotency_keys::request_hash.eq(request_hash),
        idempotency_keys::status.eq(0),
        idempotency_keys::response.eq(""),
        idempotency_keys::created_at.eq(to_micros(now)),
    );
    // A key claimed by a transaction still in flight makes this insert wait for it; once it
    // committed, nothing is inserted and its answer is replayed below.
    let inserted = on_each_backend!(&mut *conn, |backend| {
        diesel::insert_into(idempotency_keys::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(backend)?
    });
    match inserted {
        1 => Ok(Idempotent::Fresh),
        _ => {
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
