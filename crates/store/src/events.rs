//! Presence-change events, across every instance that shares a database.
//!
//! On PostgreSQL, a presence change sends `NOTIFY vicinity_presence, '<user id>'` inside its
//! transaction (so it is delivered on commit, and never for a rolled-back change), and each
//! instance runs one listener thread that turns notifications into in-process broadcasts. On
//! SQLite (one process), the API publishes changes directly.

use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use tokio::sync::broadcast;
use vicinity_domain::UserId;

use crate::{DatabaseUrl, DbConnection, StoreError};

/// The PostgreSQL channel presence changes are announced on.
pub const CHANNEL: &str = "vicinity_presence";

/// How often the listener looks for notifications (libpq has no blocking wait in diesel).
const POLL: Duration = Duration::from_millis(25);

/// Announces that `user`'s presence changed, to every instance (PostgreSQL) once the current
/// transaction commits. On SQLite it does nothing: see [`PresenceEvents::publish_local`].
pub fn announce(conn: &mut DbConnection, user: UserId) -> Result<(), StoreError> {
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(user.raw().to_string())
            .execute(pg)?;
    }
    Ok(())
}

/// The in-process side: subscribers receive the ids of people whose presence changed.
#[derive(Clone)]
pub struct PresenceEvents {
    sender: Arc<broadcast::Sender<UserId>>,
    /// Whether changes arrive through PostgreSQL (then local publishing would double them).
    through_database: bool,
}

impl PresenceEvents {
    /// Starts listening: on PostgreSQL a background thread that lives as long as this value
    /// (or a clone) does.
    pub fn start(url: &DatabaseUrl) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let sender = Arc::new(sender);
        let through_database = matches!(url, DatabaseUrl::Postgres(_));
        if let DatabaseUrl::Postgres(connection_string) = url {
            let weak = Arc::downgrade(&sender);
            let connection_string = connection_string.clone();
            let spawned = std::thread::Builder::new()
                .name("presence-listener".into())
                .spawn(move || listen(&connection_string, &weak));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start the presence listener");
            }
        }
        Self {
            sender,
            through_database,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<UserId> {
        self.sender.subscribe()
    }

    /// Publishes a change made by this process when no database delivers it (SQLite).
    pub fn publish_local(&self, user: UserId) {
        if !self.through_database {
            let _ = self.sender.send(user);
        }
    }
}

/// Relays notifications until every [`PresenceEvents`] is gone; reconnects after errors.
fn listen(connection_string: &str, sender: &Weak<broadcast::Sender<UserId>>) {
    let mut backoff = Duration::from_millis(200);
    while sender.strong_count() > 0 {
        let connected = PgConnection::establish(connection_string)
            .map_err(|e| e.to_string())
            .and_then(|mut conn| {
                diesel::sql_query(format!("LISTEN {CHANNEL}"))
                    .execute(&mut conn)
                    .map_err(|e| e.to_string())?;
                Ok(conn)
            });
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "presence listener cannot connect; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        'poll: loop {
            let Some(sender) = sender.upgrade() else {
                return;
            };
            for notification in conn.notifications_iter() {
                match notification {
                    Ok(notification) => {
                        if let Ok(raw) = notification.payload.parse::<i64>() {
                            let _ = sender.send(UserId::from_raw(raw));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "presence listener lost its connection");
                        break 'poll;
                    }
                }
            }
            drop(sender);
            std::thread::sleep(POLL);
        }
    }
}
