//! The location-access log: who saw a person's presence, through which channel, at what
//! precision, so that a person can check (DESIGN.md §5). Views are counted per subject, viewer,
//! channel and UTC day, with the precision of the latest view.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Text};
use diesel::upsert::excluded;
use tokio::sync::{mpsc, oneshot};
use vicinity_domain::{User, UserId};

use crate::prepared::Prepared;
use crate::presence::NearbyFriend;
use crate::schema::{location_access, users};
use crate::time::{from_micros, to_micros};
use crate::users::{USER_COLUMNS, UserRow};
use crate::{DbConnection, Store, StoreError};

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
    let at = to_micros(now);
    let counted: Vec<Counted> = views.iter().map(|&view| Counted::one(view, at)).collect();
    record_counted(conn, &counted)
}

/// Views of one (subject, viewer, channel, day), counted.
#[derive(Debug, Clone, Copy)]
struct Counted {
    view: View,
    day: i64,
    count: i64,
    last_at: i64,
}

impl Counted {
    /// One view, seen at `at` (µs).
    fn one(view: View, at: i64) -> Self {
        Self {
            view,
            day: at.div_euclid(DAY_MICROS),
            count: 1,
            last_at: at,
        }
    }
}

/// Adds counted views, each (subject, viewer, channel, day) at most once. Views of someone
/// deleted meanwhile are dropped (their rows went with them): the rest are still written.
fn record_counted(conn: &mut DbConnection, counted: &[Counted]) -> Result<(), StoreError> {
    match upsert(conn, counted) {
        Err(StoreError::Database(DieselError::DatabaseError(
            DatabaseErrorKind::ForeignKeyViolation,
            _,
        ))) => {
            let people: Vec<i64> = counted
                .iter()
                .flat_map(|c| [c.view.subject.raw(), c.view.viewer.raw()])
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let mut alive = HashSet::new();
            for chunk in people.chunks(CHUNK) {
                let found: Vec<i64> = users::table
                    .filter(users::id.eq_any(chunk))
                    .select(users::id)
                    .load(conn)?;
                alive.extend(found);
            }
            let kept: Vec<Counted> = counted
                .iter()
                .filter(|c| {
                    alive.contains(&c.view.subject.raw()) && alive.contains(&c.view.viewer.raw())
                })
                .copied()
                .collect();
            upsert(conn, &kept)
        }
        other => other,
    }
}

/// The most rows one SQLite statement carries: seven values each, under SQLite's 32,766.
const CHUNK: usize = 4_000;

/// On PostgreSQL one statement over arrays, whatever the number of rows (a multi-row VALUES
/// stops at 65,535 values, 9,362 rows), planned once per connection. Rows are taken in key
/// order, so two instances upserting the same rows cannot deadlock; the count adds up, and
/// the latest view (by time, across instances) sets when and at what precision.
const UPSERT: &str = "
INSERT INTO location_access (subject_id, viewer_id, via, day, precision, views, last_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[],
                     $6::bigint[], $7::bigint[])
    AS i(subject_id, viewer_id, via, day, precision, views, last_at)
ORDER BY subject_id, viewer_id, via, day
ON CONFLICT (subject_id, viewer_id, via, day) DO UPDATE SET
    views = location_access.views + EXCLUDED.views,
    precision = CASE WHEN EXCLUDED.last_at >= location_access.last_at
                     THEN EXCLUDED.precision ELSE location_access.precision END,
    last_at = GREATEST(location_access.last_at, EXCLUDED.last_at)";

fn upsert(conn: &mut DbConnection, counted: &[Counted]) -> Result<(), StoreError> {
    if counted.is_empty() {
        return Ok(());
    }
    match conn {
        DbConnection::Pg(pg) => {
            let column = |f: fn(&Counted) -> i64| counted.iter().map(f).collect::<Vec<i64>>();
            let text = |f: fn(&Counted) -> &'static str| {
                counted.iter().map(f).collect::<Vec<&'static str>>()
            };
            Prepared::new(UPSERT)
                .bind::<Array<BigInt>, _>(column(|c| c.view.subject.raw()))
                .bind::<Array<BigInt>, _>(column(|c| c.view.viewer.raw()))
                .bind::<Array<Text>, _>(text(|c| c.view.via.as_str()))
                .bind::<Array<BigInt>, _>(column(|c| c.day))
                .bind::<Array<Text>, _>(text(|c| c.view.precision))
                .bind::<Array<BigInt>, _>(column(|c| c.count))
                .bind::<Array<BigInt>, _>(column(|c| c.last_at))
                .execute(pg)?;
        }
        DbConnection::Sqlite(sqlite) => {
            // One process writes a SQLite database, and its batches come in time order, so
            // the latest batch holds the latest view.
            let update = (
                location_access::views
                    .eq(location_access::views + excluded(location_access::views)),
                location_access::last_at.eq(excluded(location_access::last_at)),
                location_access::precision.eq(excluded(location_access::precision)),
            );
            sqlite.transaction::<_, DieselError, _>(|sqlite| {
                for chunk in counted.chunks(CHUNK) {
                    let rows: Vec<_> = chunk
                        .iter()
                        .map(|c| {
                            (
                                location_access::subject_id.eq(c.view.subject.raw()),
                                location_access::viewer_id.eq(c.view.viewer.raw()),
                                location_access::via.eq(c.view.via.as_str()),
                                location_access::day.eq(c.day),
                                location_access::precision.eq(c.view.precision),
                                location_access::views.eq(c.count),
                                location_access::last_at.eq(c.last_at),
                            )
                        })
                        .collect();
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
                        .execute(sqlite)?;
                }
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// The views of an answer that shows `friends` to `viewer` through nearby.
pub fn nearby_views(viewer: UserId, friends: &[NearbyFriend]) -> Vec<View> {
    friends
        .iter()
        .map(|friend| View {
            subject: friend.user.id,
            viewer,
            via: Via::Nearby,
            precision: friend.precision.as_str(),
        })
        .collect()
}

/// Records that `viewer` saw each of `friends` through nearby.
pub fn record_nearby(
    conn: &mut DbConnection,
    viewer: UserId,
    friends: &[NearbyFriend],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    record(conn, &nearby_views(viewer, friends), now)
}

/// What the writer is asked to do: record one answer's views, or say when everything asked
/// before is committed.
enum Job {
    Views { views: Vec<View>, at: i64 },
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The most answers one batch gathers.
const BATCH: usize = 4096;

/// The most rows kept for another try while the database refuses them (the newest are kept).
const UNSAVED_KEPT: usize = 100_000;

/// Waiting rows beyond this are written at once, news or not.
const WAITING_MOST: usize = 20_000;

/// The most rows remembered as committed; beyond it the memory starts again (a forgotten row
/// is only written sooner).
const COMMITTED_KEPT: usize = 200_000;

/// How long the writer gathers views before it commits the news among them, unless a flush
/// is asked for.
const LINGER: Duration = Duration::from_millis(50);

/// How long repeats may wait: views that only add to a committed row's count and time.
const REPEAT_LINGER: Duration = Duration::from_secs(1);

/// Commits the views of many answers together. An answer does not wait for its views: they
/// are queued, and the writer commits them in batches. Waiting cost an answer that showed
/// anyone a commit (a fifth of all answers in the benchmark, and most of their latency).
///
/// News (someone saw a person for the first time that day, or at another precision) is
/// committed within [`LINGER`]. A repeat, which only adds to a committed row's count and
/// time, waits up to [`REPEAT_LINGER`] and is merged with the repeats after it: a person who
/// checks who is nearby every few seconds would otherwise cost an update of the same row in
/// every batch (in the nearby benchmark, 5,000 viewers asking about nine times a second,
/// that was a tenth of the machine). The price: a crash loses the news of its last
/// [`LINGER`] and the counts of its last [`REPEAT_LINGER`] (a graceful stop flushes them).
/// A batch the database refuses is tried again with the next, up to [`UNSAVED_KEPT`] rows.
/// Reads of the log call [`Recorder::flush`] first, so a person always sees the views this
/// instance has answered.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<Job>,
}

impl Recorder {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        Self::with_lingers(store, LINGER, REPEAT_LINGER)
    }

    /// [`Recorder::start`] with other waits for news and for repeats.
    pub fn with_lingers(store: Store, linger: Duration, repeat_linger: Duration) -> Self {
        let (queue, incoming) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(write_views(store, incoming, linger, repeat_linger));
        Self { queue }
    }

    /// Queues `views` seen at `now` for the next batch.
    pub fn record(&self, views: Vec<View>, now: DateTime<Utc>) -> Result<(), StoreError> {
        if views.is_empty() {
            return Ok(());
        }
        self.queue
            .send(Job::Views {
                views,
                at: to_micros(now),
            })
            .map_err(|_| stopped())
    }

    /// Returns once every view queued before the call is committed (or failed to be).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        self.queue.send(Job::Flush(done)).map_err(|_| stopped())?;
        committed
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Unavailable)
    }
}

/// A row of the log: subject, viewer, channel, day.
type Key = (i64, i64, &'static str, i64);

fn key_of(counted: &Counted) -> Key {
    (
        counted.view.subject.raw(),
        counted.view.viewer.raw(),
        counted.view.via.as_str(),
        counted.day,
    )
}

/// The writer's books: what waits, and what it knows is committed.
#[derive(Default)]
struct Ledger {
    waiting: HashMap<Key, Counted>,
    /// The waiting rows that are news: not committed, or committed at another precision.
    news: HashSet<Key>,
    /// Rows this writer committed, with the precision it committed.
    committed: HashMap<Key, &'static str>,
    /// Since when repeats have waited.
    since: Option<tokio::time::Instant>,
    /// The day `committed` was last trimmed on.
    today: i64,
}

impl Ledger {
    /// Adds the views of `jobs` to what waits, one row per key.
    fn take(&mut self, jobs: &[Job]) {
        for job in jobs {
            let Job::Views { views, at } = job else {
                continue;
            };
            for &view in views {
                self.wait(Counted::one(view, *at));
            }
        }
    }

    /// Merges `row` into what waits, and notes whether the merged row is news.
    fn wait(&mut self, row: Counted) {
        let key = key_of(&row);
        let merged = self
            .waiting
            .entry(key)
            .and_modify(|c| {
                c.count += row.count;
                if row.last_at >= c.last_at {
                    c.last_at = row.last_at;
                    c.view = row.view;
                }
            })
            .or_insert(row);
        if self.committed.get(&key) != Some(&merged.view.precision) {
            self.news.insert(key);
        }
    }

    /// The rows to write now: all of them when `everything`, else the news.
    fn due(&mut self, everything: bool) -> Vec<Counted> {
        if everything {
            self.news.clear();
            return self.waiting.drain().map(|(_, row)| row).collect();
        }
        self.news
            .drain()
            .filter_map(|key| self.waiting.remove(&key))
            .collect()
    }

    /// Notes how writing `rows` went; refused rows wait again.
    fn settle(&mut self, rows: Vec<Counted>, written: bool, now: tokio::time::Instant) {
        if written {
            if self.committed.len() + rows.len() > COMMITTED_KEPT {
                self.committed.clear();
            }
            // Rows of days before yesterday get no more views; forget them once a day.
            let today = to_micros(Utc::now()).div_euclid(DAY_MICROS);
            if today != self.today {
                self.committed.retain(|key, _| key.3 >= today - 1);
                self.today = today;
            }
            for row in rows {
                self.committed.insert(key_of(&row), row.view.precision);
            }
        } else {
            for row in rows {
                self.wait(row);
            }
            if self.waiting.len() > UNSAVED_KEPT {
                let mut rows: Vec<Counted> = self.waiting.drain().map(|(_, row)| row).collect();
                self.news.clear();
                tracing::error!(
                    dropped = rows.len() - UNSAVED_KEPT,
                    "access-log views were lost: the database refused them too long"
                );
                rows.sort_by_key(|c| std::cmp::Reverse(c.last_at));
                rows.truncate(UNSAVED_KEPT);
                self.waiting = rows.into_iter().map(|row| (key_of(&row), row)).collect();
            }
        }
        // After a refusal everything waits a full repeat linger: a database that is down is
        // not asked again at once.
        self.since = match (self.waiting.is_empty(), self.since) {
            (true, _) => None,
            (false, Some(since)) if written => Some(since),
            (false, _) => Some(now),
        };
    }
}

/// What woke the writer.
enum Woken {
    Job(Job),
    /// Repeats have waited long enough.
    Timer,
    /// Every [`Recorder`] is gone.
    Closed,
}

/// The writer task: gathers views, and commits the news after `linger` and everything once
/// repeats have waited `repeat_linger`, a flush is asked for, or the queue closes.
async fn write_views(
    store: Store,
    mut incoming: mpsc::UnboundedReceiver<Job>,
    linger: Duration,
    repeat_linger: Duration,
) {
    let mut ledger = Ledger::default();
    loop {
        let woken = match ledger.since {
            None => incoming.recv().await.map_or(Woken::Closed, Woken::Job),
            Some(since) => {
                match tokio::time::timeout_at(since + repeat_linger, incoming.recv()).await {
                    Ok(Some(job)) => Woken::Job(job),
                    Ok(None) => Woken::Closed,
                    Err(_elapsed) => Woken::Timer,
                }
            }
        };
        let closed = matches!(woken, Woken::Closed);
        let mut jobs = Vec::new();
        if let Woken::Job(first) = woken {
            jobs.push(first);
            let deadline = tokio::time::Instant::now() + linger;
            while jobs.len() < BATCH && !matches!(jobs.last(), Some(Job::Flush(_))) {
                match tokio::time::timeout_at(deadline, incoming.recv()).await {
                    Ok(Some(job)) => jobs.push(job),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        ledger.take(&jobs);
        let now = tokio::time::Instant::now();
        let everything = closed
            || jobs.iter().any(|job| matches!(job, Job::Flush(_)))
            || ledger.waiting.len() >= WAITING_MOST
            || ledger
                .since
                .is_some_and(|since| now >= since + repeat_linger);
        let rows = Arc::new(ledger.due(everything));
        let outcome = if rows.is_empty() {
            Ok(())
        } else {
            let batch = Arc::clone(&rows);
            store
                .run(move |conn| record_counted(conn, &batch))
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(error) = &outcome {
            tracing::warn!(%error, rows = rows.len(), "access-log views wait for the database");
        }
        ledger.settle(Arc::unwrap_or_clone(rows), outcome.is_ok(), now);
        for job in jobs {
            if let Job::Flush(done) = job {
                let _ = done.send(outcome.clone());
            }
        }
        if closed {
            return;
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the access-log writer has stopped".into())
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

/// [`entries`] as the endpoint reads them: the views this instance has answered but not yet
/// committed are committed first, so a person always sees every view it answered.
pub async fn entries_now(
    store: &Store,
    recorder: &Recorder,
    subject: UserId,
    after: Option<(i64, i64)>,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    recorder.flush().await?;
    store
        .run(move |conn| entries(conn, subject, after, limit))
        .await
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
