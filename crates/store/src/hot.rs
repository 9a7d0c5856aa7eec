//! The in-memory read model behind "who is nearby" and token checks: every unexpired presence
//! (with an H3 cell index), and bounded caches of friend lists, profiles, venues and live
//! token families.
//!
//! It is derived state only. The database stays the truth: the model is loaded from it, kept
//! current by the changes every instance announces ([`crate::events`]), and rebuilt from
//! scratch whenever the change feed was interrupted. While it is not ready (starting, or its
//! listener reconnecting) callers read the database, which gives the same answers.
//!
//! A cache fill races with the change that would invalidate it: a reader loads a friend list,
//! the friendship ends and its change is applied, then the reader stores the list it read.
//! Each cache therefore counts its invalidations, and a fill made from a read that began
//! before the latest invalidation is dropped.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use tokio::sync::broadcast;
use vicinity_domain::{PrecisionLevel, User, UserId, Visibility};
use vicinity_geo::privacy::{max_snap_offset_m, rounded_distance_m, shared_point};
use vicinity_geo::{Cover, MAX_COVER_RADIUS_M, Point};

use crate::events::Change;
use crate::presence::{Nearby, NearbyFriend, Plan};
use crate::schema::{checkins, presence, users};
use crate::time::{from_micros, to_micros};
use crate::users::{USER_COLUMNS, UserRow};
use crate::venues::Venue;
use crate::{DbConnection, StoreError};

/// A presence as the read model holds it, with what nearby needs from its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub user: i64,
    pub location: Point,
    pub accuracy_m: Option<f64>,
    pub cell: i64,
    /// Microseconds since the epoch, as stored.
    pub updated_at: i64,
    pub expires_at: i64,
    /// The check-in that set it, and that check-in's venue.
    pub checkin: Option<i64>,
    pub venue: Option<i64>,
    /// Whether friends may see that check-in (it is not private).
    pub venue_shown: bool,
    /// The owner's sharing level.
    pub precision: PrecisionLevel,
    /// The owner is suspended: nobody sees them.
    pub suspended: bool,
}

/// A cache of values by id in two generations: a hit in the old one moves the value to the
/// young one, and when the young one outgrows `capacity` (in `weigh` units) it becomes the old
/// one. What has not been read for a generation is dropped: a cheap approximation of LRU.
struct Generations<V> {
    state: Mutex<GenerationState<V>>,
    capacity: usize,
    weigh: fn(&V) -> usize,
}

struct GenerationState<V> {
    young: HashMap<i64, V>,
    old: HashMap<i64, V>,
    weight: usize,
    /// Counts invalidations; see the module documentation.
    epoch: u64,
}

impl<V: Clone> Generations<V> {
    fn new(capacity: usize, weigh: fn(&V) -> usize) -> Self {
        Self {
            state: Mutex::new(GenerationState {
                young: HashMap::new(),
                old: HashMap::new(),
                weight: 0,
                epoch: 0,
            }),
            capacity,
            weigh,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GenerationState<V>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: i64) -> Option<V> {
        let mut state = self.lock();
        if let Some(value) = state.young.get(&key) {
            return Some(value.clone());
        }
        let value = state.old.remove(&key)?;
        self.insert(&mut state, key, value.clone());
        Some(value)
    }

    fn insert(&self, state: &mut GenerationState<V>, key: i64, value: V) {
        state.weight += (self.weigh)(&value);
        if let Some(previous) = state.young.insert(key, value) {
            state.weight = state.weight.saturating_sub((self.weigh)(&previous));
        }
        if state.weight > self.capacity {
            state.old = std::mem::take(&mut state.young);
            state.weight = 0;
        }
    }

    fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Stores what a read that began at `epoch` found, unless something was invalidated since.
    fn fill(&self, epoch: u64, key: i64, value: V) {
        let mut state = self.lock();
        if state.epoch == epoch {
            self.insert(&mut state, key, value);
        }
    }

    /// The cached value of `key`, or what `load` reads (cached unless invalidated meanwhile).
    fn get_or_load<E>(&self, key: i64, load: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(found) = self.get(key) {
            return Ok(found);
        }
        let epoch = self.epoch();
        let found = load()?;
        self.fill(epoch, key, found.clone());
        Ok(found)
    }

    fn evict(&self, key: i64) {
        let mut state = self.lock();
        state.epoch += 1;
        if let Some(value) = state.young.remove(&key) {
            state.weight = state.weight.saturating_sub((self.weigh)(&value));
        }
        state.old.remove(&key);
    }

    fn evict_where(&self, doomed: impl Fn(&V) -> bool) {
        let mut state = self.lock();
        state.epoch += 1;
        state.young.retain(|_, v| !doomed(v));
        state.old.retain(|_, v| !doomed(v));
        state.weight = state.young.values().map(self.weigh).sum();
    }

    fn clear(&self) {
        let mut state = self.lock();
        state.epoch += 1;
        state.young.clear();
        state.old.clear();
        state.weight = 0;
    }
}

/// Every unexpired presence by person, and by cell for scans.
#[derive(Default)]
struct PresenceIndex {
    by_user: HashMap<i64, Located, BuildHasherDefault<IdHasher>>,
    /// The same people, with only what walking a friend list reads first: most friends are
    /// ruled out here before their full record is read.
    briefs: BriefTable,
    by_cell: BTreeSet<(i64, i64)>,
    /// The latest change applied per person, while an older one may still arrive.
    versions: HashMap<i64, Versions>,
    applied: u64,
}

/// What a friend walk checks before reading a presence in full.
#[derive(Debug, Clone, Copy)]
struct Brief {
    expires_at: i64,
    /// The latitude as `f32`: within half a metre of the real one.
    lat: f32,
    precision: PrecisionLevel,
    suspended: bool,
}

impl Brief {
    /// What a free slot holds.
    const NONE: Brief = Brief {
        expires_at: 0,
        lat: 0.0,
        precision: PrecisionLevel::Off,
        suspended: true,
    };

    fn of(located: &Located) -> Self {
        Self {
            expires_at: located.expires_at,
            #[expect(clippy::cast_possible_truncation, reason = "a coarse copy on purpose")]
            lat: located.location.lat() as f32,
            precision: located.precision,
            suspended: located.suspended,
        }
    }
}

/// Briefs by person: open addressing with linear probing, at most half full, so that most
/// people sit in their home slot. A walk over 200 friends at a million people is 200 cache
/// misses; [`BriefTable::each_present`] reads the home slots of eight friends before looking
/// at any, so their misses overlap instead of following one another (a `HashMap` lookup
/// branches on each miss before starting the next).
#[derive(Default)]
struct BriefTable {
    slots: Vec<(i64, Brief)>,
    len: usize,
    /// The one id a slot cannot hold, since it marks a free slot.
    at_empty: Option<Brief>,
}

const FREE: i64 = i64::MIN;

#[expect(
    clippy::indexing_slicing,
    reason = "every index is a home slot or masked by the power-of-two length - 1"
)]
impl BriefTable {
    fn home(&self, user: i64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        let hash = u64::from_ne_bytes(user.to_ne_bytes()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The top `bits` bits of the product: fewer than 64, since the table is not empty.
        usize::try_from(hash >> (64 - bits)).unwrap_or(0)
    }

    /// Where `user` is, or the free slot that ends its probe.
    fn find(&self, user: i64, from: usize) -> (usize, bool) {
        let mask = self.slots.len() - 1;
        let mut i = from;
        loop {
            match self.slots[i].0 {
                FREE => return (i, false),
                found if found == user => return (i, true),
                _ => i = (i + 1) & mask,
            }
        }
    }

    #[cfg(test)]
    fn get(&self, user: i64) -> Option<&Brief> {
        if user == FREE {
            return self.at_empty.as_ref();
        }
        if self.slots.is_empty() {
            return None;
        }
        match self.find(user, self.home(user)) {
            (i, true) => Some(&self.slots[i].1),
            _ => None,
        }
    }

    fn get_mut(&mut self, user: i64) -> Option<&mut Brief> {
        if user == FREE {
            return self.at_empty.as_mut();
        }
        if self.slots.is_empty() {
            return None;
        }
        match self.find(user, self.home(user)) {
            (i, true) => Some(&mut self.slots[i].1),
            _ => None,
        }
    }

    fn insert(&mut self, user: i64, brief: Brief) {
        if user == FREE {
            self.at_empty = Some(brief);
            return;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let (i, present) = self.find(user, self.home(user));
        self.slots[i] = (user, brief);
        if !present {
            self.len += 1;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![(FREE, Brief::NONE); size]);
        self.len = 0;
        for (user, brief) in old.into_iter().filter(|(user, _)| *user != FREE) {
            let (i, _) = self.find(user, self.home(user));
            self.slots[i] = (user, brief);
            self.len += 1;
        }
    }

    fn remove(&mut self, user: i64) {
        if user == FREE {
            self.at_empty = None;
            return;
        }
        if self.slots.is_empty() {
            return;
        }
        let (mut hole, true) = self.find(user, self.home(user)) else {
            return;
        };
        self.len -= 1;
        // Backward-shift deletion: move later members of the run into the hole when their
        // home does not lie cyclically within (hole, j], so every probe still finds them.
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let (next, _) = self.slots[j];
            if next == FREE {
                break;
            }
            let home = self.home(next);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = (FREE, Brief::NONE);
    }

    /// Calls `keep` with each of `users` that has a brief, in order, eight at a time.
    fn each_present(&self, users: &[i64], mut keep: impl FnMut(i64, &Brief)) {
        if self.slots.is_empty() {
            if let Some(brief) = &self.at_empty
                && users.contains(&FREE)
            {
                keep(FREE, brief);
            }
            return;
        }
        for group in users.chunks(8) {
            let mut homes = [0usize; 8];
            let mut firsts = [FREE; 8];
            for (k, &user) in group.iter().enumerate() {
                homes[k] = self.home(user);
            }
            // Independent loads, no branch between them.
            for k in 0..group.len() {
                firsts[k] = self.slots[homes[k]].0;
            }
            for (k, &user) in group.iter().enumerate() {
                let brief = if user == FREE {
                    self.at_empty.as_ref()
                } else if firsts[k] == user {
                    Some(&self.slots[homes[k]].1)
                } else if firsts[k] == FREE {
                    None
                } else {
                    match self.find(user, homes[k]) {
                        (i, true) => Some(&self.slots[i].1),
                        _ => None,
                    }
                };
                if let Some(brief) = brief {
                    keep(user, brief);
                }
            }
        }
    }
}

/// Hashes an id with one multiplication (Fibonacci hashing). A nearby answer looks up every
/// friend: SipHash, the default, is built to resist chosen keys, which ids taken from our own
/// rows are not, and costs several times as much.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        self.0 = u64::from_ne_bytes(id.to_ne_bytes()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Which changes of one person were applied last. A change made here is applied at once and
/// again when the feed brings it, so an older change from the feed (another instance's, or
/// one committed just before) can arrive in between: it must not undo the newer one.
#[derive(Debug, Clone, Copy)]
struct Versions {
    presence: i64,
    precision: Option<(i64, PrecisionLevel)>,
    at: Instant,
}

/// How long a person's versions are kept: longer than any change can be late (the feed gives
/// up on a missing one after ten seconds).
const VERSIONS_KEPT: Duration = Duration::from_secs(30);

impl PresenceIndex {
    /// The versions of `user`, to check and update.
    fn versions(&mut self, user: i64) -> &mut Versions {
        self.applied += 1;
        if self.applied.is_multiple_of(4096) {
            let now = Instant::now();
            self.versions
                .retain(|_, v| now.duration_since(v.at) < VERSIONS_KEPT);
        }
        let versions = self.versions.entry(user).or_insert(Versions {
            presence: 0,
            precision: None,
            at: Instant::now(),
        });
        versions.at = Instant::now();
        versions
    }

    /// Whether the presence change numbered `seq` is newer than what `user` shows.
    fn newer_presence(&mut self, user: i64, seq: i64) -> bool {
        let versions = self.versions(user);
        if seq <= versions.presence {
            return false;
        }
        versions.presence = seq;
        true
    }

    fn set(&mut self, located: Located) {
        self.briefs.insert(located.user, Brief::of(&located));
        self.by_cell.insert((located.cell, located.user));
        if let Some(previous) = self.by_user.insert(located.user, located) {
            let user = previous.user;
            if self.by_user.get(&user).map(|l| l.cell) != Some(previous.cell) {
                self.by_cell.remove(&(previous.cell, user));
            }
        }
    }

    fn remove(&mut self, user: i64) {
        self.briefs.remove(user);
        if let Some(previous) = self.by_user.remove(&user) {
            self.by_cell.remove(&(previous.cell, user));
        }
    }

    /// The unexpired presences in `cover`, in cell order.
    fn in_cover<'a>(&'a self, cover: &'a Cover, at: i64) -> impl Iterator<Item = &'a Located> {
        cover
            .ranges()
            .iter()
            .flat_map(|range| {
                self.by_cell
                    .range((range.first, i64::MIN)..=(range.last, i64::MAX))
            })
            .filter_map(|(_, user)| self.by_user.get(user))
            .filter(move |located| located.expires_at > at)
    }
}

/// What a nearby answer still needs from the database before the model can give it.
#[derive(Debug, Default)]
pub struct Needs {
    viewer: Option<i64>,
    friends_of: Option<i64>,
    users: Vec<i64>,
    venues: Vec<i64>,
}

/// The outcome of asking the model alone.
#[derive(Debug)]
pub enum Attempt {
    Answer(Nearby),
    /// Some friend list, profile or venue is not cached yet: [`Hot::nearby`] loads it.
    Needs(Needs),
    /// The model cannot answer (not loaded, or the viewer is not one it may answer for): ask
    /// the database.
    Unavailable,
}

/// Friend lookups that cost about as much as building a cell cover (measured: a cover of a
/// 5 km reach takes ~15 µs, a lookup and a distance ~60 ns).
const WALK_FREE: usize = 256;

/// Limits of the caches, in their units.
const FRIEND_IDS: usize = 4_000_000;
const PROFILES: usize = 200_000;
const VENUES: usize = 100_000;
const FAMILIES: usize = 500_000;

/// The read model. One per [`crate::Store`]; shared by all its clones.
pub struct Hot {
    ready: AtomicBool,
    presence: RwLock<PresenceIndex>,
    /// Sorted friend ids by person.
    friends: Generations<Arc<[i64]>>,
    /// Unsuspended people by id.
    users: Generations<Arc<User>>,
    venues: Generations<Arc<Venue>>,
    /// Unrevoked token families of unsuspended people: family id → owner.
    families: Generations<i64>,
    /// People whose presence, profile or friendships changed, for live streams.
    changed: broadcast::Sender<UserId>,
    /// Whether changes also arrive through the database's feed (PostgreSQL): then those
    /// announce the change to streams, not the local application.
    through_database: AtomicBool,
}

impl Default for Hot {
    fn default() -> Self {
        Self {
            ready: AtomicBool::new(false),
            presence: RwLock::default(),
            friends: Generations::new(FRIEND_IDS, |ids| ids.len().max(1)),
            users: Generations::new(PROFILES, |_| 1),
            venues: Generations::new(VENUES, |_| 1),
            families: Generations::new(FAMILIES, |_| 1),
            changed: broadcast::channel(1024).0,
            through_database: AtomicBool::new(false),
        }
    }
}

/// The rows a load reads.
type LoadRow = (
    i64,
    f64,
    f64,
    Option<f64>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
    Option<i64>,
);

/// Rows per page of a load.
const LOAD_PAGE: i64 = 20_000;

fn located_from(row: LoadRow) -> Result<Located, StoreError> {
    let (user, lat, lng, accuracy_m, cell, updated_at, expires_at, checkin) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
    let (venue, visibility, precision, suspended_at) = (row.8, row.9, row.10, row.11);
    Ok(Located {
        user,
        location: Point::new(lat, lng).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        accuracy_m,
        cell,
        updated_at,
        expires_at,
        checkin: venue.and(checkin),
        venue,
        venue_shown: visibility.is_some_and(|v| v != Visibility::Private.as_str()),
        precision: PrecisionLevel::parse(&precision).map_err(StoreError::Corrupt)?,
        suspended: suspended_at.is_some(),
    })
}

impl Hot {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        if !ready {
            self.forget();
        }
        self.ready.store(ready, Ordering::Release);
    }

    pub(crate) fn set_through_database(&self, through: bool) {
        self.through_database.store(through, Ordering::Relaxed);
    }

    fn forget(&self) {
        self.friends.clear();
        self.users.clear();
        self.venues.clear();
        self.families.clear();
    }

    /// People whose presence, profile or friendships changed, on any instance.
    pub fn subscribe(&self) -> broadcast::Receiver<UserId> {
        self.changed.subscribe()
    }

    fn write_presence(&self) -> std::sync::RwLockWriteGuard<'_, PresenceIndex> {
        self.presence
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn read_presence(&self) -> std::sync::RwLockReadGuard<'_, PresenceIndex> {
        self.presence.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the whole model with what the database holds now, and makes it ready.
    pub(crate) fn load(&self, conn: &mut DbConnection) -> Result<(), StoreError> {
        self.set_ready(false);
        let now = to_micros(Utc::now());
        let mut index = PresenceIndex::default();
        // In pages, so that loading a million rows never holds them all as text at once.
        let mut after = i64::MIN;
        loop {
            let rows = self.load_page(conn, now, after)?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.0;
            for row in rows {
                index.set(located_from(row)?);
            }
        }
        *self.write_presence() = index;
        self.set_ready(true);
        Ok(())
    }

    fn load_page(
        &self,
        conn: &mut DbConnection,
        now: i64,
        after: i64,
    ) -> Result<Vec<LoadRow>, StoreError> {
        Ok(presence::table
            .inner_join(users::table)
            .left_join(checkins::table.on(checkins::id.nullable().eq(presence::checkin_id)))
            .filter(presence::expires_at.gt(now))
            .filter(presence::user_id.gt(after))
            .order(presence::user_id)
            .limit(LOAD_PAGE)
            .select((
                presence::user_id,
                presence::lat,
                presence::lng,
                presence::accuracy_m,
                presence::cell,
                presence::updated_at,
                presence::expires_at,
                presence::checkin_id,
                checkins::venue_id.nullable(),
                checkins::visibility.nullable(),
                users::location_precision,
                users::suspended_at,
            ))
            .load(conn)?)
    }

    /// Applies a change made by this process once its work returned (the transaction that
    /// announced it committed).
    pub(crate) fn apply_local(&self, seq: i64, change: &Change) {
        self.apply_quietly(seq, change);
        if !self.through_database.load(Ordering::Relaxed) {
            self.announce_to_streams(change);
        }
    }

    /// Applies change number `seq` from the database's feed.
    pub(crate) fn apply(&self, seq: i64, change: &Change) {
        self.apply_quietly(seq, change);
        self.announce_to_streams(change);
    }

    fn announce_to_streams(&self, change: &Change) {
        let send = |user: i64| {
            let _ = self.changed.send(UserId::from_raw(user));
        };
        match *change {
            Change::PresenceSet(ref located) => send(located.user),
            Change::PresenceCleared(user)
            | Change::CheckinGone { user, .. }
            | Change::UserChanged { user, .. }
            | Change::UserGone(user) => send(user),
            Change::Friendship(a, b) => {
                send(a);
                send(b);
            }
            Change::FamilyRevoked(_) | Change::VenueChanged(_) | Change::VenueGone(_) => {}
        }
    }

    fn apply_quietly(&self, seq: i64, change: &Change) {
        match change {
            Change::PresenceSet(located) => {
                let mut index = self.write_presence();
                if index.newer_presence(located.user, seq) {
                    let mut located = located.clone();
                    // A level changed after this position was read wins.
                    if let Some((changed, precision)) = index.versions(located.user).precision
                        && changed > seq
                    {
                        located.precision = precision;
                    }
                    index.set(located);
                }
            }
            Change::PresenceCleared(user) => {
                let mut index = self.write_presence();
                if index.newer_presence(*user, seq) {
                    index.remove(*user);
                }
            }
            Change::CheckinGone { user, checkin } => {
                if let Some(located) = self.write_presence().by_user.get_mut(user)
                    && located.checkin == Some(*checkin)
                {
                    located.checkin = None;
                    located.venue = None;
                    located.venue_shown = false;
                }
            }
            Change::UserChanged { user, precision } => {
                let mut index = self.write_presence();
                let versions = index.versions(*user);
                if versions.precision.is_none_or(|(applied, _)| applied < seq) {
                    versions.precision = Some((seq, *precision));
                    if let Some(located) = index.by_user.get_mut(user) {
                        located.precision = *precision;
                    }
                    if let Some(brief) = index.briefs.get_mut(*user) {
                        brief.precision = *precision;
                    }
                }
                drop(index);
                self.users.evict(*user);
            }
            Change::UserGone(user) => {
                let mut index = self.write_presence();
                if index.newer_presence(*user, seq) {
                    index.remove(*user);
                }
                drop(index);
                self.users.evict(*user);
                self.friends.evict(*user);
                self.families.evict_where(|owner| owner == user);
            }
            Change::Friendship(a, b) => {
                self.friends.evict(*a);
                self.friends.evict(*b);
            }
            Change::FamilyRevoked(family) => self.families.evict(*family),
            Change::VenueChanged(venue) => self.venues.evict(*venue),
            Change::VenueGone(venue) => {
                for located in self.write_presence().by_user.values_mut() {
                    if located.venue == Some(*venue) {
                        located.checkin = None;
                        located.venue = None;
                        located.venue_shown = false;
                    }
                }
                self.venues.evict(*venue);
            }
        }
    }

    /// Drops presences that expired before `now`.
    pub fn prune(&self, now: DateTime<Utc>) {
        let at = to_micros(now);
        let mut index = self.write_presence();
        let expired: Vec<i64> = index
            .by_user
            .values()
            .filter(|l| l.expires_at <= at)
            .map(|l| l.user)
            .collect();
        for user in expired {
            index.remove(user);
        }
    }

    /// How many presences the model holds (expired ones until the next prune).
    pub fn presence_count(&self) -> usize {
        self.read_presence().by_user.len()
    }

    /// The owner of `family` when it is known to be live; `None` means "ask the database".
    pub fn family_owner(&self, family: i64) -> Option<i64> {
        if !self.is_ready() {
            return None;
        }
        self.families.get(family)
    }

    /// The invalidation count to pass to [`Hot::remember_family`].
    pub fn families_epoch(&self) -> u64 {
        self.families.epoch()
    }

    /// Remembers that the database found `family` live for `owner`, in a read that began at
    /// `epoch`.
    pub fn remember_family(&self, epoch: u64, family: i64, owner: i64) {
        if self.is_ready() {
            self.families.fill(epoch, family, owner);
        }
    }

    /// "Who is nearby" from the model alone, with the same answer as
    /// [`crate::presence::nearby`].
    pub fn try_nearby(
        &self,
        viewer: UserId,
        radius_m: f64,
        plan: Option<Plan>,
        now: DateTime<Utc>,
    ) -> Attempt {
        if !self.is_ready() {
            return Attempt::Unavailable;
        }
        let at = to_micros(now);
        let index = self.read_presence();
        let own = index
            .by_user
            .get(&viewer.raw())
            .filter(|own| own.expires_at > at);
        let precision = match own {
            Some(own) if own.suspended => return Attempt::Unavailable,
            Some(own) => own.precision,
            None => match self.users.get(viewer.raw()) {
                Some(user) => user.location_precision,
                None => {
                    return Attempt::Needs(Needs {
                        viewer: Some(viewer.raw()),
                        ..Needs::default()
                    });
                }
            },
        };
        if precision == PrecisionLevel::Off {
            return Attempt::Answer(Nearby::SharingOff);
        }
        let Some(own) = own else {
            return Attempt::Answer(Nearby::NoPresence);
        };
        let origin = own.location;
        self.friends_near(&index, viewer, origin, precision, radius_m, plan, at)
    }

    /// [`Hot::try_nearby`] from `origin` for a viewer whose level is `precision`: for a
    /// position just set in a transaction that has not committed yet.
    pub fn try_nearby_at(
        &self,
        viewer: UserId,
        origin: Point,
        precision: PrecisionLevel,
        radius_m: f64,
        now: DateTime<Utc>,
    ) -> Attempt {
        if !self.is_ready() {
            return Attempt::Unavailable;
        }
        if precision == PrecisionLevel::Off {
            return Attempt::Answer(Nearby::SharingOff);
        }
        let index = self.read_presence();
        self.friends_near(
            &index,
            viewer,
            origin,
            precision,
            radius_m,
            None,
            to_micros(now),
        )
    }

    /// The friends of `viewer` near `origin`, as `viewer` (at `precision`) may see them.
    #[expect(clippy::too_many_arguments, reason = "one query's parameters")]
    fn friends_near(
        &self,
        index: &PresenceIndex,
        viewer: UserId,
        origin: Point,
        precision: PrecisionLevel,
        radius_m: f64,
        plan: Option<Plan>,
        at: i64,
    ) -> Attempt {
        let Some(friends) = self.friends.get(viewer.raw()) else {
            return Attempt::Needs(Needs {
                friends_of: Some(viewer.raw()),
                ..Needs::default()
            });
        };
        let radius_m = radius_m.clamp(0.0, MAX_COVER_RADIUS_M / 2.0);
        let reach = radius_m + max_snap_offset_m(PrecisionLevel::City);
        let cover = || Cover::circle(origin, reach).ok();
        // Walking costs a lookup per friend; scanning costs the cover (about as much as
        // WALK_FREE lookups) plus a step per present person in it. Below WALK_FREE friends
        // walking always wins; above, count the cover's people up to the break-even point.
        let scan = match plan {
            Some(plan) => plan == Plan::ScanCells,
            None if friends.len() <= WALK_FREE => false,
            None => {
                let Some(cover) = cover() else {
                    return Attempt::Unavailable;
                };
                let break_even = friends.len() - WALK_FREE;
                index.in_cover(&cover, at).take(break_even + 1).count() <= break_even
            }
        };
        let is_friend = |user: i64| friends.binary_search(&user).is_ok();
        let scan_cover = if scan { cover() } else { None };
        let candidates: Vec<&Located> = if scan {
            let Some(cover) = &scan_cover else {
                return Attempt::Unavailable;
            };
            index
                .in_cover(cover, at)
                .filter(|located| is_friend(located.user))
                .collect()
        } else {
            let mut near = Vec::new();
            index.briefs.each_present(&friends, |friend, brief| {
                // The checks below, coarsely, on the brief record; the f32 latitude is within
                // a metre of the real one, hence the 2 m of slack.
                let shown = precision.coarser(brief.precision);
                let bound = radius_m + max_snap_offset_m(shown) + 3.0;
                if brief.expires_at > at
                    && !brief.suspended
                    && shown != PrecisionLevel::Off
                    && (f64::from(brief.lat) - origin.lat()).abs() * 111_000.0 <= bound
                {
                    near.push(friend);
                }
            });
            near.iter()
                .filter_map(|friend| index.by_user.get(friend))
                .filter(|located| located.expires_at > at)
                .collect()
        };
        let mut found = Vec::new();
        for located in candidates.into_iter().filter(|l| !l.suspended) {
            let shown = precision.coarser(located.precision);
            if shown == PrecisionLevel::Off {
                continue;
            }
            // A shared point lies within the level's snap offset of the real one, so someone
            // farther than that beyond the radius is out whatever their cell: skip the snap.
            let bound = radius_m + max_snap_offset_m(shown) + 1.0;
            // No path on the sphere is shorter than the difference in latitude (≥ 111.19 km a
            // degree): most friends are ruled out by a subtraction.
            let north_south_m = (located.location.lat() - origin.lat()).abs() * 111_000.0;
            if north_south_m > bound || origin.distance_m(located.location) > bound {
                continue;
            }
            let Some(seen_at) = shared_point(located.location, shown) else {
                continue;
            };
            let distance = origin.distance_m(seen_at);
            if distance <= radius_m {
                found.push((distance, shown, located.clone()));
            }
        }
        let mut needs = Needs::default();
        let mut friends_near = Vec::with_capacity(found.len());
        for (distance, shown, located) in found {
            let user = self.users.get(located.user);
            let venue = match located.venue.filter(|_| located.venue_shown) {
                Some(id) => match self.venues.get(id) {
                    Some(venue) => Some(venue),
                    None => {
                        needs.venues.push(id);
                        None
                    }
                },
                None => None,
            };
            let Some(user) = user else {
                needs.users.push(located.user);
                continue;
            };
            let Ok(last_seen_at) = from_micros(located.updated_at) else {
                return Attempt::Unavailable;
            };
            friends_near.push((
                distance,
                NearbyFriend {
                    user: User::clone(&user),
                    distance_m: rounded_distance_m(distance, shown),
                    precision: shown,
                    last_seen_at,
                    venue: venue.map(|v| Venue::clone(&v)),
                },
            ));
        }
        if !needs.users.is_empty() || !needs.venues.is_empty() {
            return Attempt::Needs(needs);
        }
        friends_near.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.user.id.raw().cmp(&b.1.user.id.raw()))
        });
        Attempt::Answer(Nearby::Friends(
            friends_near.into_iter().map(|(_, f)| f).collect(),
        ))
    }

    /// The stored presence of `user` (expired or not, until pruned) as the model holds it.
    pub fn presence_of(&self, user: UserId) -> Option<Located> {
        self.read_presence().by_user.get(&user.raw()).cloned()
    }

    /// `user` (unsuspended), from the cache or read through `conn`.
    pub fn user(&self, conn: &mut DbConnection, user: UserId) -> Result<Arc<User>, StoreError> {
        self.users
            .get_or_load(user.raw(), || crate::users::find(conn, user).map(Arc::new))
    }

    /// `user` (unsuspended), if cached.
    pub fn cached_user(&self, user: UserId) -> Option<Arc<User>> {
        self.users.get(user.raw())
    }

    /// A venue, if cached.
    pub fn cached_venue(&self, venue: vicinity_domain::VenueId) -> Option<Arc<Venue>> {
        self.venues.get(venue.raw())
    }

    /// A venue, from the cache or read through `conn`.
    pub fn venue(
        &self,
        conn: &mut DbConnection,
        venue: vicinity_domain::VenueId,
    ) -> Result<Arc<Venue>, StoreError> {
        self.venues.get_or_load(venue.raw(), || {
            crate::venues::find(conn, venue).map(Arc::new)
        })
    }

    /// Loads what `needs` names into the caches.
    fn load_needs(&self, conn: &mut DbConnection, needs: &Needs) -> Result<(), StoreError> {
        if let Some(user) = needs.friends_of {
            let epoch = self.friends.epoch();
            let mut ids = crate::social::friend_ids(conn, UserId::from_raw(user))?;
            ids.sort_unstable();
            self.friends.fill(epoch, user, ids.into());
        }
        let people: Vec<i64> = needs.viewer.iter().chain(&needs.users).copied().collect();
        if !people.is_empty() {
            let epoch = self.users.epoch();
            let rows: Vec<UserRow> = users::table
                .filter(users::id.eq_any(&people))
                .filter(users::suspended_at.is_null())
                .select(USER_COLUMNS)
                .load(conn)?;
            for row in rows {
                let user = User::try_from(row)?;
                self.users.fill(epoch, user.id.raw(), Arc::new(user));
            }
        }
        for &venue in &needs.venues {
            let epoch = self.venues.epoch();
            match crate::venues::find(conn, vicinity_domain::VenueId::from_raw(venue)) {
                Ok(found) => self.venues.fill(epoch, venue, Arc::new(found)),
                Err(StoreError::NotFound) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// "Who is nearby" from the model, loading what it lacks through `conn`; `None` when the
    /// model cannot answer and the database must.
    pub fn nearby(
        &self,
        conn: &mut DbConnection,
        viewer: UserId,
        radius_m: f64,
        plan: Option<Plan>,
        now: DateTime<Utc>,
    ) -> Result<Option<Nearby>, StoreError> {
        self.loading(conn, || self.try_nearby(viewer, radius_m, plan, now))
    }

    /// [`Hot::try_nearby_at`], loading what it lacks through `conn`.
    pub fn nearby_at(
        &self,
        conn: &mut DbConnection,
        viewer: UserId,
        origin: Point,
        precision: PrecisionLevel,
        radius_m: f64,
        now: DateTime<Utc>,
    ) -> Result<Option<Nearby>, StoreError> {
        self.loading(conn, || {
            self.try_nearby_at(viewer, origin, precision, radius_m, now)
        })
    }

    fn loading(
        &self,
        conn: &mut DbConnection,
        attempt: impl Fn() -> Attempt,
    ) -> Result<Option<Nearby>, StoreError> {
        // Each round loads one kind of thing (viewer, friends, then profiles and venues); a
        // change landing between rounds can ask for one more.
        for _ in 0..4 {
            match attempt() {
                Attempt::Answer(nearby) => return Ok(Some(nearby)),
                Attempt::Unavailable => return Ok(None),
                Attempt::Needs(needs) => self.load_needs(conn, &needs)?,
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod brief_table_tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn brief(expires_at: i64) -> Brief {
        Brief {
            expires_at,
            ..Brief::NONE
        }
    }

    /// Random inserts, overwrites and removals over a small id range (so runs and wrap-around
    /// collide often), checked against a `HashMap` after every step.
    #[test]
    fn behaves_as_a_map_through_random_changes() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut table = BriefTable::default();
        let mut model: HashMap<i64, i64> = HashMap::new();
        let ids: Vec<i64> = (0..300)
            .map(|i| {
                if i == 0 {
                    FREE
                } else {
                    rng.random_range(-500..500)
                }
            })
            .collect();
        for step in 0..20_000 {
            let user = ids[rng.random_range(0..ids.len())];
            if rng.random_bool(0.55) {
                table.insert(user, brief(step));
                model.insert(user, step);
            } else {
                table.remove(user);
                model.remove(&user);
            }
            if step % 97 == 0 {
                for &id in &ids {
                    assert_eq!(table.get(id).map(|b| b.expires_at), model.get(&id).copied());
                }
                let mut seen = Vec::new();
                table.each_present(&ids, |id, b| seen.push((id, b.expires_at)));
                let expected: Vec<(i64, i64)> = ids
                    .iter()
                    .filter_map(|id| model.get(id).map(|e| (*id, *e)))
                    .collect();
                assert_eq!(seen, expected, "step {step}");
            }
        }
        assert_eq!(table.len, model.keys().filter(|k| **k != FREE).count());
    }
}
