//! A check-in on PostgreSQL in one statement.
//!
//! [`crate::checkins::create_once`] is a transaction of a dozen round trips (claim the key,
//! read the venue, the person and their presence, insert, upsert the presence, announce,
//! compute nearby friends, store the answer, commit). Here the read model decides everything it
//! can beforehand (the venue, the person, the plausibility checks, the friends nearby and so
//! the whole answer), and one statement claims the key with that answer, inserts the check-in,
//! moves the presence and appends the change, committing once. It answers exactly as
//! `create_once` does; when the model is not ready, or on SQLite, the caller uses that instead.
//!
//! What the statement still checks itself: that the person exists unsuspended (and holds
//! their row `FOR SHARE`, so the sharing level copied into the change is the committed one),
//! the idempotency key (a concurrent request with the same key waits, then finds it taken and
//! replays), and the venue (its foreign key: deleted meanwhile means 404).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text};
use vicinity_domain::{PrecisionLevel, UserId};
use vicinity_geo::storage_cell;

use crate::access_log::{View, nearby_views};
use crate::checkins::{Answer, IdempotencyKey, Listed, NewCheckIn, key_reused, plausible};
use crate::events::{Change, announced};
use crate::hot::{Hot, Located};
use crate::presence::{Nearby, NearbyFriend, Presence, PresenceRules};
use crate::schema::idempotency_keys;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, StoreError, new_key};

/// The statement, with `{claim}` standing for how the key is claimed.
const STATEMENT: &str = "
WITH person AS (
    SELECT id, location_precision FROM users
    WHERE id = $1 AND suspended_at IS NULL
    FOR SHARE
), claim AS (
    {claim}
), ins AS (
    INSERT INTO checkins (id, user_id, venue_id, lat, lng, accuracy_m, shout, visibility,
                          created_at, received_at)
    SELECT $6, user_id, $7, $8, $9, $10, $11, $12, $13, $5 FROM claim
    RETURNING id, user_id
), pres AS (
    INSERT INTO presence (user_id, lat, lng, accuracy_m, cell, venue_id, checkin_id,
                          updated_at, expires_at)
    SELECT user_id, $8, $9, $10, $14, $7, id, $13, $15 FROM ins WHERE $16
    ON CONFLICT (user_id) DO UPDATE SET
        lat = EXCLUDED.lat, lng = EXCLUDED.lng, accuracy_m = EXCLUDED.accuracy_m,
        cell = EXCLUDED.cell, venue_id = EXCLUDED.venue_id, checkin_id = EXCLUDED.checkin_id,
        updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at
    RETURNING user_id
), feed AS (
    INSERT INTO changes (payload, created_at, subject)
    SELECT $17 || person.location_precision || ' 0', $5, $1 FROM pres, person
    RETURNING seq, payload
)
SELECT (SELECT count(*) FROM ins) AS inserted,
       (SELECT seq FROM feed) AS seq,
       (SELECT payload FROM feed) AS payload";

/// Claiming a key: the answer is stored with it, in the same statement.
const CLAIM_KEY: &str = "
    INSERT INTO idempotency_keys (user_id, key, request_hash, status, response, created_at)
    SELECT id, $2, $3, 201, $4, $5 FROM person
    ON CONFLICT DO NOTHING
    RETURNING user_id";

/// Without a key there is nothing to claim (`$2`–`$4` go unused).
const NO_KEY: &str = "SELECT id AS user_id FROM person";

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = BigInt)]
    inserted: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    payload: Option<String>,
}

/// What the person saw, to record in their friends' access logs before answering.
pub type Seen = Vec<View>;

/// Checks in as [`crate::checkins::create_once`] does, in one statement; `Ok(None)` when this
/// path does not apply and the caller must use `create_once`. `respond` renders the answer
/// from the check-in and the friends nearby.
#[expect(clippy::too_many_arguments, reason = "a check-in's parameters")]
pub fn create(
    conn: &mut DbConnection,
    hot: &Hot,
    user: UserId,
    new: &NewCheckIn,
    key: Option<&IdempotencyKey>,
    rules: PresenceRules,
    now: DateTime<Utc>,
    radius_m: f64,
    respond: impl FnOnce(Listed, Vec<NearbyFriend>) -> Result<String, StoreError>,
) -> Result<Option<(Answer, Seen)>, StoreError> {
    if !matches!(conn, DbConnection::Pg(_)) || !hot.is_ready() {
        return Ok(None);
    }
    let venue = hot.venue(conn, new.venue_id)?;
    let person = hot.user(conn, user)?;
    let visibility = new.visibility.unwrap_or(person.default_visibility);
    let previous = hot.presence_of(user).map(presence_from).transpose()?;
    let sets_presence = plausible(&venue, new, previous.as_ref(), rules, now)?;
    let current = previous.as_ref().filter(|p| p.expires_at > now);
    let precision = person.location_precision;
    let origin = match (sets_presence, current) {
        (true, _) => Some(new.location),
        (false, Some(current)) => Some(current.location),
        (false, None) => None,
    };
    let nearby = match origin {
        _ if precision == PrecisionLevel::Off => Nearby::SharingOff,
        None => Nearby::NoPresence,
        Some(origin) => match hot.nearby_at(conn, user, origin, precision, radius_m, now)? {
            Some(nearby) => nearby,
            None => return Ok(None),
        },
    };
    let friends = match nearby {
        Nearby::Friends(friends) => friends,
        Nearby::NoPresence | Nearby::SharingOff => Vec::new(),
    };
    let seen = nearby_views(user, &friends);
    let id = new_key();
    let (created_at, received_at) = (to_micros(new.created_at), to_micros(now));
    let listed = Listed::written(
        id,
        new,
        crate::venues::Venue::clone(&venue),
        visibility,
        vicinity_domain::User::clone(&person),
        now,
    )?;
    let response = respond(listed, friends)?;
    // The change the statement appends, but for the owner's level, which it reads itself.
    let expires_at = to_micros(new.created_at + rules.ttl);
    let located = Located {
        user: user.raw(),
        location: new.location,
        accuracy_m: new.accuracy_m,
        cell: storage_cell(new.location),
        updated_at: created_at,
        expires_at,
        checkin: Some(id),
        venue: Some(venue.id.raw()),
        venue_shown: visibility != vicinity_domain::Visibility::Private,
        precision,
        suspended: false,
    };
    let encoded = Change::PresenceSet(located.clone()).encode();
    let prefix = encoded
        .rsplitn(3, ' ')
        .last()
        .map(|rest| format!("{rest} "))
        .ok_or_else(|| StoreError::Corrupt("an encoded change without fields".into()))?;
    let sql = STATEMENT.replace("{claim}", if key.is_some() { CLAIM_KEY } else { NO_KEY });
    let DbConnection::Pg(pg) = conn else {
        return Ok(None);
    };
    let outcome = diesel::sql_query(sql)
        .bind::<BigInt, _>(user.raw())
        .bind::<Nullable<Text>, _>(key.map(|k| k.key.as_str()))
        .bind::<Nullable<Text>, _>(key.map(|k| k.request_hash.as_str()))
        .bind::<Text, _>(&response)
        .bind::<BigInt, _>(received_at)
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(venue.id.raw())
        .bind::<Double, _>(new.location.lat())
        .bind::<Double, _>(new.location.lng())
        .bind::<Nullable<Double>, _>(new.accuracy_m)
        .bind::<Nullable<Text>, _>(new.shout.as_deref())
        .bind::<Text, _>(visibility.as_str())
        .bind::<BigInt, _>(created_at)
        .bind::<BigInt, _>(located.cell)
        .bind::<BigInt, _>(expires_at)
        .bind::<Bool, _>(sets_presence)
        .bind::<Text, _>(prefix)
        .get_result::<Outcome>(pg)
        .map_err(|error| match error {
            // The venue was deleted since it was read.
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                StoreError::NotFound
            }
            other => StoreError::from(other),
        })?;
    if outcome.inserted == 0 {
        // Either the key was taken (a retry, or a concurrent request that won), or the person
        // is gone.
        let Some(key) = key else {
            return Err(StoreError::NotFound);
        };
        let stored: Option<(String, i32, String)> = idempotency_keys::table
            .find((user.raw(), key.key.as_str()))
            .select((
                idempotency_keys::request_hash,
                idempotency_keys::status,
                idempotency_keys::response,
            ))
            .first(conn)
            .optional()?;
        return match stored {
            None => Err(StoreError::NotFound),
            Some((hash, _, _)) if hash != key.request_hash => Err(key_reused()),
            Some((_, status, response)) => Ok(Some((
                Answer::Replay {
                    status: u16::try_from(status).unwrap_or(500),
                    response,
                },
                Vec::new(),
            ))),
        };
    }
    if let (Some(seq), Some(payload)) = (outcome.seq, outcome.payload)
        && let Some(change) = Change::decode(&payload)
    {
        announced(seq, change);
    }
    Ok(Some((
        Answer::Created {
            id: vicinity_domain::CheckInId::from_raw(id),
            response,
        },
        seen,
    )))
}

fn presence_from(located: Located) -> Result<Presence, StoreError> {
    Ok(Presence {
        user_id: UserId::from_raw(located.user),
        location: located.location,
        accuracy_m: located.accuracy_m,
        updated_at: from_micros(located.updated_at)?,
        expires_at: from_micros(located.expires_at)?,
    })
}
