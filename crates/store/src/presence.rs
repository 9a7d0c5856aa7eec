//! Presence (a person's last known position, which expires) and "which friends are nearby".
//!
//! Nearby has two plans that must agree: walk the viewer's friends and look up each one's
//! presence, or scan the presence cells around the viewer and keep friends. The cheaper one is
//! chosen per query by a bounded count: if the cells around the viewer hold fewer present
//! people than the viewer has friends, scanning the cells reads fewer rows.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use vicinity_domain::{PrecisionLevel, User, UserId};
use vicinity_geo::privacy::{max_snap_offset_m, rounded_distance_m, shared_point};
use vicinity_geo::{Cover, MAX_COVER_RADIUS_M, Point, storage_cell};

use crate::events::{Change, announce};
use crate::hot::Located;
use crate::schema::{friendships, presence, users};
use crate::time::{from_micros, to_micros};
use crate::users::{USER_COLUMNS, UserRow};
use crate::{DbConnection, StoreError, transaction};

/// A person's last known position.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    pub user_id: UserId,
    pub location: Point,
    pub accuracy_m: Option<f64>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = presence)]
struct PresenceRow {
    user_id: i64,
    lat: f64,
    lng: f64,
    accuracy_m: Option<f64>,
    updated_at: i64,
    expires_at: i64,
}

impl TryFrom<PresenceRow> for Presence {
    type Error = StoreError;

    fn try_from(row: PresenceRow) -> Result<Self, StoreError> {
        Ok(Presence {
            user_id: UserId::from_raw(row.user_id),
            location: Point::new(row.lat, row.lng)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            accuracy_m: row.accuracy_m,
            updated_at: from_micros(row.updated_at)?,
            expires_at: from_micros(row.expires_at)?,
        })
    }
}

/// Rules for accepting a position update.
#[derive(Debug, Clone, Copy)]
pub struct PresenceRules {
    /// How long a position counts as "now".
    pub ttl: Duration,
    /// Faster than this between two consecutive positions is refused, in m/s.
    pub max_speed_mps: f64,
}

impl Default for PresenceRules {
    fn default() -> Self {
        Self {
            ttl: Duration::hours(3),
            // A little faster than an airliner.
            max_speed_mps: 300.0,
        }
    }
}

/// What became of a position update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Update {
    Accepted,
    /// Refused: reaching it from the previous position needs this speed.
    ImpossibleTravel {
        speed_mps: f64,
    },
}

/// The uncertainty both accuracies leave, capped so a claimed huge accuracy cannot excuse a
/// teleport.
fn slack_m(previous: Option<f64>, next: Option<f64>) -> f64 {
    previous.unwrap_or(0.0).min(1_000.0) + next.unwrap_or(0.0).min(1_000.0)
}

/// The speed needed to reach `location` at `at` from `user`'s previous position, when it is
/// faster than the rules allow; `None` when the move is plausible (or there is nothing to
/// compare with).
pub fn travel_speed(
    conn: &mut DbConnection,
    user: UserId,
    location: Point,
    accuracy_m: Option<f64>,
    at: DateTime<Utc>,
    rules: PresenceRules,
) -> Result<Option<f64>, StoreError> {
    let previous = stored(conn, user)?;
    Ok(speed_from(
        previous.as_ref(),
        location,
        accuracy_m,
        at,
        rules,
    ))
}

/// [`travel_speed`] from a `previous` position already read.
pub fn speed_from(
    previous: Option<&Presence>,
    location: Point,
    accuracy_m: Option<f64>,
    at: DateTime<Utc>,
    rules: PresenceRules,
) -> Option<f64> {
    let previous = previous?;
    let distance = previous.location.distance_m(location);
    let moved = (distance - slack_m(previous.accuracy_m, accuracy_m)).max(0.0);
    let seconds = (at - previous.updated_at).num_milliseconds().max(1_000) as f64 / 1_000.0;
    let speed_mps = moved / seconds;
    (speed_mps > rules.max_speed_mps).then_some(speed_mps)
}

/// The check-in a presence comes from.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub checkin: i64,
    pub venue: i64,
    /// Whether friends may see the check-in (it is not private).
    pub shown_to_friends: bool,
}

/// Records `user`'s position (after a plausibility check against the previous one), linked to
/// a check-in when there is one.
pub fn update(
    conn: &mut DbConnection,
    user: UserId,
    location: Point,
    accuracy_m: Option<f64>,
    checkin: Option<Source>,
    rules: PresenceRules,
    now: DateTime<Utc>,
) -> Result<Update, StoreError> {
    transaction(conn, |conn| {
        if let Some(speed_mps) = travel_speed(conn, user, location, accuracy_m, now, rules)? {
            return Ok(Update::ImpossibleTravel { speed_mps });
        }
        let person = crate::users::find_locked(conn, user)?;
        set(conn, &person, location, accuracy_m, checkin, rules, now)?;
        Ok(Update::Accepted)
    })
}

/// Makes `location` the current position of `person` (as read in this transaction), without
/// the plausibility check: for callers that made it.
pub(crate) fn set(
    conn: &mut DbConnection,
    person: &User,
    location: Point,
    accuracy_m: Option<f64>,
    checkin: Option<Source>,
    rules: PresenceRules,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let located = Located {
        user: person.id.raw(),
        location,
        accuracy_m,
        cell: storage_cell(location),
        updated_at: to_micros(now),
        expires_at: to_micros(now + rules.ttl),
        checkin: checkin.map(|c| c.checkin),
        venue: checkin.map(|c| c.venue),
        venue_shown: checkin.is_some_and(|c| c.shown_to_friends),
        precision: person.location_precision,
        // `users::find` reads unsuspended people only.
        suspended: false,
    };
    let row = (
        presence::user_id.eq(located.user),
        presence::lat.eq(location.lat()),
        presence::lng.eq(location.lng()),
        presence::accuracy_m.eq(accuracy_m),
        presence::cell.eq(located.cell),
        presence::venue_id.eq(located.venue),
        presence::checkin_id.eq(located.checkin),
        presence::updated_at.eq(located.updated_at),
        presence::expires_at.eq(located.expires_at),
    );
    let replace = (
        presence::lat.eq(location.lat()),
        presence::lng.eq(location.lng()),
        presence::accuracy_m.eq(accuracy_m),
        presence::cell.eq(located.cell),
        presence::venue_id.eq(located.venue),
        presence::checkin_id.eq(located.checkin),
        presence::updated_at.eq(located.updated_at),
        presence::expires_at.eq(located.expires_at),
    );
    on_each_backend!(&mut *conn, |backend| {
        diesel::insert_into(presence::table)
            .values(row)
            .on_conflict(presence::user_id)
            .do_update()
            .set(replace)
            .execute(backend)?
    });
    announce(conn, Change::PresenceSet(located))
}

/// Forgets `user`'s position at once, in the change feed too; `false` when there was none.
pub fn clear(conn: &mut DbConnection, user: UserId) -> Result<bool, StoreError> {
    let cleared = diesel::delete(presence::table.find(user.raw())).execute(conn)? > 0;
    if cleared {
        crate::events::forget_positions(conn, user.raw())?;
        announce(conn, Change::PresenceCleared(user.raw()))?;
    }
    Ok(cleared)
}

/// `user`'s unexpired position.
pub fn current(
    conn: &mut DbConnection,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Option<Presence>, StoreError> {
    presence::table
        .find(user.raw())
        .filter(presence::expires_at.gt(to_micros(now)))
        .select(PresenceRow::as_select())
        .first::<PresenceRow>(conn)
        .optional()?
        .map(Presence::try_from)
        .transpose()
}

/// `user`'s stored position, expired or not (until the maintenance pass deletes it).
pub fn stored(conn: &mut DbConnection, user: UserId) -> Result<Option<Presence>, StoreError> {
    presence::table
        .find(user.raw())
        .select(PresenceRow::as_select())
        .first::<PresenceRow>(conn)
        .optional()?
        .map(Presence::try_from)
        .transpose()
}

/// How a nearby query is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Look up each friend's presence.
    WalkFriends,
    /// Scan the presence cells around the viewer and keep friends.
    ScanCells,
}

/// A friend nearby, as the viewer may see them.
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyFriend {
    pub user: User,
    /// From the viewer to the friend's shared point, rounded for `precision`.
    pub distance_m: u64,
    /// The coarser of the two people's levels.
    pub precision: PrecisionLevel,
    pub last_seen_at: DateTime<Utc>,
    /// The venue of the check-in that set this presence, when the viewer may see that
    /// check-in.
    pub venue: Option<crate::venues::Venue>,
}

/// The answer to "who is nearby".
#[derive(Debug, Clone, PartialEq)]
pub enum Nearby {
    /// The viewer has no current position to search from.
    NoPresence,
    /// The viewer shares with nobody, so (precision being reciprocal) sees nobody.
    SharingOff,
    Friends(Vec<NearbyFriend>),
}

/// Friends within `radius_m` of the viewer's current position, nearest first, by `plan` (or
/// the cheaper plan when `None`).
pub fn nearby(
    conn: &mut DbConnection,
    viewer_id: UserId,
    radius_m: f64,
    plan: Option<Plan>,
    now: DateTime<Utc>,
) -> Result<Nearby, StoreError> {
    // The viewer and their friend count in one round trip.
    let (row, friends): (UserRow, Option<i64>) = users::table
        .filter(users::id.eq(viewer_id.raw()))
        .filter(users::suspended_at.is_null())
        .select((
            USER_COLUMNS,
            friendships::table
                .filter(friendships::user_id.eq(viewer_id.raw()))
                .count()
                .single_value(),
        ))
        .first(conn)?;
    let viewer = User::try_from(row)?;
    // Someone who shares with nobody sees nobody: their position is not even read.
    let origin = match viewer.location_precision {
        PrecisionLevel::Off => None,
        _ => current(conn, viewer_id, now)?,
    };
    nearby_from(
        conn,
        &viewer,
        origin,
        friends.unwrap_or(0),
        radius_m,
        plan,
        now,
    )
}

/// [`nearby`] once the viewer's position and friend count are known.
fn nearby_from(
    conn: &mut DbConnection,
    viewer: &User,
    origin: Option<Presence>,
    friends: i64,
    radius_m: f64,
    plan: Option<Plan>,
    now: DateTime<Utc>,
) -> Result<Nearby, StoreError> {
    if viewer.location_precision == PrecisionLevel::Off {
        return Ok(Nearby::SharingOff);
    }
    let Some(origin) = origin else {
        return Ok(Nearby::NoPresence);
    };
    let radius_m = radius_m.clamp(0.0, MAX_COVER_RADIUS_M / 2.0);
    // A friend's shared point is at most one city-cell circumradius from their position.
    let reach = radius_m + max_snap_offset_m(PrecisionLevel::City);
    let cover = Cover::circle(origin.location, reach)
        .map_err(|e| StoreError::Corrupt(format!("nearby radius: {e}")))?;
    let at = to_micros(now);
    let present = match plan {
        Some(Plan::WalkFriends) => None,
        Some(Plan::ScanCells) => Some(present_in(conn, &cover, None, now)?),
        None => {
            // Scanning reads the present people in the cover, walking reads the friends: scan
            // for at most one more than the friend count. A scan that stays within the bound
            // has already done the cheaper plan's reading.
            let present = present_in(conn, &cover, Some(friends + 1), now)?;
            (present.len() as i64 <= friends).then_some(present)
        }
    };
    let candidates: Vec<(UserRow, PresenceRow, Option<i64>)> = match present {
        None => friendships::table
            .inner_join(presence::table.on(presence::user_id.eq(friendships::friend_id)))
            .inner_join(users::table.on(users::id.eq(friendships::friend_id)))
            .filter(friendships::user_id.eq(viewer.id.raw()))
            .filter(presence::expires_at.gt(at))
            .filter(users::suspended_at.is_null())
            .select((USER_COLUMNS, PresenceRow::as_select(), presence::checkin_id))
            .load(conn)?,
        Some(present) if present.is_empty() => Vec::new(),
        Some(present) => presence::table
            .inner_join(friendships::table.on(friendships::friend_id.eq(presence::user_id)))
            .inner_join(users::table.on(users::id.eq(presence::user_id)))
            .filter(presence::user_id.eq_any(present))
            .filter(friendships::user_id.eq(viewer.id.raw()))
            .filter(presence::expires_at.gt(at))
            .filter(users::suspended_at.is_null())
            .select((USER_COLUMNS, PresenceRow::as_select(), presence::checkin_id))
            .load(conn)?,
    };
    let mut found = Vec::with_capacity(candidates.len());
    for (user_row, presence_row, checkin_id) in candidates {
        let user = User::try_from(user_row)?;
        let presence = Presence::try_from(presence_row)?;
        let precision = viewer.location_precision.coarser(user.location_precision);
        let Some(seen_at) = shared_point(presence.location, precision) else {
            continue;
        };
        let distance = origin.location.distance_m(seen_at);
        if distance > radius_m {
            continue;
        }
        found.push((
            distance,
            checkin_id,
            NearbyFriend {
                distance_m: rounded_distance_m(distance, precision),
                precision,
                last_seen_at: presence.updated_at,
                venue: None,
                user,
            },
        ));
    }
    // The venues of the check-ins behind these presences, in one query.
    let checkin_ids: Vec<i64> = found.iter().filter_map(|(_, id, _)| *id).collect();
    let mut venues = crate::checkins::venues_seen_by_friends(conn, &checkin_ids)?;
    for (_, checkin_id, friend) in &mut found {
        friend.venue = checkin_id.and_then(|id| venues.remove(&id));
    }
    // Nearest first by the shared point; ties by id so both plans order alike.
    found.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.2.user.id.raw().cmp(&b.2.user.id.raw()))
    });
    Ok(Nearby::Friends(
        found.into_iter().map(|(_, _, f)| f).collect(),
    ))
}

/// [`nearby`], answered by the read model when it can (loading what it lacks through
/// `conn`) and by the database otherwise: the same answer either way.
pub fn nearby_fast(
    conn: &mut DbConnection,
    hot: &crate::hot::Hot,
    viewer_id: UserId,
    radius_m: f64,
    now: DateTime<Utc>,
) -> Result<Nearby, StoreError> {
    match hot.nearby(conn, viewer_id, radius_m, None, now)? {
        Some(nearby) => Ok(nearby),
        None => nearby(conn, viewer_id, radius_m, None, now),
    }
}

/// "Who is nearby" as the endpoint answers it: from the read model when it can, otherwise
/// through the database (loading what the model lacks); the views the answer reveals are
/// queued in `recorder` for the friends' access logs.
pub async fn nearby_now(
    store: &crate::Store,
    recorder: &crate::access_log::Recorder,
    viewer: UserId,
    radius_m: f64,
    now: DateTime<Utc>,
) -> Result<Nearby, StoreError> {
    let outcome = match store.hot().try_nearby(viewer, radius_m, None, now) {
        crate::hot::Attempt::Answer(nearby) => nearby,
        crate::hot::Attempt::Needs(_) | crate::hot::Attempt::Unavailable => {
            let hot = std::sync::Arc::clone(store.hot());
            store
                .run(move |conn| nearby_fast(conn, &hot, viewer, radius_m, now))
                .await?
        }
    };
    if let Nearby::Friends(friends) = &outcome {
        recorder.record(crate::access_log::nearby_views(viewer, friends), now)?;
    }
    Ok(outcome)
}

/// [`nearby_seen`] for `viewer` (as read in the current transaction) from their current
/// position, which that transaction may just have set: the read model answers when it can,
/// from that position.
pub fn nearby_seen_now(
    conn: &mut DbConnection,
    hot: &crate::hot::Hot,
    viewer: &User,
    radius_m: f64,
    cap: PrecisionLevel,
    now: DateTime<Utc>,
) -> Result<Nearby, StoreError> {
    if viewer.location_precision == PrecisionLevel::Off {
        return Ok(Nearby::SharingOff);
    }
    let Some(origin) = current(conn, viewer.id, now)? else {
        return Ok(Nearby::NoPresence);
    };
    // Seen as if the viewer shared no finer than `cap`: precision being reciprocal, every
    // friend then appears at `cap` or coarser.
    let mut capped = viewer.clone();
    capped.location_precision = viewer.location_precision.coarser(cap);
    let precision = capped.location_precision;
    let outcome = match hot.nearby_at(conn, viewer.id, origin.location, precision, radius_m, now)? {
        Some(nearby) => nearby,
        None => {
            let friends = friendships::table
                .filter(friendships::user_id.eq(viewer.id.raw()))
                .count()
                .get_result::<i64>(conn)?;
            nearby_from(conn, &capped, Some(origin), friends, radius_m, None, now)?
        }
    };
    if let Nearby::Friends(friends) = &outcome {
        crate::access_log::record_nearby(conn, viewer.id, friends, now)?;
    }
    Ok(outcome)
}

/// [`nearby`] for the viewer `viewer_id`, recording in each friend's access log that the
/// viewer saw them: what every answer that leaves the server goes through.
pub fn nearby_seen(
    conn: &mut DbConnection,
    viewer_id: UserId,
    radius_m: f64,
    now: DateTime<Utc>,
) -> Result<Nearby, StoreError> {
    let outcome = nearby(conn, viewer_id, radius_m, None, now)?;
    if let Nearby::Friends(friends) = &outcome {
        crate::access_log::record_nearby(conn, viewer_id, friends, now)?;
    }
    Ok(outcome)
}

/// The people with unexpired presence in `cover`, at most `limit` of them.
///
/// The query is planned for its actual cell ranges every time (see
/// [`crate::plan_for_actual_values`]): a plan cached for "some ranges" scans the whole table.
fn present_in(
    conn: &mut DbConnection,
    cover: &Cover,
    limit: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let mut query = presence::table.select(presence::user_id).into_boxed();
    for range in cover.ranges() {
        query = query.or_filter(presence::cell.between(range.first, range.last));
    }
    let mut query = query
        .filter(presence::expires_at.gt(to_micros(now)))
        .filter(crate::plan_for_actual_values());
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    Ok(query.load(conn)?)
}
