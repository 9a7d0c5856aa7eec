//! Statistics for operators: a venue's visits, the busiest venues in a circle, check-ins per
//! H3 cell and the service's overview. Most are computed from the check-ins themselves; the
//! overview and the coarse cells read rollups the database's triggers keep. Queries return
//! counts (or opaque visitor numbers to count in memory), never people.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::dsl::{count, count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use vicinity_domain::stats::Visit;
use vicinity_domain::{VenueId, Visibility};
use vicinity_geo::Point;

use crate::schema::{checkin_slots, checkins, presence, user_activity, users};
use crate::time::{from_micros, to_micros};
use crate::venues::{Venue, category_with_descendants, in_circle};
use crate::{DbConnection, StoreError};

mod cells;

pub use cells::{CellCount, CellCounts, CellsQuery, ROLLUP_RESOLUTION, cell_counts, visitor_bit};

/// Runs `work` as one read transaction; on PostgreSQL without JIT compilation, which costs
/// these short aggregates more than it saves (up to a few seconds for the overview's
/// statements in the benchmark).
pub fn analytic<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    crate::transaction(conn, |conn| {
        if matches!(conn, DbConnection::Pg(_)) {
            diesel::sql_query("SET LOCAL jit = off").execute(conn)?;
        }
        work(conn)
    })
}

/// At most this many ids go into one `IN (…)` list (SQLite allows 32 766 parameters).
const IDS_PER_QUERY: usize = 5_000;

/// The check-ins at `venue` in `[from, to)`; `NotFound` when there is no such venue.
pub fn venue_visits(
    conn: &mut DbConnection,
    venue: VenueId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Venue, Vec<Visit>), StoreError> {
    let found = crate::venues::find(conn, venue)?;
    let rows = checkins::table
        .filter(checkins::venue_id.eq(venue.raw()))
        .filter(checkins::created_at.ge(to_micros(from)))
        .filter(checkins::created_at.lt(to_micros(to)))
        .select((
            checkins::user_id,
            checkins::created_at,
            checkins::visibility,
        ))
        .load::<(i64, i64, String)>(conn)?;
    let visits = rows
        .into_iter()
        .map(|(visitor, at, visibility)| {
            Ok(Visit {
                visitor,
                at: from_micros(at)?,
                visibility: Visibility::parse(&visibility).map_err(StoreError::Corrupt)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((found, visits))
}

/// How many of the people who checked in at `venue` in `[from, to)` had checked in there
/// before `from`.
pub fn returning_visitors(
    conn: &mut DbConnection,
    venue: VenueId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let window = diesel::alias!(checkins as window);
    let in_window = window
        .filter(window.field(checkins::venue_id).eq(venue.raw()))
        .filter(window.field(checkins::created_at).ge(to_micros(from)))
        .filter(window.field(checkins::created_at).lt(to_micros(to)))
        .select(window.field(checkins::user_id));
    let count = checkins::table
        .filter(checkins::venue_id.eq(venue.raw()))
        .filter(checkins::created_at.lt(to_micros(from)))
        .filter(checkins::user_id.eq_any(in_window))
        .select(count(checkins::user_id).aggregate_distinct())
        .get_result::<i64>(conn)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// A venue's place among the busiest.
#[derive(Debug, Clone)]
pub struct VenueRank {
    pub venue: Venue,
    pub distance_m: f64,
    pub checkins: u64,
    pub unique_visitors: u64,
}

/// What the busiest venues are chosen from.
#[derive(Debug, Clone)]
pub struct TopVenuesQuery {
    pub centre: Point,
    pub radius_m: f64,
    /// A category id: venues of it and of every category below it.
    pub category: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: usize,
}

/// The venues within the circle with the most check-ins in the window (then the most
/// visitors, then the nearest), at most `limit`; venues nobody checked in at are left out.
/// `Unknown("category")` for a category that does not exist.
pub fn top_venues(
    conn: &mut DbConnection,
    query: &TopVenuesQuery,
) -> Result<Vec<VenueRank>, StoreError> {
    let categories = query
        .category
        .as_deref()
        .map(|id| category_with_descendants(conn, id))
        .transpose()?;
    let venues = in_circle(conn, query.centre, query.radius_m, categories.as_deref())?;
    let mut ranked = Vec::new();
    for chunk in venues.chunks(IDS_PER_QUERY) {
        let ids: Vec<i64> = chunk.iter().map(|(venue, _)| venue.id.raw()).collect();
        let counts = checkins::table
            .filter(checkins::venue_id.eq_any(ids))
            .filter(checkins::created_at.ge(to_micros(query.from)))
            .filter(checkins::created_at.lt(to_micros(query.to)))
            .group_by(checkins::venue_id)
            .select((
                checkins::venue_id,
                count_star(),
                count(checkins::user_id).aggregate_distinct(),
            ))
            .load::<(i64, i64, i64)>(conn)?;
        for (id, checkins, visitors) in counts {
            if let Some((venue, distance_m)) = chunk.iter().find(|(venue, _)| venue.id.raw() == id)
            {
                ranked.push(VenueRank {
                    venue: venue.clone(),
                    distance_m: *distance_m,
                    checkins: u64::try_from(checkins).unwrap_or(0),
                    unique_visitors: u64::try_from(visitors).unwrap_or(0),
                });
            }
        }
    }
    ranked.sort_by(|a, b| {
        b.checkins
            .cmp(&a.checkins)
            .then(b.unique_visitors.cmp(&a.unique_visitors))
            .then(a.distance_m.total_cmp(&b.distance_m))
            .then(a.venue.id.raw().cmp(&b.venue.id.raw()))
    });
    ranked.truncate(query.limit);
    Ok(ranked)
}

/// The service at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub users: u64,
    pub suspended_users: u64,
    pub admins: u64,
    /// People with a check-in in the last 24 hours, 7 days and 30 days.
    pub active_day: u64,
    pub active_week: u64,
    pub active_month: u64,
    /// People whose shared position has not expired.
    pub present_now: u64,
    pub checkins: u64,
}

/// The shards' sum (PostgreSQL's `SUM` of BIGINT is NUMERIC; the counts fit a BIGINT).
const TOTAL: &str = "CAST(SUM(checkin_slots.checkins) AS BIGINT)";

/// Counts for [`Overview`] at `now`, from the rollups the database keeps current
/// (`user_activity`, `checkin_slots`) rather than from millions of check-ins.
pub fn overview(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Overview, StoreError> {
    let as_u64 = |n: i64| u64::try_from(n).unwrap_or(0);
    // One pass over each table, however many counts it gives.
    let (users, suspended, admins) = users::table
        .select((
            count_star(),
            count(users::suspended_at),
            sql::<BigInt>("COUNT(CASE WHEN users.is_admin THEN 1 END)"),
        ))
        .get_result::<(i64, i64, i64)>(conn)?;
    let since = |days: i64| to_micros(now - TimeDelta::days(days));
    let active = "COUNT(CASE WHEN user_activity.last_checkin_at >= ";
    let (active_day, active_week, active_month) = user_activity::table
        .select((
            sql::<BigInt>(active)
                .bind::<BigInt, _>(since(1))
                .sql(" THEN 1 END)"),
            sql::<BigInt>(active)
                .bind::<BigInt, _>(since(7))
                .sql(" THEN 1 END)"),
            sql::<BigInt>(active)
                .bind::<BigInt, _>(since(30))
                .sql(" THEN 1 END)"),
        ))
        .get_result::<(i64, i64, i64)>(conn)?;
    let checkins = checkin_slots::table
        .select(sql::<Nullable<BigInt>>(TOTAL))
        .get_result::<Option<i64>>(conn)?;
    Ok(Overview {
        users: as_u64(users),
        suspended_users: as_u64(suspended),
        admins: as_u64(admins),
        active_day: as_u64(active_day),
        active_week: as_u64(active_week),
        active_month: as_u64(active_month),
        present_now: as_u64(
            presence::table
                .filter(presence::expires_at.gt(to_micros(now)))
                .count()
                .get_result(conn)?,
        ),
        checkins: as_u64(checkins.unwrap_or(0)),
    })
}

/// The width of the slots [`checkins_per_slot`] counts in: 15 minutes, so that every time
/// zone's days and hours are whole slots.
pub const SLOT: TimeDelta = TimeDelta::minutes(15);

/// Check-ins in the slots from the one holding `from` to the one holding `to`:
/// `(slot start, count)`, in order, empty slots absent. `from` should be a slot boundary (every
/// zone's midnight is).
pub fn checkins_per_slot(
    conn: &mut DbConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
    let slot_micros = SLOT.num_microseconds().unwrap_or(900_000_000);
    let (first, last) = (to_micros(from) / slot_micros, to_micros(to) / slot_micros);
    checkin_slots::table
        .filter(checkin_slots::slot.between(first, last))
        .group_by(checkin_slots::slot)
        .select((checkin_slots::slot, sql::<Nullable<BigInt>>(TOTAL)))
        .order(checkin_slots::slot)
        .load::<(i64, Option<i64>)>(conn)?
        .into_iter()
        .filter_map(|(slot, n)| {
            let n = u64::try_from(n.unwrap_or(0)).ok().filter(|n| *n > 0)?;
            Some(from_micros(slot.saturating_mul(slot_micros)).map(|at| (at, n)))
        })
        .collect()
}
