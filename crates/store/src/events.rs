//! Changes that the in-memory read model ([`crate::hot`]) must hear about, on every instance
//! that shares a database.
//!
//! A repository function that changes presence, a profile, a friendship, a token family or a
//! venue calls [`announce`] inside its transaction. On PostgreSQL that sends
//! `NOTIFY vicinity_changes, '<change>'`, delivered to every instance on commit (never for a
//! rolled-back change) and in commit order; each instance's listener thread applies it. The
//! instance that made the change also applies it locally as soon as [`crate::Store::run`]'s
//! work returns, so a person reads their own writes at once on any backend (SQLite has only
//! the local path: one process).

use std::cell::RefCell;
use std::sync::Weak;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use vicinity_domain::PrecisionLevel;
use vicinity_geo::Point;

use crate::hot::{Hot, Located};
use crate::{DbConnection, StoreError};

/// The PostgreSQL channel changes are announced on.
pub const CHANNEL: &str = "vicinity_changes";

/// How often the listener looks for notifications: the longest another instance answers from
/// the state before a change (diesel exposes no blocking wait on the socket).
const POLL: Duration = Duration::from_millis(5);

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
    static PENDING: RefCell<Vec<Change>> = const { RefCell::new(Vec::new()) };
}

/// Announces `change` to every instance once the current transaction commits (at once
/// outside a transaction).
pub fn announce(conn: &mut DbConnection, change: Change) -> Result<(), StoreError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(change.encode())
            .execute(pg)?;
    }
    PENDING.with(|pending| pending.borrow_mut().push(change));
    Ok(())
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
pub(crate) fn take_pending() -> Vec<Change> {
    PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()))
}

/// Applies notifications to `hot` until it is dropped; reconnects after errors, and reloads
/// the whole read model after each (re)connection, since changes may have been missed while
/// it was away. While disconnected the read model is not ready and callers read the database.
pub(crate) fn listen(connection_string: &str, hot: &Weak<Hot>) {
    let mut backoff = Duration::from_millis(200);
    while hot.strong_count() > 0 {
        let connected = PgConnection::establish(connection_string)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                diesel::sql_query(format!("LISTEN {CHANNEL}"))
                    .execute(&mut conn)
                    .map_err(|e| e.to_string())?;
                Ok(conn)
            });
        let conn = match connected {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "change listener cannot connect; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // Listening first, loading second: a change committed during the load is both in the
        // snapshot and among the notifications, and applying it again is harmless (every
        // change states a result, it does not add to one), in commit order.
        let Some(model) = hot.upgrade() else {
            return;
        };
        let mut db = DbConnection::Pg(conn);
        if let Err(error) = model.load(&mut db) {
            tracing::warn!(%error, "cannot load the read model; retrying");
            std::thread::sleep(backoff);
            continue;
        }
        drop(model);
        let DbConnection::Pg(pg) = &mut db else {
            unreachable!("the listener connection is PostgreSQL");
        };
        conn_loop(pg, hot);
        if let Some(model) = hot.upgrade() {
            model.set_ready(false);
        }
        backoff = Duration::from_millis(200);
    }
}

/// Applies notifications until the connection fails or the read model is gone.
fn conn_loop(conn: &mut PgConnection, hot: &Weak<Hot>) {
    loop {
        let Some(model) = hot.upgrade() else {
            return;
        };
        for notification in conn.notifications_iter() {
            match notification {
                Ok(notification) => match Change::decode(&notification.payload) {
                    Some(change) => model.apply(&change),
                    None => tracing::warn!(payload = %notification.payload, "unknown change"),
                },
                Err(error) => {
                    tracing::warn!(%error, "change listener lost its connection");
                    return;
                }
            }
        }
        drop(model);
        std::thread::sleep(POLL);
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
