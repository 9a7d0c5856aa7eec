//! Check-ins on PostgreSQL, decided by the read model and written together.
//!
//! [`crate::checkins::create_once`] is a transaction of a dozen round trips (claim the key,
//! read the venue, the person and their presence, insert, upsert the presence, announce,
//! compute nearby friends, store the answer, commit). Here the read model decides everything it
//! can beforehand ([`decide`]: the venue, the person, the plausibility checks, the friends
//! nearby and so the whole answer). What is left is one statement that claims the key with
//! that answer, inserts the check-in, moves the presence and appends the change. The
//! [`Writer`] runs that statement for every check-in waiting at the time in one go: one
//! statement, one plan, one commit for all of them, so the database's per-statement and
//! per-commit costs are shared. It answers exactly as `create_once` does; when the model is not
//! ready, or on SQLite, the caller uses that instead.
//!
//! What the statement still checks itself: that the person exists unsuspended (and holds
//! their row `FOR SHARE`, so the sharing level copied into the change is the committed one),
//! the idempotency key (a concurrent request with the same key waits, then finds it taken and
//! replays), and the venue (its foreign key: deleted meanwhile means 404).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text};
use tokio::sync::{mpsc, oneshot};
use vicinity_domain::{PrecisionLevel, UserId};
use vicinity_geo::storage_cell;

use crate::access_log::{View, nearby_views};
use crate::checkins::{Answer, IdempotencyKey, Listed, NewCheckIn, key_reused, plausible};
use crate::events::{Change, announced};
use crate::hot::{Attempt, Hot, Located};
use crate::prepared::Prepared;
use crate::presence::{Nearby, NearbyFriend, Presence, PresenceRules};
use crate::schema::idempotency_keys;
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, Store, StoreError, new_key};

/// One check-in, with `{claim}` standing for how the key is claimed. [`TOGETHER`] would write
/// a lone check-in too, but its arrays, joins and CTE scans cost a lone check-in about a fifth
/// of its throughput (one connection, four interleaved runs each: 19.0 % of pgbench against
/// 23.7 % with this statement), and a check-in is alone whenever the load is light.
const ALONE: &str = "
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
SELECT $6 AS id,
       EXISTS (SELECT FROM ins) AS inserted,
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

/// [`ALONE`] with a key to claim, and without; each is prepared once per connection.
static ALONE_WITH_KEY: LazyLock<String> = LazyLock::new(|| ALONE.replace("{claim}", CLAIM_KEY));
static ALONE_WITHOUT_KEY: LazyLock<String> = LazyLock::new(|| ALONE.replace("{claim}", NO_KEY));

/// Check-ins of distinct people, as [`ALONE`] does each, with its parameters as arrays (one
/// element per check-in) and a row per check-in in the answer. People are locked in id order,
/// so two batches (from two instances) cannot deadlock on them.
const TOGETHER: &str = "
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                         $6::bigint[], $7::bigint[], $8::float8[], $9::float8[], $10::float8[],
                         $11::text[], $12::text[], $13::bigint[], $14::bigint[], $15::bigint[],
                         $16::bool[], $17::text[])
        AS i(user_id, key, request_hash, response, received_at, id, venue_id, lat, lng,
             accuracy_m, shout, visibility, created_at, cell, expires_at, sets_presence,
             prefix)
), person AS (
    SELECT id, location_precision FROM users
    WHERE id IN (SELECT user_id FROM input) AND suspended_at IS NULL
    ORDER BY id
    FOR SHARE
), claim AS (
    INSERT INTO idempotency_keys (user_id, key, request_hash, status, response, created_at)
    SELECT i.user_id, i.key, i.request_hash, 201, i.response, i.received_at
    FROM input i JOIN person ON person.id = i.user_id
    WHERE i.key IS NOT NULL
    ORDER BY i.user_id
    ON CONFLICT DO NOTHING
    RETURNING user_id
), chosen AS (
    SELECT i.* FROM input i JOIN person ON person.id = i.user_id
    WHERE i.key IS NULL OR i.user_id IN (SELECT user_id FROM claim)
), ins AS (
    INSERT INTO checkins (id, user_id, venue_id, lat, lng, accuracy_m, shout, visibility,
                          created_at, received_at)
    SELECT id, user_id, venue_id, lat, lng, accuracy_m, shout, visibility, created_at,
           received_at
    FROM chosen
    RETURNING id
), pres AS (
    INSERT INTO presence (user_id, lat, lng, accuracy_m, cell, venue_id, checkin_id,
                          updated_at, expires_at)
    SELECT user_id, lat, lng, accuracy_m, cell, venue_id, id, created_at, expires_at
    FROM chosen WHERE sets_presence
    ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE SET
        lat = EXCLUDED.lat, lng = EXCLUDED.lng, accuracy_m = EXCLUDED.accuracy_m,
        cell = EXCLUDED.cell, venue_id = EXCLUDED.venue_id, checkin_id = EXCLUDED.checkin_id,
        updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at
    RETURNING user_id
), feed AS (
    INSERT INTO changes (payload, created_at, subject)
    SELECT chosen.prefix || person.location_precision || ' 0', chosen.received_at,
           chosen.user_id
    FROM chosen
    JOIN pres ON pres.user_id = chosen.user_id
    JOIN person ON person.id = chosen.user_id
    RETURNING seq, payload, subject
)
SELECT input.id,
       input.id IN (SELECT id FROM ins) AS inserted,
       feed.seq,
       feed.payload
FROM input LEFT JOIN feed ON feed.subject = input.user_id";

/// The friends a check-in's answer showed, for their access logs.
pub type Seen = Vec<View>;

/// A check-in the read model has decided in full (checks passed, answer rendered): what is
/// left is to write it, alone or with others ([`write`]).
pub struct Decided {
    user: i64,
    key: Option<IdempotencyKey>,
    response: String,
    seen: Seen,
    id: i64,
    venue: i64,
    lat: f64,
    lng: f64,
    accuracy_m: Option<f64>,
    shout: Option<String>,
    visibility: &'static str,
    created_at: i64,
    received_at: i64,
    cell: i64,
    expires_at: i64,
    sets_presence: bool,
    /// The change row's payload up to the owner's sharing level, which the statement reads.
    prefix: String,
}

/// Decides a check-in as [`crate::checkins::create_once`] would, from the read model, reading
/// through `conn` what it has not cached. `Ok(None)` when this path does not apply (SQLite, or
/// the model is not ready) and the caller must use `create_once`. With no connection the
/// decision comes from memory alone, and `Ok(None)` may also mean that something must be read
/// first: try again with one. Most check-ins are by people the model knows, at venues it knows,
/// and are decided without waiting for a thread and a connection. `respond` renders the answer
/// from the check-in and the friends nearby. A refusal (`too_far_from_venue`,
/// `impossible_travel`, a missing venue) is an error.
#[expect(clippy::too_many_arguments, reason = "a check-in's parameters")]
pub fn decide(
    conn: Option<&mut DbConnection>,
    hot: &Hot,
    user: UserId,
    new: &NewCheckIn,
    key: Option<IdempotencyKey>,
    rules: PresenceRules,
    now: DateTime<Utc>,
    radius_m: f64,
    cap: PrecisionLevel,
    respond: impl FnOnce(Listed, Vec<NearbyFriend>) -> Result<String, StoreError>,
) -> Result<Option<Decided>, StoreError> {
    let reads = match conn {
        None => Reads::CacheOnly,
        Some(conn) => match conn {
            DbConnection::Pg(_) => Reads::Database(conn),
            DbConnection::Sqlite(_) => return Ok(None),
        },
    };
    Ok(
        match decide_with(
            reads, hot, user, new, key, rules, now, radius_m, cap, respond,
        )? {
            Decision::Decided(decided) => Some(*decided),
            Decision::NotHere | Decision::NeedsDatabase => None,
        },
    )
}

/// Where a decision finds what the read model has not cached.
enum Reads<'c> {
    Database(&'c mut DbConnection),
    /// Nowhere: the decision is left for a connection.
    CacheOnly,
}

enum Decision {
    Decided(Box<Decided>),
    /// The read model cannot decide (not ready): `create_once` does.
    NotHere,
    /// Something is not cached and there is no connection to read it.
    NeedsDatabase,
}

#[expect(clippy::too_many_arguments, reason = "a check-in's parameters")]
fn decide_with(
    mut reads: Reads<'_>,
    hot: &Hot,
    user: UserId,
    new: &NewCheckIn,
    key: Option<IdempotencyKey>,
    rules: PresenceRules,
    now: DateTime<Utc>,
    radius_m: f64,
    cap: PrecisionLevel,
    respond: impl FnOnce(Listed, Vec<NearbyFriend>) -> Result<String, StoreError>,
) -> Result<Decision, StoreError> {
    if !hot.is_ready() {
        return Ok(Decision::NotHere);
    }
    let (venue, person) = match &mut reads {
        Reads::Database(conn) => (hot.venue(conn, new.venue_id)?, hot.user(conn, user)?),
        Reads::CacheOnly => match (hot.cached_venue(new.venue_id), hot.cached_user(user)) {
            (Some(venue), Some(person)) => (venue, person),
            _ => return Ok(Decision::NeedsDatabase),
        },
    };
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
    // The level friends are seen at; the presence itself keeps the person's own.
    let seen_at = precision.coarser(cap);
    let nearby = match origin {
        _ if precision == PrecisionLevel::Off => Nearby::SharingOff,
        None => Nearby::NoPresence,
        Some(origin) => match &mut reads {
            Reads::Database(conn) => {
                match hot.nearby_at(conn, user, origin, seen_at, radius_m, now)? {
                    Some(nearby) => nearby,
                    None => return Ok(Decision::NotHere),
                }
            }
            Reads::CacheOnly => match hot.try_nearby_at(user, origin, seen_at, radius_m, now) {
                Attempt::Answer(nearby) => nearby,
                Attempt::Needs(_) => return Ok(Decision::NeedsDatabase),
                Attempt::Unavailable => return Ok(Decision::NotHere),
            },
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
    Ok(Decision::Decided(Box::new(Decided {
        user: user.raw(),
        key,
        response,
        seen,
        id,
        venue: venue.id.raw(),
        lat: new.location.lat(),
        lng: new.location.lng(),
        accuracy_m: new.accuracy_m,
        shout: new.shout.clone(),
        visibility: visibility.as_str(),
        created_at,
        received_at,
        cell: located.cell,
        expires_at,
        sets_presence,
        prefix,
    })))
}

/// What the statement did for one check-in.
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Bool)]
    inserted: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    payload: Option<String>,
}

/// How [`write`] went.
pub struct Outcomes {
    /// Each check-in's answer, in the order given.
    pub answers: Vec<Result<(Answer, Seen), StoreError>>,
    /// Whether they were written in one statement: `false` for a check-in alone, and when
    /// the statement for all failed and each was written on its own.
    pub together: bool,
}

/// Writes decided check-ins, each person at most once (an upsert cannot touch a row twice),
/// and settles each: created, a replay of the first answer under its key, or an error. More
/// than one is written in one statement and one commit; should that statement fail (a venue
/// deleted meanwhile fails the whole of it), each is written on its own, so one check-in's
/// failure is its own.
pub fn write(conn: &mut DbConnection, decided: Vec<Decided>) -> Outcomes {
    let batched = match decided.len() {
        0 | 1 => None,
        _ => match write_together(conn, &decided) {
            Ok(rows) => Some(rows),
            Err(error) => {
                tracing::debug!(%error, count = decided.len(), "check-ins written one by one");
                None
            }
        },
    };
    let together = batched.is_some();
    let answers = match batched {
        Some(rows) => decided
            .into_iter()
            .zip(rows)
            .map(|(one, row)| settle(conn, one, row))
            .collect(),
        None => decided
            .into_iter()
            .map(|one| {
                let row = write_alone(conn, &one)?;
                settle(conn, one, row)
            })
            .collect(),
    };
    Outcomes { answers, together }
}

/// One check-in in one statement.
fn write_alone(conn: &mut DbConnection, one: &Decided) -> Result<Row, StoreError> {
    let DbConnection::Pg(pg) = conn else {
        return Err(StoreError::Unavailable(
            "a decided check-in needs PostgreSQL".into(),
        ));
    };
    let sql: &'static str = if one.key.is_some() {
        &ALONE_WITH_KEY
    } else {
        &ALONE_WITHOUT_KEY
    };
    Prepared::new(sql)
        .bind::<BigInt, _>(one.user)
        .bind::<Nullable<Text>, _>(one.key.as_ref().map(|k| k.key.as_str()))
        .bind::<Nullable<Text>, _>(one.key.as_ref().map(|k| k.request_hash.as_str()))
        .bind::<Text, _>(one.response.as_str())
        .bind::<BigInt, _>(one.received_at)
        .bind::<BigInt, _>(one.id)
        .bind::<BigInt, _>(one.venue)
        .bind::<Double, _>(one.lat)
        .bind::<Double, _>(one.lng)
        .bind::<Nullable<Double>, _>(one.accuracy_m)
        .bind::<Nullable<Text>, _>(one.shout.as_deref())
        .bind::<Text, _>(one.visibility)
        .bind::<BigInt, _>(one.created_at)
        .bind::<BigInt, _>(one.cell)
        .bind::<BigInt, _>(one.expires_at)
        .bind::<Bool, _>(one.sets_presence)
        .bind::<Text, _>(one.prefix.as_str())
        .get_result::<Row>(pg)
        .map_err(venue_gone)
}

/// Several check-ins (distinct people) in one statement, in the order given.
fn write_together(conn: &mut DbConnection, all: &[Decided]) -> Result<Vec<Row>, StoreError> {
    let DbConnection::Pg(pg) = conn else {
        return Err(StoreError::Unavailable(
            "decided check-ins need PostgreSQL".into(),
        ));
    };
    let column = |f: fn(&Decided) -> i64| all.iter().map(f).collect::<Vec<i64>>();
    let mut written: HashMap<i64, Row> = Prepared::new(TOGETHER)
        .bind::<Array<BigInt>, _>(column(|d| d.user))
        .bind::<Array<Nullable<Text>>, _>(
            all.iter()
                .map(|d| d.key.as_ref().map(|k| k.key.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            all.iter()
                .map(|d| d.key.as_ref().map(|k| k.request_hash.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(all.iter().map(|d| d.response.as_str()).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(column(|d| d.received_at))
        .bind::<Array<BigInt>, _>(column(|d| d.id))
        .bind::<Array<BigInt>, _>(column(|d| d.venue))
        .bind::<Array<Double>, _>(all.iter().map(|d| d.lat).collect::<Vec<_>>())
        .bind::<Array<Double>, _>(all.iter().map(|d| d.lng).collect::<Vec<_>>())
        .bind::<Array<Nullable<Double>>, _>(all.iter().map(|d| d.accuracy_m).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            all.iter().map(|d| d.shout.as_deref()).collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(all.iter().map(|d| d.visibility).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(column(|d| d.created_at))
        .bind::<Array<BigInt>, _>(column(|d| d.cell))
        .bind::<Array<BigInt>, _>(column(|d| d.expires_at))
        .bind::<Array<Bool>, _>(all.iter().map(|d| d.sets_presence).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(all.iter().map(|d| d.prefix.as_str()).collect::<Vec<_>>())
        .load::<Row>(pg)
        .map_err(venue_gone)?
        .into_iter()
        .map(|w| (w.id, w))
        .collect();
    all.iter()
        .map(|d| {
            written.remove(&d.id).ok_or_else(|| {
                StoreError::Corrupt("the check-in statement lost a row of its input".into())
            })
        })
        .collect()
}

fn venue_gone(error: DieselError) -> StoreError {
    match error {
        // The venue was deleted since it was read.
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            StoreError::NotFound
        }
        other => StoreError::from(other),
    }
}

/// The answer for a written check-in; one not inserted lost its key to an earlier request (a
/// retry replays that one's answer) or has no person any more.
fn settle(
    conn: &mut DbConnection,
    one: Decided,
    written: Row,
) -> Result<(Answer, Seen), StoreError> {
    if !written.inserted {
        let Some(key) = one.key else {
            return Err(StoreError::NotFound);
        };
        let stored: Option<(String, i32, String)> = idempotency_keys::table
            .find((one.user, key.key.as_str()))
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
            Some((_, status, response)) => Ok((
                Answer::Replay {
                    status: u16::try_from(status).unwrap_or(500),
                    response,
                },
                Vec::new(),
            )),
        };
    }
    if let (Some(seq), Some(payload)) = (written.seq, written.payload)
        && let Some(change) = Change::decode(&payload)
    {
        announced(seq, change);
    }
    Ok((
        Answer::Created {
            id: vicinity_domain::CheckInId::from_raw(one.id),
            response: one.response,
        },
        one.seen,
    ))
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

/// The most check-ins one statement writes.
const BATCH: usize = 64;

/// How many statements may run at once. While one waits for its commit to reach the disk
/// another can run: with one at a time, the commits' waits added up and left the database
/// idle in between.
const LANES: usize = 2;

type Reply = oneshot::Sender<Result<(Answer, Seen), StoreError>>;

type Job = (Decided, Reply);

/// Writes decided check-ins in batches: whatever queued while the statements ran goes into
/// the next. No check-in waits for company: with nothing else queued it is written alone at
/// once, so a lone check-in does not wait, and under load the batches grow by
/// themselves. Up to [`LANES`] statements run at once; a person is in at most one of them,
/// so their check-ins are written one after another, in the order they came.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime; it ends when the last clone of
    /// the writer is dropped and every check-in given to it is written.
    pub fn start(store: Store) -> Self {
        let (queue, incoming) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(dispatch(store, incoming));
        Self { queue }
    }

    /// Writes `decided` with whatever else is waiting, and answers for it.
    pub async fn write(&self, decided: Decided) -> Result<(Answer, Seen), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((decided, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Hands batches to up to [`LANES`] statements, each of people not in another running one.
async fn dispatch(store: Store, mut incoming: mpsc::UnboundedReceiver<Job>) {
    let (finished, mut lanes_done) = mpsc::unbounded_channel::<Vec<i64>>();
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut writing: HashSet<i64> = HashSet::new();
    let mut running = 0;
    let mut open = true;
    loop {
        while running < LANES {
            let batch = next_batch(&mut waiting, &writing);
            if batch.is_empty() {
                break;
            }
            let people: Vec<i64> = batch.iter().map(|(d, _)| d.user).collect();
            writing.extend(&people);
            running += 1;
            let (store, finished) = (store.clone(), finished.clone());
            tokio::spawn(async move {
                write_and_reply(&store, batch).await;
                // The dispatcher outlives its lanes.
                let _ = finished.send(people);
            });
        }
        if !open && running == 0 && waiting.is_empty() {
            return;
        }
        tokio::select! {
            job = incoming.recv(), if open => match job {
                Some(job) => {
                    waiting.push_back(job);
                    while let Ok(job) = incoming.try_recv() {
                        waiting.push_back(job);
                    }
                }
                None => open = false,
            },
            Some(people) = lanes_done.recv() => {
                running -= 1;
                for person in people {
                    writing.remove(&person);
                }
            }
        }
    }
}

/// Writes one batch and sends each check-in's answer to its request.
async fn write_and_reply(store: &Store, batch: Vec<Job>) {
    let (decided, replies): (Vec<Decided>, Vec<Reply>) = batch.into_iter().unzip();
    match store.run(move |conn| Ok(write(conn, decided))).await {
        Ok(outcomes) => {
            for (reply, answer) in replies.into_iter().zip(outcomes.answers) {
                // The request may have gone; its check-in stands.
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            let message = match error {
                StoreError::Unavailable(message) => message,
                other => other.to_string(),
            };
            for reply in replies {
                let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the check-in writer has stopped".into())
}

/// Takes the next batch from `waiting`: up to [`BATCH`], oldest first, at most one per person
/// and none of the people being `written` now; the rest keep their order for later batches.
fn next_batch(waiting: &mut VecDeque<Job>, written: &HashSet<i64>) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut people = HashSet::new();
    let mut later = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        let user = job.0.user;
        if batch.len() < BATCH && !written.contains(&user) && people.insert(user) {
            batch.push(job);
        } else {
            later.push_back(job);
        }
    }
    *waiting = later;
    batch
}
