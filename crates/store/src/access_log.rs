//! The location-access log: who saw a person's presence, through which channel, at what
//! precision, so that a person can check (DESIGN.md §5). Views are counted per subject, viewer,
//! channel and UTC day, with the precision of the latest view.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use tokio::sync::{mpsc, oneshot};
use vicinity_domain::{User, UserId};

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
    let counted: Vec<Counted> = views
        .iter()
        .map(|&view| Counted {
            view,
            day: at.div_euclid(DAY_MICROS),
            count: 1,
            last_at: at,
        })
        .collect();
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

/// Adds counted views in one upsert; each (subject, viewer, channel, day) at most once.
fn record_counted(conn: &mut DbConnection, counted: &[Counted]) -> Result<(), StoreError> {
    if counted.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = counted
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
    let update = (
        location_access::views.eq(location_access::views + excluded(location_access::views)),
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

/// The most answers one batch commits.
const BATCH: usize = 4096;

/// The most rows kept for another try while the database refuses them (the newest are kept).
const UNSAVED_KEPT: usize = 100_000;

/// How long the writer gathers views before it commits them, unless a flush is asked for.
const LINGER: Duration = Duration::from_millis(50);

/// Commits the views of many answers together. An answer does not wait for its views: they
/// are queued, and the writer commits what came in during each [`LINGER`] in one statement
/// and one commit. Waiting cost an answer that showed anyone a commit (a fifth of all answers
/// in the benchmark, and most of their latency), and committing each batch as soon as the last
/// was done cost PostgreSQL hundreds of commits a second. The price: a crash loses the views
/// of its last [`LINGER`] (a graceful stop flushes them). A batch the database refuses is
/// tried again with the next, up to [`UNSAVED_KEPT`] rows. Reads of the log call
/// [`Recorder::flush`] first, so a person always sees the views this instance has answered.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::UnboundedSender<Job>,
}

impl Recorder {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        let (queue, mut incoming) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            // Rows a failed batch could not write, tried again with the next.
            let mut unsaved: Vec<Counted> = Vec::new();
            while let Some(first) = incoming.recv().await {
                let mut jobs = vec![first];
                let deadline = tokio::time::Instant::now() + LINGER;
                while jobs.len() < BATCH && !matches!(jobs.last(), Some(Job::Flush(_))) {
                    match tokio::time::timeout_at(deadline, incoming.recv()).await {
                        Ok(Some(job)) => jobs.push(job),
                        Ok(None) | Err(_) => break,
                    }
                }
                let counted = Arc::new(merge(std::mem::take(&mut unsaved), &jobs));
                let outcome = if counted.is_empty() {
                    Ok(())
                } else {
                    let rows = Arc::clone(&counted);
                    store
                        .run(move |conn| record_counted(conn, &rows))
                        .await
                        .map_err(|e| e.to_string())
                };
                if let Err(error) = &outcome {
                    unsaved = Arc::unwrap_or_clone(counted);
                    if unsaved.len() > UNSAVED_KEPT {
                        tracing::error!(
                            %error,
                            dropped = unsaved.len() - UNSAVED_KEPT,
                            "access-log views were lost: the database refused them too long"
                        );
                        unsaved.sort_by_key(|c| std::cmp::Reverse(c.last_at));
                        unsaved.truncate(UNSAVED_KEPT);
                    } else {
                        tracing::warn!(%error, rows = unsaved.len(), "access-log views wait for the database");
                    }
                }
                for job in jobs {
                    if let Job::Flush(done) = job {
                        let _ = done.send(outcome.clone());
                    }
                }
            }
        });
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

fn stopped() -> StoreError {
    StoreError::Unavailable("the access-log writer has stopped".into())
}

/// One counted row per (subject, viewer, channel, day) of a batch, with the latest precision.
fn merge(unsaved: Vec<Counted>, jobs: &[Job]) -> Vec<Counted> {
    let mut rows: HashMap<(i64, i64, &'static str, i64), Counted> = HashMap::new();
    for row in unsaved {
        let key = (
            row.view.subject.raw(),
            row.view.viewer.raw(),
            row.view.via.as_str(),
            row.day,
        );
        rows.insert(key, row);
    }
    for job in jobs {
        let Job::Views { views, at } = job else {
            continue;
        };
        let at = *at;
        let day = at.div_euclid(DAY_MICROS);
        for &view in views {
            let key = (
                view.subject.raw(),
                view.viewer.raw(),
                view.via.as_str(),
                day,
            );
            rows.entry(key)
                .and_modify(|c| {
                    c.count += 1;
                    if at >= c.last_at {
                        c.last_at = at;
                        c.view = view;
                    }
                })
                .or_insert(Counted {
                    view,
                    day,
                    count: 1,
                    last_at: at,
                });
        }
    }
    rows.into_values().collect()
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
