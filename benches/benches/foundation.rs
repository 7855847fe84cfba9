//! The foundation's hot paths over a million bars or returns:
//! - `parse/csv` and `parse/yahoo_json`: bytes to a validated `BarSeries` (strict mode),
//!   1,000,000 bars rendered once outside the timed closure;
//! - `indicators/sma` and `indicators/ema`: the batch forms (period 20) over 1,000,000
//!   closes;
//! - `metrics/full_set`: `Metrics::compute` (every return and trade statistic, drawdown
//!   dates, VaR/CVaR/tail ratio) over an equity curve of 1,000,000 returns and 1,000
//!   trade PnLs.
//!
//! Throughput is in elements (bars or returns). Data come from fixed seeds
//! (`quantcore_benches`).

/// mimalloc, as in the Python module: the figures are those a notebook gets (see the
/// workspace `Cargo.toml` for why not glibc's malloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quantcore::metrics::{Metrics, MetricsConfig};
use quantcore::normalize::{ParseOptions, csv, yahoo};
use quantcore_benches::{equity_curve, random_returns, random_walk_series, to_csv, to_yahoo_json};

const N: usize = 1_000_000;
const ID: &str = "bars=1_000_000";

fn parsing(c: &mut Criterion) {
    let series = random_walk_series(N, 1);
    let csv_bytes = to_csv(&series);
    let json_bytes = to_yahoo_json(&series);
    let options = ParseOptions::default();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.bench_with_input(BenchmarkId::new("csv", ID), &csv_bytes, |b, bytes| {
        b.iter(|| csv::parse_bars(black_box(bytes), &options).expect("valid CSV"))
    });
    group.bench_with_input(
        BenchmarkId::new("yahoo_json", ID),
        &json_bytes,
        |b, bytes| b.iter(|| yahoo::parse_chart(black_box(bytes), &options).expect("valid JSON")),
    );
    group.finish();
}

fn indicators(c: &mut Criterion) {
    let series = random_walk_series(N, 2);
    let close = series.close();
    let mut group = c.benchmark_group("indicators");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_with_input(BenchmarkId::new("sma", ID), close, |b, close| {
        b.iter(|| quantcore::features::sma(black_box(close), 20).expect("valid input"))
    });
    group.bench_with_input(BenchmarkId::new("ema", ID), close, |b, close| {
        b.iter(|| quantcore::features::ema(black_box(close), 20).expect("valid input"))
    });
    group.finish();
}

fn metrics(c: &mut Criterion) {
    let returns = random_returns(N, 3);
    let (timestamps, equity) = equity_curve(&returns);
    let trade_pnls: Vec<f64> = random_returns(1_000, 4)
        .iter()
        .map(|r| r * 10_000.0)
        .collect();
    let config = MetricsConfig::default();
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(BenchmarkId::new("full_set", "returns=1_000_000"), |b| {
        b.iter(|| {
            Metrics::compute(
                black_box(&timestamps),
                black_box(&equity),
                &trade_pnls,
                &config,
            )
            .expect("valid equity")
        })
    });
    group.finish();
}

criterion_group!(benches, parsing, indicators, metrics);
criterion_main!(benches);
