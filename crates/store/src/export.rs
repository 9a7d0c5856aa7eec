//! Everything the store holds about one person, for `GET /v1/me/export`.

use vicinity_domain::{User, UserId};

use crate::access_log::{self, Entry};
use crate::checkins::{self, Listed, Scope};
use crate::presence::{self, Presence};
use crate::social::{self, Direction, Related};
use crate::venues::{self, Venue};
use crate::{DbConnection, StoreError};

/// Rows fetched per query while gathering.
const PAGE: usize = 1_000;

pub struct AccountData {
    pub user: User,
    /// Newest first, with device positions (they are the person's own).
    pub checkins: Vec<Listed>,
    pub friends: Vec<Related>,
    pub requests_received: Vec<Related>,
    pub requests_sent: Vec<Related>,
    pub blocked: Vec<Related>,
    /// The stored position, even if expired and not yet pruned.
    pub presence: Option<Presence>,
    pub access_log: Vec<Entry>,
    pub venues_added: Vec<Venue>,
}

/// Pages through a newest-first list until it ends.
fn all_pages<T>(
    mut fetch: impl FnMut(Option<(i64, i64)>) -> Result<Vec<T>, StoreError>,
    key: impl Fn(&T) -> (i64, i64),
) -> Result<Vec<T>, StoreError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after)?;
        let Some(last) = page.last() else {
            return Ok(all);
        };
        after = Some(key(last));
        all.extend(page);
    }
}

/// [`gather`] as the endpoint does it: in one transaction, with the access-log views this
/// instance still holds committed first.
pub async fn gather_now(
    store: &crate::Store,
    recorder: &access_log::Recorder,
    user_id: UserId,
) -> Result<AccountData, StoreError> {
    recorder.flush().await?;
    store
        .run(move |conn| crate::transaction(conn, |conn| gather(conn, user_id)))
        .await
}

/// Gathers all of `user_id`'s data (in the caller's transaction, for a consistent picture).
pub fn gather(conn: &mut DbConnection, user_id: UserId) -> Result<AccountData, StoreError> {
    let me = user_id;
    let related = |r: &Related| r.key;
    Ok(AccountData {
        user: crate::users::find(conn, me)?,
        checkins: all_pages(
            |after| checkins::list(conn, Scope::Own(me), after, PAGE),
            |c| c.key,
        )?,
        friends: all_pages(|after| social::friends(conn, me, after, PAGE), related)?,
        requests_received: all_pages(
            |after| social::requests(conn, me, Direction::Incoming, after, PAGE),
            related,
        )?,
        requests_sent: all_pages(
            |after| social::requests(conn, me, Direction::Outgoing, after, PAGE),
            related,
        )?,
        blocked: all_pages(|after| social::blocked(conn, me, after, PAGE), related)?,
        presence: presence::stored(conn, me)?,
        access_log: all_pages(
            |after| access_log::entries(conn, me, after, PAGE),
            |e| e.key,
        )?,
        venues_added: venues::added_by(conn, me)?,
    })
}
