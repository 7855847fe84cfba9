//! Isolation Forest on 1,000,000 rows x 8 features (100 trees, 256 samples per tree, the
//! defaults).
//!
//! Measured, each on the same data built once outside the timed closures:
//! - `fit`: checking the input and growing the 100 trees (parallel over trees);
//! - `score`: `score_samples` on every row (parallel over chunks of rows);
//! - `fit_and_score`: both, the target (under 2 s on two cores).
//!
//! The rows are standard normal with 1% of them shifted by ±6 in every column, from a
//! fixed seed. Throughput is in rows.

/// mimalloc, as in the Python module: the figures are those a notebook gets (see the
/// workspace `Cargo.toml` for why not glibc's malloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quantcore::linfa::DatasetBase;
use quantcore::linfa::traits::Fit;
use quantcore::ml::iforest::{IsolationForest, IsolationForestParams};
use quantcore::ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 1_000_000;
const FEATURES: usize = 8;

/// Standard normal rows (Box–Muller), every hundredth row shifted by ±6.
fn data(rows: usize, features: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Array2::from_shape_simple_fn((rows, features), || {
        let (u, v): (f64, f64) = (1.0 - rng.r#gen::<f64>(), rng.r#gen());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    });
    for (row, mut values) in x.rows_mut().into_iter().enumerate() {
        if row % 100 == 0 {
            let shift = if row % 200 == 0 { 6.0 } else { -6.0 };
            values += shift;
        }
    }
    x
}

fn params() -> IsolationForestParams {
    IsolationForest::params()
        .n_trees(100)
        .max_samples(256)
        .seed(7)
}

fn iforest(c: &mut Criterion) {
    let x = data(ROWS, FEATURES, 42);
    let dataset = DatasetBase::from(x.view());
    let fitted = params().fit(&dataset).expect("finite data fits");
    let id = "rows=1_000_000";

    let mut group = c.benchmark_group("iforest");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_with_input(BenchmarkId::new("fit", id), &dataset, |b, dataset| {
        b.iter(|| params().fit(black_box(dataset)).expect("finite data fits"))
    });
    group.bench_with_input(BenchmarkId::new("score", id), &x, |b, x| {
        b.iter(|| {
            fitted
                .score_samples(black_box(x))
                .expect("finite data scores")
        })
    });
    group.bench_with_input(BenchmarkId::new("fit_and_score", id), &x, |b, x| {
        b.iter(|| {
            let forest = params()
                .fit(&DatasetBase::from(black_box(x).view()))
                .expect("finite data fits");
            forest.score_samples(x).expect("finite data scores")
        })
    });
    group.finish();
}

criterion_group!(benches, iforest);
criterion_main!(benches);
