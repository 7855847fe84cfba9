//! The benched backtests allocate per run, per symbol and per few thousand orders, never
//! per bar: the allocations of a run, counted by a global allocator that wraps the
//! system's, do not grow with the number of bars.
//!
//! One test function in this binary: the count is global (the metrics' pass runs on
//! another thread of rayon's pool), so no other test may allocate while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use quantcore::BarSeries;
use quantcore::backtest::{BacktestResult, Backtester, MomentumStrategy, PerSymbol};
use quantcore_benches::{backtest_config, drifting_walk};

/// The system allocator, counting every allocation and reallocation.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, that is from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes, and what it returns.
fn counted<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let out = f();
    (ALLOCATIONS.load(Ordering::SeqCst) - before, out)
}

/// The bench's one-symbol run over `series`: its allocations and its result.
fn one_symbol(backtester: &Backtester, series: &BarSeries) -> (u64, BacktestResult) {
    let mut strategy = MomentumStrategy::new(10, 50).expect("valid periods");
    counted(|| {
        backtester
            .run(series, &mut strategy)
            .expect("the run succeeds")
    })
}

/// The bench's multi-symbol run over `series`: its allocations and its order count.
fn multi_symbol(backtester: &Backtester, series: &[BarSeries]) -> (u64, usize) {
    let strategies = (0..series.len())
        .map(|_| MomentumStrategy::new(10, 50))
        .collect::<Result<Vec<_>, _>>()
        .expect("valid periods");
    let mut strategy = PerSymbol::new(strategies);
    counted(|| {
        backtester
            .run_multi(series, &mut strategy)
            .expect("the run succeeds")
            .orders
            .len()
    })
}

#[test]
fn backtests_allocate_per_run_not_per_bar() {
    let backtester = Backtester::new(backtest_config()).expect("valid config");
    let long = drifting_walk(1_000_000, 42, "WALK");
    let short = drifting_walk(100_000, 42, "WALK");

    // The first run starts rayon's pool (threads, queues): once per process.
    one_symbol(&backtester, &long);

    let (short_allocations, short_run) = one_symbol(&backtester, &short);
    let (long_allocations, long_run) = one_symbol(&backtester, &long);
    let (bars, orders) = (long.len(), long_run.orders.len());
    eprintln!(
        "one symbol: {short_allocations} allocations over {} bars ({} orders), \
         {long_allocations} over {bars} bars ({orders} orders)",
        short.len(),
        short_run.orders.len(),
    );
    // The long run makes thousands of orders; the count must not follow them either,
    // else the records would grow one by one.
    assert!(orders > 10_000, "{orders} orders");
    assert!(
        long_allocations < 64,
        "{long_allocations} allocations for {bars} bars and {orders} orders"
    );
    // Ten times the bars and orders: at most a few more (the records' growths, each to
    // the count projected from the run so far). Measured: 19 and 19.
    assert!(
        long_allocations <= short_allocations + 6,
        "{short_allocations} allocations for 100,000 bars, {long_allocations} for 1,000,000"
    );

    let long: Vec<BarSeries> = (0..4)
        .map(|s| drifting_walk(250_000, 100 + s, &format!("S{s}")))
        .collect();
    let short: Vec<BarSeries> = long.iter().map(|series| series.slice(0..25_000)).collect();
    let (short_allocations, short_orders) = multi_symbol(&backtester, &short);
    let (long_allocations, long_orders) = multi_symbol(&backtester, &long);
    eprintln!(
        "four symbols: {short_allocations} allocations over 4 x 25,000 bars \
         ({short_orders} orders), {long_allocations} over 4 x 250,000 ({long_orders} orders)"
    );
    assert!(long_orders > 4 * 2_000, "{long_orders} orders");
    assert!(
        long_allocations < 128,
        "{long_allocations} allocations for 4 x 250,000 bars and {long_orders} orders"
    );
    // Measured: 41 and 41.
    assert!(
        long_allocations <= short_allocations + 12,
        "{short_allocations} allocations for 4 x 25,000 bars, {long_allocations} for 4 x 250,000"
    );
}
