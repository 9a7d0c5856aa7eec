//! Check-ins per H3 cell in a box. At resolutions 7–10 a box spans at most a region, and the
//! answer comes from the check-ins themselves, with exact distinct visitors. At 0–6 a box may
//! span a continent or the world, and the answer comes from `checkin_cells`, the rollup the
//! database keeps per UTC day and resolution-6 cell (migration 000016): exact check-ins, and
//! visitors as a bitmap whose bits set never exceed the distinct people behind them. Those
//! answers cover whole UTC days: reading the hours at either end from the check-ins took
//! seconds on the benchmark's population.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use vicinity_geo::hexagon::{BoundingBox, cell_centre, parent_masks};

use crate::schema::{checkin_cells, checkins, venues};
use crate::time::to_micros;
use crate::{DbConnection, StoreError};

/// The resolution of the rollup's cells: answers at this resolution or coarser come from it.
pub const ROLLUP_RESOLUTION: u8 = 6;

const DAY_MICROS: i64 = 86_400_000_000;

/// The bit (0–255) a person sets in a visitor bitmap, as the migrations compute it in SQL: a
/// multiplicative hash of the id that never overflows a BIGINT.
pub fn visitor_bit(user_id: i64) -> usize {
    let bit = user_id % 2_147_483_648 * 2_654_435_761 % 4_294_967_296 / 16_777_216;
    usize::try_from(bit).unwrap_or(0)
}

/// Check-ins in one H3 cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellCount {
    /// The cell's id (as stored: an H3 index in a BIGINT).
    pub cell: i64,
    pub checkins: u64,
    /// Distinct people, where they were counted one by one (resolutions 7–10).
    pub unique_visitors: Option<u64>,
}

/// Which check-ins to count per cell, and the fewest distinct visitors a cell needs to be
/// shown.
#[derive(Debug, Clone, Copy)]
pub struct CellsQuery {
    /// 0–10.
    pub resolution: u8,
    pub bbox: BoundingBox,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub min_visitors: u64,
}

/// Check-ins per cell, the small cells left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellCounts {
    /// The window counted: the one asked for, or at [`ROLLUP_RESOLUTION`] and coarser, the
    /// whole UTC days covering it.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Whether [`CellCount::unique_visitors`] are counted (resolutions 7–10).
    pub visitors_counted: bool,
    /// The cells with at least the minimum of distinct visitors, in cell order.
    pub shown: Vec<CellCount>,
    /// How many cells had check-ins from fewer people and are left out.
    pub suppressed: usize,
}

/// Check-ins at venues inside the box, per H3 cell of the venues at the query's resolution.
/// Cells nobody checked in are absent; cells with fewer distinct visitors than the minimum
/// are counted in `suppressed` only, so that an aggregate never points at one person.
///
/// At [`ROLLUP_RESOLUTION`] or coarser the window widens to whole UTC days, the box takes
/// whole resolution-6 cells, those whose centre lies inside it, and a cell is shown only when
/// its visitor bitmap proves the minimum: its bits set never exceed the people behind them.
pub fn cell_counts(conn: &mut DbConnection, query: &CellsQuery) -> Result<CellCounts, StoreError> {
    let resolution = query.resolution;
    let masks = parent_masks(resolution)
        .ok_or_else(|| StoreError::Corrupt(format!("no cells at resolution {resolution}")))?;
    let visitors_counted = resolution > ROLLUP_RESOLUTION;
    let (from, to, counted) = if visitors_counted {
        let counted = exact_counts(conn, masks, &query.bbox, query.from, query.to)?;
        (query.from, query.to, counted)
    } else {
        let (first, end) = day_span(to_micros(query.from), to_micros(query.to));
        let start_of = |day: i64, or: DateTime<Utc>| {
            DateTime::from_timestamp_micros(day.saturating_mul(DAY_MICROS)).unwrap_or(or)
        };
        let counted = rolled_up_counts(conn, masks, &query.bbox, first, end)?;
        (
            start_of(first, query.from),
            start_of(end, query.to),
            counted,
        )
    };
    let (shown, hidden): (Vec<_>, Vec<_>) = counted
        .into_iter()
        .partition(|(_, visitors_at_least)| *visitors_at_least >= query.min_visitors);
    let mut shown: Vec<CellCount> = shown.into_iter().map(|(count, _)| count).collect();
    shown.sort_by_key(|count| count.cell);
    Ok(CellCounts {
        from,
        to,
        visitors_counted,
        shown,
        suppressed: hidden.len(),
    })
}

/// The parent cell of a venue's stored cell, in SQL. Both databases have `&` and `|` on
/// 64-bit integers; the masks are our own numbers.
fn parent_sql(clear: i64, set: i64) -> String {
    format!("((venues.cell & ({clear})) | ({set}))")
}

/// Each cell with its distinct visitors, counted from the check-ins.
fn exact_counts(
    conn: &mut DbConnection,
    (clear, set): (i64, i64),
    bbox: &BoundingBox,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(CellCount, u64)>, StoreError> {
    let parent = parent_sql(clear, set);
    let mut query = checkins::table
        .inner_join(venues::table)
        .filter(checkins::created_at.ge(to_micros(from)))
        .filter(checkins::created_at.lt(to_micros(to)))
        .filter(venues::lat.between(bbox.min_lat, bbox.max_lat))
        .group_by(sql::<BigInt>(&parent))
        .select((
            sql::<BigInt>(&parent),
            count_star(),
            diesel::dsl::count(checkins::user_id).aggregate_distinct(),
        ))
        .into_boxed();
    query = match bbox.lng_spans().as_slice() {
        [(west, east)] => query.filter(venues::lng.between(*west, *east)),
        [(w1, e1), (w2, e2)] => query.filter(
            venues::lng
                .between(*w1, *e1)
                .or(venues::lng.between(*w2, *e2)),
        ),
        _ => return Ok(Vec::new()),
    };
    Ok(query
        .load::<(i64, i64, i64)>(conn)?
        .into_iter()
        .map(|(cell, checkins, visitors)| {
            let visitors = u64::try_from(visitors).unwrap_or(0);
            let count = CellCount {
                cell,
                checkins: u64::try_from(checkins).unwrap_or(0),
                unique_visitors: Some(visitors),
            };
            (count, visitors)
        })
        .collect())
}

/// Check-ins and the visitor bitmap of one resolution-6 cell.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    checkins: i64,
    visitors: [u64; 4],
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.checkins += other.checkins;
        for (mine, theirs) in self.visitors.iter_mut().zip(other.visitors) {
            *mine |= theirs;
        }
    }

    fn visitors_at_least(&self) -> u64 {
        self.visitors
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum()
    }
}

/// The UTC days `[first, end)` that cover `[from, to)` microseconds.
fn day_span(from: i64, to: i64) -> (i64, i64) {
    let first = from.div_euclid(DAY_MICROS);
    let end = to.div_euclid(DAY_MICROS) + i64::from(to.rem_euclid(DAY_MICROS) != 0);
    (first, end.max(first))
}

/// The rollup's rows for UTC days `[first_day, end_day)`; then the resolution-6 cells whose
/// centre is in the box, merged into their parents, each with the bits its visitors set.
fn rolled_up_counts(
    conn: &mut DbConnection,
    (clear, set): (i64, i64),
    bbox: &BoundingBox,
    first_day: i64,
    end_day: i64,
) -> Result<Vec<(CellCount, u64)>, StoreError> {
    let mut tallies: HashMap<i64, Tally> = HashMap::new();
    for (cell, tally) in rollup_rows(conn, first_day, end_day)? {
        tallies.entry(cell).or_default().add(&tally);
    }
    let mut parents: BTreeMap<i64, Tally> = BTreeMap::new();
    for (cell, tally) in tallies {
        let inside = cell_centre(cell).is_some_and(|[lng, lat]| bbox.contains(lng, lat));
        if inside && tally.checkins > 0 {
            parents.entry((cell & clear) | set).or_default().add(&tally);
        }
    }
    Ok(parents
        .into_iter()
        .map(|(cell, tally)| {
            let count = CellCount {
                cell,
                checkins: u64::try_from(tally.checkins).unwrap_or(0),
                unique_visitors: None,
            };
            (count, tally.visitors_at_least())
        })
        .collect())
}

/// The rollup's rows for days `[first, end)`: on PostgreSQL its shards and days merged per
/// cell by the server; SQLite, without `bit_or`, sends the rows as they are.
fn rollup_rows(
    conn: &mut DbConnection,
    first: i64,
    end: i64,
) -> Result<Vec<(i64, Tally)>, StoreError> {
    type Row = (i64, i64, i64, i64, i64, i64);
    let in_window = checkin_cells::day.ge(first).and(checkin_cells::day.lt(end));
    let rows: Vec<Row> = match conn {
        DbConnection::Pg(_) => checkin_cells::table
            .filter(in_window)
            .group_by(checkin_cells::cell)
            .select((
                checkin_cells::cell,
                sql::<BigInt>("CAST(SUM(checkin_cells.checkins) AS BIGINT)"),
                sql::<BigInt>("bit_or(checkin_cells.visitors0)"),
                sql::<BigInt>("bit_or(checkin_cells.visitors1)"),
                sql::<BigInt>("bit_or(checkin_cells.visitors2)"),
                sql::<BigInt>("bit_or(checkin_cells.visitors3)"),
            ))
            .load(conn)?,
        DbConnection::Sqlite(_) => checkin_cells::table
            .filter(in_window)
            .select((
                checkin_cells::cell,
                checkin_cells::checkins,
                checkin_cells::visitors0,
                checkin_cells::visitors1,
                checkin_cells::visitors2,
                checkin_cells::visitors3,
            ))
            .load(conn)?,
    };
    // The words are bit patterns; `as` keeps every bit.
    #[allow(clippy::cast_sign_loss)]
    let bits = |word: i64| word as u64;
    Ok(rows
        .into_iter()
        .map(|(cell, checkins, v0, v1, v2, v3)| {
            let visitors = [bits(v0), bits(v1), bits(v2), bits(v3)];
            (cell, Tally { checkins, visitors })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use vicinity_geo::{Point, storage_cell};

    use super::*;

    /// The numbers written into migration 000016, which SQL cannot compute from h3o.
    const PARENT_CLEAR: i64 = -67_553_994_410_557_441;
    const PARENT_SET: i64 = 27_021_597_898_440_703;
    const CHILD_RESOLUTION: i64 = 45_035_996_273_704_960;
    const CHILD_DIGITS_CLEAR: i64 = -134_184_961;

    #[test]
    fn the_migrations_constants_are_the_rollup_cells_parents_and_their_children() {
        assert_eq!(
            parent_masks(ROLLUP_RESOLUTION),
            Some((PARENT_CLEAR, PARENT_SET))
        );
        let points = [
            (40.758, -73.9855),
            (40.7614, -73.9776),
            (-33.86, 151.2),
            (64.1, -21.9),
        ];
        let cells: Vec<i64> = points
            .iter()
            .map(|(lat, lng)| storage_cell(Point::new(*lat, *lng).unwrap()))
            .collect();
        for cell in &cells {
            let parent = (cell & PARENT_CLEAR) | PARENT_SET;
            let hi = (parent & PARENT_CLEAR) | CHILD_RESOLUTION;
            let lo = hi & CHILD_DIGITS_CLEAR;
            assert!((lo..=hi).contains(cell), "{cell:x} under {parent:x}");
            for other in cells
                .iter()
                .filter(|o| (*o & PARENT_CLEAR) | PARENT_SET != parent)
            {
                assert!(
                    !(lo..=hi).contains(other),
                    "{other:x} is not under {parent:x}"
                );
            }
        }
    }

    #[test]
    fn a_person_sets_one_bit_of_256_and_people_spread_over_them() {
        let bits: std::collections::HashSet<usize> = (1..=10_000).map(visitor_bit).collect();
        assert_eq!(bits.len(), 256);
        assert!(bits.iter().all(|b| *b < 256));
        assert!((1..1000).all(|id| visitor_bit(id) == visitor_bit(id + 2_147_483_648)));
        assert!(visitor_bit(i64::MAX) < 256);
    }
}
