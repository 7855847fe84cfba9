//! Backtest throughput: the simulation loop, metrics included, on synthetic bars.
//!
//! Measured, each on data built once outside the timed closures (a geometric random
//! walk with OHLC around it, fixed seeds):
//! - `backtest/momentum/bars=1_000_000,symbols=1`: one [`Backtester::run`] of a
//!   `MomentumStrategy { fast: 10, slow: 50 }` over 1,000,000 daily bars, 0.1 %
//!   commission and 5 bps slippage, next-open fills (about 14,000 round trips),
//!   ending with [`Metrics::compute`](quantcore::metrics::Metrics::compute) over the
//!   1,000,001-point equity curve and building the result (equity, timestamps,
//!   orders, fills). The target: under 10 ms (about 10 ns per bar).
//! - `backtest_sweep/momentum/bars=100_000,pairs=1_000`: [`sweep`] of 1,000
//!   `(fast, slow)` pairs over 100,000 bars, in parallel on rayon's pool (both cores);
//!   throughput counts bars times pairs.
//! - `backtest_multi/momentum/bars=1_000_000,symbols=10`: [`Backtester::run_multi`]
//!   over 10 series of 1,000,000 bars on the same timestamps, one cash pool, one
//!   momentum strategy per symbol ([`PerSymbol`]); throughput counts symbol-bars.
//!
//! Orders are a fixed 100 units on a 10,000,000 account: sized from equity, a
//! million bars of compounding either explode the account or empty it (then every
//! later entry sizes to zero), and neither is the per-bar work being measured.
//! Throughput is in bars (elements); the time per bar is the inverse.
//! No run allocates per bar: `tests/allocations.rs` counts a run's allocations (19 for
//! the one-symbol run over 100,000 bars and over 1,000,000; 41 for four symbols over
//! 25,000 bars each and over 250,000).
//!
//! Figures of 2026-11-25 (2-core AMD EPYC VM): `backtest/momentum` 11.6-12.1 ms (about
//! 11.8 ns a bar; the 10 ms target is not met yet): the metrics about 3.2 ms, the
//! momentum scan about 2.5 ms, the orders about 2.4 ms (27,534 orders, about 87 ns
//! each), copying the timestamps and growing the order records about 0.9 ms, the equity
//! fill about 0.6 ms. The sweep 588-633 ms (about 165M bar-pairs/s on both cores), the
//! 10-symbol run 290 ms (29 ns per symbol-bar).
//!
//! Figures of 2026-12-03, on a VM of the same kind that ran 1.7-2x slower all day (the
//! unchanged sweep took 1.13-1.18 s, the 10-symbol run 495 ms) and alternated within
//! seconds between a fast and a slow phase (a run of the same binary 11 or 18 ms):
//! `backtest/momentum` 19.5 ms against 26.8 ms for the code of the morning, in the same
//! criterion run; the best of 30 runs of an example over the same bars, alternating the
//! two builds, 10.8-11.2 ms against 11.9-12.4. Deterministic, from `valgrind
//! --tool=callgrind` over one run: the simulation's thread executes 94.2M instructions
//! (111.1M in the morning), the metrics' pass about 67M more on the second core. Of the
//! 94M: the momentum scan 39M (29 a bar plus the re-adds), the orders about 1,400
//! each, the rest the equity fill and the records.
//!
//! Figures of 2026-12-04, in a fast phase (the example's best of 50 at 7.9-8.2 ms
//! before and after): `backtest/momentum` **8.60 ms (8.24-9.06)**, 116M bars/s, about
//! 8.6 ns a bar: the 10 ms target is met. With the result kept 8.66 ms. The sweep
//! 716 ms (704-730; 140M bar-pairs/s on both cores), the 10-symbol run 320 ms
//! (307-343; 32 ns per symbol-bar: each bar of each symbol goes through the general
//! loop, no quiet-bar fast path). Callgrind: the simulation's thread 77.7M
//! instructions (94.2M on 2026-12-03): the momentum scan about 27 a bar in its steady
//! loop (the running sums re-added every 256 updates instead of every window), the
//! orders about 1,350 each (37M in all: the next lever), the rest about 10M. At
//! about 4 instructions a cycle on a 2.45 GHz core the run is bound by the
//! instructions of one core; the metrics' pass overlaps on the other core and costs
//! the run about 0.1 ms at the end. Against vectorbt 1.2.0, on the 1M-bar walk of
//! `benches/compare/vectorbt_momentum.py` with the same rules, measured one after the
//! other earlier that day: vectorbt 457 ms, quantcore's `time_backtest` example 8.5 ms,
//! both ending on 9,427,962.008306 after 27,952 orders.
//!
//! A wall-clock figure here needs a quiet machine: compare builds in one criterion run,
//! and count instructions with callgrind over the `backtest_profile` example (the same
//! bars and run; its docs say how).

/// mimalloc, as in the Python module: the figures are those a notebook gets (see the
/// workspace `Cargo.toml` for why not glibc's malloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quantcore::BarSeries;
use quantcore::backtest::{Backtester, MomentumStrategy, PerSymbol, sweep};
use quantcore_benches::{backtest_config as config, drifting_walk as walk};

const BARS: usize = 1_000_000;
const SWEEP_BARS: usize = 100_000;
const SYMBOLS: usize = 10;

fn momentum_one_symbol(c: &mut Criterion) {
    let series = walk(BARS, 42, "WALK");
    let backtester = Backtester::new(config()).expect("valid config");
    let mut group = c.benchmark_group("backtest");
    group.throughput(Throughput::Elements(BARS as u64));
    group.sample_size(20);
    group.bench_with_input(
        BenchmarkId::new("momentum", "bars=1_000_000,symbols=1"),
        &series,
        |b, series| {
            b.iter(|| {
                let mut strategy = MomentumStrategy::new(10, 50).expect("valid periods");
                backtester
                    .run(black_box(series), &mut strategy)
                    .expect("the run succeeds")
            })
        },
    );
    // The same run without freeing its result in the timed region: the result holds about
    // 22 MB (equity, timestamps, orders, fills). With glibc's malloc, freeing it handed
    // the pages back to the kernel and the next run faulted fresh ones in (29.7 ms a run
    // instead of 15.3 before the other changes of 2026-11-25); mimalloc keeps them, and
    // the two figures now agree.
    group.bench_with_input(
        BenchmarkId::new("momentum_result_kept", "bars=1_000_000,symbols=1"),
        &series,
        |b, series| {
            b.iter_with_large_drop(|| {
                let mut strategy = MomentumStrategy::new(10, 50).expect("valid periods");
                backtester
                    .run(black_box(series), &mut strategy)
                    .expect("the run succeeds")
            })
        },
    );
    group.finish();
}

fn parameter_sweep(c: &mut Criterion) {
    let series = walk(SWEEP_BARS, 7, "WALK");
    // 20 fast periods x 50 slow periods = 1,000 pairs, every slow above every fast.
    let grid: Vec<(usize, usize)> = (1..=20)
        .flat_map(|f| (0..50).map(move |s| (2 * f, 50 + 5 * s)))
        .collect();
    assert_eq!(grid.len(), 1_000);
    let config = config();
    let mut group = c.benchmark_group("backtest_sweep");
    group.throughput(Throughput::Elements((SWEEP_BARS * grid.len()) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_with_input(
        BenchmarkId::new("momentum", "bars=100_000,pairs=1_000"),
        &series,
        |b, series| {
            b.iter(|| {
                sweep(
                    black_box(series),
                    &grid,
                    |&(fast, slow)| MomentumStrategy::new(fast, slow),
                    &config,
                )
                .expect("every pair runs")
            })
        },
    );
    group.finish();
}

fn multi_symbol(c: &mut Criterion) {
    let series: Vec<BarSeries> = (0..SYMBOLS)
        .map(|i| walk(BARS, 100 + i as u64, &format!("S{i}")))
        .collect();
    let backtester = Backtester::new(config()).expect("valid config");
    let mut group = c.benchmark_group("backtest_multi");
    group.throughput(Throughput::Elements((BARS * SYMBOLS) as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_with_input(
        BenchmarkId::new("momentum", "bars=1_000_000,symbols=10"),
        &series,
        |b, series| {
            b.iter(|| {
                let strategies = (0..SYMBOLS)
                    .map(|_| MomentumStrategy::new(10, 50).expect("valid periods"))
                    .collect();
                backtester
                    .run_multi(black_box(series), &mut PerSymbol::new(strategies))
                    .expect("the run succeeds")
            })
        },
    );
    group.finish();
}

criterion_group!(benches, momentum_one_symbol, parameter_sweep, multi_symbol);
criterion_main!(benches);
