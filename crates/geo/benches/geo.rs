//! Micro-benchmarks of the hot spatial functions: `cargo bench -p vicinity-geo`.
#![expect(clippy::unwrap_used, reason = "benchmarks")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vicinity_geo::{Cover, Point, storage_cell};

fn cover(c: &mut Criterion) {
    let centre = Point::new(40.7580, -73.9855).unwrap();
    for radius in [100.0, 1_000.0, 10_000.0, 50_000.0] {
        c.bench_function(&format!("cover {radius} m"), |b| {
            b.iter(|| Cover::circle(black_box(centre), black_box(radius)).unwrap())
        });
    }
}

fn distance(c: &mut Criterion) {
    let a = Point::new(40.7580, -73.9855).unwrap();
    let b = Point::new(40.7484, -73.9857).unwrap();
    c.bench_function("distance", |bench| {
        bench.iter(|| black_box(a).distance_m(black_box(b)))
    });
    c.bench_function("storage cell", |bench| {
        bench.iter(|| storage_cell(black_box(a)))
    });
}

criterion_group!(benches, cover, distance);
criterion_main!(benches);
