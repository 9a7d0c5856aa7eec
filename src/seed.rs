//! `vicinity seed`: realistic synthetic venues around real cities, for demos and benchmarks.
//!
//! Each of the 34,006 GeoNames cities with 15,000 people or more (and a few smaller capitals) gets a share of the venues
//! proportional to its population (largest remainders, so the total is exact), scattered around
//! its centre with a Gaussian spread that grows with the square root of the population (dense
//! downtowns, thinner suburbs). Names, categories and street addresses come from the same
//! seeded generator, and ids are derived from the seed and the venue's index: the same seed
//! always produces the same venues, and running it twice inserts nothing the second time.

use std::time::Instant;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use vicinity_domain::{Address, VenueDetails, VenueId, VenueName};
use vicinity_geo::Point;
use vicinity_store::venues::{self, Category};
use vicinity_store::{Store, StoreError};

/// GeoNames cities15000 (CC BY 4.0; see assets/geonames/README.md).
const CITIES_CSV: &str = include_str!("../assets/geonames/cities15000.csv");

/// Rows per INSERT: well under PostgreSQL's 65,535 bind parameters and SQLite's 32,766.
const BATCH: usize = 1_000;

#[derive(Debug, Deserialize)]
struct City {
    #[expect(dead_code, reason = "a CSV column the seed does not use")]
    geonameid: u64,
    name: String,
    country: String,
    lat: f64,
    lng: f64,
    population: u64,
    #[expect(dead_code, reason = "a CSV column the seed does not use")]
    timezone: String,
}

/// The embedded city list.
fn cities() -> Result<Vec<City>, String> {
    csv::Reader::from_reader(CITIES_CSV.as_bytes())
        .deserialize()
        .collect::<Result<Vec<City>, _>>()
        .map_err(|e| format!("the embedded city list is unreadable: {e}"))
}

/// Venues per city, proportional to population; the shares sum to `total` exactly.
fn shares(cities: &[City], total: u64) -> Vec<u64> {
    let population: u128 = cities.iter().map(|c| u128::from(c.population)).sum();
    if population == 0 {
        return vec![0; cities.len()];
    }
    let exact: Vec<(u64, u128)> = cities
        .iter()
        .map(|c| {
            let scaled = u128::from(c.population) * u128::from(total);
            ((scaled / population) as u64, scaled % population)
        })
        .collect();
    let mut shares: Vec<u64> = exact.iter().map(|(whole, _)| *whole).collect();
    let handed_out: u64 = shares.iter().sum();
    let mut by_remainder: Vec<usize> = (0..cities.len()).collect();
    // Largest remainder first; ties to the bigger (earlier) city.
    by_remainder.sort_by(|&a, &b| {
        let key = |i: usize| exact.get(i).map_or(0, |(_, rest)| *rest);
        key(b).cmp(&key(a)).then(a.cmp(&b))
    });
    for index in by_remainder.into_iter().take((total - handed_out) as usize) {
        if let Some(share) = shares.get_mut(index) {
            *share += 1;
        }
    }
    shares
}

/// How a top-level category weighs in a city's venue mix (residences are never seeded).
fn weight_of(top: &str) -> u32 {
    match top {
        "food" => 26,
        "shops" => 16,
        "coffee" => 10,
        "nightlife" => 9,
        "outdoors" => 8,
        "travel" => 6,
        "work" => 6,
        "arts" => 5,
        "education" => 4,
        "health" => 4,
        "sports" => 4,
        "community" => 3,
        _ => 0,
    }
}

/// Leaf-ish categories (every category below the top level) with their weights.
fn category_mix(categories: &[Category]) -> Vec<(&Category, u32)> {
    let top_of = |category: &Category| -> String {
        let mut current = category;
        while let Some(parent) = current
            .parent_id
            .as_deref()
            .and_then(|p| categories.iter().find(|c| c.id == p))
        {
            current = parent;
        }
        current.id.clone()
    };
    let mut mix: Vec<(&Category, u32)> = categories
        .iter()
        .filter(|c| c.parent_id.is_some())
        .map(|c| (c, weight_of(&top_of(c))))
        .filter(|(_, weight)| *weight > 0)
        .collect();
    mix.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    mix
}

const FIRST: &[&str] = &[
    "Blue",
    "Golden",
    "Corner",
    "Royal",
    "Little",
    "Old Town",
    "Lucky",
    "Green",
    "Central",
    "Harbor",
    "Sunset",
    "Union",
    "Liberty",
    "Garden",
    "Maple",
    "Cedar",
    "North",
    "South",
    "East",
    "West",
    "Grand",
    "Silver",
    "Red",
    "Star",
    "Riverside",
    "Hilltop",
    "Lantern",
    "Copper",
    "Juniper",
    "Market",
    "Station",
    "Orchard",
    "Velvet",
    "Iron",
    "Paper",
    "Salt",
    "Olive",
];
const OWNERS: &[&str] = &[
    "Rossi", "Nguyen", "Kim", "Garcia", "Smith", "Müller", "Silva", "Sato", "Okafor", "Haddad",
    "Kowalski", "Dubois", "Novak", "Jensen", "Costa", "Ivanova", "Chen", "Patel", "Cohen",
];
const STREETS: &[&str] = &[
    "Main", "High", "Church", "Station", "Park", "Mill", "Market", "King", "Queen", "Bridge",
    "River", "Lake", "Hill", "Oak", "Elm", "Pine", "Garden", "Harbour", "Castle", "School",
];
const STREET_KINDS: &[&str] = &["Street", "Avenue", "Road", "Lane", "Boulevard", "Way"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    items.get(rng.random_range(0..items.len().max(1)))
}

fn pick_weighted<'a>(rng: &mut StdRng, mix: &[(&'a Category, u32)]) -> Option<&'a Category> {
    let total: u32 = mix.iter().map(|(_, w)| w).sum();
    let mut ticket = rng.random_range(0..total.max(1));
    for (category, weight) in mix {
        if ticket < *weight {
            return Some(category);
        }
        ticket -= weight;
    }
    mix.last().map(|(c, _)| *c)
}

/// A deterministic, well-mixed venue id for the `index`-th venue of `seed`.
fn seeded_id(seed: u64, index: u64) -> VenueId {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(0x5EED);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    VenueId::from_random_bits(z ^ (z >> 31))
}

/// One synthetic venue near `city`.
fn venue_near(
    rng: &mut StdRng,
    city: &City,
    centre: Point,
    mix: &[(&Category, u32)],
) -> Option<(VenueDetails, Point)> {
    // σ of the scatter: 0.4 km for a town of 15,000 people, about 6.5 km for 4 million,
    // capped at 25 km.
    let sigma = (800.0 * (city.population as f64 / 15_000.0).sqrt() / 2.0).clamp(400.0, 25_000.0);
    // Rayleigh-distributed distance (a 2-D Gaussian), cut off at 3σ.
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let distance = (sigma * (-2.0 * u.ln()).sqrt()).min(3.0 * sigma);
    let location = centre.destination(rng.random_range(0.0..360.0), distance);
    let category = pick_weighted(rng, mix)?;
    let name = match rng.random_range(0..3) {
        0 => format!("{}'s {}", pick(rng, OWNERS)?, category.name),
        _ => format!("{} {}", pick(rng, FIRST)?, category.name),
    };
    let street = format!(
        "{} {} {}",
        rng.random_range(1..400),
        pick(rng, STREETS)?,
        pick(rng, STREET_KINDS)?
    );
    let details = VenueDetails {
        name: VenueName::parse(&name).ok()?,
        category_id: category.id.clone(),
        address: Address {
            street: Some(street),
            locality: Some(city.name.chars().take(100).collect()),
            region: None,
            postal_code: None,
            country_code: Some(city.country.to_ascii_uppercase())
                .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic())),
        },
        phone: None,
        url: None,
    };
    Some((details, location))
}

/// What a seed run did.
#[derive(Debug)]
pub struct SeedReport {
    pub generated: u64,
    pub inserted: u64,
    pub seconds: f64,
}

/// Generates `total` venues for `seed` and inserts them in batches, showing progress on a
/// terminal.
pub fn seed_venues(store: &Store, total: u64, seed: u64) -> Result<SeedReport, String> {
    let started = Instant::now();
    let cities = cities()?;
    let shares = shares(&cities, total);
    let categories = store
        .run_blocking(venues::categories)
        .map_err(|e| format!("cannot read the categories: {e}"))?;
    let mix = category_mix(&categories);
    if mix.is_empty() {
        return Err("the database has no categories; run `vicinity migrate` first".into());
    }
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("seeding venues {bar:40} {pos}/{len} ({per_sec}, {eta} left)")
            .map_err(|e| e.to_string())?,
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut batch = Vec::with_capacity(BATCH);
    let (mut generated, mut inserted) = (0u64, 0u64);
    let now = Utc::now();
    let flush = |batch: &mut Vec<(VenueId, VenueDetails, Point)>| -> Result<u64, String> {
        if batch.is_empty() {
            return Ok(0);
        }
        let rows = std::mem::take(batch);
        let count = store
            .run_blocking(move |conn| venues::insert_batch(conn, &rows, now))
            .map_err(|e: StoreError| format!("inserting venues failed: {e}"))?;
        Ok(count as u64)
    };
    for (city, share) in cities.iter().zip(shares) {
        let Ok(centre) = Point::new(city.lat, city.lng) else {
            continue;
        };
        for _ in 0..share {
            let Some((details, location)) = venue_near(&mut rng, city, centre, &mix) else {
                continue;
            };
            batch.push((seeded_id(seed, generated), details, location));
            generated += 1;
            if batch.len() == BATCH {
                inserted += flush(&mut batch)?;
                progress.set_position(generated);
            }
        }
    }
    inserted += flush(&mut batch)?;
    progress.finish_and_clear();
    Ok(SeedReport {
        generated,
        inserted,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_city_list_is_complete_and_sane() {
        let cities = cities().unwrap();
        assert_eq!(cities.len(), 34_006);
        assert!(cities.iter().all(|c| Point::new(c.lat, c.lng).is_ok()));
        // 15,000 people or more, plus a few smaller (or abandoned: Plymouth, 0) capitals.
        assert!(cities.iter().filter(|c| c.population < 15_000).count() < 50);
        // Quoted names with commas survive.
        assert!(cities.iter().any(|c| c.name == "Misato, Saitama"));
    }

    #[test]
    fn shares_are_exact_and_follow_population() {
        let cities = cities().unwrap();
        for total in [0, 1, 999, 200_000] {
            let shares = shares(&cities, total);
            assert_eq!(shares.iter().sum::<u64>(), total);
        }
        let shares = shares(&cities, 200_000);
        // The list is sorted by population: the biggest city gets the most.
        assert_eq!(shares.iter().max(), shares.first());
        let (big, small) = (&cities[0], &cities[30_000]);
        let ratio = big.population as f64 / small.population as f64;
        let got = shares[0] as f64 / shares[30_000].max(1) as f64;
        assert!(got > ratio / 2.0, "{got} vs {ratio}");
    }

    #[test]
    fn seeded_ids_are_stable_and_distinct() {
        assert_eq!(seeded_id(7, 3), seeded_id(7, 3));
        assert_ne!(seeded_id(7, 3), seeded_id(8, 3));
        let ids: std::collections::HashSet<i64> =
            (0..100_000).map(|i| seeded_id(1, i).raw()).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(ids.iter().all(|id| *id > 0));
    }
}
