//! People's accounts and password credentials.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use vicinity_domain::{
    Bio, DisplayName, Email, NewUser, PrecisionLevel, ProfileChanges, User, UserId, Username,
    Visibility,
};

use crate::error::taken_or;
use crate::schema::{credentials, users};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, StoreError, new_key, transaction};

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    id: i64,
    username: String,
    email: String,
    display_name: String,
    bio: String,
    location_precision: String,
    default_visibility: String,
    is_admin: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId::from_raw(row.id),
            username: Username::from_trusted(row.username),
            email: Email::from_trusted(row.email),
            display_name: DisplayName::from_trusted(row.display_name),
            bio: Bio::from_trusted(row.bio),
            location_precision: PrecisionLevel::parse(&row.location_precision)
                .map_err(StoreError::Corrupt)?,
            default_visibility: Visibility::parse(&row.default_visibility)
                .map_err(StoreError::Corrupt)?,
            is_admin: row.is_admin,
            created_at: from_micros(row.created_at)?,
            updated_at: from_micros(row.updated_at)?,
        })
    }
}

/// `UserRow`'s columns in field order, for RETURNING (diesel's `as_returning` does not pass
/// through the multi-backend connection).
pub(crate) const USER_COLUMNS: (
    users::id,
    users::username,
    users::email,
    users::display_name,
    users::bio,
    users::location_precision,
    users::default_visibility,
    users::is_admin,
    users::created_at,
    users::updated_at,
) = (
    users::id,
    users::username,
    users::email,
    users::display_name,
    users::bio,
    users::location_precision,
    users::default_visibility,
    users::is_admin,
    users::created_at,
    users::updated_at,
);

/// Unique columns and the input field each belongs to.
const UNIQUE_KEYS: &[(&str, &str)] = &[("username_key", "username"), ("email_key", "email")];

/// Stores a new account and its password hash together; `Taken` names a duplicate field.
pub fn create(
    conn: &mut DbConnection,
    new_user: &NewUser,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<User, StoreError> {
    let id = new_key();
    let at = to_micros(now);
    transaction(conn, |conn| {
        let row = diesel::insert_into(users::table)
            .values((
                users::id.eq(id),
                users::username.eq(new_user.username.as_str()),
                users::username_key.eq(new_user.username.key()),
                users::email.eq(new_user.email.as_str()),
                users::email_key.eq(new_user.email.key()),
                users::display_name.eq(new_user.display_name.as_str()),
                users::display_name_key.eq(new_user.display_name.as_str().to_lowercase()),
                users::bio.eq(""),
                users::location_precision.eq(PrecisionLevel::default().as_str()),
                users::default_visibility.eq(Visibility::default().as_str()),
                users::is_admin.eq(false),
                users::created_at.eq(at),
                users::updated_at.eq(at),
            ))
            .returning(USER_COLUMNS)
            .get_result::<UserRow>(conn)
            .map_err(|e| taken_or(e, UNIQUE_KEYS))?;
        diesel::insert_into(credentials::table)
            .values((
                credentials::user_id.eq(id),
                credentials::password_hash.eq(password_hash),
                credentials::updated_at.eq(at),
            ))
            .execute(conn)?;
        User::try_from(row)
    })
}

/// Makes `id` an administrator, or no longer one. `NotFound` if there is no such account.
pub fn set_admin(conn: &mut DbConnection, id: UserId, admin: bool) -> Result<(), StoreError> {
    let changed = diesel::update(users::table.find(id.raw()))
        .set(users::is_admin.eq(admin))
        .execute(conn)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: UserId) -> Result<User, StoreError> {
    users::table
        .find(id.raw())
        .filter(users::suspended_at.is_null())
        .select(UserRow::as_select())
        .first(conn)?
        .try_into()
}

/// [`find`], holding the row against changes until the transaction ends (PostgreSQL `FOR
/// SHARE`; a SQLite write transaction already excludes other writers). For a write that copies
/// a setting, such as a presence carrying its owner's sharing level: a concurrent change of
/// that level then waits, and its own change-feed entry comes after this one.
pub fn find_locked(conn: &mut DbConnection, id: UserId) -> Result<User, StoreError> {
    let unsuspended = users::table
        .find(id.raw())
        .filter(users::suspended_at.is_null());
    let row: UserRow = match conn {
        DbConnection::Pg(pg) => unsuspended
            .select(UserRow::as_select())
            .for_share()
            .first(pg)?,
        DbConnection::Sqlite(sqlite) => unsuspended.select(UserRow::as_select()).first(sqlite)?,
    };
    row.try_into()
}

/// The account a login name (username or email, any case) belongs to, with its password hash.
pub fn find_for_login(
    conn: &mut DbConnection,
    login: &str,
) -> Result<Option<(User, String)>, StoreError> {
    let key = login.trim().to_lowercase();
    // No stored name or address contains control characters, and PostgreSQL refuses a NUL in
    // a text parameter outright: such a name simply belongs to no account, on both backends.
    if key.is_empty() || key.chars().any(char::is_control) {
        return Ok(None);
    }
    let found = users::table
        .inner_join(credentials::table)
        .filter(users::username_key.eq(&key).or(users::email_key.eq(&key)))
        .filter(users::suspended_at.is_null())
        .select((UserRow::as_select(), credentials::password_hash))
        .first::<(UserRow, String)>(conn)
        .optional()?;
    found
        .map(|(row, hash)| Ok((User::try_from(row)?, hash)))
        .transpose()
}

/// Applies the given profile changes and returns the updated account.
pub fn update_profile(
    conn: &mut DbConnection,
    id: UserId,
    changes: &ProfileChanges,
    now: DateTime<Utc>,
) -> Result<User, StoreError> {
    let target = users::table
        .find(id.raw())
        .filter(users::suspended_at.is_null());
    let user: User = diesel::update(target)
        .set((
            changes
                .display_name
                .as_ref()
                .map(|v| users::display_name.eq(v.as_str())),
            changes
                .display_name
                .as_ref()
                .map(|v| users::display_name_key.eq(v.as_str().to_lowercase())),
            changes.bio.as_ref().map(|v| users::bio.eq(v.as_str())),
            changes
                .location_precision
                .map(|v| users::location_precision.eq(v.as_str())),
            changes
                .default_visibility
                .map(|v| users::default_visibility.eq(v.as_str())),
            users::updated_at.eq(to_micros(now)),
        ))
        .returning(USER_COLUMNS)
        .get_result::<UserRow>(conn)?
        .try_into()?;
    crate::events::announce(
        conn,
        crate::events::Change::UserChanged {
            user: id.raw(),
            precision: user.location_precision,
        },
    )?;
    Ok(user)
}

/// Deletes an account; the foreign keys cascade to everything it owns, and the change feed
/// forgets the positions it still held for them.
/// Suspends an account at once: every login is revoked, the position forgotten, and every
/// instance's read model forgets the person, so nobody sees them until they are unsuspended.
/// Suspending a suspended account changes nothing. `NotFound` if there is no such account.
pub fn suspend(conn: &mut DbConnection, id: UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
    transaction(conn, |conn| {
        let exists = users::table
            .find(id.raw())
            .select(users::id)
            .first::<i64>(conn)
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        diesel::update(
            users::table
                .find(id.raw())
                .filter(users::suspended_at.is_null()),
        )
        .set(users::suspended_at.eq(to_micros(now)))
        .execute(conn)?;
        let which = crate::tokens::Logins {
            user: Some(id),
            ..Default::default()
        };
        crate::tokens::revoke_live(conn, which, "account suspended", now)?;
        crate::presence::clear(conn, id)?;
        crate::events::announce(conn, crate::events::Change::UserGone(id.raw()))
    })
}

/// Lifts a suspension; the person signs in again (their old logins stay revoked).
/// `NotFound` if there is no such account.
pub fn unsuspend(conn: &mut DbConnection, id: UserId) -> Result<(), StoreError> {
    let changed = diesel::update(users::table.find(id.raw()))
        .set(users::suspended_at.eq(None::<i64>))
        .execute(conn)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    // Cached as absent while suspended: read again from here on.
    crate::events::announce(conn, crate::events::Change::UserGone(id.raw()))
}

pub fn delete(conn: &mut DbConnection, id: UserId) -> Result<(), StoreError> {
    let deleted = diesel::delete(users::table.find(id.raw())).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    crate::events::forget_positions(conn, id.raw())?;
    crate::events::announce(conn, crate::events::Change::UserGone(id.raw()))
}

/// An account with when it was suspended, if it is.
pub type AccountRecord = (User, Option<DateTime<Utc>>);

/// Accounts for administrators, suspended ones included, by username: those whose username,
/// email or display name starts with `query` (all when `None`), after the username key
/// `after`, at most `limit`. Each with when it was suspended, if it is.
pub fn admin_list(
    conn: &mut DbConnection,
    query: Option<&str>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<AccountRecord>, StoreError> {
    let mut sql = users::table
        .select((USER_COLUMNS, users::suspended_at))
        .order(users::username_key.asc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .into_boxed();
    if let Some(query) = query {
        let prefix = format!("{}%", crate::like_escape(query));
        sql = sql.filter(
            users::username_key
                .like(prefix.clone())
                .escape('\\')
                .or(users::email_key.like(prefix.clone()).escape('\\'))
                .or(users::display_name_key.like(prefix).escape('\\')),
        );
    }
    if let Some(after) = after {
        sql = sql.filter(users::username_key.gt(after.to_owned()));
    }
    sql.load::<(UserRow, Option<i64>)>(conn)?
        .into_iter()
        .map(|(row, suspended_at)| {
            Ok((
                User::try_from(row)?,
                suspended_at.map(crate::time::from_micros).transpose()?,
            ))
        })
        .collect()
}
