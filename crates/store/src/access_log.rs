//! The location-access log: who saw a person's presence, through which channel, at what
//! precision, so that a person can check (DESIGN.md §5). Views are counted per subject, viewer,
//! channel and UTC day, with the precision of the latest view.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use vicinity_domain::{User, UserId};

use crate::presence::NearbyFriend;
use crate::schema::{location_access, users};
use crate::time::{from_micros, to_micros};
use crate::users::{USER_COLUMNS, UserRow};
use crate::{DbConnection, StoreError};

const DAY_MICROS: i64 = 86_400_000_000;

/// Through what a location was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Nearby,
    HereNow,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Nearby => "nearby",
            Via::HereNow => "here_now",
        }
    }
}

/// One view: `viewer` saw `subject` at `precision` (`exact`, `neighborhood`, `city`, or
/// `venue` for here-now).
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub subject: UserId,
    pub viewer: UserId,
    pub via: Via,
    pub precision: &'static str,
}

/// Records views in one upsert. Each subject may appear once in `views` (an upsert cannot
/// touch a row twice).
pub fn record(
    conn: &mut DbConnection,
    views: &[View],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if views.is_empty() {
        return Ok(());
    }
    let at = to_micros(now);
    let day = at.div_euclid(DAY_MICROS);
    let rows: Vec<_> = views
        .iter()
        .map(|v| {
            (
                location_access::subject_id.eq(v.subject.raw()),
                location_access::viewer_id.eq(v.viewer.raw()),
                location_access::via.eq(v.via.as_str()),
                location_access::day.eq(day),
                location_access::precision.eq(v.precision),
                location_access::views.eq(1_i64),
                location_access::last_at.eq(at),
            )
        })
        .collect();
    let update = (
        location_access::views.eq(location_access::views + 1),
        location_access::last_at.eq(excluded(location_access::last_at)),
        location_access::precision.eq(excluded(location_access::precision)),
    );
    // One statement (and so one commit outside a transaction) for all of an answer's views:
    // a commit per view made a nearby answer with friends in it wait for a WAL flush each.
    on_each_backend!(&mut *conn, |backend| {
        diesel::insert_into(location_access::table)
            .values(&rows)
            .on_conflict((
                location_access::subject_id,
                location_access::viewer_id,
                location_access::via,
                location_access::day,
            ))
            .do_update()
            .set(update)
            .execute(backend)?
    });
    Ok(())
}

/// Records that `viewer` saw each of `friends` through nearby.
pub fn record_nearby(
    conn: &mut DbConnection,
    viewer: UserId,
    friends: &[NearbyFriend],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let views: Vec<View> = friends
        .iter()
        .map(|friend| View {
            subject: friend.user.id,
            viewer,
            via: Via::Nearby,
            precision: friend.precision.as_str(),
        })
        .collect();
    record(conn, &views, now)
}

/// One line of a person's access log.
#[derive(Debug, Clone)]
pub struct Entry {
    pub viewer: User,
    pub via: &'static str,
    pub precision: String,
    pub views: i64,
    pub last_at: DateTime<Utc>,
    pub key: (i64, i64),
}

/// Who saw `subject`, most recent first, continuing after `(last_at µs, viewer id)`.
pub fn entries(
    conn: &mut DbConnection,
    subject: UserId,
    after: Option<(i64, i64)>,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut query = location_access::table
        .inner_join(users::table.on(users::id.eq(location_access::viewer_id)))
        .filter(location_access::subject_id.eq(subject.raw()))
        .select((
            USER_COLUMNS,
            location_access::via,
            location_access::precision,
            location_access::views,
            location_access::last_at,
        ))
        .order((
            location_access::last_at.desc(),
            location_access::viewer_id.desc(),
        ))
        .limit(limit as i64)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            location_access::last_at.lt(at).or(location_access::last_at
                .eq(at)
                .and(location_access::viewer_id.lt(id))),
        );
    }
    query
        .load::<(UserRow, String, String, i64, i64)>(conn)?
        .into_iter()
        .map(|(row, via, precision, views, last_at)| {
            let viewer = User::try_from(row)?;
            Ok(Entry {
                key: (last_at, viewer.id.raw()),
                via: if via == "here_now" {
                    "here_now"
                } else {
                    "nearby"
                },
                precision,
                views,
                last_at: from_micros(last_at)?,
                viewer,
            })
        })
        .collect()
}
