//! Venues and their categories; radius search through the H3 cell index.
//!
//! A search turns its circle into a [`Cover`] (a few ranges of res-10 cell ids), scans those
//! ranges on the indexed `cell` column, and keeps the rows whose exact great-circle distance
//! is within the radius. Distances, ranking and ordering happen here in Rust, so both backends
//! answer identically (SQLite has no trigonometry by default).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use vicinity_domain::{
    Address, NameMatch, UserId, VenueDetails, VenueId, VenueName, names_similar,
};
use vicinity_geo::{Cover, Point, storage_cell};

use crate::schema::{categories, venues};
use crate::time::{from_micros, to_micros};
use crate::{DbConnection, StoreError, new_key, transaction};

/// How far apart two venues of similar names must be to be taken for different places.
pub const DUPLICATE_RADIUS_M: f64 = 150.0;

/// At most this many possible duplicates are reported.
const MAX_DUPLICATES: usize = 5;

/// One node of the category tree.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = categories)]
pub struct Category {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
}

/// Every category, by name (the API builds the tree from the parent links).
pub fn categories(conn: &mut DbConnection) -> Result<Vec<Category>, StoreError> {
    Ok(categories::table
        .select(Category::as_select())
        .order(categories::name.asc())
        .load::<Category>(conn)?)
}

/// The category `id` and everything below it; `Unknown("category")` (the search parameter)
/// when there is no such category.
pub(crate) fn category_with_descendants(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Vec<String>, StoreError> {
    let all = categories::table
        .select(Category::as_select())
        .load::<Category>(conn)?;
    if !all.iter().any(|c| c.id == id) {
        return Err(StoreError::Unknown("category"));
    }
    let mut found = vec![id.to_owned()];
    let mut next = 0;
    while let Some(parent) = found.get(next).cloned() {
        found.extend(
            all.iter()
                .filter(|c| c.parent_id.as_deref() == Some(parent.as_str()))
                .map(|c| c.id.clone()),
        );
        next += 1;
    }
    Ok(found)
}

/// A category as a venue shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Venue {
    pub id: VenueId,
    pub name: VenueName,
    pub category: CategoryRef,
    pub location: Point,
    pub address: Address,
    pub phone: Option<String>,
    pub url: Option<String>,
    /// Who added it; `None` once that account is deleted or for seeded venues.
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = venues)]
pub(crate) struct VenueRow {
    id: i64,
    name: String,
    name_key: String,
    category_id: String,
    lat: f64,
    lng: f64,
    address: Option<String>,
    locality: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
    phone: Option<String>,
    url: Option<String>,
    created_by: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl VenueRow {
    fn point(&self) -> Result<Point, StoreError> {
        Point::new(self.lat, self.lng).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub(crate) fn into_venue(self, category_name: String) -> Result<Venue, StoreError> {
        let location = self.point()?;
        Ok(Venue {
            id: VenueId::from_raw(self.id),
            name: VenueName::from_trusted(self.name),
            category: CategoryRef {
                id: self.category_id,
                name: category_name,
            },
            location,
            address: Address {
                street: self.address,
                locality: self.locality,
                region: self.region,
                postal_code: self.postal_code,
                country_code: self.country_code,
            },
            phone: self.phone,
            url: self.url,
            created_by: self.created_by.map(UserId::from_raw),
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
        })
    }
}

pub fn find(conn: &mut DbConnection, id: VenueId) -> Result<Venue, StoreError> {
    let (row, category_name) = venues::table
        .inner_join(categories::table)
        .filter(venues::id.eq(id.raw()))
        .select((VenueRow::as_select(), categories::name))
        .first::<(VenueRow, String)>(conn)?;
    row.into_venue(category_name)
}

fn ensure_category(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    let exists = categories::table.find(id).count().get_result::<i64>(conn)?;
    if exists == 0 {
        return Err(StoreError::Unknown("category_id"));
    }
    Ok(())
}

/// The outcome of adding a venue.
#[derive(Debug)]
pub enum Created {
    Venue(Box<Venue>),
    /// Venues of a similar name within [`DUPLICATE_RADIUS_M`], nearest first; nothing written.
    PossibleDuplicates(Vec<Found>),
}

/// Adds a venue unless one of a similar name is already close by (`allow_duplicate` skips
/// that check, for a caller who has seen the candidates and insists).
pub fn create(
    conn: &mut DbConnection,
    details: &VenueDetails,
    location: Point,
    creator: Option<UserId>,
    allow_duplicate: bool,
    now: DateTime<Utc>,
) -> Result<Created, StoreError> {
    transaction(conn, |conn| {
        ensure_category(conn, &details.category_id)?;
        if !allow_duplicate {
            // Serialise venue creation so two people adding the same place at once cannot
            // both pass the check (SQLite's write transaction already does).
            if let DbConnection::Pg(pg) = conn {
                diesel::sql_query("SELECT pg_advisory_xact_lock(7306142369)").execute(pg)?;
            }
            let duplicates = possible_duplicates(conn, location, &details.name)?;
            if !duplicates.is_empty() {
                return Ok(Created::PossibleDuplicates(duplicates));
            }
        }
        let at = to_micros(now);
        let id = new_key();
        diesel::insert_into(venues::table)
            .values(row_values(
                id,
                details,
                location,
                creator.map(UserId::raw),
                at,
            ))
            .execute(conn)?;
        find(conn, VenueId::from_raw(id)).map(|venue| Created::Venue(Box::new(venue)))
    })
}

/// One venue's column values for an insert.
#[expect(clippy::type_complexity, reason = "diesel's insertable tuple")]
fn row_values(
    id: i64,
    details: &VenueDetails,
    location: Point,
    creator: Option<i64>,
    at: i64,
) -> (
    diesel::dsl::Eq<venues::id, i64>,
    diesel::dsl::Eq<venues::name, String>,
    diesel::dsl::Eq<venues::name_key, String>,
    diesel::dsl::Eq<venues::category_id, String>,
    diesel::dsl::Eq<venues::lat, f64>,
    diesel::dsl::Eq<venues::lng, f64>,
    diesel::dsl::Eq<venues::cell, i64>,
    diesel::dsl::Eq<venues::address, Option<String>>,
    diesel::dsl::Eq<venues::locality, Option<String>>,
    diesel::dsl::Eq<venues::region, Option<String>>,
    diesel::dsl::Eq<venues::postal_code, Option<String>>,
    diesel::dsl::Eq<venues::country_code, Option<String>>,
    diesel::dsl::Eq<venues::phone, Option<String>>,
    diesel::dsl::Eq<venues::url, Option<String>>,
    diesel::dsl::Eq<venues::created_by, Option<i64>>,
    diesel::dsl::Eq<venues::created_at, i64>,
    diesel::dsl::Eq<venues::updated_at, i64>,
) {
    (
        venues::id.eq(id),
        venues::name.eq(details.name.as_str().to_owned()),
        venues::name_key.eq(details.name.key()),
        venues::category_id.eq(details.category_id.clone()),
        venues::lat.eq(location.lat()),
        venues::lng.eq(location.lng()),
        venues::cell.eq(storage_cell(location)),
        venues::address.eq(details.address.street.clone()),
        venues::locality.eq(details.address.locality.clone()),
        venues::region.eq(details.address.region.clone()),
        venues::postal_code.eq(details.address.postal_code.clone()),
        venues::country_code.eq(details.address.country_code.clone()),
        venues::phone.eq(details.phone.clone()),
        venues::url.eq(details.url.clone()),
        venues::created_by.eq(creator),
        venues::created_at.eq(at),
        venues::updated_at.eq(at),
    )
}

/// Inserts many venues with the given ids in one statement (for seeding); a venue whose id
/// already exists is skipped, so re-running a seed adds nothing twice. Returns how many rows
/// were inserted. Categories must exist.
pub fn insert_batch(
    conn: &mut DbConnection,
    batch: &[(VenueId, VenueDetails, Point)],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let at = to_micros(now);
    let rows = || -> Vec<_> {
        batch
            .iter()
            .map(|(id, details, location)| row_values(id.raw(), details, *location, None, at))
            .collect()
    };
    let inserted = on_each_backend!(conn, |backend| {
        diesel::insert_into(venues::table)
            .values(rows())
            .on_conflict_do_nothing()
            .execute(backend)?
    });
    Ok(inserted)
}

/// How many venues there are.
pub fn count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(venues::table.count().get_result(conn)?)
}

fn possible_duplicates(
    conn: &mut DbConnection,
    location: Point,
    name: &VenueName,
) -> Result<Vec<Found>, StoreError> {
    let key = name.key();
    let mut found: Vec<Candidate> = candidates(conn, location, DUPLICATE_RADIUS_M, None, None)?
        .into_iter()
        .filter(|(row, _, _)| names_similar(&row.name_key, &key))
        .collect();
    found.sort_by(|a, b| a.2.cmp(&b.2));
    found.truncate(MAX_DUPLICATES);
    into_found(found)
}

/// Changes to a venue; `None` keeps a field, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct VenueChanges {
    pub name: Option<VenueName>,
    pub category_id: Option<String>,
    pub location: Option<Point>,
    pub street: Option<Option<String>>,
    pub locality: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub postal_code: Option<Option<String>>,
    pub country_code: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub url: Option<Option<String>>,
}

impl VenueChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.category_id.is_none()
            && self.location.is_none()
            && self.street.is_none()
            && self.locality.is_none()
            && self.region.is_none()
            && self.postal_code.is_none()
            && self.country_code.is_none()
            && self.phone.is_none()
            && self.url.is_none()
    }
}

/// Applies `changes` for `editor`, who must have added the venue unless `admin`; `Ok(None)`
/// when they may not.
pub fn update_as(
    conn: &mut DbConnection,
    id: VenueId,
    changes: &VenueChanges,
    editor: UserId,
    admin: bool,
    now: DateTime<Utc>,
) -> Result<Option<Venue>, StoreError> {
    transaction(conn, |conn| {
        let venue = find(conn, id)?;
        if !admin && venue.created_by != Some(editor) {
            return Ok(None);
        }
        update(conn, id, changes, now).map(Some)
    })
}

/// Applies `changes`; with none, the venue is returned as it is (`updated_at` untouched).
pub fn update(
    conn: &mut DbConnection,
    id: VenueId,
    changes: &VenueChanges,
    now: DateTime<Utc>,
) -> Result<Venue, StoreError> {
    if changes.is_empty() {
        return find(conn, id);
    }
    transaction(conn, |conn| {
        if let Some(category) = &changes.category_id {
            ensure_category(conn, category)?;
        }
        let updated = diesel::update(venues::table.find(id.raw()))
            .set((
                changes.name.as_ref().map(|n| venues::name.eq(n.as_str())),
                changes.name.as_ref().map(|n| venues::name_key.eq(n.key())),
                changes
                    .category_id
                    .as_ref()
                    .map(|c| venues::category_id.eq(c.as_str())),
                changes.location.map(|p| venues::lat.eq(p.lat())),
                changes.location.map(|p| venues::lng.eq(p.lng())),
                changes.location.map(|p| venues::cell.eq(storage_cell(p))),
                changes
                    .street
                    .as_ref()
                    .map(|v| venues::address.eq(v.as_deref())),
                changes
                    .locality
                    .as_ref()
                    .map(|v| venues::locality.eq(v.as_deref())),
                changes
                    .region
                    .as_ref()
                    .map(|v| venues::region.eq(v.as_deref())),
                changes
                    .postal_code
                    .as_ref()
                    .map(|v| venues::postal_code.eq(v.as_deref())),
                changes
                    .country_code
                    .as_ref()
                    .map(|v| venues::country_code.eq(v.as_deref())),
                changes
                    .phone
                    .as_ref()
                    .map(|v| venues::phone.eq(v.as_deref())),
                changes.url.as_ref().map(|v| venues::url.eq(v.as_deref())),
                venues::updated_at.eq(to_micros(now)),
            ))
            .execute(conn)?;
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        crate::events::announce(conn, crate::events::Change::VenueChanged(id.raw()))?;
        find(conn, id)
    })
}

/// Deletes a venue; check-ins there go with it, presences keep their position only.
pub fn delete(conn: &mut DbConnection, id: VenueId) -> Result<(), StoreError> {
    let deleted = diesel::delete(venues::table.find(id.raw())).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    crate::events::announce(conn, crate::events::Change::VenueGone(id.raw()))
}

/// Where a result sits in a search's order: name match (when searching by name), then
/// distance, then id. Cursors carry the key of the last item returned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchKey {
    pub rank: u8,
    pub distance_m: f64,
    pub id: i64,
}

impl SearchKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank
            .cmp(&other.rank)
            .then(self.distance_m.total_cmp(&other.distance_m))
            .then(self.id.cmp(&other.id))
    }
}

/// A venue found by a search, with its exact distance from the search centre.
#[derive(Debug, Clone)]
pub struct Found {
    pub venue: Venue,
    pub distance_m: f64,
    pub key: SearchKey,
}

/// A radius search.
#[derive(Debug, Clone)]
pub struct VenueSearch {
    pub centre: Point,
    pub radius_m: f64,
    /// A name key (see `vicinity_domain::name_key`); names containing it match.
    pub query: Option<String>,
    /// A category id: keep venues of it and of every category below it.
    pub category: Option<String>,
    /// Continue after this key.
    pub after: Option<SearchKey>,
    pub limit: usize,
}

/// One page of results and whether more follow.
pub fn search(
    conn: &mut DbConnection,
    search: &VenueSearch,
) -> Result<(Vec<Found>, bool), StoreError> {
    let categories = search
        .category
        .as_deref()
        .map(|id| category_with_descendants(conn, id))
        .transpose()?;
    let mut found = candidates(
        conn,
        search.centre,
        search.radius_m,
        search.query.as_deref(),
        categories.as_deref(),
    )?;
    if let Some(after) = search.after {
        found.retain(|(_, _, key)| key.cmp(&after).is_gt());
    }
    found.sort_by(|a, b| a.2.cmp(&b.2));
    let more = found.len() > search.limit;
    found.truncate(search.limit);
    Ok((into_found(found)?, more))
}

/// Every venue within the circle (of `categories` when given), with its distance in metres.
pub(crate) fn in_circle(
    conn: &mut DbConnection,
    centre: Point,
    radius_m: f64,
    categories: Option<&[String]>,
) -> Result<Vec<(Venue, f64)>, StoreError> {
    candidates(conn, centre, radius_m, None, categories)?
        .into_iter()
        .map(|(row, category_name, key)| Ok((row.into_venue(category_name)?, key.distance_m)))
        .collect()
}

/// A row in the circle, its category's name and its place in the order.
type Candidate = (VenueRow, String, SearchKey);

fn into_found(found: Vec<Candidate>) -> Result<Vec<Found>, StoreError> {
    found
        .into_iter()
        .map(|(row, category_name, key)| {
            Ok(Found {
                venue: row.into_venue(category_name)?,
                distance_m: key.distance_m,
                key,
            })
        })
        .collect()
}

/// Every venue within the circle that matches the filters, with its key, in no order.
fn candidates(
    conn: &mut DbConnection,
    centre: Point,
    radius_m: f64,
    query: Option<&str>,
    categories: Option<&[String]>,
) -> Result<Vec<Candidate>, StoreError> {
    let cover = Cover::circle(centre, radius_m)
        .map_err(|e| StoreError::Corrupt(format!("search radius: {e}")))?;
    // One round trip: the rows and their category names.
    let mut sql = venues::table
        .inner_join(categories::table)
        .select((VenueRow::as_select(), categories::name))
        .into_boxed();
    for range in cover.ranges() {
        sql = sql.or_filter(venues::cell.between(range.first, range.last));
    }
    // Filters added after the ranges are AND-ed with their disjunction as a whole.
    if let Some(query) = query {
        sql = sql.filter(
            venues::name_key
                .like(format!("%{}%", crate::like_escape(query)))
                .escape('\\'),
        );
    }
    if let Some(categories) = categories {
        sql = sql.filter(venues::category_id.eq_any(categories.to_vec()));
    }
    let rows = sql.load::<(VenueRow, String)>(conn)?;
    let mut found = Vec::with_capacity(rows.len());
    for (row, category_name) in rows {
        let distance_m = centre.distance_m(row.point()?);
        if distance_m > radius_m {
            continue;
        }
        let rank = match query {
            Some(query) => match NameMatch::of(&row.name_key, query) {
                Some(matched) => matched as u8,
                None => continue,
            },
            None => 0,
        };
        let key = SearchKey {
            rank,
            distance_m,
            id: row.id,
        };
        found.push((row, category_name, key));
    }
    Ok(found)
}

/// The venues `user` added, oldest first.
pub fn added_by(conn: &mut DbConnection, user: UserId) -> Result<Vec<Venue>, StoreError> {
    venues::table
        .inner_join(categories::table)
        .filter(venues::created_by.eq(user.raw()))
        .select((VenueRow::as_select(), categories::name))
        .order((venues::created_at.asc(), venues::id.asc()))
        .load::<(VenueRow, String)>(conn)?
        .into_iter()
        .map(|(row, category)| row.into_venue(category))
        .collect()
}
