//! Changes that the in-memory read model ([`crate::hot`]) must hear about, on every instance
//! that shares a database.
//!
//! A repository function that changes presence, a profile, a friendship, a token family or a
//! venue calls [`announce`] inside its transaction. On PostgreSQL that appends a row to the
//! `changes` table, visible to everyone once the transaction commits (never for a rolled-back
//! one), and each instance's follower thread polls for new rows and applies them. The instance
//! that made the change also applies it locally as soon as [`crate::Store::run`]'s work
//! returns, so a person reads their own writes at once on any backend (SQLite has only the
//! local path: one process).
//!
//! Why a table and not LISTEN/NOTIFY: PostgreSQL serializes the commits of transactions that
//! notify on one global lock, which capped check-ins (see the migration that adds the table).
//!
//! Sequence numbers are taken before commit, so rows become visible out of order: the follower
//! remembers the numbers it skipped and looks for them again for [`GAP_PATIENCE`]. Changes of
//! one person are still applied in commit order, because each is appended after the statement
//! that locks that person's row, so a later change of theirs cannot take an earlier number.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use vicinity_domain::PrecisionLevel;
use vicinity_geo::Point;

use crate::connection::Census;
use crate::hot::{Hot, Located};
use crate::{DbConnection, StoreError};

use crate::schema::changes;
use crate::time::to_micros;

/// How often the follower polls while changes keep coming, and at most when they do not:
/// about the longest another instance answers from the state before a change.
const POLL: Duration = Duration::from_millis(5);
const IDLE_POLL: Duration = Duration::from_millis(40);

/// A jump in sequence numbers larger than this is not gaps in flight but rows long deleted.
const MAX_GAPS: i64 = 100_000;

/// How long a skipped sequence number may still turn up (its transaction was in flight);
/// after that it is taken for a rollback.
const GAP_PATIENCE: Duration = Duration::from_secs(10);

/// How far back a (re)started follower replays, so that changes in flight while it loaded
/// are not missed: re-applying one that the load already saw is harmless, since every change
/// states a result and one person's changes replay in order.
const REPLAY_MICROS: i64 = 10_000_000;

/// Rows read per poll.
const POLL_ROWS: i64 = 10_000;

/// One change, as small as the read model needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A person's presence is now this.
    PresenceSet(Located),
    /// A person's presence is gone.
    PresenceCleared(i64),
    /// A check-in was deleted; a presence that pointed at it keeps its position only.
    CheckinGone { user: i64, checkin: i64 },
    /// A person's profile or settings changed.
    UserChanged {
        user: i64,
        precision: PrecisionLevel,
    },
    /// A person was deleted (or can no longer act): forget everything about them.
    UserGone(i64),
    /// The friendship between two people began or ended.
    Friendship(i64, i64),
    /// A token family was revoked.
    FamilyRevoked(i64),
    /// A venue changed.
    VenueChanged(i64),
    /// A venue was deleted, with its check-ins.
    VenueGone(i64),
}

fn opt(value: Option<i64>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn parse_opt(text: &str) -> Option<Option<i64>> {
    match text {
        "-" => Some(None),
        _ => text.parse().ok().map(Some),
    }
}

impl Change {
    /// The person whose position this change carries.
    pub fn position_of(&self) -> Option<i64> {
        match self {
            Change::PresenceSet(located) => Some(located.user),
            _ => None,
        }
    }

    /// The notification payload: space-separated fields after a one-letter tag. `f64`'s
    /// `Display` is the shortest text that parses back to the same value.
    pub fn encode(&self) -> String {
        match self {
            Change::PresenceSet(p) => format!(
                "P {} {} {} {} {} {} {} {} {} {} {} {}",
                p.user,
                p.location.lat(),
                p.location.lng(),
                p.accuracy_m.map_or_else(|| "-".into(), |a| a.to_string()),
                p.cell,
                p.updated_at,
                p.expires_at,
                opt(p.checkin),
                opt(p.venue),
                u8::from(p.venue_shown),
                p.precision.as_str(),
                u8::from(p.suspended),
            ),
            Change::PresenceCleared(user) => format!("C {user}"),
            Change::CheckinGone { user, checkin } => format!("K {user} {checkin}"),
            Change::UserChanged { user, precision } => {
                format!("U {user} {}", precision.as_str())
            }
            Change::UserGone(user) => format!("X {user}"),
            Change::Friendship(a, b) => format!("F {a} {b}"),
            Change::FamilyRevoked(family) => format!("T {family}"),
            Change::VenueChanged(venue) => format!("V {venue}"),
            Change::VenueGone(venue) => format!("W {venue}"),
        }
    }

    /// The change a payload describes; `None` for anything else.
    pub fn decode(text: &str) -> Option<Change> {
        let fields: Vec<&str> = text.split(' ').collect();
        let field = |i: usize| fields.get(i).copied();
        let int = |i: usize| field(i).and_then(|f| f.parse::<i64>().ok());
        let change = match (fields.first().copied()?, fields.len()) {
            ("P", 13) => {
                let float = |i: usize| field(i).and_then(|f| f.parse::<f64>().ok());
                Change::PresenceSet(Located {
                    user: int(1)?,
                    location: Point::new(float(2)?, float(3)?).ok()?,
                    accuracy_m: match field(4)? {
                        "-" => None,
                        a => Some(a.parse().ok()?),
                    },
                    cell: int(5)?,
                    updated_at: int(6)?,
                    expires_at: int(7)?,
                    checkin: parse_opt(field(8)?)?,
                    venue: parse_opt(field(9)?)?,
                    venue_shown: field(10)? == "1",
                    precision: PrecisionLevel::parse(field(11)?).ok()?,
                    suspended: field(12)? == "1",
                })
            }
            ("C", 2) => Change::PresenceCleared(int(1)?),
            ("K", 3) => Change::CheckinGone {
                user: int(1)?,
                checkin: int(2)?,
            },
            ("U", 3) => Change::UserChanged {
                user: int(1)?,
                precision: PrecisionLevel::parse(field(2)?).ok()?,
            },
            ("X", 2) => Change::UserGone(int(1)?),
            ("F", 3) => Change::Friendship(int(1)?, int(2)?),
            ("T", 2) => Change::FamilyRevoked(int(1)?),
            ("V", 2) => Change::VenueChanged(int(1)?),
            ("W", 2) => Change::VenueGone(int(1)?),
            _ => return None,
        };
        Some(change)
    }
}

thread_local! {
    /// Changes announced on this thread whose transaction has not failed: [`crate::Store::run`]
    /// applies them to its read model when its work returns.
    static PENDING: RefCell<Vec<(i64, Change)>> = const { RefCell::new(Vec::new()) };
}

/// Announces `change` to every instance once the current transaction commits (at once
/// outside a transaction). Call it after the statement that locks the changed row.
pub fn announce(conn: &mut DbConnection, change: Change) -> Result<(), StoreError> {
    let seq = match conn {
        DbConnection::Pg(pg) => diesel::insert_into(changes::table)
            .values((
                changes::payload.eq(change.encode()),
                changes::created_at.eq(to_micros(Utc::now())),
                changes::subject.eq(change.position_of()),
            ))
            .returning(changes::seq)
            .get_result(pg)?,
        // One process writes a SQLite database, one transaction at a time, and this runs
        // inside it: a process-wide counter orders its changes as their commits.
        DbConnection::Sqlite(_) => LOCAL_SEQ.fetch_add(1, Ordering::Relaxed),
    };
    PENDING.with(|pending| pending.borrow_mut().push((seq, change)));
    Ok(())
}

/// Deletes the feed's rows that hold `user`'s positions (their account is going, or they
/// cleared their location). Followers that have not read them yet lose nothing they need:
/// the change that follows (cleared, or gone) states the result.
pub(crate) fn forget_positions(conn: &mut DbConnection, user: i64) -> Result<(), StoreError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::delete(changes::table.filter(changes::subject.eq(user))).execute(pg)?;
    }
    Ok(())
}

/// Sequence numbers of changes on SQLite.
static LOCAL_SEQ: AtomicI64 = AtomicI64::new(1);

/// Records a change that a statement wrote to the feed itself (as number `seq`), to apply
/// locally like an announced one.
pub(crate) fn announced(seq: i64, change: Change) {
    PENDING.with(|pending| pending.borrow_mut().push((seq, change)));
}

/// How many changes are pending on this thread: a transaction's starting mark.
pub(crate) fn pending_mark() -> usize {
    PENDING.with(|pending| pending.borrow().len())
}

/// Forgets the changes announced since `mark`: their transaction rolled back.
pub(crate) fn roll_back_to(mark: usize) {
    PENDING.with(|pending| pending.borrow_mut().truncate(mark));
}

/// Takes this thread's pending changes.
pub(crate) fn take_pending() -> Vec<(i64, Change)> {
    PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()))
}

/// Applies the change feed to `hot` until it is dropped; reconnects after errors, and reloads
/// the whole read model after each (re)connection, since changes may have been missed while
/// it was away. While disconnected the read model is not ready and callers read the database.
pub(crate) fn follow(connection_string: &str, hot: &Weak<Hot>, census: &Arc<Census>) {
    let mut backoff = Duration::from_millis(200);
    while hot.strong_count() > 0 {
        // Dropped after `conn` (declared later), so closing the store waits for both.
        let _counted = census.enter();
        let mut conn = match PgConnection::establish(connection_string) {
            Ok(conn) => DbConnection::Pg(conn),
            Err(error) => {
                tracing::warn!(%error, "change follower cannot connect; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let Some(model) = hot.upgrade() else {
            return;
        };
        // Where to start: a little before the load, replaying what was in flight.
        let started = replay_from(&mut conn).and_then(|last| {
            model.load(&mut conn)?;
            Ok(last)
        });
        drop(model);
        let mut feed = match started {
            Ok(last) => Feed {
                last,
                gaps: BTreeMap::new(),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot load the read model; retrying");
                std::thread::sleep(backoff);
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        let mut pause = POLL;
        let error = loop {
            let Some(model) = hot.upgrade() else {
                return;
            };
            match feed.poll(&mut conn, &model) {
                Ok(0) => {
                    drop(model);
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(IDLE_POLL);
                }
                Ok(_) => pause = POLL,
                Err(error) => break error,
            }
        };
        tracing::warn!(%error, "change follower lost its connection");
        if let Some(model) = hot.upgrade() {
            model.set_ready(false);
        }
    }
}

/// The sequence number to follow from: the newest change older than the replay window.
fn replay_from(conn: &mut DbConnection) -> Result<i64, StoreError> {
    let before = to_micros(Utc::now()) - REPLAY_MICROS;
    let last: Option<i64> = changes::table
        .filter(changes::created_at.lt(before))
        .select(diesel::dsl::max(changes::seq))
        .first(conn)?;
    Ok(last.unwrap_or(0))
}

/// Where a follower is in the feed.
struct Feed {
    /// The highest sequence number applied.
    last: i64,
    /// Numbers skipped over, and when: their transactions may still commit.
    gaps: BTreeMap<i64, Instant>,
}

impl Feed {
    /// Applies the rows that appeared since the last poll; how many.
    fn poll(&mut self, conn: &mut DbConnection, hot: &Hot) -> Result<usize, StoreError> {
        let now = Instant::now();
        self.gaps
            .retain(|_, seen| now.duration_since(*seen) < GAP_PATIENCE);
        // Two range scans: one query with `seq > last OR seq = ANY(gaps)` was planned as a
        // filter over the whole index (15 ms at 25,000 rows, every few milliseconds).
        let mut rows: Vec<(i64, String)> = changes::table
            .filter(changes::seq.gt(self.last))
            .order(changes::seq)
            .limit(POLL_ROWS)
            .select((changes::seq, changes::payload))
            .load(conn)?;
        if !self.gaps.is_empty() {
            let gaps: Vec<i64> = self.gaps.keys().copied().collect();
            let late: Vec<(i64, String)> = changes::table
                .filter(changes::seq.eq_any(&gaps))
                .select((changes::seq, changes::payload))
                .load(conn)?;
            if !late.is_empty() {
                rows.extend(late);
                rows.sort_unstable_by_key(|(seq, _)| *seq);
            }
        }
        for (seq, payload) in &rows {
            if self.gaps.remove(seq).is_none() {
                if seq.saturating_sub(self.last) <= MAX_GAPS {
                    for skipped in self.last.saturating_add(1)..*seq {
                        self.gaps.insert(skipped, now);
                    }
                }
                self.last = self.last.max(*seq);
            }
            match Change::decode(payload) {
                Some(change) => hot.apply(*seq, &change),
                // Not the payload: a presence change holds an exact position.
                None => tracing::warn!(seq, "a change this version cannot read"),
            }
        }
        Ok(rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_survives_its_payload() {
        let located = Located {
            user: 42,
            location: Point::new(40.758_012_345_678_9, -73.985_5).unwrap(),
            accuracy_m: Some(12.5),
            cell: 622_236_750_694_711_295,
            updated_at: 1_764_000_000_000_001,
            expires_at: 1_764_010_800_000_001,
            checkin: Some(9_001),
            venue: Some(77),
            venue_shown: true,
            precision: PrecisionLevel::Neighborhood,
            suspended: false,
        };
        let changes = [
            Change::PresenceSet(located.clone()),
            Change::PresenceSet(Located {
                accuracy_m: None,
                checkin: None,
                venue: None,
                venue_shown: false,
                suspended: true,
                precision: PrecisionLevel::Off,
                ..located
            }),
            Change::PresenceCleared(7),
            Change::CheckinGone {
                user: 7,
                checkin: 8,
            },
            Change::UserChanged {
                user: 7,
                precision: PrecisionLevel::City,
            },
            Change::UserGone(7),
            Change::Friendship(7, 9),
            Change::FamilyRevoked(11),
            Change::VenueChanged(12),
            Change::VenueGone(13),
        ];
        for change in changes {
            assert_eq!(Change::decode(&change.encode()), Some(change.clone()));
        }
        assert_eq!(Change::decode("42"), None);
        assert_eq!(Change::decode("P 1 2"), None);
        assert_eq!(Change::decode("U 1 everywhere"), None);
    }
}
